//! Atomic batches and prepared segments.

use super::common::*;
use super::damage::*;
use std::path::Path;
use uringdb_wal::format::{encode_frame, Kind, SegmentHeader};
use uringdb_wal::Wal;

/// 5 single records, then one `append_many` of 10: whatever part of the batch's tail is
/// missing (its LAST frame zeroed, or the log cut at any frame of the batch or inside the
/// LAST frame), recovery drops the whole batch and keeps the 5 records.
#[test]
fn incomplete_batch_at_tail_is_dropped_whole() {
    let src = TempDir::new("batch-src");
    let recs = small_records(15);
    write_log(src.path(), &recs, Some(5..15));
    let fs = frames(&seg_path(src.path(), 1));
    assert_eq!(fs.len(), 15);
    assert_eq!(fs[5].kind, Kind::First);
    assert!(fs[6..14].iter().all(|f| f.kind == Kind::Middle));
    assert_eq!(fs[14].kind, Kind::Last);
    let first = fs[5].offset;
    let last = fs[14];
    remove_close_mark(&seg_path(src.path(), 1)); // torn tails happen in crashes
    let pristine = Pristine::of(src.path());
    let mut cases: Vec<(String, Damage)> = vec![(
        "LAST frame zeroed".into(),
        Box::new(move |p: &Path| zero_range(p, last.offset, last.total)),
    )];
    for f in &fs[6..] {
        let at = f.offset;
        cases.push((
            format!("cut at seq {}", f.seq),
            Box::new(move |p: &Path| zero_from(p, at)),
        ));
    }
    for k in [1u64, 8, 16, 20] {
        cases.push((
            format!("LAST cut at byte {k}"),
            Box::new(move |p: &Path| zero_from(p, last.offset + k)),
        ));
    }
    for (what, damage) in cases {
        let d = pristine.restore("batch");
        let seg = seg_path(d.path(), 1);
        damage(&seg);
        let expect_cut = nonzero_end(&seg, first) - first;
        {
            let (wal, rep) = open(d.path(), &strict());
            assert_eq!(rep.last_seq, 5, "{what}");
            assert_eq!(rep.truncated_bytes, expect_cut, "{what}");
            assert!(rep.truncated_bytes > 0, "{what}");
            assert_records(&wal, &recs[..5]);
            append_one(&wal, b"after the batch", 6);
            wal.close().unwrap();
        }
        // The group of the record appended as seq 6 (its MARK, then the record) starts
        // where the batch did; nothing follows it.
        let now = frames(&seg);
        assert_eq!(now.len(), 6, "{what}");
        let f6 = now[5];
        assert_eq!(
            (f6.seq, f6.kind, f6.offset),
            (6, Kind::Full, first + 16),
            "{what}"
        );
        let mark = all_frames(&seg)
            .into_iter()
            .find(|f| f.offset == first)
            .unwrap();
        assert_eq!((mark.kind, mark.seq), (Kind::Mark, 5), "{what}");
        // Behind it only the MARK of the clean close, then zeros.
        let end = f6.offset + f6.total as u64;
        let close = *all_frames(&seg).last().unwrap();
        assert_eq!(
            (close.kind, close.seq, close.offset),
            (Kind::Mark, 6, end),
            "{what}"
        );
        assert_eq!(
            nonzero_end(&seg, end + 16),
            end + 16,
            "{what}: nothing of the batch is left"
        );
        let (wal, _) = open(d.path(), &strict());
        let mut expect = recs[..5].to_vec();
        expect.push(b"after the batch".to_vec());
        assert_records(&wal, &expect);
    }
}

/// `N.wal.prep` files were never renamed into use, so their records were never
/// acknowledged: open removes them (even one holding a valid header and valid frames that
/// continue the log), never shows their records, and later rolls work.
#[test]
fn leftover_prepared_segments_are_removed_at_open() {
    let d = TempDir::new("prep");
    let recs = small_records(10);
    write_log(d.path(), &recs, None);
    // A crash between writing segment 2's first group and renaming it into place.
    let mut bytes = SegmentHeader {
        number: 2,
        first_seq: 11,
    }
    .encode()
    .to_vec();
    for seq in 11..=13 {
        encode_frame(&mut bytes, Kind::Full, seq, b"never acknowledged", true);
    }
    bytes.resize(1 << 20, 0);
    let prep2 = d.path().join("000000000002.wal.prep");
    let prep9 = d.path().join("000000000009.wal.prep");
    std::fs::write(&prep2, &bytes).unwrap();
    std::fs::write(&prep9, b"junk").unwrap();
    let (wal, rep) = open(d.path(), &strict());
    assert_eq!(rep.removed_prepared, 2);
    assert_eq!(
        (rep.segments, rep.last_seq, rep.truncated_bytes),
        (1, 10, 0)
    );
    assert!(!prep9.exists());
    assert_records(&wal, &recs);
    // Roll into segment 2 (a freshly prepared one) and beyond.
    let (p, sink) = producer(&wal);
    let big = nonzero_payload(3000, 7);
    for _ in 0..700 {
        p.append(&big, false).unwrap();
    }
    p.sync().unwrap();
    let out = sink.wait(701);
    assert_eq!(out[0], Outcome::Ok(11));
    assert_eq!(out[699], Outcome::Ok(710));
    wal.close().unwrap();
    drop(wal);
    let (wal, rep) = open(d.path(), &strict());
    assert!(rep.segments >= 3, "{rep:?}");
    let mut expect = recs.clone();
    expect.extend((0..700).map(|_| big.clone()));
    assert_records(&wal, &expect);
}

/// Version 1 segments (written before MARK and SEAL existed) carry no witnesses, so a hole
/// followed by a valid record stays corruption there, while the same bytes under a version
/// 2 header are a torn tail (nothing claims the hole durable).
#[test]
fn hole_rule_follows_the_segment_version() {
    for version in [1u32, 2] {
        let dir = TempDir::new(&format!("version-{version}"));
        let mut bytes = SegmentHeader {
            number: 1,
            first_seq: 1,
        }
        .encode()
        .to_vec();
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32c_of(&bytes[0..32]);
        bytes[32..36].copy_from_slice(&crc.to_le_bytes());
        let recs = small_records(10);
        let mut offsets = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            offsets.push(bytes.len() as u64);
            encode_frame(&mut bytes, Kind::Full, i as u64 + 1, r, true);
        }
        let hole = offsets[4];
        let end = offsets[5] as usize;
        bytes[hole as usize..end].fill(0);
        bytes.resize(small_options().segment_bytes as usize, 0);
        let seg = seg_path(dir.path(), 1);
        std::fs::write(&seg, &bytes).unwrap();
        if version == 1 {
            expect_corruption(Wal::open(dir.path(), &strict()), &seg, hole, "v1");
        } else {
            let (wal, rep) = open(dir.path(), &strict());
            assert_eq!(rep.last_seq, 4);
            assert_records(&wal, &recs[..4]);
        }
    }
}

/// CRC32C (Castagnoli), bitwise: the test's own, independent of the crate's.
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
