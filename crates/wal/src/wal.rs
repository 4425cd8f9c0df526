//! The public log type: opening, producers, reads, waits, truncation, close.
//!
//! Threads: a log owns the committer (see [`crate::committer`]), up to
//! [`SYNCS_IN_FLIGHT_MAX`](crate::limits::SYNCS_IN_FLIGHT_MAX) sync threads started when
//! first needed (the commit pipeline, `committer/pipeline.rs`), and the segment preparer
//! (see [`crate::segment`]). Producers call in from any thread. Reads run
//! on the caller's thread (the binding runs them off the JS thread).

use crate::committer::{self, CommitterState};
use crate::error::WalError;
use crate::options::{Limits, WalOptions};
use crate::producer::Producer;
use crate::recovery::RecoveryReport;
use crate::ring::Ring;
use crate::segment::{Preparer, Segment};
use crate::shared::{
    ApplyHook, CompletionSink, SegmentClock, Shared, WaitCallback, WaitOutcome, Waiters,
};
use crate::stats::{Counters, WalStats};
use crate::sync::Ordering;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;
use uringdb_uring::{FaultVfs, ProbeReport, Vfs};

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
        Self::open_with_vfs(dir, options, limits, vfs, probe, apply, None)
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

    /// Test-only: [`Wal::open_on`] with the clock (nanoseconds) that sizes segments by the
    /// write rate, so that tests drive segment growth deterministically.
    #[doc(hidden)]
    pub fn open_with_clock(
        dir: &Path,
        options: &WalOptions,
        vfs: Arc<dyn Vfs>,
        clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<(Wal, RecoveryReport), WalError> {
        let limits = options.limits()?;
        let probe = ProbeReport {
            backend: vfs.kind(),
            fallback_reason: None,
            features: Vec::new(),
        };
        Self::open_with_vfs(dir, options, limits, vfs, probe, None, Some(clock))
    }

    fn open_with_vfs(
        dir: &Path,
        options: &WalOptions,
        limits: Limits,
        vfs: Arc<dyn Vfs>,
        probe: ProbeReport,
        apply: Option<Arc<dyn ApplyHook>>,
        segment_clock: Option<SegmentClock>,
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
        let recovered = crate::recovery::recover(
            &*vfs,
            dir,
            options.recovery,
            limits.first_segment_bytes,
            limits.recycle_segments,
        )?;
        let mut report = recovered.report.clone();
        let sync_depth = limits.sync_depth;
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
            space_wanted: Mutex::new(Vec::new()),
            space_wanted_count: AtomicU64::new(0),
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
            preparer: Preparer::new(limits.recycle_segments, recovered.pool.clone()),
            segment_clock,
            lock: Mutex::new(Some(lock)),
        });
        let active = recovered
            .segments
            .last()
            .cloned()
            .expect("recovery always leaves an active segment");
        let state = CommitterState::new(
            active,
            recovered.active_bytes,
            recovered.write_offset,
            recovered.last_seq,
            shared.segment_now_ns(),
            sync_depth,
        );
        let preparer = {
            let s = shared.clone();
            let (vfs, dir) = (vfs.clone(), dir.to_path_buf());
            std::thread::Builder::new()
                .name("uringdb-wal-prep".into())
                .spawn(move || s.preparer.run(vfs, dir))
                .map_err(|e| WalError::io("spawning the segment preparer", e))?
        };
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
    ///
    /// With `recycle_segments` > 0, the largest of them (up to the pool's room) are not
    /// deleted but renamed `M.wal.free` into the preparer's pool, which reuses them for
    /// new segments instead of zero-filling new files. They enter the pool only after the
    /// directory sync made the renames durable: a file is written to only once no crash
    /// can bring back its old name (`M.wal` with a new segment's bytes would be a live
    /// segment whose header names another number).
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
        if removed.is_empty() {
            return Ok(0);
        }
        let mut freed: Vec<(u64, u64)> = removed
            .iter()
            .map(|seg| (seg.number, seg.file.len().unwrap_or(0)))
            .collect();
        let keep = s.preparer.reserve(&mut freed);
        let kept = &freed[..keep];
        let result = (|| {
            // In segment order, as before recycling: a crash before the directory sync may
            // keep any of these changes only in the order they were made (ext4 journals
            // them in order), so the segments left are still contiguous.
            for seg in &removed {
                let (number, path) = (seg.number, &seg.path);
                if kept.iter().any(|k| k.0 == number) {
                    let to = s.dir.join(crate::format::free_file_name(number));
                    s.vfs
                        .rename(path, &to)
                        .map_err(|e| WalError::io(format!("recycling {}", path.display()), e))?;
                } else {
                    s.vfs
                        .remove_file(path)
                        .map_err(|e| WalError::io(format!("removing {}", path.display()), e))?;
                }
            }
            s.vfs
                .sync_dir(&s.dir)
                .map_err(|e| WalError::io(format!("syncing {}", s.dir.display()), e))
        })();
        match result {
            Ok(()) => s.preparer.add(kept),
            Err(e) => {
                s.preparer.unreserve(keep);
                return Err(e);
            }
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
            recycled_segments: ld(&c.recycled_segments),
            fresh_segments: ld(&c.fresh_segments),
            pool_segments: s.preparer.pool_len() as u64,
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
        s.preparer.discard_ready(&*s.vfs, &s.dir);
        // Producers parked on a full ring retry now (and learn that the log is closed).
        s.notify_space_wanted();
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

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
