//! Segment sizes follow the write rate (`crate::segment`'s "Sizes"), driven by a clock the
//! test sets (`Wal::open_with_clock`), so that nothing here depends on how fast the machine
//! is:
//!
//! * a frozen clock makes every segment fill "instantly": sizes grow (four times a step)
//!   from `SEGMENT_BYTES_FIRST` up to `segmentBytes`, and recovery reads every size back;
//! * a clock that jumps a minute per reading makes every segment slow: they stay at the
//!   first size, and a heavy phase followed by a slow one shrinks them back;
//! * an idle log (open, one append, close) leaves one small segment and nothing else;
//! * crashes (`FaultVfs`: drop, torn, pages) right after a roll to a larger segment, while
//!   the next, larger one is being prepared, and in the middle of rolls under concurrent
//!   appends: every acknowledged record survives, and the log rolls on after reopening.
mod common;
use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uringdb_wal::limits::SEGMENT_BYTES_FIRST;
use uringdb_wal::{BackendChoice, FaultConfig, FaultVfs, Wal, WalOptions};

const MAX: u64 = 2 << 20;

fn backends() -> Vec<BackendChoice> {
    vec![BackendChoice::IoUring, BackendChoice::Portable]
}

fn opts(b: BackendChoice) -> WalOptions {
    WalOptions {
        backend: b,
        segment_bytes: MAX,
        ..small_options()
    }
}

/// The test's clock: `now` nanoseconds, plus `step` more at every reading.
struct Clock {
    now: AtomicU64,
    step: AtomicU64,
}

impl Clock {
    fn new(step: u64) -> Arc<Clock> {
        Arc::new(Clock {
            now: AtomicU64::new(1),
            step: AtomicU64::new(step),
        })
    }
    fn func(self: &Arc<Clock>) -> Arc<dyn Fn() -> u64 + Send + Sync> {
        let c = self.clone();
        Arc::new(move || {
            let step = c.step.load(Ordering::SeqCst);
            c.now.fetch_add(step, Ordering::SeqCst) + step
        })
    }
}

const MINUTE_NS: u64 = 60_000_000_000;

fn vfs_for(b: BackendChoice) -> Arc<dyn uringdb_uring::Vfs> {
    uringdb_uring::open_vfs(b).unwrap().0
}

/// Record `seq` of these tests: 1 to 4 KB, its content a function of `seq`.
fn rec(seq: u64) -> Vec<u8> {
    let len = 1000 + (seq * 7919 % 3000) as usize;
    (0..len)
        .map(|j| (seq as usize * 131 + j * 7) as u8 ^ (seq >> 8) as u8)
        .collect()
}

/// Sizes of the segment files `NNNNNNNNNNNN.wal` in `dir`, in segment order.
fn segment_sizes(dir: &Path) -> Vec<u64> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, l)| l).collect()
}

fn prep_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".wal.prep")
        })
        .count()
}

/// Appends records `from..=to` (`sync: true` every 64th and the last one).
fn append_range(wal: &Wal, from: u64, to: u64) {
    let (p, sink) = producer(wal);
    for seq in from..=to {
        p.append(&rec(seq), seq % 64 == 0 || seq == to).unwrap();
    }
    let out = sink.wait((to - from + 1) as usize);
    for (i, o) in out.iter().enumerate() {
        assert_eq!(*o, Outcome::Ok(from + i as u64));
    }
}

fn check_all(wal: &Wal, last: u64) {
    let all = read_all(wal).unwrap();
    assert_eq!(all.len() as u64, last);
    for (seq, data) in all {
        assert_eq!(data, rec(seq), "record {seq}");
    }
}

