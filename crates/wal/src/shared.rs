//! State shared by producers, the committer, readers and the preparer ([`Shared`]), and the
//! callbacks it holds: the producers' [`CompletionSink`]s, the [`ApplyHook`] and the
//! durable-watermark waiters.

use crate::error::WalError;
use crate::options::Limits;
use crate::ring::Ring;
use crate::segment::{Preparer, Segment};
use crate::stats::Counters;
use crate::sync::{fence, Ordering};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Instant;
use uringdb_uring::{LockGuard, ProbeReport, Vfs};

/// Facts about one commit group, delivered with its completions (for instrumentation).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GroupInfo {
    /// Records in the group (all producers).
    pub records: u64,
    /// Bytes the group wrote to the segment (frames, plus a header on a roll).
    pub bytes: u64,
    /// First sequence number in the group (0 if it had none, e.g. only sync requests).
    pub first_seq: u64,
    /// Last sequence number in the group (0 if none).
    pub last_seq: u64,
    /// From the group's oldest record's arrival to the start of the write, in µs.
    pub queue_wait_us: f64,
    /// The write, in µs.
    pub write_us: f64,
    /// The fdatasync, in µs (0 if the group was not synced).
    pub fsync_us: f64,
    /// Whether the group was covered by fdatasync.
    pub synced: bool,
}

/// Receives the outcome of a producer's appends, in the order it made them. Called once per
/// commit group, in group order, on the thread that completes the group (the committer, or
/// a sync thread of the commit pipeline: see `crate::committer`): implementations must not
/// block.
pub trait CompletionSink: Send + Sync {
    /// These appends (and sync requests) completed; one sequence number each, in order.
    /// For a sync request the number is the last sequence number written before it, which
    /// is durable (and applied) by then.
    fn completed(&self, seqs: &[u64], group: &GroupInfo);
    /// The next `count` appends of this producer failed.
    fn failed(&self, count: usize, error: &WalError);
    /// The commit queue has room again after a `try_*` append of this producer found it
    /// full (see [`Producer::try_append_packed`](crate::Producer::try_append_packed)). Called
    /// once per registration, by the thread that released a group's space (or on close);
    /// must not block.
    fn space_available(&self) {}
}

/// Applies committed records to an in-memory structure (the key-value database's memtable)
/// before anyone learns of them. Called once per commit group that wrote records, in group
/// order, on the thread that completes the group, after the group's write succeeded (and
/// an fdatasync covering it completed, if any record asked for one) and before its
/// completions are delivered — so a resolved append is already applied, and records are
/// applied in sequence order, one group at a time. (The durable watermark may run ahead of
/// it: an fdatasync can cover later groups too.) Implementations must not block on appends.
pub trait ApplyHook: Send + Sync {
    /// The group's records in log order: `(sequence number, payload)`.
    fn apply(&self, records: &mut dyn Iterator<Item = (u64, &[u8])>);
}

/// Outcome of [`Wal::wait_for`](crate::Wal::wait_for).
#[derive(Clone, Debug)]
pub enum WaitOutcome {
    /// The awaited sequence number is durable; the last durable sequence number.
    Ready(u64),
    /// The log closed first.
    Closed,
    /// [`Wal::cancel_wait`](crate::Wal::cancel_wait) was called.
    Cancelled,
}

pub(crate) type WaitCallback = Box<dyn FnOnce(WaitOutcome) + Send>;

pub(crate) struct Waiters {
    pub next_id: u64,
    pub list: Vec<(u64, u64, WaitCallback)>, // (id, seq, callback)
}

