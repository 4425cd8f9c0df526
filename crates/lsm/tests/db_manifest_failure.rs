//! The manifest and the flush/compaction install path under I/O failure (issue 8, items 1,
//! 2 and 5a), on [`FaultVfs`] (which loses every byte no completed fdatasync covered) behind
//! a small wrapper, [`TrapVfs`], that fails exactly one kind of operation when armed:
//!
//! - `create_enospc`: while set, writing a new manifest (its header and snapshot, at offset
//!   0) fails with ENOSPC — a disk full during the manifest rewrite that follows a durable
//!   append;
//! - `append_ambiguous`: the next manifest append reaches the disk, then reports EIO — a
//!   failed fdatasync whose bytes persisted anyway (the ambiguous case); while it stays set,
//!   every later manifest write fails with EIO and writes nothing (a failing disk), so that
//!   the background retries fail too until the test crashes the machine;
//! - `log_sync_eio`: the log committer's next fdatasync fails (nothing made durable);
//! - `sync_nth`: the n-th sync of any file or directory (counted from arming) reaches the
//!   disk, then reports EIO — the crash loop runs it for every n a workload reaches.
//!
//! After each failure the machine "crashes" (`FaultVfs::crash`: unsynced bytes lost) and
//! the database is reopened on a healthy disk: it must open, and every acknowledged write
//! must be there.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{small_db, TempDir, EIO, ENOSPC};
use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbError, DbOptions};
use uringdb_uring::{
    open_vfs, BackendChoice, BackendKind, FaultConfig, FaultVfs, File, LockGuard, OpenMode, Vfs,
    WriteTiming,
};

#[derive(Debug, Default)]
struct Traps {
    create_enospc: AtomicBool,
    append_ambiguous: AtomicBool,
    log_sync_eio: AtomicBool,
    /// `append_ambiguous` fired (later manifest writes fail while it stays set).
    ambiguous_done: AtomicBool,
    /// 0: off; else the sync (counted from arming) that fails after persisting.
    sync_nth: AtomicU64,
    syncs: AtomicU64,
    /// Every file sync (`sync_data`, durable `write_at`) seen, armed or not: how far a
    /// `FaultConfig::fail_sync_nth` count got.
    file_syncs: AtomicU64,
    /// How many injected failures fired.
    fired: AtomicU64,
}