#[test]
fn segments_grow_under_load_up_to_segment_bytes_and_reopen_reads_every_size() {
    for b in backends() {
        let dir = TempDir::new("grow");
        let clock = Clock::new(0); // frozen: every segment fills at once
        let n = 3000; // ~7.5 MB
        {
            let (wal, _) =
                Wal::open_with_clock(dir.path(), &opts(b), vfs_for(b), clock.func()).unwrap();
            append_range(&wal, 1, n);
            wal.close().unwrap();
        }
        let sizes = segment_sizes(dir.path());
        assert!(sizes.len() >= 5, "{b:?}: {sizes:?}");
        let expect = |i: usize| (SEGMENT_BYTES_FIRST << (2 * i).min(8)).min(MAX);
        for (i, &s) in sizes.iter().enumerate() {
            assert_eq!(s, expect(i), "{b:?}: segment {} of {sizes:?}", i + 1);
        }
        assert_eq!(prep_files(dir.path()), 0, "a clean close leaves no .prep");
        // Reopened without the test clock: every size is read back from its file.
        let (wal, rep) = Wal::open(dir.path(), &opts(b)).unwrap();
        assert_eq!(rep.last_seq, n);
        assert_eq!(rep.segments, sizes.len() as u64);
        check_all(&wal, n);
        append_range(&wal, n + 1, n + 500);
        check_all(&wal, n + 500);
        wal.close().unwrap();
    }
}

#[test]
fn segments_stay_at_the_first_size_when_writes_are_slow_and_shrink_back() {
    for b in backends() {
        let dir = TempDir::new("slow");
        let clock = Clock::new(MINUTE_NS); // every reading a minute later: always slow
        let (wal, _) =
            Wal::open_with_clock(dir.path(), &opts(b), vfs_for(b), clock.func()).unwrap();
        append_range(&wal, 1, 800); // ~2 MB
        let sizes = segment_sizes(dir.path());
        assert!(sizes.len() >= 6, "{b:?}: {sizes:?}");
        assert!(
            sizes.iter().all(|&s| s == SEGMENT_BYTES_FIRST),
            "{b:?}: {sizes:?}"
        );
        // Heavy: grow to the largest.
        clock.step.store(0, Ordering::SeqCst);
        append_range(&wal, 801, 3000);
        let grown = segment_sizes(dir.path());
        assert_eq!(grown.last(), Some(&MAX), "{b:?}: {grown:?}");
        // Slow again: the next segments halve back to the first size.
        clock.step.store(MINUTE_NS, Ordering::SeqCst);
        let before = grown.len();
        append_range(&wal, 3001, 5000);
        let after = segment_sizes(dir.path());
        let tail = &after[before..];
        assert!(tail.len() >= 3, "{b:?}: {after:?}");
        assert!(
            tail.windows(2).all(|w| w[1] <= w[0]) && tail.last() == Some(&SEGMENT_BYTES_FIRST),
            "{b:?}: shrinks back: {after:?}"
        );
        check_all(&wal, 5000);
        wal.close().unwrap();
    }
}

#[test]
fn an_idle_log_keeps_one_small_segment() {
    for b in backends() {
        let dir = TempDir::new("idle");
        {
            let (wal, _) = Wal::open(
                dir.path(),
                &WalOptions {
                    backend: b,
                    ..WalOptions::default()
                },
            )
            .unwrap();
            let (p, sink) = producer(&wal);
            p.append(b"one", true).unwrap();
            sink.wait(1);
            wal.close().unwrap();
        }
        assert_eq!(segment_sizes(dir.path()), [SEGMENT_BYTES_FIRST], "{b:?}");
        assert_eq!(prep_files(dir.path()), 0, "{b:?}");
    }
}

#[derive(Clone, Copy, Debug)]
enum Crash {
    Drop,
    Torn,
    Pages,
}

fn crash(vfs: &FaultVfs, how: Crash, seed: u64) {
    match how {
        Crash::Drop => vfs.crash(),
        Crash::Torn => vfs.crash_torn(seed),
        Crash::Pages => vfs.crash_pages(seed),
    }
}

fn fault_vfs() -> Arc<FaultVfs> {
    FaultVfs::new(vfs_for(BackendChoice::Portable), FaultConfig::default())
}

/// Reopens after a crash (same `FaultVfs`), checks that the log holds at least `acked`
/// records and every record it holds is the right one, that its segments have the sizes
/// they were given, and returns the recovered last sequence number.
fn reopen_and_check(dir: &Path, vfs: &Arc<FaultVfs>, acked: u64, what: &str) -> u64 {
    let (wal, rep) = Wal::open_on(dir, &opts(BackendChoice::Portable), vfs.clone())
        .unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    assert!(
        rep.last_seq >= acked,
        "{what}: {} < acked {acked}",
        rep.last_seq
    );
    check_all(&wal, rep.last_seq);
    let sizes = segment_sizes(dir);
    assert!(
        sizes
            .iter()
            .all(|&s| s.is_power_of_two() && (SEGMENT_BYTES_FIRST..=MAX).contains(&s)),
        "{what}: {sizes:?}"
    );
    assert_eq!(prep_files(dir), 0, "{what}: recovery removes .prep files");
    wal.close().unwrap();
    rep.last_seq
}