/// State shared by producers, the committer, readers and the preparer.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub vfs: Arc<dyn Vfs>,
    pub probe: ProbeReport,
    pub limits: Limits,
    pub ring: Ring,
    // Producer side.
    pub closing: AtomicBool,
    pub in_flight: AtomicU64,
    pub failed: AtomicBool,
    pub failure: Mutex<Option<Arc<WalError>>>,
    pub committer_sleeping: AtomicBool,
    pub committer_thread: Mutex<Option<std::thread::Thread>>,
    pub space_waiters: AtomicU64,
    pub space_lock: Mutex<()>,
    pub space_cv: Condvar,
    /// Producers (by pid) whose non-blocking append found the ring full and that want
    /// [`CompletionSink::space_available`] once space is released; `space_wanted_count`
    /// mirrors its length so that the committer checks it without the lock.
    pub space_wanted: Mutex<Vec<u64>>,
    pub space_wanted_count: AtomicU64,
    /// Arrival time (ns since `epoch`, +1 so that 0 means "none") of the oldest record not
    /// yet taken into a group.
    pub arrival_ns: AtomicU64,
    pub epoch: Instant,
    pub producers: Mutex<Vec<Option<Arc<dyn CompletionSink>>>>,
    /// Applies each written group before completions (see [`ApplyHook`]).
    pub apply: Option<Arc<dyn ApplyHook>>,
    // Read side.
    pub segments: RwLock<Vec<Arc<Segment>>>,
    pub durable_seq: AtomicU64,
    pub waiters: Mutex<Waiters>,
    pub has_waiters: AtomicBool,
    pub counters: Counters,
    pub preparer: Preparer,
    /// Test-only: the clock that segment sizing reads (ns), in place of `now_ns`.
    pub segment_clock: Option<SegmentClock>,
    /// The directory lock; released by `close` (producers may outlive the log).
    pub lock: Mutex<Option<Box<dyn LockGuard>>>,
}

/// A clock in nanoseconds (see [`crate::Wal::open_with_clock`]).
pub type SegmentClock = Arc<dyn Fn() -> u64 + Send + Sync>;

impl Shared {
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    /// The time segment sizing measures fill rates with.
    pub fn segment_now_ns(&self) -> u64 {
        match &self.segment_clock {
            Some(c) => c(),
            None => self.now_ns(),
        }
    }

    pub fn failure(&self) -> Option<Arc<WalError>> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Latches the log into the failed state (first failure wins).
    pub fn latch_failure(&self, e: &WalError) -> Arc<WalError> {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        let latched = f.get_or_insert_with(|| Arc::new(e.clone())).clone();
        self.failed.store(true, Ordering::Release);
        latched
    }

    pub fn wake_committer(&self) {
        fence(Ordering::SeqCst);
        if self.committer_sleeping.load(Ordering::Relaxed)
            && self.committer_sleeping.swap(false, Ordering::SeqCst)
        {
            if let Some(t) = &*self
                .committer_thread
                .lock()
                .unwrap_or_else(|e| e.into_inner())
            {
                t.unpark();
            }
        }
    }

    /// Publishes a new durable watermark and wakes waiters it satisfies.
    pub fn publish_durable(&self, seq: u64) {
        self.durable_seq.fetch_max(seq, Ordering::SeqCst);
        if self.has_waiters.load(Ordering::SeqCst) {
            let durable = self.durable_seq.load(Ordering::SeqCst);
            let ready: Vec<WaitCallback> = {
                let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
                let mut ready = Vec::new();
                let mut i = 0;
                while i < w.list.len() {
                    if w.list[i].1 <= durable {
                        ready.push(w.list.swap_remove(i).2);
                    } else {
                        i += 1;
                    }
                }
                self.has_waiters.store(!w.list.is_empty(), Ordering::SeqCst);
                ready
            };
            for cb in ready {
                cb(WaitOutcome::Ready(durable));
            }
        }
    }

    /// Tells every producer registered in `space_wanted` that the ring has room (each
    /// registration gets exactly one call). The committer calls it after releasing space
    /// (after a SeqCst fence, pairing with the one in [`Producer::register_space_wait`](crate::Producer::register_space_wait));
    /// close calls it so that no registration is left without its call.
    pub fn notify_space_wanted(&self) {
        fence(Ordering::SeqCst);
        if self.space_wanted_count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let pids = {
            let mut w = self.space_wanted.lock().unwrap_or_else(|e| e.into_inner());
            self.space_wanted_count.store(0, Ordering::SeqCst);
            std::mem::take(&mut *w)
        };
        let sinks: Vec<Arc<dyn CompletionSink>> = {
            let p = self.producers.lock().unwrap_or_else(|e| e.into_inner());
            pids.iter()
                .filter_map(|&pid| p.get(pid as usize).cloned().flatten())
                .collect()
        };
        for sink in sinks {
            sink.space_available();
        }
    }

    pub fn first_seq(&self) -> u64 {
        let durable = self.durable_seq.load(Ordering::Acquire);
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        match segs.first() {
            Some(s) if s.first_seq <= durable => s.first_seq,
            _ => 0,
        }
    }
}

impl Shared {
    pub(crate) fn committer_done(&self) -> bool {
        self.committer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}
