//! The key-value database: an LSM tree on the write-ahead log.
//!
//! # Write path
//! A put, delete or batch is validated and encoded as one log record ([`batch`]). It goes
//! through the log's group commit like any record. After the group's write (and fdatasync,
//! for `sync` writes) the log's committer thread hands the group to the apply hook, which
//! queues a copy of it for the applier thread and returns, so that the committer writes the
//! next group while this one is applied. The applier inserts each record into the active
//! memtable under its sequence number, publishes the visible sequence number, and only then
//! delivers the group's completions (which the log queued behind the records). So a
//! resolved write is visible to every later read, and readers never see a record the log
//! could still lose (for `sync` writes).
//!
//! # Memtables, flush, compaction
//! A memtable that reaches `memtable_bytes` becomes immutable (rotated by the applier
//! thread, the memtable's only writer) and a flush thread writes it to a level-0 table; a version
//! edit in the manifest records the table and the flushed sequence number, after which log
//! segments wholly below it are deleted. Compaction threads merge level 0 into level 1 and
//! level n into n+1 when a level exceeds its target size, dropping versions no snapshot can
//! see. Writes slow down, then stop, when level 0 grows too deep or memtables pile up.
//!
//! # Reads
//! A read takes the visible sequence number, then pins the current `SuperVersion`
//! (memtable, immutable memtables, tables): everything at or below that sequence number is
//! in what it pinned. Point reads look newest first and stop at the first version found;
//! range reads merge all sources (the `iter` module).
//!
//! # Where things are
//! Writers and the stall queue's admission: `write`; the apply hook and the applier thread:
//! `apply`; write stalls and the stall thread: `stall`; point reads and snapshots: `read`;
//! open and recovery: `open`; flush and compaction: `compact`; statistics and events:
//! `stats`; the background rate limiter: `rate_limiter`. This module holds the [`Db`] type,
//! its shared state, the background threads' lifecycle and the handling of background
//! errors.

mod apply;
pub mod batch;
mod compact;
mod error;
mod iter;
pub mod limits;
mod open;
mod options;
mod rate_limiter;
mod read;
mod stall;
mod stats;
mod table_files;
mod version;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::failpoint::arm_failpoint;
pub use error::DbError;
pub use iter::{DbIter, IterBatch, RangeOptions};
pub use open::DbRecovery;
pub use options::DbOptions;
pub use read::SnapshotPin;
pub use stats::{DbEvent, DbStats, LevelStats};
pub use write::{BlockingWriter, DbWriter};

use crate::cache::BlockCache;
use crate::manifest::{ManifestState, ManifestWriter};
use apply::ApplyMsg;
use rate_limiter::RateLimiter;
use stall::{stall_thread, StallQueue};
use stats::{add, json_string, Counters, Listener};
use table_files::TableFiles;
use uringdb_uring::Vfs;
use uringdb_wal::{RecoveryReport, Wal, WalError};
use version::SuperVersion;

/// Name of the write-ahead log's subdirectory.
pub const WAL_DIR: &str = "wal";

/// Manifest state and writer (held across the manifest's fdatasync).
struct ManifestCore {
    state: ManifestState,
    writer: ManifestWriter,
    /// The writer must not be appended to: a rewrite failed, after which CURRENT may name
    /// either manifest. The next install starts a fresh manifest first.
    fresh_needed: bool,
    /// Tables that an edit whose append failed ambiguously (the record may be on disk)
    /// named, and `state` does not: recovery may need them until a fresh manifest that does
    /// not name them is durable, and only then are they removed (else the orphan sweep at
    /// the next open removes them).
    limbo: Vec<u64>,
}

pub(crate) struct Inner {
    /// Set once, by the first panic on one of the database's threads (see
    /// [`Inner::fail_after_panic`]): the database is failed until reopened.
    panicked: OnceLock<Arc<WalError>>,
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    opts: DbOptions,
    cache: Arc<BlockCache>,
    /// Open table files, at most `maxOpenFiles` (see [`TableFiles`]).
    table_files: Arc<TableFiles>,
    limiter: Option<Arc<RateLimiter>>,
    wal: Wal,
    wal_report: RecoveryReport,
    recovery: DbRecovery,
    sv: RwLock<Arc<SuperVersion>>,
    visible_seq: AtomicU64,
    /// Serialises memtable writes (the applier thread) with rotations from elsewhere.
    apply_lock: Mutex<()>,
    memtable_capacity: usize,
    manifest: Mutex<ManifestCore>,
    /// Background scheduling: flags under this lock, `bg_cv` wakes the threads.
    sched: Mutex<Sched>,
    bg_cv: Condvar,
    /// Waiters for flush/compaction progress.
    done_cv: Condvar,
    snapshots: Mutex<BTreeMap<u64, usize>>,
    stall_level: AtomicU8,
    /// Writes queued by a stall and not yet appended (writes behind them queue too, so
    /// that one writer's writes stay in order).
    stall_pending: AtomicU64,
    stall: Mutex<StallQueue>,
    stall_cv: Condvar,
    counters: Counters,
    closing: AtomicBool,
    bg_error: Mutex<Option<Arc<DbError>>>,
    listeners: Mutex<Vec<(u64, Listener)>>,
    next_listener: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
    apply_tx: std::sync::mpsc::SyncSender<ApplyMsg>,
    applier: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Sched {
    flushing: bool,
    compactions_running: usize,
    l0_compacting: bool,
    /// A manual compaction is running (automatic ones wait).
    manual: bool,
    /// Bumped whenever a flush or compaction finishes.
    epoch: u64,
}

/// The open database (cheap to clone; all clones share it).
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).finish()
    }
}

