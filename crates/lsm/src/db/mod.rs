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
//! A memtable that reaches `memtable_bytes` becomes immutable (rotated by the committer,
//! the memtable's only writer) and a flush thread writes it to a level-0 table; a version
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

pub mod batch;
mod compact;
mod error;
mod iter;
pub mod limits;
mod options;
mod table_files;
mod version;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use crate::failpoint::arm_failpoint;
pub use error::DbError;
pub use iter::{DbIter, IterBatch, RangeOptions};
pub use options::DbOptions;

use crate::cache::{BlockCache, CacheStats};
use crate::failpoint::failpoint;
use crate::internal_key::{self, ValueKind};
use crate::limits::{APPLY_QUEUE_GROUPS, STALL_QUEUE_BYTES_MAX};
use crate::manifest::{self, ManifestState, ManifestWriter, NUM_LEVELS};
use crate::memtable::{Lookup, WriteError};
use crate::table::{Comparator, Table};
use table_files::TableFiles;
use uringdb_uring::Vfs;
use uringdb_wal::{
    ApplyHook, CompletionSink, Producer, RecoveryReport, TryOutcome, Wal, WalError, WalStats,
};
use version::{Mem, SuperVersion, TableHandle, Version, VfsFile};

/// Name of the write-ahead log's subdirectory.
pub const WAL_DIR: &str = "wal";

/// An event for observers (diagnostics channels): `kind` is `flush`, `compaction`, `stall`
/// or `recovery`; `json` is an object with the event's facts.
#[derive(Clone, Debug)]
pub struct DbEvent {
    /// What happened.
    pub kind: &'static str,
    /// Its facts, as a JSON object.
    pub json: String,
}

type Listener = Arc<dyn Fn(&DbEvent) + Send + Sync>;

/// Counters, updated with relaxed atomics.
#[derive(Default)]
struct Counters {
    user_bytes: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
    flushes: AtomicU64,
    flush_bytes: AtomicU64,
    compactions: AtomicU64,
    compaction_read: AtomicU64,
    compaction_written: AtomicU64,
    stalls: AtomicU64,
    slowdowns: AtomicU64,
    stops: AtomicU64,
    stall_us: AtomicU64,
    bloom_checked: AtomicU64,
    bloom_useful: AtomicU64,
    gets: AtomicU64,
    background_errors: AtomicU64,
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// A token bucket limiting background write bytes per second.
pub(crate) struct RateLimiter {
    rate: u64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(rate: u64) -> RateLimiter {
        RateLimiter {
            rate,
            state: Mutex::new((rate as f64 / 10.0, Instant::now())),
        }
    }

    /// Waits until `bytes` may be written.
    pub(crate) fn request(&self, bytes: u64) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let burst = self.rate as f64 / 10.0;
            s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate as f64).min(burst);
            s.1 = now;
            s.0 -= bytes as f64;
            if s.0 < 0.0 {
                Duration::from_secs_f64(-s.0 / self.rate as f64)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Writes held back by a stall, in arrival order; at most [`STALL_QUEUE_BYTES_MAX`]
/// payload bytes (plus one write, when a single write is larger).
struct StallQueue {
    q: std::collections::VecDeque<(Arc<WriterCore>, Vec<u8>, bool)>,
    /// Payload bytes in `q`.
    bytes: usize,
    /// Writers whose non-blocking write found `q` full; each gets one
    /// `space_available` call once the stall thread drained some.
    wanted: Vec<Arc<WriterCore>>,
    since: Option<Instant>,
}

impl StallQueue {
    /// Whether a payload of `len` bytes fits (one write always fits an empty queue).
    fn fits(&self, len: usize) -> bool {
        self.q.is_empty() || self.bytes + len <= STALL_QUEUE_BYTES_MAX
    }
}

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
    /// Serialises memtable writes (the committer) with rotations from elsewhere.
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

/// A registered snapshot: while it lives, compaction keeps every version it can see.
pub struct SnapshotPin {
    seq: u64,
    inner: Weak<Inner>,
}

impl SnapshotPin {
    /// The snapshot's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl std::fmt::Debug for SnapshotPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotPin")
            .field("seq", &self.seq)
            .finish()
    }
}

impl Drop for SnapshotPin {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            let mut s = inner.snapshots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = s.get_mut(&self.seq) {
                *n -= 1;
                if *n == 0 {
                    s.remove(&self.seq);
                }
            }
        }
    }
}

