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
//!   acknowledged. They are deleted (never put back in the pool: one may hold frames
//!   salted with N, a number the next roll uses again).
//! * `M.wal.free` files are the recycling pool (see `format`, "Recycled segments"). One is
//!   kept only if M is below every live segment's number (so that every number a new
//!   segment gets is larger than any its frames carry) and the pool's size allows; others
//!   are deleted, and so is the whole pool of a log with no segment (which starts again
//!   at segment 1).
//! * In a recycled last segment the space after the frames is not zeros. Its tail is
//!   judged by the MARK rule alone (see `scan_last`), and after the cut every frame of the
//!   segment's own life that follows is zeroed (a torn group's later frames, which new
//!   appends could otherwise run into).

use crate::error::WalError;
use crate::format::{
    self, decode_frame_salted, parse_segment_file_name, parse_word0, FrameError, HeaderError, Kind,
    SegmentHeader, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::limits::{IO_CHUNK_BYTES, SEQ_MAX};
use crate::scan::Window;
use crate::segment::{zero_fill, Segment};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uringdb_uring::{OpenMode, Vfs};

/// How recovery treats damage in the middle of the last segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// A torn tail (damage followed by nothing valid) is cut; damage followed by valid
    /// records is an error naming the file and offset.
    #[default]
    Strict,
    /// Any damage in the last segment is treated as the end of the log: everything from
    /// the first damaged frame on is cut (and counted in the recovery report).
    Tolerant,
}

/// What recovery found at open.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// Segment files found.
    pub segments: u64,
    /// First readable sequence number (0 if empty).
    pub first_seq: u64,
    /// Last sequence number recovered (0 if empty).
    pub last_seq: u64,
    /// Bytes cut from the tail of the last segment (torn writes, incomplete batches, or —
    /// in tolerant mode — damaged data). In a recycled segment, whose unwritten space holds
    /// old bytes, only the span up to the end of the last frame of its own life after the
    /// cut is counted (and zeroed).
    pub truncated_bytes: u64,
    /// Prepared-but-unused segment files removed.
    pub removed_prepared: u64,
    /// Recycled files kept in the pool for reuse.
    pub pool: u64,
    /// How long recovery took.
    pub duration: Duration,
}

pub(crate) struct Recovered {
    pub segments: Vec<Arc<Segment>>,
    /// Size of the last (active) segment: its file's length.
    pub active_bytes: u64,
    pub write_offset: u64,
    pub last_seq: u64,
    pub report: RecoveryReport,
    /// The recycling pool: (last segment number, size) of each `M.wal.free` kept.
    pub pool: Vec<(u64, u64)>,
}

