//! The committer thread: forms commit groups from the ring and makes them durable.
//!
//! # Group formation
//! Adaptive, no timer: the committer takes every frame published since the previous
//! group (up to `group_bytes_max`) — i.e. whatever arrived while the previous write and
//! fdatasync were in flight — and writes it with one submission: WRITEV linked to
//! FDATASYNC on io_uring (see `uringdb_uring`). Only when the committer was idle (the
//! group's first frame woke it) does it wait the optional `commit_delay` to let more
//! arrive.
//!
//! # Per group
//! 1. Walk published frames from `consumed` (see the ownership protocol in
//!    [`crate::ring`]); a batch's frames are always taken together.
//! 2. If the group does not fit in the active segment: sync the active segment if it has
//!    unsynced bytes, then roll to the prepared next segment, whose header is written
//!    with the group. ENOSPC while preparing fails this group only (nothing was written,
//!    so nothing is ambiguous); the log stays usable.
//! 3. Assign sequence numbers in ring order, patch them into the frames, seal checksums.
//! 4. One gathered write of the group, led by its MARK frame (the durable watermark as of
//!    now: see `format`; it lets recovery tell a torn group from damaged durable data),
//!    then the ring's runs (two iovecs if it wraps around the ring; sync markers and pads
//!    are skipped), with fdatasync if any record asked for it, a sync marker is present,
//!    or too many unsynced bytes accumulated. After a roll, the previous segment gets its
//!    SEAL (durably) once the new segment is in place, so that a missing last segment is
//!    an error at recovery rather than silently lost records.
//! 5. On a write or fsync error: latch the failure — every later append fails until the
//!    log is reopened; there is no retry (after a failed fsync the page cache may have
//!    dropped the dirty pages, so a retry could report success for lost data).
//! 6. Publish the durable watermark (readers and tails see records only from here on),
//!    deliver completions (one call per producer per group), zero and release the ring
//!    space, wake producers waiting for space (blocked ones through a condvar; parked ones,
//!    which returned to their caller, with one `space_available` call each).
//!
//! # Idle
//! With nothing to do and unsynced bytes (from `sync: false` appends) outstanding, the
//! committer issues an fdatasync, so that such records become durable and visible soon.
//! Then it parks; producers unpark it after publishing (a Dekker-style handshake on
//! `committer_sleeping` with SeqCst fences, plus a timeout as a safety net).

use crate::error::WalError;
use crate::format::{self, Kind, SegmentHeader};
use crate::limits::{COMMITTER_PARK_MS, UNSYNCED_BYTES_MAX};
use crate::segment::Segment;
use crate::shared::{GroupInfo, Shared};
use crate::sync::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct CommitterState {
    consumed: u64,
    segment: Arc<Segment>,
    /// Next write offset in the active segment.
    offset: u64,
    /// Last sequence number assigned (and written).
    written_seq: u64,
    /// Bytes written but not yet covered by fdatasync.
    unsynced_bytes: u64,
    frames: Vec<GroupFrame>,
    /// The committer parked since the last group (so the next group may wait
    /// `commit_delay` for company).
    idle: bool,
    /// Per producer: (pid, outcomes in order).
    outcomes: Vec<(u64, Vec<u64>)>,
    /// Groups written since open (a clean close then leaves a MARK behind them).
    groups_written: u64,
}

#[derive(Clone, Copy, Debug)]
struct GroupFrame {
    pos: u64,
    kind: Kind,
    len: usize,
    total: usize,
    sync: bool,
    /// The producer's partial checksum (word0 and payload).
    crc: u32,
    /// The producer that appended it, read from the sequence slot when collected (the
    /// slot is overwritten with the sequence number before the write, so failures must not
    /// read it back).
    pid: u64,
}

impl CommitterState {
    pub fn new(segment: Arc<Segment>, offset: u64, last_seq: u64) -> CommitterState {
        CommitterState {
            consumed: 0,
            segment,
            offset,
            written_seq: last_seq,
            unsynced_bytes: 0,
            frames: Vec::new(),
            idle: true,
            outcomes: Vec::new(),
            groups_written: 0,
        }
    }
}

