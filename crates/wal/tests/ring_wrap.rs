//! Commit groups that cross the end of the ring buffer (`ring.rs`: frames never straddle the
//! end; a frame that would gets a pad before it, and one that fits exactly gets none).
//!
//! The committer gathers a group's frames into iovecs, merging frames that are contiguous
//! in ring position. A frame that ends exactly at the end of the buffer is followed by one
//! at buffer offset 0 whose *position* is contiguous with it, though its *bytes* are not.
mod common;
use common::*;
use std::sync::Arc;
use uringdb_wal::format::frame_bytes;
use uringdb_wal::{Wal, WalOptions};

const RING_BYTES: usize = 1 << 20;

/// Waits up to 5 s for `n` outcomes (a failing engine must fail this test quickly, not
/// after the 30 s of `Sink::wait`); returns what arrived.
fn outcomes_within(sink: &Sink, n: usize) -> Vec<Outcome> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let o = sink.outcomes.lock().unwrap().clone();
        if o.len() >= n || std::time::Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Bug: with no pad at the end of the buffer, the committer merged the last frame of a lap
/// and the first frame of the next into one iovec run that crossed the end of the buffer;
/// `Ring::slice` asserts against that, so the committer thread panicked and the log failed
/// every append with "internal error: the committer thread panicked". Any record size hits
/// it when a frame ends exactly at the buffer end inside a group; frame sizes that divide
/// the ring hit it on every lap. Here: 4 KiB frames in a 1 MiB ring, a 100 ms commit delay
/// so that the 192 appends after the first 128 form one group across the end of the buffer.
#[test]
fn regression_group_across_the_ring_end_without_a_pad() {
    let dir = TempDir::new("wrap");
    let options = WalOptions {
        ring_bytes: RING_BYTES,
        commit_delay_us: 100_000,
        ..small_options()
    };
    let payload = 4096 - 16;
    assert_eq!(RING_BYTES % frame_bytes(payload), 0);
    let per_lap = (RING_BYTES / frame_bytes(payload)) as u64; // 256
    let (wal, _) = Wal::open(dir.path(), &options).unwrap();
    let (p, sink) = producer(&wal);
    let rec = |i: u64| -> Vec<u8> { (0..payload).map(|j| (i as usize * 7 + j) as u8).collect() };
    // Half a lap, committed (waited for without `sync()`: a sync marker takes 16 bytes of
    // ring, which would shift the frames off the end of the buffer).
    for i in 1..=per_lap / 2 {
        p.append(&rec(i), false).unwrap();
    }
    assert_eq!(
        outcomes_within(&sink, per_lap as usize / 2).len() as u64,
        per_lap / 2
    );
    // Three quarters of a lap in one group (the idle committer waits 100 ms for company).
    let n = per_lap / 2 + per_lap * 3 / 4;
    for i in per_lap / 2 + 1..=n {
        p.append(&rec(i), false).unwrap();
    }
    p.sync().unwrap();
    let out = outcomes_within(&sink, n as usize + 1);
    let failed: Vec<_> = out
        .iter()
        .filter(|o| !matches!(o, Outcome::Ok(_)))
        .collect();
    assert!(
        out.len() as u64 == n + 1 && failed.is_empty(),
        "{} of {} outcomes arrived, {} failed, first failure: {:?}",
        out.len(),
        n + 1,
        failed.len(),
        failed.first()
    );
    let all = read_all(&wal).unwrap();
    assert_eq!(all.len() as u64, n);
    for (seq, data) in &all {
        assert!(*data == rec(*seq), "record {seq}");
    }
    wal.close().unwrap();
}

/// Many producers streaming fixed-size records (frames that divide the ring) through a
/// small ring for two seconds: every lap ends exactly at the buffer end, under load, and
/// producers contend for reservations while the committer releases space.
///
/// Also a (probabilistic) reproducer of `Ring::try_reserve` computing
/// `pos + total - released` with a `pos` loaded before `released`: a producer preempted
/// between the two loads while others reserve and the committer releases past `pos +
/// total` underflows ("attempt to subtract with overflow" in debug builds; in release
/// builds a spurious "full" and a 5 ms back-pressure wait). The loom model
/// (`ring::loom`, run without `--release`) finds it deterministically.
#[test]
fn fixed_size_frames_stream_through_many_laps() {
    let dir = TempDir::new("wrap-stream");
    let options = WalOptions {
        ring_bytes: RING_BYTES,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir.path(), &options).unwrap();
    let wal = Arc::new(wal);
    let started = std::time::Instant::now();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let (p, sink) = producer(&wal);
                let mut n = 0u64;
                while started.elapsed() < std::time::Duration::from_secs(2) {
                    let mut r = [0u8; 16]; // 32-byte frames
                    r[..8].copy_from_slice(&t.to_le_bytes());
                    r[8..].copy_from_slice(&n.to_le_bytes());
                    p.append(&r, false).unwrap();
                    n += 1;
                }
                p.sync().unwrap();
                let out = sink.wait(n as usize + 1);
                assert!(
                    out.iter().all(|o| matches!(o, Outcome::Ok(_))),
                    "producer {t}"
                );
                (p, n)
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap().1).sum();
    let laps = total * 32 / RING_BYTES as u64;
    assert!(laps >= 2, "only {laps} laps of the ring");
    assert_eq!(read_all(&wal).unwrap().len() as u64, total);
}
