//! The last segment's tail.

use super::common::*;
use super::damage::*;
use uringdb_wal::format::Kind;
use uringdb_wal::{Wal, WalError};

/// Cutting the last record at every byte: recovery cuts exactly the torn frame (reporting
/// the non-zero bytes it removed), keeps everything before, and the log goes on from there
/// (the next append takes the cut record's sequence number and survives a reopen).
#[test]
fn torn_tail_cut_at_every_byte_of_the_last_record() {
    let src = TempDir::new("torn-src");
    let mut recs = small_records(20);
    recs.push(nonzero_payload(13, 0x5A)); // seq 21: a 16 + 13 byte frame (+ 3 padding)
    write_log(src.path(), &recs, None);
    let seg = seg_path(src.path(), 1);
    let last = *frames(&seg).last().unwrap();
    assert_eq!(last.seq, 21);
    let frame_bytes = std::fs::read(&seg).unwrap()
        [last.offset as usize..last.offset as usize + last.total]
        .to_vec();
    let pristine = Pristine::of(src.path());
    for k in 0..last.used {
        let d = pristine.restore("torn");
        let seg = seg_path(d.path(), 1);
        zero_from(&seg, last.offset + k as u64);
        // What the cut removes: the frame's bytes before k, up to the last non-zero one.
        let expect_cut = frame_bytes[..k]
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i as u64 + 1);
        {
            let (wal, rep) = open(d.path(), &strict());
            assert_eq!(rep.last_seq, 20, "cut at byte {k}");
            assert_eq!(rep.truncated_bytes, expect_cut, "cut at byte {k}");
            if k > 0 {
                assert!(rep.truncated_bytes > 0, "cut at byte {k}");
            }
            assert_records(&wal, &recs[..20]);
            append_one(&wal, b"after the cut", 21);
            wal.close().unwrap();
        }
        // That the appended record survives a reopen: checked at a sample of cuts (every
        // reopen costs a segment preparation), the first, inside each header field, the
        // first payload byte and the last.
        if ![0, 1, 4, 8, 15, 16, last.used - 1].contains(&k) {
            continue;
        }
        let (wal, rep) = open(d.path(), &strict());
        assert_eq!(
            (rep.last_seq, rep.truncated_bytes),
            (21, 0),
            "cut at byte {k}"
        );
        let mut expect = recs[..20].to_vec();
        expect.push(b"after the cut".to_vec());
        assert_records(&wal, &expect);
        append_one(&wal, b"and one more", 22);
    }
}

/// A log whose last record (returned) is a complete frame with non-zero data in its one
/// sector, followed by never-written zeros.
fn log_with_complete_last_record(tag: &str) -> (TempDir, Vec<Vec<u8>>, FrameAt) {
    for n in 20..60 {
        let src = TempDir::new(tag);
        let mut recs = small_records(n);
        recs.push(nonzero_payload(5, 0x3C)); // 16 + 5 bytes + 3 padding
        write_log(src.path(), &recs, None);
        let last = *frames(&seg_path(src.path(), 1)).last().unwrap();
        // Header and payload in one 512-byte sector, so that every flip leaves it non-zero.
        if last.offset / 512 == (last.offset + last.used as u64 - 1) / 512 {
            return (src, recs, last);
        }
    }
    unreachable!("some record count places the last frame inside one sector");
}

