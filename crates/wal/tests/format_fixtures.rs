//! Logs written in each released segment format are kept in `tests/fixtures/` (STYLE habit
//! 2), and every later version must open them and read exactly these records:
//!
//! * `wal_v1/`: two version 1 segments (no MARK or SEAL frames), built by hand from the
//!   layout in `src/format.rs` by `tests/fixtures/make_wal_v1.py`.
//! * `wal_v2/`: a version 2 log written by the code (MARK frames in every group, a SEAL at
//!   the segment roll). Regenerate (only when the format version changes on purpose, then
//!   keep the old directory as a fixture of its own) with
//!   `cargo test -p uringdb-wal --test format_fixtures -- --ignored generate_v2`.
//! * `wal_v3/`: a version 3 log written by the code (salted checksums) that was truncated
//!   and whose last segment is a recycled file (RECYCLED flag; old frames of an earlier
//!   segment number after its records). Regenerate likewise with `generate_v3`.
//!
//! Each test opens a copy (recovery may rewrite a tail or remove a prepared segment), never
//! the fixture itself.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use uringdb_wal::{BackendChoice, Wal, WalOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn options(backend: BackendChoice) -> WalOptions {
    WalOptions {
        backend,
        ..small_options()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The records of `wal_v1/` (must match `make_wal_v1.py`).
fn v1_records() -> Vec<(u64, Vec<u8>)> {
    vec![
        (1, b"v1 record one".to_vec()),
        (2, Vec::new()),
        (3, b"batch a".to_vec()),
        (4, b"batch bb".to_vec()),
        (5, b"batch ccc".to_vec()),
        (6, (0..=255u8).collect()),
        (7, b"the last v1 record".to_vec()),
    ]
}

/// Single records of `wal_v2/` before the batch: enough bytes to roll to a second segment.
const V2_SINGLE_RECORDS: u64 = 40;
const V2_RECORD_BYTES: usize = 30_000;

fn v2_record(i: u64) -> Vec<u8> {
    (0..V2_RECORD_BYTES)
        .map(|j| (i as usize * 131 + j * 7) as u8)
        .collect()
}

fn v2_batch() -> Vec<Vec<u8>> {
    vec![b"v2 batch a".to_vec(), Vec::new(), b"v2 batch ccc".to_vec()]
}

/// The records of `wal_v2/`.
fn v2_records() -> Vec<(u64, Vec<u8>)> {
    let mut out: Vec<(u64, Vec<u8>)> = (1..=V2_SINGLE_RECORDS).map(|i| (i, v2_record(i))).collect();
    for (k, r) in v2_batch().into_iter().enumerate() {
        out.push((V2_SINGLE_RECORDS + 1 + k as u64, r));
    }
    out
}

#[test]
#[ignore = "writes the fixture; run on purpose only"]
fn generate_v2() {
    let dir = fixture("wal_v2");
    let _ = std::fs::remove_dir_all(&dir);
    let (wal, _) = Wal::open(&dir, &options(BackendChoice::Portable)).unwrap();
    let (p, sink) = producer(&wal);
    for i in 1..=V2_SINGLE_RECORDS {
        p.append(&v2_record(i), i % 2 == 0).unwrap();
    }
    let batch = v2_batch();
    let refs: Vec<&[u8]> = batch.iter().map(|r| r.as_slice()).collect();
    p.append_many(&refs, true).unwrap();
    p.sync().unwrap();
    let n = V2_SINGLE_RECORDS as usize + batch.len() + 1;
    assert!(sink.wait(n).iter().all(|o| matches!(o, Outcome::Ok(_))));
    assert!(wal.stats().segments > 1, "the fixture rolls over a segment");
    drop(p);
    wal.close().unwrap();
    // The next segment prepared ahead of need and the lock file are not part of the format.
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".prep") || name == "LOCK" {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
}

const V3_RECORDS: u64 = 240;
const V3_TRUNCATE_AT: u64 = 100;

fn v3_record(i: u64) -> Vec<u8> {
    (0..20_000usize)
        .map(|j| (i as usize * 17 + j * 13) as u8 | 1)
        .collect()
}

#[test]
#[ignore = "writes the fixture; run on purpose only"]
fn generate_v3() {
    let dir = fixture("wal_v3");
    let _ = std::fs::remove_dir_all(&dir);
    let (wal, _) = Wal::open(&dir, &options(BackendChoice::Portable)).unwrap();
    let (p, sink) = producer(&wal);
    for i in 1..=V3_RECORDS {
        p.append(&v3_record(i), i % 10 == 0).unwrap();
        if i == V3_TRUNCATE_AT {
            sink.wait(i as usize);
            assert!(wal.truncate_before(i).unwrap() >= 2);
        }
    }
    p.sync().unwrap();
    assert!(sink
        .wait(V3_RECORDS as usize + 1)
        .iter()
        .all(|o| matches!(o, Outcome::Ok(_))));
    assert!(wal.stats().recycled_segments >= 1, "the fixture recycles");
    drop(p);
    wal.close().unwrap();
    // The pool, a prepared segment and the lock file are not part of the format.
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".prep") || name.ends_with(".free") || name == "LOCK" {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
}

#[test]
fn fixture_v3_opens_with_its_records() {
    use uringdb_wal::format::{parse_segment_file_name, SegmentHeader, FLAG_RECYCLED};
    let fixture_dir = fixture("wal_v3");
    let mut segs: Vec<(u64, PathBuf)> = std::fs::read_dir(&fixture_dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            parse_segment_file_name(e.file_name().to_str().unwrap()).map(|n| (n, e.path()))
        })
        .collect();
    segs.sort();
    let last = std::fs::read(&segs.last().unwrap().1).unwrap();
    assert_eq!(SegmentHeader::version_of(&last), 3);
    assert_ne!(
        SegmentHeader::flags_of(&last) & FLAG_RECYCLED,
        0,
        "a recycled segment"
    );
    for backend in [BackendChoice::IoUring, BackendChoice::Portable] {
        let dir = TempDir::new("wal_v3");
        copy_dir(&fixture_dir, dir.path());
        let (wal, report) = Wal::open(dir.path(), &options(backend))
            .unwrap_or_else(|e| panic!("the wal_v3 fixture opens ({backend:?}): {e}"));
        assert_eq!(report.segments, segs.len() as u64, "{report:?}");
        assert_eq!(report.last_seq, V3_RECORDS, "{report:?}");
        assert_eq!(report.truncated_bytes, 0, "{report:?}");
        let first = wal.first_seq();
        assert!(first > 1 && first <= V3_TRUNCATE_AT, "{first}");
        let expected: Vec<(u64, Vec<u8>)> =
            (first..=V3_RECORDS).map(|i| (i, v3_record(i))).collect();
        assert_eq!(
            read_from(&wal, first).unwrap(),
            expected,
            "wal_v3 ({backend:?})"
        );
        wal.close().unwrap();
    }
}

