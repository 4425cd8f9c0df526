//! Segment recycling (format version 3): freed segments are renamed into a pool and reused
//! for new segments with their old bytes in place. These tests build a log whose active
//! segment is a recycled file (its old life holding many more frames than its new one),
//! then check, on both backends under a [`FaultVfs`] that drops unsynced bytes:
//!
//! * recovery after a crash or a clean close returns exactly the acknowledged records, and
//!   none of the old life's frames after the new tail;
//! * a torn write whose later sectors still hold the old bytes is a torn tail when nothing
//!   claims it durable, and damage (file and offset) when a later MARK does;
//! * every on-disk state the rename protocol can leave (truncation's rename into the pool,
//!   the preparer's rename out of it, a written but never renamed `.prep`, a close with a
//!   recycled segment prepared) recovers without losing or inventing a record.
//!
//! `FaultVfs` makes metadata operations durable at once, so the rename protocol's crash
//! points are reproduced by building each intermediate directory state by hand.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uringdb_wal::format::{
    self, decode_frame_salted, encode_frame_salted, encode_meta, parse_segment_file_name,
    segment_salt, Kind, SegmentHeader, FLAG_RECYCLED, SEGMENT_HEADER_BYTES, SEGMENT_VERSION,
};
use uringdb_wal::{BackendChoice, FaultConfig, FaultVfs, Producer, Wal, WalError, WalOptions};

const BACKENDS: [BackendChoice; 2] = [BackendChoice::IoUring, BackendChoice::Portable];
const RECORD_BYTES: usize = 2000;

fn fault_vfs(backend: BackendChoice) -> Arc<FaultVfs> {
    let (inner, _) = uringdb_uring::open_vfs(backend).unwrap();
    FaultVfs::new(inner, FaultConfig::default())
}

fn opts(backend: BackendChoice) -> WalOptions {
    WalOptions {
        backend,
        recycle_segments: 2,
        ..small_options()
    }
}

/// Record `i` of phase `tag`: non-zero bytes naming both, so a record from another phase
/// (an old life) never compares equal.
fn rec(tag: u64, i: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(RECORD_BYTES);
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&i.to_le_bytes());
    while v.len() < RECORD_BYTES {
        v.push((v.len() as u64 * 131 + i * 7 + tag) as u8 | 1);
    }
    v
}

/// An open log, its producer, and every record acknowledged (by sequence number).
struct Log {
    wal: Wal,
    p: Producer,
    sink: Arc<Sink>,
    outcomes: usize,
    acked: BTreeMap<u64, Vec<u8>>,
}

impl Log {
    fn open(dir: &Path, vfs: &Arc<FaultVfs>, o: &WalOptions) -> Log {
        let (wal, _) = Wal::open_on(dir, o, vfs.clone()).unwrap();
        Log::on(wal, BTreeMap::new())
    }

    fn on(wal: Wal, acked: BTreeMap<u64, Vec<u8>>) -> Log {
        let (p, sink) = producer(&wal);
        Log {
            wal,
            p,
            sink,
            outcomes: 0,
            acked,
        }
    }

    /// Appends `n` records of phase `tag` (not synced one by one), then a sync; waits.
    fn fill(&mut self, tag: u64, n: u64) {
        let recs: Vec<Vec<u8>> = (0..n).map(|i| rec(tag, i)).collect();
        for r in &recs {
            self.p.append(r, false).unwrap();
        }
        self.p.sync().unwrap();
        let out = self.sink.wait(self.outcomes + n as usize + 1);
        for (k, r) in recs.into_iter().enumerate() {
            match &out[self.outcomes + k] {
                Outcome::Ok(seq) => {
                    self.acked.insert(*seq, r);
                }
                e => panic!("append failed: {e:?}"),
            }
        }
        self.outcomes += n as usize + 1;
    }
}

fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            parse_segment_file_name(&name).map(|n| (n, e.path()))
        })
        .collect();
    v.sort();
    v
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn is_recycled(path: &Path) -> bool {
    let b = std::fs::read(path).unwrap();
    SegmentHeader::decode(&b).is_ok() && SegmentHeader::flags_of(&b) & FLAG_RECYCLED != 0
}

