//! The committer thread: forms commit groups from the ring and makes them durable.
//!
//! # Group formation
//! Adaptive, no timer: the committer takes every frame published since the previous
//! group (up to `group_bytes_max`) — whatever arrived while the previous group was written
//! and while the pipeline had no room (see below) — and writes it with one gathered write.
//! Only when the committer was idle (the group's first frame woke it) does it wait the
//! optional `commit_delay` to let more arrive.
//!
//! # Per group
//! 1. Walk published frames from `next_pos` (see the ownership protocol in
//!    [`crate::ring`]); a batch's frames are always taken together.
//! 2. If the group does not fit in the active segment: wait for the pipeline to empty,
//!    sync the active segment if it has unsynced bytes, then roll to the prepared next
//!    segment (grown first if the group is larger than it), whose header is written with
//!    the group, durably. A new log's first segment, while it holds no record, grows in
//!    place instead. The next segment's size follows the write rate and is asked for at
//!    the roll (heavy writes) or at half full (see `crate::segment`). ENOSPC while
//!    preparing fails this group only (nothing was written, so nothing is ambiguous); the
//!    log stays usable.
//! 3. Assign sequence numbers in ring order, patch them into the frames, seal checksums.
//! 4. One gathered write of the group, led by its MARK frame (the durable watermark as of
//!    now: see `format`; it lets recovery tell a torn group from damaged durable data),
//!    then the ring's runs (two iovecs if it wraps around the ring; sync markers and pads
//!    are skipped). After a roll, the previous segment gets its SEAL (durably) once the
//!    new segment is in place, so that a missing last segment is an error at recovery
//!    rather than silently lost records.
//! 5. Hand the group to the commit pipeline (`pipeline.rs`), asking for an fdatasync if
//!    any record asked for one, a sync marker is present, or too many unsynced bytes
//!    accumulated. A sync thread runs it while the committer goes on with the next group;
//!    the group completes, in order, once an fdatasync issued after its write completed:
//!    the durable watermark is published (readers and tails see records only from there
//!    on), the apply hook runs, completions are delivered (one call per producer per
//!    group), and the ring space is zeroed and released, waking producers waiting for it
//!    (blocked ones through a condvar; parked ones, which returned to their caller, with
//!    one `space_available` call each).
//! 6. On a write or fsync error: latch the failure — every later append fails until the
//!    log is reopened; there is no retry (after a failed fsync the page cache may have
//!    dropped the dirty pages, so a retry could report success for lost data).
//!
//! # Idle
//! With nothing to do and unsynced bytes (from `sync: false` appends) outstanding, the
//! committer asks the pipeline for an fdatasync, so that such records become durable and
//! visible soon. Then it parks; producers unpark it after publishing (a Dekker-style
//! handshake on `committer_sleeping` with SeqCst fences, plus a timeout as a safety net).
//!
//! # Files
//!
//! This file is the thread: its loop and its panic path. The stages it runs: `group.rs`
//! forms a group from the ring (step 1); `roll.rs` moves to the next segment (step 2);
//! `write.rs` numbers and writes the group and hands it over (steps 3 to 5);
//! `pipeline.rs` syncs and completes groups in order, and `complete.rs` delivers a group's
//! completions or fails it and releases its ring space (steps 5 and 6); `idle.rs` parks,
//! asks for syncs between groups and leaves the close MARK. `state.rs` is what the thread
//! carries from one group to the next; `frame.rs` a collected frame.

mod complete;
mod frame;
mod group;
mod idle;
mod pipeline;
mod roll;
mod state;
mod write;

use pipeline::Pipeline;
pub(crate) use state::CommitterState;

use std::sync::Arc;
use std::time::Duration;

use crate::error::WalError;
use crate::shared::Shared;
use crate::sync::Ordering;
use group::{collect, collect_more};
use idle::{park, sync_active, write_close_mark};
use pipeline::InFlight;
use write::commit_group;

/// The committer thread's body.
pub(crate) fn run(shared: Arc<Shared>, mut st: CommitterState) {
    let s = &shared;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| main_loop(s, &mut st)));
    if result.is_err() {
        // A bug, not an operating error: fail everything so no caller waits forever.
        let e = s.latch_failure(&WalError::io(
            "committer",
            std::io::Error::other("internal error: the committer thread panicked"),
        ));
        drain_failing(s, &mut st, &WalError::Failed(e));
    }
    Pipeline::wait_idle(s, &st.pipeline);
    st.pipeline.stop();
    *s.committer_thread.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

fn main_loop(s: &Arc<Shared>, st: &mut CommitterState) {
    loop {
        st.pipeline.wait_for_room();
        collect(s, st);
        let woke_idle = std::mem::replace(&mut st.idle, false);
        if st.frames.is_empty() {
            if st.unsynced_bytes > 0 {
                sync_active(s, st);
                continue;
            }
            if s.closing.load(Ordering::SeqCst)
                && s.in_flight.load(Ordering::SeqCst) == 0
                && !s.ring.has_reserved_beyond(st.next_pos)
            {
                Pipeline::wait_idle(s, &st.pipeline);
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

/// After a panic: fail everything that is or becomes published until close, starting
/// with the group that was in progress (its frames are collected but not handed over).
fn drain_failing(s: &Arc<Shared>, st: &mut CommitterState, e: &WalError) {
    loop {
        if st.frames.is_empty() {
            collect_more(s, st);
        }
        if let Some(last) = st.frames.last().copied() {
            let end = last.pos + last.total as u64;
            st.next_pos = end;
            let frames = std::mem::take(&mut st.frames);
            Pipeline::push(
                s,
                &st.pipeline,
                InFlight::failed(frames, end, e.clone()),
                None,
            );
            continue;
        }
        if s.closing.load(Ordering::SeqCst)
            && s.in_flight.load(Ordering::SeqCst) == 0
            && !s.ring.has_reserved_beyond(st.next_pos)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
