//! Damage in the middle of the last segment.

use super::common::*;
use super::damage::*;
use uringdb_wal::Wal;

/// A 30-record log; the frame of seq 12 is the one damaged.
fn mid_log() -> (TempDir, Vec<Vec<u8>>, FrameAt) {
    let src = TempDir::new("mid-src");
    let recs = small_records(30);
    write_log(src.path(), &recs, None);
    let f = frames(&seg_path(src.path(), 1))[11];
    assert_eq!(f.seq, 12);
    (src, recs, f)
}

/// Strict mode: every bit flip of a frame followed by valid frames is an error naming the
/// segment and exactly the damaged frame's offset (and nothing is cut).
#[test]
fn mid_log_bit_flip_strict_names_file_and_frame_offset() {
    let (src, _recs, f) = mid_log();
    let pristine = Pristine::of(src.path());
    let d = pristine.restore("mid-strict");
    let seg = seg_path(d.path(), 1);
    for bit in 0..f.total * 8 {
        flip_bit(&seg, f.offset + bit as u64 / 8, bit as u32 % 8);
        expect_corruption(
            Wal::open(d.path(), &strict()),
            &seg,
            f.offset,
            &format!("bit {bit}"),
        );
        flip_bit(&seg, f.offset + bit as u64 / 8, bit as u32 % 8); // undo
    }
    // A failed open changed nothing.
    assert_eq!(std::fs::read(&seg).unwrap(), pristine.0[0].1);
    // A zeroed frame (a lost sector) and a zeroed header only: the same.
    for (what, len) in [("frame", f.total), ("header", 16)] {
        let d = pristine.restore("mid-zero");
        let seg = seg_path(d.path(), 1);
        zero_range(&seg, f.offset, len);
        expect_corruption(Wal::open(d.path(), &strict()), &seg, f.offset, what);
    }
}

/// Tolerant mode cuts at the damaged frame, keeps the records before it, reports what it
/// cut, and the log accepts appends that survive a (strict) reopen.
#[test]
fn mid_log_damage_tolerant_cuts_there_and_goes_on() {
    let (src, recs, f) = mid_log();
    let pristine = Pristine::of(src.path());
    let cases: [(&str, Damage); 4] = [
        (
            "payload bit",
            Box::new(move |p| flip_bit(p, f.offset + 16, 3)),
        ),
        ("word0 bit", Box::new(move |p| flip_bit(p, f.offset + 1, 0))),
        ("seq bit", Box::new(move |p| flip_bit(p, f.offset + 8, 0))),
        (
            "zeroed frame",
            Box::new(move |p| zero_range(p, f.offset, f.total)),
        ),
    ];
    for (what, damage) in cases {
        let d = pristine.restore("mid-tol");
        let seg = seg_path(d.path(), 1);
        damage(&seg);
        let expect_cut = nonzero_end(&seg, f.offset) - f.offset;
        {
            let (wal, rep) = open(d.path(), &tolerant());
            assert_eq!(rep.last_seq, 11, "{what}");
            assert_eq!(rep.truncated_bytes, expect_cut, "{what}");
            assert!(rep.truncated_bytes > 0, "{what}");
            assert_records(&wal, &recs[..11]);
            append_one(&wal, b"after tolerant recovery", 12);
            wal.close().unwrap();
        }
        let (wal, rep) = open(d.path(), &strict());
        assert_eq!((rep.last_seq, rep.truncated_bytes), (12, 0), "{what}");
        let mut expect = recs[..11].to_vec();
        expect.push(b"after tolerant recovery".to_vec());
        assert_records(&wal, &expect);
    }
}
