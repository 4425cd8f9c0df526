//! Fixtures: the v1 and v2 formats as committed.

use std::path::{Path, PathBuf};

use super::common::TempDir;
use super::helpers::*;
use uringdb_lsm::manifest::{
    recover, ManifestState, ManifestWriter, TreeEdit, VersionEdit, MANIFEST_HEADER_BYTES,
    RECORD_HEADER_BYTES,
};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifest_v1")
}

/// The fixture's history: a snapshot of two level-0 tables, then a flush, a compaction into
/// level 1 (with a compaction pointer) and a trivial move to level 2.
fn fixture_history() -> (ManifestState, Vec<VersionEdit>) {
    let mut s = ManifestState::new(CMP);
    s.apply(&VersionEdit {
        next_file_number: Some(5),
        flushed_seq: Some(100),
        last_seq: Some(100),
        added: vec![
            (0, meta(2, b"apple", b"melon", (1, 60))),
            (0, meta(3, b"banana", b"zucchini", (61, 100))),
        ],
        ..Default::default()
    })
    .unwrap();
    let edits = vec![
        VersionEdit {
            next_file_number: Some(6),
            flushed_seq: Some(120),
            last_seq: Some(130),
            added: vec![(0, meta(5, b"cherry", b"kiwi", (101, 120)))],
            ..Default::default()
        },
        VersionEdit {
            next_file_number: Some(8),
            last_seq: Some(140),
            deleted: vec![(0, 2), (0, 3), (0, 5)],
            added: vec![
                (1, meta(6, b"apple", b"kiwi", (1, 120))),
                (1, meta(7, b"lemon", b"zucchini", (2, 119))),
            ],
            compact_pointers: vec![(0, ik(b"zucchini", 61))],
            ..Default::default()
        },
        VersionEdit {
            next_file_number: Some(8),
            deleted: vec![(1, 7)],
            added: vec![(2, meta(7, b"lemon", b"zucchini", (2, 119)))],
            ..Default::default()
        },
    ];
    (s, edits)
}

fn write_fixture(dir: &Path) {
    let (s, edits) = fixture_history();
    let mut w = ManifestWriter::create(portable(), dir, 1, &s).unwrap();
    for e in &edits {
        w.append(e).unwrap();
    }
}

/// Regenerates the committed fixture. Run only when the format version changes (and then
/// add a new fixture directory instead of replacing this one).
#[test]
#[ignore = "writes the committed fixture; run by hand"]
fn generate_fixture_v1() {
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    write_fixture(&dir);
}

#[test]
fn fixture_v1_recovers_to_the_exact_expected_state() {
    let r = recover(&*portable(), &fixture_dir(), CMP).unwrap().unwrap();
    // Written out by hand, not recomputed through the code under test.
    let mut expected = ManifestState::new(CMP);
    expected.levels[1] = vec![meta(6, b"apple", b"kiwi", (1, 120))];
    expected.levels[2] = vec![meta(7, b"lemon", b"zucchini", (2, 119))];
    expected.next_file_number = 8;
    expected.flushed_seq = 120;
    expected.last_seq = 140;
    expected.compact_pointers[0] = ik(b"zucchini", 61);
    assert_eq!(r.state, expected);
    assert_eq!(r.manifest_number, 1);
    assert_eq!(r.edits, 4);
    assert_eq!(r.torn_tail_bytes, 0);
    let m = std::fs::read(fixture_dir().join("MANIFEST-000001")).unwrap();
    assert_eq!(&m[..8], b"URDBMAN1");
    assert_eq!(m[8..12], 1u32.to_le_bytes());
    assert_eq!(
        std::fs::read(fixture_dir().join("CURRENT")).unwrap(),
        b"MANIFEST-000001\n"
    );
    assert!(m.len() > MANIFEST_HEADER_BYTES + 4 * RECORD_HEADER_BYTES);
}

#[test]
fn this_build_writes_the_fixture_byte_for_byte() {
    let dir = TempDir::new("fixture");
    write_fixture(dir.path());
    for name in ["CURRENT", "MANIFEST-000001"] {
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            std::fs::read(fixture_dir().join(name)).unwrap(),
            "{name} differs from the committed v1 fixture: the format changed"
        );
    }
}

fn fixture_v2_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifest_v2")
}

