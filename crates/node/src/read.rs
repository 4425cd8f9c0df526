//! The database's read handles: snapshots, range iterators, and the batch in which range
//! reads and multi-gets come back (keys and values back to back, one length array).

use std::ops::Bound;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use uringdb_lsm::db::{Db, DbError, DbIter, IterBatch, SnapshotPin};

use crate::errors::{guard, outcome, Failure, Res};

/// A snapshot handle.
#[napi]
pub struct NativeSnapshot {
    pub(crate) pin: Option<Arc<SnapshotPin>>,
}

#[napi]
impl NativeSnapshot {
    /// Releases the snapshot (idempotent).
    #[napi]
    pub fn release(&mut self) {
        self.pin = None;
    }

    /// Another handle on the same snapshot (kept if this one is released); for reads that
    /// wait for a place in the reader queue after their call returned.
    #[napi]
    pub fn dup(&self) -> NativeSnapshot {
        NativeSnapshot {
            pin: self.pin.clone(),
        }
    }

    /// The snapshot's sequence number.
    #[napi(getter)]
    pub fn seq(&self) -> f64 {
        self.pin.as_ref().map_or(-1.0, |p| p.seq() as f64)
    }
}

/// The pin of `s`, checked to belong to `db` and to be live.
pub(crate) fn snapshot_of(db: &Db, s: Option<&NativeSnapshot>) -> Res<Option<Arc<SnapshotPin>>> {
    let invalid = |m: &str| Failure::from(&DbError::InvalidArgument(m.into()));
    match s {
        None => Ok(None),
        Some(s) => match &s.pin {
            Some(p) if !db.owns(p) => Err(invalid("the snapshot belongs to another database")),
            Some(p) => Ok(Some(p.clone())),
            None => Err(invalid("the snapshot was released")),
        },
    }
}

/// A batch of entries from an iterator or a multi-get.
#[napi(object)]
pub struct NativeBatch {
    /// Keys and values back to back.
    pub data: Buffer,
    /// Per entry: key length, value length (-1: absent, for multi-get).
    pub lens: Int32Array,
    /// Whether no entry follows.
    pub done: bool,
}

impl From<IterBatch> for NativeBatch {
    fn from(b: IterBatch) -> Self {
        let lens: Vec<i32> = b.lens.iter().map(|&l| l as i32).collect();
        NativeBatch {
            data: b.data.into(),
            lens: Int32Array::new(lens),
            done: b.done,
        }
    }
}

/// Whatever a read handle must keep alive (its database's engine).
pub(crate) type KeepAlive = Arc<dyn std::any::Any + Send + Sync>;

/// A range iterator handle.
#[napi]
pub struct NativeIterator {
    /// Keeps the engine alive while the iterator is open; dropped by `close`, so that a
    /// closed iterator object does not hold the database's files until it is collected.
    pub(crate) engine: Mutex<Option<KeepAlive>>,
    pub(crate) it: Arc<Mutex<Option<DbIter>>>,
    /// The iterator's batches run one at a time, in call order, on the reader pool.
    pub(crate) strand: crate::worker::Strand,
    /// The synchronous fill's batch (`nextBatchInto`): reused from call to call, and holding
    /// what did not fit into the caller's buffers until the next call.
    pub(crate) fill: Mutex<Fill>,
}

/// A batch fetched for `nextBatchInto` and how much of it was handed out.
#[derive(Default)]
pub(crate) struct Fill {
    batch: IterBatch,
    /// Entries and bytes of `batch` already copied out.
    entries: usize,
    bytes: usize,
}

/// What one `nextBatchInto` call copied.
#[napi(object)]
pub struct NativeFill {
    /// Entries copied (their key and value lengths are the first `2 * entries` lengths).
    pub entries: u32,
    /// Bytes copied (keys and values back to back from offset 0).
    pub bytes: u32,
    /// Whether no entry follows.
    pub done: bool,
    /// When no entry was copied because the next one is larger than the data buffer: its
    /// size in bytes (call again with a buffer at least this large); otherwise 0.
    pub need_bytes: u32,
}

fn next_batch(it: &Mutex<Option<DbIter>>, max_entries: u32, max_bytes: u32) -> Res<IterBatch> {
    let mut g = it.lock().unwrap_or_else(|e| e.into_inner());
    let it = g
        .as_mut()
        .ok_or_else(|| Failure::from(&DbError::InvalidArgument("the iterator is closed".into())))?;
    it.next_batch(max_entries.max(1) as usize, max_bytes.max(1) as usize)
        .map_err(|e| Failure::from(&e))
}

