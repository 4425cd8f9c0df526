//! Engine-only cost of point reads: loads `N` random 16-byte keys with 100-byte values,
//! then reads them in a random order from the memtable, and again after a flush and a full
//! compaction (from tables through the block cache).
//! `cargo run --release -p uringdb-lsm --example get_cost [N]`
use std::time::Instant;
use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbOptions};

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("uringdb-get-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(&dir, DbOptions::default()).unwrap();
    let w = db.blocking_writer();
    for c in 0..n / 1000 {
        let mut b = WriteBatch::new();
        for i in c * 1000..(c + 1) * 1000 {
            b.put(&key(i), &[7u8; 100]);
        }
        w.write(&b, false).unwrap();
    }
    let run = |label: &str| {
        let t0 = Instant::now();
        let mut found = 0;
        for j in 0..n {
            let i = j.wrapping_mul(7919) % n;
            if db.get_with(&key(i), None, |v| v.is_some()).unwrap() {
                found += 1;
            }
        }
        let s = t0.elapsed().as_secs_f64();
        println!(
            "{label}: {:.2} µs per get ({:.0}/s), {found} found",
            s * 1e6 / n as f64,
            n as f64 / s
        );
    };
    run("memtable");
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    run("tables (cold cache)");
    run("tables (warm cache)");
    println!("{:?}", db.stats().cache);
    drop(w);
    db.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
