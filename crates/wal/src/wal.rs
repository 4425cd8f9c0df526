//! The public log type: opening, producers, reads, waits, truncation, close.
//!
//! Threads: a log owns two threads, the committer (see [`crate::committer`]) and the
//! segment preparer (see [`crate::segment`]). Producers call in from any thread. Reads run
//! on the caller's thread (the binding runs them off the JS thread).

use crate::committer::{self, CommitterState};
use crate::error::WalError;
use crate::format::{self, frame_bytes, Kind, FRAME_HEADER_BYTES};
use crate::limits::*;
use crate::ring::Ring;
use crate::segment::{Preparer, Segment};
use crate::stats::{Counters, WalStats};
use crate::sync::{fence, Ordering};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uringdb_uring::{BackendChoice, FaultConfig, FaultVfs, LockGuard, ProbeReport, Vfs};

/// How recovery treats damage in the middle of the last segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// A torn tail (damage followed by nothing valid) is cut; damage followed by valid
    /// records is an error naming the file and offset.
    #[default]
    Strict,
    /// Any damage in the last segment is treated as the end of the log: everything from
    /// the first damaged frame on is cut (and counted in the recovery report).
    Tolerant,
}

/// Options of [`Wal::open`]. Field names in errors use the JavaScript spelling.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Preallocated size of a segment file (`segmentBytes`).
    pub segment_bytes: u64,
    /// Commit-queue capacity, a power of two (`ringBytes`).
    pub ring_bytes: usize,
    /// Largest record payload (`maxRecordBytes`); `None` picks the largest that fits.
    pub max_record_bytes: Option<usize>,
    /// Extra wait before writing a group that started on an idle log (`commitDelayUs`).
    pub commit_delay_us: u64,
    /// Recovery mode (`recovery`).
    pub recovery: RecoveryMode,
    /// I/O backend (`ioBackend`).
    pub backend: BackendChoice,
    /// Test-only: wrap the backend in [`FaultVfs`] (drops unsynced bytes on crash, injects
    /// faults).
    pub fault: Option<FaultConfig>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            ring_bytes: RING_BYTES_DEFAULT,
            max_record_bytes: None,
            commit_delay_us: 0,
            recovery: RecoveryMode::Strict,
            backend: BackendChoice::Auto,
            fault: None,
        }
    }
}

/// Limits derived from the options at open.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub segment_bytes: u64,
    pub max_record_bytes: usize,
    /// Largest framed reservation (a record or a whole batch).
    pub max_entry_bytes: usize,
    pub group_bytes_max: usize,
    pub commit_delay: Duration,
}

impl WalOptions {
    fn limits(&self) -> Result<Limits, WalError> {
        let bad = |field, message: String| Err(WalError::InvalidOption { field, message });
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes)
            || !self.segment_bytes.is_multiple_of(8)
        {
            return bad(
                "segmentBytes",
                format!("must be a multiple of 8 between {SEGMENT_BYTES_MIN} and {SEGMENT_BYTES_MAX}, got {}", self.segment_bytes),
            );
        }
        if !self.ring_bytes.is_power_of_two()
            || !(RING_BYTES_MIN..=RING_BYTES_MAX).contains(&self.ring_bytes)
        {
            return bad(
                "ringBytes",
                format!(
                    "must be a power of two between {RING_BYTES_MIN} and {RING_BYTES_MAX}, got {}",
                    self.ring_bytes
                ),
            );
        }
        if self.commit_delay_us > COMMIT_DELAY_US_MAX {
            return bad(
                "commitDelayUs",
                format!(
                    "must be between 0 and {COMMIT_DELAY_US_MAX}, got {}",
                    self.commit_delay_us
                ),
            );
        }
        let segment_payload = format::segment_record_room(self.segment_bytes as usize);
        // One reservation (a record, or a whole atomic batch, framed) may take up to half
        // the ring and must fit in one segment.
        let max_entry_bytes = (self.ring_bytes / 2).min(segment_payload);
        let record_cap = (self.ring_bytes / 4)
            .min(segment_payload - FRAME_HEADER_BYTES)
            .min(format::FRAME_PAYLOAD_MAX);
        let max_record_bytes = match self.max_record_bytes {
            None => RECORD_BYTES_DEFAULT.min(record_cap),
            Some(n) if n >= 1 && n <= record_cap => n,
            Some(n) => {
                return bad(
                    "maxRecordBytes",
                    format!("must be between 1 and {record_cap} (at most a quarter of ringBytes, and what fits in a segment), got {n}"),
                )
            }
        };
        Ok(Limits {
            segment_bytes: self.segment_bytes,
            max_record_bytes,
            max_entry_bytes,
            group_bytes_max: GROUP_BYTES_MAX.max(max_entry_bytes),
            commit_delay: Duration::from_micros(self.commit_delay_us),
        })
    }
}

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

