//! [`LogSink`]: open a store for writing, write lines, flush, close, stats.

use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use uringdb_uring::{open_vfs, FaultVfs, LockGuard, Vfs};

use crate::error::SinkError;
use crate::options::{SinkOptions, SyncMode};
use crate::recovery::{recover, RecoveryReport};
use crate::shared::{Shared, AWAKE, WAKE_ANY, WAKE_IF_FULL};
use crate::writer::Writer;

/// A snapshot of a sink's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Lines written into blocks since open.
    pub lines: u64,
    /// Blocks written since open.
    pub blocks: u64,
    /// Raw NDJSON bytes of those blocks.
    pub raw_bytes: u64,
    /// Bytes those blocks take on disk (headers and padding included).
    pub stored_bytes: u64,
    /// fdatasyncs of block data.
    pub syncs: u64,
    /// Segments started since open (rotations).
    pub segments_created: u64,
    /// Writes that found the ring full and waited.
    pub full_waits: u64,
    /// Writes refused because the ring was full (non-blocking writes).
    pub dropped_full: u64,
    /// Records drained and discarded after the sink failed.
    pub lost_after_failure: u64,
    /// Segment files deleted by retention since open.
    pub segments_removed: u64,
    /// Their bytes.
    pub bytes_removed: u64,
    /// Lines the sampler dropped, per level class and reason.
    pub dropped: crate::sampler::DropCounts,
    /// Lines the disk-space guard dropped (reason `disk`), per level class.
    pub dropped_disk: [u64; 8],
    /// The disk-space guard's state changes since open.
    pub disk_transitions: u64,
    /// The disk-space guard's state now.
    pub disk_state: crate::diskguard::GuardState,
    /// The I/O backend in use.
    pub backend: &'static str,
}

/// A log store open for writing. Producers on any thread call [`LogSink::write`]; one
/// writer thread builds, compresses and appends blocks.
#[derive(Debug)]
pub struct LogSink {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    backend: &'static str,
    dir: PathBuf,
    sync_always: bool,
    /// The directory's lock, released by `close`.
    lock: Mutex<Option<Box<dyn LockGuard>>>,
}

impl LogSink {
    /// Opens (creating if needed) the store in `dir` with the backend the options name.
    pub fn open(dir: &Path, options: SinkOptions) -> Result<(LogSink, RecoveryReport), SinkError> {
        options.validate()?;
        let (mut vfs, _) =
            open_vfs(options.backend).map_err(|e| SinkError::io("opening the I/O backend", e))?;
        if let Some(config) = options.fault.clone() {
            vfs = FaultVfs::new(vfs, config);
        }
        LogSink::open_with_vfs(vfs, dir, options)
    }

