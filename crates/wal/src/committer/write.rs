//! Committing a group: sequence numbers and checksums, the one gathered write (with its
//! MARK, and a segment header after a roll), the sync decision, the hand-off to the apply
//! hook, the durable watermark and the counters (steps 3, 4 and 6); then the completions
//! (`complete.rs`).

use std::sync::Arc;

use crate::error::WalError;
use crate::format::{self, Kind};
use crate::limits::UNSYNCED_BYTES_MAX;
use crate::segment::Segment;
use crate::shared::{GroupInfo, Shared};
use crate::sync::Ordering;

use super::complete::{deliver, fail_group, finish};
use super::group::group_disk_bytes;
use super::roll::{ask_next_if_half_full, finish_roll, grow_empty_active, prepare_roll};
use super::state::CommitterState;

pub(super) fn commit_group(s: &Shared, st: &mut CommitterState) {
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
    let mut roll_to: Option<(Arc<Segment>, u64)> = None;
    let room_end = st
        .segment_bytes
        .saturating_sub(format::SEGMENT_RESERVED_BYTES as u64);
    let active_empty = st.written_seq + 1 == st.segment.first_seq;
    if disk_bytes > 0 && st.offset + disk_bytes > room_end && active_empty {
        // A segment must hold a record before the next one starts (recovery requires
        // first sequence numbers to increase): a new log's small first segment grows in
        // place for an entry larger than it.
        if let Err(e) = grow_empty_active(s, st, disk_bytes) {
            fail_group(s, st, &e);
            finish(s, st, end);
            return;
        }
    } else if disk_bytes > 0 && st.offset + disk_bytes > room_end {
        match prepare_roll(s, st, disk_bytes) {
            Ok((seg, h, len)) => {
                roll_to = Some((seg, len));
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
            Some((seg, _)) => (seg.clone(), 0u64),
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
            Some((seg, len)) => finish_roll(s, st, seg, *len).map(|_| t),
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
        ask_next_if_half_full(s, st);
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
    deliver(s, st, watermark, &info);
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