/// Receives the outcome of a producer's appends, in the order it made them. Called on the
/// committer thread once per commit group: implementations must not block.
pub trait CompletionSink: Send + Sync {
    /// These appends (and sync requests) completed; one sequence number each, in order.
    /// For a sync request the number is the last durable sequence number.
    fn completed(&self, seqs: &[u64], group: &GroupInfo);
    /// The next `count` appends of this producer failed.
    fn failed(&self, count: usize, error: &WalError);
}

/// Applies committed records to an in-memory structure (the key-value database's memtable)
/// before anyone learns of them. Called on the committer thread, once per commit group
/// that wrote records, after the group's write succeeded (and its fdatasync, if any record
/// asked for one) and before the durable watermark is published and completions are
/// delivered — so a resolved append is already applied, and records are applied in
/// sequence order, one group at a time. Implementations must not block on appends.
pub trait ApplyHook: Send + Sync {
    /// The group's records in log order: `(sequence number, payload)`.
    fn apply(&self, records: &mut dyn Iterator<Item = (u64, &[u8])>);
}

/// Outcome of [`Wal::wait_for`].
#[derive(Clone, Debug)]
pub enum WaitOutcome {
    /// The awaited sequence number is durable; the last durable sequence number.
    Ready(u64),
    /// The log closed first.
    Closed,
    /// [`Wal::cancel_wait`] was called.
    Cancelled,
}

type WaitCallback = Box<dyn FnOnce(WaitOutcome) + Send>;

pub(crate) struct Waiters {
    pub next_id: u64,
    pub list: Vec<(u64, u64, WaitCallback)>, // (id, seq, callback)
}

/// What recovery found at open.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// Segment files found.
    pub segments: u64,
    /// First readable sequence number (0 if empty).
    pub first_seq: u64,
    /// Last sequence number recovered (0 if empty).
    pub last_seq: u64,
    /// Bytes cut from the tail of the last segment (torn writes, incomplete batches, or —
    /// in tolerant mode — damaged data).
    pub truncated_bytes: u64,
    /// Prepared-but-unused segment files removed.
    pub removed_prepared: u64,
    /// How long recovery took.
    pub duration: Duration,
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
    /// The directory lock; released by `close` (producers may outlive the log).
    pub lock: Mutex<Option<Box<dyn LockGuard>>>,
}

impl Shared {
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
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

    pub fn first_seq(&self) -> u64 {
        let durable = self.durable_seq.load(Ordering::Acquire);
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        match segs.first() {
            Some(s) if s.first_seq <= durable => s.first_seq,
            _ => 0,
        }
    }
}

/// An open write-ahead log. Cheap to share behind an `Arc`; [`Wal::close`] drains and
/// joins its threads (dropping it without closing does the same).
pub struct Wal {
    pub(crate) shared: Arc<Shared>,
    committer: Mutex<Option<JoinHandle<()>>>,
    preparer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, running recovery.
    pub fn open(dir: &Path, options: &WalOptions) -> Result<(Wal, RecoveryReport), WalError> {
        Self::open_with(dir, options, None, None)
    }

    /// Opens the log with an optional caller-provided I/O layer (`None`: the one that
    /// `options` select) and an optional [`ApplyHook`].
    pub fn open_with(
        dir: &Path,
        options: &WalOptions,
        vfs: Option<Arc<dyn Vfs>>,
        apply: Option<Arc<dyn ApplyHook>>,
    ) -> Result<(Wal, RecoveryReport), WalError> {
        let limits = options.limits()?;
        let (vfs, probe) = match vfs {
            Some(vfs) => {
                let probe = ProbeReport {
                    backend: vfs.kind(),
                    fallback_reason: None,
                    features: Vec::new(),
                };
                (vfs, probe)
            }
            None => {
                let (vfs, probe) = uringdb_uring::open_vfs(options.backend)
                    .map_err(|e| WalError::BackendUnavailable(e.to_string()))?;
                let vfs: Arc<dyn Vfs> = match &options.fault {
                    Some(cfg) => FaultVfs::new(vfs, cfg.clone()),
                    None => vfs,
                };
                (vfs, probe)
            }
        };
        Self::open_with_vfs(dir, options, limits, vfs, probe, apply)
    }

