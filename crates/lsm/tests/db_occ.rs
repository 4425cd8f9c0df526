//! Issue 11, optimistic transactions: validation of the read set at apply (write-write,
//! read-write, phantoms in an iterated range, no false conflict for disjoint keys, a write
//! accepted but not yet applied), the interaction with prepared transactions' key locks, and
//! replay reaching the live decisions (across flushes, and across a `FaultVfs` crash).

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use common::{small_db, TempDir, XorShift as Rng};
use uringdb_lsm::db::batch::{ReadItem, WriteBatch};
use uringdb_lsm::db::{Db, DbError, DbOptions, RangeOptions};
use uringdb_wal::{BackendChoice, CompletionSink, FaultConfig, FaultVfs, GroupInfo, WalError};

fn options() -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        ..small_db(BackendChoice::Portable)
    }
}

fn put(k: &str, v: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(k.as_bytes(), v.as_bytes());
    b
}

fn get(db: &Db, k: &str) -> Option<String> {
    db.get(k.as_bytes(), None)
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

fn key(k: &str) -> ReadItem<'_> {
    ReadItem::Key(k.as_bytes())
}

fn conflict_key(r: Result<u64, DbError>) -> String {
    match r {
        Err(DbError::ReadConflict { key }) => String::from_utf8(key).unwrap(),
        r => panic!("expected a read conflict, got {r:?}"),
    }
}

fn scan(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut it = db.iter(RangeOptions::default(), None);
    loop {
        let b = it.next_batch(1000, 1 << 20).unwrap();
        let mut at = 0;
        for w in b.lens.chunks(2) {
            let (k, v) = (w[0] as usize, w[1] as usize);
            out.insert(
                b.data[at..at + k].to_vec(),
                b.data[at + k..at + k + v].to_vec(),
            );
            at += k + v;
        }
        if b.done {
            return out;
        }
    }
}

#[test]
fn read_write_and_write_write_conflicts_refuse_the_later_transaction() {
    let dir = TempDir::new("occ-rw");
    let db = Db::open(dir.path(), options()).unwrap();
    let w = db.blocking_writer();
    w.put(b"k", b"0").unwrap();
    // Read-write: a plain put of a key read after the snapshot.
    let a = db.begin_optimistic();
    assert_eq!(
        db.get(b"k", Some(&a.snapshot)).unwrap().as_deref(),
        Some(&b"0"[..])
    );
    w.put(b"k", b"plain").unwrap();
    let r = w.commit_optimistic(a, &[key("k")], &put("k", "tx"), true);
    assert_eq!(conflict_key(r), "k");
    assert_eq!(
        get(&db, "k").as_deref(),
        Some("plain"),
        "a refused transaction writes nothing"
    );
    // Write-write: two transactions read and write the same key; the first to commit wins.
    let a = db.begin_optimistic();
    let b = db.begin_optimistic();
    w.commit_optimistic(a, &[key("k")], &put("k", "a"), true)
        .unwrap();
    let r = w.commit_optimistic(b, &[key("k")], &put("k", "b"), true);
    assert_eq!(conflict_key(r), "k");
    assert_eq!(get(&db, "k").as_deref(), Some("a"));
    // A blind write (the key not read) is not a conflict: it is ordered after.
    let a = db.begin_optimistic();
    w.put(b"k", b"plain2").unwrap();
    w.commit_optimistic(a, &[key("other")], &put("k", "blind"), true)
        .unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some("blind"));
    // A read of a key written before the snapshot is not a conflict.
    let a = db.begin_optimistic();
    w.commit_optimistic(a, &[key("k")], &put("k2", "x"), true)
        .unwrap();
    // Each applied transaction pins its snapshot until a flush covers its record (replay
    // needs the versions written after it, see `occ`); then every pin is gone.
    assert!(db.stats().snapshots > 0);
    db.flush().unwrap();
    assert_eq!(
        db.stats().snapshots,
        0,
        "every attempt's snapshot is released"
    );
}

#[test]
fn disjoint_keys_never_conflict() {
    let dir = TempDir::new("occ-disjoint");
    let db = Db::open(dir.path(), options()).unwrap();
    let w = db.blocking_writer();
    let attempts: Vec<_> = (0..8).map(|_| db.begin_optimistic()).collect();
    for (i, a) in attempts.into_iter().enumerate() {
        let k = format!("key{i}");
        w.put(format!("other{i}").as_bytes(), b"x").unwrap();
        w.commit_optimistic(a, &[key(&k)], &put(&k, "v"), true)
            .unwrap_or_else(|e| panic!("attempt {i}: {e}"));
    }
    for i in 0..8 {
        assert_eq!(get(&db, &format!("key{i}")).as_deref(), Some("v"));
    }
}

