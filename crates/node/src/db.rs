//! The key-value database's binding: `openDb` and `NativeDb`. Like the log's binding it
//! holds no engine logic: writes are batch payloads (the format lives in
//! `uringdb_lsm::db::batch`) handed to the engine in one crossing per tick, completions
//! come back per commit group, reads run on the binding's reader thread (or synchronously
//! for `getSync`), range reads come back in batches.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi_derive::napi;
use uringdb_lsm::db::{Db, DbError, DbIter, DbOptions, DbWriter, RangeOptions, SnapshotPin};
use uringdb_lsm::table::Compression;

use crate::errors::{self, coded, guard};
use crate::{completion_sink, to_wal_options, CompletionArgs, NativeLogOptions};

/// Options as the façade passes them (validated by its schema; the engine validates again).
#[napi(object)]
pub struct NativeDbOptions {
    /// The log's options.
    pub log: NativeLogOptions,
    /// Memtable flush trigger.
    pub memtable_bytes: f64,
    /// Immutable memtables at which writes stop.
    pub max_immutable_memtables: f64,
    /// Level-0 compaction trigger.
    pub l0_compaction_trigger: f64,
    /// Level-0 slowdown trigger.
    pub l0_slowdown_trigger: f64,
    /// Level-0 stop trigger.
    pub l0_stop_trigger: f64,
    /// Level-1 target size.
    pub level_base_bytes: f64,
    /// Level growth factor.
    pub level_multiplier: f64,
    /// Compaction output file size.
    pub target_file_bytes: f64,
    /// Per level: 'none' | 'lz4' | 'zstd'.
    pub compression: Vec<String>,
    /// Bloom bits per key.
    pub bloom_bits_per_key: f64,
    /// Data block size.
    pub block_bytes: f64,
    /// Block cache size.
    pub cache_bytes: f64,
    /// Compaction threads.
    pub compaction_threads: f64,
    /// Background write rate limit (0 = none).
    pub compaction_rate_bytes_per_sec: f64,
    /// Table files kept open at most.
    pub max_open_files: f64,
}

fn db_err(e: &DbError) -> napi::Error {
    napi::Error::from_reason(errors::db_to_json(e))
}

fn closed() -> napi::Error {
    db_err(&DbError::Closed)
}

fn to_db_options(o: &NativeDbOptions) -> napi::Result<DbOptions> {
    let wal = to_wal_options(&o.log)?;
    let invalid =
        |field: &'static str, message: String| db_err(&DbError::InvalidOption { field, message });
    let int = |field: &'static str, v: f64| -> napi::Result<u64> {
        if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
            Ok(v as u64)
        } else {
            Err(invalid(
                field,
                format!("must be a non-negative integer, got {v}"),
            ))
        }
    };
    let mut compression = Vec::new();
    for c in &o.compression {
        compression.push(match c.as_str() {
            "none" => Compression::None,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::ZSTD_DEFAULT,
            other => {
                return Err(invalid(
                    "compression",
                    format!("must be 'none', 'lz4' or 'zstd', got '{other}'"),
                ))
            }
        });
    }
    Ok(DbOptions {
        wal,
        memtable_bytes: int("memtableBytes", o.memtable_bytes)? as usize,
        max_immutable_memtables: int("maxImmutableMemtables", o.max_immutable_memtables)? as usize,
        l0_compaction_trigger: int("l0CompactionTrigger", o.l0_compaction_trigger)? as usize,
        l0_slowdown_trigger: int("l0SlowdownTrigger", o.l0_slowdown_trigger)? as usize,
        l0_stop_trigger: int("l0StopTrigger", o.l0_stop_trigger)? as usize,
        level_base_bytes: int("levelBaseBytes", o.level_base_bytes)?,
        level_multiplier: int("levelMultiplier", o.level_multiplier)?,
        target_file_bytes: int("targetFileBytes", o.target_file_bytes)?,
        compression,
        bloom_bits_per_key: int("bloomBitsPerKey", o.bloom_bits_per_key)? as u32,
        block_bytes: int("blockBytes", o.block_bytes)? as usize,
        cache_bytes: int("cacheBytes", o.cache_bytes)? as usize,
        compaction_threads: int("compactionThreads", o.compaction_threads)? as usize,
        rate_limit_bytes_per_sec: int(
            "compactionRateBytesPerSec",
            o.compaction_rate_bytes_per_sec,
        )?,
        max_open_files: int("maxOpenFiles", o.max_open_files)? as usize,
        // Engine-internal knobs (the manifest rewrite threshold) keep their defaults.
        ..DbOptions::default()
    })
}

