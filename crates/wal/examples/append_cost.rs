//! Measures the producer-side cost of one append (ns/op) without the JS boundary:
//! `cargo run --release -p uringdb-wal --example append_cost`.
use std::sync::Arc;
use uringdb_wal::{CompletionSink, GroupInfo, Wal, WalError, WalOptions};

struct Count(std::sync::atomic::AtomicU64);
impl CompletionSink for Count {
    fn completed(&self, seqs: &[u64], _: &GroupInfo) {
        self.0
            .fetch_add(seqs.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    fn failed(&self, _: usize, _: &WalError) {}
}

fn main() {
    let dir = std::env::temp_dir().join(format!("uringdb-append-cost-{}", std::process::id()));
    let opts = WalOptions {
        segment_bytes: 256 << 20,
        ring_bytes: 256 << 20,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&dir, &opts).expect("open");
    let sink = Arc::new(Count(Default::default()));
    let p = wal.producer(sink.clone());
    let rec = [7u8; 100];
    for sync in [false, true] {
        for _ in 0..3 {
            let n = 300_000;
            let t0 = std::time::Instant::now();
            for _ in 0..n {
                p.append(&rec, sync).expect("append");
            }
            let dt = t0.elapsed();
            println!(
                "sync={sync} append: {:.0} ns/op",
                dt.as_nanos() as f64 / n as f64
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    drop(p);
    wal.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
}