#[napi]
impl NativeIterator {
    /// Fetches up to `maxEntries` entries (about `maxBytes`), off the JS thread; the
    /// batches of one iterator are fetched in call order, never two at once.
    #[napi(ts_return_type = "Promise<NativeBatch>")]
    pub fn next_batch<'env>(
        &self,
        env: &'env Env,
        max_entries: u32,
        max_bytes: u32,
    ) -> napi::Result<Object<'env>> {
        guard(env, || {
            let slot = crate::worker::read_slot()?;
            let (deferred, promise) = env.create_deferred::<NativeBatch, _>()?;
            let it = self.it.clone();
            let engine = self
                .engine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            slot.submit_in(&self.strand, move || {
                let r = next_batch(&it, max_entries, max_bytes);
                drop(engine);
                deferred.resolve(move |env| outcome(&env, r).map(NativeBatch::from));
            });
            Ok(promise)
        })
    }

    /// Synchronous variant of `nextBatch` (for small batches on hot paths).
    #[napi]
    pub fn next_batch_sync(
        &self,
        env: Env,
        max_entries: u32,
        max_bytes: u32,
    ) -> napi::Result<NativeBatch> {
        guard(&env, || {
            next_batch(&self.it, max_entries, max_bytes).map(NativeBatch::from)
        })
    }

    /// Synchronously copies the next entries into the caller's buffers: keys and values back
    /// to back into `data`, their lengths into `lens` (two per entry), at most
    /// `lens.length / 2` entries and `data.length` bytes. Nothing is allocated per call once
    /// the iterator's own batch has grown; entries that do not fit wait for the next call.
    #[napi]
    pub fn next_batch_into(
        &self,
        env: Env,
        mut data: Uint8Array,
        mut lens: Int32Array,
    ) -> napi::Result<NativeFill> {
        guard(&env, || {
            // Two views of one memory would make the two mutable slices below alias.
            let d = data.as_ptr_range();
            let l = lens.as_ptr_range();
            if (d.start as usize) < (l.end as usize) && (l.start as usize) < (d.end as usize) {
                return Err(Failure::from(&DbError::InvalidArgument(
                    "nextBatchInto: data and lens overlap".into(),
                )));
            }
            // SAFETY: a synchronous call on the JS thread: no JavaScript runs while these
            // slices live (both are dropped before returning), so neither typed array can be
            // detached or written by JavaScript meanwhile; the two do not overlap (checked
            // above), so the slices do not alias.
            let (data, lens): (&mut [u8], &mut [i32]) = unsafe { (data.as_mut(), lens.as_mut()) };
            let max_entries = lens.len() / 2;
            if max_entries == 0 || data.is_empty() {
                return Err(Failure::from(&DbError::InvalidArgument(
                    "nextBatchInto: empty buffers".into(),
                )));
            }
            let mut f = self.fill.lock().unwrap_or_else(|e| e.into_inner());
            let f = &mut *f;
            if f.entries * 2 >= f.batch.lens.len() && !f.batch.done {
                let mut g = self.it.lock().unwrap_or_else(|e| e.into_inner());
                let it = g.as_mut().ok_or_else(|| {
                    Failure::from(&DbError::InvalidArgument("the iterator is closed".into()))
                })?;
                it.next_batch_into(max_entries, data.len(), &mut f.batch)
                    .map_err(|e| Failure::from(&e))?;
                f.entries = 0;
                f.bytes = 0;
            }
            let (mut n, mut at) = (0usize, 0usize);
            let mut need = 0usize;
            let pairs = f.batch.lens[f.entries * 2..].chunks_exact(2);
            for (i, kv) in pairs.enumerate() {
                let size = (kv[0] + kv[1]) as usize;
                if i >= max_entries || at + size > data.len() {
                    if n == 0 {
                        need = size;
                    }
                    break;
                }
                lens[2 * i] = kv[0] as i32;
                lens[2 * i + 1] = kv[1] as i32;
                at += size;
                n += 1;
            }
            data[..at].copy_from_slice(&f.batch.data[f.bytes..f.bytes + at]);
            f.entries += n;
            f.bytes += at;
            let drained = f.entries * 2 >= f.batch.lens.len();
            Ok(NativeFill {
                entries: n as u32,
                bytes: at as u32,
                done: drained && f.batch.done,
                need_bytes: need as u32,
            })
        })
    }

    /// Repositions at `target` (within the range).
    #[napi]
    pub fn seek(&self, env: Env, target: &[u8]) -> napi::Result<()> {
        guard(&env, || {
            if let Some(it) = self.it.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                it.seek(target);
            }
            let mut f = self.fill.lock().unwrap_or_else(|e| e.into_inner());
            *f = Fill::default();
            Ok(())
        })
    }

    /// Releases the iterator's pinned state (idempotent).
    #[napi]
    pub fn close(&self) {
        self.it.lock().unwrap_or_else(|e| e.into_inner()).take();
        *self.fill.lock().unwrap_or_else(|e| e.into_inner()) = Fill::default();
        self.engine.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// A range bound from an optional key.
pub(crate) fn bound(v: Option<&[u8]>, inclusive: bool) -> Bound<Vec<u8>> {
    match v {
        None => Bound::Unbounded,
        Some(k) if inclusive => Bound::Included(k.to_vec()),
        Some(k) => Bound::Excluded(k.to_vec()),
    }
}