impl Db {
    /// What open found and did.
    pub fn recovery(&self) -> &DbRecovery {
        &self.inner.recovery
    }

    /// The log's recovery report.
    pub fn wal_recovery(&self) -> &RecoveryReport {
        &self.inner.wal_report
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &DbOptions {
        &self.inner.opts
    }

    /// The I/O backend's probe report (which backend, why a fallback).
    pub fn probe(&self) -> &uringdb_uring::ProbeReport {
        self.inner.wal.probe()
    }

    /// Largest batch payload accepted.
    pub fn max_batch_bytes(&self) -> usize {
        self.inner.wal.max_record_bytes()
    }

    /// Flushes the memtable to a table and waits until every memtable holding data
    /// written before this call is in a table.
    pub fn flush(&self) -> Result<(), DbError> {
        self.inner.flush_and_wait()
    }

    /// Compacts every table overlapping `[lo, hi]` (unbounded where `None`) into the
    /// bottom level, dropping overwritten versions and deletions no snapshot needs.
    pub fn compact_range(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Result<(), DbError> {
        self.inner.flush_and_wait()?;
        // The compaction runs on the caller's thread: a panic in it fails the database (the
        // scheduler would otherwise keep it marked running) and is returned as that failure.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            compact::compact_range(&self.inner, lo, hi)
        }))
        .unwrap_or_else(|p| {
            let e = self.inner.fail_after_panic("a manual compaction", &*p);
            Err(DbError::Wal(WalError::Failed(e)))
        })
    }

    /// Stops background work, writes out writes held by a stall, closes the log (pending
    /// writes complete), and releases the directory. Idempotent.
    pub fn close(&self) -> Result<(), DbError> {
        self.inner.close()
    }
}

impl Inner {
    fn bg_error(&self) -> Option<Arc<DbError>> {
        self.bg_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn start_threads(self: &Arc<Self>) -> Result<(), DbError> {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        // A panic in a background job must fail the database, not leave its scheduler state
        // (a flush or compaction marked running forever) for writers and close to wait on.
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            let weak = Arc::downgrade(self);
            let place = format!("the {name} thread");
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                        if let Some(inner) = weak.upgrade() {
                            inner.fail_after_panic(&place, &*p);
                        }
                    }
                })
                .map_err(|e| DbError::io("spawning a background thread", e))
        };
        let weak = Arc::downgrade(self);
        threads.push(spawn(
            "uringdb-flush".into(),
            Box::new(move || compact::flush_thread(weak)),
        )?);
        for i in 0..self.opts.compaction_threads {
            let weak = Arc::downgrade(self);
            threads.push(spawn(
                format!("uringdb-compact-{i}"),
                Box::new(move || compact::compaction_thread(weak)),
            )?);
        }
        let weak = Arc::downgrade(self);
        threads.push(spawn(
            "uringdb-stall".into(),
            Box::new(move || stall_thread(weak)),
        )?);
        Ok(())
    }

    fn flush_and_wait(&self) -> Result<(), DbError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(DbError::Closed);
        }
        if let Some(e) = self.panic_error() {
            return Err(e);
        }
        let target = {
            let _g = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
            let seq = self.visible_seq.load(Ordering::Acquire);
            self.rotate_locked();
            seq
        };
        let mut s = self.sched.lock().unwrap_or_else(|e| e.into_inner());
        self.bg_cv.notify_all();
        loop {
            let flushed = self
                .manifest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .state
                .flushed_seq;
            let sv = self.super_version();
            let pending = sv
                .imm
                .iter()
                .any(|m| m.last_seq.load(Ordering::Acquire) <= target && !m.table.is_empty());
            if flushed >= target || !pending {
                return Ok(());
            }
            if let Some(e) = self.bg_error() {
                return Err(DbError::Background(e));
            }
            if self.closing.load(Ordering::Acquire) {
                return Err(DbError::Closed);
            }
            s = self
                .done_cv
                .wait_timeout(s, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn close(&self) -> Result<(), DbError> {
        if self.closing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Release writes held by a stall into the log, so they complete with the close.
        {
            let _g = self.stall.lock().unwrap_or_else(|e| e.into_inner());
            self.stall_cv.notify_all();
        }
        {
            let _s = self.sched.lock().unwrap_or_else(|e| e.into_inner());
            self.bg_cv.notify_all();
            self.done_cv.notify_all();
        }
        let threads: Vec<JoinHandle<()>> = self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
        let closed = self.wal.close();
        // Everything the log completed is queued for the applier: let it finish.
        let _ = self.apply_tx.send(ApplyMsg::Stop);
        let applier = self
            .applier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = applier {
            let _ = h.join();
        }
        match closed {
            Err(WalError::Failed(_)) | Ok(()) => Ok(()),
            Err(e) => Err(DbError::Wal(e)),
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
        self.emit("error", format!("{{\"message\":{}}}", json_string(&text)));
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
        self.emit("error", format!("{{\"message\":{}}}", json_string(&msg)));
    }

    pub(crate) fn clear_bg_error(&self) {
        if self.panicked.get().is_some() {
            return; // failed until reopened
        }
        *self.bg_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
