//! Reading committed records by sequence number.
//!
//! A cursor remembers its segment and offset, so a sequential read costs one seek per
//! call at most. Readers never see past the durable watermark: a frame is read only if
//! its sequence number is at or below the watermark loaded at the start of the call, and
//! such a frame was completely written (and fsynced) before that watermark was published.
//! Every frame's checksum and sequence number is verified; damage is reported with the
//! file and offset.

use crate::error::WalError;
use crate::format::{decode_frame_salted, parse_word0, FrameError, Kind, FRAME_HEADER_BYTES};
use crate::scan::Window;
use crate::segment::Segment;
use crate::shared::Shared;
use crate::sync::Ordering;
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
            let f = frame_at(&seg, &mut win, off, seq).map_err(|e| overtaken(shared, seq, e))?;
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
        // The cached chunk may predate the write of this frame (it was read while a later
        // group was still being written): anything that does not decode as the expected
        // record is read again from the file before it is believed.
        let mut data = load_frame(seg, win, *off)?;
        if !is_expected(&data, cursor.next, seg.salt) {
            win.invalidate();
            data = load_frame(seg, win, *off)?;
        }
        if data.len() < FRAME_HEADER_BYTES || data[..FRAME_HEADER_BYTES].iter().all(|&b| b == 0) {
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
            // A reader overtaken by truncateBefore finds its next segment gone.
            let first = shared.first_seq();
            if first > cursor.next {
                return Err(WalError::Truncated {
                    requested: cursor.next,
                    first,
                });
            }
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
        let f = match decode_frame_salted(&data, seg.salt) {
            Ok(f) => f,
            Err(e) => {
                // Past the last record of a segment whose SEAL was never written, a
                // recycled file holds old bytes, not zeros: the end of this segment if the
                // next one starts with the record we expect.
                if let Some(next) = next_segment(shared, seg).filter(|n| n.first_seq == cursor.next)
                {
                    *win = Window::new(next.file.clone());
                    *seg = next;
                    *off = crate::format::SEGMENT_HEADER_BYTES as u64;
                    continue;
                }
                let err = corruption(seg, *off, format!("invalid frame ({e:?})"));
                return Err(overtaken(shared, cursor.next, err));
            }
        };
        if f.kind == Kind::Seal && f.seq == cursor.next {
            // The segment ends here (a recycled one has old bytes after its SEAL).
            if let Some(next) = next_segment(shared, seg).filter(|n| n.first_seq == cursor.next) {
                *win = Window::new(next.file.clone());
                *seg = next;
                *off = crate::format::SEGMENT_HEADER_BYTES as u64;
                continue;
            }
        }
        if f.kind.is_meta() {
            // A group's MARK, or the SEAL before the zeros at the end of a segment.
            *off += f.total as u64;
            continue;
        }
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

/// Bytes from `off` to the end of the valid record frame with sequence number `seq` (past
/// any meta frames before it).
fn frame_at(seg: &Segment, win: &mut Window, off: u64, seq: u64) -> Result<usize, WalError> {
    let mut skipped = 0usize;
    loop {
        let at = off + skipped as u64;
        let mut data = load_frame(seg, win, at)?;
        if !is_expected(&data, seq, seg.salt) {
            win.invalidate();
            data = load_frame(seg, win, at)?;
        }
        match decode_frame_salted(&data, seg.salt) {
            Ok(f) if f.kind.is_meta() => skipped += f.total,
            other => return record_total(seg, at, seq, other).map(|t| skipped + t),
        }
    }
}

fn record_total(
    seg: &Segment,
    off: u64,
    seq: u64,
    decoded: Result<crate::format::Frame<'_>, FrameError>,
) -> Result<usize, WalError> {
    match decoded {
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

/// The bytes of the frame at `off` (header only if the header does not parse).
fn load_frame(seg: &Segment, win: &mut Window, off: u64) -> Result<Vec<u8>, WalError> {
    let io = |e| WalError::io(format!("reading {}", seg.path.display()), e);
    let head = win.get(off, FRAME_HEADER_BYTES).map_err(io)?;
    if head.len() < FRAME_HEADER_BYTES {
        return Ok(head.to_vec());
    }
    let w = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let need = parse_word0(w).map_or(FRAME_HEADER_BYTES, |w| crate::format::frame_bytes(w.len));
    Ok(win.get(off, need).map_err(io)?.to_vec())
}

/// Whether `data` decodes as record `seq` or as a meta frame (which precedes a record).
fn is_expected(data: &[u8], seq: u64, salt: u32) -> bool {
    matches!(decode_frame_salted(data, salt), Ok(f) if f.seq == seq || f.kind.is_meta())
}

/// `err`, met reading record `seq`, or [`WalError::Truncated`] if truncation has passed
/// `seq` meanwhile: the segment read was freed, and a recycled one may already hold a new
/// segment's bytes (which never validate in the old one: their salt differs).
fn overtaken(shared: &Shared, seq: u64, err: WalError) -> WalError {
    let first = shared.first_seq();
    if first > seq {
        WalError::Truncated {
            requested: seq,
            first,
        }
    } else {
        err
    }
}
