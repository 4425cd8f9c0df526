//! The writer thread: drains the ring into blocks, compresses and appends them, syncs as
//! the mode says, rotates segments. One per sink; it owns the active segment file.
//!
//! Failure: the first failed write or fdatasync latches the sink (`State::failed`); the
//! writer then keeps draining the ring and discards what it takes (counted in
//! `lost_after_failure`), so that blocked producers never hang, until close.

use std::path::PathBuf;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uringdb_uring::{File, Vfs};
use uringdb_wal::RecordConsumer;

use crate::diskguard::{DiskGuard, GuardState, StatvfsProbe};
use crate::error::SinkError;
use crate::format::{level_class, BlockHeader, BLOCK_HEADER_BYTES, FLAG_ZSTD};
use crate::limits::{BLOCK_AGE_MS_MAX, RETENTION_CHECK_MS, WRITER_POLL_MS};
use crate::line::{msg, scan, trace_key};
use crate::options::{SinkOptions, SyncMode};
use crate::recovery::{create_segment, Resume};
use crate::sampler::Sampler;
use crate::shared::{Shared, AWAKE, WAKE_ANY, WAKE_IF_FULL};

/// The block being filled.
struct Builder {
    raw: Vec<u8>,
    lines: u32,
    level_bits: u32,
    min_time: i64,
    max_time: i64,
    first_seq: u64,
    started: Option<Instant>,
}

