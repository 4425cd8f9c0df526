//! The committer between groups: parking until a producer publishes, the fdatasync of
//! outstanding unsynced bytes, and the MARK left at a clean close.

use std::time::Duration;

use crate::error::WalError;
use crate::format::{self, Kind};
use crate::limits::COMMITTER_PARK_MS;
use crate::shared::Shared;
use crate::sync::Ordering;

use super::state::CommitterState;

pub(super) fn park(s: &Shared, st: &CommitterState) {
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
    let mark = format::encode_meta(Kind::Mark, st.written_seq);
    if st.segment.file.write_at(st.offset, &[&mark], true).is_ok() {
        st.offset += mark.len() as u64;
        s.counters.add(&s.counters.fsyncs, 1);
    }
}

pub(super) fn sync_active(s: &Shared, st: &mut CommitterState) {
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