/// One open database per directory per process, shared by handles (main thread and
/// worker_threads); closed when the last handle closes.
struct DbEngine {
    db: Db,
    key: PathBuf,
    fingerprint: String,
    handles: AtomicUsize,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<DbEngine>>> {
    static R: OnceLock<Mutex<HashMap<PathBuf, Weak<DbEngine>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The options every handle of one directory must agree on, by name.
fn fingerprint(o: &DbOptions) -> Vec<(&'static str, String)> {
    vec![
        ("ioBackend", format!("{:?}", o.wal.backend)),
        ("segmentBytes", o.wal.segment_bytes.to_string()),
        ("ringBytes", o.wal.ring_bytes.to_string()),
        ("recovery", format!("{:?}", o.wal.recovery)),
        ("memtableBytes", o.memtable_bytes.to_string()),
        ("cacheBytes", o.cache_bytes.to_string()),
        ("compression", format!("{:?}", o.compression)),
        ("compactionThreads", o.compaction_threads.to_string()),
        ("maxOpenFiles", o.max_open_files.to_string()),
    ]
}

fn acquire(dir: &Path, opts: DbOptions) -> std::result::Result<(Arc<DbEngine>, bool), DbError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| DbError::InvalidArgument(format!("creating {}: {e}", dir.display())))?;
    let key = std::fs::canonicalize(dir)
        .map_err(|e| DbError::InvalidArgument(format!("resolving {}: {e}", dir.display())))?;
    let fp = fingerprint(&opts);
    let fp_s = format!("{fp:?}");
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(engine) = reg.get(&key).and_then(Weak::upgrade) {
        if engine.fingerprint != fp_s {
            let field = fp
                .iter()
                .find(|(name, v)| {
                    !engine
                        .fingerprint
                        .contains(&format!("(\"{name}\", \"{v}\")"))
                })
                .map_or("options", |(n, _)| n);
            return Err(DbError::InvalidOption {
                field,
                message: format!(
                    "{} is already open in this process with a different {field}; every handle of one directory must use the same engine options",
                    dir.display()
                ),
            });
        }
        engine.handles.fetch_add(1, Ordering::Relaxed);
        return Ok((engine, false));
    }
    let db = Db::open(&key, opts)?;
    let engine = Arc::new(DbEngine {
        db,
        key: key.clone(),
        fingerprint: fp_s,
        handles: AtomicUsize::new(1),
    });
    reg.insert(key, Arc::downgrade(&engine));
    Ok((engine, true))
}

fn release(engine: Arc<DbEngine>) -> std::result::Result<(), DbError> {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if engine.handles.fetch_sub(1, Ordering::Relaxed) == 1 {
        reg.remove(&engine.key);
        engine.db.close()
    } else {
        Ok(())
    }
}

type EventFn =
    ThreadsafeFunction<(String, String), (), FnArgs<(String, String)>, Status, false, true>;

/// An open database handle, one per `openDb` call; several may share an engine.
#[napi]
pub struct NativeDb {
    engine: Option<Arc<DbEngine>>,
    writer: Option<DbWriter>,
    pending: Arc<AtomicI64>,
    raw_tsfn: Arc<AtomicUsize>,
    listener: Option<u64>,
    opened: bool,
    recovery_json: String,
}

