//! Issue 11, two-phase commit: prepare / commit / rollback records in the log, the key locks
//! prepared transactions hold, their invisibility until commit, and their recovery: replay
//! rebuilds the table from the whole log, flush never truncates past a live prepare, and a
//! `FaultVfs` crash model checks that every acknowledged prepare is listed (or finished as
//! acknowledged) and no commit is half applied.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{small_db, TempDir, XorShift as Rng};
use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbError, DbOptions, PreparedTxn};
use uringdb_wal::{BackendChoice, FaultConfig, FaultVfs};

fn options() -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        ..small_db(BackendChoice::Portable)
    }
}

fn batch(ops: &[(&str, Option<&str>)]) -> WriteBatch {
    let mut b = WriteBatch::new();
    for (k, v) in ops {
        match v {
            Some(v) => b.put(k.as_bytes(), v.as_bytes()),
            None => b.delete(k.as_bytes()),
        };
    }
    b
}

fn get(db: &Db, k: &str) -> Option<String> {
    db.get(k.as_bytes(), None)
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

fn txids(v: &[PreparedTxn]) -> Vec<String> {
    v.iter().map(|t| t.txid.clone()).collect()
}

#[test]
fn prepared_writes_are_invisible_locked_and_applied_at_commit() {
    let dir = TempDir::new("txn-basic");
    let db = Db::open(dir.path(), options()).unwrap();
    let w = db.blocking_writer();
    w.put(b"a", b"old").unwrap();
    let p = w
        .prepare(
            "t1",
            &batch(&[("a", Some("new")), ("b", Some("1")), ("c", None)]),
        )
        .unwrap();
    assert_eq!(
        get(&db, "a").as_deref(),
        Some("old"),
        "prepared writes are invisible"
    );
    assert_eq!(get(&db, "b"), None);
    let list = db.prepared_transactions();
    assert_eq!(txids(&list), ["t1"]);
    assert_eq!(list[0].seq, p);
    assert_eq!(list[0].ops.len(), 3);
    assert_eq!(db.stats().prepared_transactions, 1);
    // Locked keys: put, delete, batch and prepare are refused at once, naming the holder.
    for r in [
        w.put(b"a", b"x"),
        w.delete(b"c"),
        w.write(&batch(&[("z", Some("1")), ("b", Some("2"))]), true),
        w.prepare("t2", &batch(&[("c", Some("1"))])),
    ] {
        match r {
            Err(DbError::Conflict { txid, .. }) => assert_eq!(txid, "t1"),
            r => panic!("expected a conflict, got {r:?}"),
        }
    }
    assert!(matches!(
        w.prepare("t1", &batch(&[("q", Some("1"))])),
        Err(DbError::TxnExists(t)) if t == "t1"
    ));
    assert!(matches!(w.finish_prepared("nope", true), Err(DbError::TxnNotFound(t)) if t == "nope"));
    // A key no transaction holds is writable.
    w.put(b"free", b"1").unwrap();
    let c = w.finish_prepared("t1", true).unwrap();
    assert!(c > p);
    assert_eq!(get(&db, "a").as_deref(), Some("new"));
    assert_eq!(get(&db, "b").as_deref(), Some("1"));
    assert!(db.prepared_transactions().is_empty());
    assert!(matches!(
        w.finish_prepared("t1", true),
        Err(DbError::TxnNotFound(_))
    ));
    // Released: the keys are writable again.
    w.put(b"a", b"after").unwrap();
    // Rollback drops the operations and releases the locks.
    w.prepare("t3", &batch(&[("a", Some("rolled"))])).unwrap();
    assert!(matches!(w.put(b"a", b"x"), Err(DbError::Conflict { .. })));
    w.finish_prepared("t3", false).unwrap();
    assert_eq!(get(&db, "a").as_deref(), Some("after"));
    w.put(b"a", b"again").unwrap();
    assert_eq!(db.stats().prepared_transactions, 0);
    db.close().unwrap();
}

#[test]
fn prepared_transactions_survive_restarts_flushes_and_log_truncation() {
    let dir = TempDir::new("txn-restart");
    {
        let db = Db::open(dir.path(), options()).unwrap();
        let w = db.blocking_writer();
        w.prepare("keep", &batch(&[("k", Some("v")), ("gone", None)]))
            .unwrap();
        w.prepare("done", &batch(&[("d", Some("1"))])).unwrap();
        w.prepare("undo", &batch(&[("u", Some("1"))])).unwrap();
        w.finish_prepared("done", true).unwrap();
        w.finish_prepared("undo", false).unwrap();
        // Enough writes for several flushes and log truncations past the prepare.
        let big = vec![b'x'; 1000];
        for i in 0..2000u32 {
            w.put(format!("fill{i:05}").as_bytes(), &big).unwrap();
        }
        db.flush().unwrap();
        assert!(db.stats().flushes > 1);
        assert!(db.stats().flushed_seq > db.prepared_transactions()[0].seq);
        db.close().unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..2 {
        let db = Db::open(dir.path(), options()).unwrap();
        let list = db.prepared_transactions();
        assert_eq!(txids(&list), ["keep"]);
        assert_eq!(get(&db, "d").as_deref(), Some("1"));
        assert_eq!(get(&db, "u"), None);
        assert_eq!(get(&db, "k"), None);
        assert!(matches!(
            db.blocking_writer().put(b"k", b"x"),
            Err(DbError::Conflict { txid, .. }) if txid == "keep"
        ));
        seen.push(list);
        db.close().unwrap();
    }
    assert_eq!(seen[0], seen[1], "two restarts list the same prepared set");
    let db = Db::open(dir.path(), options()).unwrap();
    db.blocking_writer().finish_prepared("keep", true).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some("v"));
    db.flush().unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    assert!(db.prepared_transactions().is_empty());
    assert_eq!(get(&db, "k").as_deref(), Some("v"));
    db.close().unwrap();
}

/// What the model expects of one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Prepared,
    Committed,
    RolledBack,
}

