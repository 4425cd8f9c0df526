//! Corruption of the manifest file.

use std::path::Path;

use super::common::TempDir;
use super::helpers::*;
use uringdb_lsm::manifest::{recover, TreeEdit, VersionEdit, MANIFEST_HEADER_BYTES};

/// Appends a raw record (valid length and checksum) holding `payload`.
fn append_raw_record(path: &Path, payload: &[u8]) -> u64 {
    let mut b = std::fs::read(path).unwrap();
    let at = b.len() as u64;
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    b.extend_from_slice(&len);
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(payload);
    std::fs::write(path, b).unwrap();
    at
}

#[test]
fn every_flipped_bit_is_corruption_at_the_damage_or_a_cut_final_record() {
    let dir = TempDir::new("bits");
    let (states, bounds) = write_manifest(dir.path(), 3, 15);
    let path = dir.path().join("MANIFEST-000001");
    let good = std::fs::read(&path).unwrap();
    assert_eq!(good.len() as u64, *bounds.last().unwrap());
    let last = bounds.len() - 2; // index of the last record
    let (mut corrupt, mut cut) = (0, 0);
    for byte in 0..good.len() {
        // The region holding this byte: the header, or record r in [bounds[r], bounds[r+1]).
        let (lo, hi, record) = if byte < MANIFEST_HEADER_BYTES {
            (0, MANIFEST_HEADER_BYTES as u64, None)
        } else {
            let r = bounds
                .windows(2)
                .position(|w| (byte as u64) < w[1])
                .unwrap();
            (bounds[r], bounds[r + 1], Some(r))
        };
        for bit in 0..8 {
            let mut b = good.clone();
            b[byte] ^= 1 << bit;
            std::fs::write(&path, &b).unwrap();
            match recover(&*portable(), dir.path(), CMP) {
                Err(e) => {
                    let (file, at, reason) = corruption(&e);
                    assert_eq!(file, path, "byte {byte} bit {bit}");
                    assert!(
                        (lo..hi).contains(&at),
                        "byte {byte} bit {bit}: offset {at} outside [{lo}, {hi}): {reason}"
                    );
                    corrupt += 1;
                }
                Ok(r) => {
                    let r = r.expect("a database");
                    assert_eq!(
                        record,
                        Some(last),
                        "byte {byte} bit {bit}: damage silently accepted"
                    );
                    assert_eq!(r.state, states[last - 1], "byte {byte} bit {bit}");
                    assert_eq!(r.edits, last as u64);
                    assert_eq!(r.torn_tail_bytes, hi - lo);
                    cut += 1;
                }
            }
        }
    }
    assert_eq!(corrupt + cut, good.len() * 8);
    assert!(cut > 0 && corrupt > cut, "corrupt {corrupt}, cut {cut}");
}

#[test]
fn truncation_cuts_a_torn_final_record_but_never_the_snapshot() {
    let dir = TempDir::new("truncate");
    let (states, bounds) = write_manifest(dir.path(), 4, 16);
    let path = dir.path().join("MANIFEST-000001");
    let good = std::fs::read(&path).unwrap();
    for len in 0..good.len() {
        std::fs::write(&path, &good[..len]).unwrap();
        let result = recover(&*portable(), dir.path(), CMP);
        if (len as u64) < bounds[1] {
            let e = result.unwrap_err();
            let (file, at, reason) = corruption(&e);
            assert_eq!(file, path);
            assert!(at <= bounds[0], "len {len}: offset {at}: {reason}");
            continue;
        }
        let r = result.unwrap().unwrap();
        // The records that fit whole.
        let whole = bounds.iter().filter(|&&b| b <= len as u64).count() - 1;
        assert_eq!(r.state, states[whole - 1], "len {len}");
        assert_eq!(r.edits, whole as u64);
        assert_eq!(r.torn_tail_bytes, len as u64 - bounds[whole]);
    }
}

#[test]
fn trailing_zeros_and_garbage_are_a_torn_tail_unless_data_follows() {
    let dir = TempDir::new("tail");
    let (states, bounds) = write_manifest(dir.path(), 2, 17);
    let path = dir.path().join("MANIFEST-000001");
    let good = std::fs::read(&path).unwrap();
    let end = *bounds.last().unwrap();
    for tail in [vec![0u8; 1], vec![0u8; 7], vec![0u8; 8], vec![0u8; 4096], {
        let mut rng = Rng::new(5);
        rng.bytes(300).into_iter().chain([1]).collect()
    }] {
        let mut b = good.clone();
        b.extend_from_slice(&tail);
        std::fs::write(&path, &b).unwrap();
        let r = recovered(dir.path());
        assert_eq!(&r.state, states.last().unwrap());
        assert_eq!(r.torn_tail_bytes, tail.len() as u64);
    }
    // Zeros, then an intact record: that record was acknowledged, so the zeros are damage.
    let mut b = good.clone();
    b.extend_from_slice(&[0u8; 16]);
    std::fs::write(&path, &b).unwrap();
    let mut payload = Vec::new();
    VersionEdit::default().encode(&mut payload);
    append_raw_record(&path, &payload);
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (_, at, reason) = corruption(&err);
    assert_eq!(at, end);
    assert!(reason.contains("followed by an intact record"), "{reason}");
}

