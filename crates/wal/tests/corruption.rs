//! Every corruption case of the segment format (`format.rs`) against what recovery
//! (`recovery.rs`) and the reader promise, through the public API: write a log with the real
//! backend, close it, damage the files with `std::fs`, reopen.
//!
//! | damage                                         | promise                                      |
//! |------------------------------------------------|----------------------------------------------|
//! | last record cut at any byte (torn tail)        | cut, earlier records intact, appends go on   |
//! | a bit of a complete last record flipped        | strict: Corruption(file, frame offset) — bit |
//! |                                                | rot is not a torn write; tolerant: cut       |
//! | a length bit flipped so the frame runs into    | cut as a torn tail (indistinguishable from a |
//! |   never-written zeros                          | longer frame whose last sector was lost)     |
//! | a commit group's first page lost, a later one  | a torn tail: cut (its MARK claims nothing    |
//! |   kept (pages persisted out of order)          | durable beyond the records before it)        |
//! | a hole in a group, a later group's MARK        | strict: Corruption at the hole               |
//! |   claiming the hole durable                    |                                              |
//! | the last segment file missing (its             | Corruption naming the missing file           |
//! |   predecessor is sealed)                       |                                              |
//! | a frame damaged, valid frames after it         | strict: Corruption(file, frame offset);      |
//! |   (last segment)                               | tolerant: cut there, appends go on           |
//! | a frame damaged in a sealed segment            | open succeeds; reads across it: Corruption   |
//! |                                                | naming that file and frame; never wrong data |
//! | a middle segment file missing                  | Corruption naming the missing file           |
//! | any header bit of any segment flipped          | Corruption at offset 0                       |
//! | header number / first_seq inconsistent         | Corruption at offset 16 / 24                 |
//! | an atomic batch whose tail frames are missing  | the whole batch is dropped                   |
//! | leftover `N.wal.prep` files                    | removed at open, their records never visible |
mod common;
use common::*;
use std::path::{Path, PathBuf};
use uringdb_wal::format::{
    decode_frame, encode_frame, segment_file_name, FrameError, Kind, SegmentHeader,
    SEGMENT_HEADER_BYTES,
};
use uringdb_wal::{RecoveryMode, RecoveryReport, Wal, WalError, WalOptions};

// ---------------------------------------------------------------------------------------
// Helpers: building a log, locating frames, damaging files.
// ---------------------------------------------------------------------------------------

fn seg_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(segment_file_name(number))
}

/// One frame as found in a segment file.
#[derive(Clone, Copy, Debug)]
struct FrameAt {
    offset: u64,
    seq: u64,
    kind: Kind,
    /// Header + payload, without padding.
    used: usize,
    /// Header + payload + padding.
    total: usize,
}

/// Parses a segment file frame by frame from the end of its header to the first zero word,
/// and returns its record frames; any other decoding error is a bug in the test (it parses
/// undamaged files only).
fn frames(path: &Path) -> Vec<FrameAt> {
    all_frames(path)
        .into_iter()
        .filter(|f| f.kind.is_on_disk())
        .collect()
}

