//! Failure latching (STYLE habit 6; `committer/mod.rs` steps 2 and 5), driven by
//! [`FaultConfig`] on a [`FaultVfs`] over the portable backend:
//!
//! * a failed fdatasync or write fails the group that hit it with the OS error, and latches
//!   the log: every later append and sync is refused with `WalError::Failed` (synchronously,
//!   or at the sink for appends already queued), the durable watermark stops, reads go on,
//!   `close` returns the failure, and a reopen (fresh `FaultVfs`, no faults, same directory)
//!   recovers every record acknowledged before the failure — there is no retry;
//! * a `sync()` after `sync: false` appends whose fdatasync failed never reports success;
//! * ENOSPC while preparing the next segment fails only the group that needed it; the log is
//!   not latched, appends that fit in the active segment still succeed, the next one needing
//!   a new segment retries the preparation (and fails again while the disk is full), `close`
//!   is clean, and a reopen with space rolls on;
//! * ENOSPC creating the first segment fails the open.
//!
//! Sync and write counts: a fresh log's open writes and syncs segment 1 (zero fill:
//! `SEGMENT_BYTES_FIRST` written, 1 sync; header: 40 bytes, 1 durable write). The preparer
//! zero-fills segment 2 only once segment 1 is half full, which these tests' few small
//! appends never reach, so the n-th sync and the byte counts are the appends'.
mod common;
use common::*;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use uringdb_wal::format::{frame_bytes, SEGMENT_HEADER_BYTES};
use uringdb_wal::limits::SEGMENT_BYTES_FIRST;
use uringdb_wal::{
    BackendChoice, CompletionSink, FaultConfig, FaultVfs, GroupInfo, Producer, Wal, WalError,
    WalOptions,
};

const SEGMENT_BYTES: u64 = 1 << 20;
/// Syncs a fresh log's open performs.
const OPEN_SYNCS: u64 = 2;
/// Bytes written by a fresh log's open.
const OPEN_WRITE_BYTES: u64 = SEGMENT_BYTES_FIRST + SEGMENT_HEADER_BYTES as u64;
/// How long a test waits for an outcome before calling it lost.
const OUTCOME_WAIT: Duration = Duration::from_secs(5);

fn options() -> WalOptions {
    WalOptions {
        backend: BackendChoice::Portable,
        segment_bytes: SEGMENT_BYTES,
        ..small_options()
    }
}

fn fault_vfs(config: FaultConfig) -> Arc<FaultVfs> {
    let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
    FaultVfs::new(inner, config)
}

/// Opens a fresh log on `vfs`; checks that open wrote and synced segment 1 and nothing
/// more (segment 2 is asked for only once segment 1 is half full).
fn open_fresh(dir: &Path, vfs: &Arc<FaultVfs>) -> Wal {
    let (wal, rep) = Wal::open_on(dir, &options(), vfs.clone()).unwrap();
    assert_eq!(rep.last_seq, 0);
    assert_eq!(
        (vfs.synced_bytes(), vfs.pending_bytes()),
        (OPEN_WRITE_BYTES, 0)
    );
    wal
}

/// Reopens `dir` on a fresh `FaultVfs` without faults (the "reboot" after the failure).
fn reopen_clean(dir: &Path) -> Wal {
    let (wal, _) = Wal::open_on(dir, &options(), fault_vfs(FaultConfig::default())).unwrap();
    wal
}

/// A sink that keeps the typed outcome of every append, in order.
#[derive(Default)]
struct TypedSink {
    outcomes: Mutex<Vec<Result<u64, WalError>>>,
    cv: Condvar,
}

impl CompletionSink for TypedSink {
    fn completed(&self, seqs: &[u64], _group: &GroupInfo) {
        self.outcomes
            .lock()
            .unwrap()
            .extend(seqs.iter().map(|&s| Ok(s)));
        self.cv.notify_all();
    }
    fn failed(&self, count: usize, error: &WalError) {
        let mut o = self.outcomes.lock().unwrap();
        o.extend((0..count).map(|_| Err(error.clone())));
        self.cv.notify_all();
    }
}