/// The committer thread's body.
pub(crate) fn run(shared: Arc<Shared>, mut st: CommitterState) {
    let s = &*shared;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| main_loop(s, &mut st)));
    if result.is_err() {
        // A bug, not an operating error: fail everything so no caller waits forever.
        let e = s.latch_failure(&WalError::io(
            "committer",
            std::io::Error::other("internal error: the committer thread panicked"),
        ));
        drain_failing(s, &mut st, &WalError::Failed(e));
    }
    *s.committer_thread.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

fn main_loop(s: &Shared, st: &mut CommitterState) {
    loop {
        collect(s, st);
        let woke_idle = std::mem::replace(&mut st.idle, false);
        if st.frames.is_empty() {
            if st.unsynced_bytes > 0 {
                sync_active(s, st);
                continue;
            }
            if s.closing.load(Ordering::SeqCst)
                && s.in_flight.load(Ordering::SeqCst) == 0
                && !s.ring.has_reserved_beyond(st.consumed)
            {
                write_close_mark(s, st);
                return;
            }
            park(s, st);
            st.idle = true;
            continue;
        }
        if woke_idle && !s.limits.commit_delay.is_zero() {
            std::thread::sleep(s.limits.commit_delay);
            collect_more(s, st);
        }
        commit_group(s, st);
    }
}

fn park(s: &Shared, st: &CommitterState) {
    s.committer_sleeping.store(true, Ordering::SeqCst);
    crate::sync::fence(Ordering::SeqCst);
    if s.ring.peek(st.consumed).is_some() || s.closing.load(Ordering::SeqCst) {
        s.committer_sleeping.store(false, Ordering::SeqCst);
        if s.closing.load(Ordering::SeqCst) {
            // Closing with reservations outstanding: poll until they are published.
            std::thread::yield_now();
        }
        return;
    }
    std::thread::park_timeout(Duration::from_millis(COMMITTER_PARK_MS));
    s.committer_sleeping.store(false, Ordering::SeqCst);
}

/// Collects published frames into `st.frames`.
fn collect(s: &Shared, st: &mut CommitterState) {
    st.frames.clear();
    collect_more(s, st);
}

fn collect_more(s: &Shared, st: &mut CommitterState) {
    let mut pos = st
        .frames
        .last()
        .map_or(st.consumed, |f| f.pos + f.total as u64);
    let mut bytes: usize = st
        .frames
        .iter()
        .filter(|f| f.kind.is_on_disk())
        .map(|f| f.total)
        .sum();
    // A group ends at the active segment's end, so segments fill up whatever the grouping:
    // what does not fit goes into the next group, which rolls. Only a group whose first
    // entry does not fit rolls, and may then fill the whole new segment.
    let seg_room = (s.limits.segment_bytes.saturating_sub(st.offset) as usize)
        .saturating_sub(format::SEGMENT_RESERVED_BYTES);
    let seg_payload = format::segment_record_room(s.limits.segment_bytes as usize);
    let mut rolling = bytes > seg_room;
    let mut in_batch = false;
    while let Some(p) = s.ring.peek(pos) {
        let disk = p.kind.is_on_disk();
        if disk && !in_batch {
            // An atomic batch is one entry: measured whole (its frames are all published
            // once its first one is).
            let entry = if p.kind == Kind::First {
                batch_bytes(s, pos)
            } else {
                p.total
            };
            if bytes == 0 {
                rolling = entry > seg_room;
            } else {
                let room = if rolling { seg_payload } else { seg_room };
                if bytes + entry > s.limits.group_bytes_max.min(room) {
                    break;
                }
            }
        }
        st.frames.push(GroupFrame {
            pos,
            kind: p.kind,
            len: p.len,
            total: p.total,
            sync: p.sync,
            crc: p.crc,
            pid: if p.kind == Kind::Pad {
                u64::MAX
            } else {
                s.ring.read_u64(pos + 8)
            },
        });
        if disk {
            bytes += p.total;
        }
        in_batch = matches!(p.kind, Kind::First | Kind::Middle);
        pos += p.total as u64;
    }
    debug_assert!(!in_batch, "batches are published whole");
}