/// Builds a log whose active segment is a recycled full-size segment holding only a few
/// records of its new life: fills several segments, truncates them into the pool, and
/// appends until a roll reuses one, then a few more. Returns the open log.
fn recycled_active(dir: &Path, vfs: &Arc<FaultVfs>, o: &WalOptions) -> Log {
    let mut log = Log::open(dir, vfs, o);
    let mut tag = 1;
    while log.wal.stats().segments < 4 {
        log.fill(tag, 200);
        tag += 1;
    }
    let removed = log.wal.truncate_before(log.wal.last_seq()).unwrap();
    assert!(removed >= 3, "{removed}");
    // Two pooled (the preparer may have taken one already).
    let pooled = log.wal.stats().pool_segments;
    assert!((1..=2).contains(&pooled), "{pooled}");
    while log.wal.stats().recycled_segments == 0 {
        log.fill(tag, 20);
        tag += 1;
    }
    log.fill(tag, 3);
    let (_, active) = segment_files(dir).pop().unwrap();
    assert!(
        is_recycled(&active),
        "the active segment is a recycled file"
    );
    log
}

/// Checks a reopened log against the acknowledged records: everything from its first
/// readable record is there, equal, and nothing after the last acknowledged one.
fn check(wal: &Wal, acked: &BTreeMap<u64, Vec<u8>>, ctx: &str) {
    let last = *acked.keys().next_back().unwrap();
    assert_eq!(wal.last_seq(), last, "{ctx}: last_seq");
    let first = wal.first_seq();
    let all = read_from(wal, first).unwrap_or_else(|e| panic!("{ctx}: reading: {e}"));
    assert_eq!(all.len() as u64, last + 1 - first, "{ctx}: records");
    for (seq, data) in all {
        assert!(
            acked.get(&seq) == Some(&data),
            "{ctx}: record {seq} differs from what was acknowledged"
        );
    }
}

/// The active segment's old life ends far beyond its new tail (valid frames of the earlier
/// segment number fill it); neither a crash nor a clean close may bring any of them back.
#[test]
fn old_frames_after_the_new_tail_of_a_recycled_segment_are_not_replayed() {
    for backend in BACKENDS {
        for crash in [true, false] {
            let ctx = format!("{backend:?}, crash {crash}");
            let dir = TempDir::new("recycle-old");
            let vfs = fault_vfs(backend);
            let o = opts(backend);
            let log = recycled_active(dir.path(), &vfs, &o);
            let (n, active) = segment_files(dir.path()).pop().unwrap();
            // The new life is short: most of the file is old frames (non-zero bytes).
            let bytes = std::fs::read(&active).unwrap();
            let salt = segment_salt(SEGMENT_VERSION, n);
            let mut off = SEGMENT_HEADER_BYTES;
            while let Ok(f) = decode_frame_salted(&bytes[off..], salt) {
                off += f.total;
            }
            let old = bytes[off..].iter().filter(|&&b| b != 0).count();
            assert!(
                old > bytes.len() / 2,
                "{ctx}: {old} old bytes after offset {off}"
            );
            let acked = log.acked.clone();
            if crash {
                vfs.crash();
            } else {
                log.wal.close().unwrap();
            }
            drop(log);
            let (wal, rep) = Wal::open_on(dir.path(), &o, vfs.clone()).unwrap();
            assert_eq!(rep.truncated_bytes, 0, "{ctx}: {rep:?}");
            check(&wal, &acked, &ctx);
            // And the log goes on in it: more records, a crash, all there.
            let (p, sink) = producer(&wal);
            let mut acked = acked;
            for i in 0..10 {
                p.append(&rec(99, i), true).unwrap();
            }
            for (i, o) in sink.wait(10).into_iter().enumerate() {
                let Outcome::Ok(seq) = o else {
                    panic!("{ctx}: {o:?}")
                };
                acked.insert(seq, rec(99, i as u64));
            }
            vfs.crash();
            drop(p);
            drop(wal);
            let (wal, _) = Wal::open_on(dir.path(), &o, vfs.clone()).unwrap();
            check(&wal, &acked, &format!("{ctx}, second open"));
        }
    }
}

