//! The log's binding: `openLog`, `NativeLog` and `NativeCursor`. No engine logic: appends
//! are copied into the commit queue in one synchronous call, completions come back per
//! commit group ([`crate::completion`]), reads run on the binding's reader thread and
//! return a batch of records as one `Buffer` plus a `Float64Array` of (seq, start, length).

use std::path::Path;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use uringdb_wal::{
    Producer, ReadCursor, RecoveryReport, TryOutcome, WaitOutcome, Wal, WalError, WalOptions,
};

use crate::completion::{completion_sink, CompletionArgs, Pending};
use crate::errors::{guard, outcome, panic_failure, settle, Failure, Res, Settle};
use crate::options::NativeLogOptions;
use crate::registry::{identity, Product, Registry, Shared};
use crate::stats::{NativeLogRecovery, NativeLogStats};
use crate::worker;

/// A shared open log.
pub(crate) struct LogEngine {
    pub(crate) wal: Wal,
    recovery: RecoveryReport,
}

identity!(
    /// The options every handle of one log directory must share.
    LogIdentity {
        backend: uringdb_wal::BackendChoice => "ioBackend",
        segment_bytes: u64 => "segmentBytes",
        ring_bytes: usize => "ringBytes",
        max_record_bytes: Option<usize> => "maxRecordBytes",
        commit_delay_us: u64 => "commitDelayUs",
        recovery: uringdb_wal::RecoveryMode => "recovery",
    }
);

impl Product for LogEngine {
    type Options = WalOptions;
    type Identity = LogIdentity;
    type Error = WalError;

    fn identity(o: &WalOptions) -> LogIdentity {
        LogIdentity {
            backend: o.backend,
            segment_bytes: o.segment_bytes,
            ring_bytes: o.ring_bytes,
            max_record_bytes: o.max_record_bytes,
            commit_delay_us: o.commit_delay_us,
            recovery: o.recovery,
        }
    }
    fn first_difference(a: &LogIdentity, b: &LogIdentity) -> Option<&'static str> {
        a.first_difference(b)
    }
    fn open(dir: &Path, options: WalOptions) -> std::result::Result<Self, WalError> {
        let (wal, recovery) = Wal::open(dir, &options)?;
        Ok(LogEngine { wal, recovery })
    }
    fn close(&self) -> std::result::Result<(), WalError> {
        match self.wal.close() {
            // A latched write/fsync failure was already delivered to every append it
            // affected (and to every append after it); closing itself succeeded, so
            // `close()` in JavaScript resolves rather than rethrowing it from a `finally`.
            Err(WalError::Failed(_)) => Ok(()),
            other => other,
        }
    }
    fn dir_error(context: String, e: std::io::Error) -> WalError {
        WalError::Io {
            context,
            source: Arc::new(e),
        }
    }
    fn mismatch(field: &'static str, message: String) -> WalError {
        WalError::InvalidOption { field, message }
    }
}

static LOGS: Registry<LogEngine> = Registry::new();

type Engine = Arc<Shared<LogEngine>>;

/// An open log handle, one per `openLog` call; several may share an engine.
#[napi]
pub struct NativeLog {
    engine: Option<Engine>,
    producer: Option<Producer>,
    pending: Pending,
    waits: Arc<Mutex<Vec<(u32, u64)>>>,
    max_record_bytes: u32,
    recovery: NativeLogRecovery,
    string_buf: Vec<u8>,
}

/// One batch of records read.
#[napi(object)]
pub struct ReadResult {
    /// Payloads back to back.
    pub data: Buffer,
    /// (seq, start, length) per record.
    pub meta: Float64Array,
}

fn closed() -> Failure {
    Failure::from(&WalError::Closed)
}

fn seq_arg(name: &str, v: f64) -> Res<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
        Ok(v as u64)
    } else {
        Err(Failure::invalid_argument(format!(
            "{name} must be a non-negative safe integer, got {v}"
        )))
    }
}