/// Framed bytes of the atomic batch whose FIRST frame is at `pos`.
fn batch_bytes(s: &Shared, mut pos: u64) -> usize {
    let mut total = 0;
    while let Some(p) = s.ring.peek(pos) {
        if p.kind != Kind::Pad {
            total += p.total;
            if p.kind == Kind::Last {
                break;
            }
        }
        pos += p.total as u64;
    }
    total
}

fn group_disk_bytes(st: &CommitterState) -> u64 {
    st.frames
        .iter()
        .filter(|f| f.kind.is_on_disk())
        .map(|f| f.total as u64)
        .sum()
}

fn commit_group(s: &Shared, st: &mut CommitterState) {
    let group_start_ns = s.now_ns();
    let arrival = s.arrival_ns.swap(0, std::sync::atomic::Ordering::Relaxed);
    let arrival = if arrival == 0 {
        group_start_ns
    } else {
        arrival
    };
    let end = {
        let last = st.frames.last().expect("non-empty group");
        last.pos + last.total as u64
    };
    if let Some(e) = s.failure() {
        fail_group(s, st, &WalError::Failed(e));
        finish(s, st, end);
        return;
    }
    let disk_bytes = group_disk_bytes(st);
    let mut header: Option<[u8; format::SEGMENT_HEADER_BYTES]> = None;
    let mut roll_to: Option<Arc<Segment>> = None;
    let room_end = s.limits.segment_bytes - format::SEGMENT_RESERVED_BYTES as u64;
    if disk_bytes > 0 && st.offset + disk_bytes > room_end {
        match prepare_roll(s, st) {
            Ok((seg, h)) => {
                roll_to = Some(seg);
                header = Some(h);
            }
            Err(e) => {
                fail_group(s, st, &e);
                finish(s, st, end);
                return;
            }
        }
    }
    // Assign sequence numbers and seal checksums; gather outcomes per producer.
    for (_, v) in st.outcomes.iter_mut() {
        v.clear();
    }
    let mut seq = st.written_seq;
    let mut wants_sync = false;
    let mut marker = false;
    let first_seq = seq + 1;
    for f in &st.frames {
        if f.kind == Kind::Pad {
            continue;
        }
        let pid = f.pid;
        let outcome = if f.kind.is_on_disk() {
            seq += 1;
            s.ring.write_u64(f.pos + 8, seq);
            let w0 = format::word0(f.kind, f.len, f.sync);
            s.ring.write_u64(
                f.pos,
                u64::from(w0) | (u64::from(format::seal_crc(f.crc, seq)) << 32),
            );
            wants_sync |= f.sync;
            seq
        } else {
            marker = true;
            u64::MAX // filled with the durable watermark below
        };
        match st.outcomes.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, v)) => v.push(outcome),
            None => st.outcomes.push((pid, vec![outcome])),
        }
    }
    let durable = wants_sync
        || marker
        || st.unsynced_bytes + disk_bytes > UNSYNCED_BYTES_MAX
        || roll_to.is_some() && st.unsynced_bytes > 0;
    let mut write_ns = 0;
    let mut sync_ns = 0;
    if disk_bytes > 0 {
        let (segment, offset) = match &roll_to {
            Some(seg) => (seg.clone(), 0u64),
            None => (st.segment.clone(), st.offset),
        };
        // The durable watermark as of this submission: every record it names was covered
        // by a completed fdatasync before this group's bytes reached the file.
        let mark = format::encode_meta(Kind::Mark, s.durable_seq.load(Ordering::Acquire));
        let write_result = {
            let mut iov: Vec<&[u8]> = Vec::with_capacity(5);
            if let Some(h) = &header {
                iov.push(&h[..]);
            }
            iov.push(&mark[..]);
            gather(s, st, &mut iov);
            // Rolled segments must be durable before they are renamed into place.
            segment
                .file
                .write_at(offset, &iov, durable || roll_to.is_some())
                .map_err(|e| {
                    WalError::io(
                        format!("writing {} at offset {offset}", segment.path.display()),
                        e,
                    )
                })
        };
        let timing = match write_result.and_then(|t| match &roll_to {
            Some(seg) => finish_roll(s, st, seg).map(|_| t),
            None => Ok(t),
        }) {
            Ok(t) => t,
            Err(e) => {
                // This group gets the original error (EIO, ENOSPC, ...); later appends
                // get `Failed` wrapping it.
                s.latch_failure(&e);
                fail_group(s, st, &e);
                finish(s, st, end);
                return;
            }
        };
        write_ns = timing.write_ns;
        sync_ns = timing.sync_ns;
        let lead = header.map_or(0, |h| h.len() as u64) + mark.len() as u64;
        let written = lead + disk_bytes;
        let group_offset = offset + lead;
        st.offset = offset + written;
        s.counters.add(&s.counters.bytes_written, written);
        if durable || roll_to.is_some() {
            s.counters.add(&s.counters.fsyncs, 1);
            st.unsynced_bytes = 0;
        } else {
            st.unsynced_bytes += disk_bytes;
        }
        st.written_seq = seq;
        st.groups_written += 1;
        st.segment.note_index(first_seq, group_offset);
        if let Some(hook) = &s.apply {
            apply_group(s, st, &**hook, first_seq);
        }
    } else if marker && st.unsynced_bytes > 0 {
        let t0 = s.now_ns();
        if let Err(e) = st.segment.file.sync_data() {
            let e = WalError::io(format!("fdatasync of {}", st.segment.path.display()), e);
            s.latch_failure(&e);
            fail_group(s, st, &e);
            finish(s, st, end);
            return;
        }
        sync_ns = s.now_ns() - t0;
        s.counters.add(&s.counters.fsyncs, 1);
        st.unsynced_bytes = 0;
    }
    if st.unsynced_bytes == 0 {
        s.publish_durable(st.written_seq);
    }
    let watermark = s.durable_seq.load(Ordering::Acquire);
    let done_ns = s.now_ns();
    let records = seq - (first_seq - 1);
    let info = GroupInfo {
        records,
        bytes: if disk_bytes > 0 {
            disk_bytes + header.map_or(0, |h| h.len() as u64) + format::META_FRAME_BYTES as u64
        } else {
            0
        },
        first_seq: if records > 0 { first_seq } else { 0 },
        last_seq: if records > 0 { seq } else { 0 },
        queue_wait_us: group_start_ns.saturating_sub(arrival) as f64 / 1000.0,
        write_us: write_ns as f64 / 1000.0,
        fsync_us: sync_ns as f64 / 1000.0,
        synced: st.unsynced_bytes == 0,
    };
    // Counted here, once per group, rather than by producers on a shared cache line, and
    // before the completions go out: a caller whose append resolved sees it in stats().
    s.counters.add(&s.counters.appends, records);
    s.counters.add(
        &s.counters.append_bytes,
        st.frames
            .iter()
            .filter(|f| f.kind.is_on_disk())
            .map(|f| f.len as u64)
            .sum(),
    );
    s.counters.add(&s.counters.groups, 1);
    {
        let mut lat = s
            .counters
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        lat.queue_wait
            .record(group_start_ns.saturating_sub(arrival));
        lat.write.record(write_ns);
        if sync_ns > 0 {
            lat.fsync.record(sync_ns);
        }
        lat.total.record(done_ns.saturating_sub(arrival));
    }
    // Deliver completions: one call per producer per group.
    {
        let producers = s.producers.lock().unwrap_or_else(|e| e.into_inner());
        for (pid, v) in st.outcomes.iter_mut() {
            if v.is_empty() {
                continue;
            }
            for o in v.iter_mut() {
                if *o == u64::MAX {
                    *o = watermark;
                }
            }
            if let Some(Some(sink)) = producers.get(*pid as usize) {
                sink.completed(v, &info);
            }
        }
    }
    finish(s, st, end);
}