/// Like [`frames`], with the meta frames (MARK, SEAL) too.
fn all_frames(path: &Path) -> Vec<FrameAt> {
    let bytes = std::fs::read(path).unwrap();
    let mut off = SEGMENT_HEADER_BYTES;
    let mut out = Vec::new();
    loop {
        match decode_frame(&bytes[off..]) {
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

/// Writes `records` (seq 1, 2, ...) into a fresh log in `dir` and closes it. `batch` names a
/// range of indexes appended with one `append_many`.
fn write_log(dir: &Path, records: &[Vec<u8>], batch: Option<std::ops::Range<usize>>) {
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
fn remove_close_mark(path: &Path) {
    let last = *all_frames(path).last().unwrap();
    assert_eq!(last.kind, Kind::Mark, "{}: no close mark", path.display());
    zero_range(path, last.offset, last.total);
}

/// The segment files of a log, to recreate it undamaged for each case.
struct Pristine(Vec<(String, Vec<u8>)>);

impl Pristine {
    fn of(dir: &Path) -> Pristine {
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

    fn restore(&self, tag: &str) -> TempDir {
        let d = TempDir::new(tag);
        for (name, bytes) in &self.0 {
            std::fs::write(d.path().join(name), bytes).unwrap();
        }
        d
    }
}

fn rewrite(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// One way of damaging a segment file.
type Damage = Box<dyn Fn(&Path)>;

/// Overwrites `[from, end of file)` with zeros: a cut (segments are preallocated).
fn zero_from(path: &Path, from: u64) {
    rewrite(path, |b| b[from as usize..].fill(0));
}

fn zero_range(path: &Path, from: u64, len: usize) {
    rewrite(path, |b| b[from as usize..from as usize + len].fill(0));
}

fn flip_bit(path: &Path, byte: u64, bit: u32) {
    rewrite(path, |b| b[byte as usize] ^= 1 << bit);
}

/// The end of the last non-zero byte at or after `from` (what a cut from `from` removes).
fn nonzero_end(path: &Path, from: u64) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    match bytes[from as usize..].iter().rposition(|&b| b != 0) {
        Some(i) => from + i as u64 + 1,
        None => from,
    }
}

fn strict() -> WalOptions {
    small_options()
}

fn tolerant() -> WalOptions {
    WalOptions {
        recovery: RecoveryMode::Tolerant,
        ..small_options()
    }
}

fn open(dir: &Path, o: &WalOptions) -> (Wal, RecoveryReport) {
    match Wal::open(dir, o) {
        Ok(x) => x,
        Err(e) => panic!("open of {} failed: {e}", dir.display()),
    }
}

/// Asserts that the log holds exactly `expect` (seq 1, 2, ...).
fn assert_records(wal: &Wal, expect: &[Vec<u8>]) {
    let all = read_all(wal).unwrap();
    assert_eq!(all.len(), expect.len(), "record count");
    for (i, (seq, data)) in all.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(data, &expect[i], "record {seq}");
    }
}

fn expect_corruption(
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
fn append_one(wal: &Wal, data: &[u8], seq: u64) {
    let (p, sink) = producer(wal);
    p.append(data, true).unwrap();
    assert_eq!(sink.wait(1)[0], Outcome::Ok(seq));
}

/// A payload without zero bytes, so that zeroing any byte of it is damage.
fn nonzero_payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37) ^ salt | 1)
        .collect()
}

fn small_records(n: u64) -> Vec<Vec<u8>> {
    (1..=n)
        .map(|i| nonzero_payload(10 + (i as usize * 7) % 40, i as u8))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The last segment's tail.
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Damage in the middle of the last segment.
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Sealed segments.
// ---------------------------------------------------------------------------------------

/// A log of `n` 3000-byte records over 1 MiB segments (about 340 records each).
fn multi_segment_log(tag: &str, n: u64) -> (TempDir, Vec<Vec<u8>>) {
    let src = TempDir::new(tag);
    let recs: Vec<Vec<u8>> = (1..=n).map(|i| nonzero_payload(3000, i as u8)).collect();
    write_log(src.path(), &recs, None);
    (src, recs)
}

/// Reads from `from` in batches of `per_call` records; returns the records read before the
/// first error, and the error.
fn read_until_error(
    wal: &Wal,
    from: u64,
    per_call: usize,
) -> (Vec<(u64, Vec<u8>)>, Option<WalError>) {
    let mut out = Vec::new();
    let mut cur = match wal.cursor(from) {
        Ok(c) => c,
        Err(e) => return (out, Some(e)),
    };
    loop {
        match wal.read(&mut cur, u64::MAX, per_call, 1 << 20) {
            Ok(b) if b.records.is_empty() => return (out, None),
            Ok(b) => {
                for (seq, start, len) in b.records {
                    out.push((seq, b.data[start..start + len].to_vec()));
                }
            }
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The log of the sealed-segment cases: 500 records over two segments; the frame of seq
/// 100 (in the sealed segment 1) is the one damaged.
fn sealed_log() -> (TempDir, Vec<Vec<u8>>, Vec<FrameAt>, u64) {
    let (src, recs) = multi_segment_log("sealed-src", 500);
    let seg1 = frames(&seg_path(src.path(), 1));
    let seg2_first = frames(&seg_path(src.path(), 2))[0].seq;
    assert!(
        seg2_first > 200 && seg2_first < 500,
        "two segments: {seg2_first}"
    );
    assert_eq!(seg1[99].seq, 100);
    (src, recs, seg1, seg2_first)
}

/// Reopens a damaged copy of the sealed-segment log and checks that open succeeds and that
/// every read across the frame at `bad` (in segment 1) fails with Corruption naming
/// segment 1 and that offset, after returning only right records; reads that do not cross
/// it work.
fn check_sealed_damage(
    what: &str,
    pristine: &Pristine,
    recs: &[Vec<u8>],
    bad: FrameAt,
    seg2_first: u64,
    damage: &dyn Fn(&Path),
) {
    let d = pristine.restore("sealed");
    let seg = seg_path(d.path(), 1);
    damage(&seg);
    let (wal, rep) = open(d.path(), &strict());
    assert_eq!((rep.last_seq, rep.truncated_bytes), (500, 0), "{what}");
    // Sequentially from the start, in several batch sizes.
    for per_call in [1usize, 7, 1000] {
        let (got, err) = read_until_error(&wal, 1, per_call);
        assert!(got.len() < bad.seq as usize, "{what}: read past the damage");
        for (seq, data) in &got {
            assert_eq!(data, &recs[*seq as usize - 1], "{what}: record {seq}");
        }
        expect_corruption(
            err.map_or(Ok(()), Err),
            &seg,
            bad.offset,
            &format!("{what}, sequential read ({per_call} per call)"),
        );
    }
    // Seeking to a record behind the damage within the same segment.
    let (got, err) = read_until_error(&wal, bad.seq + 1, 10);
    assert!(got.is_empty(), "{what}");
    expect_corruption(
        err.map_or(Ok(()), Err),
        &seg,
        bad.offset,
        &format!("{what}, seek"),
    );
    // Reads that do not cross the damage.
    let (got, _) = read_until_error(&wal, bad.seq - 10, 5);
    assert_eq!(
        got.len(),
        10,
        "{what}: the 10 records before the damage are readable"
    );
    let (got, err) = read_until_error(&wal, seg2_first, 100);
    assert!(err.is_none(), "{what}: {err:?}");
    assert_eq!(got.len() as u64, 500 - seg2_first + 1);
    for (seq, data) in &got {
        assert_eq!(data, &recs[*seq as usize - 1]);
    }
}

/// Damage in an older, sealed segment: open succeeds (only headers are checked there), and
/// any read across the damaged frame fails with Corruption naming that file and the
/// frame's offset. Records read before the error are the right ones; reads that do not
/// cross the damage work.
#[test]
fn damage_in_sealed_segment_is_found_by_reads() {
    let (src, recs, seg1, seg2_first) = sealed_log();
    let pristine = Pristine::of(src.path());
    let f = seg1[99];
    let cases: [(&str, Damage); 4] = [
        (
            "payload bit",
            Box::new(move |p| flip_bit(p, f.offset + 1000, 6)),
        ),
        ("crc bit", Box::new(move |p| flip_bit(p, f.offset + 5, 2))),
        ("seq bit", Box::new(move |p| flip_bit(p, f.offset + 8, 1))),
        (
            "length bit",
            Box::new(move |p| flip_bit(p, f.offset + 2, 4)),
        ),
    ];
    for (what, damage) in cases {
        check_sealed_damage(what, &pristine, &recs, f, seg2_first, &*damage);
    }
}

/// Bug: a zeroed frame (a lost sector) in a sealed segment is taken by the sequential
/// reader for the end of that segment, so the error names the *next* segment's header
/// ("segment starts at 348 but record 100 was expected", offset 24) instead of the
/// damaged segment and frame. Seeking across the same frame reports it correctly.
#[test]
fn regression_zeroed_frame_in_sealed_segment_is_reported_where_it_is() {
    let (src, recs, seg1, seg2_first) = sealed_log();
    let pristine = Pristine::of(src.path());
    let f = seg1[99];
    let tail = seg1[seg1.len() - 3];
    let cases: [(&str, FrameAt, Damage); 3] = [
        (
            "zeroed frame",
            f,
            Box::new(move |p| zero_range(p, f.offset, f.total)),
        ),
        (
            "zeroed header",
            f,
            Box::new(move |p| zero_range(p, f.offset, 16)),
        ),
        // The last three frames of the sealed segment lost.
        (
            "zeroed tail",
            tail,
            Box::new(move |p| zero_from(p, tail.offset)),
        ),
    ];
    for (what, bad, damage) in cases {
        check_sealed_damage(what, &pristine, &recs, bad, seg2_first, &*damage);
    }
}

/// Three segments, the middle one deleted: open fails naming the missing file.
#[test]
fn missing_middle_segment_is_corruption_naming_it() {
    let (src, _) = multi_segment_log("missing", 800);
    assert!(seg_path(src.path(), 3).exists(), "three segments");
    std::fs::remove_file(seg_path(src.path(), 2)).unwrap();
    expect_corruption(
        Wal::open(src.path(), &strict()),
        &seg_path(src.path(), 2),
        0,
        "missing segment 2",
    );
}

/// Any header bit of any segment (first, sealed middle, active last): Corruption at
/// offset 0. Headers that are self-consistent but name the wrong segment or a
/// non-increasing first sequence number: offset 16 or 24. Zeroed or short headers: 0.
#[test]
fn segment_header_damage_is_corruption_at_its_offset() {
    let (src, _) = multi_segment_log("header", 800);
    assert!(seg_path(src.path(), 3).exists(), "three segments");
    let pristine = Pristine::of(src.path());
    let d = pristine.restore("header-bits");
    for n in 1..=3u64 {
        let seg = seg_path(d.path(), n);
        // Bytes 36..40 are reserved and not covered by the header checksum.
        for bit in 0..36 * 8u64 {
            flip_bit(&seg, bit / 8, (bit % 8) as u32);
            expect_corruption(
                Wal::open(d.path(), &strict()),
                &seg,
                0,
                &format!("segment {n} bit {bit}"),
            );
            flip_bit(&seg, bit / 8, (bit % 8) as u32);
        }
    }
    drop(open(d.path(), &strict())); // undamaged again: opens
    let header = |path: &Path| SegmentHeader::decode(&std::fs::read(path).unwrap()).unwrap();
    let set_header = |path: &Path, h: SegmentHeader| {
        rewrite(path, |b| {
            b[..SEGMENT_HEADER_BYTES].copy_from_slice(&h.encode())
        })
    };
    for n in 1..=3u64 {
        // Wrong segment number (valid checksum).
        let d = pristine.restore("header-number");
        let seg = seg_path(d.path(), n);
        let h = header(&seg);
        set_header(
            &seg,
            SegmentHeader {
                number: n + 10,
                ..h
            },
        );
        expect_corruption(
            Wal::open(d.path(), &strict()),
            &seg,
            16,
            &format!("number of {n}"),
        );
        // Zeroed header; file shorter than a header.
        for (what, f) in [
            (
                "zeroed",
                Box::new(|b: &mut Vec<u8>| b[..SEGMENT_HEADER_BYTES].fill(0))
                    as Box<dyn Fn(&mut Vec<u8>)>,
            ),
            ("short", Box::new(|b: &mut Vec<u8>| b.truncate(20))),
            ("empty", Box::new(|b: &mut Vec<u8>| b.clear())),
        ] {
            let d = pristine.restore("header-zero");
            let seg = seg_path(d.path(), n);
            rewrite(&seg, f);
            expect_corruption(
                Wal::open(d.path(), &strict()),
                &seg,
                0,
                &format!("{what} header of {n}"),
            );
        }
    }
    for n in 2..=3u64 {
        // first_seq not above the previous segment's.
        let d = pristine.restore("header-first");
        let seg = seg_path(d.path(), n);
        let prev = header(&seg_path(d.path(), n - 1));
        let h = header(&seg);
        set_header(
            &seg,
            SegmentHeader {
                first_seq: prev.first_seq,
                ..h
            },
        );
        expect_corruption(
            Wal::open(d.path(), &strict()),
            &seg,
            24,
            &format!("first_seq of {n}"),
        );
    }
}

/// A middle segment whose header claims a later first sequence number than the records
/// before it lead to (checksum valid): open cannot tell, reads across the seam fail with
/// Corruption and never return a record under the wrong number.
#[test]
fn segment_first_seq_gap_is_found_by_reads() {
    let (src, recs) = multi_segment_log("gap", 800);
    let seg2 = seg_path(src.path(), 2);
    let h = SegmentHeader::decode(&std::fs::read(&seg2).unwrap()).unwrap();
    rewrite(&seg2, |b| {
        b[..SEGMENT_HEADER_BYTES].copy_from_slice(
            &SegmentHeader {
                first_seq: h.first_seq + 1,
                ..h
            }
            .encode(),
        )
    });
    let (wal, _) = open(src.path(), &strict());
    let (got, err) = read_until_error(&wal, 1, 100);
    assert!(matches!(err, Some(WalError::Corruption { .. })), "{err:?}");
    assert!(got.len() as u64 <= h.first_seq);
    for (seq, data) in &got {
        assert_eq!(data, &recs[*seq as usize - 1], "record {seq}");
    }
}

// ---------------------------------------------------------------------------------------
// Atomic batches and prepared segments.
// ---------------------------------------------------------------------------------------

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