/// Durable appends one at a time on a frozen clock; right after the append that rolled to a
/// larger segment (the preparer has just been asked for the next, twice as large), crash.
/// Several epochs on one `FaultVfs`, each crashing at a later roll.
#[test]
fn crash_while_a_grown_segment_is_prepared() {
    let mut prep_seen = 0;
    for (k, how) in [Crash::Drop, Crash::Torn, Crash::Pages]
        .into_iter()
        .enumerate()
    {
        let dir = TempDir::new("crash-prep");
        let vfs = fault_vfs();
        let mut last = 0u64;
        for epoch in 1..=3u64 {
            let clock = Clock::new(0);
            let (wal, _) = Wal::open_with_clock(
                dir.path(),
                &opts(BackendChoice::Portable),
                vfs.clone(),
                clock.func(),
            )
            .unwrap();
            let (p, sink) = producer(&wal);
            let segs0 = segment_sizes(dir.path()).len();
            let mut rolls = 0;
            let mut seq = last;
            loop {
                seq += 1;
                p.append(&rec(seq), true).unwrap();
                assert_eq!(
                    sink.wait((seq - last) as usize).last(),
                    Some(&Outcome::Ok(seq))
                );
                let segs = segment_sizes(dir.path()).len();
                if segs > segs0 + rolls {
                    rolls += 1;
                    if rolls == epoch as usize {
                        break;
                    }
                }
            }
            if prep_files(dir.path()) > 0 {
                prep_seen += 1;
            }
            crash(&vfs, how, 100 * k as u64 + epoch);
            let _ = wal.close();
            drop(p);
            let what = format!("{how:?} epoch {epoch}");
            last = reopen_and_check(dir.path(), &vfs, seq, &what);
            assert_eq!(last, seq, "{what}: every append was durable");
        }
        assert!(segment_sizes(dir.path()).len() >= 4, "{how:?}");
    }
    // Coverage: the crash found the next segment being (or just) prepared.
    assert!(prep_seen >= 3, "prep_seen {prep_seen}");
}

/// A producer thread appends (sync: true, without waiting) on a frozen clock; the main
/// thread watches the directory and crashes as soon as a new segment file appears: the
/// crash lands in the roll to a larger segment (its SEAL, the first groups in it, the next
/// preparation). Every acknowledged record survives.
#[test]
fn crash_during_the_switch_to_a_larger_segment() {
    let mut switches = 0;
    for (k, how) in [Crash::Drop, Crash::Torn, Crash::Pages]
        .into_iter()
        .cycle()
        .take(9)
        .enumerate()
    {
        let dir = TempDir::new("crash-switch");
        let vfs = fault_vfs();
        let clock = Clock::new(0);
        let (wal, _) = Wal::open_with_clock(
            dir.path(),
            &opts(BackendChoice::Portable),
            vfs.clone(),
            clock.func(),
        )
        .unwrap();
        let wal = Arc::new(wal);
        let (p, sink) = producer(&wal);
        let stop = Arc::new(AtomicBool::new(false));
        let appended = Arc::new(AtomicU64::new(0));
        let t = {
            let (stop, appended) = (stop.clone(), appended.clone());
            std::thread::spawn(move || {
                let mut seq = 0;
                while !stop.load(Ordering::SeqCst) {
                    seq += 1;
                    if p.append(&rec(seq), true).is_err() {
                        break;
                    }
                    appended.store(seq, Ordering::SeqCst);
                }
                p
            })
        };
        // Crash at the (k % 3 + 1)-th roll: 256 KiB -> 1 MiB, -> 2 MiB (the largest here), -> 2 MiB.
        let target = k % 3 + 2;
        let deadline = Instant::now() + Duration::from_secs(30);
        while segment_sizes(dir.path()).len() < target {
            assert!(Instant::now() < deadline, "no roll");
            std::hint::spin_loop();
        }
        crash(&vfs, how, k as u64);
        stop.store(true, Ordering::SeqCst);
        let p = t.join().unwrap();
        let _ = wal.close();
        let acked = sink
            .outcomes
            .lock()
            .unwrap()
            .iter()
            .filter_map(|o| match o {
                Outcome::Ok(s) => Some(*s),
                Outcome::Err(..) => None,
            })
            .max()
            .unwrap_or(0);
        drop(p);
        let what = format!("{how:?} at roll {}", target - 1);
        let last = reopen_and_check(dir.path(), &vfs, acked, &what);
        assert!(last <= appended.load(Ordering::SeqCst), "{what}");
        if segment_sizes(dir.path()).len() >= target {
            switches += 1;
        }
        // The log rolls on after the crash.
        let (wal, _) =
            Wal::open_on(dir.path(), &opts(BackendChoice::Portable), vfs.clone()).unwrap();
        append_range(&wal, last + 1, last + 800);
        check_all(&wal, last + 800);
        wal.close().unwrap();
    }
    assert!(switches > 0, "no crash kept the new segment");
}