#[test]
fn crash_model_acknowledged_prepares_and_finishes_survive_dropped_unsynced_data() {
    let seeds: u64 = std::env::var("DB_TXN_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    for seed in 1..=seeds {
        let dir = TempDir::new(&format!("txn-crash-{seed}"));
        let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
        let vfs = FaultVfs::new(inner, FaultConfig::default());
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        // Each txid's keys are its own (txN/k*), so its commit is checkable as a whole.
        let mut fate: BTreeMap<String, Fate> = BTreeMap::new();
        let mut next = 0u32;
        for epoch in 0..4 {
            let ctx = format!("seed {seed} epoch {epoch}");
            let db = Db::open_on(dir.path(), options(), vfs.clone())
                .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
            let check = |db: &Db| -> BTreeSet<String> {
                let listed: BTreeSet<String> = db
                    .prepared_transactions()
                    .into_iter()
                    .map(|t| t.txid)
                    .collect();
                for (t, f) in &fate {
                    let present: Vec<bool> = (0..3)
                        .map(|i| get(db, &format!("{t}/k{i}")).is_some())
                        .collect();
                    assert!(
                        present.iter().all(|&p| p) || present.iter().all(|&p| !p),
                        "{ctx}: {t} half applied: {present:?}"
                    );
                    match f {
                        Fate::Prepared => {
                            assert!(
                                listed.contains(t) && !present[0],
                                "{ctx}: prepared {t} lost"
                            )
                        }
                        Fate::Committed => {
                            assert!(!listed.contains(t) && present[0], "{ctx}: committed {t}")
                        }
                        Fate::RolledBack => {
                            assert!(!listed.contains(t) && !present[0], "{ctx}: rolled back {t}")
                        }
                    }
                }
                listed
            };
            let listed = check(&db);
            // Anything listed that the model does not know was prepared without an
            // acknowledgement: adopt it (it is prepared now).
            for t in &listed {
                fate.entry(t.clone()).or_insert(Fate::Prepared);
            }
            // Acknowledged finishes are facts; unacknowledged ones may have been lost.
            fate.retain(|t, f| *f != Fate::Prepared || listed.contains(t));
            let w = db.blocking_writer();
            for _ in 0..20 + r.below(60) {
                let open: Vec<String> = fate
                    .iter()
                    .filter(|(_, f)| **f == Fate::Prepared)
                    .map(|(t, _)| t.clone())
                    .collect();
                match r.below(4) {
                    0 | 1 => {
                        let t = format!("tx{next:05}");
                        next += 1;
                        let v = format!("{t}-value").repeat(1 + r.below(50) as usize);
                        let b = batch(&[
                            (&format!("{t}/k0"), Some(&v)),
                            (&format!("{t}/k1"), Some(&v)),
                            (&format!("{t}/k2"), Some(&v)),
                        ]);
                        w.prepare(&t, &b)
                            .unwrap_or_else(|e| panic!("{ctx}: prepare: {e}"));
                        fate.insert(t, Fate::Prepared);
                    }
                    2 if !open.is_empty() => {
                        let t = &open[r.below(open.len() as u64) as usize];
                        let commit = r.below(3) != 0;
                        w.finish_prepared(t, commit)
                            .unwrap_or_else(|e| panic!("{ctx}: finish {t}: {e}"));
                        fate.insert(
                            t.clone(),
                            if commit {
                                Fate::Committed
                            } else {
                                Fate::RolledBack
                            },
                        );
                    }
                    _ => {
                        let big = vec![b'f'; 2000];
                        for i in 0..10 {
                            let k = format!("fill{}", r.below(500) + i);
                            let mut b = WriteBatch::new();
                            b.put(k.as_bytes(), &big);
                            w.write(&b, r.below(2) == 0).unwrap();
                        }
                    }
                }
            }
            if r.below(2) == 0 {
                db.flush().unwrap();
            }
            // A prepare in flight, unacknowledged, at the crash: either outcome is allowed.
            match r.below(3) {
                0 => vfs.crash(),
                1 => vfs.crash_torn(seed << 8 | epoch),
                _ => vfs.crash_pages(seed << 8 | epoch),
            }
            drop(w);
            let _ = db.close();
            drop(db);
            // Two restarts in a row list the same set.
            let a = Db::open_on(dir.path(), options(), vfs.clone()).unwrap();
            let first = a.prepared_transactions();
            a.close().unwrap();
            let b = Db::open_on(dir.path(), options(), vfs.clone()).unwrap();
            assert_eq!(
                first,
                b.prepared_transactions(),
                "{ctx}: two restarts differ"
            );
            b.close().unwrap();
        }
    }
}

