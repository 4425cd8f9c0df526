//! The WAL targets (`uringdb-wal`): single frames, segment headers, and whole segment
//! files through recovery, with the checksum re-sealing their mutations need.

use std::fs;
use std::path::{Path, PathBuf};

use uringdb_uring::BackendChoice;
use uringdb_wal::format::{self as wf, SegmentHeader};
use uringdb_wal::{RecoveryMode, Wal, WalError, WalOptions};

use super::env::Env;
use super::limits::FIXED_BYTES_DEFAULT;
use super::target::{nothing_declared, Target};

/// The WAL targets, in `--list` order.
pub(super) fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "wal_frame",
            about: "one WAL frame: wal::format::decode_frame, then re-encode what it accepted",
            max_len: 64 << 10,
            declared: declared_frame,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.wal_frames.clone(),
            run: run_wal_frame,
            fixup: Some(|b| {
                reseal_frame(b, 0);
            }),
        },
        Target {
            name: "wal_segment_header",
            about: "a WAL segment header: SegmentHeader::decode, then re-encode",
            max_len: 128,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| {
                f.wal_segments
                    .iter()
                    .map(|s| s[..wf::SEGMENT_HEADER_BYTES.min(s.len())].to_vec())
                    .collect()
            },
            run: run_wal_segment_header,
            fixup: Some(|b| reseal_segment_header(b)),
        },
        Target {
            name: "wal_recovery",
            about: "WAL segment files (the input cut at each segment magic): Wal::open \
                    (recovery, strict then tolerant), read every record back, reopen",
            max_len: 1 << 20,
            declared: nothing_declared,
            expansion: 1,
            // Wal::open allocates its commit ring (1 MiB here, the smallest accepted) and
            // recovery its 1 MiB I/O chunks (wal::limits::IO_CHUNK_BYTES), whatever the
            // file holds.
            fixed_bytes: (1 << 20) + FIXED_BYTES_DEFAULT,
            seeds: |f| f.wal_segments.clone(),
            run: run_wal_recovery,
            fixup: Some(|b| reseal_segments(b)),
        },
        Target {
            name: "wal_scan",
            about: "WAL segment files as for wal_recovery, through recovery alone (no log \
                    threads: many more inputs per second), strict then tolerant, twice",
            max_len: 1 << 20,
            declared: nothing_declared,
            expansion: 1,
            // Recovery's 1 MiB I/O chunk (wal::limits::IO_CHUNK_BYTES).
            fixed_bytes: (1 << 20) + FIXED_BYTES_DEFAULT,
            seeds: |f| f.wal_segments.clone(),
            run: run_wal_scan,
            fixup: Some(|b| reseal_segments(b)),
        },
    ]
}