/// Work for the applier thread, in log order: a group's records, then that group's
/// completions. The committer only copies a group's payloads and moves on to the next
/// group's write while the applier inserts this one into the memtable; a completion is
/// delivered only after everything before it was applied, so a resolved write is visible.
enum ApplyMsg {
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

/// The log's apply hook: hands each group to the applier thread (see [`ApplyMsg`]).
struct Hook {
    inner: OnceLock<Weak<Inner>>,
    tx: std::sync::mpsc::SyncSender<ApplyMsg>,
}

impl ApplyHook for Hook {
    fn apply(&self, records: &mut dyn Iterator<Item = (u64, &[u8])>) {
        let mut data = Vec::new();
        let mut recs = Vec::new();
        for (seq, payload) in records {
            recs.push((seq, data.len(), payload.len()));
            data.extend_from_slice(payload);
        }
        // The applier outlives every sender's use (it stops only on `Stop`, sent after the
        // log closed); if it is gone the database is gone too.
        let _ = self.tx.send(ApplyMsg::Records { data, recs });
    }
}

/// Wraps a writer's sink so that its completions travel behind the records they cover.
struct OrderedSink {
    inner: Arc<dyn CompletionSink>,
    tx: std::sync::mpsc::SyncSender<ApplyMsg>,
}

impl CompletionSink for OrderedSink {
    fn completed(&self, seqs: &[u64], group: &uringdb_wal::GroupInfo) {
        let _ = self.tx.send(ApplyMsg::Done {
            sink: self.inner.clone(),
            seqs: seqs.to_vec(),
            group: *group,
        });
    }
    fn failed(&self, count: usize, error: &WalError) {
        let _ = self.tx.send(ApplyMsg::Failed {
            sink: self.inner.clone(),
            count,
            error: error.clone(),
        });
    }
    fn space_available(&self) {
        // Not ordered with completions: it only says "retry", and carries no outcome.
        self.inner.space_available();
    }
}

fn applier_thread(weak: Weak<Inner>, rx: std::sync::mpsc::Receiver<ApplyMsg>) {
    // After a panic here the memtable may lack records the log holds, so nothing from then on
    // may be acknowledged; completions keep flowing, as failures, so that no caller waits
    // forever (the log is failed too, so no new group is written).
    let mut failed: Option<Arc<WalError>> = None;
    for msg in rx {
        if let ApplyMsg::Stop = msg {
            return;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match msg {
            ApplyMsg::Records { data, recs } => {
                if failed.is_some() {
                    return;
                }
                if let Some(inner) = weak.upgrade() {
                    failpoint("apply.group");
                    let mut it = recs
                        .iter()
                        .map(|&(seq, start, len)| (seq, &data[start..start + len]));
                    inner.apply_records(&mut it);
                }
            }
            ApplyMsg::Done { sink, seqs, group } => match &failed {
                None => sink.completed(&seqs, &group),
                Some(e) => sink.failed(seqs.len(), &WalError::Failed(e.clone())),
            },
            ApplyMsg::Failed { sink, count, error } => sink.failed(count, &error),
            ApplyMsg::Stop => {}
        }));
        if let Err(p) = r {
            if let Some(inner) = weak.upgrade() {
                failed = Some(inner.fail_after_panic("the applier thread", &*p));
            } else {
                failed = Some(Arc::new(WalError::Closed));
            }
        }
    }
}

struct WriterCore {
    producer: Producer,
    sink: Arc<dyn CompletionSink>,
}

/// A source of writes whose completions go to one [`CompletionSink`] (one per JavaScript
/// thread). Writes through one writer complete in order.
pub struct DbWriter {
    core: Arc<WriterCore>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DbWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbWriter").finish_non_exhaustive()
    }
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
    /// [`STALL_QUEUE_BYTES_MAX`] plus one write).
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

const STALL_NONE: u8 = 0;
const STALL_SLOWDOWN: u8 = 1;
const STALL_STOP: u8 = 2;