fn recovery_json(db: &Db, opened: bool) -> String {
    let r = db.recovery();
    let w = db.wal_recovery();
    let p = db.probe();
    format!(
        "{{\"opened\":{opened},\"created\":{},\"flushedSeq\":{},\"replayedRecords\":{},\"tables\":{},\"orphansRemoved\":{},\"manifestEdits\":{},\"manifestTornBytes\":{},\"logSegments\":{},\"logTruncatedBytes\":{},\"lastSeq\":{},\"durationUs\":{},\"backend\":{},\"fallbackReason\":{}}}",
        r.created,
        r.flushed_seq,
        r.replayed_records,
        r.tables,
        r.orphans_removed,
        r.manifest_edits,
        r.manifest_torn_bytes,
        w.segments,
        w.truncated_bytes,
        db.visible_seq(),
        r.duration.as_micros(),
        errors::json_str(p.backend.as_str()),
        p.fallback_reason
            .as_deref()
            .map_or("null".to_string(), errors::json_str),
    )
}

/// Opens (or joins) the database in `dir`.
#[napi(ts_return_type = "Promise<NativeDb>")]
pub fn open_db<'env>(
    env: &'env Env,
    dir: String,
    options: NativeDbOptions,
    #[napi(
        ts_arg_type = "(seqs: Float64Array | null, failedCount: number, errorJson: string | null, group: Float64Array | null) => void"
    )]
    on_complete: Function<CompletionArgs, ()>,
    #[napi(ts_arg_type = "(kind: string, json: string) => void")] on_event: Function<
        (String, String),
        (),
    >,
) -> napi::Result<Object<'env>> {
    guard(|| {
        let opts = to_db_options(&options)?;
        let (sink, raw_tsfn) = completion_sink(on_complete)?;
        let events: EventFn = on_event
            .build_threadsafe_function::<(String, String)>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(|ctx: ThreadsafeCallContext<(String, String)>| {
                // Two arguments (kind, json), not one array.
                Ok(FnArgs::from(ctx.value))
            })?;
        let events = Arc::new(events);
        let (deferred, promise) = env.create_deferred::<NativeDb, _>()?;
        crate::worker::spawn_named("uringdb-open", move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                acquire(Path::new(&dir), opts)
            }));
            match r {
                Ok(Ok((engine, opened))) => {
                    let writer = engine.db.writer(sink.clone());
                    let ev = events.clone();
                    let listener = engine.db.add_listener(Arc::new(move |e| {
                        ev.call(
                            (e.kind.to_string(), e.json.clone()),
                            ThreadsafeFunctionCallMode::NonBlocking,
                        );
                    }));
                    let pending = sink.pending.clone();
                    drop(sink);
                    let recovery_json = recovery_json(&engine.db, opened);
                    deferred.resolve(move |_| {
                        Ok(NativeDb {
                            engine: Some(engine),
                            writer: Some(writer),
                            pending,
                            raw_tsfn,
                            listener: Some(listener),
                            opened,
                            recovery_json,
                        })
                    });
                }
                Ok(Err(e)) => deferred.reject(db_err(&e)),
                Err(p) => deferred.reject(coded(
                    "ERR_URINGDB_PANIC",
                    &format!(
                        "internal error (a Rust panic was caught): {}",
                        errors::panic_message(&*p)
                    ),
                )),
            }
        });
        Ok(promise)
    })
}

/// A snapshot handle.
#[napi]
pub struct NativeSnapshot {
    pin: Option<Arc<SnapshotPin>>,
}

#[napi]
impl NativeSnapshot {
    /// Releases the snapshot (idempotent).
    #[napi]
    pub fn release(&mut self) {
        self.pin = None;
    }

    /// The snapshot's sequence number.
    #[napi(getter)]
    pub fn seq(&self) -> f64 {
        self.pin.as_ref().map_or(-1.0, |p| p.seq() as f64)
    }
}

