//! Writer and recovery.

use super::common::TempDir;
use super::helpers::*;
use uringdb_lsm::manifest::{
    manifest_file_name, recover, ManifestState, ManifestWriter, VersionEdit, CURRENT_FILE_NAME,
    MANIFEST_HEADER_BYTES,
};

#[test]
fn writer_then_recover_round_trips() {
    let dir = TempDir::new("roundtrip");
    let (states, bounds) = write_manifest(dir.path(), 40, 7);
    let r = recovered(dir.path());
    assert_eq!(&r.state, states.last().unwrap());
    assert_eq!(r.edits, states.len() as u64);
    assert_eq!(r.torn_tail_bytes, 0);
    assert_eq!(r.manifest_number, 1);
    assert_eq!(r.manifest_path, dir.path().join("MANIFEST-000001"));
    let len = std::fs::metadata(&r.manifest_path).unwrap().len();
    assert_eq!(len, *bounds.last().unwrap());
    assert_eq!(
        std::fs::read(dir.path().join(CURRENT_FILE_NAME)).unwrap(),
        b"MANIFEST-000001\n"
    );
}

#[test]
fn an_empty_state_and_empty_edits_round_trip() {
    let dir = TempDir::new("empty");
    let mut s = ManifestState::new(CMP);
    s.next_file_number = 2;
    let mut w = ManifestWriter::create(portable(), dir.path(), 1, &s).unwrap();
    w.append(&VersionEdit::default()).unwrap();
    w.append(&VersionEdit::default()).unwrap();
    let r = recovered(dir.path());
    assert_eq!(r.state, s);
    assert_eq!(r.edits, 3);
}

#[test]
fn reopen_switches_current_to_a_new_manifest_and_removes_the_old() {
    let dir = TempDir::new("reopen");
    let vfs = portable();
    let (states, _) = write_manifest(dir.path(), 5, 8);
    // Debris a crash could leave: a temporary CURRENT and an unfinished newer manifest.
    std::fs::write(dir.path().join("CURRENT.77.tmp"), b"MANIFEST-000077\n").unwrap();
    std::fs::write(dir.path().join("MANIFEST-000077"), b"half").unwrap();
    std::fs::write(dir.path().join("000003.sst"), b"a table").unwrap();

    let mut state = recovered(dir.path()).state;
    assert_eq!(&state, states.last().unwrap());
    let number = state.next_file_number;
    state.next_file_number += 1;
    let mut w = ManifestWriter::create(vfs.clone(), dir.path(), number, &state).unwrap();
    assert_eq!(w.number(), number);
    let e = VersionEdit {
        flushed_seq: Some(state.flushed_seq + 1),
        ..Default::default()
    };
    w.append(&e).unwrap();
    state.apply(&e).unwrap();

    let mut names = vfs.list_dir(dir.path()).unwrap();
    names.sort();
    assert_eq!(
        names,
        vec![
            "000003.sst".to_string(),
            "CURRENT".into(),
            manifest_file_name(number)
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("CURRENT")).unwrap(),
        format!("{}\n", manifest_file_name(number))
    );
    let r = recovered(dir.path());
    assert_eq!(r.state, state);
    assert_eq!(r.manifest_number, number);
    assert_eq!(r.edits, 2);
}

#[test]
fn create_overwrites_a_stale_file_of_its_number() {
    // A create interrupted before the CURRENT switch leaves MANIFEST-<n>; the retry after
    // recovery allocates the same number again.
    let dir = TempDir::new("stale");
    let (states, _) = write_manifest(dir.path(), 2, 9);
    let mut state = states.last().unwrap().clone();
    let number = state.next_file_number;
    std::fs::write(dir.path().join(manifest_file_name(number)), vec![0x5a; 300]).unwrap();
    state.next_file_number += 1;
    ManifestWriter::create(portable(), dir.path(), number, &state).unwrap();
    assert_eq!(recovered(dir.path()).state, state);
}

#[test]
fn create_refuses_the_live_manifest_and_numbers_not_below_next() {
    let dir = TempDir::new("refuse");
    let (states, _) = write_manifest(dir.path(), 2, 10);
    let mut state = states.last().unwrap().clone();
    state.next_file_number = 50;
    let err = ManifestWriter::create(portable(), dir.path(), 1, &state).unwrap_err();
    assert!(err.to_string().contains("live manifest"), "{err}");
    let n = state.next_file_number;
    let err = ManifestWriter::create(portable(), dir.path(), n, &state).unwrap_err();
    assert!(err.to_string().contains("must exceed"), "{err}");
    // A state that would not survive its own replay (level out of range) is refused too.
    let mut bad = state.clone();
    bad.levels.push(vec![meta(40, b"a", b"b", (1, 1))]);
    let err = ManifestWriter::create(portable(), dir.path(), 20, &bad).unwrap_err();
    assert!(err.to_string().contains("own snapshot"), "{err}");
    // Nothing changed.
    assert_eq!(&recovered(dir.path()).state, states.last().unwrap());
    assert!(!dir.path().join(manifest_file_name(20)).exists());
}

