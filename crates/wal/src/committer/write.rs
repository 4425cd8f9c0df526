//! Committing a group: sequence numbers and checksums, the one gathered write (with its
//! MARK, and a segment header after a roll), the sync decision, and the hand-off to the
//! pipeline (steps 3 and 4), which syncs it, applies it and completes it in order
//! (`pipeline.rs`, `complete.rs`).

use std::sync::Arc;

use crate::error::WalError;
use crate::format::{self, Kind};
use crate::limits::UNSYNCED_BYTES_MAX;
use crate::segment::Segment;
use crate::shared::{GroupInfo, Shared};
use crate::sync::Ordering;

use super::frame::GroupFrame;
use super::group::group_disk_bytes;
use super::pipeline::{InFlight, Pipeline};
use super::roll::{ask_next_if_half_full, finish_roll, grow_empty_active, prepare_roll};
use super::state::CommitterState;

pub(super) fn commit_group(s: &Arc<Shared>, st: &mut CommitterState) {
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
    st.next_pos = end;
    let disk_bytes = group_disk_bytes(st);
    let frames = std::mem::take(&mut st.frames);
    let pipeline = st.pipeline.clone();
    let fail = |frames, e| Pipeline::push(s, &pipeline, InFlight::failed(frames, end, e), None);
    if let Some(e) = s.failure() {
        fail(frames, WalError::Failed(e));
        return;
    }
    let mut header: Option<[u8; format::SEGMENT_HEADER_BYTES]> = None;
    let mut roll_to: Option<(Arc<Segment>, u64)> = None;
    let room_end = st
        .segment_bytes
        .saturating_sub(format::SEGMENT_RESERVED_BYTES as u64);
    if disk_bytes > 0 && st.offset + disk_bytes > room_end {
        // Every fdatasync in flight is on the active segment: let them finish first.
        Pipeline::wait_idle(s, &pipeline);
        if let Some(e) = s.failure() {
            fail(frames, WalError::Failed(e));
            return;
        }
        if st.written_seq + 1 == st.segment.first_seq {
            // A segment must hold a record before the next one starts (recovery requires
            // first sequence numbers to increase): a new log's small first segment grows
            // in place for an entry larger than it.
            if let Err(e) = grow_empty_active(s, st, disk_bytes) {
                fail(frames, e);
                return;
            }
        } else {
            match prepare_roll(s, st, disk_bytes) {
                Ok((seg, h, len)) => {
                    roll_to = Some((seg, len));
                    header = Some(h);
                }
                Err(e) => {
                    fail(frames, e);
                    return;
                }
            }
        }
    }
    // Assign sequence numbers and seal checksums; gather outcomes per producer.
    let mut outcomes: Vec<(u64, Vec<u64>)> = Vec::new();
    let mut seq = st.written_seq;
    let mut wants_sync = false;
    let mut marker = false;
    let first_seq = seq + 1;
    let salt = roll_to
        .as_ref()
        .map_or(st.segment.salt, |(seg, _)| seg.salt);
    for f in &frames {
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
                u64::from(w0) | (u64::from(format::seal_crc(f.crc, seq) ^ salt) << 32),
            );
            wants_sync |= f.sync;
            seq
        } else {
            marker = true;
            u64::MAX // the durable watermark, filled in at delivery
        };
        match outcomes.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, v)) => v.push(outcome),
            None => outcomes.push((pid, vec![outcome])),
        }
    }
    let durable = wants_sync
        || marker
        || st.unsynced_bytes + disk_bytes > UNSYNCED_BYTES_MAX
        || roll_to.is_some() && st.unsynced_bytes > 0;
    let mut write_ns = 0;
    let mut lead = 0u64;
    if disk_bytes > 0 {
        let (segment, offset) = match &roll_to {
            Some((seg, _)) => (seg.clone(), 0u64),
            None => (st.segment.clone(), st.offset),
        };
        // The durable watermark as of this submission: every record it names was covered
        // by a completed fdatasync before this group's bytes reached the file.
        let mark = format::encode_meta(
            Kind::Mark,
            s.durable_seq.load(Ordering::Acquire),
            segment.salt,
        );
        let write_result = {
            let mut iov: Vec<&[u8]> = Vec::with_capacity(5);
            if let Some(h) = &header {
                iov.push(&h[..]);
            }
            iov.push(&mark[..]);
            gather(s, &frames, &mut iov);
            // A rolled segment's first write is durable before it is renamed into place;
            // every other group's fdatasync runs in the pipeline.
            segment
                .file
                .write_at(offset, &iov, roll_to.is_some())
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
                fail(frames, e);
                return;
            }
        };
        write_ns = timing.write_ns;
        lead = header.map_or(0, |h| h.len() as u64) + mark.len() as u64;
        let group_offset = offset + lead;
        st.offset = offset + lead + disk_bytes;
        s.counters.add(&s.counters.bytes_written, lead + disk_bytes);
        st.written_seq = seq;
        st.groups_written += 1;
        if roll_to.is_some() {
            // Durable already (the roll's write was), and nothing was in flight.
            s.counters.add(&s.counters.fsyncs, 1);
            if timing.sync_ns > 0 {
                let mut lat = s
                    .counters
                    .latencies
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                lat.fsync.record(timing.sync_ns);
            }
            st.unsynced_bytes = 0;
            s.publish_durable(seq);
        } else if durable {
            st.unsynced_bytes = 0;
        } else {
            st.unsynced_bytes += disk_bytes;
        }
        ask_next_if_half_full(s, st);
        st.segment.note_index(first_seq, group_offset);
    } else if marker {
        // A marker alone: the fdatasync asked for below covers everything written.
        st.unsynced_bytes = 0;
    }
    {
        let mut lat = s
            .counters
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        lat.queue_wait
            .record(group_start_ns.saturating_sub(arrival));
        lat.write.record(write_ns);
    }
    let records = seq - (first_seq - 1);
    let info = GroupInfo {
        records,
        bytes: if disk_bytes > 0 { disk_bytes + lead } else { 0 },
        first_seq: if records > 0 { first_seq } else { 0 },
        last_seq: if records > 0 { seq } else { 0 },
        queue_wait_us: group_start_ns.saturating_sub(arrival) as f64 / 1000.0,
        write_us: write_ns as f64 / 1000.0,
        fsync_us: 0.0,
        synced: false,
    };
    // A durable group waits for an fdatasync covering it; a sync marker for one covering
    // everything written before it. Both are `written_seq` now.
    let group = InFlight {
        frames,
        outcomes,
        end,
        last_seq: st.written_seq,
        needs_sync: durable,
        error: None,
        info,
        arrival_ns: arrival,
    };
    let sync = (durable && roll_to.is_none()).then_some((&st.segment, st.written_seq));
    Pipeline::push(s, &pipeline, group, sync);
}

/// Gathers the group's on-disk frames into iovecs (contiguous runs of the ring).
fn gather<'a>(s: &'a Shared, frames: &[GroupFrame], iov: &mut Vec<&'a [u8]>) {
    let mut run: Option<(u64, usize)> = None;
    let flush = |run: &mut Option<(u64, usize)>, iov: &mut Vec<&'a [u8]>| {
        if let Some((p, n)) = run.take() {
            // SAFETY: the committer owns these published frames until it hands the group
            // to the pipeline, after the write that uses these slices has completed (only
            // then can `finish` release them); runs never wrap (pads split them).
            iov.push(unsafe { s.ring.slice(p, n) });
        }
    };
    for f in frames {
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
