//! Issue 8: the applier thread and the background jobs (flush, compaction) had no panic
//! guard. A panic there must fail the database — every pending write completes with
//! `WalError::Failed` (`ERR_URINGDB_FAILED`), later writes, flushes and compactions are
//! refused the same way, close works — and never hang it. Panics are injected with the
//! crash-point seam (`arm_failpoint("<name>:<n>:panic")`). Every call that could hang runs
//! under a watchdog that fails the test instead of hanging the run (a hang detector, not a
//! timing assertion: 60 s is orders of magnitude above what any call here needs).
//!
//! After each scenario the database reopens with every acknowledged write.

mod common;

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::small_db;
use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{arm_failpoint, Db, DbError, DbOptions};
use uringdb_wal::{BackendChoice, CompletionSink, GroupInfo, WalError};

/// The crash point is process-wide: scenarios run one at a time (also under `cargo test`).
static SERIAL: Mutex<()> = Mutex::new(());

const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread; fails the test if it has not returned within the watchdog.
fn no_hang<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{what} panicked on the caller's thread instead of failing the database")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} hung (no result within {WATCHDOG:?})")
        }
    }
}

fn options() -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        l0_compaction_trigger: 2,
        level_base_bytes: 1 << 20,
        target_file_bytes: 64 << 10,
        ..small_db(BackendChoice::Portable)
    }
}