#[test]
fn intact_records_that_do_not_decode_or_apply_are_corruption_at_the_record() {
    let dir = TempDir::new("badedit");
    let (_, _) = write_manifest(dir.path(), 1, 18);
    let path = dir.path().join("MANIFEST-000001");
    let good = std::fs::read(&path).unwrap();

    let at = append_raw_record(&path, &[42, 0]);
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (_, off, reason) = corruption(&err);
    assert_eq!(off, at);
    assert!(
        reason.contains("does not decode") && reason.contains("tag 42"),
        "{reason}"
    );

    std::fs::write(&path, &good).unwrap();
    let mut payload = Vec::new();
    VersionEdit {
        deleted: vec![(5, 12345)],
        ..Default::default()
    }
    .encode(&mut payload);
    let at = append_raw_record(&path, &payload);
    // Followed by a valid edit: still reported at the bad one.
    append_raw_record(&path, &[]);
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (_, off, reason) = corruption(&err);
    assert_eq!(off, at);
    assert!(reason.contains("does not apply"), "{reason}");
}

#[test]
fn the_first_record_must_be_a_snapshot() {
    let dir = TempDir::new("nosnapshot");
    write_manifest(dir.path(), 0, 19);
    let path = dir.path().join("MANIFEST-000001");
    let mut b = std::fs::read(&path).unwrap();
    b.truncate(MANIFEST_HEADER_BYTES);
    std::fs::write(&path, &b).unwrap();
    // Header only: the snapshot is missing.
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    assert_eq!(corruption(&err).1, MANIFEST_HEADER_BYTES as u64);
    // A first record without the comparator is not a snapshot.
    let mut payload = Vec::new();
    VersionEdit {
        next_file_number: Some(5),
        ..Default::default()
    }
    .encode(&mut payload);
    append_raw_record(&path, &payload);
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (_, at, reason) = corruption(&err);
    assert_eq!(at, MANIFEST_HEADER_BYTES as u64);
    assert!(reason.contains("snapshot"), "{reason}");
}

#[test]
fn a_manifest_named_by_current_must_have_the_number_of_its_name() {
    let dir = TempDir::new("renamed");
    write_manifest(dir.path(), 1, 20);
    std::fs::rename(
        dir.path().join("MANIFEST-000001"),
        dir.path().join("MANIFEST-000009"),
    )
    .unwrap();
    std::fs::write(dir.path().join("CURRENT"), b"MANIFEST-000009\n").unwrap();
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (file, at, _) = corruption(&err);
    assert_eq!(file, dir.path().join("MANIFEST-000009"));
    assert_eq!(at, 16);
}

/// Stream-tree fields (tags 8–10) in a version-1 manifest, a tree id other than the stream
/// tree's, and a stream-tree edit that does not apply are corruption at the record.
#[test]
fn stream_tree_fields_are_checked_at_the_record() {
    let dir = TempDir::new("tree");
    let (_, _) = write_manifest(dir.path(), 1, 19);
    let path = dir.path().join("MANIFEST-000001");
    let good = std::fs::read(&path).unwrap();
    assert_eq!(good[8..12], 1u32.to_le_bytes());
    let stream_edit = |deleted: Vec<(u32, u64)>| {
        let mut payload = Vec::new();
        VersionEdit {
            streams: TreeEdit {
                deleted,
                compact_pointers: vec![(0, ik(b"\x01s\0", 1))],
                ..Default::default()
            },
            ..Default::default()
        }
        .encode(&mut payload);
        payload
    };
    let at = append_raw_record(&path, &stream_edit(Vec::new()));
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (_, off, reason) = corruption(&err);
    assert_eq!(off, at);
    assert!(
        reason.contains("version-1 manifest holds stream-tree fields"),
        "{reason}"
    );

    // The same manifest at version 2 reads it; an unknown tree or a stream-tree deletion
    // of a file the stream tree does not hold is corruption there too.
    let mut v2 = good.clone();
    v2[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32c::crc32c(&v2[0..24]);
    v2[24..28].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &v2).unwrap();
    append_raw_record(&path, &stream_edit(Vec::new()));
    let r = recover(&*portable(), dir.path(), CMP).unwrap().unwrap();
    assert_eq!(r.state.streams.compact_pointers[0], ik(b"\x01s\0", 1));
    for (payload, needle) in [
        (vec![10u8, 2, 0, 0], "unknown tree 2"),
        (vec![9u8, 0, 0, 1], "unknown tree 0"),
        (
            stream_edit(vec![(0, 1)]),
            "from stream tree level 0, which does not hold it",
        ),
    ] {
        std::fs::write(&path, &v2).unwrap();
        let at = append_raw_record(&path, &payload);
        let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
        let (_, off, reason) = corruption(&err);
        assert_eq!(off, at);
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
}