/// Crash-test hook beside [`failpoint`](crate::failpoint::failpoint): `URINGDB_TEST_MANIFEST_REWRITE_BYTES=<n>` overrides
/// `manifest_rewrite_bytes` (which JavaScript does not expose), so that a child process
/// rewrites its manifest at every flush and compaction and the rewrite's failpoints are
/// reached. Read at each open.
fn test_manifest_rewrite_bytes() -> Option<u64> {
    std::env::var("URINGDB_TEST_MANIFEST_REWRITE_BYTES")
        .ok()?
        .parse()
        .ok()
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: the log in `dir/wal`, tables,
    /// manifest and CURRENT in `dir`.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, DbError> {
        Self::open_with(dir, opts, None)
    }

    /// Opens on a caller-provided I/O layer (tests: a shared `FaultVfs`).
    pub fn open_on(dir: &Path, opts: DbOptions, vfs: Arc<dyn Vfs>) -> Result<Db, DbError> {
        Self::open_with(dir, opts, Some(vfs))
    }

    fn open_with(
        dir: &Path,
        mut opts: DbOptions,
        vfs: Option<Arc<dyn Vfs>>,
    ) -> Result<Db, DbError> {
        let started = Instant::now();
        if let Some(bytes) = test_manifest_rewrite_bytes() {
            opts.manifest_rewrite_bytes = bytes;
        }
        opts.validate()?;
        let (apply_tx, apply_rx) = std::sync::mpsc::sync_channel(APPLY_QUEUE_GROUPS);
        let hook = Arc::new(Hook {
            inner: OnceLock::new(),
            tx: apply_tx.clone(),
        });
        let wal_dir = dir.join(WAL_DIR);
        let (wal, wal_report) = Wal::open_with(&wal_dir, &opts.wal, vfs, Some(hook.clone()))?;
        let vfs = wal.vfs();
        let cmp_name = Comparator::InternalKey.name();
        let recovered = manifest::recover(&*vfs, dir, cmp_name)?;
        let mut recovery = DbRecovery::default();
        let mut state = match recovered {
            Some(r) => {
                recovery.manifest_edits = r.edits;
                recovery.manifest_torn_bytes = r.torn_tail_bytes;
                r.state
            }
            None => {
                recovery.created = true;
                ManifestState::new(cmp_name)
            }
        };
        recovery.flushed_seq = state.flushed_seq;
        let wal_last = wal.last_seq();
        if wal_last < state.flushed_seq {
            return Err(DbError::Corruption {
                file: wal_dir.clone(),
                offset: 0,
                reason: format!(
                    "the log ends at sequence number {wal_last} but the manifest says everything up to {} was flushed: the log was replaced or truncated",
                    state.flushed_seq
                ),
            });
        }
        if wal_last > state.flushed_seq && wal.first_seq() > state.flushed_seq + 1 {
            return Err(DbError::Corruption {
                file: wal_dir.clone(),
                offset: 0,
                reason: format!(
                    "log records {}..{} are missing (the log starts at {})",
                    state.flushed_seq + 1,
                    wal.first_seq() - 1,
                    wal.first_seq()
                ),
            });
        }
        let cache = BlockCache::new(opts.cache_bytes);
        let table_files = TableFiles::new(vfs.clone(), opts.effective_max_open_files());
        // Open every live table (beyond the table-file cache's capacity their files are
        // closed again at once, and reopened when read).
        let mut version = Version::empty();
        for (level, files) in state.levels.iter().enumerate() {
            for meta in files {
                let t = open_table(&table_files, dir, &cache, meta.clone())?;
                version.levels[level].push(Arc::new(t));
                recovery.tables += 1;
            }
        }
        version.sort();
        // Remove files no version references: tables a crash left half-written, old
        // manifests.
        let live: std::collections::HashSet<u64> = state.live_files().into_iter().collect();
        let names = vfs
            .list_dir(dir)
            .map_err(|e| DbError::io(format!("listing {}", dir.display()), e))?;
        for name in names {
            if let Some(num) = name
                .strip_suffix(".sst")
                .and_then(|n| n.parse::<u64>().ok())
            {
                if !live.contains(&num) {
                    vfs.remove_file(&dir.join(&name))
                        .map_err(|e| DbError::io(format!("removing orphan {name}"), e))?;
                    recovery.orphans_removed += 1;
                }
            }
        }
        // A fresh manifest holding the current state.
        let number = state.next_file_number;
        state.next_file_number += 1;
        state.last_seq = state.last_seq.max(wal_last);
        let writer = ManifestWriter::create(vfs.clone(), dir, number, &state)?;
        let memtable_capacity = opts.memtable_bytes + 2 * wal.max_record_bytes() + (2 << 20);
        let limiter = (opts.rate_limit_bytes_per_sec > 0)
            .then(|| Arc::new(RateLimiter::new(opts.rate_limit_bytes_per_sec)));
        let flushed_seq = state.flushed_seq;
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            vfs,
            cache,
            table_files,
            limiter,
            wal,
            wal_report,
            recovery: DbRecovery::default(),
            sv: RwLock::new(Arc::new(SuperVersion {
                mem: Arc::new(Mem::new(memtable_capacity)),
                imm: Vec::new(),
                version: Arc::new(version),
            })),
            visible_seq: AtomicU64::new(flushed_seq),
            apply_lock: Mutex::new(()),
            memtable_capacity,
            manifest: Mutex::new(ManifestCore {
                state,
                writer,
                fresh_needed: false,
                limbo: Vec::new(),
            }),
            sched: Mutex::new(Sched::default()),
            bg_cv: Condvar::new(),
            done_cv: Condvar::new(),
            snapshots: Mutex::new(BTreeMap::new()),
            stall_level: AtomicU8::new(STALL_NONE),
            stall_pending: AtomicU64::new(0),
            stall: Mutex::new(StallQueue {
                q: Default::default(),
                bytes: 0,
                wanted: Vec::new(),
                since: None,
            }),
            stall_cv: Condvar::new(),
            counters: Counters::default(),
            closing: AtomicBool::new(false),
            bg_error: Mutex::new(None),
            panicked: OnceLock::new(),
            listeners: Mutex::new(Vec::new()),
            next_listener: AtomicU64::new(1),
            threads: Mutex::new(Vec::new()),
            apply_tx,
            applier: Mutex::new(None),
            opts,
        });
        // Replay the log above the flushed sequence number.
        let mut replayed = 0u64;
        if wal_last > flushed_seq {
            let mut cursor = inner.wal.cursor(flushed_seq + 1)?;
            loop {
                let b = inner.wal.read(&mut cursor, wal_last + 1, 4096, 16 << 20)?;
                if b.records.is_empty() {
                    break;
                }
                let mut it = b
                    .records
                    .iter()
                    .map(|&(seq, start, len)| (seq, &b.data[start..start + len]));
                replayed += b.records.len() as u64;
                inner.apply_records(&mut it);
            }
        }
        inner
            .visible_seq
            .store(wal_last.max(flushed_seq), Ordering::Release);
        recovery.replayed_records = replayed;
        recovery.duration = started.elapsed();
        // `recovery` is filled in here, before the database is shared (no other reference
        // exists yet: the hook is not set and no thread has started).
        let inner = {
            let mut inner = inner;
            if let Some(i) = Arc::get_mut(&mut inner) {
                i.recovery = recovery;
            }
            inner
        };
        hook.inner
            .set(Arc::downgrade(&inner))
            .map_err(|_| DbError::InvalidArgument("apply hook set twice".into()))?;
        {
            let weak = Arc::downgrade(&inner);
            let h = std::thread::Builder::new()
                .name("uringdb-apply".into())
                .spawn(move || applier_thread(weak, apply_rx))
                .map_err(|e| DbError::io("spawning the applier thread", e))?;
            *inner.applier.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
        }
        inner.start_threads()?;
        inner.update_stall();
        inner.bg_cv.notify_all();
        Ok(Db { inner })
    }

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

    /// A writer whose completions go to `sink` (see [`DbWriter`]).
    pub fn writer(&self, sink: Arc<dyn CompletionSink>) -> DbWriter {
        let sink: Arc<dyn CompletionSink> = Arc::new(OrderedSink {
            inner: sink,
            tx: self.inner.apply_tx.clone(),
        });
        DbWriter {
            core: Arc::new(WriterCore {
                producer: self.inner.wal.producer(sink.clone()),
                sink,
            }),
            inner: self.inner.clone(),
        }
    }

    /// The newest visible sequence number.
    pub fn visible_seq(&self) -> u64 {
        self.inner.visible_seq.load(Ordering::Acquire)
    }

    /// Reads `key` at the current state (or at `snapshot`).
    pub fn get(
        &self,
        key: &[u8],
        snapshot: Option<&SnapshotPin>,
    ) -> Result<Option<Vec<u8>>, DbError> {
        let mut out = None;
        self.get_with(key, snapshot, |v| out = v.map(<[u8]>::to_vec))?;
        Ok(out)
    }

    /// Reads `key` and passes the value (borrowed, `None` if absent) to `f`, without
    /// copying when it is in a memtable.
    pub fn get_with<R>(
        &self,
        key: &[u8],
        snapshot: Option<&SnapshotPin>,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, DbError> {
        let inner = &self.inner;
        add(&inner.counters.gets, 1);
        let seq = match snapshot {
            Some(s) => s.seq,
            None => inner.visible_seq.load(Ordering::Acquire),
        };
        let sv = inner.super_version();
        for m in std::iter::once(&sv.mem).chain(sv.imm.iter()) {
            match m.table.get(key, seq) {
                Lookup::Found(v) => return Ok(f(Some(v))),
                Lookup::Deleted => return Ok(f(None)),
                Lookup::NotFound => {}
            }
        }
        let mut lookup = Vec::with_capacity(key.len() + 8);
        internal_key::encode_lookup(&mut lookup, key, seq);
        let v = &sv.version;
        for t in &v.levels[0] {
            if t.smallest_user_key() <= key && key <= t.largest_user_key() {
                if let Some(r) = inner.table_get(t, key, &lookup)? {
                    return Ok(f(r.as_deref()));
                }
            }
        }
        for level in 1..NUM_LEVELS {
            let files = &v.levels[level];
            let i = v.find_file(level, key);
            if let Some(t) = files.get(i) {
                if t.smallest_user_key() <= key {
                    if let Some(r) = inner.table_get(t, key, &lookup)? {
                        return Ok(f(r.as_deref()));
                    }
                }
            }
        }
        Ok(f(None))
    }

    /// Whether `snapshot` was taken from this database.
    pub fn owns(&self, snapshot: &SnapshotPin) -> bool {
        std::ptr::eq(snapshot.inner.as_ptr(), Arc::as_ptr(&self.inner))
    }

    /// Registers a snapshot of the current state.
    pub fn snapshot(&self) -> SnapshotPin {
        let inner = &self.inner;
        let mut s = inner.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        let seq = inner.visible_seq.load(Ordering::Acquire);
        *s.entry(seq).or_insert(0) += 1;
        SnapshotPin {
            seq,
            inner: Arc::downgrade(inner),
        }
    }

    /// An iterator over `range` at `snapshot` (or at a new implicit snapshot).
    pub fn iter(&self, opts: RangeOptions, snapshot: Option<&SnapshotPin>) -> DbIter {
        let (seq, pin) = match snapshot {
            Some(s) => (s.seq, None),
            None => {
                let p = self.snapshot();
                (p.seq, Some(p))
            }
        };
        let sv = self.inner.super_version();
        DbIter::new(sv, seq, opts, pin)
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

    /// Stops background work, writes out writes held by a stall, closes the log (pending
    /// writes complete), and releases the directory. Idempotent.
    pub fn close(&self) -> Result<(), DbError> {
        self.inner.close()
    }
}

/// A writer that waits for each write's outcome (for Rust callers and tests; the binding
/// uses [`DbWriter`] with its own sink).
pub struct BlockingWriter {
    w: DbWriter,
    rx: Mutex<std::sync::mpsc::Receiver<Result<u64, WalError>>>,
}

impl std::fmt::Debug for BlockingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingWriter").finish_non_exhaustive()
    }
}

