//! Rolling to the next segment (step 2): sync the active one, take the prepared one, and
//! once the group's write is durable in it, rename it into place and seal its predecessor.

use std::sync::Arc;

use crate::error::WalError;
use crate::format::{self, Kind, SegmentHeader};
use crate::segment::Segment;
use crate::shared::Shared;

use super::state::CommitterState;

/// Syncs the active segment if needed and takes the prepared next one.
pub(super) fn prepare_roll(
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
pub(super) fn finish_roll(
    s: &Shared,
    st: &mut CommitterState,
    seg: &Arc<Segment>,
) -> Result<(), WalError> {
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
