//! A/B of segment recycling in one process and one run: the same durable append stream
//! with the log truncated behind it as a database's flushes do, once with
//! `recycle_segments: 0` (freed segments deleted, every new one zero-filled) and once with
//! the default (freed segments reused), alternating per round.
//!
//! `cargo run --release -p uringdb-wal --example recycle_ab -- [rounds] [records]`
//!
//! Each run: a fresh log (default options: segments grow from 256 KiB to 64 MiB), `records`
//! appends of 100 bytes (`sync: true`) with up to 1024 in flight, and after every 64 MiB of
//! appended payload a `truncate_before` of everything durable at the previous truncation
//! (the memtable before the last one is flushed). Reports per run: appends/s, CPU µs per
//! append (user + system of the whole process: every thread of the log), disk bytes per
//! append (`write_bytes` of /proc/self/io), fdatasync latency (p50/p90/p99 from the log's
//! stats) and the recycled/fresh segment counts from the log's stats. Medians over rounds.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use uringdb_wal::{CompletionSink, GroupInfo, Wal, WalError, WalOptions};

#[derive(Default)]
struct Count {
    done: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
}

impl CompletionSink for Count {
    fn completed(&self, seqs: &[u64], _: &GroupInfo) {
        self.done.fetch_add(seqs.len() as u64, Ordering::Release);
        let _g = self.lock.lock().unwrap();
        self.cv.notify_all();
    }
    fn failed(&self, _: usize, e: &WalError) {
        panic!("append failed: {e}");
    }
}

impl Count {
    fn wait_until(&self, n: u64) {
        let mut g = self.lock.lock().unwrap();
        while self.done.load(Ordering::Acquire) < n {
            g = self.cv.wait(g).unwrap();
        }
    }
}

/// Process CPU time (user + system), in microseconds; 0 where getrusage does not exist.
#[cfg(unix)]
fn cpu_us() -> f64 {
    // SAFETY: getrusage writes the struct it is given; a zeroed rusage is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer to a live rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

#[cfg(not(unix))]
fn cpu_us() -> f64 {
    0.0
}

fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| {
                    l.strip_prefix("write_bytes: ")
                        .map(|v| v.trim().parse().ok())
                })
                .flatten()
        })
        .unwrap_or(0)
}

struct Run {
    ops: f64,
    cpu_us: f64,
    disk: f64,
    fsync: (f64, f64, f64),
    recycled: u64,
    fresh: u64,
    truncations: u64,
}

fn run(recycle: usize, records: u64, round: usize) -> Run {
    let dir = std::env::temp_dir().join(format!(
        "uringdb-recycle-ab-{}-{recycle}-{round}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = WalOptions {
        recycle_segments: recycle,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&dir, &opts).expect("open");
    let sink = Arc::new(Count::default());
    let p = wal.producer(sink.clone());
    let rec = [0x5Au8; 100];
    let per_memtable = (64 << 20) / rec.len() as u64;
    let (mut floor, mut truncations) = (0u64, 0u64);
    let (cpu0, io0, t0) = (cpu_us(), write_bytes(), std::time::Instant::now());
    for i in 1..=records {
        if i > 1024 {
            sink.wait_until(i - 1024);
        }
        p.append(&rec, true).expect("append");
        if i % per_memtable == 0 {
            // The memtable before this one is flushed: its records leave the log.
            if floor > 0 {
                wal.truncate_before(floor).expect("truncate");
                truncations += 1;
            }
            floor = wal.last_seq();
        }
    }
    sink.wait_until(records);
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, io) = (cpu_us() - cpu0, write_bytes() - io0);
    let st = wal.stats();
    drop(p);
    wal.close().expect("close");
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        ops: records as f64 / secs,
        cpu_us: cpu / records as f64,
        disk: io as f64 / records as f64,
        fsync: (st.fsync.p50, st.fsync.p90, st.fsync.p99),
        recycled: st.recycled_segments,
        fresh: st.fresh_segments,
        truncations,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let records: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000_000);
    let variants = [0usize, uringdb_wal::limits::RECYCLE_SEGMENTS_DEFAULT];
    let mut results: Vec<Vec<Run>> = vec![Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (k, &v) in variants.iter().enumerate() {
            results[k].push(run(v, records, round));
        }
    }
    println!("{rounds} round(s) of {records} durable 100-byte appends, 1024 in flight, truncated every 64 MiB; medians");
    println!("| recycle_segments | appends/s | CPU µs/append | disk bytes/append | fdatasync p50 / p90 / p99 µs | recycled / fresh segments (stats) | truncations |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (k, &v) in variants.iter().enumerate() {
        let r = &results[k];
        let m = |f: &dyn Fn(&Run) -> f64| median(r.iter().map(f).collect());
        println!(
            "| {v} | {:.0} | {:.3} | {:.1} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} | {:.0} |",
            m(&|x| x.ops),
            m(&|x| x.cpu_us),
            m(&|x| x.disk),
            m(&|x| x.fsync.0),
            m(&|x| x.fsync.1),
            m(&|x| x.fsync.2),
            m(&|x| x.recycled as f64),
            m(&|x| x.fresh as f64),
            m(&|x| x.truncations as f64),
        );
    }
    for (k, &v) in variants.iter().enumerate() {
        let ops: Vec<String> = results[k]
            .iter()
            .map(|x| format!("{:.0}k", x.ops / 1e3))
            .collect();
        println!(
            "recycle_segments {v}: appends/s per round {}",
            ops.join(", ")
        );
    }
}