/// An entry larger than the segment the rate called for (here every segment is asked for
/// at the first size) grows that segment before it is used: a largest-size record, and an
/// atomic batch of two nearly as large, each land whole in a segment of their own.
#[test]
fn an_entry_larger_than_the_prepared_segment_grows_it() {
    for b in backends() {
        let dir = TempDir::new("big");
        let clock = Clock::new(MINUTE_NS);
        let o = opts(b);
        let (wal, _) = Wal::open_with_clock(dir.path(), &o, vfs_for(b), clock.func()).unwrap();
        let (p, sink) = producer(&wal);
        let big = |n: usize, tag: u8| -> Vec<u8> { (0..n).map(|j| j as u8 ^ tag).collect() };
        let max_record = 256 << 10; // a quarter of small_options' 1 MiB ring
        let recs = [
            big(200 << 10, 1),
            big(max_record, 2),
            big(250 << 10, 3),
            big(250 << 10, 4),
        ];
        p.append(&recs[0], true).unwrap();
        p.append(&recs[1], true).unwrap();
        p.append_many(&[&recs[2][..], &recs[3][..]], true).unwrap();
        let out = sink.wait(4);
        assert_eq!(out, (1..=4).map(Outcome::Ok).collect::<Vec<_>>(), "{b:?}");
        let all = read_all(&wal).unwrap();
        assert_eq!(all.len(), 4);
        for (seq, data) in &all {
            assert_eq!(data, &recs[*seq as usize - 1], "{b:?} record {seq}");
        }
        wal.close().unwrap();
        let sizes = segment_sizes(dir.path());
        assert_eq!(sizes, [SEGMENT_BYTES_FIRST, 512 << 10, 512 << 10], "{b:?}");
        let (wal, rep) = Wal::open(dir.path(), &o).unwrap();
        assert_eq!(rep.last_seq, 4);
        assert_eq!(read_all(&wal).unwrap().len(), 4);
        wal.close().unwrap();
    }
}

/// Bug (found by the façade's tests): a new log whose first entry did not fit in its small
/// first segment rolled at once, leaving segment 1 without a record, so segment 2 started
/// at the same sequence number and the next open failed ("first sequence number 1 does not
/// follow segment 1"). A segment holds a record before the next one starts: the empty
/// first segment grows in place instead.
#[test]
fn regression_a_first_entry_larger_than_the_first_segment_grows_it_in_place() {
    for b in backends() {
        let dir = TempDir::new("first-big");
        let o = opts(b);
        let rec1: Vec<u8> = (0..256 << 10).map(|j: usize| (j % 251) as u8).collect();
        {
            let (wal, _) = Wal::open(dir.path(), &o).unwrap();
            let (p, sink) = producer(&wal);
            p.append(&rec1, true).unwrap();
            p.append(b"second", true).unwrap();
            assert_eq!(sink.wait(2), [Outcome::Ok(1), Outcome::Ok(2)], "{b:?}");
            wal.close().unwrap();
        }
        assert_eq!(
            segment_sizes(dir.path()),
            [512 << 10],
            "{b:?}: grown in place"
        );
        let (wal, rep) = Wal::open(dir.path(), &o).unwrap_or_else(|e| panic!("{b:?}: {e}"));
        assert_eq!(rep.last_seq, 2);
        let all = read_all(&wal).unwrap();
        assert_eq!(all[0], (1, rec1.clone()));
        assert_eq!(all[1], (2, b"second".to_vec()));
        wal.close().unwrap();
    }
}
