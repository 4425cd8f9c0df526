//! The commit pipeline (issue 10): group N+1 is written while the fdatasync of group N is in
//! flight, group N is acknowledged by that fdatasync alone, and a crash then loses group
//! N+1's unsynced bytes while group N's acknowledgement stands.
//!
//! The device is slow on purpose: a `FaultVfs` whose syncs complete `SYNC_DELAY` after they
//! are issued and cover only the writes made before that (`sync_delay_us`), so one
//! fdatasync is reliably in flight while the next group is written.

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uringdb_uring::{BackendChoice, FaultConfig, FaultVfs};
use uringdb_wal::{Wal, WalOptions};

const SYNC_DELAY: Duration = Duration::from_millis(300);

fn options(syncs_in_flight: usize) -> WalOptions {
    WalOptions {
        backend: BackendChoice::Portable,
        syncs_in_flight,
        ..small_options()
    }
}

fn slow_vfs() -> Arc<FaultVfs> {
    let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
    FaultVfs::new(
        inner,
        FaultConfig {
            sync_delay_us: SYNC_DELAY.as_micros() as u64,
            ..FaultConfig::default()
        },
    )
}

/// Polls `f` until it holds (or fails the test after 10 s).
fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_group_is_written_while_the_previous_fsync_runs_and_a_crash_keeps_only_the_acknowledged() {
    for syncs in [1, 2] {
        overlap_then_crash(syncs);
    }
}

fn overlap_then_crash(syncs: usize) {
    let dir = TempDir::new(&format!("pipeline-overlap-{syncs}"));
    let vfs = slow_vfs();
    let (wal, _) = Wal::open_on(dir.path(), &options(syncs), vfs.clone()).unwrap();
    let (p1, s1) = producer(&wal);
    let (p2, s2) = producer(&wal);
    let (a, b) = (record(1), record(2));

    p1.append(&a, true).unwrap();
    // Group 1 is written and its fdatasync issued (it sleeps SYNC_DELAY).
    until("group 1's write", || vfs.pending_bytes() > 0);
    let after_a = vfs.pending_bytes();
    // A third of the delay later, so that group 2's own fdatasync (a second one in flight,
    // with two sync threads; queued behind group 1's with one) completes well after
    // group 1's.
    std::thread::sleep(SYNC_DELAY / 3);
    p2.append(&b, true).unwrap();
    // Group 2 is written while group 1's fdatasync is still in flight.
    until("group 2's write", || vfs.pending_bytes() > after_a);
    assert!(
        s1.outcomes.lock().unwrap().is_empty(),
        "group 1 was acknowledged before its fdatasync completed"
    );

    // Group 1's fdatasync completes: it alone acknowledges group 1, while group 2's bytes,
    // written after it was issued, are still unsynced and group 2 is not acknowledged.
    let out1 = s1.wait(1);
    assert!(matches!(out1[0], Outcome::Ok(1)), "group 1: {:?}", out1[0]);
    let unsynced = vfs.pending_bytes();
    let b_acked = !s2.outcomes.lock().unwrap().is_empty();
    assert!(
        unsynced > 0 && !b_acked,
        "group 2 should be written but unsynced when group 1 is acknowledged \
         (unsynced {unsynced} B, group 2 acknowledged: {b_acked})"
    );

    // Crash now, before group 2's fdatasync completes: its bytes are lost.
    vfs.crash();
    let out2 = s2.wait(1);
    assert!(
        matches!(out2[0], Outcome::Err(..)),
        "group 2 must fail, not be acknowledged, after the crash: {:?}",
        out2[0]
    );
    drop((p1, p2));
    let _ = wal.close();
    drop(wal);

    let (wal, rep) = Wal::open_on(dir.path(), &options(syncs), slow_vfs()).unwrap();
    assert_eq!(
        rep.last_seq, 1,
        "the acknowledged group survives, the unsynced one does not"
    );
    assert_eq!(read_all(&wal).unwrap(), vec![(1, a)]);
    wal.close().unwrap();
}

#[test]
fn acknowledgements_follow_sequence_order_with_fsyncs_in_flight() {
    for syncs in [1, 2, 4] {
        ordered_acknowledgements(syncs);
    }
}

fn ordered_acknowledgements(syncs: usize) {
    // Several producers, sync and non-sync appends and sync markers, on a slow device so
    // that groups pile up behind fdatasyncs: every producer's outcomes arrive in the order
    // it appended, with increasing sequence numbers, a non-sync append never overtakes an
    // earlier durable one, and every acknowledged record is readable after close.
    let dir = TempDir::new(&format!("pipeline-order-{syncs}"));
    let vfs = {
        let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
        FaultVfs::new(
            inner,
            FaultConfig {
                sync_delay_us: 2_000,
                ..FaultConfig::default()
            },
        )
    };
    let (wal, _) = Wal::open_on(dir.path(), &options(syncs), vfs.clone()).unwrap();
    let wal = Arc::new(wal);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let (p, sink) = producer(&wal);
                let mut rng = Rng(t * 7919 + 1);
                let mut expected = 0;
                let mut recs = Vec::new();
                for i in 0..2000u64 {
                    if rng.below(10) == 0 {
                        p.sync().unwrap();
                    } else {
                        let rec = [t.to_le_bytes(), i.to_le_bytes()].concat();
                        p.append(&rec, rng.below(3) == 0).unwrap();
                        recs.push((expected, rec));
                    }
                    expected += 1;
                }
                (p, sink, recs, expected)
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut keep = Vec::new();
    for h in threads {
        let (p, sink, recs, n) = h.join().unwrap();
        let out = sink.wait(n);
        let mut last = 0;
        for (i, rec) in recs {
            match &out[i] {
                Outcome::Ok(seq) => {
                    assert!(*seq > last, "outcomes out of order: {seq} after {last}");
                    last = *seq;
                    acked.push((*seq, rec));
                }
                e => panic!("append failed without a fault: {e:?}"),
            }
        }
        keep.push(p);
    }
    drop(keep);
    wal.close().unwrap();
    drop(wal);
    let (wal, _) = Wal::open_on(dir.path(), &options(syncs), vfs).unwrap();
    let all = read_all(&wal).unwrap();
    acked.sort();
    assert_eq!(
        all, acked,
        "every acknowledged record, at its sequence number"
    );
    wal.close().unwrap();
}

#[test]
fn syncs_in_flight_is_validated_naming_the_field() {
    for bad in [0, uringdb_wal::limits::SYNCS_IN_FLIGHT_MAX + 1] {
        let e = options(bad).validate().unwrap_err();
        assert!(
            matches!(&e, uringdb_wal::WalError::InvalidOption { field, .. } if *field == "syncsInFlight"),
            "{bad}: {e}"
        );
    }
    for good in [1, uringdb_wal::limits::SYNCS_IN_FLIGHT_MAX] {
        options(good).validate().unwrap();
    }
}
