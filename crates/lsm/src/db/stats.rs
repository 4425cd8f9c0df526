//! Statistics and events: the counters the database keeps, the [`DbStats`] snapshot built
//! from them (by `Inner::stats`), and the typed events listeners receive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::cache::CacheStats;
use uringdb_wal::WalStats;

/// An event for observers (the binding publishes them on diagnostics channels).
#[derive(Clone, Debug)]
pub enum DbEvent {
    /// A memtable became a table.
    Flush(FlushEvent),
    /// A compaction finished.
    Compaction(CompactionEvent),
    /// Writes were slowed, stopped, or released.
    Stall(StallEvent),
    /// A background job failed (writes are refused until a retry succeeds), or a panic
    /// latched the database failed.
    Error(ErrorEvent),
}

/// A finished flush.
#[derive(Clone, Debug)]
pub struct FlushEvent {
    /// Tables written.
    pub tables: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Entries flushed.
    pub entries: u64,
    /// Everything up to this sequence number is now in tables.
    pub flushed_seq: u64,
    /// Log segments deleted because they were wholly flushed.
    pub log_segments_removed: usize,
    /// How long the flush took.
    pub duration: std::time::Duration,
}

/// Why a compaction ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactionReason {
    /// `compactRange`.
    Manual,
    /// Level 0 reached its file-count trigger.
    L0Files,
    /// A level outgrew its target size.
    LevelSize,
}

/// A finished compaction.
#[derive(Clone, Debug)]
pub struct CompactionEvent {
    /// The input level.
    pub level: usize,
    /// The output level.
    pub output_level: usize,
    /// Input tables.
    pub inputs: usize,
    /// Output tables.
    pub outputs: usize,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Entries dropped (shadowed versions, deletions at the bottom).
    pub entries_dropped: u64,
    /// Why it ran.
    pub reason: CompactionReason,
    /// How long it took.
    pub duration: std::time::Duration,
}

/// How hard writes are held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallLevel {
    /// Not at all (a stall ended).
    None,
    /// Slowed.
    Slowdown,
    /// Stopped until compaction or flush catches up.
    Stop,
}

/// A change of the write stall.
#[derive(Clone, Debug)]
pub struct StallEvent {
    /// The new level.
    pub level: StallLevel,
    /// Level-0 tables at the change.
    pub l0_files: usize,
    /// Memtables waiting for flush at the change.
    pub immutable_memtables: usize,
}

/// A background failure.
#[derive(Clone, Debug)]
pub struct ErrorEvent {
    /// What failed.
    pub message: String,
}

pub(super) type Listener = Arc<dyn Fn(&DbEvent) + Send + Sync>;

/// Counters, updated with relaxed atomics.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) user_bytes: AtomicU64,
    pub(super) puts: AtomicU64,
    pub(super) deletes: AtomicU64,
    pub(super) flushes: AtomicU64,
    pub(super) flush_bytes: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) compaction_read: AtomicU64,
    pub(super) compaction_written: AtomicU64,
    pub(super) stalls: AtomicU64,
    pub(super) slowdowns: AtomicU64,
    pub(super) stops: AtomicU64,
    pub(super) stall_us: AtomicU64,
    pub(super) bloom_checked: AtomicU64,
    pub(super) bloom_useful: AtomicU64,
    pub(super) gets: AtomicU64,
    pub(super) background_errors: AtomicU64,
}

pub(super) fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// Statistics of one level.
#[derive(Clone, Debug, Default)]
pub struct LevelStats {
    /// Level number.
    pub level: u32,
    /// Table files.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Target bytes (0 for level 0, which is bounded by file count).
    pub target_bytes: u64,
}

/// A snapshot of the database's statistics.
#[derive(Clone, Debug, Default)]
pub struct DbStats {
    /// Per level.
    pub levels: Vec<LevelStats>,
    /// Bytes of user keys and values written (applied).
    pub user_bytes_written: u64,
    /// Puts applied.
    pub puts: u64,
    /// Deletes applied.
    pub deletes: u64,
    /// Memtable flushes.
    pub flushes: u64,
    /// Bytes flushes wrote.
    pub flush_bytes_written: u64,
    /// Compactions run.
    pub compactions: u64,
    /// Bytes compactions read.
    pub compaction_bytes_read: u64,
    /// Bytes compactions wrote.
    pub compaction_bytes_written: u64,
    /// (log + flush + compaction bytes written) / user bytes written.
    pub write_amplification: f64,
    /// Bytes of all tables / bytes of the last non-empty level (1.0 when there is one level).
    pub space_amplification: f64,
    /// Times writes were held back (slowdowns + stops).
    pub stalls: u64,
    /// Times writes were slowed.
    pub slowdowns: u64,
    /// Times writes were stopped.
    pub stops: u64,
    /// Total time writes were held back, in µs.
    pub stall_us: u64,
    /// Payload bytes held in the write-stall queue now (at most
    /// [`STALL_QUEUE_BYTES_MAX`](crate::limits::STALL_QUEUE_BYTES_MAX) plus one write).
    pub stall_queue_bytes: u64,
    /// Block cache counters.
    pub cache: CacheStats,
    /// Table lookups that consulted a bloom filter.
    pub bloom_checked: u64,
    /// Of those, lookups the filter answered "absent" (no block read).
    pub bloom_useful: u64,
    /// Point reads.
    pub gets: u64,
    /// Table files open now (at most `maxOpenFiles`).
    pub open_table_files: u64,
    /// Active memtable bytes.
    pub memtable_bytes: u64,
    /// Immutable memtables waiting for flush.
    pub immutable_memtables: u64,
    /// Visible (last applied) sequence number.
    pub visible_seq: u64,
    /// Sequence number up to which everything is in tables.
    pub flushed_seq: u64,
    /// Live snapshots.
    pub snapshots: u64,
    /// Prepared transactions not yet committed or rolled back.
    pub prepared_transactions: u64,
    /// Age of the oldest prepared transaction, in ms (0 if none).
    pub oldest_prepared_age_ms: u64,
    /// Background errors so far.
    pub background_errors: u64,
    /// The current background error, if writes are refused.
    pub background_error: Option<String>,
    /// The log's statistics.
    pub log: WalStats,
}
