//! Engine-only cost of durable puts (no JavaScript): one thread issues `N` puts of 16-byte
//! random keys and 100-byte values through a `DbWriter` as fast as the commit queue takes
//! them, and a sink counts completions. Prints puts/s, records per group and the share of
//! time the committer spends applying to the memtable.
//!
//! `cargo run --release -p uringdb-lsm --example put_cost [N] [io_uring|portable]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbOptions};
use uringdb_wal::{BackendChoice, CompletionSink, GroupInfo, WalError};

struct Count(AtomicU64);
impl CompletionSink for Count {
    fn completed(&self, seqs: &[u64], _g: &GroupInfo) {
        self.0.fetch_add(seqs.len() as u64, Ordering::Release);
    }
    fn failed(&self, _count: usize, e: &WalError) {
        panic!("{e}");
    }
}

/// `write_bytes` and `wchar` of /proc/self/io.
fn proc_io() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("write_bytes:"), field("wchar:"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let backend = match args.next().as_deref() {
        Some("portable") => BackendChoice::Portable,
        Some("io_uring") => BackendChoice::IoUring,
        _ => BackendChoice::Auto,
    };
    let dir = std::env::temp_dir().join(format!("uringdb-put-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut opts = DbOptions::default();
    opts.wal.backend = backend;
    let db = Db::open(&dir, opts).unwrap();
    let count = Arc::new(Count(AtomicU64::new(0)));
    let w = db.writer(count.clone());
    let value = [7u8; 100];
    let io0 = proc_io();
    let t0 = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&x.to_be_bytes());
        let mut b = WriteBatch::new();
        b.put(&key, &value);
        w.write(b.as_bytes(), true).unwrap();
    }
    while count.0.load(Ordering::Acquire) < n {
        std::thread::yield_now();
    }
    let secs = t0.elapsed().as_secs_f64();
    let s = db.stats();
    println!(
        "{n} durable puts in {secs:.2} s: {:.0}/s, {:.0} records/group, fsync p50 {:.0} µs, flushes {}",
        n as f64 / secs,
        s.log.appends as f64 / s.log.groups.max(1) as f64,
        s.log.fsync.p50,
        s.flushes
    );
    db.close().unwrap();
    let io1 = proc_io();
    println!(
        "user bytes {}, engine-counted bytes written {} (log {}), /proc/self/io write_bytes {} wchar {}",
        s.user_bytes_written,
        s.log.bytes_written + s.flush_bytes_written + s.compaction_bytes_written,
        s.log.bytes_written,
        io1.0 - io0.0,
        io1.1 - io0.1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
