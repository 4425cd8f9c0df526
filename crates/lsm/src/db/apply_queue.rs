//! The applier thread's queue: what travels to it ([`ApplyMsg`]) and the count of what it
//! has not handled yet ([`ApplyQueue`]), which lets the thread completing a group apply it
//! or deliver its completions itself when nothing waits (see `apply`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, OnceLock};

use uringdb_wal::{CompletionSink, WalError};

/// Work for the applier thread, in log order: a group's records, then that group's
/// completions. The committer only copies a group's payloads and moves on to the next
/// group's write while the applier inserts this one into the memtable; a completion is
/// delivered only after everything before it was applied, so a resolved write is visible.
pub(super) enum ApplyMsg {
    Records {
        data: Vec<u8>,
        /// (sequence number, start in `data`, length).
        recs: Vec<(u64, usize, usize)>,
    },
    Done {
        sink: Arc<dyn CompletionSink>,
        seqs: Vec<u64>,
        group: uringdb_wal::GroupInfo,
    },
    Failed {
        sink: Arc<dyn CompletionSink>,
        count: usize,
        error: WalError,
    },
    Stop,
}

/// The channel to the applier thread, and how far behind the applier is.
pub(super) struct ApplyQueue {
    tx: SyncSender<ApplyMsg>,
    /// Messages sent and not yet handled by the applier thread. Incremented before a send,
    /// decremented (`Release`) after the message's work is done, so a thread that loads 0
    /// (`Acquire`) sees every record sent before as applied and visible.
    queued: AtomicUsize,
    /// Set after a panic while applying (on the applier thread or inline): the memtable may
    /// lack records the log holds, so nothing from then on is acknowledged; completions keep
    /// flowing, as failures, so that no caller waits forever (the log is failed too, so no
    /// new group is written).
    failed: OnceLock<Arc<WalError>>,
}

impl ApplyQueue {
    /// A queue of at most `bound` messages, and its receiving end for the applier thread.
    pub(super) fn new(bound: usize) -> (Arc<ApplyQueue>, Receiver<ApplyMsg>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(bound);
        let q = ApplyQueue {
            tx,
            queued: AtomicUsize::new(0),
            failed: OnceLock::new(),
        };
        (Arc::new(q), rx)
    }

    pub(super) fn send(&self, msg: ApplyMsg) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        // The applier outlives every sender's use (it stops only on `Stop`, sent after the
        // log closed); if it is gone the database is gone too.
        if self.tx.send(msg).is_err() {
            self.queued.fetch_sub(1, Ordering::Release);
        }
    }

    /// Whether the applier has handled every message sent so far.
    pub(super) fn drained(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }

    /// The applier thread handled one message (its work is done: records applied and
    /// visible, or the completion delivered).
    pub(super) fn handled(&self) {
        self.queued.fetch_sub(1, Ordering::Release);
    }

    /// The failure after a panic while applying, if one happened.
    pub(super) fn failed(&self) -> Option<&Arc<WalError>> {
        self.failed.get()
    }

    /// Records the failure after a panic while applying (the first one stays).
    pub(super) fn set_failed(&self, e: Arc<WalError>) {
        let _ = self.failed.set(e);
    }
}