/// The close MARK of a recycled active segment, the offset after it, and the segment.
fn close_mark(dir: &Path) -> (u64, usize, PathBuf) {
    let (n, path) = segment_files(dir).pop().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let salt = segment_salt(SEGMENT_VERSION, n);
    let mut off = SEGMENT_HEADER_BYTES;
    let mut last = None;
    while let Ok(f) = decode_frame_salted(&bytes[off..], salt) {
        last = Some((f.kind, off));
        off += f.total;
    }
    let (kind, at) = last.unwrap();
    assert_eq!(kind, Kind::Mark, "a clean close leaves a MARK");
    (n, at, path)
}

/// A crash tore the write of an unacknowledged record F in a recycled segment: its first
/// sector reached the disk, its later sectors still hold the file's old bytes (not zeros).
/// Nothing after it claims it durable: a torn tail, cut (strict mode opens). With a MARK of
/// this segment after it claiming F durable, the same bytes are damage, reported with the
/// file and F's offset.
#[test]
fn torn_write_across_sectors_of_a_recycled_segment() {
    for backend in BACKENDS {
        for witnessed in [false, true] {
            let ctx = format!("{backend:?}, witnessed {witnessed}");
            let dir = TempDir::new("recycle-torn");
            let vfs = fault_vfs(backend);
            let o = opts(backend);
            let log = recycled_active(dir.path(), &vfs, &o);
            let acked = log.acked.clone();
            let last = *acked.keys().next_back().unwrap();
            log.wal.close().unwrap();
            drop(log);
            let (n, at, path) = close_mark(dir.path());
            let salt = segment_salt(SEGMENT_VERSION, n);
            let mut bytes = std::fs::read(&path).unwrap();
            // F replaces the close MARK (as if the crash came before the close).
            let mut f = Vec::new();
            encode_frame_salted(&mut f, salt, Kind::Full, last + 1, &rec(77, 0), true);
            let new_end = (at / 512 + 1) * 512; // the first sector's share of F
            assert!(at + f.len() > new_end + 512, "F spans several sectors");
            assert!(
                bytes[new_end..at + f.len()].iter().any(|&b| b != 0),
                "old bytes, not zeros, where F's later sectors would be"
            );
            bytes[at..new_end].copy_from_slice(&f[..new_end - at]);
            // Old bytes in every later sector, none of them zero (an old life's record
            // data): the zero-filled rule would call this a frame written whole.
            for (k, b) in bytes[new_end..at + f.len()].iter_mut().enumerate() {
                *b = (k as u8).wrapping_mul(29) | 0x80;
            }
            if witnessed {
                // A later group's MARK: the watermark at its submission reached F.
                let w = (at + f.len()).next_multiple_of(8) + 64;
                bytes[w..w + 16].copy_from_slice(&encode_meta(Kind::Mark, last + 1, salt));
            }
            std::fs::write(&path, &bytes).unwrap();
            match Wal::open_on(dir.path(), &o, vfs.clone()) {
                Ok((wal, _)) => {
                    assert!(!witnessed, "{ctx}: opened although a MARK claims F durable");
                    check(&wal, &acked, &ctx);
                }
                Err(WalError::Corruption { file, offset, .. }) => {
                    assert!(witnessed, "{ctx}: an unclaimed torn tail refused");
                    assert_eq!((file, offset), (path.clone(), at as u64), "{ctx}");
                }
                Err(e) => panic!("{ctx}: {e}"),
            }
        }
    }
}

/// What recycling weakens, pinned: bit rot in the last acknowledged record of a recycled
/// segment, with no MARK after it (a crash came before the next group), is cut as a torn
/// tail, where a zero-filled segment reports it (see `format`, "Recycled segments"). The
/// same rot with the close MARK after it is still damage.
#[test]
fn bit_rot_in_the_last_group_of_a_recycled_segment() {
    for with_mark in [false, true] {
        let ctx = format!("close mark {with_mark}");
        let dir = TempDir::new("recycle-rot");
        let vfs = fault_vfs(BackendChoice::Portable);
        let o = opts(BackendChoice::Portable);
        let log = recycled_active(dir.path(), &vfs, &o);
        let mut acked = log.acked.clone();
        let last = *acked.keys().next_back().unwrap();
        log.wal.close().unwrap();
        drop(log);
        let (n, at, path) = close_mark(dir.path());
        let salt = segment_salt(SEGMENT_VERSION, n);
        let mut bytes = std::fs::read(&path).unwrap();
        // The last record's frame ends at the close MARK.
        let mut off = SEGMENT_HEADER_BYTES;
        let mut last_frame = 0;
        while off < at {
            let f = decode_frame_salted(&bytes[off..], salt).unwrap();
            if f.seq == last && f.kind == Kind::Full {
                last_frame = off;
            }
            off += f.total;
        }
        if !with_mark {
            // As if the crash came before the close: the MARK's place holds old bytes.
            bytes[at..at + 16].copy_from_slice(&[0xA5; 16]);
        }
        bytes[last_frame + 100] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        match Wal::open_on(dir.path(), &o, vfs.clone()) {
            Ok((wal, _)) => {
                assert!(
                    !with_mark,
                    "{ctx}: opened although the close MARK claims it"
                );
                acked.remove(&last);
                check(&wal, &acked, &ctx);
            }
            Err(WalError::Corruption { file, offset, .. }) => {
                assert!(with_mark, "{ctx}");
                assert_eq!((file, offset), (path.clone(), last_frame as u64));
            }
            Err(e) => panic!("{ctx}: {e}"),
        }
    }
}

