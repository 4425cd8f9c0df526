//! A seeded random model test of the database: thousands of random puts, deletes,
//! batches, point and range reads (both directions, bounds, limits), snapshots, flushes,
//! compactions and reopens, checked against an in-memory ordered map. Runs on both I/O
//! backends. A failure prints the seed and step.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use common::{small_db, XorShift as Rng};
use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbOptions, RangeOptions, SnapshotPin};
use uringdb_wal::BackendChoice;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Options that make flushes and compactions frequent.
pub fn small_options(backend: BackendChoice) -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        l0_compaction_trigger: 2,
        l0_slowdown_trigger: 8,
        l0_stop_trigger: 12,
        level_base_bytes: 1 << 20,
        target_file_bytes: 64 << 10,
        cache_bytes: 256 << 10,
        block_bytes: 1024,
        ..small_db(backend)
    }
}

fn key(r: &mut Rng) -> Vec<u8> {
    // A small key space so that overwrites and deletes hit existing keys; some empty keys.
    let k = r.below(600);
    if k == 0 {
        Vec::new()
    } else {
        format!("k{:05}", k * 7919 % 100_000).into_bytes()
    }
}

fn value(r: &mut Rng, step: usize) -> Vec<u8> {
    let len = r.below(300) as usize;
    let mut v = format!("v{step}-").into_bytes();
    v.resize(len.max(v.len()), b'x' + (step % 3) as u8);
    v
}

fn bound(r: &mut Rng) -> Bound<Vec<u8>> {
    match r.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(key(r)),
        _ => Bound::Excluded(key(r)),
    }
}

fn expect_range(m: &Model, o: &RangeOptions) -> Vec<(Vec<u8>, Vec<u8>)> {
    let lo = o.lower.as_ref().map(|v| v.clone());
    let hi = o.upper.as_ref().map(|v| v.clone());
    let valid = match (&lo, &hi) {
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a < b || (a == b && matches!((&lo, &hi), (Bound::Included(_), Bound::Included(_))))
        }
        _ => true,
    };
    if !valid {
        return Vec::new();
    }
    let it = m.range((lo, hi)).map(|(k, v)| (k.clone(), v.clone()));
    let mut v: Vec<_> = if o.reverse {
        it.rev().collect()
    } else {
        it.collect()
    };
    if let Some(l) = o.limit {
        v.truncate(l as usize);
    }
    if !o.values {
        for e in &mut v {
            e.1.clear();
        }
    }
    v
}

fn scan(
    db: &Db,
    o: &RangeOptions,
    snap: Option<&SnapshotPin>,
    r: &mut Rng,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = db.iter(o.clone(), snap);
    let mut out = Vec::new();
    loop {
        let n = 1 + r.below(50) as usize;
        let b = it.next_batch(n, 1 << 20).expect("next_batch");
        let mut at = 0;
        for pair in b.lens.chunks(2) {
            let (kl, vl) = (pair[0] as usize, pair[1] as usize);
            out.push((
                b.data[at..at + kl].to_vec(),
                b.data[at + kl..at + kl + vl].to_vec(),
            ));
            at += kl + vl;
        }
        if b.done {
            break;
        }
        assert!(
            !b.lens.is_empty(),
            "a batch that is not the last must not be empty"
        );
    }
    out
}