impl TypedSink {
    /// Waits (bounded) for `n` outcomes; a lost outcome is a test failure, not a hang.
    fn wait(&self, n: usize, what: &str) -> Vec<Result<u64, WalError>> {
        let deadline = Instant::now() + OUTCOME_WAIT;
        let mut o = self.outcomes.lock().unwrap();
        while o.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: {n} outcomes expected within {OUTCOME_WAIT:?}, {} arrived: {:?}",
                o.len(),
                &*o
            );
            o = self.cv.wait_timeout(o, left).unwrap().0;
        }
        o.clone()
    }

    fn count(&self) -> usize {
        self.outcomes.lock().unwrap().len()
    }
}

fn typed_producer(wal: &Wal) -> (Producer, Arc<TypedSink>) {
    let sink = Arc::new(TypedSink::default());
    (wal.producer(sink.clone()), sink)
}

fn is_failed_with(e: &WalError, errno: i32) -> bool {
    matches!(e, WalError::Failed(_)) && e.raw_os_error() == Some(errno)
}

/// The log is latched: appends, batches and syncs are refused at once with `Failed`
/// carrying the original errno; reads still work and return exactly `acked`.
fn assert_latched(wal: &Wal, p: &Producer, errno: i32, acked: &[Vec<u8>]) {
    for (what, r) in [
        ("append", p.append(b"refused", true)),
        ("append sync:false", p.append(b"refused", false)),
        ("append_many", p.append_many(&[b"a", b"b"], true)),
        ("sync", p.sync()),
    ] {
        match r {
            Err(e) if is_failed_with(&e, errno) => {}
            other => {
                panic!("{what} after the failure: expected Failed(errno {errno}), got {other:?}")
            }
        }
    }
    assert_eq!(
        wal.last_seq(),
        acked.len() as u64,
        "the durable watermark stopped"
    );
    let all = read_all(wal).expect("reads go on after a failure");
    assert_eq!(all.len(), acked.len());
    for (i, (seq, data)) in all.iter().enumerate() {
        assert_eq!((*seq, data), (i as u64 + 1, &acked[i]));
    }
}

/// After the reboot: exactly `acked` is there, and the log takes appends again.
fn assert_recovered(dir: &Path, acked: &[Vec<u8>]) {
    let wal = reopen_clean(dir);
    assert_eq!(wal.last_seq(), acked.len() as u64);
    let all = read_all(&wal).unwrap();
    assert_eq!(all.len(), acked.len());
    for (i, (seq, data)) in all.iter().enumerate() {
        assert_eq!((*seq, data), (i as u64 + 1, &acked[i]), "record {}", i + 1);
    }
    let (p, sink) = typed_producer(&wal);
    p.append(b"after the reboot", true).unwrap();
    assert_eq!(
        sink.wait(1, "append after reopen")[0].as_ref().ok(),
        Some(&(acked.len() as u64 + 1))
    );
    wal.close().unwrap();
}

/// Appends `recs` one at a time (sync: true), each waited for: one group each. Returns the
/// outcomes.
fn append_each(p: &Producer, sink: &TypedSink, recs: &[Vec<u8>]) -> Vec<Result<u64, WalError>> {
    for (i, r) in recs.iter().enumerate() {
        // Counted before appending: the outcome may arrive before append() returns.
        let before = sink.count();
        p.append(r, true).unwrap();
        sink.wait(before + 1, &format!("record {} of {}", i + 1, recs.len()));
    }
    sink.outcomes.lock().unwrap().clone()
}

/// The 6th append's fdatasync fails: it completes with EIO, the five before it are
/// acknowledged and survive, everything after is refused, close reports the failure.
#[test]
fn failed_fsync_fails_its_group_and_latches_the_log() {
    let dir = TempDir::new("fail-sync");
    let vfs = fault_vfs(FaultConfig {
        fail_sync_nth: Some(OPEN_SYNCS + 6),
        ..FaultConfig::default()
    });
    let wal = open_fresh(dir.path(), &vfs);
    let (p, sink) = typed_producer(&wal);
    let recs: Vec<Vec<u8>> = (1..=6).map(record).collect();
    let out = append_each(&p, &sink, &recs);
    for (i, o) in out.iter().take(5).enumerate() {
        assert_eq!(o.as_ref().ok(), Some(&(i as u64 + 1)));
    }
    match &out[5] {
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}"),
        ok => panic!("the group whose fdatasync failed completed with {ok:?}"),
    }
    assert_latched(&wal, &p, libc::EIO, &recs[..5]);
    match wal.close() {
        Err(e) => assert!(is_failed_with(&e, libc::EIO), "{e:?}"),
        Ok(()) => panic!("close after a failed fdatasync returned Ok"),
    }
    drop((p, wal));
    assert_recovered(dir.path(), &recs[..5]);
}