/// Opens (or joins) the engine for `dir`. `onComplete(seqs, failedCount, error, group)`
/// is called on this thread once per commit group that completed any of this handle's
/// appends or syncs, in order, with the group's facts.
#[napi(ts_return_type = "Promise<NativeLog>")]
pub fn open_log<'env>(
    env: &'env Env,
    dir: String,
    options: NativeLogOptions,
    #[napi(
        ts_arg_type = "(seqs: Float64Array | null, failedCount: number, error: NativeError | null, group: NativeCommitGroup | null) => void"
    )]
    on_complete: Function<CompletionArgs, ()>,
) -> napi::Result<Object<'env>> {
    guard(env, || {
        let opts = options.to_wal()?;
        let (sink, pending) = completion_sink(on_complete)?;
        let (deferred, promise) = env.create_deferred::<NativeLog, Settle<NativeLog>>()?;
        worker::spawn_named("uringdb-open", move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                LOGS.acquire(Path::new(&dir), opts)
            }));
            let r = match r {
                Ok(Ok((engine, opened))) => {
                    let producer = engine.wal.producer(sink);
                    let rep = &engine.recovery;
                    let recovery = NativeLogRecovery {
                        segments: rep.segments as f64,
                        last_seq: rep.last_seq as f64,
                        truncated_bytes: rep.truncated_bytes as f64,
                        duration_us: rep.duration.as_micros() as f64,
                        opened,
                    };
                    let max_record_bytes = engine.wal.max_record_bytes() as u32;
                    Ok(Box::new(move |_| {
                        Ok(NativeLog {
                            engine: Some(engine),
                            producer: Some(producer),
                            pending,
                            waits: Arc::new(Mutex::new(Vec::new())),
                            max_record_bytes,
                            recovery,
                            string_buf: Vec::new(),
                        })
                    }) as Settle<NativeLog>)
                }
                Ok(Err(e)) => Err(Failure::from(&e)),
                Err(p) => Err(panic_failure(&*p)),
            };
            settle(deferred, r);
        });
        Ok(promise)
    })
}

impl NativeLog {
    fn producer(&self) -> Res<&Producer> {
        self.producer.as_ref().ok_or_else(closed)
    }

    fn engine(&self) -> Res<&Engine> {
        self.engine.as_ref().ok_or_else(closed)
    }

    /// Hands `n` operations (one entry) to the engine without blocking; false: the ring
    /// was full, the entry was not taken, and a `Space` message will come.
    fn try_enqueue(
        &self,
        env: &Env,
        n: i64,
        f: impl FnOnce(&Producer) -> std::result::Result<TryOutcome, WalError>,
    ) -> Res<bool> {
        let p = self.producer()?;
        self.pending.add(env, n);
        match f(p) {
            Ok(o) => {
                let taken = if o.accepted > 0 { n } else { 0 };
                self.pending.settle_try(env, n, taken, o.registered);
                Ok(o.accepted > 0)
            }
            Err(e) => {
                self.pending.undo(env, n);
                Err(Failure::from(&e))
            }
        }
    }
}

#[napi]
impl NativeLog {
    /// Appends one record (bytes are copied into the commit queue before this returns).
    /// Never blocks: returns false if the commit queue is full (nothing was taken; the
    /// completion callback is called with no outcome once there is room, and the caller
    /// retries then).
    #[napi]
    pub fn append(&self, env: Env, record: &[u8], sync: bool) -> napi::Result<bool> {
        guard(&env, || {
            self.try_enqueue(&env, 1, |p| p.try_append_many(&[record], sync))
        })
    }

    /// Appends one string record, encoded as UTF-8 (see `append`).
    #[napi]
    pub fn append_string(&mut self, env: Env, record: String, sync: bool) -> napi::Result<bool> {
        guard(&env, || {
            let mut buf = std::mem::take(&mut self.string_buf);
            buf.clear();
            buf.extend_from_slice(record.as_bytes());
            let r = self.try_enqueue(&env, 1, |p| p.try_append_many(&[&buf], sync));
            self.string_buf = buf;
            r
        })
    }

    /// Appends a tick's worth of staged entries in one crossing: `data` holds the records
    /// back to back, `lens` their lengths, `entries` one word per call (`count << 1 |
    /// sync`). Entries are taken in order until the commit queue is full; returns how
    /// many were (the rest are the caller's to retry when the completion callback is
    /// called with no outcome). A thrown error carries `accepted`, the number of entries
    /// accepted before it.
    #[napi]
    pub fn append_packed(
        &self,
        env: Env,
        data: &[u8],
        lens: &[u32],
        entries: &[u32],
    ) -> napi::Result<u32> {
        guard(&env, || {
            let p = self.producer()?;
            let records: i64 = entries.iter().map(|e| i64::from(e >> 1)).sum();
            self.pending.add(&env, records);
            match p.try_append_packed(data, lens, entries) {
                Ok(o) => {
                    let taken: i64 = entries[..o.accepted]
                        .iter()
                        .map(|e| i64::from(e >> 1))
                        .sum();
                    self.pending.settle_try(&env, records, taken, o.registered);
                    Ok(o.accepted as u32)
                }
                Err((accepted, e)) => {
                    let not_accepted: i64 =
                        entries[accepted..].iter().map(|e| i64::from(e >> 1)).sum();
                    self.pending.undo(&env, not_accepted);
                    Err(Failure::from(&e).with_accepted(accepted))
                }
            }
        })
    }