struct ChannelSink(Mutex<std::sync::mpsc::Sender<Result<u64, WalError>>>);

impl CompletionSink for ChannelSink {
    fn completed(&self, seqs: &[u64], _group: &uringdb_wal::GroupInfo) {
        let tx = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for &s in seqs {
            let _ = tx.send(Ok(s));
        }
    }
    fn failed(&self, count: usize, error: &WalError) {
        let tx = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..count {
            let _ = tx.send(Err(error.clone()));
        }
    }
}

impl BlockingWriter {
    /// Writes `batch` and waits for its outcome; returns its sequence number.
    pub fn write(&self, batch: &batch::WriteBatch, sync: bool) -> Result<u64, DbError> {
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        self.w.write(batch.as_bytes(), sync)?;
        match rx.recv() {
            Ok(r) => r.map_err(DbError::Wal),
            Err(_) => Err(DbError::Closed),
        }
    }

    /// Puts one key.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<u64, DbError> {
        let mut b = batch::WriteBatch::new();
        b.put(key, value);
        self.write(&b, true)
    }

    /// Deletes one key.
    pub fn delete(&self, key: &[u8]) -> Result<u64, DbError> {
        let mut b = batch::WriteBatch::new();
        b.delete(key);
        self.write(&b, true)
    }
}