/// Every directory state the rename protocol can leave behind, built by hand (`FaultVfs`
/// makes renames durable at once):
/// 1. truncation renamed `M.wal` to `M.wal.free` (synced): kept in the pool;
/// 2. the preparer renamed a pool file to `N.wal.prep` and the committer wrote segment N's
///    header and a group into it, never renamed (never acknowledged): the `.prep` is
///    deleted, not pooled, and the next segment N starts clean;
/// 3. a pool file whose number is not below every live segment's: deleted;
/// 4. a clean close with a recycled segment prepared: it goes back to the pool.
#[test]
fn rename_protocol_states_recover() {
    for backend in BACKENDS {
        let ctx = format!("{backend:?}");
        let dir = TempDir::new("recycle-rename");
        let vfs = fault_vfs(backend);
        let o = opts(backend);
        let mut log = Log::open(dir.path(), &vfs, &o);
        let mut tag = 1;
        while log.wal.stats().segments < 4 {
            log.fill(tag, 200);
            tag += 1;
        }
        log.wal.truncate_before(log.wal.last_seq()).unwrap();
        let acked = log.acked.clone();
        let last = log.wal.last_seq();
        log.wal.close().unwrap();
        drop(log);
        // 1: the pool survives a reopen.
        let pool = files_ending(dir.path(), ".wal.free");
        assert_eq!(pool.len(), 2, "{ctx}");
        let (wal, rep) = Wal::open_on(dir.path(), &o, vfs.clone()).unwrap();
        assert_eq!(rep.pool, 2, "{ctx}: {rep:?}");
        check(&wal, &acked, &ctx);
        wal.close().unwrap();
        drop(wal);
        // 2: a pool file taken for segment N, written, never renamed into place.
        let live = segment_files(dir.path());
        let n = live.last().unwrap().0 + 1;
        let prep = dir.path().join(format::prepared_file_name(n));
        std::fs::rename(dir.path().join(&pool[0]), &prep).unwrap();
        let mut bytes = std::fs::read(&prep).unwrap();
        let salt = segment_salt(SEGMENT_VERSION, n);
        let mut group = SegmentHeader {
            number: n,
            first_seq: last + 1,
        }
        .encode_as(SEGMENT_VERSION, FLAG_RECYCLED)
        .to_vec();
        group.extend_from_slice(&encode_meta(Kind::Mark, last, salt));
        for i in 0..5 {
            encode_frame_salted(
                &mut group,
                salt,
                Kind::Full,
                last + 1 + i,
                &rec(66, i),
                true,
            );
        }
        bytes[..group.len()].copy_from_slice(&group);
        std::fs::write(&prep, &bytes).unwrap();
        // 3: a pool file numbered like a live segment.
        std::fs::copy(
            &live.last().unwrap().1,
            dir.path()
                .join(format::free_file_name(live.last().unwrap().0)),
        )
        .unwrap();
        let (wal, rep) = Wal::open_on(dir.path(), &o, vfs.clone()).unwrap();
        assert_eq!(rep.removed_prepared, 1, "{ctx}: {rep:?}");
        assert_eq!(
            rep.pool, 1,
            "{ctx}: the .prep is not pooled, the bad one deleted"
        );
        assert_eq!(files_ending(dir.path(), ".wal.free"), pool[1..], "{ctx}");
        check(&wal, &acked, &ctx);
        // Segment N again: none of the lost group's records may appear.
        let mut log = Log::on(wal, acked);
        let segs = log.wal.stats().segments;
        while log.wal.stats().segments == segs {
            log.fill(tag, 50);
            tag += 1;
        }
        assert_eq!(log.wal.stats().recycled_segments, 1, "{ctx}");
        let acked = log.acked.clone();
        vfs.crash();
        drop(log);
        let (wal, _) = Wal::open_on(dir.path(), &o, vfs.clone()).unwrap();
        check(
            &wal,
            &acked,
            &format!("{ctx}, after segment {n} was made again"),
        );
        drop(wal);
        // 4: a recycled segment prepared ahead and unused goes back to the pool at close.
        let mut log = Log::open(dir.path(), &vfs, &o);
        log.wal.truncate_before(log.wal.last_seq()).unwrap();
        let pooled = log.wal.stats().pool_segments;
        assert!(pooled >= 1, "{ctx}");
        // Fill until the next segment has been asked for (half the active one).
        while log.wal.stats().pool_segments == pooled {
            log.fill(tag, 20);
            tag += 1;
        }
        log.wal.close().unwrap();
        drop(log);
        assert!(
            files_ending(dir.path(), ".prep").is_empty(),
            "{ctx}: no .prep after close"
        );
        assert_eq!(
            files_ending(dir.path(), ".wal.free").len() as u64,
            pooled,
            "{ctx}: the prepared recycled file is back in the pool"
        );
    }
}

