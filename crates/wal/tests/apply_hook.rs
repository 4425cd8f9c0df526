//! The apply hook sees every written record, in sequence order, before the record's
//! completion is delivered, and never sees a record whose write failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use uringdb_wal::{ApplyHook, CompletionSink, GroupInfo, Wal, WalError, WalOptions};

#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<(u64, Vec<u8>)>>,
    last: AtomicU64,
}

impl ApplyHook for Recorder {
    fn apply(&self, records: &mut dyn Iterator<Item = (u64, &[u8])>) {
        let mut a = self.applied.lock().unwrap();
        for (seq, payload) in records {
            assert_eq!(
                seq,
                self.last.load(Ordering::SeqCst) + 1,
                "in order, no gaps"
            );
            self.last.store(seq, Ordering::SeqCst);
            a.push((seq, payload.to_vec()));
        }
    }
}

struct Sink {
    hook: Arc<Recorder>,
    tx: Mutex<mpsc::Sender<Result<u64, WalError>>>,
}

impl CompletionSink for Sink {
    fn completed(&self, seqs: &[u64], _g: &GroupInfo) {
        for &s in seqs {
            // Applied before completed.
            assert!(self.hook.last.load(Ordering::SeqCst) >= s);
            let _ = self.tx.lock().unwrap().send(Ok(s));
        }
    }
    fn failed(&self, count: usize, e: &WalError) {
        for _ in 0..count {
            let _ = self.tx.lock().unwrap().send(Err(e.clone()));
        }
    }
}

#[test]
fn hook_applies_in_order_before_completion() {
    let dir = std::env::temp_dir().join(format!("uringdb-wal-hook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hook = Arc::new(Recorder::default());
    let opts = WalOptions {
        segment_bytes: 1 << 20,
        ring_bytes: 1 << 20,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open_with(&dir, &opts, None, Some(hook.clone())).unwrap();
    let (tx, rx) = mpsc::channel();
    let p = wal.producer(Arc::new(Sink {
        hook: hook.clone(),
        tx: Mutex::new(tx),
    }));
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let p2 = wal.producer(Arc::new(Sink {
                hook: hook.clone(),
                tx: Mutex::new(mpsc::channel().0),
            }));
            std::thread::spawn(move || {
                for i in 0..2000u32 {
                    let mut rec = vec![0xFFu8];
                    rec.extend_from_slice(format!("t{t}-{i}").as_bytes());
                    p2.append(&rec, i % 7 == 0).unwrap();
                }
                p2.sync().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
            })
        })
        .collect();
    for i in 0..3000u32 {
        // Records of up to ~40 KiB: groups cross segment boundaries.
        let rec = vec![(i % 251) as u8; (i as usize * 13) % 40_000];
        p.append(&rec, i % 5 == 0).unwrap();
    }
    p.sync().unwrap();
    let mut last = 0;
    for _ in 0..3001 {
        last = rx.recv().unwrap().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    wal.close().unwrap();
    let applied = hook.applied.lock().unwrap();
    assert_eq!(applied.len() as u64, 3000 + 6000);
    assert!(last >= 3000);
    // Every payload arrives intact.
    for (seq, payload) in applied.iter() {
        let (_, want) = {
            let s = String::from_utf8_lossy(payload);
            (seq, s)
        };
        assert!(!want.is_empty() || payload.is_empty());
    }
    let ours: Vec<&Vec<u8>> = applied
        .iter()
        .map(|(_, p)| p)
        .filter(|p| p.first() != Some(&0xFF))
        .collect();
    for (i, p) in ours.iter().enumerate() {
        let len = (i * 13) % 40_000;
        if len > 0 {
            assert_eq!(p.len(), len, "record {i}");
            assert!(p.iter().all(|&b| b == (i % 251) as u8));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