/// The v2 fixture's history: the v1 history's snapshot (key-value tables only, so version
/// 1 would do), a manifest started at version 2 for the flush that adds the first stream
/// table (both trees in one edit: an atomic flush), a stream-tree compaction with a
/// compaction pointer, and a stream-tree deletion.
fn fixture_v2_history() -> (ManifestState, Vec<VersionEdit>) {
    let (s, _) = fixture_history();
    let edits = vec![
        VersionEdit {
            next_file_number: Some(8),
            flushed_seq: Some(130),
            last_seq: Some(130),
            added: vec![(0, meta(5, b"cherry", b"kiwi", (101, 130)))],
            streams: TreeEdit {
                added: vec![(0, meta(6, b"\x01out\0", b"\x02out", (102, 130)))],
                ..Default::default()
            },
            ..Default::default()
        },
        VersionEdit {
            next_file_number: Some(9),
            streams: TreeEdit {
                deleted: vec![(0, 6)],
                added: vec![(1, meta(8, b"\x01out\0", b"\x02out", (102, 130)))],
                compact_pointers: vec![(0, ik(b"\x02out", 102))],
            },
            ..Default::default()
        },
        VersionEdit {
            next_file_number: Some(10),
            flushed_seq: Some(150),
            last_seq: Some(150),
            streams: TreeEdit {
                added: vec![(0, meta(9, b"\x01log\0", b"\x02log", (131, 150)))],
                ..Default::default()
            },
            ..Default::default()
        },
    ];
    (s, edits)
}

fn write_fixture_v2(dir: &Path) {
    let (s, edits) = fixture_v2_history();
    let mut w = ManifestWriter::create_version(portable(), dir, 1, &s, 2).unwrap();
    for e in &edits {
        w.append(e).unwrap();
    }
}

/// Regenerates the committed v2 fixture (see [`generate_fixture_v1`]).
#[test]
#[ignore = "writes the committed fixture; run by hand"]
fn generate_fixture_v2() {
    let dir = fixture_v2_dir();
    std::fs::create_dir_all(&dir).unwrap();
    write_fixture_v2(&dir);
}

#[test]
fn fixture_v2_recovers_to_the_exact_expected_state() {
    let r = recover(&*portable(), &fixture_v2_dir(), CMP)
        .unwrap()
        .unwrap();
    // Written out by hand, not recomputed through the code under test.
    let mut expected = ManifestState::new(CMP);
    expected.levels[0] = vec![
        meta(5, b"cherry", b"kiwi", (101, 130)),
        meta(3, b"banana", b"zucchini", (61, 100)),
        meta(2, b"apple", b"melon", (1, 60)),
    ];
    expected.streams.levels[0] = vec![meta(9, b"\x01log\0", b"\x02log", (131, 150))];
    expected.streams.levels[1] = vec![meta(8, b"\x01out\0", b"\x02out", (102, 130))];
    expected.streams.compact_pointers[0] = ik(b"\x02out", 102);
    expected.next_file_number = 10;
    expected.flushed_seq = 150;
    expected.last_seq = 150;
    assert_eq!(r.state, expected);
    assert_eq!(r.edits, 4);
    assert_eq!(r.state.live_files(), vec![5, 3, 2, 9, 8]);
    assert_eq!(r.state.format_version(), 2);
    let m = std::fs::read(fixture_v2_dir().join("MANIFEST-000001")).unwrap();
    assert_eq!(m[8..12], 2u32.to_le_bytes());
    // A fresh manifest of the recovered state is version 2 (its snapshot uses tag 8).
    let dir = TempDir::new("fixture-v2-rewrite");
    let w = ManifestWriter::create(
        portable(),
        dir.path(),
        11,
        &ManifestState {
            next_file_number: 12,
            ..r.state.clone()
        },
    )
    .unwrap();
    assert_eq!(w.version(), 2);
}

#[test]
fn this_build_writes_the_v2_fixture_byte_for_byte() {
    let dir = TempDir::new("fixture-v2");
    write_fixture_v2(dir.path());
    for name in ["CURRENT", "MANIFEST-000001"] {
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            std::fs::read(fixture_v2_dir().join(name)).unwrap(),
            "{name} differs from the committed v2 fixture: the format changed"
        );
    }
}

#[test]
fn a_version_1_manifest_refuses_a_stream_tree_edit_without_writing() {
    let dir = TempDir::new("v1-refuses");
    let (s, edits) = fixture_v2_history();
    // The snapshot alone needs only version 1.
    let mut w = ManifestWriter::create(portable(), dir.path(), 1, &s).unwrap();
    assert_eq!(w.version(), 1);
    let before = w.file_bytes();
    let e = w.append(&edits[0]).unwrap_err();
    assert!(e.to_string().contains("stream tree"), "{e}");
    assert!(
        !w.failed(),
        "a refused edit wrote nothing: the writer is not latched"
    );
    assert_eq!(w.file_bytes(), before);
    w.append(&VersionEdit::default()).unwrap();
    // A version below what the state needs is refused.
    let (mut r, _) = (
        recover(&*portable(), &fixture_v2_dir(), CMP)
            .unwrap()
            .unwrap(),
        (),
    );
    r.state.next_file_number = 20;
    let e = ManifestWriter::create_version(portable(), dir.path(), 12, &r.state, 1).unwrap_err();
    assert!(
        e.to_string().contains("format version 1 cannot hold"),
        "{e}"
    );
}
