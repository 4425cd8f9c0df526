//! The database's shared state: [`Inner`], which every thread of the database holds, and
//! the types it is made of (manifest core, scheduling flags, the stall queue, the applier's
//! messages, writers' cores), with the methods that only touch that state (background
//! errors, events, statistics).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::DbError;
use super::options::DbOptions;
use super::rate_limiter::RateLimiter;
use super::stats::{add, Counters, DbEvent, DbStats, ErrorEvent, LevelStats, Listener};
use super::stream_table::{Streams, Waiters};
use super::table_files::TableFiles;
use super::version::SuperVersion;
use crate::cache::BlockCache;
use crate::limits::STALL_QUEUE_BYTES_MAX;
use crate::manifest::{ManifestState, ManifestWriter};
use uringdb_uring::Vfs;
use uringdb_wal::{CompletionSink, Producer, RecoveryReport, Wal, WalError};

/// Manifest state and writer (held across the manifest's fdatasync).
pub(super) struct ManifestCore {
    pub(super) state: ManifestState,
    pub(super) writer: ManifestWriter,
    /// The writer must not be appended to: a rewrite failed, after which CURRENT may name
    /// either manifest. The next install starts a fresh manifest first.
    pub(super) fresh_needed: bool,
    /// Tables that an edit whose append failed ambiguously (the record may be on disk)
    /// named, and `state` does not: recovery may need them until a fresh manifest that does
    /// not name them is durable, and only then are they removed (else the orphan sweep at
    /// the next open removes them).
    pub(super) limbo: Vec<u64>,
}

pub(crate) struct Inner {
    /// Set once, by the first panic on one of the database's threads (see
    /// [`Inner::fail_after_panic`]): the database is failed until reopened.
    pub(super) panicked: OnceLock<Arc<WalError>>,
    pub(super) dir: PathBuf,
    pub(super) vfs: Arc<dyn Vfs>,
    pub(super) opts: DbOptions,
    pub(super) cache: Arc<BlockCache>,
    /// Open table files, at most `maxOpenFiles` (see [`TableFiles`]).
    pub(super) table_files: Arc<TableFiles>,
    pub(super) limiter: Option<Arc<RateLimiter>>,
    pub(super) wal: Wal,
    pub(super) wal_report: RecoveryReport,
    pub(super) recovery: DbRecovery,
    pub(super) sv: RwLock<Arc<SuperVersion>>,
    pub(super) visible_seq: AtomicU64,
    /// Serialises memtable writes (the applier thread) with rotations from elsewhere.
    pub(super) apply_lock: Mutex<()>,
    pub(super) memtable_capacity: usize,
    /// The streams' state (see `stream_state`).
    pub(super) streams: Streams,
    /// The waits of stream tails (see `stream_wait`).
    pub(super) stream_waiters: Waiters,
    pub(super) manifest: Mutex<ManifestCore>,
    /// Background scheduling: flags under this lock, `bg_cv` wakes the threads.
    pub(super) sched: Mutex<Sched>,
    pub(super) bg_cv: Condvar,
    /// Waiters for flush/compaction progress.
    pub(super) done_cv: Condvar,
    pub(super) snapshots: Mutex<BTreeMap<u64, usize>>,
    /// Optimistic transactions in flight and what the applier tracks for them (see `occ`).
    pub(super) occ: Mutex<super::occ_state::Occ>,
    /// Whether the applier tracks written keys (set under the apply lock; see `occ`).
    pub(super) occ_on: AtomicBool,
    pub(super) stall_level: AtomicU8,
    /// Writes queued by a stall and not yet appended (writes behind them queue too, so
    /// that one writer's writes stay in order).
    pub(super) stall_pending: AtomicU64,
    pub(super) stall: Mutex<StallQueue>,
    pub(super) stall_cv: Condvar,
    pub(super) counters: Counters,
    pub(super) closing: AtomicBool,
    pub(super) bg_error: Mutex<Option<Arc<DbError>>>,
    pub(super) listeners: Mutex<Vec<(u64, Listener)>>,
    pub(super) next_listener: AtomicU64,
    pub(super) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(super) apply_queue: Arc<super::apply_queue::ApplyQueue>,
    pub(super) applier: Mutex<Option<JoinHandle<()>>>,
    /// Prepared transactions and their key locks (see `txn`).
    pub(super) txns: Mutex<super::txn_table::Txns>,
    /// How many keys `txns` locks (read without the mutex: zero means no check is needed).
    pub(super) locked_keys: std::sync::atomic::AtomicUsize,
    /// Flags mirroring "some key is locked" (1) for readers that cannot call in cheaply (the
    /// binding's handles read theirs from JavaScript), updated under the `txns` mutex.
    pub(super) lock_watchers: Mutex<Vec<std::sync::Weak<std::sync::atomic::AtomicU32>>>,
}

