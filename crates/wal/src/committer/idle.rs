//! The committer between groups: parking until a producer publishes, the fdatasync of
//! outstanding unsynced bytes, and the MARK left at a clean close.

use std::time::Duration;

use std::sync::Arc;

use crate::format::{self, Kind};
use crate::limits::COMMITTER_PARK_MS;
use crate::shared::Shared;
use crate::sync::Ordering;

use super::pipeline::Pipeline;
use super::state::CommitterState;

pub(super) fn park(s: &Shared, st: &CommitterState) {
    s.committer_sleeping.store(true, Ordering::SeqCst);
    crate::sync::fence(Ordering::SeqCst);
    if s.ring.peek(st.next_pos).is_some() || s.closing.load(Ordering::SeqCst) {
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

/// At a clean close, after everything is durable: a MARK claiming every record written, so
/// that damage anywhere in the log (also in its last group) is told from a torn tail at the
/// next open. Skipped when nothing was written since open, after a failure, or when the
/// segment has no room left before its SEAL reserve; best effort (a failure leaves the log
/// as a crash would, which recovery handles).
pub(super) fn write_close_mark(s: &Shared, st: &mut CommitterState) {
    let seal_reserve = format::META_FRAME_BYTES as u64;
    if st.groups_written == 0
        || s.failure().is_some()
        || st.unsynced_bytes > 0
        || st.offset + format::META_FRAME_BYTES as u64 + seal_reserve > st.segment_bytes
    {
        return;
    }
    let mark = format::encode_meta(Kind::Mark, st.written_seq, st.segment.salt);
    if st.segment.file.write_at(st.offset, &[&mark], true).is_ok() {
        st.offset += mark.len() as u64;
        s.counters.add(&s.counters.fsyncs, 1);
    }
}

/// Asks the pipeline for an fdatasync of the unsynced bytes (from `sync: false` appends)
/// written so far, so that such records become durable and visible soon.
pub(super) fn sync_active(s: &Arc<Shared>, st: &mut CommitterState) {
    st.unsynced_bytes = 0;
    if s.failure().is_some() {
        return;
    }
    Pipeline::request_sync(s, &st.pipeline, &st.segment, st.written_seq);
}
