//! Rolling to the next segment (step 2): sync the active one, take the prepared one, and
//! once the group's write is durable in it, rename it into place and seal its predecessor.
//! Also when to ask the preparer for the next segment, and at what size (the policy is
//! `crate::segment::next_segment_bytes`).

use std::sync::Arc;

use crate::error::WalError;
use crate::format::{self, Kind, SegmentHeader};
use crate::segment::{extend, fills_fast, next_segment_bytes, Segment};
use crate::shared::Shared;

use super::state::CommitterState;

/// The size of the segment after the active one: the size it was asked for at, or (not
/// asked for yet) the size the active segment's fill rate calls for, asking for it now.
pub(super) fn ask_next(s: &Shared, st: &mut CommitterState) -> u64 {
    if let Some(bytes) = st.next_bytes {
        return bytes;
    }
    let bytes = next_segment_bytes(
        st.segment_bytes,
        st.offset.saturating_sub(st.activated_offset),
        s.segment_now_ns().saturating_sub(st.activated_ns),
        s.limits.first_segment_bytes,
        s.limits.segment_bytes,
    );
    st.next_bytes = Some(bytes);
    s.preparer.request(st.segment.number + 1, bytes);
    bytes
}

/// After a write: once the active segment is half full, asks for the next one (if the
/// start of the segment did not already).
pub(super) fn ask_next_if_half_full(s: &Shared, st: &mut CommitterState) {
    if st.next_bytes.is_none()
        && 2 * st.offset.saturating_sub(st.activated_offset)
            >= st.segment_bytes.saturating_sub(st.activated_offset)
    {
        ask_next(s, st);
    }
}

/// The smallest size from `len` doubling (capped at the largest segment, but at least
/// `need`, a multiple of 8) that holds `need` bytes.
fn grown_size(s: &Shared, len: u64, need: u64) -> u64 {
    let mut grown = len.max(8);
    while grown < need {
        grown = grown.saturating_mul(2);
    }
    grown
        .min(s.limits.segment_bytes)
        .max(need.next_multiple_of(8))
}

/// Grows the active segment, which holds no record yet, in place (zero-filled and synced
/// like a prepared one) so that a group of `disk_bytes` fits after its header. Only its
/// zeros change: a crash part-way leaves a longer run of zeros, which recovery reads as
/// the end of the log.
pub(super) fn grow_empty_active(
    s: &Shared,
    st: &mut CommitterState,
    disk_bytes: u64,
) -> Result<(), WalError> {
    let need = st.offset + format::SEGMENT_RESERVED_BYTES as u64 + disk_bytes;
    let grown = grown_size(s, st.segment_bytes, need);
    extend(&*st.segment.file, &st.segment.path, st.segment_bytes, grown)?;
    st.segment_bytes = grown;
    Ok(())
}

/// Syncs the active segment if needed and takes the prepared next one, grown if the
/// group's `disk_bytes` do not fit in it.
pub(super) fn prepare_roll(
    s: &Shared,
    st: &mut CommitterState,
    disk_bytes: u64,
) -> Result<(Arc<Segment>, [u8; format::SEGMENT_HEADER_BYTES], u64), WalError> {
    let number = st.segment.number + 1;
    let wanted = ask_next(s, st);
    let prepared = s.preparer.take(number, wanted)?;
    let (file, mut len) = (prepared.file, prepared.len);
    let need = (format::SEGMENT_HEADER_BYTES + format::SEGMENT_RESERVED_BYTES) as u64 + disk_bytes;
    if need > len {
        let grown = grown_size(s, len, need);
        let prep = s.dir.join(format::prepared_file_name(number));
        extend(&*file, &prep, len, grown)?;
        len = grown;
    }
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
    let salt = format::segment_salt(format::SEGMENT_VERSION, number);
    let seg = Arc::new(Segment::new(number, first_seq, path, file, salt));
    let flags = if prepared.recycled_from.is_some() {
        s.counters.add(&s.counters.recycled_segments, 1);
        format::FLAG_RECYCLED
    } else {
        s.counters.add(&s.counters.fresh_segments, 1);
        0
    };
    let header = SegmentHeader { number, first_seq }.encode_as(format::SEGMENT_VERSION, flags);
    Ok((seg, header, len))
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
    seg_bytes: u64,
) -> Result<(), WalError> {
    let prep = s.dir.join(format::prepared_file_name(seg.number));
    s.vfs
        .rename(&prep, &seg.path)
        .map_err(|e| WalError::io(format!("renaming {} into place", prep.display()), e))?;
    s.vfs
        .sync_dir(&s.dir)
        .map_err(|e| WalError::io(format!("syncing directory {}", s.dir.display()), e))?;
    if st.offset + format::META_FRAME_BYTES as u64 <= st.segment_bytes {
        let seal = format::encode_meta(Kind::Seal, seg.first_seq, st.segment.salt);
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
    // The new segment's fill rate is measured from here. If the old one's rate would fill
    // the new one fast, writes are heavy: ask for the next one now, twice as large (four
    // times if the old rate would fill even that fast).
    let now = s.segment_now_ns();
    let filled = st.offset.saturating_sub(st.activated_offset);
    let elapsed = now.saturating_sub(st.activated_ns);
    let heavy = fills_fast(seg_bytes, filled, elapsed);
    let factor = if fills_fast(seg_bytes.saturating_mul(4), filled, elapsed) {
        4
    } else {
        2
    };
    st.segment_bytes = seg_bytes;
    st.activated_ns = now;
    st.activated_offset = format::SEGMENT_HEADER_BYTES as u64;
    st.next_bytes = None;
    if heavy {
        let bytes = seg_bytes
            .saturating_mul(factor)
            .clamp(s.limits.first_segment_bytes, s.limits.segment_bytes)
            & !7;
        st.next_bytes = Some(bytes);
        s.preparer.request(seg.number + 1, bytes);
    }
    Ok(())
}
