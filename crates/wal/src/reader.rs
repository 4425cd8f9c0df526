//! Reading committed records by sequence number.
//!
//! A cursor remembers its segment and offset, so a sequential read costs one seek per
//! call at most. Readers never see past the durable watermark: a frame is read only if
//! its sequence number is at or below the watermark loaded at the start of the call, and
//! such a frame was completely written (and fsynced) before that watermark was published.
//! Every frame's checksum and sequence number is verified; damage is reported with the
//! file and offset.

use crate::error::WalError;
use crate::format::{decode_frame, parse_word0, FrameError, FRAME_HEADER_BYTES};
use crate::scan::Window;
use crate::segment::Segment;
use crate::sync::Ordering;
use crate::wal::Shared;
use std::sync::Arc;

/// A position in the log for sequential reads.
pub struct ReadCursor {
    next: u64,
    at: Option<(Arc<Segment>, Window, u64)>, // segment, its window, offset of frame `next`
}

impl std::fmt::Debug for ReadCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCursor")
            .field("next", &self.next)
            .finish()
    }
}

impl ReadCursor {
    pub(crate) fn new(shared: &Shared, from: u64) -> Result<ReadCursor, WalError> {
        let next = if from == 0 {
            shared.first_seq().max(1)
        } else {
            from
        };
        Ok(ReadCursor { next, at: None })
    }

    /// The sequence number the next read starts at.
    pub fn next_seq(&self) -> u64 {
        self.next
    }
}

/// Records read in one call: payloads back to back in `data`.
#[derive(Debug, Default)]
pub struct ReadBatch {
    /// All payloads, concatenated.
    pub data: Vec<u8>,
    /// Per record: (sequence number, start in `data`, length).
    pub records: Vec<(u64, usize, usize)>,
}

fn corruption(seg: &Segment, offset: u64, reason: String) -> WalError {
    WalError::Corruption {
        file: seg.path.clone(),
        offset,
        reason,
    }
}

fn segment_for(shared: &Shared, seq: u64) -> Result<Arc<Segment>, WalError> {
    let segs = shared.segments.read().unwrap_or_else(|e| e.into_inner());
    let first = segs.first().map_or(1, |s| s.first_seq);
    if seq < first {
        return Err(WalError::Truncated {
            requested: seq,
            first,
        });
    }
    let i = segs.partition_point(|s| s.first_seq <= seq);
    Ok(segs[i.saturating_sub(1)].clone())
}

fn next_segment(shared: &Shared, after: &Segment) -> Option<Arc<Segment>> {
    let segs = shared.segments.read().unwrap_or_else(|e| e.into_inner());
    segs.iter().find(|s| s.number == after.number + 1).cloned()
}

pub(crate) fn read(
    shared: &Shared,
    cursor: &mut ReadCursor,
    end: u64,
    max_records: usize,
    max_bytes: usize,
) -> Result<ReadBatch, WalError> {
    if shared.closing.load(Ordering::SeqCst) {
        return Err(WalError::Closed);
    }
    let limit = end.min(shared.durable_seq.load(Ordering::SeqCst) + 1);
    let mut batch = ReadBatch::default();
    if cursor.next >= limit || max_records == 0 {
        return Ok(batch);
    }
    if cursor.at.is_none() {
        let seg = segment_for(shared, cursor.next)?;
        let (mut seq, mut off) = seg.seek_hint(cursor.next);
        let mut win = Window::new(seg.file.clone());
        // Skip forward to the frame of `cursor.next`, noting index points on the way.
        while seq < cursor.next {
            let f = frame_at(&seg, &mut win, off, seq)?;
            seg.note_index(seq, off);
            off += f as u64;
            seq += 1;
        }
        cursor.at = Some((seg, win, off));
    }
    match read_into(shared, cursor, limit, max_records, max_bytes, &mut batch) {
        // Records read before the damage are returned; the cursor stays at the damage, so
        // the next call reports it.
        Err(_) if !batch.records.is_empty() => Ok(batch),
        Err(e) => Err(e),
        Ok(()) => Ok(batch),
    }
}