    /// Appends records atomically, with contiguous sequence numbers (see `append` for
    /// the return value).
    #[napi]
    pub fn append_many(&self, env: Env, records: Vec<&[u8]>, sync: bool) -> napi::Result<bool> {
        guard(&env, || {
            if records.is_empty() {
                return Ok(true);
            }
            self.try_enqueue(&env, records.len() as i64, |p| {
                p.try_append_many(&records, sync)
            })
        })
    }

    /// Requests an fdatasync covering everything appended so far; completes (in order with
    /// this handle's appends) with the last durable sequence number (see `append` for the
    /// return value).
    #[napi]
    pub fn sync(&self, env: Env) -> napi::Result<bool> {
        guard(&env, || self.try_enqueue(&env, 1, |p| p.try_sync()))
    }

    /// Largest record payload accepted.
    #[napi(getter)]
    pub fn max_record_bytes(&self) -> u32 {
        self.max_record_bytes
    }

    /// What recovery found.
    #[napi(getter)]
    pub fn recovery(&self) -> NativeLogRecovery {
        self.recovery.clone()
    }

    /// First readable sequence number (0 when empty).
    #[napi(getter)]
    pub fn first_seq(&self, env: Env) -> napi::Result<f64> {
        guard(&env, || Ok(self.engine()?.wal.first_seq() as f64))
    }

    /// Last durable sequence number (0 when empty).
    #[napi(getter)]
    pub fn last_seq(&self, env: Env) -> napi::Result<f64> {
        guard(&env, || Ok(self.engine()?.wal.last_seq() as f64))
    }

    /// Statistics snapshot.
    #[napi]
    pub fn stats(&self, env: Env) -> napi::Result<NativeLogStats> {
        guard(&env, || Ok(self.engine()?.wal.stats().into()))
    }

    /// A read cursor starting at `from` (0 = the first record).
    #[napi]
    pub fn cursor(&self, env: Env, from: f64) -> napi::Result<NativeCursor> {
        guard(&env, || {
            let engine = self.engine()?.clone();
            let cursor = engine
                .wal
                .cursor(seq_arg("from", from)?)
                .map_err(|e| Failure::from(&e))?;
            Ok(NativeCursor {
                engine,
                cursor: Arc::new(Mutex::new(cursor)),
                strand: worker::Strand::default(),
            })
        })
    }

