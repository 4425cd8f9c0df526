//! Corruption is an error naming the file and the offset; a damaged tail no sync covered
//! is cut; a store of format version 1 (the checked-in fixture) reads back.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use uringdb_logsink::format::{segment_name, BLOCK_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use uringdb_logsink::{LogReader, LogSink, ReadFilter, SinkError, SinkOptions, SyncMode};

fn opts() -> SinkOptions {
    SinkOptions {
        backend: backend(),
        sync: SyncMode::None,
        block_raw_bytes: 4096,
        ring_bytes: 1 << 16,
        segment_bytes: 64 * 1024,
        ..SinkOptions::default()
    }
}

/// Writes `n` lines with a flush every 50: many small blocks, each synced before the next.
fn store(dir: &Path, n: u64) -> Vec<String> {
    let (sink, _) = LogSink::open(dir, opts()).unwrap();
    let mut lines = Vec::new();
    for i in 0..n {
        let l = line(i, 30, i as i64);
        sink.write(l.as_bytes()).unwrap();
        lines.push(l);
        if i % 50 == 49 {
            sink.flush_sync().unwrap();
        }
    }
    sink.close().unwrap();
    lines
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn first_block_offset() -> u64 {
    SEGMENT_HEADER_BYTES as u64
}

#[test]
fn damage_in_synced_data_of_the_newest_segment_names_file_and_offset() {
    let dir = TempDir::new("corrupt-newest");
    store(dir.path(), 400);
    let seg = dir.path().join(segment_name(0));
    // A payload byte of the first block.
    flip(&seg, first_block_offset() + BLOCK_HEADER_BYTES as u64 + 3);
    match LogSink::open(dir.path(), opts()) {
        Err(SinkError::Corruption {
            file,
            offset,
            message,
        }) => {
            assert_eq!(file, seg);
            assert_eq!(offset, first_block_offset());
            assert!(message.contains("checksum"), "{message}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    // The reader names it too.
    let mut r = LogReader::open(real_vfs(), dir.path(), ReadFilter::default()).unwrap();
    match r.next_lines(1 << 20) {
        Err(e @ SinkError::Corruption { .. }) => {
            assert!(
                e.to_string()
                    .contains(&format!("{} at offset 32", seg.display())),
                "{e}"
            )
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn damage_in_a_sealed_segment_names_file_and_offset() {
    let dir = TempDir::new("corrupt-sealed");
    store(dir.path(), 6000);
    let seg = dir.path().join(segment_name(0));
    assert!(
        dir.path().join(segment_name(1)).exists(),
        "the store rotated"
    );
    flip(&seg, first_block_offset() + 5); // a header byte
    match LogSink::open(dir.path(), opts()) {
        Err(SinkError::Corruption { file, offset, .. }) => {
            assert_eq!(file, seg);
            assert_eq!(offset, first_block_offset());
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_damaged_or_truncated_tail_is_cut_and_appending_resumes() {
    let dir = TempDir::new("tail");
    let lines = store(dir.path(), 400);
    let seg = dir.path().join(segment_name(0));
    let len = std::fs::metadata(&seg).unwrap().len();
    // Cut in the middle of the last block.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 10).unwrap();
    drop(f);
    let (sink, report) = LogSink::open(dir.path(), opts()).unwrap();
    assert!(report.cut_bytes > 0, "{report:?}");
    let kept = report.lines as usize;
    assert!((350..400).contains(&kept), "{report:?}");
    sink.write(b"{\"level\":30,\"msg\":\"after\"}\n").unwrap();
    sink.close().unwrap();
    let back = read_all(real_vfs(), dir.path());
    assert_eq!(&back[..kept], &lines[..kept]);
    assert_eq!(back[kept], "{\"level\":30,\"msg\":\"after\"}\n");
    assert_eq!(back.len(), kept + 1);
}

#[test]
fn garbage_after_the_last_block_is_a_torn_tail() {
    let dir = TempDir::new("garbage");
    let lines = store(dir.path(), 100);
    let seg = dir.path().join(segment_name(0));
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0xAB; 300]);
    std::fs::write(&seg, bytes).unwrap();
    let (sink, report) = LogSink::open(dir.path(), opts()).unwrap();
    assert_eq!(report.cut_bytes, 300);
    sink.close().unwrap();
    assert_eq!(read_all(real_vfs(), dir.path()), lines);
}

/// The checked-in store of format version 1 (`tests/fixtures/v1`, written by
/// `URINGDB_WRITE_FIXTURE=1 cargo test -p uringdb-logsink --test corruption v1`, which
/// rewrites it): 300 lines in blocks of 4 KiB, levels 30 and 50.
#[test]
fn v1_fixture_reads_back() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    let expected: Vec<String> = (0..300u64)
        .map(|i| {
            line(
                i,
                if i % 10 == 0 { 50 } else { 30 },
                1_733_600_000_000 + i as i64 * 10,
            )
        })
        .collect();
    if std::env::var_os("URINGDB_WRITE_FIXTURE").is_some() {
        let _ = std::fs::remove_dir_all(&fixture);
        let (sink, _) = LogSink::open(
            &fixture,
            SinkOptions {
                sync: SyncMode::Interval(Duration::from_secs(1)),
                ..opts()
            },
        )
        .unwrap();
        for l in &expected {
            sink.write(l.as_bytes()).unwrap();
        }
        sink.close().unwrap();
        let _ = std::fs::remove_file(fixture.join("LOCK"));
    }
    assert_eq!(read_all(real_vfs(), &fixture), expected);
    let errors: Vec<String> = expected
        .iter()
        .filter(|l| l.starts_with("{\"level\":50"))
        .cloned()
        .collect();
    let (got, _) = read_filtered(
        real_vfs(),
        &fixture,
        ReadFilter {
            min_level: Some(50),
            ..Default::default()
        },
    );
    assert_eq!(got, errors);
    // The fixture's first block header, byte for byte what format.rs draws.
    let seg = std::fs::read(fixture.join(segment_name(0))).unwrap();
    assert_eq!(&seg[0..8], b"URDBLOG1");
    assert_eq!(&seg[32..36], b"ULK1");
}
