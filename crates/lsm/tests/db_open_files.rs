//! Issue 8: every table kept a file descriptor open, with no cap — under `ulimit -n 256` the
//! database stopped and could not be reopened. The table-file cache keeps at most
//! `max_open_files` table files open (and at most half the process's open-file limit),
//! closing the least recently used and reopening them when read. These tests count the
//! descriptors that really point at table files (`/proc/self/fd`) while hundreds of tables
//! are written, read and reopened.
//!
//! The open-file limit is per process: this binary lowers it for all its tests (run one at a
//! time, under a lock, also under `cargo test`).

#![cfg(unix)]

mod common;

use std::path::Path;
use std::sync::Mutex;

use common::small_db;
use uringdb_lsm::db::{Db, DbError, DbOptions};
use uringdb_wal::BackendChoice;

static SERIAL: Mutex<()> = Mutex::new(());

/// Lowers this process's soft open-file limit to `n` (the hard limit is kept).
fn set_nofile(n: u64) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one valid, exclusively borrowed `rlimit`.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
        l.rlim_cur = n.min(l.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &l), 0);
    }
}

/// Descriptors of this process open on `*.sst` files in `dir`.
fn table_fds(dir: &Path) -> usize {
    let dir = std::fs::canonicalize(dir).unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap_or_else(|e| panic!("listing /proc/self/fd (out of descriptors?): {e}"))
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.parent() == Some(&dir) && t.extension().is_some_and(|x| x == "sst"))
        .count()
}

fn options(backend: BackendChoice) -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        // Every flush stays a level-0 table: the count of tables only grows.
        l0_compaction_trigger: 1000,
        l0_slowdown_trigger: 1000,
        l0_stop_trigger: 1000,
        ..small_db(backend)
    }
}

fn temp(label: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("uringdb-openfiles-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// Writes `tables` tables (one key each, one flush each), reads every key, reopens and reads
/// again; returns the most table descriptors seen open at once.
fn run(dir: &Path, opts: &DbOptions, tables: u32) -> usize {
    let mut most = 0;
    let key = |i: u32| format!("key{i:05}").into_bytes();
    let db = Db::open(dir, opts.clone()).expect("open");
    let w = db.blocking_writer();
    for i in 0..tables {
        w.put(&key(i), &i.to_le_bytes())
            .unwrap_or_else(|e| panic!("put {i}: {e}"));
        db.flush().unwrap_or_else(|e| panic!("flush {i}: {e}"));
        most = most.max(table_fds(dir));
    }
    drop(w);
    assert_eq!(db.stats().levels[0].files, u64::from(tables));
    for i in 0..tables {
        let v = db
            .get(&key(i), None)
            .unwrap_or_else(|e| panic!("get {i}: {e}"));
        assert_eq!(v.as_deref(), Some(&i.to_le_bytes()[..]));
        most = most.max(table_fds(dir));
    }
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir, opts.clone()).expect("reopen");
    most = most.max(table_fds(dir));
    for i in (0..tables).rev() {
        let v = db
            .get(&key(i), None)
            .unwrap_or_else(|e| panic!("get {i} after reopen: {e}"));
        assert_eq!(v.as_deref(), Some(&i.to_le_bytes()[..]));
        most = most.max(table_fds(dir));
    }
    db.close().unwrap();
    most
}

fn backends() -> Vec<BackendChoice> {
    let mut b = vec![BackendChoice::Portable];
    if uringdb_uring::open_vfs(BackendChoice::IoUring).is_ok() {
        b.push(BackendChoice::IoUring);
    }
    b
}

#[test]
fn three_hundred_tables_under_ulimit_256_keep_working_and_reopen() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    set_nofile(256);
    for backend in backends() {
        let dir = temp(&format!("ulimit-{backend:?}"));
        let most = run(&dir, &options(backend), 300);
        println!("{backend:?}: at most {most} table files open");
        // Default options: half of the 256 descriptors, plus the one table being written.
        assert!(
            most <= 128 + 1,
            "{backend:?}: {most} table files open at once"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn max_open_files_caps_the_open_table_files() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    set_nofile(256);
    for backend in backends() {
        let dir = temp(&format!("cap-{backend:?}"));
        let opts = DbOptions {
            max_open_files: 16,
            ..options(backend)
        };
        let most = run(&dir, &opts, 100);
        println!("{backend:?}: at most {most} table files open");
        assert!(
            most <= 16 + 1,
            "{backend:?}: {most} table files open at once"
        );
        let db = Db::open(&dir, opts.clone()).unwrap();
        assert!(db.stats().open_table_files <= 16);
        db.close().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn max_open_files_out_of_range_names_the_option() {
    for bad in [0, 15, (1 << 20) + 1] {
        let opts = DbOptions {
            max_open_files: bad,
            ..options(BackendChoice::Portable)
        };
        match opts.validate() {
            Err(DbError::InvalidOption { field, .. }) => assert_eq!(field, "maxOpenFiles"),
            other => panic!("maxOpenFiles {bad}: {other:?}"),
        }
    }
}