fn opens_with_exact_records(name: &str, segments: u64, expected: Vec<(u64, Vec<u8>)>) {
    for backend in [BackendChoice::IoUring, BackendChoice::Portable] {
        let dir = TempDir::new(name);
        copy_dir(&fixture(name), dir.path());
        let (wal, report) = Wal::open(dir.path(), &options(backend))
            .unwrap_or_else(|e| panic!("the {name} fixture opens ({backend:?}): {e}"));
        assert_eq!(report.segments, segments, "{name}: {report:?}");
        assert_eq!(report.first_seq, 1, "{name}: {report:?}");
        assert_eq!(report.last_seq, expected.len() as u64, "{name}: {report:?}");
        assert_eq!(report.truncated_bytes, 0, "{name}: {report:?}");
        assert_eq!(wal.first_seq(), 1);
        assert_eq!(wal.last_seq(), expected.len() as u64);
        assert_eq!(read_all(&wal).unwrap(), expected, "{name} ({backend:?})");
        wal.close().unwrap();
    }
}

#[test]
fn fixture_v1_opens_with_its_records() {
    opens_with_exact_records("wal_v1", 2, v1_records());
}

#[test]
fn fixture_v2_opens_with_its_records() {
    opens_with_exact_records("wal_v2", 2, v2_records());
}
