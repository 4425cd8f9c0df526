//! Completions on their way to a JavaScript thread, shared by both products: one
//! threadsafe-function call per commit group per thread, and the pending count that keeps
//! the event loop alive exactly while completions are due.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use uringdb_wal::{CompletionSink, GroupInfo, WalError};

use napi_derive::napi;

use crate::errors::{Failure, NativeError};

/// What the committer sends to a JS thread: one message per commit group.
enum Msg {
    /// Sequence numbers, already as JS numbers (converted once, on the committer thread).
    Done(Vec<f64>, GroupInfo),
    Failed(u32, Failure),
    /// The queue that refused a write of this handle has room again: the façade retries
    /// its parked writes. At most one per registration (see `add_space_wait`), counted in
    /// `pending` as one so that the event loop stays alive while writes are parked.
    Space,
}

/// The arguments of a completion callback: `(seqs, failedCount, error, group)`.
pub(crate) type CompletionArgs = (
    Option<Float64Array>,
    u32,
    Option<NativeError>,
    Option<NativeCommitGroup>,
);

/// One commit group, as the log's `uringdb:log:commit` channel publishes it.
#[napi(object)]
pub struct NativeCommitGroup {
    /// Records in the group (from every handle and thread).
    pub records: f64,
    /// Bytes written by the group.
    pub bytes: f64,
    /// First sequence number of the group (0 when it held only sync requests).
    pub first_seq: f64,
    /// Last sequence number of the group.
    pub last_seq: f64,
    /// Time the oldest record waited in the queue, in microseconds.
    pub queue_wait_us: f64,
    /// Time the write took, in microseconds.
    pub write_us: f64,
    /// Time the fdatasync took, in microseconds.
    pub fsync_us: f64,
    /// Whether the group was covered by fdatasync.
    pub synced: bool,
}

impl From<GroupInfo> for NativeCommitGroup {
    fn from(g: GroupInfo) -> Self {
        NativeCommitGroup {
            records: g.records as f64,
            bytes: g.bytes as f64,
            first_seq: g.first_seq as f64,
            last_seq: g.last_seq as f64,
            queue_wait_us: g.queue_wait_us,
            write_us: g.write_us,
            fsync_us: g.fsync_us,
            synced: g.synced,
        }
    }
}

type CompletionFn = ThreadsafeFunction<Msg, (), FnArgs<CompletionArgs>, Status, false, true>;

/// Delivers one producer's completions to its JS thread.
pub(crate) struct JsSink {
    tsfn: CompletionFn,
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
            Msg::Failed(count as u32, Failure::from(error)),
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
    // by `completion_sink` and released only when the owning `JsSink` drops), and `env`
    // is this thread's environment: ref/unref are called on the creating thread, as N-API
    // requires.
    unsafe {
        if referenced {
            napi::sys::napi_ref_threadsafe_function(env.raw(), raw);
        } else {
            napi::sys::napi_unref_threadsafe_function(env.raw(), raw);
        }
    }
}

/// The pending-completion count of one handle and its completion function: operations
/// issued on the JS thread and not yet delivered there. While non-zero the threadsafe
/// function is ref'd (keeps the event loop alive); at zero it is unref'd, so an idle open
/// handle never keeps the process alive.
pub(crate) struct Pending {
    count: Arc<AtomicI64>,
    raw_tsfn: Arc<AtomicUsize>,
}

impl Pending {
    /// Counts `n` new pending completions; refs the completion function on 0 → n (so that
    /// the event loop stays alive while completions are due).
    pub(crate) fn add(&self, env: &Env, n: i64) {
        if self.count.fetch_add(n, Ordering::AcqRel) == 0 {
            set_ref(env, self.raw(), true);
        }
    }

    /// Takes back `n` pending completions that will never come (a refused write); unrefs
    /// the completion function on n → 0.
    pub(crate) fn undo(&self, env: &Env, n: i64) {
        if self.count.fetch_sub(n, Ordering::AcqRel) == n {
            set_ref(env, self.raw(), false);
        }
    }

    /// Accounts a non-blocking hand-over of `attempted` operations of which `accepted`
    /// were taken: the rest never complete (their pending count is taken back), and a new
    /// registration for a `space_available` call counts as one pending message, so that
    /// the event loop stays alive while the façade holds parked writes.
    pub(crate) fn settle_try(&self, env: &Env, attempted: i64, accepted: i64, registered: bool) {
        if registered {
            self.add(env, 1);
        }
        if attempted > accepted {
            self.undo(env, attempted - accepted);
        }
    }

    fn raw(&self) -> napi::sys::napi_threadsafe_function {
        self.raw_tsfn.load(Ordering::Acquire) as napi::sys::napi_threadsafe_function
    }
}

/// Builds the completion sink of one JS thread's handle: a weak threadsafe function
/// (ref'd only while completions are pending) delivering one call per commit group.
pub(crate) fn completion_sink(
    on_complete: Function<CompletionArgs, ()>,
) -> napi::Result<(Arc<JsSink>, Pending)> {
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
                    Msg::Done(seqs, g) => (Some(Float64Array::new(seqs)), 0, None, Some(g.into())),
                    Msg::Failed(c, e) => (None, c, Some(e.into_inner()), None),
                    // No outcome: (null, 0, null, null) means "retry the parked writes".
                    Msg::Space => (None, 0, None, None),
                }))
            })?
    };
    raw_tsfn.store(tsfn.raw() as usize, Ordering::Release);
    let sink = Arc::new(JsSink { tsfn });
    Ok((
        sink,
        Pending {
            count: pending,
            raw_tsfn,
        },
    ))
}