/// `recycle_segments: 0` keeps today's behaviour: freed segments are deleted, every new
/// segment is zero-filled, nothing is pooled. Out of range names the field.
#[test]
fn recycling_off_deletes_and_the_option_is_validated() {
    let dir = TempDir::new("recycle-off");
    let vfs = fault_vfs(BackendChoice::Portable);
    let o = WalOptions {
        recycle_segments: 0,
        ..opts(BackendChoice::Portable)
    };
    let mut log = Log::open(dir.path(), &vfs, &o);
    let mut tag = 1;
    while log.wal.stats().segments < 3 {
        log.fill(tag, 200);
        tag += 1;
    }
    log.wal.truncate_before(log.wal.last_seq()).unwrap();
    assert!(files_ending(dir.path(), ".wal.free").is_empty());
    let segs = log.wal.stats().segments;
    while log.wal.stats().segments == segs {
        log.fill(tag, 50);
        tag += 1;
    }
    let st = log.wal.stats();
    assert_eq!((st.recycled_segments, st.pool_segments), (0, 0));
    assert!(st.fresh_segments >= 1);
    let bad = WalOptions {
        recycle_segments: 65,
        ..WalOptions::default()
    };
    match bad.validate() {
        Err(WalError::InvalidOption { field, .. }) => assert_eq!(field, "recycleSegments"),
        other => panic!("{other:?}"),
    }
}

/// A crash tore a group in a recycled segment: its first record F1 is damaged (a sector
/// lost), its next records F2, F3 reached the disk whole, and nothing claims any of them
/// durable. Recovery cuts at F1 — and must zero F2 and F3 (frames of this segment's own
/// life: valid salt, the next sequence numbers), or else a new record of F1's size written
/// in F1's place would be followed by F2 and F3 at the next open: records never appended
/// in this life of the log.
#[test]
fn a_torn_groups_later_frames_are_zeroed_so_new_appends_never_meet_them() {
    for backend in BACKENDS {
        let ctx = format!("{backend:?}");
        let dir = TempDir::new("recycle-stale");
        let vfs = fault_vfs(backend);
        let o = opts(backend);
        let log = recycled_active(dir.path(), &vfs, &o);
        let mut acked = log.acked.clone();
        let last = *acked.keys().next_back().unwrap();
        log.wal.close().unwrap();
        drop(log);
        let (n, at, path) = close_mark(dir.path());
        let salt = segment_salt(SEGMENT_VERSION, n);
        let mut bytes = std::fs::read(&path).unwrap();
        // The torn group where the close MARK was: MARK, F1 (damaged), F2, F3. F1 is a
        // MARK's size longer than the record appended later, so that the next group (its
        // MARK and that record) ends exactly where F2 starts.
        let mut group = encode_meta(Kind::Mark, last, salt).to_vec();
        let f1_at = at + group.len();
        for i in 1..=3 {
            let mut payload = rec(55, i);
            if i == 1 {
                payload.extend_from_slice(&[0x5A; format::META_FRAME_BYTES]);
            }
            encode_frame_salted(&mut group, salt, Kind::Full, last + i, &payload, true);
        }
        bytes[at..at + group.len()].copy_from_slice(&group);
        bytes[f1_at + 700] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let (wal, rep) = Wal::open_on(dir.path(), &o, vfs.clone()).unwrap();
        assert!(rep.truncated_bytes > 0, "{ctx}: {rep:?}");
        check(&wal, &acked, &ctx);
        // A record of F1's size now lands where F1 was.
        let (p, sink) = producer(&wal);
        p.append(&rec(44, 0), true).unwrap();
        assert_eq!(sink.wait(1), [Outcome::Ok(last + 1)], "{ctx}");
        acked.insert(last + 1, rec(44, 0));
        vfs.crash();
        drop(p);
        drop(wal);
        let (wal, _) = Wal::open_on(dir.path(), &o, vfs.clone()).unwrap();
        check(&wal, &acked, &format!("{ctx}, after the new record"));
    }
}

