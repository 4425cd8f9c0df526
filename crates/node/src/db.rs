//! The key-value database's binding: `openDb` and `NativeDb`. Like the log's binding it
//! holds no engine logic: writes are batch payloads (the format lives in
//! `uringdb_lsm::db::batch`) handed to the engine in one crossing per tick, completions
//! come back per commit group ([`crate::completion`]), reads run on the binding's reader
//! pool (or synchronously for `getSync`), range reads come back in batches
//! ([`crate::read`]), and the engine's events come back as typed objects.

use std::path::Path;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi_derive::napi;
use uringdb_lsm::db::{Db, DbError, DbOptions, DbWriter, RangeOptions};
use uringdb_lsm::table::Compression;
use uringdb_wal::{BackendChoice, RecoveryMode};

use crate::completion::{completion_sink, CompletionArgs, Pending};
use crate::errors::{guard, outcome, panic_failure, settle, Failure, Res, Settle};
use crate::options::NativeDbOptions;
use crate::read::{bound, snapshot_of, KeepAlive, NativeBatch, NativeIterator, NativeSnapshot};
use crate::registry::{identity, Product, Registry, Shared};
use crate::stats::{db_recovery, db_stats, NativeDbEvent, NativeDbRecovery, NativeDbStats};
use crate::worker;

/// A shared open database.
pub(crate) struct DbEngine {
    pub(crate) db: Db,
}

identity!(
    /// The options every handle of one database directory must share.
    DbIdentity {
        backend: BackendChoice => "ioBackend",
        segment_bytes: u64 => "segmentBytes",
        ring_bytes: usize => "ringBytes",
        recovery: RecoveryMode => "recovery",
        memtable_bytes: usize => "memtableBytes",
        cache_bytes: usize => "cacheBytes",
        compression: Vec<Compression> => "compression",
        compaction_threads: usize => "compactionThreads",
        max_open_files: usize => "maxOpenFiles",
    }
);

impl Product for DbEngine {
    type Options = DbOptions;
    type Identity = DbIdentity;
    type Error = DbError;

    fn identity(o: &DbOptions) -> DbIdentity {
        DbIdentity {
            backend: o.wal.backend,
            segment_bytes: o.wal.segment_bytes,
            ring_bytes: o.wal.ring_bytes,
            recovery: o.wal.recovery,
            memtable_bytes: o.memtable_bytes,
            cache_bytes: o.cache_bytes,
            compression: o.compression.clone(),
            compaction_threads: o.compaction_threads,
            max_open_files: o.max_open_files,
        }
    }
    fn first_difference(a: &DbIdentity, b: &DbIdentity) -> Option<&'static str> {
        a.first_difference(b)
    }
    fn open(dir: &Path, options: DbOptions) -> std::result::Result<Self, DbError> {
        Ok(DbEngine {
            db: Db::open(dir, options)?,
        })
    }
    fn close(&self) -> std::result::Result<(), DbError> {
        self.db.close()
    }
    fn dir_error(context: String, e: std::io::Error) -> DbError {
        DbError::InvalidArgument(format!("{context}: {e}"))
    }
    fn mismatch(field: &'static str, message: String) -> DbError {
        DbError::InvalidOption { field, message }
    }
}

static DBS: Registry<DbEngine> = Registry::new();

/// A handle's share of an open database.
pub(crate) type Engine = Arc<Shared<DbEngine>>;

type EventFn = ThreadsafeFunction<NativeDbEvent, (), NativeDbEvent, Status, false, true>;

/// An open database handle, one per `openDb` call; several may share an engine.
#[napi]
pub struct NativeDb {
    engine: Option<Engine>,
    writer: Option<DbWriter>,
    pending: Pending,
    listener: Option<u64>,
    opened: bool,
    recovery: NativeDbRecovery,
}

fn closed() -> Failure {
    Failure::from(&DbError::Closed)
}