#[derive(Default)]
pub(super) struct Sched {
    pub(super) flushing: bool,
    pub(super) compactions_running: usize,
    /// Per tree ([`super::version::TreeId`] as index): a level-0 compaction is running.
    pub(super) l0_compacting: [bool; 2],
    /// A manual compaction is running (automatic ones wait).
    pub(super) manual: bool,
    /// Bumped whenever a flush or compaction finishes.
    pub(super) epoch: u64,
}

/// What open found and did.
#[derive(Clone, Debug, Default)]
pub struct DbRecovery {
    /// Sequence number up to which everything was in tables.
    pub flushed_seq: u64,
    /// Log records replayed into the memtable.
    pub replayed_records: u64,
    /// Tables found in the manifest.
    pub tables: u64,
    /// Unreferenced table files removed (left by a crash during flush or compaction).
    pub orphans_removed: u64,
    /// Manifest edits replayed.
    pub manifest_edits: u64,
    /// Bytes of a torn manifest tail cut.
    pub manifest_torn_bytes: u64,
    /// Whether the database was created by this open.
    pub created: bool,
    /// Time open took.
    pub duration: Duration,
}

/// Writes held back by a stall, in arrival order; at most [`STALL_QUEUE_BYTES_MAX`]
/// payload bytes (plus one write, when a single write is larger).
pub(super) struct StallQueue {
    pub(super) q: std::collections::VecDeque<(Arc<WriterCore>, Vec<u8>, bool)>,
    /// Payload bytes in `q`.
    pub(super) bytes: usize,
    /// Writers whose non-blocking write found `q` full; each gets one
    /// `space_available` call once the stall thread drained some.
    pub(super) wanted: Vec<Arc<WriterCore>>,
    pub(super) since: Option<Instant>,
}

impl StallQueue {
    /// Whether a payload of `len` bytes fits (one write always fits an empty queue).
    pub(super) fn fits(&self, len: usize) -> bool {
        self.q.is_empty() || self.bytes + len <= STALL_QUEUE_BYTES_MAX
    }
}

pub(super) const STALL_NONE: u8 = 0;

pub(super) const STALL_SLOWDOWN: u8 = 1;

pub(super) const STALL_STOP: u8 = 2;

pub(super) struct WriterCore {
    pub(super) producer: Producer,
    pub(super) sink: Arc<dyn CompletionSink>,
}

impl Inner {
    pub(super) fn super_version(&self) -> Arc<SuperVersion> {
        self.sv.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn bg_error(&self) -> Option<Arc<DbError>> {
        self.bg_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn emit(&self, ev: DbEvent) {
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
        let prepared = self.prepared_summary();
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
            memtable_bytes: sv.mem.approximate_bytes() as u64,
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
            prepared_transactions: prepared.0,
            oldest_prepared_age_ms: prepared
                .1
                .map_or(0, |at| super::txn_table::now_ms().saturating_sub(at)),
            background_errors: ld(&c.background_errors),
            background_error: self.bg_error().map(|e| e.to_string()),
            log,
        }
    }

    /// Fails the database after a panic on one of its threads (`place` names it): the log is
    /// failed (pending and later writes get [`WalError::Failed`], `ERR_URINGDB_FAILED`), the
    /// failure becomes the background error for good (flush, compaction and writes refuse
    /// with it), and everyone waiting on the scheduler or a stall is woken to see it. Reads
    /// keep working; close works. Returns the log's latched failure.
    pub(crate) fn fail_after_panic(
        &self,
        place: &str,
        payload: &(dyn std::any::Any + Send),
    ) -> Arc<WalError> {
        let msg = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown panic".to_string()
        };
        let latched = self.wal.fail(&WalError::Io {
            context: format!("a panic in {place}"),
            source: Arc::new(std::io::Error::other(msg)),
        });
        let failure = self.panicked.get_or_init(|| latched.clone()).clone();
        add(&self.counters.background_errors, 1);
        let err = DbError::Wal(WalError::Failed(failure.clone()));
        let text = err.to_string();
        *self.bg_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(err));
        self.emit(DbEvent::Error(ErrorEvent { message: text }));
        {
            let _s = self.sched.lock().unwrap_or_else(|e| e.into_inner());
            self.bg_cv.notify_all();
            self.done_cv.notify_all();
        }
        {
            let _s = self.stall.lock().unwrap_or_else(|e| e.into_inner());
            self.stall_cv.notify_all();
        }
        failure
    }

    /// The failure latched by a panic, as the error every later flush or compaction gets.
    pub(crate) fn panic_error(&self) -> Option<DbError> {
        self.panicked
            .get()
            .map(|e| DbError::Wal(WalError::Failed(e.clone())))
    }

    pub(crate) fn set_bg_error(&self, e: DbError) {
        if self.panicked.get().is_some() {
            return; // the panic's failure stays the background error
        }
        add(&self.counters.background_errors, 1);
        let msg = e.to_string();
        *self.bg_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(e));
        self.emit(DbEvent::Error(ErrorEvent { message: msg }));
    }

    pub(crate) fn clear_bg_error(&self) {
        if self.panicked.get().is_some() {
            return; // failed until reopened
        }
        *self.bg_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