impl Db {
    /// A [`BlockingWriter`].
    pub fn blocking_writer(&self) -> BlockingWriter {
        let (tx, rx) = std::sync::mpsc::channel();
        BlockingWriter {
            w: self.writer(Arc::new(ChannelSink(Mutex::new(tx)))),
            rx: Mutex::new(rx),
        }
    }
}

impl DbWriter {
    /// Logs a batch payload (see [`batch`]); the outcome arrives at the writer's sink.
    /// Refuses malformed batches, a closed database, and (after a background error)
    /// writes, synchronously. Blocks while the commit queue or a stall's queue is full
    /// (for Rust callers on their own threads; the binding uses
    /// [`DbWriter::try_write_packed`]).
    pub fn write(&self, payload: &[u8], sync: bool) -> Result<(), DbError> {
        self.admit(payload, sync, true).map(|_| ())
    }

    /// Logs a run of batch payloads in order without ever blocking: `data` holds them back
    /// to back, `lens` their lengths, `syncs` one flag each (non-zero: sync). Payloads are
    /// taken in order until the commit queue or a write stall's queue (bounded by
    /// [`STALL_QUEUE_BYTES_MAX`]) is full; [`TryOutcome::accepted`] says how many went in.
    /// When `full`, the writer is registered for one `space_available` call at its sink
    /// (`registered`, see [`TryOutcome`]) and the caller retries the rest, in order, then.
    /// On an error, the payloads before it were taken and the error says how many.
    pub fn try_write_packed(
        &self,
        data: &[u8],
        lens: &[u32],
        syncs: &[u8],
    ) -> Result<TryOutcome, (usize, DbError)> {
        let mut out = TryOutcome::default();
        if lens.len() != syncs.len() {
            return Err((
                0,
                DbError::InvalidArgument("writePacked: lens and syncs differ in length".into()),
            ));
        }
        let mut at = 0usize;
        for (i, (&len, &sync)) in lens.iter().zip(syncs).enumerate() {
            let end = at + len as usize;
            let Some(p) = data.get(at..end) else {
                return Err((
                    i,
                    DbError::InvalidArgument("writePacked: lengths run past the data".into()),
                ));
            };
            let r = self.admit(p, sync != 0, false).map_err(|e| (i, e))?;
            out.registered |= r.registered;
            if r.full {
                out.full = true;
                break;
            }
            out.accepted = i + 1;
            at = end;
        }
        Ok(out)
    }

