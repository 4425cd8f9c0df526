//! The state producers, the writer thread and `flush_sync` callers share.
//!
//! # Protocol
//!
//! * Lines travel through the [`RecordRing`] (its own ownership protocol is in
//!   `crates/wal/src/ring.rs`). A producer counts its record in `pushed` after publishing it.
//! * Durability is counted in records: the writer counts what it drained (`consumed`);
//!   after an fdatasync that covers every block holding them it stores `durable_records`
//!   under `mu` and notifies `done_cv`. `flush_sync` reads `pushed` (which covers its own
//!   earlier writes), raises `flush_target` to it, wakes the writer and waits on
//!   `done_cv` until `durable_records` reaches it (or the sink failed).
//! * Waking the writer without a wake-up per write: before it sleeps, the writer, holding
//!   `mu`, stores in `wake` whether it wants every write to wake it (`WAKE_ANY`: it is
//!   idle) or only a ring a quarter full (`WAKE_IF_FULL`: it polls anyway every
//!   `WRITER_POLL_MS`), fences (SeqCst) and looks at the ring once more. A producer
//!   publishes, fences (SeqCst) and reads `wake`. By the two fences, either the writer's
//!   last look sees the record or the producer sees the flag; the producer that flips the
//!   flag back to `AWAKE` (compare-and-swap: one per sleep, not one per write) notifies
//!   under `mu`, which the writer holds until it waits, so the notification is not lost.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::{Condvar, Mutex, MutexGuard};

use uringdb_wal::RecordRing;

/// `wake`: the writer is running.
pub(crate) const AWAKE: u8 = 0;
/// `wake`: the writer sleeps and wants a wake-up only when the ring is a quarter full.
pub(crate) const WAKE_IF_FULL: u8 = 1;
/// `wake`: the writer is idle and wants a wake-up for any write.
pub(crate) const WAKE_ANY: u8 = 2;

/// Under `Shared::mu`.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Records covered by a completed fdatasync.
    pub durable_records: u64,
    /// Set when a write or sync failed (latched) or the writer panicked.
    pub failed: Option<crate::error::SinkError>,
    /// The writer thread has exited.
    pub writer_done: bool,
}

/// Counters (relaxed; a snapshot for `stats()`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub lines: AtomicU64,
    pub blocks: AtomicU64,
    pub raw_bytes: AtomicU64,
    pub stored_bytes: AtomicU64,
    pub syncs: AtomicU64,
    pub segments_created: AtomicU64,
    pub full_waits: AtomicU64,
    pub dropped_full: AtomicU64,
    pub lost_after_failure: AtomicU64,
    pub segments_removed: AtomicU64,
    pub bytes_removed: AtomicU64,
    /// Dropped by the sampler, per level class and reason (a copy of the writer's totals).
    pub dropped: [[AtomicU64; 2]; 8],
    /// Dropped by the disk-space guard (reason `disk`), per level class.
    pub dropped_disk: [AtomicU64; 8],
    /// The guard's state changes.
    pub disk_transitions: AtomicU64,
    /// The guard's state (0 normal, 1 low, 2 critical).
    pub disk_state: AtomicU8,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub ring: RecordRing,
    pub mu: Mutex<State>,
    /// The writer sleeps on it.
    pub writer_cv: Condvar,
    /// `flush_sync` callers and producers waiting for space sleep on it.
    pub done_cv: Condvar,
    pub wake: AtomicU8,
    pub pushed: AtomicU64,
    pub flush_target: AtomicU64,
    pub closing: AtomicBool,
    /// Mirrors `State::failed.is_some()` for the producers' hot path.
    pub failed_flag: AtomicBool,
    pub counters: Counters,
}

impl Shared {
    pub fn new(ring_bytes: usize) -> Shared {
        Shared {
            ring: RecordRing::new(ring_bytes),
            mu: Mutex::new(State::default()),
            writer_cv: Condvar::new(),
            done_cv: Condvar::new(),
            wake: AtomicU8::new(AWAKE),
            pushed: AtomicU64::new(0),
            flush_target: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            failed_flag: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    /// Locks `mu`, surviving a poisoned lock (the state stays meaningful: every writer of
    /// it stores whole values).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.mu.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the writer.
    pub fn notify_writer(&self) {
        let _g = self.lock();
        self.writer_cv.notify_one();
    }
}
