//! Helpers: building a log, locating frames, damaging files.

use super::common::*;
use std::path::{Path, PathBuf};
use uringdb_wal::format::{
    decode_frame_salted, parse_segment_file_name, segment_file_name, segment_salt, FrameError,
    Kind, SegmentHeader, SEGMENT_HEADER_BYTES,
};
use uringdb_wal::{RecoveryMode, RecoveryReport, Wal, WalError, WalOptions};

pub(crate) fn seg_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(segment_file_name(number))
}

/// One frame as found in a segment file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameAt {
    pub(crate) offset: u64,
    pub(crate) seq: u64,
    pub(crate) kind: Kind,
    /// Header + payload, without padding.
    pub(crate) used: usize,
    /// Header + payload + padding.
    pub(crate) total: usize,
}

/// Parses a segment file frame by frame from the end of its header to the first zero word,
/// and returns its record frames; any other decoding error is a bug in the test (it parses
/// undamaged files only).
pub(crate) fn frames(path: &Path) -> Vec<FrameAt> {
    all_frames(path)
        .into_iter()
        .filter(|f| f.kind.is_on_disk())
        .collect()
}

/// Like [`frames`], with the meta frames (MARK, SEAL) too.
pub(crate) fn all_frames(path: &Path) -> Vec<FrameAt> {
    let bytes = std::fs::read(path).unwrap();
    let mut off = SEGMENT_HEADER_BYTES;
    let mut out = Vec::new();
    let salt = salt_of(path, &bytes);
    loop {
        match decode_frame_salted(&bytes[off..], salt) {
            Ok(f) => {
                out.push(FrameAt {
                    offset: off as u64,
                    seq: f.seq,
                    kind: f.kind,
                    used: 16 + f.payload.len(),
                    total: f.total,
                });
                off += f.total;
            }
            Err(FrameError::Zero) => return out,
            Err(e) => panic!("{} at {off}: {e:?}", path.display()),
        }
    }
}

/// The checksum salt of the segment file at `path` whose bytes are `bytes` (from its
/// header's version and its file name's number).
pub(crate) fn salt_of(path: &Path, bytes: &[u8]) -> u32 {
    let number = parse_segment_file_name(path.file_name().unwrap().to_str().unwrap()).unwrap();
    segment_salt(SegmentHeader::version_of(bytes), number)
}

/// Writes `records` (seq 1, 2, ...) into a fresh log in `dir` and closes it. `batch` names a
/// range of indexes appended with one `append_many`.
pub(crate) fn write_log(dir: &Path, records: &[Vec<u8>], batch: Option<std::ops::Range<usize>>) {
    let (wal, rep) = Wal::open(dir, &small_options()).unwrap();
    assert_eq!(rep.last_seq, 0);
    let (p, sink) = producer(&wal);
    let mut i = 0;
    let mut outcomes = 0;
    while i < records.len() {
        match &batch {
            Some(b) if b.start == i => {
                let refs: Vec<&[u8]> = records[b.clone()].iter().map(|r| &r[..]).collect();
                p.append_many(&refs, false).unwrap();
                outcomes += b.len();
                i = b.end;
            }
            _ => {
                p.append(&records[i], false).unwrap();
                outcomes += 1;
                i += 1;
            }
        }
    }
    p.sync().unwrap();
    let out = sink.wait(outcomes + 1);
    for (k, o) in out.iter().take(outcomes).enumerate() {
        assert_eq!(*o, Outcome::Ok(k as u64 + 1));
    }
    wal.close().unwrap();
}

/// Zeroes the MARK a clean close leaves after the last group (there must be one): the file
/// is then as a crash right after the last group's fdatasync leaves it, and a torn tail
/// there has no witness.
pub(crate) fn remove_close_mark(path: &Path) {
    let last = *all_frames(path).last().unwrap();
    assert_eq!(last.kind, Kind::Mark, "{}: no close mark", path.display());
    zero_range(path, last.offset, last.total);
}