fn snapshot_of(db: &Db, s: Option<&NativeSnapshot>) -> napi::Result<Option<Arc<SnapshotPin>>> {
    match s {
        None => Ok(None),
        Some(s) => match &s.pin {
            Some(p) if !db.owns(p) => Err(db_err(&DbError::InvalidArgument(
                "the snapshot belongs to another database".into(),
            ))),
            Some(p) => Ok(Some(p.clone())),
            None => Err(db_err(&DbError::InvalidArgument(
                "the snapshot was released".into(),
            ))),
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

/// A range iterator handle.
#[napi]
pub struct NativeIterator {
    /// Keeps the engine alive while the iterator is open; dropped by `close`, so that a
    /// closed iterator object does not hold the database's files until it is collected.
    engine: Mutex<Option<Arc<DbEngine>>>,
    it: Arc<Mutex<Option<DbIter>>>,
}

#[napi]
impl NativeIterator {
    /// Fetches up to `maxEntries` entries (about `maxBytes`), off the JS thread.
    #[napi(ts_return_type = "Promise<NativeBatch>")]
    pub fn next_batch<'env>(
        &self,
        env: &'env Env,
        max_entries: u32,
        max_bytes: u32,
    ) -> napi::Result<Object<'env>> {
        guard(|| {
            let (deferred, promise) = env.create_deferred::<NativeBatch, _>()?;
            let it = self.it.clone();
            let _engine = self
                .engine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            crate::worker::submit(move || {
                let r = {
                    let mut g = it.lock().unwrap_or_else(|e| e.into_inner());
                    match g.as_mut() {
                        Some(it) => {
                            it.next_batch(max_entries.max(1) as usize, max_bytes.max(1) as usize)
                        }
                        None => Err(DbError::InvalidArgument("the iterator is closed".into())),
                    }
                };
                drop(_engine);
                match r {
                    Ok(b) => deferred.resolve(move |_| {
                        let lens: Vec<i32> = b.lens.iter().map(|&l| l as i32).collect();
                        Ok(NativeBatch {
                            data: b.data.into(),
                            lens: Int32Array::new(lens),
                            done: b.done,
                        })
                    }),
                    Err(e) => deferred.reject(db_err(&e)),
                }
            });
            Ok(promise)
        })
    }

    /// Synchronous variant of `nextBatch` (for small batches on hot paths).
    #[napi]
    pub fn next_batch_sync(&self, max_entries: u32, max_bytes: u32) -> napi::Result<NativeBatch> {
        guard(|| {
            let mut g = self.it.lock().unwrap_or_else(|e| e.into_inner());
            let it = g.as_mut().ok_or_else(|| {
                db_err(&DbError::InvalidArgument("the iterator is closed".into()))
            })?;
            let b = it
                .next_batch(max_entries.max(1) as usize, max_bytes.max(1) as usize)
                .map_err(|e| db_err(&e))?;
            let lens: Vec<i32> = b.lens.iter().map(|&l| l as i32).collect();
            Ok(NativeBatch {
                data: b.data.into(),
                lens: Int32Array::new(lens),
                done: b.done,
            })
        })
    }

    /// Repositions at `target` (within the range).
    #[napi]
    pub fn seek(&self, target: &[u8]) -> napi::Result<()> {
        guard(|| {
            if let Some(it) = self.it.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                it.seek(target);
            }
            Ok(())
        })
    }

    /// Releases the iterator's pinned state (idempotent).
    #[napi]
    pub fn close(&self) {
        self.it.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.engine.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn bound(v: Option<&[u8]>, inclusive: bool) -> Bound<Vec<u8>> {
    match v {
        None => Bound::Unbounded,
        Some(k) if inclusive => Bound::Included(k.to_vec()),
        Some(k) => Bound::Excluded(k.to_vec()),
    }
}

impl NativeDb {
    fn engine(&self) -> napi::Result<&Arc<DbEngine>> {
        self.engine.as_ref().ok_or_else(closed)
    }

    fn add_pending(&self, env: &Env, n: i64) {
        crate::add_pending(env, &self.pending, &self.raw_tsfn, n);
    }

    fn undo_pending(&self, env: &Env, n: i64) {
        crate::undo_pending(env, &self.pending, &self.raw_tsfn, n);
    }
}

#[napi]
impl NativeDb {
    /// Logs a tick's writes in one crossing: `data` holds batch payloads back to back,
    /// `lens` their lengths, `syncs` one flag per payload. Accepted in order; on an error
    /// the thrown error's JSON carries `accepted`.
    #[napi]
    pub fn write_packed(
        &self,
        env: Env,
        data: &[u8],
        lens: &[u32],
        syncs: &[u8],
    ) -> napi::Result<()> {
        guard(|| {
            let w = self.writer.as_ref().ok_or_else(closed)?;
            let n = lens.len();
            if syncs.len() != n {
                return Err(db_err(&DbError::InvalidArgument(
                    "writePacked: lens and syncs differ in length".into(),
                )));
            }
            self.add_pending(&env, n as i64);
            let mut at = 0usize;
            for (i, (&len, &sync)) in lens.iter().zip(syncs).enumerate() {
                let end = at + len as usize;
                let r = match data.get(at..end) {
                    Some(p) => w.write(p, sync != 0),
                    None => Err(DbError::InvalidArgument(
                        "writePacked: lengths run past the data".into(),
                    )),
                };
                if let Err(e) = r {
                    self.undo_pending(&env, (n - i) as i64);
                    let json = errors::db_to_json(&e);
                    return Err(napi::Error::from_reason(format!(
                        "{},\"accepted\":{i}}}",
                        &json[..json.len() - 1]
                    )));
                }
                at = end;
            }
            Ok(())
        })
    }

    /// Reads the value of `key` synchronously (a copy), or null.
    #[napi]
    pub fn get_sync(
        &self,
        key: &[u8],
        snapshot: Option<&NativeSnapshot>,
    ) -> napi::Result<Option<Buffer>> {
        guard(|| {
            let e = self.engine()?;
            let snap = snapshot_of(&e.db, snapshot)?;
            e.db.get_with(key, snap.as_deref(), |v| {
                v.map(|v| Buffer::from(v.to_vec()))
            })
            .map_err(|e| db_err(&e))
        })
    }

    /// Copies the value of `key` into `target`; returns the value's length (which may
    /// exceed `target`'s, in which case only a prefix was copied), or -1 if absent.
    #[napi]
    pub fn get_sync_into(
        &self,
        key: &[u8],
        mut target: Uint8Array,
        snapshot: Option<&NativeSnapshot>,
    ) -> napi::Result<f64> {
        guard(|| {
            let e = self.engine()?;
            let snap = snapshot_of(&e.db, snapshot)?;
            // SAFETY: this is a synchronous call on the JS thread: no JavaScript runs while
            // the slice lives (it is dropped before returning), so the typed array can be
            // neither detached nor written by JavaScript meanwhile, and nothing else in this
            // call aliases its bytes.
            let t: &mut [u8] = unsafe { target.as_mut() };
            e.db.get_with(key, snap.as_deref(), |v| match v {
                Some(v) => {
                    let n = v.len().min(t.len());
                    t[..n].copy_from_slice(&v[..n]);
                    v.len() as f64
                }
                None => -1.0,
            })
            .map_err(|e| db_err(&e))
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
        guard(|| {
            let engine = self.engine()?.clone();
            // Without an explicit snapshot the reads see the state as of this call (taken
            // here, on the JS thread), not whenever the reader thread gets to them.
            let snap = match snapshot_of(&engine.db, snapshot)? {
                Some(s) => s,
                None => Arc::new(engine.db.snapshot()),
            };
            let keys = keys.to_vec();
            let lens = lens.to_vec();
            let (deferred, promise) = env.create_deferred::<NativeBatch, _>()?;
            crate::worker::submit(move || {
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
                match err {
                    None => deferred.resolve(move |_| {
                        Ok(NativeBatch {
                            data: data.into(),
                            lens: Int32Array::new(out),
                            done: true,
                        })
                    }),
                    Some(e) => deferred.reject(db_err(&e)),
                }
            });
            Ok(promise)
        })
    }

    /// Registers a snapshot of the current state.
    #[napi]
    pub fn snapshot(&self) -> napi::Result<NativeSnapshot> {
        guard(|| {
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
        lower: Option<&[u8]>,
        lower_inclusive: bool,
        upper: Option<&[u8]>,
        upper_inclusive: bool,
        reverse: bool,
        limit: f64,
        values: bool,
        snapshot: Option<&NativeSnapshot>,
    ) -> napi::Result<NativeIterator> {
        guard(|| {
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
                engine: Mutex::new(Some(engine)),
                it: Arc::new(Mutex::new(Some(it))),
            })
        })
    }

    /// Flushes the memtable; resolves when it is in a table.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn flush<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        guard(|| {
            let engine = self.engine()?.clone();
            let (deferred, promise) = env.create_deferred::<(), fn(Env) -> napi::Result<()>>()?;
            crate::worker::spawn_named("uringdb-flush-wait", move || match engine.db.flush() {
                Ok(()) => deferred.resolve(|_| Ok(())),
                Err(e) => deferred.reject(db_err(&e)),
            });
            Ok(promise)
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
        guard(|| {
            let engine = self.engine()?.clone();
            let lo = lo.map(<[u8]>::to_vec);
            let hi = hi.map(<[u8]>::to_vec);
            let (deferred, promise) = env.create_deferred::<(), fn(Env) -> napi::Result<()>>()?;
            crate::worker::spawn_named("uringdb-compact-range", move || {
                match engine.db.compact_range(lo.as_deref(), hi.as_deref()) {
                    Ok(()) => deferred.resolve(|_| Ok(())),
                    Err(e) => deferred.reject(db_err(&e)),
                }
            });
            Ok(promise)
        })
    }

    /// Statistics, as JSON.
    #[napi]
    pub fn stats_json(&self) -> napi::Result<String> {
        guard(|| Ok(stats_json(&self.engine()?.db)))
    }

    /// What open found (JSON).
    #[napi(getter)]
    pub fn recovery_json(&self) -> String {
        self.recovery_json.clone()
    }

    /// Whether this handle opened the engine (false: joined one already open).
    #[napi(getter)]
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// Largest batch payload in bytes.
    #[napi(getter)]
    pub fn max_batch_bytes(&self) -> napi::Result<f64> {
        Ok(self.engine()?.db.max_batch_bytes() as f64)
    }

    /// Releases this handle (closing the engine if it was the last). Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> napi::Result<Object<'env>> {
        guard(|| {
            let (deferred, promise) = env.create_deferred::<(), fn(Env) -> napi::Result<()>>()?;
            let writer = self.writer.take();
            let engine = self.engine.take();
            let listener = self.listener.take();
            let Some(engine) = engine else {
                deferred.resolve(|_| Ok(()));
                return Ok(promise);
            };
            crate::worker::spawn_named("uringdb-close", move || {
                if let Some(id) = listener {
                    engine.db.remove_listener(id);
                }
                drop(writer);
                match release(engine) {
                    Ok(()) => deferred.resolve(|_| Ok(())),
                    Err(e) => deferred.reject(db_err(&e)),
                }
            });
            Ok(promise)
        })
    }
}

impl Drop for NativeDb {
    /// A handle never closed (garbage-collected, or its worker terminated) still gives
    /// back its share of the engine, on its own thread.
    fn drop(&mut self) {
        let writer = self.writer.take();
        let listener = self.listener.take();
        if let Some(engine) = self.engine.take() {
            crate::worker::spawn_named("uringdb-close", move || {
                if let Some(id) = listener {
                    engine.db.remove_listener(id);
                }
                drop(writer);
                if let Err(e) = release(engine) {
                    eprintln!("uringdb: closing an abandoned database failed: {e}");
                }
            });
        }
    }
}

fn stats_json(db: &Db) -> String {
    let s = db.stats();
    let levels: Vec<String> = s
        .levels
        .iter()
        .map(|l| {
            format!(
                "{{\"level\":{},\"files\":{},\"bytes\":{},\"targetBytes\":{}}}",
                l.level, l.files, l.bytes, l.target_bytes
            )
        })
        .collect();
    let c = &s.cache;
    let lookups = c.hits + c.misses;
    let pct = |p: &uringdb_wal::Percentiles| {
        format!(
            "{{\"count\":{},\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{}}}",
            p.count, p.p50, p.p90, p.p99, p.p999, p.max
        )
    };
    let l = &s.log;
    format!(
        concat!(
            "{{\"levels\":[{}],\"userBytesWritten\":{},\"puts\":{},\"deletes\":{},",
            "\"flushes\":{},\"flushBytesWritten\":{},\"compactions\":{},\"compactionBytesRead\":{},",
            "\"compactionBytesWritten\":{},\"writeAmplification\":{},\"spaceAmplification\":{},",
            "\"stalls\":{},\"slowdowns\":{},\"stops\":{},\"stallUs\":{},",
            "\"cache\":{{\"hits\":{},\"misses\":{},\"hitRate\":{},\"usedBytes\":{},\"capacityBytes\":{},\"entries\":{},\"evictions\":{}}},",
            "\"bloom\":{{\"checked\":{},\"useful\":{},\"usefulRate\":{}}},",
            "\"gets\":{},\"openTableFiles\":{},\"memtableBytes\":{},\"immutableMemtables\":{},\"visibleSeq\":{},\"flushedSeq\":{},",
            "\"snapshots\":{},\"backgroundErrors\":{},\"backgroundError\":{},",
            "\"log\":{{\"backend\":{},\"fallbackReason\":{},\"appends\":{},\"appendBytes\":{},\"groups\":{},",
            "\"fsyncs\":{},\"bytesWritten\":{},\"firstSeq\":{},\"lastSeq\":{},\"segments\":{},",
            "\"queueWait\":{},\"write\":{},\"fsync\":{},\"total\":{}}}}}"
        ),
        levels.join(","),
        s.user_bytes_written,
        s.puts,
        s.deletes,
        s.flushes,
        s.flush_bytes_written,
        s.compactions,
        s.compaction_bytes_read,
        s.compaction_bytes_written,
        s.write_amplification,
        s.space_amplification,
        s.stalls,
        s.slowdowns,
        s.stops,
        s.stall_us,
        c.hits,
        c.misses,
        if lookups > 0 { c.hits as f64 / lookups as f64 } else { 0.0 },
        c.used_bytes,
        c.capacity_bytes,
        c.entries,
        c.evictions,
        s.bloom_checked,
        s.bloom_useful,
        if s.bloom_checked > 0 { s.bloom_useful as f64 / s.bloom_checked as f64 } else { 0.0 },
        s.gets,
        s.open_table_files,
        s.memtable_bytes,
        s.immutable_memtables,
        s.visible_seq,
        s.flushed_seq,
        s.snapshots,
        s.background_errors,
        s.background_error.as_deref().map_or("null".to_string(), errors::json_str),
        errors::json_str(l.backend),
        l.fallback_reason.as_deref().map_or("null".to_string(), errors::json_str),
        l.appends,
        l.append_bytes,
        l.groups,
        l.fsyncs,
        l.bytes_written,
        l.first_seq,
        l.last_seq,
        l.segments,
        pct(&l.queue_wait),
        pct(&l.write),
        pct(&l.fsync),
        pct(&l.total),
    )
}