    /// One write: validated, then into the stall queue (if a stall holds writes) or the
    /// log. Without `wait`, a full queue returns `full` instead of blocking.
    fn admit(&self, payload: &[u8], sync: bool, wait: bool) -> Result<TryOutcome, DbError> {
        let inner = &self.inner;
        if inner.closing.load(Ordering::Acquire) {
            return Err(DbError::Closed);
        }
        batch::validate(payload)?;
        if payload.len() > inner.wal.max_record_bytes() {
            return Err(DbError::Wal(WalError::TooLarge {
                bytes: payload.len(),
                limit: inner.wal.max_record_bytes(),
            }));
        }
        if let Some(e) = inner.bg_error() {
            return Err(DbError::Background(e));
        }
        let accepted = TryOutcome {
            accepted: 1,
            ..TryOutcome::default()
        };
        if inner.stall_level.load(Ordering::Acquire) != STALL_NONE
            || inner.stall_pending.load(Ordering::Acquire) > 0
        {
            let mut st = inner.stall.lock().unwrap_or_else(|e| e.into_inner());
            if inner.stall_level.load(Ordering::Acquire) != STALL_NONE
                || inner.stall_pending.load(Ordering::Acquire) > 0
            {
                while !st.fits(payload.len()) {
                    if !wait {
                        // Parked with the caller; the stall thread calls back once it
                        // drained some (the check and the registration share the lock
                        // with the drain, so the call cannot be missed).
                        let registered = !st.wanted.iter().any(|w| Arc::ptr_eq(w, &self.core));
                        if registered {
                            st.wanted.push(self.core.clone());
                        }
                        return Ok(TryOutcome {
                            accepted: 0,
                            full: true,
                            registered,
                        });
                    }
                    if inner.closing.load(Ordering::Acquire) {
                        return Err(DbError::Closed);
                    }
                    st = inner
                        .stall_cv
                        .wait_timeout(st, Duration::from_millis(50))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                if st.since.is_none() {
                    st.since = Some(Instant::now());
                }
                inner.stall_pending.fetch_add(1, Ordering::AcqRel);
                st.bytes += payload.len();
                st.q.push_back((self.core.clone(), payload.to_vec(), sync));
                drop(st);
                inner.stall_cv.notify_all();
                return Ok(accepted);
            }
        }
        if wait {
            self.core
                .producer
                .append(payload, sync)
                .map_err(DbError::Wal)?;
            return Ok(accepted);
        }
        self.core
            .producer
            .try_append_many(&[payload], sync)
            .map_err(DbError::Wal)
    }

    /// Asks for every earlier write of this writer to be durable; completes (at the sink)
    /// with the durable sequence number.
    pub fn sync(&self) -> Result<(), DbError> {
        self.core.producer.sync().map_err(DbError::Wal)
    }
}

fn open_table(
    files: &Arc<TableFiles>,
    dir: &Path,
    cache: &Arc<BlockCache>,
    meta: manifest::FileMeta,
) -> Result<TableHandle, DbError> {
    let path = dir.join(manifest::table_file_name(meta.number));
    let file = VfsFile::open(files, meta.number, path.clone(), meta.file_bytes).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DbError::Corruption {
                file: path.clone(),
                offset: 0,
                reason: "table file named by the manifest is missing".into(),
            }
        } else {
            DbError::io(format!("opening {}", path.display()), e)
        }
    })?;
    let table = Table::open_cached(
        file,
        meta.file_bytes,
        path.clone(),
        Comparator::InternalKey,
        Some(cache.clone()),
    )?;
    Ok(TableHandle {
        meta,
        table,
        path,
        obsolete: AtomicBool::new(false),
        vfs: files.vfs().clone(),
        compacting: AtomicBool::new(false),
    })
}