/// The segment files of a log, to recreate it undamaged for each case.
pub(crate) struct Pristine(pub(crate) Vec<(String, Vec<u8>)>);

impl Pristine {
    pub(crate) fn of(dir: &Path) -> Pristine {
        let mut files = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".wal") {
                files.push((name.clone(), std::fs::read(dir.join(&name)).unwrap()));
            }
        }
        files.sort();
        Pristine(files)
    }

    pub(crate) fn restore(&self, tag: &str) -> TempDir {
        let d = TempDir::new(tag);
        for (name, bytes) in &self.0 {
            std::fs::write(d.path().join(name), bytes).unwrap();
        }
        d
    }
}

pub(crate) fn rewrite(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// One way of damaging a segment file.
pub(crate) type Damage = Box<dyn Fn(&Path)>;

/// Overwrites `[from, end of file)` with zeros: a cut (segments are preallocated).
pub(crate) fn zero_from(path: &Path, from: u64) {
    rewrite(path, |b| b[from as usize..].fill(0));
}

pub(crate) fn zero_range(path: &Path, from: u64, len: usize) {
    rewrite(path, |b| b[from as usize..from as usize + len].fill(0));
}

pub(crate) fn flip_bit(path: &Path, byte: u64, bit: u32) {
    rewrite(path, |b| b[byte as usize] ^= 1 << bit);
}

/// The end of the last non-zero byte at or after `from` (what a cut from `from` removes).
pub(crate) fn nonzero_end(path: &Path, from: u64) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    match bytes[from as usize..].iter().rposition(|&b| b != 0) {
        Some(i) => from + i as u64 + 1,
        None => from,
    }
}

pub(crate) fn strict() -> WalOptions {
    small_options()
}

pub(crate) fn tolerant() -> WalOptions {
    WalOptions {
        recovery: RecoveryMode::Tolerant,
        ..small_options()
    }
}

pub(crate) fn open(dir: &Path, o: &WalOptions) -> (Wal, RecoveryReport) {
    match Wal::open(dir, o) {
        Ok(x) => x,
        Err(e) => panic!("open of {} failed: {e}", dir.display()),
    }
}

/// Asserts that the log holds exactly `expect` (seq 1, 2, ...).
pub(crate) fn assert_records(wal: &Wal, expect: &[Vec<u8>]) {
    let all = read_all(wal).unwrap();
    assert_eq!(all.len(), expect.len(), "record count");
    for (i, (seq, data)) in all.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(data, &expect[i], "record {seq}");
    }
}

pub(crate) fn expect_corruption(
    r: Result<impl std::fmt::Debug, WalError>,
    file: &Path,
    offset: u64,
    ctx: &str,
) {
    match r {
        Err(WalError::Corruption {
            file: f, offset: o, ..
        }) if f == file && o == offset => {}
        other => panic!(
            "{ctx}: expected Corruption in {} at {offset}, got {other:?}",
            file.display()
        ),
    }
}

/// Appends one record, waits for it, and checks its sequence number.
pub(crate) fn append_one(wal: &Wal, data: &[u8], seq: u64) {
    let (p, sink) = producer(wal);
    p.append(data, true).unwrap();
    assert_eq!(sink.wait(1)[0], Outcome::Ok(seq));
}

/// A payload without zero bytes, so that zeroing any byte of it is damage.
pub(crate) fn nonzero_payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37) ^ salt | 1)
        .collect()
}

pub(crate) fn small_records(n: u64) -> Vec<Vec<u8>> {
    (1..=n)
        .map(|i| nonzero_payload(10 + (i as usize * 7) % 40, i as u8))
        .collect()
}

/// A log of `n` 3000-byte records over 1 MiB segments (about 340 records each).
pub(crate) fn multi_segment_log(tag: &str, n: u64) -> (TempDir, Vec<Vec<u8>>) {
    let src = TempDir::new(tag);
    let recs: Vec<Vec<u8>> = (1..=n).map(|i| nonzero_payload(3000, i as u8)).collect();
    write_log(src.path(), &recs, None);
    (src, recs)
}