/// The same with a write that fails (the FaultVfs accepts nothing of it).
#[test]
fn failed_write_fails_its_group_and_latches_the_log() {
    for errno in [libc::EIO, libc::ENOSPC] {
        let dir = TempDir::new("fail-write");
        let recs: Vec<Vec<u8>> = (1..=6).map(|i| vec![i as u8; 100]).collect();
        let vfs = fault_vfs(FaultConfig {
            // Five groups, each its MARK and one record.
            fail_write_after_bytes: Some(OPEN_WRITE_BYTES + 5 * (16 + frame_bytes(100)) as u64),
            errno,
            ..FaultConfig::default()
        });
        let wal = open_fresh(dir.path(), &vfs);
        let (p, sink) = typed_producer(&wal);
        let out = append_each(&p, &sink, &recs);
        for (i, o) in out.iter().take(5).enumerate() {
            assert_eq!(o.as_ref().ok(), Some(&(i as u64 + 1)), "errno {errno}");
        }
        match &out[5] {
            // A group write that fails is ambiguous even with ENOSPC: it latches like EIO.
            Err(e) => assert_eq!(e.raw_os_error(), Some(errno), "{e}"),
            ok => panic!("errno {errno}: the group whose write failed completed with {ok:?}"),
        }
        assert_latched(&wal, &p, errno, &recs[..5]);
        assert!(matches!(wal.close(), Err(ref e) if is_failed_with(e, errno)));
        drop((p, wal));
        assert_recovered(dir.path(), &recs[..5]);
    }
}

/// Several producers append concurrently when a group's fdatasync fails: every append gets
/// exactly one outcome; per producer, acknowledgements come first and failures after; the
/// failures are the original EIO (the failed group) or `Failed` (everything queued after
/// it); and exactly the acknowledged records survive.
#[test]
fn failed_fsync_under_concurrency_fails_everything_after_it() {
    let dir = TempDir::new("fail-conc");
    let vfs = fault_vfs(FaultConfig {
        fail_sync_nth: Some(OPEN_SYNCS + 8),
        ..FaultConfig::default()
    });
    let wal = Arc::new(open_fresh(dir.path(), &vfs));
    const THREADS: u64 = 3;
    const WAVES: u64 = 30;
    const PER_WAVE: u64 = 10;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let (p, sink) = typed_producer(&wal);
                let mut accepted = Vec::new();
                // Waves of appends, each waited for, so that there are many commit groups.
                'waves: for w in 0..WAVES {
                    for i in 0..PER_WAVE {
                        let rec = [t.to_le_bytes(), w.to_le_bytes(), i.to_le_bytes()].concat();
                        // All durable: with `sync: false` ones, the failing fdatasync may be
                        // an idle one that covers no waiting group, and then every group
                        // gets `Failed` (no group's own I/O failed) — a valid outcome this
                        // test's "original EIO" check would not accept.
                        match p.append(&rec, true) {
                            Ok(()) => accepted.push(rec),
                            Err(e) => {
                                assert!(is_failed_with(&e, libc::EIO), "{e:?}");
                                break 'waves;
                            }
                        }
                    }
                    sink.wait(accepted.len(), &format!("producer {t} wave {w}"));
                }
                let out = sink.wait(accepted.len(), &format!("producer {t}"));
                assert_eq!(
                    out.len(),
                    accepted.len(),
                    "producer {t}: one outcome per append"
                );
                (p, accepted, out)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut acked = std::collections::BTreeMap::new();
    let mut first_errors = 0;
    for (t, (_p, accepted, out)) in results.iter().enumerate() {
        let oks = out.iter().take_while(|o| o.is_ok()).count();
        for o in &out[oks..] {
            match o {
                Ok(s) => panic!("producer {t}: seq {s} acknowledged after a failure"),
                Err(e) if matches!(e, WalError::Failed(_)) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EIO))
                }
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
                    first_errors += 1;
                }
            }
        }
        for (o, rec) in out[..oks].iter().zip(accepted) {
            acked.insert(*o.as_ref().unwrap(), rec.clone());
        }
    }
    assert!(
        first_errors > 0,
        "the failed group's appends got the original EIO"
    );
    assert!(acked.len() as u64 > 0 && (acked.len() as u64) < THREADS * WAVES * PER_WAVE);
    let acked: Vec<Vec<u8>> = acked
        .into_iter()
        .enumerate()
        .map(|(i, (s, r))| {
            assert_eq!(s, i as u64 + 1, "acknowledged seqs are 1..=n");
            r
        })
        .collect();
    assert!(wal.close().is_err());
    drop(results);
    drop(wal);
    assert_recovered(dir.path(), &acked);
}