fn run(seed: u64, steps: usize, backend: BackendChoice, dir: &Path) {
    let mut r = Rng(seed.max(1));
    let opts = small_options(backend);
    let mut db = Db::open(dir, opts.clone()).expect("open");
    let mut w = db.blocking_writer();
    let mut model = Model::new();
    let mut snaps: Vec<(SnapshotPin, Model)> = Vec::new();
    // (flushes, compactions) of closed opens: stats count since open.
    let mut done = (0u64, 0u64);
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        match r.below(100) {
            0..=39 => {
                let (k, v) = (key(&mut r), value(&mut r, step));
                w.put(&k, &v).expect(&ctx);
                model.insert(k, v);
            }
            40..=49 => {
                let k = key(&mut r);
                w.delete(&k).expect(&ctx);
                model.remove(&k);
            }
            50..=59 => {
                let mut b = WriteBatch::new();
                for _ in 0..1 + r.below(40) {
                    let k = key(&mut r);
                    if r.below(4) == 0 {
                        b.delete(&k);
                        model.remove(&k);
                    } else {
                        let v = value(&mut r, step);
                        b.put(&k, &v);
                        model.insert(k, v);
                    }
                }
                w.write(&b, r.below(2) == 0).expect(&ctx);
            }
            60..=74 => {
                let k = key(&mut r);
                assert_eq!(
                    db.get(&k, None).expect(&ctx),
                    model.get(&k).cloned(),
                    "{ctx}: get {:?}",
                    String::from_utf8_lossy(&k)
                );
            }
            75..=84 => {
                let o = RangeOptions {
                    lower: bound(&mut r),
                    upper: bound(&mut r),
                    reverse: r.below(2) == 0,
                    limit: if r.below(3) == 0 {
                        Some(r.below(30))
                    } else {
                        None
                    },
                    values: r.below(4) != 0,
                };
                assert_eq!(
                    scan(&db, &o, None, &mut r),
                    expect_range(&model, &o),
                    "{ctx}: range {o:?}"
                );
            }
            85..=88 => {
                if snaps.len() < 4 {
                    snaps.push((db.snapshot(), model.clone()));
                } else {
                    let (s, m) = snaps.remove(r.below(snaps.len() as u64) as usize);
                    let o = RangeOptions {
                        lower: bound(&mut r),
                        upper: Bound::Unbounded,
                        reverse: r.below(2) == 0,
                        limit: None,
                        values: true,
                    };
                    assert_eq!(
                        scan(&db, &o, Some(&s), &mut r),
                        expect_range(&m, &o),
                        "{ctx}: snapshot range"
                    );
                    let k = key(&mut r);
                    assert_eq!(
                        db.get(&k, Some(&s)).expect(&ctx),
                        m.get(&k).cloned(),
                        "{ctx}: snapshot get"
                    );
                }
            }
            89..=92 => db.flush().expect(&ctx),
            93..=95 => {
                let (a, b) = (key(&mut r), key(&mut r));
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                if r.below(2) == 0 {
                    db.compact_range(Some(&lo), Some(&hi)).expect(&ctx)
                } else {
                    db.compact_range(None, None).expect(&ctx)
                }
            }
            _ => {
                // Reopen: snapshots do not survive it.
                snaps.clear();
                let st = db.stats();
                done = (done.0 + st.flushes, done.1 + st.compactions);
                drop(w);
                db.close().expect(&ctx);
                drop(db);
                db = Db::open(dir, opts.clone()).expect(&ctx);
                w = db.blocking_writer();
            }
        }
    }
    let all = RangeOptions::default();
    assert_eq!(
        scan(&db, &all, None, &mut r),
        expect_range(&model, &all),
        "seed {seed}: final scan"
    );
    let st = db.stats();
    let (flushes, compactions) = (done.0 + st.flushes, done.1 + st.compactions);
    assert!(
        flushes > 0 && compactions > 0,
        "seed {seed}: the test must exercise flushes ({flushes}) and compactions ({compactions})"
    );
    drop(w);
    db.close().expect("close");
}

fn backends() -> Vec<BackendChoice> {
    vec![BackendChoice::Portable, BackendChoice::IoUring]
}

#[test]
fn model_many_seeds() {
    for backend in backends() {
        for seed in 1..=6u64 {
            let dir = tempdir(&format!("model-{seed}-{backend:?}"));
            run(seed * 0x9E37_79B9, 1500, backend, &dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[test]
fn model_long_run() {
    let dir = tempdir("model-long");
    run(0xDEAD_BEEF, 6000, BackendChoice::Auto, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system temp dir.
pub fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("uringdb-lsm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}