    /// Opens the store on a given [`Vfs`] (tests hand in a `FaultVfs`).
    pub fn open_with_vfs(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        options: SinkOptions,
    ) -> Result<(LogSink, RecoveryReport), SinkError> {
        options.validate()?;
        vfs.create_dir_all(dir)
            .map_err(|e| SinkError::io(format!("creating {}", dir.display()), e))?;
        let lock = vfs.lock(&dir.join("LOCK")).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                SinkError::Locked(dir.to_path_buf())
            } else {
                SinkError::io(format!("locking {}", dir.display()), e)
            }
        })?;
        let (resume, report) = recover(&*vfs, dir)?;
        let shared = Arc::new(Shared::new(options.ring_bytes));
        let consumer = shared
            .ring
            .consumer()
            .expect("a fresh ring has its consumer");
        let backend = vfs.kind().as_str();
        let sync_always = options.sync == SyncMode::Always;
        let writer = Writer::new(shared.clone(), vfs, dir.to_path_buf(), options, resume)?;
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("uringdb-logsink".into())
            .spawn(move || {
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.run(consumer)));
                if let Err(r) = r {
                    let mut st = s.lock();
                    st.failed
                        .get_or_insert_with(|| SinkError::Panicked(panic_text(&r)));
                    s.failed_flag.store(true, Ordering::Release);
                    st.writer_done = true;
                    s.done_cv.notify_all();
                }
            })
            .map_err(|e| SinkError::io("starting the log sink's writer thread", e))?;
        let sink = LogSink {
            shared,
            thread: Mutex::new(Some(thread)),
            backend,
            dir: dir.to_path_buf(),
            sync_always,
            lock: Mutex::new(Some(lock)),
        };
        Ok((sink, report))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The largest line (or group of lines) one write accepts.
    pub fn line_bytes_max(&self) -> usize {
        self.shared.ring.record_bytes_max()
    }

    fn check_open(&self, len: usize) -> Result<(), SinkError> {
        if self.shared.closing.load(Ordering::Relaxed) {
            return Err(SinkError::Closed);
        }
        let max = self.line_bytes_max();
        if len > max {
            return Err(SinkError::LineTooLong { bytes: len, max });
        }
        if self.shared.failed_flag.load(Ordering::Acquire) {
            if let Some(f) = self.shared.lock_failed() {
                return Err(SinkError::Failed(Box::new(f)));
            }
        }
        Ok(())
    }

    fn pushed(&self) {
        let shared = &*self.shared;
        shared.pushed.fetch_add(1, Ordering::Release);
        fence(Ordering::SeqCst);
        let wake = shared.wake.load(Ordering::Relaxed);
        let wanted = wake == WAKE_ANY
            || (wake == WAKE_IF_FULL
                && (self.sync_always
                    || shared.ring.used_bytes() > shared.ring.capacity() as u64 / 4));
        // One wake-up per sleep: the producer that flips the flag back notifies; the others
        // see AWAKE and go on (a futex wake per write would cost more than the write).
        if wanted
            && shared
                .wake
                .compare_exchange(wake, AWAKE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            shared.notify_writer();
        }
    }

    /// Copies `line` (one or more `\n`-terminated lines; a missing final newline is added
    /// in the store) into the ring and returns; when the ring is full, waits for the writer
    /// to free space (back-pressure). Empty lines are not stored.
    pub fn write(&self, line: &[u8]) -> Result<(), SinkError> {
        self.check_open(line.len())?;
        if self.shared.ring.try_push(&[line]) {
            self.pushed();
            return Ok(());
        }
        self.shared
            .counters
            .full_waits
            .fetch_add(1, Ordering::Relaxed);
        loop {
            self.shared.notify_writer();
            {
                let st = self.shared.lock();
                if let Some(f) = &st.failed {
                    return Err(SinkError::Failed(Box::new(f.clone())));
                }
                if st.writer_done {
                    return Err(SinkError::Closed);
                }
                let _ = self
                    .shared
                    .done_cv
                    .wait_timeout(st, Duration::from_millis(1))
                    .unwrap_or_else(|p| p.into_inner());
            }
            if self.shared.ring.try_push(&[line]) {
                self.pushed();
                return Ok(());
            }
        }
    }

    /// Like [`LogSink::write`], but never waits: `Ok(false)` when the ring is full (the
    /// line is not stored and is counted in `dropped_full`).
    pub fn try_write(&self, line: &[u8]) -> Result<bool, SinkError> {
        self.check_open(line.len())?;
        if self.shared.ring.try_push(&[line]) {
            self.pushed();
            Ok(true)
        } else {
            self.shared
                .counters
                .dropped_full
                .fetch_add(1, Ordering::Relaxed);
            self.shared.notify_writer();
            Ok(false)
        }
    }

    /// Makes every line written before the call durable: seals the partial block, writes
    /// it and fdatasyncs, then returns (blocking, as SonicBoom's `flushSync` is).
    pub fn flush_sync(&self) -> Result<(), SinkError> {
        let shared = &*self.shared;
        let target = shared.pushed.load(Ordering::Acquire);
        shared.flush_target.fetch_max(target, Ordering::AcqRel);
        let mut st = shared.lock();
        shared.writer_cv.notify_one();
        loop {
            if let Some(f) = &st.failed {
                return Err(SinkError::Failed(Box::new(f.clone())));
            }
            if st.durable_records >= target {
                return Ok(());
            }
            if st.writer_done {
                return Err(SinkError::Closed);
            }
            st = shared
                .done_cv
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SinkStats {
        let c = &self.shared.counters;
        let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        SinkStats {
            lines: r(&c.lines),
            blocks: r(&c.blocks),
            raw_bytes: r(&c.raw_bytes),
            stored_bytes: r(&c.stored_bytes),
            syncs: r(&c.syncs),
            segments_created: r(&c.segments_created),
            full_waits: r(&c.full_waits),
            dropped_full: r(&c.dropped_full),
            lost_after_failure: r(&c.lost_after_failure),
            segments_removed: r(&c.segments_removed),
            bytes_removed: r(&c.bytes_removed),
            dropped: crate::sampler::DropCounts(std::array::from_fn(|class| {
                std::array::from_fn(|reason| r(&c.dropped[class][reason]))
            })),
            dropped_disk: std::array::from_fn(|class| r(&c.dropped_disk[class])),
            disk_transitions: r(&c.disk_transitions),
            disk_state: match c.disk_state.load(Ordering::Relaxed) {
                0 => crate::diskguard::GuardState::Normal,
                1 => crate::diskguard::GuardState::Low,
                _ => crate::diskguard::GuardState::Critical,
            },
            backend: self.backend,
        }
    }

    /// Writes and syncs everything written so far, stops the writer and releases the
    /// directory. Idempotent. Returns the latched failure, if the sink failed.
    pub fn close(&self) -> Result<(), SinkError> {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.notify_writer();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        // The writer is gone: another sink may open the directory now.
        drop(self.lock.lock().unwrap_or_else(|p| p.into_inner()).take());
        match self.shared.lock_failed() {
            Some(f) => Err(SinkError::Failed(Box::new(f))),
            None => Ok(()),
        }
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Shared {
    fn lock_failed(&self) -> Option<SinkError> {
        self.lock().failed.clone()
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
