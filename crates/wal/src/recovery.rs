//! Recovery at open: find the segments, validate their headers and continuity, scan the
//! last segment, cut a torn tail, and leave an active segment to append to.
//!
//! What is checked where:
//! * Every segment's header (magic, version, checksum, number, first_seq increasing) and
//!   that segment numbers have no gaps: a missing segment is corruption naming the file.
//! * The last segment is scanned frame by frame (checksum, sequence continuity, batch
//!   framing). Where valid frames end (zeros, damage, or an unterminated batch), the rest
//!   of the segment is searched for any valid frame. None: the tail was torn by a crash
//!   (those bytes were never acknowledged — an acknowledged write was fsynced and so is
//!   followed only by what came later) and is zeroed. Some: the damage is in the middle
//!   of the log, which strict mode reports as corruption with the file and offset;
//!   tolerant mode cuts there.
//! * Older segments were sealed (synced) before the next one was created; their frames
//!   are verified when read, and damage found then is reported with file and offset.
//! * `N.wal.prep` files were never renamed into use: their records were never
//!   acknowledged. They are deleted.

use crate::error::WalError;
use crate::format::{
    self, decode_frame, parse_segment_file_name, parse_word0, FrameError, HeaderError, Kind,
    SegmentHeader, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::limits::{IO_CHUNK_BYTES, SEQ_MAX};
use crate::scan::Window;
use crate::segment::{zero_fill, Segment};
use crate::wal::{RecoveryMode, RecoveryReport};
use std::path::Path;
use std::sync::Arc;
use uringdb_uring::{OpenMode, Vfs};

pub(crate) struct Recovered {
    pub segments: Vec<Arc<Segment>>,
    pub write_offset: u64,
    pub last_seq: u64,
    pub report: RecoveryReport,
}

fn corruption(path: &Path, offset: u64, reason: impl Into<String>) -> WalError {
    WalError::Corruption {
        file: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

pub(crate) fn recover(
    vfs: &dyn Vfs,
    dir: &Path,
    mode: RecoveryMode,
    segment_bytes: u64,
) -> Result<Recovered, WalError> {
    let io = |what: String| move |e| WalError::io(what, e);
    let mut report = RecoveryReport::default();
    let names = vfs
        .list_dir(dir)
        .map_err(io(format!("listing {}", dir.display())))?;
    let mut numbers = Vec::new();
    for name in &names {
        if name.ends_with(".wal.prep") {
            let p = dir.join(name);
            vfs.remove_file(&p)
                .map_err(io(format!("removing {}", p.display())))?;
            report.removed_prepared += 1;
        } else if let Some(n) = parse_segment_file_name(name) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    if numbers.is_empty() {
        // A new log: segment 1, header written and synced before it is renamed into place.
        let prep = dir.join(format::prepared_file_name(1));
        let path = dir.join(format::segment_file_name(1));
        let file = zero_fill(vfs, &prep, segment_bytes)?;
        let header = SegmentHeader {
            number: 1,
            first_seq: 1,
        }
        .encode();
        file.write_at(0, &[&header], true)
            .map_err(io(format!("writing {}", prep.display())))?;
        vfs.rename(&prep, &path)
            .map_err(io(format!("renaming {}", prep.display())))?;
        vfs.sync_dir(dir)
            .map_err(io(format!("syncing {}", dir.display())))?;
        report.segments = 1;
        return Ok(Recovered {
            segments: vec![Arc::new(Segment::new(1, 1, path, file))],
            write_offset: SEGMENT_HEADER_BYTES as u64,
            last_seq: 0,
            report,
        });
    }
    for w in numbers.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(corruption(
                &dir.join(format::segment_file_name(w[0] + 1)),
                0,
                format!(
                    "segment file is missing (found {} and {})",
                    format::segment_file_name(w[0]),
                    format::segment_file_name(w[1])
                ),
            ));
        }
    }
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(numbers.len());
    for &n in &numbers {
        let path = dir.join(format::segment_file_name(n));
        let file = vfs
            .open(&path, OpenMode::ReadWrite)
            .map_err(io(format!("opening {}", path.display())))?;
        let mut h = [0u8; SEGMENT_HEADER_BYTES];
        let got = file
            .read_at(0, &mut h)
            .map_err(io(format!("reading {}", path.display())))?;
        let header = SegmentHeader::decode(&h[..got]).map_err(|e| {
            corruption(
                &path,
                if matches!(e, HeaderError::UnknownFlags(_)) {
                    12
                } else {
                    0
                },
                match e {
                    HeaderError::UnknownFlags(f) => format!("unknown segment header flags {f:#x}"),
                    HeaderError::Zero => "segment header is all zeros".to_string(),
                    HeaderError::BadMagic => "bad magic in segment header".to_string(),
                    HeaderError::BadVersion(v) => format!("unsupported segment version {v}"),
                    HeaderError::BadCrc => "segment header checksum mismatch".to_string(),
                    HeaderError::Truncated => "file shorter than a segment header".to_string(),
                },
            )
        })?;
        if header.number != n {
            return Err(corruption(
                &path,
                16,
                format!("header names segment {} but the file is {n}", header.number),
            ));
        }
        // Sequence numbers start at 1 (an empty log's last is 0): a first record numbered
        // 0 is damage, and "the record before the first" would underflow in scan_last.
        if header.first_seq == 0 {
            return Err(corruption(
                &path,
                24,
                "first sequence number is 0 (sequence numbers start at 1)",
            ));
        }
        // Bounded so that counting on from it (scan_last, readers, the committer) cannot
        // overflow.
        if header.first_seq > SEQ_MAX {
            return Err(corruption(
                &path,
                24,
                format!(
                    "first sequence number {} is beyond the largest, {SEQ_MAX}",
                    header.first_seq
                ),
            ));
        }
        if let Some(prev) = segments.last() {
            if header.first_seq <= prev.first_seq {
                return Err(corruption(
                    &path,
                    24,
                    format!(
                        "first sequence number {} does not follow segment {} (which starts at {})",
                        header.first_seq, prev.number, prev.first_seq
                    ),
                ));
            }
        }
        segments.push(Arc::new(Segment::new(n, header.first_seq, path, file)));
    }
    report.segments = segments.len() as u64;
    let last = segments.last().expect("non-empty").clone();
    let (write_offset, last_seq, truncated) = scan_last(vfs, &last, mode)?;
    report.truncated_bytes = truncated;
    report.last_seq = last_seq;
    Ok(Recovered {
        segments,
        write_offset,
        last_seq,
        report,
    })
}

/// Scans the active segment. Returns (write offset, last sequence number, bytes cut).
fn scan_last(
    vfs: &dyn Vfs,
    seg: &Segment,
    mode: RecoveryMode,
) -> Result<(u64, u64, u64), WalError> {
    let _ = vfs;
    let path = &seg.path;
    let io = |e| WalError::io(format!("reading {}", path.display()), e);
    let len = seg.file.len().map_err(io)?;
    let mut win = Window::new(seg.file.clone());
    let mut off = SEGMENT_HEADER_BYTES as u64;
    let mut expected = seg.first_seq;
    let mut batch: Option<(u64, u64)> = None; // (offset, seq) of an open batch's FIRST
    let mut damage: Option<String> = None;
    while off + FRAME_HEADER_BYTES as u64 <= len {
        let head = win.get(off, FRAME_HEADER_BYTES).map_err(io)?;
        let w = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let need = parse_word0(w).map_or(FRAME_HEADER_BYTES, |w| format::frame_bytes(w.len));
        let data = win.get(off, need).map_err(io)?;
        match decode_frame(data) {
            Ok(f) if f.seq == expected => {
                let ok = matches!(
                    (f.kind, batch.is_some()),
                    (Kind::Full | Kind::First, false) | (Kind::Middle | Kind::Last, true)
                );
                if !ok {
                    damage = Some(format!("unexpected {:?} frame in batch framing", f.kind));
                    break;
                }
                match f.kind {
                    Kind::First => batch = Some((off, f.seq)),
                    Kind::Last => batch = None,
                    _ => {}
                }
                seg.note_index(f.seq, off);
                expected += 1;
                off += f.total as u64;
            }
            Ok(f) => {
                damage = Some(format!(
                    "sequence number {} where {expected} was expected",
                    f.seq
                ));
                break;
            }
            Err(FrameError::Zero) => break,
            Err(e) => {
                damage = Some(format!("invalid frame ({e:?})"));
                break;
            }
        }
    }
    let stop = off;
    let (valid_end, last_seq) = match batch {
        Some((b_off, b_seq)) => (b_off, b_seq - 1),
        None => (off, expected - 1),
    };
    // Anything valid beyond where the log stopped means the damage is mid-log.
    if let Some(later) = find_valid_frame(&mut win, stop + 8, len, expected).map_err(io)? {
        if mode == RecoveryMode::Strict {
            let reason = damage.unwrap_or_else(|| "zeroed frame".to_string());
            return Err(corruption(
                path,
                stop,
                format!("{reason}, followed by a valid record at offset {later}: the damage is in the middle of the log (open with recovery: 'tolerant' to cut the log here)"),
            ));
        }
    }
    let cut = zero_tail(seg, valid_end, len)?;
    Ok((valid_end, last_seq, cut))
}

/// Offset of any well-formed frame with a sequence number >= `min_seq` in `[from, len)`.
///
/// Only a word whose sequence number field the gap could hold (at most one record per
/// header-sized step after `min_seq`) is read and checksummed as a frame: otherwise every
/// word of a torn payload that happens to parse as a header would cost as many bytes as
/// its length field claims, which made this search quadratic in the segment size.
fn find_valid_frame(
    win: &mut Window,
    from: u64,
    len: u64,
    min_seq: u64,
) -> std::io::Result<Option<u64>> {
    let seq_max = min_seq.saturating_add(len.saturating_sub(from) / FRAME_HEADER_BYTES as u64 + 1);
    let mut off = from & !7;
    while off + FRAME_HEADER_BYTES as u64 <= len {
        let chunk_end = (off + IO_CHUNK_BYTES as u64).min(len);
        let chunk = win.get(off, (chunk_end - off) as usize)?.to_vec();
        let mut i = 0usize;
        while i + FRAME_HEADER_BYTES <= chunk.len() {
            let w = u32::from_le_bytes([chunk[i], chunk[i + 1], chunk[i + 2], chunk[i + 3]]);
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&chunk[i + 8..i + 16]);
            let seq = u64::from_le_bytes(seq);
            if let Some(w0) = parse_word0(w).filter(|_| (min_seq..=seq_max).contains(&seq)) {
                if w0.kind.is_on_disk() && off + (i + format::frame_bytes(w0.len)) as u64 <= len {
                    let at = off + i as u64;
                    let data = win.get(at, format::frame_bytes(w0.len))?;
                    if let Ok(f) = decode_frame(data) {
                        if f.seq >= min_seq {
                            return Ok(Some(at));
                        }
                    }
                }
            }
            i += 8;
        }
        off = chunk_end;
    }
    Ok(None)
}

/// Zeroes `[from, len)` where it is not already zero, durably. Returns the number of bytes
/// between `from` and the end of the last non-zero chunk (what was cut).
fn zero_tail(seg: &Segment, from: u64, len: u64) -> Result<u64, WalError> {
    let path = &seg.path;
    let io = |e| WalError::io(format!("cutting the torn tail of {}", path.display()), e);
    let mut buf = vec![0u8; IO_CHUNK_BYTES];
    let zeros = vec![0u8; IO_CHUNK_BYTES];
    let mut off = from;
    let mut cut_end = from;
    let mut wrote = false;
    while off < len {
        let n = ((len - off) as usize).min(IO_CHUNK_BYTES);
        let got = seg.file.read_at(off, &mut buf[..n]).map_err(io)?;
        if let Some(last_nz) = buf[..got].iter().rposition(|&b| b != 0) {
            seg.file
                .write_at(off, &[&zeros[..got]], false)
                .map_err(io)?;
            wrote = true;
            cut_end = off + last_nz as u64 + 1;
        }
        if got < n {
            break;
        }
        off += n as u64;
    }
    if wrote {
        seg.file.sync_data().map_err(io)?;
    }
    // The segment is appended to next: keep the scan's and the zeroing's large page-cache
    // folios from turning each small durable write into a 1 MiB writeback (see zero_fill).
    let _ = seg.file.drop_cache();
    Ok(cut_end - from)
}