fn temp(label: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("uringdb-panic-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

struct Sink(Mutex<Sender<Result<u64, WalError>>>);
impl CompletionSink for Sink {
    fn completed(&self, seqs: &[u64], _: &GroupInfo) {
        let tx = self.0.lock().unwrap();
        for &s in seqs {
            let _ = tx.send(Ok(s));
        }
    }
    fn failed(&self, count: usize, error: &WalError) {
        let tx = self.0.lock().unwrap();
        for _ in 0..count {
            let _ = tx.send(Err(error.clone()));
        }
    }
}

fn is_failed(e: &DbError) -> bool {
    match e {
        DbError::Wal(WalError::Failed(_)) => true,
        DbError::Background(inner) => is_failed(inner),
        _ => false,
    }
}

fn batch(i: u32) -> (Vec<u8>, Vec<u8>, WriteBatch) {
    let k = format!("key{i:06}").into_bytes();
    let v = format!("value-{i}-{}", "x".repeat(2000)).into_bytes();
    let mut b = WriteBatch::new();
    b.put(&k, &v);
    (k, v, b)
}

/// Issues `n` writes without waiting and collects every outcome (the watchdog fails the
/// test if one never arrives). Returns the acknowledged ones and the first failure.
fn write_all(db: &Db, n: u32) -> (BTreeMap<Vec<u8>, Vec<u8>>, Option<String>) {
    let (tx, rx): (_, Receiver<Result<u64, WalError>>) = channel();
    let w = db.writer(Arc::new(Sink(Mutex::new(tx))));
    let mut issued = Vec::new();
    let mut refused = None;
    for i in 0..n {
        let (k, v, b) = batch(i);
        match w.write(b.as_bytes(), true) {
            Ok(()) => issued.push((k, v)),
            Err(e) => {
                assert!(is_failed(&e), "write {i} refused with {e}, not as failed");
                refused = Some(e.to_string());
                break;
            }
        }
    }
    let mut acked = BTreeMap::new();
    let mut failure = refused;
    for (i, (k, v)) in issued.into_iter().enumerate() {
        match rx.recv_timeout(WATCHDOG) {
            Ok(Ok(_)) => {
                assert!(failure.is_none(), "write {i} succeeded after a failure");
                acked.insert(k, v);
            }
            Ok(Err(e)) => {
                assert!(
                    matches!(e, WalError::Failed(_)),
                    "write {i} failed with {e}"
                );
                failure.get_or_insert(e.to_string());
            }
            Err(_) => panic!("write {i}: no outcome within {WATCHDOG:?} (hung)"),
        }
    }
    (acked, failure)
}

/// After the panic: writes, flush and compaction are refused as failed, close works, and
/// the reopened database holds every acknowledged write.
fn check_failed_then_reopen(db: Db, dir: &std::path::Path, acked: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let db = Arc::new(db);
    let (_, failure) = write_all(&db, 5);
    assert!(failure.is_some(), "a write after the panic was accepted");
    let d = db.clone();
    let r = no_hang("flush after the panic", move || d.flush());
    assert!(
        r.as_ref().is_err_and(is_failed),
        "flush after the panic: {r:?}"
    );
    let d = db.clone();
    let r = no_hang("compact_range after the panic", move || {
        d.compact_range(None, None)
    });
    assert!(
        r.as_ref().is_err_and(is_failed),
        "compact_range after the panic: {r:?}"
    );
    // Reads keep working.
    for (k, v) in acked.iter().take(20) {
        assert_eq!(db.get(k, None).unwrap().as_ref(), Some(v));
    }
    let d = db.clone();
    no_hang("close after the panic", move || d.close()).expect("close after the panic");
    drop(db);

    arm_failpoint(None);
    let db = Db::open(dir, options()).expect("reopen");
    for (k, v) in acked {
        assert_eq!(
            db.get(k, None).unwrap().as_ref(),
            Some(v),
            "acknowledged {} lost",
            String::from_utf8_lossy(k)
        );
    }
    db.blocking_writer()
        .put(b"after", b"ok")
        .expect("write after reopen");
    db.close().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn applier_panic_fails_every_pending_write_instead_of_hanging() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp("applier");
    arm_failpoint(None);
    let db = Db::open(&dir, options()).unwrap();
    // Some writes acknowledged before (one group each), then the next group panics while
    // 300 writes are in flight.
    let mut acked = BTreeMap::new();
    let w = db.blocking_writer();
    for i in 1000..1005 {
        let (k, v, b) = batch(i);
        w.write(&b, true).unwrap();
        acked.insert(k, v);
    }
    drop(w);
    arm_failpoint(Some("apply.group:1:panic"));
    let (more, failure) = write_all(&db, 300);
    println!("applier: {} acked, then {failure:?}", more.len());
    acked.extend(more);
    assert!(failure.is_some(), "the injected panic failed nothing");
    check_failed_then_reopen(db, &dir, &acked);
}

#[test]
fn a_panic_applying_a_small_group_inline_fails_the_database_instead_of_hanging() {
    // One writer, each write awaited: every group is a single record and the applier thread
    // has nothing queued, so the thread completing the group applies it itself (see
    // `db::apply`). A panic there must fail the write and the database like a panic on the
    // applier thread, never hang it or acknowledge a write the memtable lacks.
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp("inline");
    arm_failpoint(None);
    let db = Db::open(&dir, options()).unwrap();
    let mut acked = BTreeMap::new();
    let w = db.blocking_writer();
    for i in 0..5 {
        let (k, v, b) = batch(i);
        w.write(&b, true).unwrap();
        acked.insert(k, v);
    }
    arm_failpoint(Some("apply.group:1:panic"));
    let (k, _, b) = batch(5);
    let d = Arc::new(db);
    let r = {
        let w = d.blocking_writer();
        no_hang("the write whose group panics", move || w.write(&b, true))
    };
    let e = r.expect_err("the write whose apply panicked was acknowledged");
    assert!(is_failed(&e), "failed with {e}");
    assert!(
        e.to_string().contains("applying a commit group"),
        "the panic happened inline, not on the applier thread: {e}"
    );
    assert_eq!(
        d.get(&k, None).unwrap(),
        None,
        "the failed write is not visible"
    );
    drop(w);
    let db = Arc::try_unwrap(d).unwrap();
    check_failed_then_reopen(db, &dir, &acked);
}

#[test]
fn flush_panic_fails_the_database_instead_of_hanging() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp("flush");
    arm_failpoint(Some("flush.table_written:2:panic"));
    let db = Arc::new(Db::open(&dir, options()).unwrap());
    // Enough writes for several flushes; the second flush panics. Flushing explicitly in
    // between makes the flushes happen whatever the timing.
    let mut acked = BTreeMap::new();
    let mut failed = false;
    for round in 0..6u32 {
        let w = db.blocking_writer();
        for i in 0..20 {
            let (k, v, b) = batch(round * 1000 + i);
            match w.write(&b, true) {
                Ok(_) => {
                    acked.insert(k, v);
                }
                Err(e) => {
                    assert!(is_failed(&e), "write refused with {e}");
                    failed = true;
                    break;
                }
            }
        }
        let d = db.clone();
        match no_hang("flush", move || d.flush()) {
            Ok(()) => {}
            Err(e) => {
                assert!(is_failed(&e), "flush failed with {e}, not as failed");
                failed = true;
            }
        }
        if failed {
            break;
        }
    }
    assert!(failed, "the injected panic failed nothing");
    let db = Arc::try_unwrap(db).unwrap();
    check_failed_then_reopen(db, &dir, &acked);
}

#[test]
fn compaction_panic_fails_the_database_instead_of_hanging() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp("compaction");
    arm_failpoint(Some("compaction.installed:1:panic"));
    let db = Arc::new(Db::open(&dir, options()).unwrap());
    let mut acked = BTreeMap::new();
    let mut failed = false;
    for round in 0..6u32 {
        let w = db.blocking_writer();
        for i in 0..20 {
            let (k, v, b) = batch(round * 1000 + i);
            if w.write(&b, true).is_ok() {
                acked.insert(k, v);
            }
        }
        let d = db.clone();
        if let Err(e) = no_hang("compact_range", move || d.compact_range(None, None)) {
            assert!(
                is_failed(&e),
                "compact_range failed with {e}, not as failed"
            );
            failed = true;
            break;
        }
    }
    assert!(failed, "the injected panic failed nothing");
    let db = Arc::try_unwrap(db).unwrap();
    check_failed_then_reopen(db, &dir, &acked);
}