/// Hands the group's records (sequence numbers already assigned) to the apply hook.
fn apply_group(
    s: &Shared,
    st: &CommitterState,
    hook: &dyn crate::shared::ApplyHook,
    first_seq: u64,
) {
    let mut seq = first_seq;
    let mut it = st.frames.iter().filter(|f| f.kind.is_on_disk()).map(|f| {
        // SAFETY: as in `gather`: the committer owns these published frames until
        // `finish` releases them (after this call); a frame never wraps the ring.
        let payload = unsafe {
            s.ring
                .slice(f.pos + format::FRAME_HEADER_BYTES as u64, f.len)
        };
        let r = (seq, payload);
        seq += 1;
        r
    });
    hook.apply(&mut it);
}

/// Gathers the group's on-disk frames into iovecs (contiguous runs of the ring).
fn gather<'a>(s: &'a Shared, st: &CommitterState, iov: &mut Vec<&'a [u8]>) {
    let mut run: Option<(u64, usize)> = None;
    let flush = |run: &mut Option<(u64, usize)>, iov: &mut Vec<&'a [u8]>| {
        if let Some((p, n)) = run.take() {
            // SAFETY: the committer is the ring's only consumer and owns these published
            // frames until `finish` releases them, which happens after the write that
            // uses these slices has completed; runs never wrap (pads split them).
            iov.push(unsafe { s.ring.slice(p, n) });
        }
    };
    for f in &st.frames {
        if f.kind.is_on_disk() {
            // A frame that starts at the ring's first byte continues nothing: the previous
            // frame ended exactly at the end of the buffer (no pad was needed).
            let wraps = f.pos % s.ring.capacity() as u64 == 0;
            match &mut run {
                Some((p, n)) if *p + *n as u64 == f.pos && !wraps => *n += f.total,
                _ => {
                    flush(&mut run, iov);
                    run = Some((f.pos, f.total));
                }
            }
        } else {
            flush(&mut run, iov);
        }
    }
    flush(&mut run, iov);
}