/// Flips every bit of the complete last record, one at a time, and checks strict and
/// tolerant recovery. `crashed`: the MARK a clean close leaves behind the last group is
/// removed first, as if the process had died after its last write.
///
/// After a clean close the close MARK claims every record durable, so every flip is
/// damage. Without it, the frame itself must show that it was written whole: a flip that
/// leaves it looking like a torn write (its claimed header + payload ending in a zero
/// byte, or reaching into a later, never-written sector — see `torn_possible`) is cut.
fn flip_every_bit_of_complete_last_record(tag: &str, crashed: bool) {
    let (src, recs, last) = log_with_complete_last_record(tag);
    let n = recs.len() - 1;
    let seg = seg_path(src.path(), 1);
    let close_mark = *all_frames(&seg).last().unwrap();
    assert_eq!(
        (close_mark.kind, close_mark.seq, close_mark.offset),
        (Kind::Mark, n as u64 + 1, last.offset + last.total as u64),
        "a clean close leaves a MARK claiming every record"
    );
    if crashed {
        zero_range(&seg, close_mark.offset, close_mark.total);
    }
    let pristine = Pristine::of(src.path());
    let (mut corrupt, mut torn) = (0, 0);
    for bit in 0..last.total * 8 {
        let d = pristine.restore(tag);
        let seg = seg_path(d.path(), 1);
        flip_bit(&seg, last.offset + bit as u64 / 8, bit as u32 % 8);
        let bytes = std::fs::read(&seg).unwrap();
        let at = last.offset as usize;
        let claimed_len =
            (u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) & ((1 << 27) - 1)) as usize;
        let claimed_end = at + 16 + claimed_len;
        let looks_torn = bit < 27
            && (claimed_end > bytes.len()
                || bytes[claimed_end - 1] == 0
                || (claimed_end - 1) / 512 > at / 512);
        if crashed && looks_torn {
            let (wal, rep) = open(d.path(), &strict());
            assert_eq!(rep.last_seq, n as u64, "bit {bit}");
            assert!(rep.truncated_bytes > 0, "bit {bit}");
            assert_records(&wal, &recs[..n]);
            torn += 1;
            continue;
        }
        expect_corruption(
            Wal::open(d.path(), &strict()),
            &seg,
            last.offset,
            &format!("bit {bit}"),
        );
        assert_eq!(
            std::fs::read(&seg).unwrap(),
            bytes,
            "bit {bit}: strict cuts nothing"
        );
        let (wal, rep) = open(d.path(), &tolerant());
        assert_eq!(
            rep.last_seq, n as u64,
            "bit {bit}: tolerant cuts the damaged record"
        );
        assert_records(&wal, &recs[..n]);
        corrupt += 1;
    }
    assert_eq!(corrupt + torn, last.total * 8);
    if crashed {
        // Payload bits, checksum and sequence fields, kind bits: damage.
        assert!(torn > 0 && corrupt >= 100, "{corrupt} corrupt, {torn} torn");
    } else {
        assert_eq!(torn, 0);
    }
}

/// Issue 8, finding 5c: bit rot in the last record used to be cut as a torn tail, even in
/// strict mode, silently dropping an acknowledged record.
#[test]
fn bit_flip_in_last_record_after_clean_close_is_corruption() {
    flip_every_bit_of_complete_last_record("flip-closed", false);
}

/// The same after a crash (no close MARK): a frame with data in every sector and a
/// non-zero last byte was written whole, so a bad checksum there is damage too.
#[test]
fn bit_flip_in_complete_last_record_after_crash_is_corruption_not_a_torn_tail() {
    flip_every_bit_of_complete_last_record("flip-crashed", true);
}