#[test]
fn a_key_inserted_into_an_iterated_range_is_a_phantom_conflict() {
    let dir = TempDir::new("occ-phantom");
    let db = Db::open(dir.path(), options()).unwrap();
    let w = db.blocking_writer();
    w.put(b"b0", b"1").unwrap();
    let range = ReadItem::Range {
        lo: Bound::Included(b"b"),
        hi: Bound::Excluded(b"c"),
    };
    // An insert outside the range (and at its excluded end) is not a conflict.
    let a = db.begin_optimistic();
    w.put(b"c", b"1").unwrap();
    w.put(b"a", b"1").unwrap();
    w.commit_optimistic(a, &[range], &put("sum", "1"), true)
        .unwrap();
    // An insert inside it is, named by the inserted key; so is a delete inside it.
    let a = db.begin_optimistic();
    w.put(b"b5", b"1").unwrap();
    assert_eq!(
        conflict_key(w.commit_optimistic(a, &[range], &put("sum", "2"), true)),
        "b5"
    );
    let a = db.begin_optimistic();
    w.delete(b"b0").unwrap();
    assert_eq!(
        conflict_key(w.commit_optimistic(a, &[range], &put("sum", "3"), true)),
        "b0"
    );
    // Unbounded sides and inclusive ends.
    let all = ReadItem::Range {
        lo: Bound::Unbounded,
        hi: Bound::Included(b"m"),
    };
    let a = db.begin_optimistic();
    w.put(b"m", b"1").unwrap();
    assert_eq!(
        conflict_key(w.commit_optimistic(a, &[all], &put("sum", "4"), true)),
        "m"
    );
    let a = db.begin_optimistic();
    w.put(b"n", b"1").unwrap();
    w.commit_optimistic(a, &[all], &put("sum", "5"), true)
        .unwrap();
    assert_eq!(get(&db, "sum").as_deref(), Some("5"));
}

/// A sink that ignores outcomes (the test looks at the database instead).
struct Quiet;
impl CompletionSink for Quiet {
    fn completed(&self, _: &[u64], _: &GroupInfo) {}
    fn failed(&self, _: usize, _: &WalError) {}
}

#[test]
fn a_write_accepted_but_not_yet_applied_before_the_commit_is_a_conflict() {
    let dir = TempDir::new("occ-pending");
    let db = Db::open(dir.path(), options()).unwrap();
    let w = db.blocking_writer();
    let plain = db.writer(Arc::new(Quiet));
    let mut unapplied = 0;
    for i in 0..40 {
        let a = db.begin_optimistic();
        let before = db.visible_seq();
        // Accepted into the log's queue; its fdatasync and apply come later.
        plain
            .write(put("hot", &format!("plain{i}")).as_bytes(), true)
            .unwrap();
        if db.visible_seq() == before {
            unapplied += 1;
        }
        let r = w.commit_optimistic(a, &[key("hot")], &put("hot", "tx"), true);
        assert_eq!(conflict_key(r), "hot", "round {i}");
        assert_eq!(get(&db, "hot"), Some(format!("plain{i}")));
    }
    assert!(
        unapplied > 0,
        "the plain write was never caught before its apply"
    );
}

#[test]
fn prepared_locks_refuse_a_transaction_at_once_and_a_commit_prepared_conflicts() {
    let dir = TempDir::new("occ-2pc");
    let db = Db::open(dir.path(), options()).unwrap();
    let w = db.blocking_writer();
    w.prepare("p1", &put("locked", "p")).unwrap();
    // Writing a locked key: refused at once, naming the holder; nothing logged.
    let a = db.begin_optimistic();
    let seq = db.visible_seq();
    match w.commit_optimistic(a, &[], &put("locked", "tx"), true) {
        Err(DbError::Conflict { txid, key }) => {
            assert_eq!((txid.as_str(), &key[..]), ("p1", &b"locked"[..]))
        }
        r => panic!("expected a lock conflict, got {r:?}"),
    }
    assert_eq!(db.visible_seq(), seq);
    // Reading a locked key is allowed (prepared writes are invisible); its commit is a
    // write after the snapshot, so a transaction that read it conflicts.
    let a = db.begin_optimistic();
    assert_eq!(db.get(b"locked", Some(&a.snapshot)).unwrap(), None);
    w.finish_prepared("p1", true).unwrap();
    let r = w.commit_optimistic(a, &[key("locked")], &put("x", "1"), true);
    assert_eq!(conflict_key(r), "locked");
    assert_eq!(get(&db, "x"), None);
    // A rollback writes nothing: no conflict.
    w.prepare("p2", &put("r", "p")).unwrap();
    let a = db.begin_optimistic();
    w.finish_prepared("p2", false).unwrap();
    w.commit_optimistic(a, &[key("r")], &put("x", "2"), true)
        .unwrap();
    assert_eq!(get(&db, "x").as_deref(), Some("2"));
}