impl Traps {
    /// Whether `flag` is set (and counts it as fired).
    fn hit(&self, flag: &AtomicBool) -> bool {
        let hit = flag.load(Ordering::SeqCst);
        if hit {
            self.fired.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }
    fn take(&self, flag: &AtomicBool) -> bool {
        let hit = flag.swap(false, Ordering::SeqCst);
        if hit {
            self.fired.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }
    /// Counts one sync; whether it is the one to fail (after it persisted).
    fn sync_fails(&self) -> bool {
        let nth = self.sync_nth.load(Ordering::SeqCst);
        if nth == 0 {
            return false;
        }
        let n = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        let hit = n == nth;
        if hit {
            self.fired.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(EIO)
}

/// A `Vfs` over `FaultVfs` with the traps of the module docs.
#[derive(Debug)]
struct TrapVfs {
    fault: Arc<FaultVfs>,
    traps: Arc<Traps>,
}

#[derive(Debug)]
struct TrapFile {
    inner: Arc<dyn File>,
    traps: Arc<Traps>,
    manifest: bool,
    log: bool,
}

impl Vfs for TrapVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
        let inner = self.fault.open(path, mode)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        Ok(Arc::new(TrapFile {
            inner,
            traps: Arc::clone(&self.traps),
            manifest: name.starts_with("MANIFEST-"),
            log: path
                .parent()
                .and_then(|p| p.file_name())
                .is_some_and(|p| p == "wal"),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.fault.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.fault.rename(from, to)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.fault.list_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.fault.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.fault.sync_dir(dir)?;
        if self.traps.sync_fails() {
            return Err(eio());
        }
        Ok(())
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        self.fault.lock(path)
    }
    fn kind(&self) -> BackendKind {
        self.fault.kind()
    }
}

impl TrapFile {
    fn committer_sync(&self) -> bool {
        self.log && std::thread::current().name() == Some("uringdb-wal-commit")
    }
}

impl File for TrapFile {
    fn write_at(&self, offset: u64, bufs: &[&[u8]], durable: bool) -> io::Result<WriteTiming> {
        if durable {
            self.traps.file_syncs.fetch_add(1, Ordering::SeqCst);
        }
        if self.manifest && offset == 0 && self.traps.hit(&self.traps.create_enospc) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        if self.manifest
            && self.traps.ambiguous_done.load(Ordering::SeqCst)
            && self.traps.append_ambiguous.load(Ordering::SeqCst)
        {
            return Err(eio()); // the disk keeps failing, nothing written
        }
        if durable && self.committer_sync() && self.traps.take(&self.traps.log_sync_eio) {
            // The bytes stay in the page cache, unsynced: a crash loses them.
            self.inner.write_at(offset, bufs, false)?;
            return Err(eio());
        }
        let t = self.inner.write_at(offset, bufs, durable)?;
        if durable
            && self.manifest
            && offset > 0
            && self.traps.append_ambiguous.load(Ordering::SeqCst)
            && !self.traps.ambiguous_done.swap(true, Ordering::SeqCst)
        {
            self.traps.fired.fetch_add(1, Ordering::SeqCst);
            return Err(eio()); // the record is on disk, the caller hears EIO
        }
        if durable && self.traps.sync_fails() {
            return Err(eio());
        }
        Ok(t)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.traps.file_syncs.fetch_add(1, Ordering::SeqCst);
        if self.committer_sync() && self.traps.take(&self.traps.log_sync_eio) {
            return Err(eio());
        }
        self.inner.sync_data()?;
        if self.traps.sync_fails() {
            return Err(eio());
        }
        Ok(())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

struct Machine {
    fault: Arc<FaultVfs>,
    traps: Arc<Traps>,
    vfs: Arc<dyn Vfs>,
}

fn machine() -> Machine {
    machine_with(FaultConfig::default())
}

fn machine_with(config: FaultConfig) -> Machine {
    let (inner, _) = open_vfs(BackendChoice::Portable).unwrap();
    let fault = FaultVfs::new(inner, config);
    let traps = Arc::new(Traps::default());
    let vfs: Arc<dyn Vfs> = Arc::new(TrapVfs {
        fault: Arc::clone(&fault),
        traps: Arc::clone(&traps),
    });
    Machine { fault, traps, vfs }
}

/// Tiny manifest rewrite threshold (every install rewrites), no automatic compaction.
fn options() -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        l0_compaction_trigger: 1000,
        l0_slowdown_trigger: 1000,
        l0_stop_trigger: 1000,
        level_base_bytes: 1 << 30,
        target_file_bytes: 64 << 10,
        manifest_rewrite_bytes: 1,
        ..small_db(BackendChoice::Portable)
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}-{}", "v".repeat(100)).into_bytes()
}

/// Reopens `dir` on a healthy disk after a crash and checks every acknowledged key.
fn reopen_and_check(dir: &Path, acked: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) -> Db {
    let db = Db::open_on(dir, options(), machine().vfs)
        .unwrap_or_else(|e| panic!("{what}: reopen after the crash failed: {e}"));
    for (k, v) in acked {
        assert_eq!(
            db.get(k, None).unwrap().as_deref(),
            Some(&v[..]),
            "{what}: acknowledged key {} after reopen",
            String::from_utf8_lossy(k)
        );
    }
    db
}

/// Power cut now: unsynced bytes are lost, then the dead process's database is closed
/// (its handles fail; close only releases the directory lock and threads).
fn crash(m: &Machine, db: Db, w: uringdb_lsm::db::BlockingWriter) {
    m.fault.crash();
    drop(w);
    let _ = db.close();
}

fn sst_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sst"))
        .collect();
    v.sort();
    v
}

/// Issue 8 item 1, compaction case: the compaction edit was appended durably, then the
/// manifest rewrite ran out of space. The compaction succeeded; its outputs must stay.
#[test]
fn a_failed_manifest_rewrite_after_a_durable_compaction_edit_keeps_the_outputs() {
    let d = TempDir::new("rewrite-compaction");
    let m = machine();
    let db = Db::open_on(d.path(), options(), m.vfs.clone()).unwrap();
    let w = db.blocking_writer();
    let mut acked = BTreeMap::new();
    for i in 0..2 {
        w.put(&key(i), &value(i)).unwrap();
        acked.insert(key(i), value(i));
        db.flush().unwrap();
    }
    m.traps.create_enospc.store(true, Ordering::SeqCst);
    db.compact_range(None, None)
        .expect("the compaction's edit is durable: a failed rewrite after it must not fail it");
    assert!(m.traps.fired.load(Ordering::SeqCst) >= 1, "the rewrite ran");
    for (k, v) in &acked {
        assert_eq!(db.get(k, None).unwrap().as_deref(), Some(&v[..]));
    }
    // The disk is still full: the next install must start a fresh manifest (appending to
    // the old one is unsafe: CURRENT may name either), fails, and loses nothing.
    m.traps.create_enospc.store(true, Ordering::SeqCst);
    w.put(&key(2), &value(2)).unwrap();
    acked.insert(key(2), value(2));
    let e = db
        .flush()
        .expect_err("no fresh manifest fits on the full disk");
    assert_eq!(e.raw_os_error(), Some(ENOSPC), "{e}");
    drop(w);
    db.close().unwrap();
    drop(db);
    m.fault.crash();
    let db = reopen_and_check(d.path(), &acked, "compaction rewrite");
    db.close().unwrap();
}

/// Issue 8 item 1, flush case: `flush()` resolved, but the failed rewrite abandoned the
/// flushed table and latched ENOSPC for good. Now the flush holds, and once space is freed
/// writes resume and the database reopens with everything.
#[test]
fn a_failed_manifest_rewrite_after_a_durable_flush_edit_lets_writes_resume() {
    let d = TempDir::new("rewrite-flush");
    let m = machine();
    let db = Db::open_on(d.path(), options(), m.vfs.clone()).unwrap();
    let w = db.blocking_writer();
    let mut acked = BTreeMap::new();
    w.put(&key(0), &value(0)).unwrap();
    acked.insert(key(0), value(0));
    m.traps.create_enospc.store(true, Ordering::SeqCst);
    db.flush().expect("the flush edit is durable");
    assert!(m.traps.fired.load(Ordering::SeqCst) >= 1, "the rewrite ran");
    w.put(&key(1), &value(1))
        .expect("a durable flush must not stop writes");
    acked.insert(key(1), value(1));
    // Still full: the next flush cannot start a fresh manifest and stops writes ...
    m.traps.create_enospc.store(true, Ordering::SeqCst);
    let e = db
        .flush()
        .expect_err("no fresh manifest fits on the full disk");
    assert_eq!(e.raw_os_error(), Some(ENOSPC), "{e}");
    // ... until space is freed: the flush thread retries and writes resume.
    m.traps.create_enospc.store(false, Ordering::SeqCst);
    let mut resumed = false;
    for _ in 0..600 {
        match w.put(&key(2), &value(2)) {
            Ok(_) => {
                resumed = true;
                break;
            }
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(ENOSPC), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
    assert!(resumed, "writes never resumed after space was freed");
    acked.insert(key(2), value(2));
    db.flush().unwrap();
    drop(w);
    db.close().unwrap();
    drop(db);
    m.fault.crash();
    let db = reopen_and_check(d.path(), &acked, "flush rewrite");
    assert_eq!(
        db.recovery().orphans_removed,
        0,
        "{:?}",
        sst_files(d.path())
    );
    db.close().unwrap();
}

/// Issue 8 item 2, flush case: the manifest append reported EIO but the record reached the
/// disk. The table it names must not be deleted.
#[test]
fn an_ambiguous_manifest_append_failure_keeps_the_flushed_table() {
    let d = TempDir::new("ambiguous-flush");
    let m = machine();
    let db = Db::open_on(d.path(), options(), m.vfs.clone()).unwrap();
    let w = db.blocking_writer();
    let mut acked = BTreeMap::new();
    w.put(&key(0), &value(0)).unwrap();
    acked.insert(key(0), value(0));
    m.traps.append_ambiguous.store(true, Ordering::SeqCst);
    let e = db.flush().expect_err("the append reported EIO");
    assert_eq!(e.raw_os_error(), Some(EIO), "{e}");
    assert!(m.traps.fired.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        db.get(&key(0), None).unwrap().as_deref(),
        Some(&value(0)[..])
    );
    crash(&m, db, w);
    let db = reopen_and_check(d.path(), &acked, "ambiguous flush append");
    db.close().unwrap();
}

/// Issue 8 item 2, compaction case: the inputs must stay (the edit may not be durable) and
/// the outputs must stay (it may be).
#[test]
fn an_ambiguous_manifest_append_failure_keeps_compaction_inputs_and_outputs() {
    let d = TempDir::new("ambiguous-compaction");
    let m = machine();
    let db = Db::open_on(d.path(), options(), m.vfs.clone()).unwrap();
    let w = db.blocking_writer();
    let mut acked = BTreeMap::new();
    for i in 0..3 {
        w.put(&key(i), &value(i)).unwrap();
        acked.insert(key(i), value(i));
        db.flush().unwrap();
    }
    m.traps.append_ambiguous.store(true, Ordering::SeqCst);
    let e = db
        .compact_range(None, None)
        .expect_err("the append reported EIO");
    assert_eq!(e.raw_os_error(), Some(EIO), "{e}");
    for (k, v) in &acked {
        assert_eq!(db.get(k, None).unwrap().as_deref(), Some(&v[..]));
    }
    crash(&m, db, w);
    let db = reopen_and_check(d.path(), &acked, "ambiguous compaction append");
    db.close().unwrap();
}

/// After an ambiguous append the database goes on in a fresh manifest; once that is durable
/// the files the ambiguous edit named are no longer needed and are removed (no orphans left
/// for the next open), and a clean reopen has everything.
#[test]
fn after_an_ambiguous_append_a_fresh_manifest_takes_over_and_removes_the_limbo_files() {
    let d = TempDir::new("ambiguous-limbo");
    let m = machine();
    let db = Db::open_on(d.path(), options(), m.vfs.clone()).unwrap();
    let w = db.blocking_writer();
    let mut acked = BTreeMap::new();
    for i in 0..2 {
        w.put(&key(i), &value(i)).unwrap();
        acked.insert(key(i), value(i));
        db.flush().unwrap();
    }
    m.traps.append_ambiguous.store(true, Ordering::SeqCst);
    db.compact_range(None, None).unwrap_err();
    // The disk works again.
    m.traps.append_ambiguous.store(false, Ordering::SeqCst);
    // The flush thread may retry in the background; a manual compaction and a flush
    // install through a fresh manifest.
    w.put(&key(2), &value(2)).unwrap();
    acked.insert(key(2), value(2));
    let mut ok = false;
    for _ in 0..600 {
        if db.flush().is_ok() && db.compact_range(None, None).is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ok, "the database never recovered from the failed append");
    drop(w);
    db.close().unwrap();
    drop(db);
    m.fault.crash();
    let db = reopen_and_check(d.path(), &acked, "after limbo");
    assert_eq!(
        db.recovery().orphans_removed,
        0,
        "limbo files left behind: {:?}",
        sst_files(d.path())
    );
    db.close().unwrap();
}

/// Issue 8 item 5a: a flush of `sync: false` writes whose log bytes were never made durable
/// must not record them as flushed: the manifest would be ahead of the log, and after a
/// power cut the database would not open.
#[test]
fn a_flush_of_unsynced_writes_never_puts_the_manifest_ahead_of_the_log() {
    let d = TempDir::new("unsynced-flush");
    let m = machine();
    let db = Db::open_on(d.path(), options(), m.vfs.clone()).unwrap();
    let w = db.blocking_writer();
    let mut acked = BTreeMap::new();
    w.put(&key(0), &value(0)).unwrap(); // sync: true
    acked.insert(key(0), value(0));
    // The log's next fdatasync fails: the unsynced write below never becomes durable.
    m.traps.log_sync_eio.store(true, Ordering::SeqCst);
    let mut b = WriteBatch::new();
    b.put(&key(1), &value(1));
    w.write(&b, false).unwrap();
    // Whatever the flush does, it must not say key(1) was flushed unless the log has it.
    let _ = db.flush();
    crash(&m, db, w);
    let db = reopen_and_check(d.path(), &acked, "unsynced flush");
    db.close().unwrap();
}

/// The positive side of 5a: `sync: false` writes, then a flush that succeeds, then a power
/// cut: what the flush installed is there.
#[test]
fn a_flush_of_unsynced_writes_survives_a_crash_right_after_it() {
    let d = TempDir::new("unsynced-flush-ok");
    let m = machine();
    let db = Db::open_on(d.path(), options(), m.vfs.clone()).unwrap();
    let w = db.blocking_writer();
    let mut flushed = BTreeMap::new();
    for i in 0..50 {
        let mut b = WriteBatch::new();
        b.put(&key(i), &value(i));
        w.write(&b, false).unwrap();
        flushed.insert(key(i), value(i));
    }
    db.flush().unwrap();
    crash(&m, db, w);
    let db = reopen_and_check(d.path(), &flushed, "unsynced flush ok");
    db.close().unwrap();
}

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

/// Open compares the manifest with the log: a log that ends before the sequence number the
/// manifest says was flushed lost records (here: it was replaced by an empty one), and open
/// refuses with a corruption error naming the log directory.
#[test]
fn a_log_that_ends_before_the_flushed_sequence_number_is_corruption_naming_the_log() {
    let d = TempDir::new("log-behind");
    let db = Db::open_on(d.path(), options(), machine().vfs).unwrap();
    let w = db.blocking_writer();
    for i in 0..3 {
        w.put(&key(i), &value(i)).unwrap();
    }
    db.flush().unwrap();
    drop(w);
    db.close().unwrap();
    drop(db);
    let wal = d.path().join("wal");
    std::fs::remove_dir_all(&wal).unwrap();
    std::fs::create_dir(&wal).unwrap();
    let e = Db::open_on(d.path(), options(), machine().vfs).expect_err("the log lost records");
    match &e {
        DbError::Corruption { file, reason, .. } => {
            assert_eq!(file, &wal, "{e}");
            assert!(reason.contains("flushed"), "{e}");
        }
        other => panic!("expected corruption naming the log, got {other}"),
    }
}