    /// Opens the log on a caller-provided I/O layer (tests: a shared [`FaultVfs`] whose
    /// `crash()` simulates power loss between opens).
    pub fn open_on(
        dir: &Path,
        options: &WalOptions,
        vfs: Arc<dyn Vfs>,
    ) -> Result<(Wal, RecoveryReport), WalError> {
        Self::open_with(dir, options, Some(vfs), None)
    }

    fn open_with_vfs(
        dir: &Path,
        options: &WalOptions,
        limits: Limits,
        vfs: Arc<dyn Vfs>,
        probe: ProbeReport,
        apply: Option<Arc<dyn ApplyHook>>,
    ) -> Result<(Wal, RecoveryReport), WalError> {
        let started = Instant::now();
        vfs.create_dir_all(dir)
            .map_err(|e| WalError::io(format!("creating {}", dir.display()), e))?;
        let lock_path = dir.join("LOCK");
        let lock = vfs.lock(&lock_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                WalError::Locked(dir.to_path_buf())
            } else {
                WalError::io(format!("locking {}", lock_path.display()), e)
            }
        })?;
        let recovered =
            crate::recovery::recover(&*vfs, dir, options.recovery, limits.segment_bytes)?;
        let mut report = recovered.report.clone();
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            vfs: vfs.clone(),
            probe,
            limits,
            ring: Ring::new(options.ring_bytes),
            closing: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            committer_sleeping: AtomicBool::new(false),
            committer_thread: Mutex::new(None),
            space_waiters: AtomicU64::new(0),
            space_lock: Mutex::new(()),
            space_cv: Condvar::new(),
            arrival_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            producers: Mutex::new(Vec::new()),
            apply,
            segments: RwLock::new(recovered.segments.clone()),
            durable_seq: AtomicU64::new(recovered.last_seq),
            waiters: Mutex::new(Waiters {
                next_id: 1,
                list: Vec::new(),
            }),
            has_waiters: AtomicBool::new(false),
            counters: Counters::new(),
            preparer: Preparer::new(),
            lock: Mutex::new(Some(lock)),
        });
        let active = recovered
            .segments
            .last()
            .cloned()
            .expect("recovery always leaves an active segment");
        let state = CommitterState::new(active.clone(), recovered.write_offset, recovered.last_seq);
        let preparer = {
            let s = shared.clone();
            let (vfs, dir) = (vfs.clone(), dir.to_path_buf());
            std::thread::Builder::new()
                .name("uringdb-wal-prep".into())
                .spawn(move || s.preparer.run(vfs, dir, limits.segment_bytes))
                .map_err(|e| WalError::io("spawning the segment preparer", e))?
        };
        shared.preparer.request(active.number + 1);
        let committer = {
            let s = shared.clone();
            std::thread::Builder::new()
                .name("uringdb-wal-commit".into())
                .spawn(move || committer::run(s, state))
                .map_err(|e| WalError::io("spawning the committer", e))?
        };
        *shared
            .committer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(committer.thread().clone());
        report.first_seq = shared.first_seq();
        report.duration = started.elapsed();
        Ok((
            Wal {
                shared,
                committer: Mutex::new(Some(committer)),
                preparer: Mutex::new(Some(preparer)),
            },
            report,
        ))
    }

    /// Registers a producer whose completions go to `sink`.
    pub fn producer(&self, sink: Arc<dyn CompletionSink>) -> Producer {
        let mut p = self
            .shared
            .producers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let pid = match p.iter().position(Option::is_none) {
            Some(i) => {
                p[i] = Some(sink);
                i
            }
            None => {
                p.push(Some(sink));
                p.len() - 1
            }
        };
        Producer {
            shared: self.shared.clone(),
            pid: pid as u64,
        }
    }

    /// Last durable (and visible) sequence number; 0 when the log is empty.
    pub fn last_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// First readable sequence number; 0 when the log is empty.
    pub fn first_seq(&self) -> u64 {
        self.shared.first_seq()
    }

    /// The limits in force: (largest record payload, largest framed batch).
    pub fn max_record_bytes(&self) -> usize {
        self.shared.limits.max_record_bytes
    }

    /// The backend choice and probe results.
    pub fn probe(&self) -> &ProbeReport {
        &self.shared.probe
    }

    /// Calls `callback` once `seq` is durable (at once, on this thread, if it already is),
    /// or when the log closes, or when cancelled. Returns an id for [`Wal::cancel_wait`].
    pub fn wait_for(&self, seq: u64, callback: Box<dyn FnOnce(WaitOutcome) + Send>) -> u64 {
        let s = &self.shared;
        if s.durable_seq.load(Ordering::SeqCst) >= seq {
            callback(WaitOutcome::Ready(s.durable_seq.load(Ordering::SeqCst)));
            return 0;
        }
        let id = {
            let mut w = s.waiters.lock().unwrap_or_else(|e| e.into_inner());
            if s.closing.load(Ordering::SeqCst) && s.committer_done() {
                drop(w);
                callback(WaitOutcome::Closed);
                return 0;
            }
            let id = w.next_id;
            w.next_id += 1;
            w.list.push((id, seq, callback));
            s.has_waiters.store(true, Ordering::SeqCst);
            id
        };
        // Re-check after registering: the committer may have published in between.
        s.publish_durable(0);
        id
    }

    /// Cancels a wait; its callback runs with [`WaitOutcome::Cancelled`] unless it already ran.
    pub fn cancel_wait(&self, id: u64) {
        let cb = {
            let mut w = self
                .shared
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            w.list
                .iter()
                .position(|e| e.0 == id)
                .map(|i| w.list.swap_remove(i).2)
        };
        if let Some(cb) = cb {
            cb(WaitOutcome::Cancelled);
        }
    }

    /// Deletes whole segments all of whose records are below `seq` (never the active one).
    /// Returns how many were deleted.
    pub fn truncate_before(&self, seq: u64) -> Result<usize, WalError> {
        let s = &self.shared;
        let removed: Vec<Arc<Segment>> = {
            let mut segs = s.segments.write().unwrap_or_else(|e| e.into_inner());
            let mut n = 0;
            while n + 1 < segs.len() && segs[n + 1].first_seq <= seq {
                n += 1;
            }
            segs.drain(..n).collect()
        };
        for seg in &removed {
            s.vfs
                .remove_file(&seg.path)
                .map_err(|e| WalError::io(format!("removing {}", seg.path.display()), e))?;
        }
        if !removed.is_empty() {
            s.vfs
                .sync_dir(&s.dir)
                .map_err(|e| WalError::io(format!("syncing {}", s.dir.display()), e))?;
        }
        Ok(removed.len())
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> WalStats {
        let s = &self.shared;
        let c = &s.counters;
        let ld = |a: &AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let lat = c.latencies.lock().unwrap_or_else(|e| e.into_inner());
        WalStats {
            backend: s.probe.backend.as_str(),
            fallback_reason: s.probe.fallback_reason.clone(),
            features: s.probe.features.clone(),
            appends: ld(&c.appends),
            append_bytes: ld(&c.append_bytes),
            groups: ld(&c.groups),
            fsyncs: ld(&c.fsyncs),
            bytes_written: ld(&c.bytes_written),
            first_seq: s.first_seq(),
            last_seq: s.durable_seq.load(Ordering::Acquire),
            segments: s.segments.read().unwrap_or_else(|e| e.into_inner()).len() as u64,
            queue_wait: lat.queue_wait.summary_us(),
            write: lat.write.summary_us(),
            fsync: lat.fsync.summary_us(),
            total: lat.total.summary_us(),
        }
    }

    /// The I/O layer this log writes through (the key-value database writes its tables
    /// and manifest through the same one).
    pub fn vfs(&self) -> Arc<dyn Vfs> {
        self.shared.vfs.clone()
    }

    /// The directory of this log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Fails the log from outside (the key-value database, after a panic on one of its
    /// threads): from now on it refuses appends and fails every group not yet written,
    /// exactly as after a failed write; the first failure wins. Returns the latched one.
    pub fn fail(&self, error: &WalError) -> Arc<WalError> {
        let latched = self.shared.latch_failure(error);
        self.shared.wake_committer();
        latched
    }

    /// Stops accepting appends, writes and syncs everything already queued (those appends
    /// complete normally), joins the threads, and releases the directory lock when the
    /// last reference is dropped. Idempotent.
    pub fn close(&self) -> Result<(), WalError> {
        let s = &self.shared;
        s.closing.store(true, Ordering::SeqCst);
        s.committer_sleeping.store(true, Ordering::SeqCst);
        s.wake_committer();
        let c = self
            .committer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = c {
            // A panic on the committer is already reported to waiting producers.
            let _ = h.join();
        }
        s.preparer.stop();
        let p = self
            .preparer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = p {
            let _ = h.join();
        }
        // Wake everything still waiting for new records.
        let waiters: Vec<WaitCallback> = {
            let mut w = s.waiters.lock().unwrap_or_else(|e| e.into_inner());
            s.has_waiters.store(false, Ordering::SeqCst);
            w.list.drain(..).map(|e| e.2).collect()
        };
        for cb in waiters {
            cb(WaitOutcome::Closed);
        }
        drop(s.lock.lock().unwrap_or_else(|e| e.into_inner()).take());
        match s.failure() {
            Some(e) => Err(WalError::Failed(e)),
            None => Ok(()),
        }
    }

    /// Opens a read cursor at `from` (clamped up to the first readable record if 0).
    pub fn cursor(&self, from: u64) -> Result<crate::reader::ReadCursor, WalError> {
        crate::reader::ReadCursor::new(&self.shared, from)
    }

    /// Reads the next records at `cursor`, stopping before `end` (exclusive), after
    /// `max_records` or once `max_bytes` of payload are collected (at least one record if
    /// any is available). Only durable records are returned.
    pub fn read(
        &self,
        cursor: &mut crate::reader::ReadCursor,
        end: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<crate::reader::ReadBatch, WalError> {
        crate::reader::read(&self.shared, cursor, end, max_records, max_bytes)
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

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// A registered source of appends. Appends made through one producer complete in the
/// order they were made. Dropping it unregisters its sink; completions still pending for
/// it are discarded, so drop it only after a [`Producer::sync`] completed (or on close).
pub struct Producer {
    shared: Arc<Shared>,
    pid: u64,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("pid", &self.pid).finish()
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let mut p = self
            .shared
            .producers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = p.get_mut(self.pid as usize) {
            *slot = None;
        }
    }
}

/// Guard for `in_flight`: a producer between "not closing" and "published".
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(s: &'a Shared) -> Result<InFlight<'a>, WalError> {
        s.in_flight.fetch_add(1, Ordering::SeqCst);
        let g = InFlight(s);
        if s.closing.load(Ordering::SeqCst) {
            return Err(WalError::Closed);
        }
        if let Some(e) = s.failure() {
            return Err(WalError::Failed(e));
        }
        Ok(g)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Producer {
    /// Appends one record. Returns once the record is in the commit queue; the outcome
    /// arrives at the producer's sink. Blocks (back-pressure) while the queue is full.
    pub fn append(&self, record: &[u8], sync: bool) -> Result<(), WalError> {
        self.append_many(std::slice::from_ref(&record), sync)
    }

    /// Appends records atomically (all or none survive a crash) with contiguous sequence
    /// numbers. One completion per record.
    pub fn append_many(&self, records: &[&[u8]], sync: bool) -> Result<(), WalError> {
        let s = &*self.shared;
        let _g = InFlight::enter(s)?;
        let r = self.append_entry(records, sync);
        s.wake_committer();
        r
    }

    /// Appends a packed run of entries in order — the binding's one-crossing-per-tick path.
    /// `data` holds the records' bytes back to back, `lens` their lengths, and `entries`
    /// one word per entry: `count << 1 | sync`, where an entry of `count` records is
    /// appended like [`Producer::append_many`] (atomic). Entries are accepted in order; on
    /// an error, the ones before it were accepted and the error says how many.
    pub fn append_packed(
        &self,
        data: &[u8],
        lens: &[u32],
        entries: &[u32],
    ) -> Result<(), (usize, WalError)> {
        let s = &*self.shared;
        let _g = InFlight::enter(s).map_err(|e| (0, e))?;
        let mut recs: Vec<&[u8]> = Vec::new();
        let (mut off, mut li) = (0usize, 0usize);
        let mut result = Ok(());
        for (i, &e) in entries.iter().enumerate() {
            let (count, sync) = ((e >> 1) as usize, e & 1 == 1);
            recs.clear();
            for _ in 0..count {
                let Some(&len) = lens.get(li) else {
                    result = Err((i, bad_packing("lens is shorter than entries say")));
                    break;
                };
                let Some(rec) = data.get(off..off + len as usize) else {
                    result = Err((i, bad_packing("data is shorter than lens say")));
                    break;
                };
                recs.push(rec);
                off += len as usize;
                li += 1;
            }
            if result.is_err() {
                break;
            }
            if let Err(e) = self.append_entry(&recs, sync) {
                result = Err((i, e));
                break;
            }
        }
        s.wake_committer();
        result
    }

    /// Validates and enqueues one entry (a record or an atomic batch); the caller holds
    /// an [`InFlight`] guard and wakes the committer afterwards.
    fn append_entry(&self, records: &[&[u8]], sync: bool) -> Result<(), WalError> {
        let s = &*self.shared;
        let limits = &s.limits;
        let mut total = 0usize;
        for r in records {
            if r.len() > limits.max_record_bytes {
                return Err(WalError::TooLarge {
                    bytes: r.len(),
                    limit: limits.max_record_bytes,
                });
            }
            total += frame_bytes(r.len());
        }
        if records.is_empty() {
            return Ok(());
        }
        if total > limits.max_entry_bytes {
            return Err(WalError::BatchTooLarge {
                bytes: total,
                limit: limits.max_entry_bytes,
            });
        }
        let r = self.reserve(total)?;
        let ring = &s.ring;
        let n = records.len();
        let mut pos = r.start;
        let mut first = (0u64, 0u32, 0u32);
        for (i, rec) in records.iter().enumerate() {
            let kind = match (n, i) {
                (1, _) => Kind::Full,
                (_, 0) => Kind::First,
                (_, i) if i + 1 == n => Kind::Last,
                _ => Kind::Middle,
            };
            let w = format::word0(kind, rec.len(), sync);
            ring.write(pos + 8, &self.pid.to_le_bytes());
            ring.write(pos + FRAME_HEADER_BYTES as u64, rec);
            let pad = format::align8(rec.len()) - rec.len();
            if pad > 0 {
                ring.write(
                    pos + (FRAME_HEADER_BYTES + rec.len()) as u64,
                    &[0u8; 8][..pad],
                );
            }
            let crc = format::partial_crc(w, rec);
            if i == 0 {
                first = (pos, w, crc);
            } else {
                // Frames after the first are published first, so that the consumer,
                // which only proceeds past a published word, sees the batch whole.
                ring.publish_word(pos, w, crc);
            }
            pos += frame_bytes(rec.len()) as u64;
        }
        debug_assert_eq!(pos, r.start + total as u64);
        if let Some(p) = r.pad_at {
            ring.publish_pad(p);
        }
        if s.arrival_ns.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            let _ = s.arrival_ns.compare_exchange(
                0,
                s.now_ns(),
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let (p0, w0, c0) = first;
        ring.publish_word(p0, w0, c0);
        Ok(())
    }

    /// Requests that everything appended so far (by anyone) be made durable. Completes
    /// at the sink, in order with this producer's appends, with the last durable sequence
    /// number.
    pub fn sync(&self) -> Result<(), WalError> {
        let s = &*self.shared;
        let _g = InFlight::enter(s)?;
        let r = self.reserve(FRAME_HEADER_BYTES)?;
        s.ring.write(r.start + 8, &self.pid.to_le_bytes());
        if let Some(p) = r.pad_at {
            s.ring.publish_pad(p);
        }
        s.ring
            .publish_word(r.start, format::word0(Kind::SyncMarker, 0, true), 0);
        s.wake_committer();
        Ok(())
    }

    fn reserve(&self, len: usize) -> Result<crate::ring::Reservation, WalError> {
        let s = &*self.shared;
        if let Some(r) = s.ring.try_reserve(len) {
            return Ok(r);
        }
        // Back-pressure: wait for the committer to release space.
        s.space_waiters.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            if let Some(r) = s.ring.try_reserve(len) {
                break Ok(r);
            }
            if let Some(e) = s.failure() {
                break Err(WalError::Failed(e));
            }
            s.wake_committer();
            let g = s.space_lock.lock().unwrap_or_else(|e| e.into_inner());
            let _ = s
                .space_cv
                .wait_timeout(g, Duration::from_millis(SPACE_WAIT_MS))
                .unwrap_or_else(|e| e.into_inner());
        };
        s.space_waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

fn bad_packing(what: &str) -> WalError {
    WalError::InvalidOption {
        field: "records",
        message: format!("inconsistent packed append: {what}"),
    }
}
