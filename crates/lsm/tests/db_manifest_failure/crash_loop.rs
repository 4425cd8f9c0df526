//! Every sync a workload reaches fails in turn, then the machine crashes.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::common::{TempDir, EIO};
use super::machine::*;
use uringdb_lsm::db::{Db, DbError};
use uringdb_uring::FaultConfig;

/// A workload that flushes, compacts and rewrites the manifest on every install; returns
/// the acknowledged writes (unique keys) and stops at the first error.
fn workload(db: &Db, acked: &mut BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), DbError> {
    let w = db.blocking_writer();
    let mut i = 0;
    for round in 0..6 {
        for _ in 0..3 {
            w.put(&key(i), &value(i))?;
            acked.insert(key(i), value(i));
            i += 1;
        }
        db.flush()?;
        if round % 2 == 1 {
            db.compact_range(None, None)?;
        }
    }
    Ok(())
}

/// Runs [`workload`] once per n on `machine(n)` (whose n-th sync fails after persisting
/// its bytes), crashes with `crash(machine, n)`, reopens on a healthy disk and checks every
/// acknowledged write, then writes, flushes and compacts. Stops at the first n the
/// workload does not reach; returns how many syncs failed.
fn crash_loop(machine: impl Fn(u64) -> Machine, crash: impl Fn(&Machine, u64)) -> u64 {
    let mut n = 1;
    loop {
        let d = TempDir::new("sync-nth");
        let m = machine(n);
        let mut acked = BTreeMap::new();
        let outcome = match Db::open_on(d.path(), options(), m.vfs.clone()) {
            Ok(db) => {
                let r = workload(&db, &mut acked);
                crash(&m, n);
                let _ = db.close();
                r.err()
            }
            Err(e) => {
                crash(&m, n);
                Some(e)
            }
        };
        // The wrapper's own injection counts directory fsyncs too; FaultVfs counts files.
        let reached = m.traps.fired.load(Ordering::SeqCst) > 0
            || m.traps.file_syncs.load(Ordering::SeqCst) >= n;
        let what = format!("sync {n} failed ({outcome:?})");
        let db = reopen_and_check(d.path(), &acked, &what);
        let w = db.blocking_writer();
        w.put(b"after", b"ok")
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        db.flush().unwrap_or_else(|e| panic!("{what}: {e}"));
        db.compact_range(None, None)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        drop(w);
        db.close().unwrap();
        if !reached {
            // The workload finished before its n-th sync: every sync was covered.
            assert!(outcome.is_none(), "{what}");
            return n - 1;
        }
        n += 1;
        assert!(n < 2000, "the workload never ends");
    }
}

/// The manifest crash test (issue 8), with the test wrapper's injection: for every n, the
/// n-th sync of any file or directory (table, log, manifest append, manifest rewrite,
/// CURRENT and its directory fsyncs) reports EIO after its bytes reached the disk; the
/// machine then crashes (unsynced bytes lost, or a torn prefix of them kept), and the
/// reopened database must hold every acknowledged write and take new ones.
#[test]
fn every_failed_sync_whose_bytes_persist_loses_no_acknowledged_write() {
    let failed = crash_loop(
        |n| {
            let m = machine();
            m.traps.sync_nth.store(n, Ordering::SeqCst);
            m
        },
        |m, n| {
            if n % 2 == 0 {
                m.fault.crash();
            } else {
                m.fault.crash_torn(n);
            }
        },
    );
    assert!(failed > 20, "only {failed} syncs were reached");
    println!("failed each of {failed} syncs");
}

/// The same with `FaultVfs`'s own modes: `fail_sync_nth` with `sync_fail_persists` (files
/// only; directory fsyncs do not count there), then a power cut that keeps a random subset
/// of each file's unsynced pages (`crash_pages`).
#[test]
fn every_failed_fault_vfs_sync_that_persists_then_a_page_crash_loses_no_acknowledged_write() {
    let failed = crash_loop(
        |n| {
            machine_with(FaultConfig {
                fail_sync_nth: Some(n),
                sync_fail_persists: true,
                errno: EIO,
                ..FaultConfig::default()
            })
        },
        |m, n| m.fault.crash_pages(n),
    );
    assert!(failed > 20, "only {failed} syncs were reached");
    println!("failed each of {failed} syncs");
}
