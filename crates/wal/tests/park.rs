//! Non-blocking appends (`Producer::try_*`): a full ring parks the rest of a run with the
//! caller instead of blocking it, and the committer's space release calls
//! `space_available` once per registration — one call per parked producer per group, never
//! per write, and none lost (every registration is answered, also on close).
mod common;
use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use uringdb_wal::{CompletionSink, GroupInfo, Wal, WalError, WalOptions};

/// Records outcomes (through the common sink) and counts `space_available` calls, with a
/// condvar the test parks on (as the binding's JS thread would, between turns).
#[derive(Default)]
struct ParkSink {
    inner: Sink,
    space_calls: AtomicU64,
    space: Mutex<u64>,
    space_cv: Condvar,
}

impl CompletionSink for ParkSink {
    fn completed(&self, seqs: &[u64], group: &GroupInfo) {
        self.inner.completed(seqs, group);
    }
    fn failed(&self, count: usize, error: &WalError) {
        self.inner.failed(count, error);
    }
    fn space_available(&self) {
        self.space_calls.fetch_add(1, Ordering::SeqCst);
        *self.space.lock().unwrap() += 1;
        self.space_cv.notify_all();
    }
}

impl ParkSink {
    /// Waits until `space_available` was called more than `seen` times (30 s guard: a lost
    /// wake-up fails the test instead of hanging it).
    fn wait_space(&self, seen: u64) -> u64 {
        let g = self.space.lock().unwrap();
        let (g, t) = self
            .space_cv
            .wait_timeout_while(g, Duration::from_secs(30), |n| *n <= seen)
            .unwrap();
        assert!(!t.timed_out(), "space_available never came: a lost wake-up");
        *g
    }
}

/// 800 records of 60 KiB through a 1 MiB ring, handed over in runs of 16 without ever
/// blocking: every refusal is answered by exactly one `space_available` per registration,
/// the rest of the run is retried then, and all records complete in order and read back.
#[test]
fn full_ring_parks_runs_and_space_release_resumes_them_in_order() {
    let dir = TempDir::new("park");
    let options = WalOptions {
        // The idle committer waits 20 ms for company before its first group, so the first
        // run overfills the ring while nothing has been released yet.
        commit_delay_us: 20_000,
        segment_bytes: 64 << 20,
        ..small_options()
    };
    let (wal, _) = Wal::open(dir.path(), &options).unwrap();
    let sink = Arc::new(ParkSink::default());
    let p = wal.producer(sink.clone());
    const N: usize = 800;
    const RUN: usize = 16;
    let rec = |i: usize| -> Vec<u8> { (0..60 << 10).map(|j| (i * 31 + j) as u8).collect() };
    let (mut next, mut registrations, mut parks, mut seen) = (0usize, 0u64, 0u64, 0u64);
    while next < N {
        let end = (next + RUN).min(N);
        let recs: Vec<Vec<u8>> = (next..end).map(rec).collect();
        let data: Vec<u8> = recs.concat();
        let lens: Vec<u32> = recs.iter().map(|r| r.len() as u32).collect();
        let entries: Vec<u32> = vec![1 << 1; recs.len()];
        let o = p.try_append_packed(&data, &lens, &entries).unwrap();
        registrations += u64::from(o.registered);
        next += o.accepted;
        if o.full {
            parks += 1;
            assert!(o.accepted < recs.len());
            seen = sink.wait_space(seen);
        }
    }
    p.sync().unwrap();
    let outcomes = sink.inner.wait(N + 1);
    assert!(
        parks > 0,
        "a burst of 47 MiB through a 1 MiB ring must park"
    );
    let seqs: Vec<u64> = outcomes[..N]
        .iter()
        .map(|o| match o {
            Outcome::Ok(s) => *s,
            Outcome::Err(e, _) => panic!("append failed: {e}"),
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no gaps"
    );
    let read = read_all(&wal).unwrap();
    assert_eq!(read.len(), N);
    for (i, (_, data)) in read.iter().enumerate() {
        assert!(*data == rec(i), "record {i} reads back");
    }
    wal.close().unwrap();
    // Every registration was answered exactly once (close answers any left).
    assert_eq!(sink.space_calls.load(Ordering::SeqCst), registrations);
}

/// A producer parked on a full ring when the log closes is answered by close (and its
/// retry is refused as closed), so a caller waiting for room never waits forever.
#[test]
fn close_answers_a_parked_producer() {
    let dir = TempDir::new("park-close");
    let options = WalOptions {
        commit_delay_us: 100_000,
        ..small_options()
    };
    let (wal, _) = Wal::open(dir.path(), &options).unwrap();
    let sink = Arc::new(ParkSink::default());
    let p = wal.producer(sink.clone());
    let big = vec![7u8; 200 << 10];
    let mut registered = 0u64;
    let mut parked = false;
    for _ in 0..64 {
        let o = p.try_append_many(&[&big], false).unwrap();
        registered += u64::from(o.registered);
        if o.full {
            parked = true;
            break;
        }
    }
    assert!(
        parked,
        "64 x 200 KiB cannot fit a 1 MiB ring held by a 100 ms commit delay"
    );
    wal.close().unwrap();
    assert_eq!(sink.space_calls.load(Ordering::SeqCst), registered);
    assert!(matches!(
        p.try_append_many(&[&big], false),
        Err(WalError::Closed)
    ));
}
