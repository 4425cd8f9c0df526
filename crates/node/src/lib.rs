//! The Node.js binding of uringdb (napi-rs). The only crate that knows about JavaScript:
//! it adapts the WAL's completion sinks to promises, shares one engine per directory
//! among the main thread and worker_threads, and maps errors to stable codes
//! ([`errors`]). It contains no engine logic.
//!
//! Crossings: `append` is one synchronous call that copies the record into the commit
//! queue; completions arrive as one threadsafe-function call per commit group per
//! thread, carrying that group's sequence numbers as a `Float64Array`; reads return a
//! batch of records as one `Buffer` plus a `Float64Array` of (seq, start, length).
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod db;
mod errors;
mod limits;
mod registry;
mod worker;

use errors::{coded, guard, wal as wal_err};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi_derive::napi;
use registry::Engine;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use uringdb_wal::{
    BackendChoice, CompletionSink, FaultConfig, GroupInfo, Producer, ReadCursor, RecoveryMode,
    TryOutcome, WaitOutcome, WalError, WalOptions,
};

/// Options as the façade passes them (already validated by its schema; the engine
/// validates again and names the field).
#[napi(object)]
pub struct NativeLogOptions {
    /// 'auto' | 'io_uring' | 'portable'.
    pub io_backend: String,
    /// Segment size in bytes.
    pub segment_bytes: f64,
    /// Commit queue size in bytes.
    pub ring_bytes: f64,
    /// Largest record; 0 = automatic.
    pub max_record_bytes: f64,
    /// Commit delay in microseconds.
    pub commit_delay_us: f64,
    /// 'strict' | 'tolerant'.
    pub recovery: String,
}

pub(crate) fn to_wal_options(o: &NativeLogOptions) -> napi::Result<WalOptions> {
    let invalid =
        |field: &'static str, message: String| wal_err(&WalError::InvalidOption { field, message });
    let backend = match o.io_backend.as_str() {
        "auto" => BackendChoice::Auto,
        "io_uring" => BackendChoice::IoUring,
        "portable" => BackendChoice::Portable,
        other => {
            return Err(invalid(
                "ioBackend",
                format!("must be 'auto', 'io_uring' or 'portable', got '{other}'"),
            ))
        }
    };
    let recovery = match o.recovery.as_str() {
        "strict" => RecoveryMode::Strict,
        "tolerant" => RecoveryMode::Tolerant,
        other => {
            return Err(invalid(
                "recovery",
                format!("must be 'strict' or 'tolerant', got '{other}'"),
            ))
        }
    };
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
    // Test-only hook: route I/O through the layer that drops unsynced bytes.
    let fault = match std::env::var("URINGDB_FAULT_VFS") {
        Ok(spec) if !spec.is_empty() => Some(FaultConfig::from_env_str(&spec).map_err(|e| {
            coded(
                "ERR_URINGDB_INVALID_OPTION",
                &format!("URINGDB_FAULT_VFS: {e}"),
            )
        })?),
        _ => None,
    };
    let max_record = int("maxRecordBytes", o.max_record_bytes)?;
    Ok(WalOptions {
        segment_bytes: int("segmentBytes", o.segment_bytes)?,
        ring_bytes: int("ringBytes", o.ring_bytes)? as usize,
        max_record_bytes: (max_record > 0).then_some(max_record as usize),
        commit_delay_us: int("commitDelayUs", o.commit_delay_us)?,
        recovery,
        backend,
        fault,
    })
}

/// What the committer sends to a JS thread: one message per commit group.
enum Msg {
    /// Sequence numbers, already as JS numbers (converted once, on the committer thread).
    Done(Vec<f64>, GroupInfo),
    Failed(u32, String),
    /// The queue that refused a write of this handle has room again: the façade retries
    /// its parked writes. At most one per registration (see `add_space_wait`), counted in
    /// `pending` as one so that the event loop stays alive while writes are parked.
    Space,
}