fn read_into(
    shared: &Shared,
    cursor: &mut ReadCursor,
    limit: u64,
    max_records: usize,
    max_bytes: usize,
    batch: &mut ReadBatch,
) -> Result<(), WalError> {
    let (seg, win, off) = cursor.at.as_mut().expect("positioned above");
    while cursor.next < limit && batch.records.len() < max_records && batch.data.len() < max_bytes {
        let head = read_exact(seg, win, *off, FRAME_HEADER_BYTES)?;
        if head.iter().all(|&b| b == 0) || head.len() < FRAME_HEADER_BYTES {
            // Zeros: the end of this segment only if the next one starts with the record we
            // expect. Otherwise the record is missing here, or the next header is wrong.
            let missing_here = corruption(
                seg,
                *off,
                format!(
                    "record {} is missing (zeroed or never written)",
                    cursor.next
                ),
            );
            let Some(next) = next_segment(shared, seg) else {
                return Err(missing_here);
            };
            if next.first_seq > cursor.next {
                return Err(missing_here);
            }
            if next.first_seq < cursor.next {
                return Err(corruption(
                    &next,
                    24,
                    format!(
                        "segment starts at {} but record {} was expected",
                        next.first_seq, cursor.next
                    ),
                ));
            }
            *win = Window::new(next.file.clone());
            *seg = next;
            *off = crate::format::SEGMENT_HEADER_BYTES as u64;
            continue;
        }
        let w = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let need = parse_word0(w).map_or(FRAME_HEADER_BYTES, |w| crate::format::frame_bytes(w.len));
        let data = read_exact(seg, win, *off, need)?;
        let f = match decode_frame(&data) {
            Ok(f) => f,
            Err(e) => return Err(corruption(seg, *off, format!("invalid frame ({e:?})"))),
        };
        if f.seq != cursor.next {
            return Err(corruption(
                seg,
                *off,
                format!(
                    "sequence number {} where {} was expected",
                    f.seq, cursor.next
                ),
            ));
        }
        let start = batch.data.len();
        batch.data.extend_from_slice(f.payload);
        batch.records.push((f.seq, start, f.payload.len()));
        *off += f.total as u64;
        cursor.next += 1;
    }
    Ok(())
}

/// Size of the valid frame with sequence number `seq` at `off`.
fn frame_at(seg: &Segment, win: &mut Window, off: u64, seq: u64) -> Result<usize, WalError> {
    let head = read_exact(seg, win, off, FRAME_HEADER_BYTES)?;
    let w = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let need = parse_word0(w).map_or(FRAME_HEADER_BYTES, |w| crate::format::frame_bytes(w.len));
    let data = read_exact(seg, win, off, need)?;
    match decode_frame(&data) {
        Ok(f) if f.seq == seq => Ok(f.total),
        Ok(f) => Err(corruption(
            seg,
            off,
            format!("sequence number {} where {seq} was expected", f.seq),
        )),
        Err(FrameError::Zero) => Err(corruption(seg, off, format!("record {seq} is missing"))),
        Err(e) => Err(corruption(seg, off, format!("invalid frame ({e:?})"))),
    }
}

/// Reads `n` bytes at `off`, re-reading from the file once if the cached chunk is stale
/// (it may have been read before the committer wrote these bytes).
fn read_exact(seg: &Segment, win: &mut Window, off: u64, n: usize) -> Result<Vec<u8>, WalError> {
    let io = |e| WalError::io(format!("reading {}", seg.path.display()), e);
    let first = win.get(off, n).map_err(io)?;
    let stale = first.len() < n
        || first[..FRAME_HEADER_BYTES.min(first.len())]
            .iter()
            .all(|&b| b == 0);
    if !stale {
        return Ok(first.to_vec());
    }
    win.invalidate();
    Ok(win.get(off, n).map_err(io)?.to_vec())
}