/// Reads cross a recycled segment that is no longer the last: after its SEAL (or, if the
/// crash came before the SEAL, right after its last record) lie old bytes, not zeros, and
/// the read goes on in the next segment.
#[test]
fn reads_cross_a_recycled_segment_sealed_or_not() {
    for backend in BACKENDS {
        for sealed in [true, false] {
            let ctx = format!("{backend:?}, sealed {sealed}");
            let dir = TempDir::new("recycle-cross");
            let vfs = fault_vfs(backend);
            let o = opts(backend);
            let mut log = recycled_active(dir.path(), &vfs, &o);
            let (n, recycled) = segment_files(dir.path()).pop().unwrap();
            let mut tag = 500;
            while segment_files(dir.path()).last().unwrap().0 == n {
                log.fill(tag, 50);
                tag += 1;
            }
            let acked = log.acked.clone();
            check(&log.wal, &acked, &ctx);
            log.wal.close().unwrap();
            drop(log);
            let mut bytes = std::fs::read(&recycled).unwrap();
            let salt = segment_salt(SEGMENT_VERSION, n);
            let mut off = SEGMENT_HEADER_BYTES;
            let mut seal = None;
            while let Ok(f) = decode_frame_salted(&bytes[off..], salt) {
                if f.kind == Kind::Seal {
                    seal = Some(off);
                }
                off += f.total;
            }
            let seal = seal.unwrap_or_else(|| panic!("{ctx}: segment {n} is sealed"));
            if bytes[off..].iter().all(|&b| b == 0) {
                // The new life reached past where the old one ended (where groups end
                // follows timing, and so where each life's SEAL lands): what follows is
                // the old life's zeros. Put old bytes there, so that the read must still
                // step over non-zero bytes after the segment's end.
                bytes[off..].fill(0xA5);
                std::fs::write(&recycled, &bytes).unwrap();
            }
            assert!(
                bytes[off..].iter().any(|&b| b != 0),
                "{ctx}: old bytes follow"
            );
            if !sealed {
                let mut b = bytes.clone();
                b[seal..seal + 16].copy_from_slice(&[0xA5; 16]);
                std::fs::write(&recycled, &b).unwrap();
            }
            let (wal, _) = Wal::open_on(dir.path(), &o, vfs.clone()).unwrap();
            check(&wal, &acked, &ctx);
        }
    }
}

