//! Fixture: the v1 format as committed.

use std::path::{Path, PathBuf};

use super::common::TempDir;
use super::helpers::*;
use uringdb_lsm::manifest::{
    recover, ManifestState, ManifestWriter, VersionEdit, MANIFEST_HEADER_BYTES, RECORD_HEADER_BYTES,
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