fn corruption(path: &Path, offset: u64, reason: impl Into<String>) -> WalError {
    WalError::Corruption {
        file: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Recovers the log in `dir`; a new log gets a first segment of `first_segment_bytes`.
/// Existing segments keep the sizes their files have.
pub(crate) fn recover(
    vfs: &dyn Vfs,
    dir: &Path,
    mode: RecoveryMode,
    first_segment_bytes: u64,
    pool_max: usize,
) -> Result<Recovered, WalError> {
    let io = |what: String| move |e| WalError::io(what, e);
    let mut report = RecoveryReport::default();
    let names = vfs
        .list_dir(dir)
        .map_err(io(format!("listing {}", dir.display())))?;
    let mut numbers = Vec::new();
    let mut free = Vec::new();
    for name in &names {
        if let Some(m) = format::parse_free_file_name(name) {
            free.push(m);
            continue;
        }
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
    let pool = recover_pool(vfs, dir, &free, numbers.first().copied(), pool_max)?;
    report.pool = pool.len() as u64;
    if numbers.is_empty() {
        // A new log: segment 1, header written and synced before it is renamed into place.
        let prep = dir.join(format::prepared_file_name(1));
        let path = dir.join(format::segment_file_name(1));
        let file = zero_fill(vfs, &prep, first_segment_bytes)?;
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
            segments: vec![Arc::new(Segment::new(
                1,
                1,
                path,
                file,
                format::segment_salt(format::SEGMENT_VERSION, 1),
            ))],
            active_bytes: first_segment_bytes,
            write_offset: SEGMENT_HEADER_BYTES as u64,
            last_seq: 0,
            report,
            pool,
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
    let mut last_version = format::SEGMENT_VERSION;
    let mut last_recycled = false;
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
        last_version = SegmentHeader::version_of(&h);
        last_recycled = SegmentHeader::flags_of(&h) & format::FLAG_RECYCLED != 0;
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
        let salt = format::segment_salt(last_version, n);
        segments.push(Arc::new(Segment::new(
            n,
            header.first_seq,
            path,
            file,
            salt,
        )));
    }
    report.segments = segments.len() as u64;
    let last = segments.last().expect("non-empty").clone();
    let (write_offset, last_seq, truncated) = scan_last(&last, last_version, last_recycled, mode)?;
    report.truncated_bytes = truncated;
    report.last_seq = last_seq;
    let active_bytes = last
        .file
        .len()
        .map_err(io(format!("reading {}", last.path.display())))?;
    Ok(Recovered {
        segments,
        active_bytes,
        write_offset,
        last_seq,
        report,
        pool,
    })
}

/// The pool files (`M.wal.free`, numbers `free`) to keep, with their sizes: those numbered
/// below `first_live` (the first live segment; `None`: there is none, keep nothing), the
/// largest first, at most `pool_max`. Deletes the others.
fn recover_pool(
    vfs: &dyn Vfs,
    dir: &Path,
    free: &[u64],
    first_live: Option<u64>,
    pool_max: usize,
) -> Result<Vec<(u64, u64)>, WalError> {
    let io = |what: String| move |e| WalError::io(what, e);
    let mut keep = Vec::new();
    for &m in free {
        let path = dir.join(format::free_file_name(m));
        if first_live.is_some_and(|f| m < f) {
            let len = vfs
                .open(&path, OpenMode::ReadWrite)
                .and_then(|f| f.len())
                .map_err(io(format!("opening {}", path.display())))?;
            keep.push((m, len));
        } else {
            vfs.remove_file(&path)
                .map_err(io(format!("removing {}", path.display())))?;
        }
    }
    keep.sort_unstable_by_key(|f| std::cmp::Reverse(f.1));
    for &(m, _) in keep.iter().skip(pool_max) {
        let path = dir.join(format::free_file_name(m));
        vfs.remove_file(&path)
            .map_err(io(format!("removing {}", path.display())))?;
    }
    keep.truncate(pool_max);
    Ok(keep)
}

/// The granularity at which a crash may persist some bytes of a write and not others: a
/// device writes whole sectors, so a torn frame leaves at least one sector's share of it
/// as it was before the write — zeros, in a zero-filled segment.
const SECTOR_BYTES: u64 = 512;

/// Whether the frame whose header and payload (as far as its header tells, within the
/// file) are `data`, at file offset `at`, that failed to decode with `e`, could have been
/// torn by a crash. Two ways a write tears, and what each leaves of a frame:
/// * by sector (a device persists some sectors of a write and not others, in any order):
///   some sector's share of the frame is all zeros;
/// * by prefix (the write stopped part-way, as `FaultVfs::crash_torn` models): the frame
///   ends in zeros — and if the cut is inside word0 (the only way to garble the kind),
///   everything after the cut is zero, so the checksum and sequence fields are zero too.
///
/// A frame that shows neither was written whole: its damage is bit rot or a bad write, not
/// a crash. (A frame whose data legitimately ends in a zero byte, or has a sector's worth
/// of zeros, cannot be told from a torn one; such damage in the last frames of the log is
/// cut like a torn tail — see the README's guarantees.)
fn torn_possible(e: FrameError, data: &[u8], at: u64) -> bool {
    let mut i = 0usize;
    while i < data.len() {
        let sector_end = ((at + i as u64) / SECTOR_BYTES + 1) * SECTOR_BYTES;
        let n = ((sector_end - (at + i as u64)) as usize).min(data.len() - i);
        if data[i..i + n].iter().all(|&b| b == 0) {
            return true;
        }
        i += n;
    }
    match e {
        FrameError::BadKind => data
            .get(4..)
            .is_none_or(|rest| rest.iter().all(|&b| b == 0)),
        _ => data.last().is_none_or(|&b| b == 0),
    }
}

/// Scans the active segment. Returns (write offset, last sequence number, bytes cut).
///
/// Where the valid frames stop, the stop is classified:
/// * a frame whose every sector holds data but whose checksum, kind or padding is wrong,
///   or a valid frame out of place (sequence number, batch framing, a MARK claiming
///   records it does not follow), is damage: strict mode reports it;
/// * otherwise (zeros, or a frame with an all-zero sector) it may be a torn write, and the
///   rest of the segment decides: a version 2 segment is damaged only if a later MARK or
///   SEAL claims that a record at or after the stop was durable (see `format`); a version 1
///   segment, which has no such witnesses, is damaged if any valid record follows.
///
/// A SEAL in the last segment means the segment after it is missing: always an error.
///
/// A `recycled` segment (version 3, see `format`) holds old bytes, not zeros, where nothing
/// of its own life was written, so the sector test above cannot tell a torn frame from a
/// frame written whole: every stop that is not a valid frame of this segment (bad
/// checksum, kind, padding or length) is a candidate torn tail, and the MARK rule alone
/// decides. Frames of the file's earlier lives never validate (their salt differs), so
/// they always read as such a stop. A valid frame of this segment out of place is still
/// damage. After the cut, frames of this segment's own life that follow it (the rest of a
/// torn group) are zeroed, not the whole old remainder.
fn scan_last(
    seg: &Segment,
    version: u32,
    recycled: bool,
    mode: RecoveryMode,
) -> Result<(u64, u64, u64), WalError> {
    let path = &seg.path;
    let io = |e| WalError::io(format!("reading {}", path.display()), e);
    let len = seg.file.len().map_err(io)?;
    let mut win = Window::new(seg.file.clone());
    let mut off = SEGMENT_HEADER_BYTES as u64;
    let mut expected = seg.first_seq;
    let mut batch: Option<(u64, u64)> = None; // (offset, seq) of an open batch's FIRST
                                              // Damage that is not a torn write, whatever follows it.
    let mut damage: Option<String> = None;
    // A stop that may be a torn write (what follows decides).
    let mut hole: Option<&'static str> = None;
    while off + FRAME_HEADER_BYTES as u64 <= len {
        let head = win.get(off, FRAME_HEADER_BYTES).map_err(io)?;
        let w = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let need = parse_word0(w).map_or(FRAME_HEADER_BYTES, |w| format::frame_bytes(w.len));
        let data = win.get(off, need).map_err(io)?;
        match decode_frame_salted(data, seg.salt) {
            Ok(f) if f.kind == Kind::Mark => {
                if batch.is_some() || f.seq >= expected {
                    damage = Some(format!(
                        "a commit group's mark (durable watermark {}) where record {expected} was expected",
                        f.seq
                    ));
                    break;
                }
                off += f.total as u64;
            }
            Ok(f) if f.kind == Kind::Seal => {
                if batch.is_some() || f.seq != expected {
                    damage = Some(format!(
                        "a seal naming record {} as the next segment's first where record {expected} was expected",
                        f.seq
                    ));
                    break;
                }
                let next = seg.number + 1;
                return Err(corruption(
                    &seg.path.with_file_name(format::segment_file_name(next)),
                    0,
                    format!(
                        "segment file is missing: {} is sealed at offset {off}, so the log continues in segment {next} from record {expected}",
                        seg.path.display()
                    ),
                ));
            }
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
            Err(FrameError::Zero) => {
                hole = Some("zeroed frame");
                break;
            }
            Err(FrameError::BadPadding) if recycled => {
                // The padding may be an old sector the torn write did not replace.
                hole = Some("torn frame (padding)");
                break;
            }
            Err(FrameError::BadPadding) => {
                // The checksum matched: the frame was written whole, and a crash leaves
                // zeros, not data, in its padding.
                damage = Some("non-zero padding after a frame whose checksum matches".into());
                break;
            }
            Err(e) => {
                // Header and payload as far as the header tells (just the header when
                // it does not parse), within the file; the padding tells nothing.
                let extent = match parse_word0(w) {
                    Some(w0) if e != FrameError::BadKind => FRAME_HEADER_BYTES + w0.len,
                    _ => FRAME_HEADER_BYTES,
                };
                let extent = extent.min((len - off) as usize);
                let bytes = win.get(off, extent).map_err(io)?;
                if recycled || torn_possible(e, bytes, off) {
                    hole = Some(match e {
                        FrameError::BadCrc => "torn frame (checksum mismatch)",
                        FrameError::Truncated => "torn frame (truncated)",
                        _ => "torn frame header",
                    });
                } else {
                    damage = Some(format!(
                        "invalid frame ({e:?}) with data in every sector: damage to a complete frame, not a torn write"
                    ));
                }
                break;
            }
        }
    }
    let stop = off;
    let (valid_end, last_seq) = match batch {
        Some((b_off, b_seq)) => (b_off, b_seq - 1),
        None => (off, expected - 1),
    };
    let first_cut = last_seq + 1;
    let strict = mode == RecoveryMode::Strict;
    let witness_wanted = strict && damage.is_none() && hole.is_some();
    let mut own_end = valid_end;
    let mut reason = damage.filter(|_| strict);
    if reason.is_none() && (witness_wanted || recycled) {
        let rest = Rest {
            from: valid_end,
            witness_from: stop + 8,
            len,
            first_cut,
            version,
            salt: seg.salt,
        };
        let (witness, end) = scan_rest(&mut win, &rest, witness_wanted).map_err(io)?;
        own_end = end;
        if let (Some((at, what)), Some(h)) = (witness, hole) {
            reason = Some(format!(
                "{h}, followed by {what} at offset {at}: the damage is in the middle of the log"
            ));
        }
    }
    if let Some(reason) = reason {
        return Err(corruption(
            path,
            stop,
            format!("{reason} (open with recovery: 'tolerant' to cut the log here)"),
        ));
    }
    let cut = if recycled {
        zero_tail(seg, valid_end, own_end.max(valid_end))?
    } else {
        zero_tail(seg, valid_end, len)?
    };
    Ok((valid_end, last_seq, cut))
}

/// What [`scan_rest`] looks through.
struct Rest {
    /// Where the valid frames end (everything from here on is cut).
    from: u64,
    /// Where a witness may start (past the stop).
    witness_from: u64,
    len: u64,
    /// The first record not recovered.
    first_cut: u64,
    version: u32,
    salt: u32,
}

/// Looks in `[witness_from, len)` for proof that the record `first_cut` was durable (so
/// that a stop before it is damage, not a torn tail): in a version 2 or 3 segment, a MARK
/// or SEAL whose value reaches `first_cut` (a MARK's watermark at or beyond it; a SEAL's
/// next record beyond it); in a version 1 segment, any valid record numbered `first_cut`
/// or later. Returns its offset and what it is (the search stops there), and the end of
/// the last valid frame of this segment's own life (its salt) in `[from, len)`: a meta
/// frame, or a record numbered `first_cut` or later (`from` if none).
///
/// Without `want_witness`, only the end is looked for (a recycled segment's tail).
///
/// Only a word whose sequence number field the gap could hold (at most one record per
/// header-sized step after `first_cut`) is read and checksummed as a frame: otherwise every
/// word of a torn payload that happens to parse as a header would cost as many bytes as
/// its length field claims, which made this search quadratic in the segment size. MARK
/// and SEAL frames are 16 bytes, so checking them is cheap.
fn scan_rest(
    win: &mut Window,
    r: &Rest,
    want_witness: bool,
) -> std::io::Result<(Option<(u64, &'static str)>, u64)> {
    let Rest {
        from,
        witness_from,
        len,
        first_cut,
        version,
        salt,
    } = *r;
    let seq_max =
        first_cut.saturating_add(len.saturating_sub(from) / FRAME_HEADER_BYTES as u64 + 1);
    let mut own_end = from;
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
            // A meta frame of any value (16 bytes: cheap to check), or a record the gap
            // could hold.
            let candidate = parse_word0(w).filter(|w0| {
                w0.kind.is_meta() && w0.len == 0
                    || w0.kind.is_on_disk() && (first_cut..=seq_max).contains(&seq)
            });
            if let Some(w0) = candidate {
                let total = format::frame_bytes(w0.len);
                if off + (i + total) as u64 <= len {
                    let at = off + i as u64;
                    let data = win.get(at, total)?;
                    if let Ok(f) = decode_frame_salted(data, salt) {
                        own_end = own_end.max(at + total as u64);
                        let witness = match f.kind {
                            _ if !want_witness || at < witness_from => None,
                            Kind::Mark if f.seq >= first_cut => {
                                Some("a commit group's mark claiming it durable")
                            }
                            Kind::Seal if f.seq > first_cut => Some("a seal claiming it durable"),
                            k if version < 2 && k.is_on_disk() && f.seq >= first_cut => {
                                Some("a valid record")
                            }
                            _ => None,
                        };
                        if let Some(what) = witness {
                            return Ok((Some((at, what)), own_end));
                        }
                    }
                }
            }
            i += 8;
        }
        off = chunk_end;
    }
    Ok((None, own_end))
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