/// Opens (or joins) the database in `dir`. Completions arrive as for `openLog`; the
/// engine's events (flush, compaction, stall, error) arrive at `onEvent`.
#[napi(ts_return_type = "Promise<NativeDb>")]
pub fn open_db<'env>(
    env: &'env Env,
    dir: String,
    options: NativeDbOptions,
    #[napi(
        ts_arg_type = "(seqs: Float64Array | null, failedCount: number, error: NativeError | null, group: NativeCommitGroup | null) => void"
    )]
    on_complete: Function<CompletionArgs, ()>,
    #[napi(ts_arg_type = "(event: NativeDbEvent) => void")] on_event: Function<NativeDbEvent, ()>,
) -> napi::Result<Object<'env>> {
    guard(env, || {
        let opts = options.to_db()?;
        worker::ensure_reader_threads(opts.effective_reader_threads());
        let (sink, pending) = completion_sink(on_complete)?;
        let events: EventFn = on_event
            .build_threadsafe_function::<NativeDbEvent>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(|ctx: ThreadsafeCallContext<NativeDbEvent>| Ok(ctx.value))?;
        let events = Arc::new(events);
        let (deferred, promise) = env.create_deferred::<NativeDb, Settle<NativeDb>>()?;
        worker::spawn_named("uringdb-open", move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                DBS.acquire(Path::new(&dir), opts)
            }));
            let r = match r {
                Ok(Ok((engine, opened))) => {
                    let writer = engine.db.writer(sink);
                    let listener = engine.db.add_listener(Arc::new(move |e| {
                        events.call(e.into(), ThreadsafeFunctionCallMode::NonBlocking);
                    }));
                    let recovery = db_recovery(&engine.db, opened);
                    Ok(Box::new(move |_| {
                        Ok(NativeDb {
                            engine: Some(engine),
                            writer: Some(writer),
                            pending,
                            listener: Some(listener),
                            opened,
                            recovery,
                        })
                    }) as Settle<NativeDb>)
                }
                Ok(Err(e)) => Err(Failure::from(&e)),
                Err(p) => Err(panic_failure(&*p)),
            };
            settle(deferred, r);
        });
        Ok(promise)
    })
}

impl NativeDb {
    pub(crate) fn engine(&self) -> Res<&Engine> {
        self.engine.as_ref().ok_or_else(closed)
    }

    /// Runs `job` on a thread of its own and settles the promise with its outcome.
    fn background<'env>(
        &self,
        env: &'env Env,
        name: &str,
        job: impl FnOnce(&Db) -> std::result::Result<(), DbError> + Send + 'static,
    ) -> Res<Object<'env>> {
        let engine = self.engine()?.clone();
        let (deferred, promise) = env.create_deferred::<(), Settle<()>>()?;
        worker::spawn_named(name, move || {
            let r = job(&engine.db);
            settle(
                deferred,
                r.map(|()| Box::new(|_| Ok(())) as Settle<()>)
                    .map_err(|e| Failure::from(&e)),
            );
        });
        Ok(promise)
    }
}

/// A prepared transaction: its operations as parallel arrays (a null value is a delete).
#[napi(object, object_from_js = false)]
pub struct NativePreparedTxn {
    /// The txid.
    pub txid: String,
    /// Milliseconds since the epoch at prepare.
    pub prepared_at: f64,
    /// The prepare record's sequence number.
    pub seq: f64,
    /// The keys.
    pub keys: Vec<Buffer>,
    /// The values (null: a delete).
    pub values: Vec<Option<Buffer>>,
    /// The streams of appends (null: a put or delete).
    pub streams: Vec<Option<String>>,
}

#[napi]
impl NativeDb {
    /// Logs a tick's writes in one crossing: `data` holds batch payloads back to back,
    /// `lens` their lengths, `syncs` one flag per payload. Taken in order until the commit
    /// queue or a write stall's queue is full — never blocking; returns how many were
    /// taken (the rest are the caller's to retry, in order, when the completion callback
    /// is called with no outcome). A thrown error carries `accepted`.
    #[napi]
    pub fn write_packed(
        &self,
        env: Env,
        data: &[u8],
        lens: &[u32],
        syncs: &[u8],
    ) -> napi::Result<u32> {
        guard(&env, || {
            let w = self.writer.as_ref().ok_or_else(closed)?;
            let n = lens.len() as i64;
            self.pending.add(&env, n);
            match w.try_write_packed(data, lens, syncs) {
                Ok(o) => {
                    self.pending
                        .settle_try(&env, n, o.accepted as i64, o.registered);
                    Ok(o.accepted as u32)
                }
                Err((i, e)) => {
                    self.pending.undo(&env, n - i as i64);
                    Err(Failure::from(&e).with_accepted(i))
                }
            }
        })
    }