/// Builds, around a flush, the two cases replay cannot decide from the log alone (a
/// transaction above the flushed sequence number whose snapshot is below it, with another
/// transaction between them that committed or was refused), then drops unsynced data and
/// reopens twice: the state must be the live one.
#[test]
fn replay_reaches_the_live_decisions_across_a_flush_and_a_crash() {
    let dir = TempDir::new("occ-replay");
    let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
    let vfs = FaultVfs::new(inner, FaultConfig::default());
    let live;
    {
        let db = Db::open_on(dir.path(), options(), vfs.clone()).unwrap();
        let w = db.blocking_writer();
        // Case 1: `a` read k1; `t` (committed) wrote k1 after a's snapshot; flush; `a` is
        // refused. Replay must refuse it again.
        let a = db.begin_optimistic();
        let t = db.begin_optimistic();
        w.commit_optimistic(t, &[key("k0")], &put("k1", "t"), true)
            .unwrap();
        // Case 2: `c` read k3; `d` (refused) would have written k3; flush; `c` commits.
        // Replay must commit it again.
        let c = db.begin_optimistic();
        let d = db.begin_optimistic();
        w.put(b"k4", b"plain").unwrap();
        let r = w.commit_optimistic(d, &[key("k4")], &put("k3", "d"), true);
        assert_eq!(conflict_key(r), "k4");
        db.flush().unwrap();
        assert_eq!(
            conflict_key(w.commit_optimistic(a, &[key("k1")], &put("a", "1"), true)),
            "k1"
        );
        w.commit_optimistic(c, &[key("k3")], &put("c", "1"), true)
            .unwrap();
        assert!(db.stats().flushed_seq < db.visible_seq());
        live = scan(&db);
        assert_eq!(live.get(&b"c"[..]).map(|v| &v[..]), Some(&b"1"[..]));
        assert_eq!(live.get(&b"a"[..]), None);
        vfs.crash();
        drop(w);
        let _ = db.close();
    }
    for _ in 0..2 {
        let db = Db::open_on(dir.path(), options(), vfs.clone()).unwrap();
        assert_eq!(scan(&db), live, "replay decided differently");
        db.close().unwrap();
    }
}

/// Random concurrent transactions (read two counters, add to one), plain writes and
/// flushes on several threads; then a crash and two reopens. Every counter equals the
/// number of committed increments (no lost update), and replay keeps exactly the
/// acknowledged state.
#[test]
fn concurrent_counters_lose_no_update_and_survive_a_crash() {
    let seeds: u64 = std::env::var("DB_OCC_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for seed in 1..=seeds {
        let dir = TempDir::new(&format!("occ-model-{seed}"));
        let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
        let vfs = FaultVfs::new(inner, FaultConfig::default());
        let db = Db::open_on(dir.path(), options(), vfs.clone()).unwrap();
        let committed = Mutex::new(BTreeMap::<u64, u64>::new());
        let conflicts = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (db, committed, conflicts) = (&db, &committed, &conflicts);
                s.spawn(move || {
                    let mut r = Rng((seed << 8 | t).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                    let w = db.blocking_writer();
                    for _ in 0..150 {
                        let (c, other) = (r.below(4), r.below(4));
                        let name = |i: u64| format!("counter{i}");
                        loop {
                            let a = db.begin_optimistic();
                            let read = |i: u64| -> u64 {
                                db.get(name(i).as_bytes(), Some(&a.snapshot))
                                    .unwrap()
                                    .map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap())
                            };
                            let n = read(c);
                            let _ = read(other);
                            let mut b = put(&name(c), &(n + 1).to_string());
                            let pad = vec![b'p'; 500];
                            b.put(format!("pad{}", r.below(100)).as_bytes(), &pad);
                            let (kc, ko) = (name(c), name(other));
                            match w.commit_optimistic(a, &[key(&kc), key(&ko)], &b, true) {
                                Ok(_) => {
                                    *committed.lock().unwrap().entry(c).or_insert(0) += 1;
                                    break;
                                }
                                Err(DbError::ReadConflict { .. }) => {
                                    conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                        if r.below(40) == 0 {
                            db.flush().unwrap();
                        }
                    }
                });
            }
        });
        let check = |db: &Db, ctx: &str| {
            for (c, n) in committed.lock().unwrap().iter() {
                assert_eq!(
                    get(db, &format!("counter{c}")),
                    Some(n.to_string()),
                    "seed {seed} {ctx}: counter{c}"
                );
            }
        };
        check(&db, "live");
        let live = scan(&db);
        vfs.crash();
        let _ = db.close();
        drop(db);
        for i in 0..2 {
            let db = Db::open_on(dir.path(), options(), vfs.clone()).unwrap();
            check(&db, &format!("reopen {i}"));
            assert_eq!(scan(&db), live, "seed {seed}: reopen {i} differs");
            db.close().unwrap();
        }
        eprintln!(
            "seed {seed}: {} conflicts retried",
            conflicts.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}