impl Inner {
    fn super_version(&self) -> Arc<SuperVersion> {
        self.sv.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn bg_error(&self) -> Option<Arc<DbError>> {
        self.bg_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

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

    /// Point lookup in one table: `Some(Some(v))` found, `Some(None)` deleted, `None`
    /// absent.
    fn table_get(
        &self,
        t: &TableHandle,
        key: &[u8],
        lookup: &[u8],
    ) -> Result<Option<Option<Vec<u8>>>, DbError> {
        add(&self.counters.bloom_checked, 1);
        if !t.table.may_contain(lookup) {
            add(&self.counters.bloom_useful, 1);
            return Ok(None);
        }
        match t.table.get_entry(lookup)? {
            Some((k, v)) => {
                let p = internal_key::decode(&k).ok_or_else(|| DbError::Corruption {
                    file: t.path.clone(),
                    offset: 0,
                    reason: "malformed internal key".into(),
                })?;
                if p.user_key != key {
                    return Ok(None);
                }
                Ok(Some(match p.kind {
                    ValueKind::Put => Some(v),
                    ValueKind::Delete => None,
                }))
            }
            None => Ok(None),
        }
    }

    /// The apply hook's body (also used by replay at open).
    fn apply_records(&self, records: &mut dyn Iterator<Item = (u64, &[u8])>) {
        let _g = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut mem = self.super_version().mem.clone();
        let mut last = 0;
        // Buffers reused across the group's records; counters added once per group.
        let mut ops: Vec<batch::Op<'_>> = Vec::new();
        let mut shadowed: Vec<bool> = Vec::new();
        let (mut user_bytes, mut puts, mut deletes) = (0u64, 0u64, 0u64);
        for (seq, payload) in records {
            ops.clear();
            ops.extend(batch::ops(payload));
            // Rotate first if the record might not fit, so a record never spans two
            // memtables (the flushed sequence number must cover whole records).
            let estimate = payload.len() + ops.len() * 128;
            if mem.table.reserved_bytes() + estimate + (1 << 20) > self.memtable_capacity
                && !mem.table.is_empty()
            {
                self.rotate_locked();
                mem = self.super_version().mem.clone();
            }
            let n = ops.len();
            // A later operation on the same key in this batch wins (all share `seq`).
            shadowed.clear();
            if n <= 16 {
                shadowed
                    .extend((0..n).map(|i| ops[i + 1..].iter().any(|o| o.key() == ops[i].key())));
            } else {
                let mut seen = std::collections::HashSet::with_capacity(n);
                shadowed.extend(ops.iter().rev().map(|o| !seen.insert(o.key())));
                shadowed.reverse();
            }
            for (i, op) in ops.iter().enumerate() {
                if shadowed[i] {
                    continue;
                }
                match op {
                    batch::Op::Put(k, v) => {
                        user_bytes += (k.len() + v.len()) as u64;
                        puts += 1;
                    }
                    batch::Op::Delete(k) => {
                        user_bytes += k.len() as u64;
                        deletes += 1;
                    }
                }
                let mut attempts = 0;
                loop {
                    let r = match *op {
                        batch::Op::Put(k, v) => mem.table.put(k, seq, v),
                        batch::Op::Delete(k) => mem.table.delete(k, seq),
                    };
                    match r {
                        Ok(()) => break,
                        Err(WriteError::Full(_)) if attempts == 0 => {
                            attempts += 1;
                            self.rotate_locked();
                            mem = self.super_version().mem.clone();
                        }
                        // Validated sizes make this unreachable; never lose silently.
                        Err(e) => panic!("memtable refused a validated write: {e}"),
                    }
                }
            }
            mem.last_seq.store(seq, Ordering::Release);
            last = seq;
        }
        add(&self.counters.puts, puts);
        add(&self.counters.deletes, deletes);
        add(&self.counters.user_bytes, user_bytes);
        if last > 0 {
            self.visible_seq.store(last, Ordering::Release);
        }
        if mem.table.is_full(self.opts.memtable_bytes) {
            self.rotate_locked();
        }
    }

    /// Makes the active memtable immutable and starts a fresh one (apply lock held).
    fn rotate_locked(&self) {
        {
            let mut sv = self.sv.write().unwrap_or_else(|e| e.into_inner());
            if sv.mem.table.is_empty() {
                return;
            }
            let mut imm = Vec::with_capacity(sv.imm.len() + 1);
            imm.push(sv.mem.clone());
            imm.extend(sv.imm.iter().cloned());
            *sv = Arc::new(SuperVersion {
                mem: Arc::new(Mem::new(self.memtable_capacity)),
                imm,
                version: sv.version.clone(),
            });
        }
        self.update_stall();
        let _s = self.sched.lock().unwrap_or_else(|e| e.into_inner());
        self.bg_cv.notify_all();
    }

    fn smallest_snapshot(&self) -> u64 {
        let s = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        let visible = self.visible_seq.load(Ordering::Acquire);
        s.keys().next().copied().unwrap_or(visible).min(visible)
    }

    /// Recomputes the stall level from the current super version.
    fn update_stall(&self) {
        let sv = self.super_version();
        let l0 = sv.version.levels[0].len();
        let level = if sv.imm.len() >= self.opts.max_immutable_memtables
            || l0 >= self.opts.l0_stop_trigger
        {
            STALL_STOP
        } else if l0 >= self.opts.l0_slowdown_trigger {
            STALL_SLOWDOWN
        } else {
            STALL_NONE
        };
        let old = self.stall_level.swap(level, Ordering::AcqRel);
        if old != level {
            if level != STALL_NONE && old == STALL_NONE {
                add(&self.counters.stalls, 1);
            }
            if level == STALL_STOP {
                add(&self.counters.stops, 1);
            } else if level == STALL_SLOWDOWN {
                add(&self.counters.slowdowns, 1);
            }
            self.emit(
                "stall",
                format!(
                    "{{\"level\":\"{}\",\"l0Files\":{l0},\"immutableMemtables\":{}}}",
                    ["none", "slowdown", "stop"][level as usize],
                    sv.imm.len()
                ),
            );
            let _g = self.stall.lock().unwrap_or_else(|e| e.into_inner());
            self.stall_cv.notify_all();
        }
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

    fn stats(&self) -> DbStats {
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

/// Releases writes held back by a stall: all at once when the stall ends; a few per
/// millisecond during a slowdown; none while writes are stopped (or all, when closing).
fn stall_thread(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let closing = inner.closing.load(Ordering::Acquire);
        let level = inner.stall_level.load(Ordering::Acquire);
        let batch: Vec<(Arc<WriterCore>, Vec<u8>, bool)> = {
            let mut st = inner.stall.lock().unwrap_or_else(|e| e.into_inner());
            // After a background failure the stall cannot clear by itself: let the held
            // writes go to the log (which fails them properly if the disk is full) rather
            // than hold them — and a close() waiting for them — forever.
            let failed = inner.bg_error().is_some();
            let take = if closing || failed || level == STALL_NONE {
                st.q.len()
            } else if level == STALL_SLOWDOWN {
                st.q.len().min(16)
            } else {
                0
            };
            let out: Vec<_> = st.q.drain(..take).collect();
            st.bytes -= out.iter().map(|(_, p, _)| p.len()).sum::<usize>();
            // Room was made (or the queue is being emptied for good): writers parked on a
            // full queue retry now — one call per registration.
            let wanted = if out.is_empty() && !closing {
                Vec::new()
            } else {
                std::mem::take(&mut st.wanted)
            };
            for w in &wanted {
                w.sink.space_available();
            }
            if !out.is_empty() {
                // Blocking writers (`DbWriter::write`) waiting for room.
                inner.stall_cv.notify_all();
            }
            if st.q.is_empty() {
                if let Some(since) = st.since.take() {
                    add(&inner.counters.stall_us, since.elapsed().as_micros() as u64);
                }
            }
            if out.is_empty() {
                if closing {
                    return;
                }
                let wait = if level == STALL_SLOWDOWN {
                    Duration::from_millis(1)
                } else {
                    Duration::from_millis(50)
                };
                drop(
                    inner
                        .stall_cv
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|e| e.into_inner()),
                );
                continue;
            }
            out
        };
        for (w, payload, sync) in batch {
            if let Err(e) = w.producer.append(&payload, sync) {
                w.sink.failed(1, &e);
            }
            inner.stall_pending.fetch_sub(1, Ordering::AcqRel);
        }
        if level == STALL_SLOWDOWN && !closing {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
