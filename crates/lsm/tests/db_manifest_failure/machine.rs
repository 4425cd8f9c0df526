//! The trap wrapper over `FaultVfs`, the machine it makes, and the helpers every case uses.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::common::{small_db, TempDir, EIO, ENOSPC};
use uringdb_lsm::db::{BlockingWriter, Db, DbOptions};
use uringdb_uring::{
    open_vfs, BackendChoice, BackendKind, FaultConfig, FaultVfs, File, LockGuard, OpenMode, Vfs,
    WriteTiming,
};

#[derive(Debug, Default)]
pub(crate) struct Traps {
    pub(crate) create_enospc: AtomicBool,
    pub(crate) append_ambiguous: AtomicBool,
    pub(crate) log_sync_eio: AtomicBool,
    /// `append_ambiguous` fired (later manifest writes fail while it stays set).
    pub(crate) ambiguous_done: AtomicBool,
    /// 0: off; else the sync (counted from arming) that fails after persisting.
    pub(crate) sync_nth: AtomicU64,
    pub(crate) syncs: AtomicU64,
    /// Every file sync (`sync_data`, durable `write_at`) seen, armed or not: how far a
    /// `FaultConfig::fail_sync_nth` count got.
    pub(crate) file_syncs: AtomicU64,
    /// How many injected failures fired.
    pub(crate) fired: AtomicU64,
}

impl Traps {
    /// Whether `flag` is set (and counts it as fired).
    pub(crate) fn hit(&self, flag: &AtomicBool) -> bool {
        let hit = flag.load(Ordering::SeqCst);
        if hit {
            self.fired.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }
    pub(crate) fn take(&self, flag: &AtomicBool) -> bool {
        let hit = flag.swap(false, Ordering::SeqCst);
        if hit {
            self.fired.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }
    /// Counts one sync; whether it is the one to fail (after it persisted).
    pub(crate) fn sync_fails(&self) -> bool {
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

pub(crate) fn eio() -> io::Error {
    io::Error::from_raw_os_error(EIO)
}

/// A `Vfs` over `FaultVfs` with the traps of the module docs.
#[derive(Debug)]
pub(crate) struct TrapVfs {
    pub(crate) fault: Arc<FaultVfs>,
    pub(crate) traps: Arc<Traps>,
}

#[derive(Debug)]
pub(crate) struct TrapFile {
    pub(crate) inner: Arc<dyn File>,
    pub(crate) traps: Arc<Traps>,
    pub(crate) manifest: bool,
    pub(crate) log: bool,
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
    pub(crate) fn committer_sync(&self) -> bool {
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

pub(crate) struct Machine {
    pub(crate) fault: Arc<FaultVfs>,
    pub(crate) traps: Arc<Traps>,
    pub(crate) vfs: Arc<dyn Vfs>,
}

pub(crate) fn machine() -> Machine {
    machine_with(FaultConfig::default())
}

pub(crate) fn machine_with(config: FaultConfig) -> Machine {
    let (inner, _) = open_vfs(BackendChoice::Portable).unwrap();
    let fault = FaultVfs::new(inner, config);
    let traps = Arc::new(Traps::default());
    let vfs: Arc<dyn Vfs> = Arc::new(TrapVfs {
        fault: Arc::clone(&fault),
        traps: Arc::clone(&traps),
    });
    Machine { fault, traps, vfs }
}

/// The start of a targeted case: a fresh directory (`tag` in its name), a healthy machine,
/// the database open on it, and a blocking writer.
pub(crate) fn start(tag: &str) -> (TempDir, Machine, Db, BlockingWriter) {
    let d = TempDir::new(tag);
    let m = machine();
    let db = Db::open_on(d.path(), options(), m.vfs.clone()).unwrap();
    let w = db.blocking_writer();
    (d, m, db, w)
}

/// Writes `key(i)` = `value(i)` through `w` (it must succeed) and records it as acknowledged.
pub(crate) fn put_acked(w: &BlockingWriter, acked: &mut BTreeMap<Vec<u8>, Vec<u8>>, i: u32) {
    w.put(&key(i), &value(i)).unwrap();
    acked.insert(key(i), value(i));
}

/// Tiny manifest rewrite threshold (every install rewrites), no automatic compaction.
pub(crate) fn options() -> DbOptions {
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

pub(crate) fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

pub(crate) fn value(i: u32) -> Vec<u8> {
    format!("value-{i}-{}", "v".repeat(100)).into_bytes()
}

/// Reopens `dir` on a healthy disk after a crash and checks every acknowledged key.
pub(crate) fn reopen_and_check(dir: &Path, acked: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) -> Db {
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
pub(crate) fn crash(m: &Machine, db: Db, w: BlockingWriter) {
    m.fault.crash();
    drop(w);
    let _ = db.close();
}

pub(crate) fn sst_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sst"))
        .collect();
    v.sort();
    v
}