/// A reader left in a segment that truncation freed and recycling reused meanwhile (its
/// handle now reads a new segment's bytes, salted with another number) stops with
/// `Truncated`, never calls the healthy log corrupt, and never yields a wrong record.
#[test]
fn a_reader_overtaken_by_recycling_ends_with_truncated() {
    for backend in BACKENDS {
        let ctx = format!("{backend:?}");
        let dir = TempDir::new("recycle-reader");
        let vfs = fault_vfs(backend);
        let o = WalOptions {
            recycle_segments: 4,
            ..opts(backend)
        };
        let mut log = Log::open(dir.path(), &vfs, &o);
        let mut tag = 1;
        while log.wal.stats().segments < 4 {
            log.fill(tag, 200);
            tag += 1;
        }
        // In the second segment (the first holds about 125 records), so that the reader's
        // cached chunk does not reach the end of its segment.
        let from = 150;
        let mut cur = log.wal.cursor(from).unwrap();
        let first = log.wal.read(&mut cur, u64::MAX, 5, 1 << 20).unwrap();
        assert_eq!(first.records.len(), 5, "{ctx}");
        log.wal.truncate_before(log.wal.last_seq()).unwrap();
        // Reuse every pooled file (the reader's segment among them), and fill the last
        // one reused too: the new lives overwrite what the reader would read next.
        let rolls = log.wal.stats().recycled_segments;
        while log.wal.stats().recycled_segments < rolls + 3 {
            log.fill(tag, 50);
            tag += 1;
        }
        let made = |l: &Log| l.wal.stats().recycled_segments + l.wal.stats().fresh_segments;
        let before = made(&log);
        while made(&log) == before {
            log.fill(tag, 50);
            tag += 1;
        }
        let mut next = from + 5;
        loop {
            match log.wal.read(&mut cur, u64::MAX, 100, 1 << 20) {
                Ok(b) if b.records.is_empty() => break,
                Ok(b) => {
                    for (seq, start, len) in b.records {
                        assert_eq!(seq, next, "{ctx}");
                        assert!(
                            log.acked.get(&seq).map(|r| &r[..])
                                == Some(&b.data[start..start + len]),
                            "{ctx}: record {seq} is wrong"
                        );
                        next += 1;
                    }
                }
                Err(WalError::Truncated { .. }) => break,
                Err(e) => panic!("{ctx}: {e}"),
            }
        }
    }
}

/// Directory entries are volatile too ([`FaultConfig::lose_unsynced_dir_ops`]): a crash
/// undoes every rename, creation and removal that no directory sync covered. Recycling's
/// renames (a truncated segment into the pool, a pool file out of it through `.prep` into a
/// live name) and the fresh segments' creations must each be followed by the directory sync
/// that makes the log's own state durable before anything relies on it. Crashes at many
/// points of a fill / truncate / refill cycle: every acknowledged record from the last
/// truncation point on comes back, none out of place.
#[test]
fn crashes_with_volatile_directory_entries_lose_no_acknowledged_record() {
    for backend in BACKENDS {
        for crash_at in 1..=9u64 {
            let ctx = format!("{backend:?}, crash after step {crash_at}");
            let dir = TempDir::new("recycle-dirs");
            let (inner, _) = uringdb_uring::open_vfs(backend).unwrap();
            let vfs = FaultVfs::new(
                inner,
                FaultConfig {
                    lose_unsynced_dir_ops: true,
                    ..FaultConfig::default()
                },
            );
            let o = opts(backend);
            let mut log = Log::open(dir.path(), &vfs, &o);
            // Records before `kept` may be gone after a crash (truncated); from it on,
            // every acknowledged one must be there.
            let mut kept = 1;
            for step in 1..=crash_at {
                log.fill(step, 300 + 100 * (step % 3));
                if step % 3 == 0 {
                    kept = log.wal.last_seq();
                    log.wal.truncate_before(kept).unwrap();
                }
            }
            let stats = log.wal.stats();
            let acked = log.acked.clone();
            vfs.crash();
            drop(log);
            let (wal, rep) = Wal::open_on(dir.path(), &o, vfs.clone())
                .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
            assert!(
                wal.first_seq() <= kept,
                "{ctx}: first_seq {} past the truncation point {kept} ({rep:?})",
                wal.first_seq()
            );
            check(&wal, &acked, &ctx);
            // The log goes on: a roll or two more, another crash, still all there.
            // (Records before `kept` that come back must still be what was acknowledged.)
            let mut log = Log::on(wal, acked);
            log.fill(100, 400);
            let acked = log.acked.clone();
            vfs.crash();
            drop(log);
            let (wal, _) = Wal::open_on(dir.path(), &o, vfs.clone()).unwrap();
            assert!(wal.first_seq() <= kept, "{ctx}, second crash: first_seq");
            check(&wal, &acked, &format!("{ctx}, second crash"));
            if crash_at >= 6 {
                assert!(
                    stats.recycled_segments > 0,
                    "{ctx}: the cycle reached a recycled segment ({stats:?})"
                );
            }
        }
    }
}
