//! The binding of streams in the database (`db.stream(name)`): a stream's first and last
//! seq, an iterator over its entries that crosses in batches on the reader pool (like
//! the range iterator in [`crate::read`]), and a waiter that resolves when the stream grows
//! (for `tail`). The engine assigns, stores and reads the entries
//! (`uringdb_lsm::db::stream_state`); nothing here but conversions.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use uringdb_lsm::db::{DbError, StreamBatch, StreamIter, StreamWaitOutcome};

use crate::db::{Engine, NativeDb};
use crate::errors::{guard, outcome, Failure, Res};
use crate::read::{snapshot_of, KeepAlive, NativeSnapshot};
use crate::worker;

/// A stream's first and last seq.
#[napi(object, object_from_js = false)]
pub struct NativeStreamInfo {
    /// The first entry still held (1 for a stream never truncated).
    pub first_seq: f64,
    /// The last entry appended (0 for a stream never written).
    pub last_seq: f64,
}

/// A batch of stream entries.
#[napi(object, object_from_js = false)]
pub struct NativeStreamBatch {
    /// The entries' seqs, ascending.
    pub seqs: Float64Array,
    /// Each entry's data length.
    pub lens: Int32Array,
    /// The entries' data back to back.
    pub data: Buffer,
    /// Whether no entry follows (at the iterator's snapshot).
    pub done: bool,
}

impl From<StreamBatch> for NativeStreamBatch {
    fn from(b: StreamBatch) -> Self {
        NativeStreamBatch {
            seqs: Float64Array::new(b.seqs.iter().map(|&s| s as f64).collect()),
            lens: Int32Array::new(b.lens.iter().map(|&l| l as i32).collect()),
            data: b.data.into(),
            done: b.done,
        }
    }
}

/// An iterator over one stream's entries.
#[napi]
pub struct NativeStreamIterator {
    /// Keeps the engine alive while the iterator is open (dropped by `close`).
    engine: Mutex<Option<KeepAlive>>,
    it: Arc<Mutex<Option<StreamIter>>>,
    /// Batches run one at a time, in call order, on the reader pool.
    strand: worker::Strand,
}

/// A seq from JavaScript: a non-negative integer (`field` names it in the error).
fn seq_arg(field: &str, v: f64) -> Res<u64> {
    if v >= 0.0 && v.fract() == 0.0 && v <= 2f64.powi(53) {
        Ok(v as u64)
    } else {
        Err(Failure::invalid_argument(format!(
            "{field} must be a non-negative safe integer, got {v}"
        )))
    }
}

#[napi]
impl NativeDb {
    /// The first and last seq of stream `name` (bytes of its ASCII name).
    #[napi]
    pub fn stream_info(&self, env: Env, name: &[u8]) -> napi::Result<NativeStreamInfo> {
        guard(&env, || {
            let i = self
                .engine()?
                .db
                .stream_info(name)
                .map_err(|e| Failure::from(&e))?;
            Ok(NativeStreamInfo {
                first_seq: i.first_seq as f64,
                last_seq: i.last_seq as f64,
            })
        })
    }

    /// An iterator over stream `name` from seq `from` on, at most `limit` entries (< 0:
    /// none), at `snapshot` (or a new implicit one).
    #[napi]
    pub fn stream_iterator(
        &self,
        env: Env,
        name: &[u8],
        from: f64,
        limit: f64,
        snapshot: Option<&NativeSnapshot>,
    ) -> napi::Result<NativeStreamIterator> {
        guard(&env, || {
            let engine = self.engine()?.clone();
            let snap = snapshot_of(&engine.db, snapshot)?;
            let from = seq_arg("from", from)?;
            let limit = (limit >= 0.0)
                .then(|| seq_arg("limit", limit))
                .transpose()?;
            let it = engine
                .db
                .stream_iter(name, from, limit, snap.as_deref())
                .map_err(|e| Failure::from(&e))?;
            Ok(NativeStreamIterator {
                engine: Mutex::new(Some(engine as KeepAlive)),
                it: Arc::new(Mutex::new(Some(it))),
                strand: worker::Strand::default(),
            })
        })
    }
}