pub(crate) type CompletionArgs = (
    Option<Float64Array>,
    u32,
    Option<String>,
    Option<Float64Array>,
);
type CompletionFn = ThreadsafeFunction<Msg, (), FnArgs<CompletionArgs>, Status, false, true>;

/// Delivers one producer's completions to its JS thread.
pub(crate) struct JsSink {
    tsfn: CompletionFn,
    /// Appends issued on the JS thread and not yet delivered there. While non-zero the
    /// threadsafe function is ref'd (keeps the event loop alive); at zero it is unref'd,
    /// so an idle open log never keeps the process alive.
    pub(crate) pending: Arc<AtomicI64>,
}

impl CompletionSink for JsSink {
    fn completed(&self, seqs: &[u64], group: &GroupInfo) {
        self.tsfn.call(
            Msg::Done(seqs.iter().map(|&s| s as f64).collect(), *group),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
    fn failed(&self, count: usize, error: &WalError) {
        self.tsfn.call(
            Msg::Failed(count as u32, errors::to_json(error)),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
    fn space_available(&self) {
        self.tsfn
            .call(Msg::Space, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

fn set_ref(env: &Env, raw: napi::sys::napi_threadsafe_function, referenced: bool) {
    // SAFETY: `raw` is this thread's live threadsafe function (created on this JS thread
    // by `open_log` and released only when the owning `JsSink` drops), and `env` is this
    // thread's environment: ref/unref are called on the creating thread, as N-API
    // requires.
    unsafe {
        if referenced {
            napi::sys::napi_ref_threadsafe_function(env.raw(), raw);
        } else {
            napi::sys::napi_unref_threadsafe_function(env.raw(), raw);
        }
    }
}

/// Counts `n` new pending completions of a handle; refs its completion function on 0 → n
/// (so that the event loop stays alive while completions are due).
pub(crate) fn add_pending(env: &Env, pending: &AtomicI64, raw_tsfn: &AtomicUsize, n: i64) {
    if pending.fetch_add(n, Ordering::AcqRel) == 0 {
        let raw = raw_tsfn.load(Ordering::Acquire) as napi::sys::napi_threadsafe_function;
        set_ref(env, raw, true);
    }
}

/// Takes back `n` pending completions that will never come (a refused write); unrefs the
/// completion function on n → 0.
pub(crate) fn undo_pending(env: &Env, pending: &AtomicI64, raw_tsfn: &AtomicUsize, n: i64) {
    if pending.fetch_sub(n, Ordering::AcqRel) == n {
        let raw = raw_tsfn.load(Ordering::Acquire) as napi::sys::napi_threadsafe_function;
        set_ref(env, raw, false);
    }
}

/// Accounts a non-blocking hand-over of `attempted` operations of which `accepted` were
/// taken: the rest never complete (their pending count is taken back), and a new
/// registration for a `space_available` call counts as one pending message, so that the
/// event loop stays alive while the façade holds parked writes.
pub(crate) fn settle_try(
    env: &Env,
    pending: &AtomicI64,
    raw_tsfn: &AtomicUsize,
    attempted: i64,
    accepted: i64,
    registered: bool,
) {
    if registered {
        add_pending(env, pending, raw_tsfn, 1);
    }
    if attempted > accepted {
        undo_pending(env, pending, raw_tsfn, attempted - accepted);
    }
}

/// An open log handle, one per `openLog` call; several may share an engine.
#[napi]
pub struct NativeLog {
    engine: Option<Arc<Engine>>,
    producer: Option<Producer>,
    pending: Arc<AtomicI64>,
    raw_tsfn: Arc<AtomicUsize>,
    waits: Arc<Mutex<Vec<(u32, u64)>>>,
    max_record_bytes: u32,
    recovery: RecoveryInfo,
    string_buf: Vec<u8>,
}

/// What recovery found when the engine was opened.
#[napi(object)]
#[derive(Clone)]
pub struct RecoveryInfo {
    /// Segment files found.
    pub segments: f64,
    /// Last sequence number recovered.
    pub last_seq: f64,
    /// Bytes cut from a torn tail.
    pub truncated_bytes: f64,
    /// Recovery time in microseconds.
    pub duration_us: f64,
    /// Whether this handle opened the engine (false: it joined one already open).
    pub opened: bool,
}

/// Percentiles in microseconds.
#[napi(object)]
pub struct NativePercentiles {
    /// Samples.
    pub count: f64,
    /// Median.
    pub p50: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl From<uringdb_wal::Percentiles> for NativePercentiles {
    fn from(p: uringdb_wal::Percentiles) -> Self {
        NativePercentiles {
            count: p.count as f64,
            p50: p.p50,
            p90: p.p90,
            p99: p.p99,
            p999: p.p999,
            max: p.max,
        }
    }
}

/// Engine statistics.
#[napi(object)]
pub struct NativeStats {
    /// "io_uring" | "portable".
    pub backend: String,
    /// Why io_uring is not used.
    pub fallback_reason: Option<String>,
    /// Probed kernel features.
    pub features: Vec<String>,
    /// Records appended.
    pub appends: f64,
    /// Payload bytes appended.
    pub append_bytes: f64,
    /// Commit groups.
    pub groups: f64,
    /// fdatasync calls.
    pub fsyncs: f64,
    /// Bytes written to segment files.
    pub bytes_written: f64,
    /// First readable seq.
    pub first_seq: f64,
    /// Last durable seq.
    pub last_seq: f64,
    /// Segment files.
    pub segments: f64,
    /// Queue wait per group.
    pub queue_wait: NativePercentiles,
    /// Write time per group.
    pub write: NativePercentiles,
    /// fdatasync time per group.
    pub fsync: NativePercentiles,
    /// Oldest record's arrival to completion, per group.
    pub total: NativePercentiles,
}

/// One batch of records read.
#[napi(object)]
pub struct ReadResult {
    /// Payloads back to back.
    pub data: Buffer,
    /// (seq, start, length) per record.
    pub meta: Float64Array,
}

fn closed() -> napi::Error {
    wal_err(&WalError::Closed)
}

fn seq_arg(name: &str, v: f64) -> napi::Result<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
        Ok(v as u64)
    } else {
        Err(coded(
            "ERR_URINGDB_INVALID_ARGUMENT",
            &format!("{name} must be a non-negative safe integer, got {v}"),
        ))
    }
}

/// Builds the completion sink of one JS thread's handle: a weak threadsafe function
/// (ref'd only while completions are pending) delivering one call per commit group.
pub(crate) fn completion_sink(
    on_complete: Function<CompletionArgs, ()>,
) -> napi::Result<(Arc<JsSink>, Arc<AtomicUsize>)> {
    let pending = Arc::new(AtomicI64::new(0));
    let raw_tsfn = Arc::new(AtomicUsize::new(0));
    let tsfn: CompletionFn = {
        let pending = pending.clone();
        let raw_tsfn = raw_tsfn.clone();
        on_complete
            .build_threadsafe_function::<Msg>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(move |ctx: ThreadsafeCallContext<Msg>| {
                let n = match &ctx.value {
                    Msg::Done(v, _) => v.len() as i64,
                    Msg::Failed(c, _) => i64::from(*c),
                    Msg::Space => 1,
                };
                if pending.fetch_sub(n, Ordering::AcqRel) == n {
                    let raw =
                        raw_tsfn.load(Ordering::Acquire) as napi::sys::napi_threadsafe_function;
                    if !raw.is_null() {
                        set_ref(&ctx.env, raw, false);
                    }
                }
                Ok(FnArgs::from(match ctx.value {
                    Msg::Done(seqs, g) => {
                        let group = vec![
                            g.records as f64,
                            g.bytes as f64,
                            g.first_seq as f64,
                            g.last_seq as f64,
                            g.queue_wait_us,
                            g.write_us,
                            g.fsync_us,
                            if g.synced { 1.0 } else { 0.0 },
                        ];
                        (
                            Some(Float64Array::new(seqs)),
                            0,
                            None,
                            Some(Float64Array::new(group)),
                        )
                    }
                    Msg::Failed(c, e) => (None, c, Some(e), None),
                    // No outcome: (null, 0, null, null) means "retry the parked writes".
                    Msg::Space => (None, 0, None, None),
                }))
            })?
    };
    raw_tsfn.store(tsfn.raw() as usize, Ordering::Release);
    let sink = Arc::new(JsSink {
        tsfn,
        pending: pending.clone(),
    });
    Ok((sink, raw_tsfn))
}

/// Opens (or joins) the engine for `dir`. `onComplete(seqs, failedCount, errorJson, group)`
/// is called on this thread once per commit group that completed any of this handle's
/// appends or syncs, in order; `group` is [records, bytes, firstSeq, lastSeq, queueWaitUs,
/// writeUs, fsyncUs, synced].
#[napi(ts_return_type = "Promise<NativeLog>")]
pub fn open_log<'env>(
    env: &'env Env,
    dir: String,
    options: NativeLogOptions,
    #[napi(
        ts_arg_type = "(seqs: Float64Array | null, failedCount: number, errorJson: string | null, group: Float64Array | null) => void"
    )]
    on_complete: Function<CompletionArgs, ()>,
) -> napi::Result<Object<'env>> {
    guard(|| {
        let opts = to_wal_options(&options)?;
        let (sink, raw_tsfn) = completion_sink(on_complete)?;
        let (deferred, promise) = env.create_deferred::<NativeLog, _>()?;
        worker::spawn_named("uringdb-open", move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                registry::acquire(std::path::Path::new(&dir), &opts)
            }));
            match r {
                Ok(Ok((engine, opened))) => {
                    let producer = engine.wal.producer(sink.clone());
                    let rep = &engine.recovery;
                    let recovery = RecoveryInfo {
                        segments: rep.segments as f64,
                        last_seq: rep.last_seq as f64,
                        truncated_bytes: rep.truncated_bytes as f64,
                        duration_us: rep.duration.as_micros() as f64,
                        opened,
                    };
                    let max_record_bytes = engine.wal.max_record_bytes() as u32;
                    let pending = sink.pending.clone();
                    drop(sink);
                    deferred.resolve(move |_| {
                        Ok(NativeLog {
                            engine: Some(engine),
                            producer: Some(producer),
                            pending,
                            raw_tsfn,
                            waits: Arc::new(Mutex::new(Vec::new())),
                            max_record_bytes,
                            recovery,
                            string_buf: Vec::new(),
                        })
                    });
                }
                Ok(Err(e)) => deferred.reject(wal_err(&e)),
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

impl NativeLog {
    fn producer(&self) -> napi::Result<&Producer> {
        self.producer.as_ref().ok_or_else(closed)
    }

    fn engine(&self) -> napi::Result<&Arc<Engine>> {
        self.engine.as_ref().ok_or_else(closed)
    }

    /// Counts `n` new pending completions; refs the completion function on 0 → n.
    fn add_pending(&self, env: &Env, n: i64) {
        add_pending(env, &self.pending, &self.raw_tsfn, n);
    }

    fn undo_pending(&self, env: &Env, n: i64) {
        undo_pending(env, &self.pending, &self.raw_tsfn, n);
    }

    /// Hands `n` operations (one entry) to the engine without blocking; false: the ring
    /// was full, the entry was not taken, and a `Space` message will come.
    fn try_enqueue(
        &self,
        env: &Env,
        n: i64,
        f: impl FnOnce(&Producer) -> std::result::Result<TryOutcome, WalError>,
    ) -> napi::Result<bool> {
        let p = self.producer()?;
        self.add_pending(env, n);
        match f(p) {
            Ok(o) => {
                let taken = if o.accepted > 0 { n } else { 0 };
                settle_try(env, &self.pending, &self.raw_tsfn, n, taken, o.registered);
                Ok(o.accepted > 0)
            }
            Err(e) => {
                self.undo_pending(env, n);
                Err(wal_err(&e))
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
        guard(|| self.try_enqueue(&env, 1, |p| p.try_append_many(&[record], sync)))
    }

    /// Appends one string record, encoded as UTF-8 (see `append`).
    #[napi]
    pub fn append_string(&mut self, env: Env, record: String, sync: bool) -> napi::Result<bool> {
        guard(|| {
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
    /// called with no outcome). On an error the thrown error's JSON carries `accepted`,
    /// the number of entries accepted before it.
    #[napi]
    pub fn append_packed(
        &self,
        env: Env,
        data: &[u8],
        lens: &[u32],
        entries: &[u32],
    ) -> napi::Result<u32> {
        guard(|| {
            let p = self.producer()?;
            let records: i64 = entries.iter().map(|e| i64::from(e >> 1)).sum();
            self.add_pending(&env, records);
            match p.try_append_packed(data, lens, entries) {
                Ok(o) => {
                    let taken: i64 = entries[..o.accepted]
                        .iter()
                        .map(|e| i64::from(e >> 1))
                        .sum();
                    settle_try(
                        &env,
                        &self.pending,
                        &self.raw_tsfn,
                        records,
                        taken,
                        o.registered,
                    );
                    Ok(o.accepted as u32)
                }
                Err((accepted, e)) => {
                    let not_accepted: i64 =
                        entries[accepted..].iter().map(|e| i64::from(e >> 1)).sum();
                    self.undo_pending(&env, not_accepted);
                    let json = errors::to_json(&e);
                    Err(napi::Error::from_reason(format!(
                        "{},\"accepted\":{accepted}}}",
                        &json[..json.len() - 1]
                    )))
                }
            }
        })
    }

    /// Appends records atomically, with contiguous sequence numbers (see `append` for
    /// the return value).
    #[napi]
    pub fn append_many(&self, env: Env, records: Vec<&[u8]>, sync: bool) -> napi::Result<bool> {
        guard(|| {
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
        guard(|| self.try_enqueue(&env, 1, |p| p.try_sync()))
    }

    /// Largest record payload accepted.
    #[napi(getter)]
    pub fn max_record_bytes(&self) -> u32 {
        self.max_record_bytes
    }

    /// What recovery found.
    #[napi(getter)]
    pub fn recovery(&self) -> RecoveryInfo {
        self.recovery.clone()
    }

    /// First readable sequence number (0 when empty).
    #[napi(getter)]
    pub fn first_seq(&self) -> napi::Result<f64> {
        guard(|| Ok(self.engine()?.wal.first_seq() as f64))
    }

    /// Last durable sequence number (0 when empty).
    #[napi(getter)]
    pub fn last_seq(&self) -> napi::Result<f64> {
        guard(|| Ok(self.engine()?.wal.last_seq() as f64))
    }

    /// Statistics snapshot.
    #[napi]
    pub fn stats(&self) -> napi::Result<NativeStats> {
        guard(|| {
            let s = self.engine()?.wal.stats();
            Ok(NativeStats {
                backend: s.backend.to_string(),
                fallback_reason: s.fallback_reason,
                features: s.features,
                appends: s.appends as f64,
                append_bytes: s.append_bytes as f64,
                groups: s.groups as f64,
                fsyncs: s.fsyncs as f64,
                bytes_written: s.bytes_written as f64,
                first_seq: s.first_seq as f64,
                last_seq: s.last_seq as f64,
                segments: s.segments as f64,
                queue_wait: s.queue_wait.into(),
                write: s.write.into(),
                fsync: s.fsync.into(),
                total: s.total.into(),
            })
        })
    }

    /// A read cursor starting at `from` (0 = the first record).
    #[napi]
    pub fn cursor(&self, from: f64) -> napi::Result<NativeCursor> {
        guard(|| {
            let engine = self.engine()?.clone();
            let cursor = engine
                .wal
                .cursor(seq_arg("from", from)?)
                .map_err(|e| wal_err(&e))?;
            Ok(NativeCursor {
                engine,
                cursor: Arc::new(Mutex::new(cursor)),
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
        guard(|| {
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
    pub fn cancel_wait(&self, token: u32) -> napi::Result<()> {
        guard(|| {
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
        guard(|| {
            let seq = seq_arg("seq", seq)?;
            let engine = self.engine()?.clone();
            let slot = worker::read_slot()?;
            let (deferred, promise) = env.create_deferred::<u32, _>()?;
            slot.submit(move || match engine.wal.truncate_before(seq) {
                Ok(n) => deferred.resolve(move |_| Ok(n as u32)),
                Err(e) => deferred.reject(wal_err(&e)),
            });
            Ok(promise)
        })
    }

    /// Releases this handle: unregisters its producer (the façade first waits for its
    /// pending completions), cancels its waits, and closes the engine if this was the last
    /// handle (draining and joining its threads). Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> napi::Result<Object<'env>> {
        guard(|| {
            let (deferred, promise) = env.create_deferred::<(), fn(Env) -> napi::Result<()>>()?;
            let producer = self.producer.take();
            let engine = self.engine.take();
            let waits: Vec<(u32, u64)> =
                std::mem::take(&mut *self.waits.lock().unwrap_or_else(|e| e.into_inner()));
            let Some(engine) = engine else {
                deferred.resolve(|_| Ok(()));
                return Ok(promise);
            };
            for (_, id) in waits {
                engine.wal.cancel_wait(id);
            }
            worker::spawn_named("uringdb-close", move || {
                drop(producer);
                match registry::release(engine) {
                    Ok(()) => deferred.resolve(|_| Ok(())),
                    Err(e) => deferred.reject(wal_err(&e)),
                }
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
                if let Err(e) = registry::release(engine) {
                    eprintln!("uringdb: closing an abandoned log failed: {e}");
                }
            });
        }
    }
}

/// A sequential reader.
#[napi]
pub struct NativeCursor {
    engine: Arc<Engine>,
    cursor: Arc<Mutex<ReadCursor>>,
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
        guard(|| {
            let end = match seq_arg("to", end)? {
                0 => u64::MAX,
                n => n,
            };
            let slot = worker::read_slot()?;
            let (deferred, promise) = env.create_deferred::<ReadResult, _>()?;
            let engine = self.engine.clone();
            let cursor = self.cursor.clone();
            slot.submit(move || {
                let r = {
                    let mut c = cursor.lock().unwrap_or_else(|e| e.into_inner());
                    engine.wal.read(
                        &mut c,
                        end,
                        max_records.max(1) as usize,
                        max_bytes.max(1) as usize,
                    )
                };
                match r {
                    Ok(batch) => deferred.resolve(move |_| {
                        let mut meta = Vec::with_capacity(batch.records.len() * 3);
                        for (seq, start, len) in &batch.records {
                            meta.extend_from_slice(&[*seq as f64, *start as f64, *len as f64]);
                        }
                        Ok(ReadResult {
                            data: batch.data.into(),
                            meta: Float64Array::new(meta),
                        })
                    }),
                    Err(e) => deferred.reject(wal_err(&e)),
                }
            });
            Ok(promise)
        })
    }
}

/// Test-only: panics inside the boundary guard, to prove a panic becomes an error.
#[napi(js_name = "__testPanic")]
pub fn test_panic() -> napi::Result<()> {
    guard(|| panic!("test panic requested"))
}