/// At a clean close, after everything is durable: a MARK claiming every record written, so
/// that damage anywhere in the log (also in its last group) is told from a torn tail at the
/// next open. Skipped when nothing was written since open, after a failure, or when the
/// segment has no room left before its SEAL reserve; best effort (a failure leaves the log
/// as a crash would, which recovery handles).
fn write_close_mark(s: &Shared, st: &mut CommitterState) {
    let seal_reserve = format::META_FRAME_BYTES as u64;
    if st.groups_written == 0
        || s.failure().is_some()
        || st.unsynced_bytes > 0
        || st.offset + format::META_FRAME_BYTES as u64 + seal_reserve > s.limits.segment_bytes
    {
        return;
    }
    let mark = format::encode_meta(Kind::Mark, st.written_seq);
    if st.segment.file.write_at(st.offset, &[&mark], true).is_ok() {
        st.offset += mark.len() as u64;
        s.counters.add(&s.counters.fsyncs, 1);
    }
}

fn sync_active(s: &Shared, st: &mut CommitterState) {
    if s.failure().is_some() {
        st.unsynced_bytes = 0;
        return;
    }
    let t0 = s.now_ns();
    match st.segment.file.sync_data() {
        Ok(()) => {
            s.counters.add(&s.counters.fsyncs, 1);
            let mut lat = s
                .counters
                .latencies
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            lat.fsync.record(s.now_ns() - t0);
            drop(lat);
            st.unsynced_bytes = 0;
            s.publish_durable(st.written_seq);
        }
        Err(e) => {
            s.latch_failure(&WalError::io(
                format!("fdatasync of {}", st.segment.path.display()),
                e,
            ));
            st.unsynced_bytes = 0;
        }
    }
}

/// Syncs the active segment if needed and takes the prepared next one.
fn prepare_roll(
    s: &Shared,
    st: &mut CommitterState,
) -> Result<(Arc<Segment>, [u8; format::SEGMENT_HEADER_BYTES]), WalError> {
    let number = st.segment.number + 1;
    let file = s.preparer.take(number)?;
    if st.unsynced_bytes > 0 {
        st.segment.file.sync_data().map_err(|e| {
            let err = WalError::io(format!("fdatasync of {}", st.segment.path.display()), e);
            WalError::Failed(s.latch_failure(&err))
        })?;
        s.counters.add(&s.counters.fsyncs, 1);
        st.unsynced_bytes = 0;
        s.publish_durable(st.written_seq);
    }
    let first_seq = st.written_seq + 1;
    let path = s.dir.join(format::segment_file_name(number));
    let seg = Arc::new(Segment::new(number, first_seq, path, file));
    Ok((seg, SegmentHeader { number, first_seq }.encode()))
}

