//! Write stalls: with one immutable memtable allowed and flushes held back by the rate
//! limiter, a burst of writes fills memtables faster than they are flushed, so writes are
//! stopped (held in order, off the caller's thread) and released once flushes catch up.
//! Every write still completes, in order, with its data readable; each stall is counted and
//! timed in `stats()`.

use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbOptions};
use uringdb_wal::{BackendChoice, WalOptions};

#[test]
fn writes_stall_and_resume_in_order() {
    let dir = std::env::temp_dir().join(format!("uringdb-stall-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = DbOptions {
        wal: WalOptions {
            segment_bytes: 4 << 20,
            ring_bytes: 4 << 20,
            backend: BackendChoice::Portable,
            ..WalOptions::default()
        },
        memtable_bytes: 64 << 10,
        max_immutable_memtables: 1,
        // 1 MiB/s: each ~70 KB flush takes ~70 ms, far slower than the writes below.
        rate_limit_bytes_per_sec: 1 << 20,
        ..DbOptions::default()
    };
    let db = Db::open(&dir, opts).unwrap();
    let w = db.blocking_writer();
    let mut last_seq = 0;
    for i in 0..300u32 {
        let mut b = WriteBatch::new();
        for j in 0..4u32 {
            b.put(format!("k{i:04}-{j}").as_bytes(), &[b'v'; 1000]);
        }
        let seq = w.write(&b, false).unwrap();
        assert!(seq > last_seq, "writes complete in order");
        last_seq = seq;
    }
    let s = db.stats();
    assert!(
        s.stops >= 1 && s.stalls >= 1,
        "the burst must have stopped writes: {s:?}"
    );
    assert!(s.stall_us > 0, "stall time is counted: {s:?}");
    db.flush().unwrap();
    for i in (0..300u32).step_by(7) {
        assert_eq!(
            db.get(format!("k{i:04}-3").as_bytes(), None)
                .unwrap()
                .as_deref(),
            Some(&[b'v'; 1000][..])
        );
    }
    drop(w);
    db.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