impl Builder {
    fn reset(&mut self, first_seq: u64) {
        self.raw.clear();
        self.lines = 0;
        self.level_bits = 0;
        self.min_time = i64::MAX;
        self.max_time = i64::MIN;
        self.first_seq = first_seq;
        self.started = None;
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    options: SinkOptions,
    trace_key: Vec<u8>,
    file: Arc<dyn File>,
    index: u64,
    offset: u64,
    durable_offset: u64,
    next_seq: u64,
    consumed: u64,
    durable_records: u64,
    last_sync: Instant,
    builder: Builder,
    compressor: zstd::bulk::Compressor<'static>,
    failed: bool,
    /// `None` when sampling is off (nothing is dropped).
    sampler: Option<Sampler>,
    /// `None` when the disk-space guard is off.
    guard: Option<DiskGuard<StatvfsProbe>>,
    started: Instant,
    last_summary: Instant,
    /// When the active segment got its first block (age rotation).
    segment_first_block: Option<Instant>,
    last_retention: Instant,
}

const PAD: [u8; 8] = [0; 8];

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        vfs: Arc<dyn Vfs>,
        dir: PathBuf,
        options: SinkOptions,
        resume: Resume,
    ) -> Result<Writer, SinkError> {
        let compressor = zstd::bulk::Compressor::new(options.zstd_level)
            .map_err(|e| SinkError::io("creating the zstd compressor", e))?;
        let mut builder = Builder {
            raw: Vec::with_capacity(options.block_raw_bytes + 4096),
            lines: 0,
            level_bits: 0,
            min_time: 0,
            max_time: 0,
            first_seq: 0,
            started: None,
        };
        builder.reset(resume.next_seq);
        let sampler = options
            .sampling
            .active()
            .then(|| Sampler::new(options.sampling.clone()));
        let guard = options
            .disk_guard
            .map(|g| DiskGuard::new(g, StatvfsProbe::new(&dir)));
        Ok(Writer {
            guard,
            sampler,
            started: Instant::now(),
            last_summary: Instant::now(),
            segment_first_block: None,
            last_retention: Instant::now(),
            trace_key: trace_key(&options.trace_field),
            shared,
            vfs,
            dir,
            options,
            file: resume.file,
            index: resume.index,
            offset: resume.offset,
            durable_offset: resume.offset,
            next_seq: resume.next_seq,
            consumed: 0,
            durable_records: 0,
            last_sync: Instant::now(),
            builder,
            compressor,
            failed: false,
        })
    }

    /// The thread's body; a panic is caught by the caller, which latches the sink.
    pub fn run(mut self, mut consumer: RecordConsumer) {
        let shared = self.shared.clone();
        loop {
            let n = shared.ring.drain(&mut consumer, |rec| self.on_record(rec));
            self.consumed += n as u64;
            if n > 0 {
                // Producers waiting for space.
                let _g = shared.lock();
                shared.done_cv.notify_all();
            }
            let closing = shared.closing.load(Ordering::Acquire);
            let pending = shared.ring.has_pending(&consumer);
            if !self.failed {
                self.sampler_tick();
                if let Err(e) = self
                    .after_drain(closing && !pending)
                    .and_then(|()| self.housekeeping())
                {
                    self.fail(e);
                }
            }
            if closing && !pending {
                break;
            }
            if n == 0 {
                self.sleep(&consumer);
            }
        }
        let mut st = shared.lock();
        st.writer_done = true;
        shared.done_cv.notify_all();
    }

    fn fail(&mut self, e: SinkError) {
        self.failed = true;
        let mut st = self.shared.lock();
        if st.failed.is_none() {
            st.failed = Some(e);
        }
        self.shared.failed_flag.store(true, Ordering::Release);
        self.shared.done_cv.notify_all();
    }

    fn on_record(&mut self, rec: &[u8]) {
        if self.failed {
            self.shared
                .counters
                .lost_after_failure
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let disk = self.guard_poll();
        for line in rec.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            let meta = scan(line, &self.trace_key);
            if !disk.keeps(meta.level) {
                self.shared.counters.dropped_disk[level_class(meta.level) as usize]
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Some(s) = &mut self.sampler {
                let now_ms = self.started.elapsed().as_millis() as u64;
                if !s.keep(meta.level, meta.trace, msg(line), now_ms) {
                    continue;
                }
            }
            self.add_line(line, meta.level, meta.time);
        }
        if self.builder.raw.len() >= self.options.block_raw_bytes {
            if let Err(e) = self.write_block() {
                self.fail(e);
            }
        }
    }

    /// The disk-space guard's state, probing `statvfs` at most once per its interval (on
    /// this, the writer, thread); publishes transitions to the counters.
    fn guard_poll(&mut self) -> GuardState {
        let Some(g) = &mut self.guard else {
            return GuardState::Normal;
        };
        let now_ms = self.started.elapsed().as_millis() as u64;
        if let Some(t) = g.poll(now_ms) {
            let c = &self.shared.counters;
            c.disk_transitions.fetch_add(1, Ordering::Relaxed);
            c.disk_state.store(t.to as u8, Ordering::Relaxed);
        }
        g.state()
    }

    fn add_line(&mut self, line: &[u8], lvl: Option<u32>, time: Option<i64>) {
        {
            let b = &mut self.builder;
            b.level_bits |= 1 << level_class(lvl);
            if let Some(t) = time {
                b.min_time = b.min_time.min(t);
                b.max_time = b.max_time.max(t);
            }
            b.raw.extend_from_slice(line);
            b.raw.push(b'\n');
            b.lines += 1;
            if b.started.is_none() {
                b.started = Some(Instant::now());
            }
        }
    }

    /// Publishes the sampler's totals and, once per summary period, adds the summary line
    /// of what it dropped to the store.
    fn sampler_tick(&mut self) {
        let Some(s) = &mut self.sampler else { return };
        for (class, counts) in s.total.0.iter().enumerate() {
            for (reason, &n) in counts.iter().enumerate() {
                self.shared.counters.dropped[class][reason].store(n, Ordering::Relaxed);
            }
        }
        if self.last_summary.elapsed() < Duration::from_millis(s.options().summary_ms) {
            return;
        }
        self.last_summary = Instant::now();
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if let Some(line) = s.take_summary(wall_ms) {
            self.add_line(line.as_bytes(), Some(40), Some(wall_ms));
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(crate::format::segment_name(self.index))
    }

    /// Compresses and appends the partial block (not synced).
    fn write_block(&mut self) -> Result<(), SinkError> {
        let b = &mut self.builder;
        if b.lines == 0 {
            return Ok(());
        }
        let compressed = self
            .compressor
            .compress(&b.raw)
            .map_err(|e| SinkError::io("compressing a block", e))?;
        let (flags, stored): (u16, &[u8]) = if compressed.len() < b.raw.len() {
            (FLAG_ZSTD, &compressed)
        } else {
            (0, &b.raw)
        };
        let header = BlockHeader {
            flags,
            raw_len: b.raw.len() as u32,
            stored_len: stored.len() as u32,
            line_count: b.lines,
            level_bits: b.level_bits,
            first_seq: b.first_seq,
            min_time: b.min_time,
            max_time: b.max_time,
            prev_hash: [0; 16],
            durable_before: self.durable_offset,
            payload_crc: crc32c::crc32c(stored),
        };
        let head = header.encode();
        let pad = (header.span() - (BLOCK_HEADER_BYTES + stored.len()) as u64) as usize;
        let path = self.dir.join(crate::format::segment_name(self.index));
        self.file
            .write_at(self.offset, &[&head, stored, &PAD[..pad]], false)
            .map_err(|e| SinkError::io(format!("writing a block to {}", path.display()), e))?;
        self.offset += header.span();
        self.segment_first_block.get_or_insert_with(Instant::now);
        let c = &self.shared.counters;
        c.lines.fetch_add(u64::from(b.lines), Ordering::Relaxed);
        c.blocks.fetch_add(1, Ordering::Relaxed);
        c.raw_bytes.fetch_add(b.raw.len() as u64, Ordering::Relaxed);
        c.stored_bytes.fetch_add(header.span(), Ordering::Relaxed);
        self.next_seq = b.first_seq + u64::from(b.lines);
        let next = self.next_seq;
        self.builder.reset(next);
        if self.offset >= self.options.segment_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    fn sync_file(&mut self) -> Result<(), SinkError> {
        let path = self.path();
        self.file
            .sync_data()
            .map_err(|e| SinkError::io(format!("fdatasync of {}", path.display()), e))?;
        self.shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
        self.durable_offset = self.offset;
        Ok(())
    }

    /// Seals the active segment (synced) and starts the next one.
    fn rotate(&mut self) -> Result<(), SinkError> {
        self.sync_file()?;
        self.index += 1;
        self.file = create_segment(&*self.vfs, &self.dir, self.index)?;
        self.offset = crate::format::SEGMENT_HEADER_BYTES as u64;
        self.durable_offset = self.offset;
        self.segment_first_block = None;
        self.shared
            .counters
            .segments_created
            .fetch_add(1, Ordering::Relaxed);
        self.retention()
    }

    /// Deletes what the retention limits say (sealed segments only).
    fn retention(&mut self) -> Result<(), SinkError> {
        self.last_retention = Instant::now();
        if !self.options.retention.active() {
            return Ok(());
        }
        let r = crate::retention::apply(
            &*self.vfs,
            &self.dir,
            self.index,
            &self.options.retention,
            std::time::SystemTime::now(),
        )?;
        let c = &self.shared.counters;
        c.segments_removed.fetch_add(r.segments, Ordering::Relaxed);
        c.bytes_removed.fetch_add(r.bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Age rotation and periodic retention, between drains.
    fn housekeeping(&mut self) -> Result<(), SinkError> {
        if let (Some(age), Some(t)) = (self.options.rotate_age, self.segment_first_block) {
            if t.elapsed() >= age {
                // Seal with everything drained so far in it.
                self.sync_all()?;
                if self.segment_first_block.is_some() {
                    return self.rotate();
                }
            }
        }
        if self.options.retention.max_age.is_some()
            && self.last_retention.elapsed() >= Duration::from_millis(RETENTION_CHECK_MS)
        {
            self.retention()?;
        }
        Ok(())
    }

    /// Writes the partial block and syncs; then everything drained is durable.
    fn sync_all(&mut self) -> Result<(), SinkError> {
        self.write_block()?;
        if self.durable_offset != self.offset {
            self.sync_file()?;
        }
        self.last_sync = Instant::now();
        self.durable_records = self.consumed;
        let mut st = self.shared.lock();
        st.durable_records = self.consumed;
        self.shared.done_cv.notify_all();
        Ok(())
    }

    fn after_drain(&mut self, last: bool) -> Result<(), SinkError> {
        let unsynced = self.consumed > self.durable_records;
        let target = self.shared.flush_target.load(Ordering::Acquire);
        let want = last && unsynced
            || (target > self.durable_records && self.consumed >= target)
            || unsynced
                && match self.options.sync {
                    SyncMode::Always => true,
                    SyncMode::Interval(d) => self.last_sync.elapsed() >= d,
                    SyncMode::None => false,
                };
        if want {
            self.sync_all()?;
        } else if self
            .builder
            .started
            .is_some_and(|t| t.elapsed() >= Duration::from_millis(BLOCK_AGE_MS_MAX))
        {
            self.write_block()?;
        }
        Ok(())
    }

    fn sleep(&mut self, consumer: &RecordConsumer) {
        let shared = &*self.shared;
        let target = shared.flush_target.load(Ordering::Acquire);
        let idle = self.builder.lines == 0
            && (self.consumed == self.durable_records || self.options.sync == SyncMode::None)
            && target <= self.durable_records;
        let mut timeout = Duration::from_millis(WRITER_POLL_MS);
        if target > self.consumed {
            // A flush waits for records still being published: look again soon.
            timeout = Duration::from_micros(200);
        }
        let guard = shared.lock();
        shared
            .wake
            .store(if idle { WAKE_ANY } else { WAKE_IF_FULL }, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let again = shared.ring.has_pending(consumer)
            || shared.closing.load(Ordering::SeqCst)
            || shared.flush_target.load(Ordering::SeqCst) != target;
        if !again {
            let mut idle_timeout = Duration::from_secs(1);
            if let (Some(age), Some(t)) = (self.options.rotate_age, self.segment_first_block) {
                // Wake in time to seal the segment by age.
                idle_timeout = idle_timeout.min(
                    age.saturating_sub(t.elapsed())
                        .max(Duration::from_millis(1)),
                );
            }
            let timeout = if idle {
                idle_timeout
            } else {
                timeout.min(idle_timeout)
            };
            let _ = shared
                .writer_cv
                .wait_timeout(guard, timeout)
                .unwrap_or_else(|p| p.into_inner());
        }
        shared.wake.store(AWAKE, Ordering::SeqCst);
    }
}