/// After the rolled segment's first write is durable: rename it into place, sync the
/// directory, seal the previous segment, make the new one active, and ask for the next one.
///
/// The SEAL goes in only after the new segment is durably in place, so a sealed segment
/// always has a successor on disk; a crash before the SEAL leaves an unsealed segment
/// followed by a complete one, which recovery accepts. (The offset is in the room every
/// segment reserves; a version 1 segment may lack it, and then stays unsealed.)
fn finish_roll(s: &Shared, st: &mut CommitterState, seg: &Arc<Segment>) -> Result<(), WalError> {
    let prep = s.dir.join(format::prepared_file_name(seg.number));
    s.vfs
        .rename(&prep, &seg.path)
        .map_err(|e| WalError::io(format!("renaming {} into place", prep.display()), e))?;
    s.vfs
        .sync_dir(&s.dir)
        .map_err(|e| WalError::io(format!("syncing directory {}", s.dir.display()), e))?;
    if st.offset + format::META_FRAME_BYTES as u64 <= s.limits.segment_bytes {
        let seal = format::encode_meta(Kind::Seal, seg.first_seq);
        match st.segment.file.write_at(st.offset, &[&seal], true) {
            Ok(_) => s.counters.add(&s.counters.fsyncs, 1),
            Err(e) => {
                // The group that rolled is durable in its new segment and is acknowledged;
                // an unsealed predecessor is a state recovery accepts. But a write failed:
                // the log is failed from here on, as after any failed write.
                s.latch_failure(&WalError::io(
                    format!(
                        "sealing {} at offset {}",
                        st.segment.path.display(),
                        st.offset
                    ),
                    e,
                ));
            }
        }
    }
    s.segments
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push(seg.clone());
    st.segment = seg.clone();
    s.preparer.request(seg.number + 1);
    Ok(())
}

fn fail_group(s: &Shared, st: &mut CommitterState, e: &WalError) {
    let mut counts: Vec<(u64, usize)> = Vec::new();
    for f in &st.frames {
        if f.kind == Kind::Pad {
            continue;
        }
        let pid = f.pid;
        match counts.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, n)) => *n += 1,
            None => counts.push((pid, 1)),
        }
    }
    let producers = s.producers.lock().unwrap_or_else(|e| e.into_inner());
    for (pid, n) in counts {
        if let Some(Some(sink)) = producers.get(pid as usize) {
            sink.failed(n, e);
        }
    }
}

/// Releases the group's ring space and wakes producers waiting for it.
fn finish(s: &Shared, st: &mut CommitterState, end: u64) {
    s.ring.release(st.consumed, end);
    st.consumed = end;
    st.frames.clear();
    if s.space_waiters.load(Ordering::SeqCst) > 0 {
        let _g = s.space_lock.lock().unwrap_or_else(|e| e.into_inner());
        s.space_cv.notify_all();
    }
    // Producers that parked a write instead of blocking: one call each, per group at most.
    s.notify_space_wanted();
}

/// After a panic: fail everything that is or becomes published until close, starting
/// with the group that was in progress (its frames are collected but not released).
fn drain_failing(s: &Shared, st: &mut CommitterState, e: &WalError) {
    if let Some(last) = st.frames.last().copied() {
        fail_group(s, st, e);
        finish(s, st, last.pos + last.total as u64);
    }
    loop {
        st.frames.clear();
        collect_more(s, st);
        if let Some(last) = st.frames.last().copied() {
            fail_group(s, st, e);
            finish(s, st, last.pos + last.total as u64);
            continue;
        }
        if s.closing.load(Ordering::SeqCst)
            && s.in_flight.load(Ordering::SeqCst) == 0
            && !s.ring.has_reserved_beyond(st.consumed)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
