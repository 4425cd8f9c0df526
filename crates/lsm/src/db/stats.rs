//! Statistics and events: the counters the database keeps, the [`DbStats`] snapshot built
//! from them, and the event listeners. Events carry their facts as JSON text for JavaScript
//! (`json_string` escapes strings for it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Db, Inner};
use crate::cache::CacheStats;
use uringdb_wal::WalStats;

/// An event for observers (diagnostics channels): `kind` is `flush`, `compaction`, `stall`
/// or `recovery`; `json` is an object with the event's facts.
#[derive(Clone, Debug)]
pub struct DbEvent {
    /// What happened.
    pub kind: &'static str,
    /// Its facts, as a JSON object.
    pub json: String,
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
    /// Background errors so far.
    pub background_errors: u64,
    /// The current background error, if writes are refused.
    pub background_error: Option<String>,
    /// The log's statistics.
    pub log: WalStats,
}

impl Db {
    /// Statistics.
    pub fn stats(&self) -> DbStats {
        self.inner.stats()
    }

    /// Registers an event listener (called on background threads; must not block).
    /// Returns an id for [`Db::remove_listener`].
    pub fn add_listener(&self, f: Arc<dyn Fn(&DbEvent) + Send + Sync>) -> u64 {
        let id = self.inner.next_listener.fetch_add(1, Ordering::Relaxed);
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, f));
        id
    }

    /// Removes a listener.
    pub fn remove_listener(&self, id: u64) {
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| *i != id);
    }
}

impl Inner {
    pub(crate) fn emit(&self, kind: &'static str, json: String) {
        let ls: Vec<Listener> = self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, l)| l.clone())
            .collect();
        if ls.is_empty() {
            return;
        }
        let ev = DbEvent { kind, json };
        for l in ls {
            l(&ev);
        }
    }

    pub(super) fn stats(&self) -> DbStats {
        let c = &self.counters;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sv = self.super_version();
        let mut levels = Vec::new();
        let mut total = 0u64;
        let mut last_level_bytes = 0u64;
        for (i, l) in sv.version.levels.iter().enumerate() {
            let bytes: u64 = l.iter().map(|t| t.meta.file_bytes).sum();
            total += bytes;
            if bytes > 0 {
                last_level_bytes = bytes;
            }
            levels.push(LevelStats {
                level: i as u32,
                files: l.len() as u64,
                bytes,
                target_bytes: if i == 0 {
                    0
                } else {
                    self.opts.level_target_bytes(i)
                },
            });
        }
        let log = self.wal.stats();
        let user = ld(&c.user_bytes);
        let written = log.bytes_written + ld(&c.flush_bytes) + ld(&c.compaction_written);
        let flushed_seq = self
            .manifest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .state
            .flushed_seq;
        DbStats {
            levels,
            user_bytes_written: user,
            puts: ld(&c.puts),
            deletes: ld(&c.deletes),
            flushes: ld(&c.flushes),
            flush_bytes_written: ld(&c.flush_bytes),
            compactions: ld(&c.compactions),
            compaction_bytes_read: ld(&c.compaction_read),
            compaction_bytes_written: ld(&c.compaction_written),
            write_amplification: if user > 0 {
                written as f64 / user as f64
            } else {
                0.0
            },
            space_amplification: if last_level_bytes > 0 {
                total as f64 / last_level_bytes as f64
            } else {
                0.0
            },
            stalls: ld(&c.stalls),
            slowdowns: ld(&c.slowdowns),
            stops: ld(&c.stops),
            stall_us: ld(&c.stall_us),
            stall_queue_bytes: self.stall.lock().unwrap_or_else(|e| e.into_inner()).bytes as u64,
            cache: self.cache.stats(),
            bloom_checked: ld(&c.bloom_checked),
            bloom_useful: ld(&c.bloom_useful),
            gets: ld(&c.gets),
            open_table_files: self.table_files.open_count() as u64,
            memtable_bytes: sv.mem.table.approximate_bytes() as u64,
            immutable_memtables: sv.imm.len() as u64,
            visible_seq: self.visible_seq.load(Ordering::Acquire),
            flushed_seq,
            snapshots: self
                .snapshots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .map(|&n| n as u64)
                .sum(),
            background_errors: ld(&c.background_errors),
            background_error: self.bg_error().map(|e| e.to_string()),
            log,
        }
    }
}

pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