/// Bug: a group that fails *after* sequence numbers were assigned (its write or fdatasync
/// failed) is failed by reading the producer id from each frame's sequence slot, which
/// by then holds the sequence number: the failure goes to the producer whose id equals the
/// record's sequence number (or to nobody), and the producer that appended never hears back.
#[test]
fn regression_failed_group_outcomes_go_to_the_producer_that_appended() {
    let dir = TempDir::new("fail-route");
    let vfs = fault_vfs(FaultConfig {
        fail_sync_nth: Some(OPEN_SYNCS + 1),
        ..FaultConfig::default()
    });
    let wal = open_fresh(dir.path(), &vfs);
    let (a, a_sink) = typed_producer(&wal); // producer id 0
    let (_b, b_sink) = typed_producer(&wal); // producer id 1: the id seq 1 is mistaken for
    a.append(b"the first record", true).unwrap();
    let deadline = Instant::now() + OUTCOME_WAIT;
    while a_sink.count() + b_sink.count() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    let (a_out, b_out) = (
        a_sink.outcomes.lock().unwrap().clone(),
        b_sink.outcomes.lock().unwrap().clone(),
    );
    assert!(
        a_out.len() == 1 && a_out[0].as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EIO)
            && b_out.is_empty(),
        "the appending producer must get the EIO, and only it: appender got {a_out:?}, other producer got {b_out:?}"
    );
}

/// `sync: false` appends are acknowledged after their write; when the fdatasync that would
/// make them durable fails, `sync()` never reports success, the watermark never covers
/// them, and whatever a reopen finds of them is a correct prefix.
#[test]
fn failed_fsync_of_unsynced_appends_is_never_reported_durable() {
    let dir = TempDir::new("fail-nosync");
    let vfs = fault_vfs(FaultConfig {
        fail_sync_nth: Some(OPEN_SYNCS + 1),
        ..FaultConfig::default()
    });
    let wal = open_fresh(dir.path(), &vfs);
    let (p, sink) = typed_producer(&wal);
    let recs: Vec<Vec<u8>> = (1..=10).map(record).collect();
    let mut accepted = 0;
    for r in &recs {
        // The idle committer's own fdatasync may fail (and latch) between two appends.
        match p.append(r, false) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert!(is_failed_with(&e, libc::EIO), "{e:?}");
                break;
            }
        }
    }
    match p.sync() {
        Err(e) => assert!(is_failed_with(&e, libc::EIO), "{e:?}"),
        Ok(()) => match &sink.wait(accepted + 1, "sync")[accepted] {
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}"),
            Ok(w) => panic!("sync() reported durable up to {w} after the fdatasync failed"),
        },
    }
    assert_eq!(wal.last_seq(), 0, "nothing was ever durable");
    assert!(matches!(p.append(b"x", true), Err(ref e) if is_failed_with(e, libc::EIO)));
    assert!(wal.close().is_err());
    drop((p, wal));
    let wal = reopen_clean(dir.path());
    let all = read_all(&wal).unwrap();
    assert!(all.len() <= recs.len());
    for (i, (seq, data)) in all.iter().enumerate() {
        assert_eq!((*seq, data), (i as u64 + 1, &recs[i]));
    }
}