fn next_batch(
    it: &Mutex<Option<StreamIter>>,
    max_entries: u32,
    max_bytes: u32,
) -> Res<StreamBatch> {
    let mut g = it.lock().unwrap_or_else(|e| e.into_inner());
    let it = g
        .as_mut()
        .ok_or_else(|| Failure::from(&DbError::InvalidArgument("the iterator is closed".into())))?;
    it.next_batch(max_entries.max(1) as usize, max_bytes.max(1) as usize)
        .map_err(|e| Failure::from(&e))
}

#[napi]
impl NativeStreamIterator {
    /// Fetches up to `maxEntries` entries (about `maxBytes`), off the JS thread, in call
    /// order.
    #[napi(ts_return_type = "Promise<NativeStreamBatch>")]
    pub fn next_batch<'env>(
        &self,
        env: &'env Env,
        max_entries: u32,
        max_bytes: u32,
    ) -> napi::Result<Object<'env>> {
        guard(env, || {
            let slot = worker::read_slot()?;
            let (deferred, promise) = env.create_deferred::<NativeStreamBatch, _>()?;
            let it = self.it.clone();
            let engine = self
                .engine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            slot.submit_in(&self.strand, move || {
                let r = next_batch(&it, max_entries, max_bytes);
                drop(engine);
                deferred.resolve(move |env| outcome(&env, r).map(NativeStreamBatch::from));
            });
            Ok(promise)
        })
    }

    /// Releases the iterator's pinned state (idempotent).
    #[napi]
    pub fn close(&self) {
        self.it.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.engine.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Waits of one tail for its stream to grow (one at a time).
#[napi]
pub struct NativeStreamWaiter {
    /// The engine (dropped by `close`).
    engine: Mutex<Option<Engine>>,
    name: Vec<u8>,
    /// The pending wait's id (0: none); a stale id is harmless (cancelling it does nothing).
    id: Mutex<u64>,
}

#[napi]
impl NativeDb {
    /// A waiter for stream `name` (for `tail`).
    #[napi]
    pub fn stream_waiter(&self, env: Env, name: &[u8]) -> napi::Result<NativeStreamWaiter> {
        guard(&env, || {
            let engine = self.engine()?.clone();
            engine.db.stream_info(name).map_err(|e| Failure::from(&e))?;
            Ok(NativeStreamWaiter {
                engine: Mutex::new(Some(engine)),
                name: name.to_vec(),
                id: Mutex::new(0),
            })
        })
    }
}

#[napi]
impl NativeStreamWaiter {
    /// Resolves with the stream's last seq once it exceeds `after`, or with -1 when the
    /// wait is cancelled or the database closes.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn wait<'env>(&self, env: &'env Env, after: f64) -> napi::Result<Object<'env>> {
        guard(env, || {
            let after = seq_arg("after", after)?;
            let engine = self
                .engine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .ok_or_else(|| Failure::from(&DbError::Closed))?;
            let (deferred, promise) = env.create_deferred::<f64, _>()?;
            let id = engine
                .db
                .stream_wait(
                    &self.name,
                    after,
                    Box::new(move |o| {
                        let v = match o {
                            StreamWaitOutcome::Ready(n) => n as f64,
                            _ => -1.0,
                        };
                        deferred.resolve(move |_| Ok(v));
                    }),
                )
                .map_err(|e| Failure::from(&e))?;
            *self.id.lock().unwrap_or_else(|e| e.into_inner()) = id;
            Ok(promise)
        })
    }

    /// Cancels the pending wait (it resolves with -1); nothing if none.
    #[napi]
    pub fn cancel(&self) {
        let id = std::mem::take(&mut *self.id.lock().unwrap_or_else(|e| e.into_inner()));
        let engine = self
            .engine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let (true, Some(engine)) = (id != 0, engine) {
            engine.db.stream_wait_cancel(id);
        }
    }

    /// Cancels the pending wait and releases the engine (idempotent).
    #[napi]
    pub fn close(&self) {
        self.cancel();
        self.engine.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