#[test]
fn no_current_is_a_new_database_unless_a_manifest_records_data() {
    let vfs = portable();
    let dir = TempDir::new("nocurrent");
    assert_eq!(recover(&*vfs, dir.path(), CMP).unwrap(), None);
    assert_eq!(
        recover(&*vfs, &dir.path().join("missing"), CMP).unwrap(),
        None
    );

    // What a crash during the very first create can leave: an empty or torn file, or a
    // complete manifest of an empty state. Nothing is lost by starting afresh.
    let mut fresh = ManifestState::new(CMP);
    fresh.next_file_number = 4;
    fresh.last_seq = 99;
    ManifestWriter::create(vfs.clone(), dir.path(), 3, &fresh).unwrap();
    std::fs::remove_file(dir.path().join("CURRENT")).unwrap();
    std::fs::write(dir.path().join("MANIFEST-000001"), b"").unwrap();
    std::fs::write(dir.path().join("MANIFEST-000002"), b"URDBMA").unwrap();
    std::fs::write(dir.path().join("CURRENT.3.tmp"), b"MANIFEST-000003\n").unwrap();
    assert_eq!(recover(&*vfs, dir.path(), CMP).unwrap(), None);

    // A manifest that records tables: CURRENT was lost, and that is corruption.
    let (_, _) = write_manifest(dir.path(), 1, 11);
    std::fs::remove_file(dir.path().join("CURRENT")).unwrap();
    let err = recover(&*vfs, dir.path(), CMP).unwrap_err();
    let (file, offset, reason) = corruption(&err);
    assert_eq!(file, dir.path().join("CURRENT"));
    assert_eq!(offset, 0);
    assert!(reason.contains("MANIFEST-000001"), "{reason}");
    assert!(reason.contains("tables"), "{reason}");

    // A damaged manifest without CURRENT: cannot tell, so corruption naming CURRENT.
    let dir2 = TempDir::new("nocurrent2");
    write_manifest(dir2.path(), 1, 12);
    std::fs::remove_file(dir2.path().join("CURRENT")).unwrap();
    let p = dir2.path().join("MANIFEST-000001");
    let mut b = std::fs::read(&p).unwrap();
    b[0] ^= 1;
    std::fs::write(&p, b).unwrap();
    let err = recover(&*vfs, dir2.path(), CMP).unwrap_err();
    assert_eq!(corruption(&err).0, dir2.path().join("CURRENT"));
}

#[test]
fn bad_current_contents_are_corruption_naming_current() {
    let dir = TempDir::new("badcurrent");
    write_manifest(dir.path(), 1, 13);
    let current = dir.path().join("CURRENT");
    for (contents, offset) in [
        (&b"MANIFEST-000001"[..], 15),
        (b"", 0),
        (b"MANIFEST-000001\nMANIFEST-000001\n", 16),
        (b"MANIFEST-1\n", 9),
        (b"manifest-000001\n", 0),
        (b"MANIFEST-0000x1\n", 13),
        (b"MANIFEST-000001 \n", 15),
        (&[0xffu8; 64][..], 64),
    ] {
        std::fs::write(&current, contents).unwrap();
        let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
        let (file, at, reason) = corruption(&err);
        assert_eq!(file, current, "{contents:?}");
        assert_eq!(at, offset, "{contents:?}: {reason}");
    }
    // Too long to be a CURRENT at all.
    std::fs::write(&current, vec![b'M'; 65]).unwrap();
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    assert_eq!(corruption(&err).0, current);
    // Names a manifest that does not exist.
    std::fs::write(&current, b"MANIFEST-000002\n").unwrap();
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (file, at, reason) = corruption(&err);
    assert_eq!((file, at), (current.as_path(), 0));
    assert!(reason.contains("MANIFEST-000002"), "{reason}");
    assert!(reason.contains("does not exist"), "{reason}");
    // The display names the file and the offset.
    let text = err.to_string();
    assert!(
        text.contains("CURRENT") && text.contains("byte 0"),
        "{text}"
    );
}

#[test]
fn comparator_mismatch_is_corruption_at_the_snapshot() {
    let dir = TempDir::new("cmp");
    write_manifest(dir.path(), 1, 14);
    let err = recover(&*portable(), dir.path(), "uringdb.bytewise").unwrap_err();
    let (file, at, reason) = corruption(&err);
    assert_eq!(file, dir.path().join("MANIFEST-000001"));
    assert_eq!(at, MANIFEST_HEADER_BYTES as u64);
    assert!(reason.contains("comparator"), "{reason}");
}