/// ENOSPC preparing segment 2 (`committer/roll.rs`, step 2, `segment.rs` `PrepState::error`):
/// the group that needs the new segment fails with ENOSPC and nothing else happens — the
/// log is not latched, appends that fit in segment 1 succeed, each later append needing
/// the roll retries the preparation and fails with ENOSPC again while the disk is full,
/// close is clean, no `.prep` file is left, and with space again the log rolls on.
#[test]
fn enospc_preparing_a_segment_fails_only_the_group_that_needs_it() {
    let dir = TempDir::new("enospc");
    let vfs = fault_vfs(FaultConfig {
        enospc_allocate_after_bytes: Some(SEGMENT_BYTES_FIRST),
        ..FaultConfig::default()
    });
    // Segment 1 takes the whole allowance: preparing segment 2 (asked for once segment 1
    // is half full) fails.
    let (wal, _) = Wal::open_on(dir.path(), &options(), vfs.clone()).unwrap();
    let (p, sink) = typed_producer(&wal);
    // Each append is a group: a 16-byte MARK, then the record. The last 16 bytes of a
    // segment are kept for its SEAL.
    let room = SEGMENT_BYTES_FIRST as usize - SEGMENT_HEADER_BYTES - 16;
    let big = 100_000usize;
    let fit = room / (16 + frame_bytes(big)); // records of `big` bytes that fit in segment 1
    let mut acked: Vec<Vec<u8>> = (0..fit).map(|i| vec![i as u8 + 1; big]).collect();
    let out = append_each(&p, &sink, &acked);
    assert!(
        out.iter()
            .enumerate()
            .all(|(i, o)| o.as_ref().ok() == Some(&(i as u64 + 1))),
        "{out:?}"
    );
    let mut left = room - fit * (16 + frame_bytes(big));
    let mut expect_outcomes = fit;
    let mut try_append = |rec: Vec<u8>, fits: bool, acked: &mut Vec<Vec<u8>>| {
        p.append(&rec, true).expect("ENOSPC does not latch the log");
        expect_outcomes += 1;
        let o = sink.wait(expect_outcomes, "append")[expect_outcomes - 1].clone();
        if fits {
            assert_eq!(
                o.as_ref().ok(),
                Some(&(acked.len() as u64 + 1)),
                "a {}-byte record fits",
                rec.len()
            );
            acked.push(rec);
        } else {
            match o {
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                    assert!(!matches!(e, WalError::Failed(_)), "not latched: {e:?}");
                }
                Ok(s) => panic!("a {}-byte record needing segment 2 got seq {s}", rec.len()),
            }
        }
    };
    // Needs the roll: ENOSPC. Again (the preparation is retried, and fails again).
    try_append(vec![0xEE; big], false, &mut acked);
    try_append(vec![0xEE; big], false, &mut acked);
    // Fits in what is left of segment 1.
    let fitting = left - 16 - 16 - 64;
    try_append(vec![0xAB; fitting], true, &mut acked);
    left -= 16 + frame_bytes(fitting);
    assert_eq!(left, 64);
    // Needs the roll again.
    try_append(vec![0xEE; 100], false, &mut acked);
    // Exactly fills segment 1 (with its MARK).
    try_append(vec![0xCD; 32], true, &mut acked);
    try_append(Vec::new(), false, &mut acked);
    assert_eq!(wal.last_seq(), acked.len() as u64);
    wal.close()
        .expect("ENOSPC while preparing a segment does not latch the log");
    drop((p, wal));
    let prep: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".prep"))
        .collect();
    assert!(prep.is_empty(), "left behind: {prep:?}");
    // With space again: everything acknowledged is there, and the log rolls.
    let wal = reopen_clean(dir.path());
    let (p, sink) = typed_producer(&wal);
    p.append(&vec![0x11; big], true).unwrap();
    assert_eq!(
        sink.wait(1, "roll")[0].as_ref().ok(),
        Some(&(acked.len() as u64 + 1))
    );
    acked.push(vec![0x11; big]);
    assert_eq!(wal.stats().segments, 2);
    wal.close().unwrap();
    drop((p, wal));
    assert_recovered(dir.path(), &acked);
}

/// ENOSPC allocating the very first segment: open fails with ENOSPC (nothing to latch),
/// and a later open with space creates the log normally.
#[test]
fn enospc_creating_the_first_segment_fails_open() {
    let dir = TempDir::new("enospc-open");
    let vfs = fault_vfs(FaultConfig {
        enospc_allocate_after_bytes: Some(SEGMENT_BYTES_FIRST / 2),
        ..FaultConfig::default()
    });
    match Wal::open_on(dir.path(), &options(), vfs) {
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}"),
        Ok(_) => panic!("open succeeded without space for a segment"),
    }
    let (wal, rep) =
        Wal::open_on(dir.path(), &options(), fault_vfs(FaultConfig::default())).unwrap();
    assert_eq!((rep.last_seq, rep.segments), (0, 1));
    let (p, sink) = typed_producer(&wal);
    p.append(b"first", true).unwrap();
    assert_eq!(sink.wait(1, "first append")[0].as_ref().ok(), Some(&1));
}