fn declared_frame(input: &[u8]) -> u64 {
    match input.get(..4) {
        Some(w) => wf::parse_word0(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .map_or(0, |w| wf::frame_bytes(w.len) as u64),
        None => 0,
    }
}

fn run_wal_frame(_: &Env, input: &[u8]) -> bool {
    match wf::decode_frame(input) {
        Ok(f) => {
            assert!(f.total <= input.len(), "frame longer than its input");
            assert_eq!(f.total, wf::frame_bytes(f.payload.len()));
            let mut again = Vec::new();
            wf::encode_frame(&mut again, f.kind, f.seq, f.payload, f.sync);
            assert_eq!(again, &input[..f.total], "re-encoding gives other bytes");
            true
        }
        Err(_) => false,
    }
}

fn run_wal_segment_header(_: &Env, input: &[u8]) -> bool {
    match SegmentHeader::decode(input) {
        Ok(h) => {
            // Re-encoding writes the current version with the input's flags (the RECYCLED
            // flag is not a field of the decoded header); an older one that decoded keeps
            // its fields.
            let again = h.encode_as(wf::SEGMENT_VERSION, SegmentHeader::flags_of(input));
            if SegmentHeader::version_of(input) == wf::SEGMENT_VERSION {
                assert_eq!(&again[..], &input[..wf::SEGMENT_HEADER_BYTES]);
            } else {
                assert_eq!(SegmentHeader::decode(&again), Ok(h));
            }
            true
        }
        Err(_) => false,
    }
}

pub(super) fn wal_options(recovery: RecoveryMode) -> WalOptions {
    WalOptions {
        segment_bytes: 1 << 20,
        ring_bytes: 1 << 20,
        recovery,
        backend: BackendChoice::Portable,
        ..WalOptions::default()
    }
}

/// Reads every record of an open log from `first` to `last`; asserts the sequence numbers
/// are contiguous. Recovery verifies only the last segment (older ones were sealed before
/// the next was created), so damage in an older one may surface here, as corruption naming
/// that file; any other failure to read a recovered record is a bug.
fn read_all(wal: &Wal, first: u64, last: u64, last_segment: &Path) {
    let mut cursor = match wal.cursor(first) {
        Ok(c) => c,
        Err(e) => panic!("cursor at {first}: {e}"),
    };
    let mut expected = first;
    while expected <= last {
        let batch = match wal.read(&mut cursor, u64::MAX, 1024, 1 << 20) {
            Ok(b) => b,
            Err(WalError::Corruption { file, .. }) if file != last_segment => return,
            Err(e) => panic!("recovered record {expected} does not read back: {e}"),
        };
        assert!(
            !batch.records.is_empty(),
            "no record {expected} (last {last})"
        );
        for &(seq, _, _) in &batch.records {
            assert_eq!(seq, expected, "records out of sequence");
            expected += 1;
        }
    }
}

/// Most segment files one input becomes.
const SEGMENTS_MAX: usize = 4;

/// The input as segment files: it is cut at every 8-aligned offset (after the first)
/// where a segment magic starts, up to [`SEGMENTS_MAX`] parts.
fn split_segments(input: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut cuts = vec![0];
    let mut at = 8;
    while at + 8 <= input.len() && cuts.len() < SEGMENTS_MAX {
        if input[at..at + 8] == wf::SEGMENT_MAGIC {
            cuts.push(at);
        }
        at += 8;
    }
    cuts.push(input.len());
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Writes the input's segment files into a fresh directory; returns it and the path of
/// the last segment, or `None` if writing failed.
fn write_segments(env: &Env, input: &[u8]) -> Option<(PathBuf, PathBuf)> {
    let dir = env.fresh_dir("wal");
    let parts = split_segments(input);
    for (i, r) in parts.iter().enumerate() {
        let name = wf::segment_file_name(i as u64 + 1);
        fs::write(dir.join(name), &input[r.clone()]).ok()?;
    }
    let last_segment = dir.join(wf::segment_file_name(parts.len() as u64));
    Some((dir, last_segment))
}

fn run_wal_scan(env: &Env, input: &[u8]) -> bool {
    let Some((dir, _)) = write_segments(env, input) else {
        return false;
    };
    for mode in [RecoveryMode::Strict, RecoveryMode::Tolerant] {
        let Ok(report) = uringdb_wal::fuzzing::recover(&*env.vfs, &dir, mode, 1 << 20) else {
            continue;
        };
        // What recovery kept, a second recovery keeps (the cut tail was zeroed).
        match uringdb_wal::fuzzing::recover(&*env.vfs, &dir, RecoveryMode::Strict, 1 << 20) {
            Ok(again) => assert_eq!(
                again.last_seq, report.last_seq,
                "a second recovery kept other records"
            ),
            Err(e) => panic!("a log that recovered ({mode:?}) does not recover again: {e}"),
        }
        return true;
    }
    false
}

fn run_wal_recovery(env: &Env, input: &[u8]) -> bool {
    let Some((dir, last_segment)) = write_segments(env, input) else {
        return false;
    };
    let mut accepted = false;
    for mode in [RecoveryMode::Strict, RecoveryMode::Tolerant] {
        let Ok((wal, report)) = Wal::open(&dir, &wal_options(mode)) else {
            continue;
        };
        let (first, last) = (report.first_seq, report.last_seq);
        if last >= first && first > 0 {
            read_all(&wal, first, last, &last_segment);
        }
        drop(wal);
        // Recovery cut what it did not keep: opening again, strictly, keeps it all.
        match Wal::open(&dir, &wal_options(RecoveryMode::Strict)) {
            Ok((wal, again)) => {
                assert_eq!(again.last_seq, last, "a second recovery kept other records");
                drop(wal);
            }
            Err(e) => panic!("a log that recovered ({mode:?}) does not reopen: {e}"),
        }
        accepted = true;
        break;
    }
    accepted
}

/// Re-seals the frame at `off`: its checksum and zero padding, if its header parses and it
/// fits. Returns its size.
fn reseal_frame(b: &mut [u8], off: usize) -> Option<usize> {
    let head = b.get(off..off + wf::FRAME_HEADER_BYTES)?;
    let w = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let w0 = wf::parse_word0(w)?;
    let total = wf::frame_bytes(w0.len);
    let frame = b.get_mut(off..off.checked_add(total)?)?;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&frame[8..16]);
    let payload_end = wf::FRAME_HEADER_BYTES + w0.len;
    let crc = wf::seal_crc(
        wf::partial_crc(w, &frame[wf::FRAME_HEADER_BYTES..payload_end]),
        u64::from_le_bytes(seq),
    );
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame[payload_end..].fill(0);
    Some(total)
}

fn reseal_segment_header(b: &mut [u8]) {
    if b.len() >= wf::SEGMENT_HEADER_BYTES {
        let crc = crc32c::crc32c(&b[..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b[36..40].fill(0);
    }
}

pub(super) fn reseal_segments(b: &mut [u8]) {
    for r in split_segments(b) {
        let seg = &mut b[r];
        reseal_segment_header(seg);
        let mut off = wf::SEGMENT_HEADER_BYTES;
        while off + wf::FRAME_HEADER_BYTES <= seg.len() && seg[off..off + 4] != [0; 4] {
            match reseal_frame(seg, off) {
                Some(total) => off += total,
                None => break,
            }
        }
    }
}
