//! Engine-only cost of a full ordered scan in batches (as the binding's range reads make
//! them): loads `N` random 16-byte keys with 100-byte values, then scans them from the
//! memtable, and again after a flush and a full compaction (from tables), keys only and
//! keys with values, reusing one batch.
//! `cargo run --release -p uringdb-lsm --example scan_cost [N]`
use std::time::Instant;
use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbOptions, IterBatch, RangeOptions};

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
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("uringdb-scan-cost-{}", std::process::id()));
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
        for values in [false, true] {
            let t0 = Instant::now();
            let mut it = db.iter(
                RangeOptions {
                    values,
                    ..RangeOptions::default()
                },
                None,
            );
            let mut batch = IterBatch::default();
            let mut count = 0u64;
            while !batch.done {
                it.next_batch_into(4096, 512 * 1024, &mut batch).unwrap();
                count += batch.lens.len() as u64 / 2;
            }
            let s = t0.elapsed().as_secs_f64();
            assert_eq!(count, n);
            println!(
                "{label} ({}): {:.3} µs per key ({:.0} keys/s)",
                if values { "keys and values" } else { "keys" },
                s * 1e6 / n as f64,
                n as f64 / s
            );
        }
    };
    run("memtable");
    db.flush().unwrap();
    run("level 0 (one table per flush)");
    db.compact_range(None, None).unwrap();
    run("compacted");
    run("compacted, again");
    drop(w);
    db.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
