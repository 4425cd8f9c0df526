//! Cost of memtable inserts alone: `N` random 16-byte keys with 100-byte values.
//! `cargo run --release -p uringdb-lsm --example memtable_cost [N]`
use std::time::Instant;
use uringdb_lsm::memtable::MemTable;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500_000);
    let m = MemTable::new(256 << 20);
    let v = [7u8; 100];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let t0 = Instant::now();
    for seq in 1..=n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&x.to_be_bytes());
        m.put(&k, seq, &v).unwrap();
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "{n} inserts: {:.2} µs each ({:.0}/s)",
        s * 1e6 / n as f64,
        n as f64 / s
    );
}