    /// Reads the value of `key` synchronously (a copy), or null.
    #[napi]
    pub fn get_sync(
        &self,
        env: Env,
        key: &[u8],
        snapshot: Option<&NativeSnapshot>,
    ) -> napi::Result<Option<Buffer>> {
        guard(&env, || {
            let e = self.engine()?;
            let snap = snapshot_of(&e.db, snapshot)?;
            e.db.get_with(key, snap.as_deref(), |v| {
                v.map(|v| Buffer::from(v.to_vec()))
            })
            .map_err(|e| Failure::from(&e))
        })
    }

    /// Copies the value of `key` into `target`; returns the value's length (which may
    /// exceed `target`'s, in which case only a prefix was copied), or -1 if absent.
    #[napi]
    pub fn get_sync_into(
        &self,
        env: Env,
        key: &[u8],
        // A borrowed view, not an owned `Uint8Array`: that one creates (and deletes) a
        // reference to the array on every call.
        mut target: Uint8ArraySlice<'_>,
        snapshot: Option<&NativeSnapshot>,
    ) -> napi::Result<f64> {
        guard(&env, || {
            let e = self.engine()?;
            let snap = snapshot_of(&e.db, snapshot)?;
            let (k, t) = (key.as_ptr_range(), target.as_ptr_range());
            if (k.start as usize) < (t.end as usize) && (t.start as usize) < (k.end as usize) {
                return Err(Failure::from(&DbError::InvalidArgument(
                    "getSync: options.target overlaps the key".into(),
                )));
            }
            // SAFETY: this is a synchronous call on the JS thread: no JavaScript runs while
            // the slice lives (it is dropped before returning), so the typed array can be
            // neither detached nor written by JavaScript meanwhile; the key, the only other
            // bytes this call reads from JavaScript, does not overlap it (checked above).
            let t: &mut [u8] = unsafe { target.as_mut() };
            e.db.get_with(key, snap.as_deref(), |v| match v {
                Some(v) => {
                    let n = v.len().min(t.len());
                    t[..n].copy_from_slice(&v[..n]);
                    v.len() as f64
                }
                None => -1.0,
            })
            .map_err(|e| Failure::from(&e))
        })
    }