    /// Resolves with the durable watermark once `seq` is durable, or with -1 when the log
    /// closes or `cancelWait(token)` is called.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn wait_for<'env>(
        &self,
        env: &'env Env,
        seq: f64,
        token: u32,
    ) -> napi::Result<Object<'env>> {
        guard(env, || {
            let seq = seq_arg("seq", seq)?;
            let engine = self.engine()?.clone();
            let (deferred, promise) = env.create_deferred::<f64, _>()?;
            let id = engine.wal.wait_for(
                seq,
                Box::new(move |o| {
                    let v = match o {
                        WaitOutcome::Ready(s) => s as f64,
                        _ => -1.0,
                    };
                    deferred.resolve(move |_| Ok(v));
                }),
            );
            if id != 0 {
                let mut w = self.waits.lock().unwrap_or_else(|e| e.into_inner());
                w.retain(|(t, _)| *t != token);
                w.push((token, id));
            }
            Ok(promise)
        })
    }

    /// Cancels a pending `waitFor` (it resolves with -1).
    #[napi]
    pub fn cancel_wait(&self, env: Env, token: u32) -> napi::Result<()> {
        guard(&env, || {
            let id = {
                let mut w = self.waits.lock().unwrap_or_else(|e| e.into_inner());
                w.iter()
                    .position(|(t, _)| *t == token)
                    .map(|i| w.swap_remove(i).1)
            };
            if let (Some(id), Some(engine)) = (id, &self.engine) {
                engine.wal.cancel_wait(id);
            }
            Ok(())
        })
    }

    /// Deletes whole segments below `seq`; resolves with how many.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn truncate_before<'env>(&self, env: &'env Env, seq: f64) -> napi::Result<Object<'env>> {
        guard(env, || {
            let seq = seq_arg("seq", seq)?;
            let engine = self.engine()?.clone();
            let slot = worker::read_slot()?;
            let (deferred, promise) = env.create_deferred::<u32, Settle<u32>>()?;
            slot.submit(move || {
                let r = engine.wal.truncate_before(seq);
                settle(
                    deferred,
                    r.map(|n| Box::new(move |_| Ok(n as u32)) as Settle<u32>)
                        .map_err(|e| Failure::from(&e)),
                );
            });
            Ok(promise)
        })
    }

    /// Releases this handle: unregisters its producer (the façade first waits for its
    /// pending completions), cancels its waits, and closes the engine if this was the last
    /// handle (draining and joining its threads). Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> napi::Result<Object<'env>> {
        guard(env, || {
            let (deferred, promise) = env.create_deferred::<(), Settle<()>>()?;
            let producer = self.producer.take();
            let engine = self.engine.take();
            let waits: Vec<(u32, u64)> =
                std::mem::take(&mut *self.waits.lock().unwrap_or_else(|e| e.into_inner()));
            let Some(engine) = engine else {
                deferred.resolve(Box::new(|_| Ok(())));
                return Ok(promise);
            };
            for (_, id) in waits {
                engine.wal.cancel_wait(id);
            }
            worker::spawn_named("uringdb-close", move || {
                drop(producer);
                let r = LOGS.release(engine);
                settle(
                    deferred,
                    r.map(|()| Box::new(|_| Ok(())) as Settle<()>)
                        .map_err(|e| Failure::from(&e)),
                );
            });
            Ok(promise)
        })
    }
}

impl Drop for NativeLog {
    /// A handle that was never closed (garbage-collected, or its worker thread was
    /// terminated) still gives back its share of the engine, so the directory does not stay
    /// locked for the life of the process. Closing can join the engine's threads, so it
    /// happens on its own thread, not in the finalizer.
    fn drop(&mut self) {
        let producer = self.producer.take();
        if let Some(engine) = self.engine.take() {
            worker::spawn_named("uringdb-close", move || {
                drop(producer);
                if let Err(e) = LOGS.release(engine) {
                    eprintln!("uringdb: closing an abandoned log failed: {e}");
                }
            });
        }
    }
}

/// A sequential reader.
#[napi]
pub struct NativeCursor {
    engine: Engine,
    cursor: Arc<Mutex<ReadCursor>>,
    /// The cursor's reads run one at a time, in call order, on the reader pool.
    strand: worker::Strand,
}

#[napi]
impl NativeCursor {
    /// Reads up to `maxRecords` records / `maxBytes` bytes below `end` (exclusive; 0 = no
    /// bound), off the JS thread. An empty result means "nothing more right now".
    #[napi(ts_return_type = "Promise<ReadResult>")]
    pub fn read<'env>(
        &self,
        env: &'env Env,
        end: f64,
        max_records: u32,
        max_bytes: u32,
    ) -> napi::Result<Object<'env>> {
        guard(env, || {
            let end = match seq_arg("to", end)? {
                0 => u64::MAX,
                n => n,
            };
            let slot = worker::read_slot()?;
            let (deferred, promise) = env.create_deferred::<ReadResult, _>()?;
            let engine = self.engine.clone();
            let cursor = self.cursor.clone();
            slot.submit_in(&self.strand, move || {
                let r = {
                    let mut c = cursor.lock().unwrap_or_else(|e| e.into_inner());
                    engine.wal.read(
                        &mut c,
                        end,
                        max_records.max(1) as usize,
                        max_bytes.max(1) as usize,
                    )
                };
                let r = r.map_err(|e| Failure::from(&e));
                deferred.resolve(move |env| {
                    outcome(&env, r).map(|batch| {
                        let mut meta = Vec::with_capacity(batch.records.len() * 3);
                        for (seq, start, len) in &batch.records {
                            meta.extend_from_slice(&[*seq as f64, *start as f64, *len as f64]);
                        }
                        ReadResult {
                            data: batch.data.into(),
                            meta: Float64Array::new(meta),
                        }
                    })
                });
            });
            Ok(promise)
        })
    }
}