#[test]
fn concurrent_prepares_of_one_key_lock_it_exactly_once() {
    let dir = TempDir::new("txn-race");
    let db = Db::open(dir.path(), options()).unwrap();
    for round in 0..20 {
        let key = format!("hot{round}");
        let outcomes: Vec<Result<u64, DbError>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let db = db.clone();
                    let key = key.clone();
                    s.spawn(move || {
                        db.blocking_writer()
                            .prepare(&format!("r{round}-{i}"), &batch(&[(&key, Some("v"))]))
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<usize> = (0..4).filter(|&i| outcomes[i].is_ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {outcomes:?}");
        let winner = format!("r{round}-{}", won[0]);
        for r in &outcomes {
            if let Err(e) = r {
                assert!(
                    matches!(e, DbError::Conflict { txid, .. } if *txid == winner),
                    "round {round}: {e:?}"
                );
            }
        }
        db.blocking_writer()
            .finish_prepared(&winner, round % 2 == 0)
            .unwrap();
    }
    assert!(db.prepared_transactions().is_empty());
    db.close().unwrap();
}

#[test]
fn a_reservation_not_yet_logged_cannot_be_finished_and_abandoning_it_releases_its_keys() {
    let dir = TempDir::new("txn-reserve");
    let db = Db::open(dir.path(), options()).unwrap();
    let payload = uringdb_lsm::db::batch::encode_prepare("r", 1, &batch(&[("k", Some("v"))]));
    db.reserve_prepare(&payload).unwrap();
    assert!(matches!(db.check_key(b"k"), Err(DbError::Conflict { .. })));
    assert!(matches!(
        db.reserve_prepare(&payload),
        Err(DbError::TxnExists(_))
    ));
    // Not handed to the log yet: a commit now could precede the prepare in the log.
    assert!(matches!(db.begin_finish("r"), Err(DbError::TxnNotFound(_))));
    // Not listed either: it is not durable.
    assert!(db.prepared_transactions().is_empty());
    db.abandon_prepare("r");
    db.check_key(b"k").unwrap();
    db.blocking_writer().put(b"k", b"free").unwrap();
    // A prepare record that was never reserved is refused at the log's door.
    let w = db.writer(std::sync::Arc::new(NoSink));
    assert!(
        matches!(w.write(&payload, true), Err(DbError::InvalidArgument(m)) if m.contains("not reserved"))
    );
    assert!(matches!(
        w.write(&uringdb_lsm::db::batch::encode_finish("r", true), true),
        Err(DbError::TxnNotFound(_))
    ));
    db.close().unwrap();
}

struct NoSink;
impl uringdb_wal::CompletionSink for NoSink {
    fn completed(&self, _: &[u64], _: &uringdb_wal::GroupInfo) {}
    fn failed(&self, _: usize, _: &uringdb_wal::WalError) {}
}