    /// Reads several keys off the JS thread: `keys` back to back, `lens` their lengths.
    /// Resolves with the values back to back and per key (0, value length or -1).
    #[napi(ts_return_type = "Promise<NativeBatch>")]
    pub fn get_many<'env>(
        &self,
        env: &'env Env,
        keys: &[u8],
        lens: &[u32],
        snapshot: Option<&NativeSnapshot>,
    ) -> napi::Result<Object<'env>> {
        guard(env, || {
            let engine = self.engine()?.clone();
            // Without an explicit snapshot the reads see the state as of this call (taken
            // here, on the JS thread), not whenever the reader thread gets to them.
            let snap = match snapshot_of(&engine.db, snapshot)? {
                Some(s) => s,
                None => Arc::new(engine.db.snapshot()),
            };
            let slot = worker::read_slot()?;
            let keys = keys.to_vec();
            let lens = lens.to_vec();
            let (deferred, promise) = env.create_deferred::<NativeBatch, _>()?;
            slot.submit(move || {
                let mut data = Vec::new();
                let mut out = Vec::with_capacity(lens.len() * 2);
                let mut at = 0usize;
                let mut err = None;
                for &l in &lens {
                    let Some(k) = keys.get(at..at + l as usize) else {
                        err = Some(DbError::InvalidArgument("getMany: bad key lengths".into()));
                        break;
                    };
                    at += l as usize;
                    match engine.db.get_with(k, Some(&snap), |v| match v {
                        Some(v) => {
                            data.extend_from_slice(v);
                            v.len() as i32
                        }
                        None => -1,
                    }) {
                        Ok(n) => {
                            out.push(0);
                            out.push(n);
                        }
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                let r = match err {
                    None => Ok((data, out)),
                    Some(e) => Err(Failure::from(&e)),
                };
                deferred.resolve(move |env| {
                    outcome(&env, r).map(|(data, out)| NativeBatch {
                        data: data.into(),
                        lens: Int32Array::new(out),
                        done: true,
                    })
                });
            });
            Ok(promise)
        })
    }

    /// Registers a snapshot of the current state.
    #[napi]
    pub fn snapshot(&self, env: Env) -> napi::Result<NativeSnapshot> {
        guard(&env, || {
            let e = self.engine()?;
            Ok(NativeSnapshot {
                pin: Some(Arc::new(e.db.snapshot())),
            })
        })
    }

    /// A range iterator (bounds absent = unbounded; `limit` < 0 = none; `values` false:
    /// keys only).
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn iterator(
        &self,
        env: Env,
        lower: Option<&[u8]>,
        lower_inclusive: bool,
        upper: Option<&[u8]>,
        upper_inclusive: bool,
        reverse: bool,
        limit: f64,
        values: bool,
        snapshot: Option<&NativeSnapshot>,
    ) -> napi::Result<NativeIterator> {
        guard(&env, || {
            let engine = self.engine()?.clone();
            let snap = snapshot_of(&engine.db, snapshot)?;
            let opts = RangeOptions {
                lower: bound(lower, lower_inclusive),
                upper: bound(upper, upper_inclusive),
                reverse,
                limit: (limit >= 0.0 && limit.is_finite()).then_some(limit as u64),
                values,
            };
            let it = engine.db.iter(opts, snap.as_deref());
            Ok(NativeIterator {
                engine: Mutex::new(Some(engine as KeepAlive)),
                it: Arc::new(Mutex::new(Some(it))),
                strand: worker::Strand::default(),
                fill: Mutex::default(),
            })
        })
    }

    /// Flushes the memtable; resolves when it is in a table.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn flush<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        guard(env, || {
            self.background(env, "uringdb-flush-wait", Db::flush)
        })
    }

    /// Compacts tables overlapping `[lo, hi]` into the bottom level.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn compact_range<'env>(
        &self,
        env: &'env Env,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
    ) -> napi::Result<Object<'env>> {
        let lo = lo.map(<[u8]>::to_vec);
        let hi = hi.map(<[u8]>::to_vec);
        guard(env, || {
            self.background(env, "uringdb-compact-range", move |db| {
                db.compact_range(lo.as_deref(), hi.as_deref())
            })
        })
    }

    /// Throws `ERR_URINGDB_CONFLICT` if the batch payload writes a key a prepared
    /// transaction holds (called at the API, before the write is staged).
    #[napi]
    pub fn check_locks(&self, env: Env, payload: &[u8]) -> napi::Result<()> {
        guard(&env, || {
            self.engine()?
                .db
                .check_locks(payload)
                .map_err(|e| Failure::from(&e))
        })
    }

    /// Throws `ERR_URINGDB_CONFLICT` if a prepared transaction holds `key` (a put's or a
    /// delete's, checked at the API).
    #[napi]
    pub fn check_key(&self, env: Env, key: &[u8]) -> napi::Result<()> {
        guard(&env, || {
            self.engine()?
                .db
                .check_key(key)
                .map_err(|e| Failure::from(&e))
        })
    }

    /// A one-element Uint32Array that reads 1 while a prepared transaction locks any key of
    /// this database, 0 otherwise (updated by the engine, in place), so that `put`, `del` and
    /// `batch` call `checkKey` / `checkLocks` only then; null if this runtime refuses external
    /// buffers (the façade then always checks).
    #[napi(ts_return_type = "Uint32Array | null")]
    pub fn lock_flag<'env>(&self, env: &'env Env) -> napi::Result<Option<Uint32ArraySlice<'env>>> {
        guard(env, || {
            let flag = Arc::new(std::sync::atomic::AtomicU32::new(1));
            self.engine()?.db.watch_locks(&flag);
            let ptr = flag.as_ptr();
            // SAFETY: `ptr` is the 4 aligned bytes of the AtomicU32 inside `flag`'s
            // allocation, which the Arc clone moved into the finalize hint keeps alive until
            // V8 collects the array (then the finalizer drops it); each call allocates its
            // own flag, so no memory is registered twice. JavaScript only reads it (aligned
            // 32-bit loads), while the engine stores to it atomically.
            let a = unsafe {
                Uint32ArraySlice::from_external(env, ptr, 1, flag.clone(), |_, f| drop(f))
            }?;
            // A runtime without external buffers copied it: the copy would never change.
            if a.as_ptr() != ptr.cast_const() {
                return Ok(None);
            }
            Ok(Some(a))
        })
    }

    /// Reserves a prepare record's txid and locks its keys, synchronously (then the record
    /// goes through `writePacked`): throws `ERR_URINGDB_TXN_EXISTS` or `ERR_URINGDB_CONFLICT`.
    #[napi]
    pub fn reserve_prepare(&self, env: Env, payload: &[u8]) -> napi::Result<()> {
        guard(&env, || {
            self.engine()?
                .db
                .reserve_prepare(payload)
                .map_err(|e| Failure::from(&e))
        })
    }

    /// Undoes `reservePrepare` for a record that did not reach the log.
    #[napi]
    pub fn abandon_prepare(&self, env: Env, txid: String) -> napi::Result<()> {
        guard(&env, || {
            self.engine()?.db.abandon_prepare(&txid);
            Ok(())
        })
    }

    /// Marks `txid` as finishing before its commit or rollback record is written: throws
    /// `ERR_URINGDB_TXN_NOT_FOUND` if it is not prepared (or already finishing).
    #[napi]
    pub fn begin_finish(&self, env: Env, txid: String) -> napi::Result<()> {
        guard(&env, || {
            self.engine()?
                .db
                .begin_finish(&txid)
                .map_err(|e| Failure::from(&e))
        })
    }

    /// Undoes `beginFinish` for a record that did not reach the log.
    #[napi]
    pub fn abandon_finish(&self, env: Env, txid: String) -> napi::Result<()> {
        guard(&env, || {
            self.engine()?.db.abandon_finish(&txid);
            Ok(())
        })
    }

    /// The prepared transactions, in log order.
    #[napi]
    pub fn prepared_transactions(&self, env: Env) -> napi::Result<Vec<NativePreparedTxn>> {
        guard(&env, || {
            Ok(self
                .engine()?
                .db
                .prepared_transactions()
                .into_iter()
                .map(|t| NativePreparedTxn {
                    txid: t.txid,
                    prepared_at: t.prepared_at as f64,
                    seq: t.seq as f64,
                    keys: t.ops.iter().map(|o| o.key.clone().into()).collect(),
                    streams: t.ops.iter().map(|o| o.stream.clone()).collect(),
                    values: t
                        .ops
                        .into_iter()
                        .map(|o| o.value.map(Buffer::from))
                        .collect(),
                })
                .collect())
        })
    }

    /// Statistics now.
    #[napi]
    pub fn stats(&self, env: Env) -> napi::Result<NativeDbStats> {
        guard(&env, || Ok(db_stats(&self.engine()?.db)))
    }

    /// What open found.
    #[napi(getter)]
    pub fn recovery(&self) -> NativeDbRecovery {
        self.recovery.clone()
    }

    /// Whether this handle opened the engine (false: joined one already open).
    #[napi(getter)]
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// Largest batch payload in bytes.
    #[napi(getter)]
    pub fn max_batch_bytes(&self, env: Env) -> napi::Result<f64> {
        guard(&env, || Ok(self.engine()?.db.max_batch_bytes() as f64))
    }

    /// Releases this handle (closing the engine if it was the last). Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> napi::Result<Object<'env>> {
        guard(env, || {
            let (deferred, promise) = env.create_deferred::<(), Settle<()>>()?;
            let Some(engine) = self.engine.take() else {
                deferred.resolve(Box::new(|_| Ok(())));
                return Ok(promise);
            };
            let writer = self.writer.take();
            let listener = self.listener.take();
            worker::spawn_named("uringdb-close", move || {
                let r = release(engine, writer, listener);
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

/// Gives back a handle's share: its listener, its writer, then the engine.
fn release(
    engine: Engine,
    writer: Option<DbWriter>,
    listener: Option<u64>,
) -> std::result::Result<(), DbError> {
    if let Some(id) = listener {
        engine.db.remove_listener(id);
    }
    drop(writer);
    DBS.release(engine)
}

impl Drop for NativeDb {
    /// A handle never closed (garbage-collected, or its worker terminated) still gives
    /// back its share of the engine, on its own thread.
    fn drop(&mut self) {
        let writer = self.writer.take();
        let listener = self.listener.take();
        if let Some(engine) = self.engine.take() {
            worker::spawn_named("uringdb-close", move || {
                if let Err(e) = release(engine, writer, listener) {
                    eprintln!("uringdb: closing an abandoned database failed: {e}");
                }
            });
        }
    }
}