/// Issue 8, finding 3: within one commit group the pages may persist in any order. A group
/// whose first 4 KiB page was lost while its second page persisted used to fail strict
/// recovery ("BadCrc ... followed by a valid record"). Its MARK (or the previous group's
/// state) claims nothing durable beyond the records before the hole: a torn tail.
#[test]
fn group_whose_first_page_was_lost_but_second_kept_is_a_torn_tail() {
    let src = TempDir::new("pages-src");
    let first = small_records(10);
    write_log(src.path(), &first, None);
    // One more group, spanning several pages, written by a second open.
    let big: Vec<Vec<u8>> = (0..40).map(|i| nonzero_payload(300, i as u8)).collect();
    {
        let (wal, _) = open(src.path(), &strict());
        let (p, sink) = producer(&wal);
        let refs: Vec<&[u8]> = big.iter().map(|r| &r[..]).collect();
        p.append_many(&refs[..20], false).unwrap();
        p.append_many(&refs[20..], true).unwrap();
        sink.wait(40);
        wal.close().unwrap();
    }
    let seg = seg_path(src.path(), 1);
    remove_close_mark(&seg); // as if the process died after the write
    let recs = frames(&seg);
    let group_start = recs[10].offset; // record 11: the second open's first record
    let metas: Vec<FrameAt> = all_frames(&seg)
        .into_iter()
        .filter(|f| f.kind == Kind::Mark && f.offset < group_start)
        .collect();
    let mark = *metas.last().expect("the group's mark");
    assert!(
        mark.seq <= 10,
        "the mark claims at most the first open's records"
    );
    // Zero the page holding the group's start; keep the next page (which holds later frames
    // of the same group).
    let page = mark.offset / 4096 * 4096;
    assert!(
        recs.last().unwrap().offset > page + 4096,
        "the group spans pages"
    );
    zero_range(
        &seg,
        page.max(mark.offset),
        (page + 4096 - mark.offset.max(page)) as usize,
    );
    let (wal, rep) = open(src.path(), &strict());
    assert!(rep.last_seq <= 10, "{rep:?}");
    assert!(rep.truncated_bytes > 0, "{rep:?}");
    let all = read_all(&wal).unwrap();
    assert_eq!(all.len() as u64, rep.last_seq);
    for (i, (_, data)) in all.iter().enumerate() {
        assert_eq!(data, &first[i]);
    }
}

/// The other side of the rule: a hole in a group that a later group's MARK claims durable
/// is damage to durable data, reported in strict mode.
#[test]
fn hole_claimed_durable_by_a_later_mark_is_corruption() {
    let src = TempDir::new("witness-src");
    let recs = small_records(10);
    write_log(src.path(), &recs, None); // one group, synced
    {
        let (wal, _) = open(src.path(), &strict());
        append_one(&wal, b"a later, durable group", 11);
        wal.close().unwrap();
    }
    let seg = seg_path(src.path(), 1);
    remove_close_mark(&seg); // the witness below is the second group's own mark
    let victim = frames(&seg)[4]; // record 5
    assert!(
        all_frames(&seg)
            .iter()
            .any(|f| f.kind == Kind::Mark && f.offset > victim.offset && f.seq >= 10),
        "a later group's mark claims records 1..=10"
    );
    zero_range(&seg, victim.offset, victim.total);
    expect_corruption(
        Wal::open(src.path(), &strict()),
        &seg,
        victim.offset,
        "zeroed record 5 before a mark claiming 10",
    );
}

/// Issue 8, finding 5b: a missing last segment used to open silently, with the records in
/// it gone. Its predecessor is sealed once the new segment is in place, so the loss is
/// found and named.
#[test]
fn missing_last_segment_is_corruption_naming_it() {
    let (src, _recs) = multi_segment_log("missing-last", 800);
    let mut numbers: Vec<u64> = std::fs::read_dir(src.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            uringdb_wal::format::parse_segment_file_name(&name)
        })
        .collect();
    numbers.sort_unstable();
    assert!(numbers.len() >= 2, "{numbers:?}");
    let last = *numbers.last().unwrap();
    // Every segment but the last ends with its seal.
    for &n in &numbers[..numbers.len() - 1] {
        let seal = all_frames(&seg_path(src.path(), n)).pop().unwrap();
        assert_eq!(seal.kind, Kind::Seal, "segment {n}");
    }
    std::fs::remove_file(seg_path(src.path(), last)).unwrap();
    match Wal::open(src.path(), &strict()) {
        Err(WalError::Corruption {
            file,
            offset,
            reason,
        }) => {
            assert_eq!(file, seg_path(src.path(), last), "{reason}");
            assert_eq!(offset, 0);
            assert!(reason.contains("missing"), "{reason}");
        }
        other => panic!("expected Corruption naming the missing segment, got {other:?}"),
    }
    // Tolerant recovery does not paper over a missing file either.
    assert!(matches!(
        Wal::open(src.path(), &tolerant()),
        Err(WalError::Corruption { .. })
    ));
}
