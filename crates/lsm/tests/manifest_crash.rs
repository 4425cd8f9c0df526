//! Crash consistency of the manifest over `FaultVfs`, which loses every byte no completed
//! fdatasync covered. A script (first create, appends, reopen with a new manifest, more
//! appends, a rewrite, an append) runs on a wrapper that "crashes" the machine before its
//! k-th I/O operation, for every k: every open, read, write, sync, rename, removal, listing
//! and directory fsync. A crash during a durable write also tears it (a random prefix of the
//! write reaches the disk). After each crash, recovery must give the state before or after
//! the operation in progress — never an error, never less than what an `Ok` acknowledged —
//! and the database must go on (reopen, write, recover again).

mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::TempDir;
use uringdb_lsm::internal_key::{self, ValueKind};
use uringdb_lsm::manifest::{
    recover, FileMeta, ManifestError, ManifestState, ManifestWriter, VersionEdit,
};
use uringdb_uring::{
    open_vfs, BackendChoice, BackendKind, FaultConfig, FaultVfs, File, LockGuard, OpenMode, Vfs,
    WriteTiming,
};

const CMP: &str = "uringdb.internal_key.v1";

/// How the machine goes down at the chosen operation.
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// Unsynced bytes are lost.
    Clean,
    /// The durable write in progress (if the operation is one) reaches the disk in part: a
    /// seeded prefix of it and of any other unsynced bytes.
    Torn(u64),
}

/// State shared by a `CrashVfs` and its files.
#[derive(Debug)]
struct Switch {
    fault: Arc<FaultVfs>,
    ops: AtomicU64,
    crash_at: u64,
    mode: Crash,
    down: AtomicBool,
}

impl Switch {
    /// Counts one operation; crashes the machine before the `crash_at`-th. `torn_write`:
    /// the operation is a durable write whose bytes may partly land.
    fn step(&self, torn_write: Option<(&dyn File, u64, &[&[u8]])>) -> io::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(io::Error::other("machine is down"));
        }
        let n = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.crash_at {
            return Ok(());
        }
        self.down.store(true, Ordering::SeqCst);
        match self.mode {
            Crash::Clean => self.fault.crash(),
            Crash::Torn(seed) => {
                if let Some((file, offset, bufs)) = torn_write {
                    // Buffered, not synced: crash_torn keeps a prefix of it.
                    let _ = file.write_at(offset, bufs, false);
                }
                self.fault.crash_torn(seed);
            }
        }
        Err(io::Error::other("simulated crash"))
    }
}

/// A `Vfs` over `FaultVfs` that crashes before its k-th operation (see the module docs).
#[derive(Debug)]
struct CrashVfs(Arc<Switch>);

#[derive(Debug)]
struct CrashFile {
    inner: Arc<dyn File>,
    switch: Arc<Switch>,
}

impl Vfs for CrashVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
        self.0.step(None)?;
        let inner = self.0.fault.open(path, mode)?;
        Ok(Arc::new(CrashFile {
            inner,
            switch: Arc::clone(&self.0),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.step(None)?;
        self.0.fault.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.step(None)?;
        self.0.fault.rename(from, to)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.step(None)?;
        self.0.fault.list_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.step(None)?;
        self.0.fault.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.step(None)?;
        self.0.fault.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        self.0.step(None)?;
        self.0.fault.lock(path)
    }
    fn kind(&self) -> BackendKind {
        self.0.fault.kind()
    }
}

impl File for CrashFile {
    fn write_at(&self, offset: u64, bufs: &[&[u8]], durable: bool) -> io::Result<WriteTiming> {
        let torn = durable.then_some((&*self.inner, offset, bufs));
        self.switch.step(torn)?;
        self.inner.write_at(offset, bufs, durable)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.switch.step(None)?;
        self.inner.sync_data()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.switch.step(None)?;
        self.inner.read_at(offset, buf)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.switch.step(None)?;
        self.inner.allocate(len)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.switch.step(None)?;
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.switch.step(None)?;
        self.inner.len()
    }
}

fn meta(number: u64, seq: u64) -> FileMeta {
    let mut smallest = Vec::new();
    internal_key::encode(
        &mut smallest,
        format!("key{number:04}").as_bytes(),
        seq,
        ValueKind::Put,
    );
    let mut largest = Vec::new();
    internal_key::encode(
        &mut largest,
        format!("key{number:04}~").as_bytes(),
        seq,
        ValueKind::Delete,
    );
    FileMeta {
        number,
        file_bytes: 4096 * number,
        smallest,
        largest,
        entries: number,
        smallest_seq: seq,
        largest_seq: seq + 10,
    }
}

/// The i-th edit of the script against `state`: a flush (new level-0 table), and every
/// third edit a compaction moving the oldest level-0 table to level 1.
fn script_edit(i: u64, state: &ManifestState) -> VersionEdit {
    let number = state.next_file_number;
    let mut e = VersionEdit {
        next_file_number: Some(number + 1),
        flushed_seq: Some(state.flushed_seq + 10),
        last_seq: Some(state.last_seq + 12),
        added: vec![(0, meta(number, state.flushed_seq + 1))],
        ..VersionEdit::default()
    };
    if i % 3 == 2 {
        if let Some(oldest) = state.levels[0].last() {
            e.deleted.push((0, oldest.number));
            e.added.push((1, oldest.clone()));
        }
    }
    e
}

/// What the script had done when the machine went down: the state recovery may return
/// before and after the operation in progress (`None`: no database yet).
struct Outcome {
    before: Option<ManifestState>,
    after: Option<ManifestState>,
    completed: bool,
}

/// Runs the script on `vfs`, stopping at the first error (the crash).
fn run_script(vfs: Arc<dyn Vfs>, dir: &Path) -> Outcome {
    let mut acked: Option<ManifestState> = None;
    let out = |before: &Option<ManifestState>, after: ManifestState| Outcome {
        before: before.clone(),
        after: Some(after),
        completed: false,
    };

    // First create.
    let mut state = ManifestState::new(CMP);
    state.next_file_number = 2;
    let mut w = match ManifestWriter::create(vfs.clone(), dir, 1, &state) {
        Ok(w) => w,
        Err(_) => return out(&acked, state),
    };
    acked = Some(state.clone());
    let mut i = 0;
    let mut appends = |w: &mut ManifestWriter,
                       state: &mut ManifestState,
                       acked: &mut Option<ManifestState>,
                       n: usize|
     -> Result<(), Box<ManifestState>> {
        for _ in 0..n {
            let e = script_edit(i, state);
            i += 1;
            let mut next = state.clone();
            next.apply(&e).unwrap();
            if w.append(&e).is_err() {
                return Err(Box::new(next));
            }
            *state = next;
            *acked = Some(state.clone());
        }
        Ok(())
    };
    if let Err(next) = appends(&mut w, &mut state, &mut acked, 4) {
        return out(&acked, *next);
    }

    // Reopen: recover, then a new manifest numbered from the counter.
    drop(w);
    let r = match recover(&*vfs, dir, CMP) {
        Ok(r) => r.expect("a database"),
        Err(_) => return out(&acked, state),
    };
    assert_eq!(r.state, state, "recovery without a crash");
    let mut next = state.clone();
    let number = next.next_file_number;
    next.next_file_number += 1;
    let mut w = match ManifestWriter::create(vfs.clone(), dir, number, &next) {
        Ok(w) => w,
        Err(_) => return out(&acked, next),
    };
    state = next;
    acked = Some(state.clone());
    if let Err(next) = appends(&mut w, &mut state, &mut acked, 3) {
        return out(&acked, *next);
    }

    // Rewrite (the database does this when the manifest grows), while it is open.
    let mut next = state.clone();
    let number = next.next_file_number;
    next.next_file_number += 1;
    let mut w = match ManifestWriter::create(vfs.clone(), dir, number, &next) {
        Ok(w) => w,
        Err(_) => return out(&acked, next),
    };
    state = next;
    acked = Some(state.clone());
    if let Err(next) = appends(&mut w, &mut state, &mut acked, 2) {
        return out(&acked, *next);
    }
    Outcome {
        before: acked,
        after: Some(state),
        completed: true,
    }
}

/// After recovery: the database continues (new manifest, an append) and recovers again.
fn continue_after(vfs: Arc<dyn Vfs>, dir: &Path, recovered: Option<ManifestState>) {
    let mut state = recovered.unwrap_or_else(|| ManifestState::new(CMP));
    let number = state.next_file_number;
    state.next_file_number += 1;
    let mut w = ManifestWriter::create(vfs.clone(), dir, number, &state).unwrap();
    let e = script_edit(100, &state);
    state.apply(&e).unwrap();
    w.append(&e).unwrap();
    let r = recover(&*vfs, dir, CMP).unwrap().unwrap();
    assert_eq!(r.state, state);
    assert_eq!(r.torn_tail_bytes, 0);
    let manifests = vfs
        .list_dir(dir)
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("MANIFEST-") || n.ends_with(".tmp"))
        .count();
    assert_eq!(
        manifests, 1,
        "old manifests and temporary files are removed"
    );
}

fn portable() -> Arc<dyn Vfs> {
    open_vfs(BackendChoice::Portable).expect("portable vfs").0
}

/// Runs the script crashing at every operation in `mode`; returns how many crash points.
fn crash_everywhere(mode: Crash) -> u64 {
    let mut k = 1;
    loop {
        let dir = TempDir::new("k");
        let fault = FaultVfs::new(portable(), FaultConfig::default());
        let switch = Arc::new(Switch {
            fault: fault.clone(),
            ops: AtomicU64::new(0),
            crash_at: k,
            mode,
            down: AtomicBool::new(false),
        });
        let outcome = run_script(Arc::new(CrashVfs(switch.clone())), dir.path());
        if outcome.completed {
            assert!(!switch.down.load(Ordering::SeqCst));
            return k - 1;
        }
        assert!(
            switch.down.load(Ordering::SeqCst),
            "k={k}: the script failed without a crash"
        );
        // Reboot: recover through the fault layer, which now holds only synced bytes.
        let got: Option<ManifestState> = match recover(&*fault, dir.path(), CMP) {
            Ok(r) => r.map(|r| r.state),
            Err(e @ ManifestError::Corruption { .. }) | Err(e @ ManifestError::Io { .. }) => {
                panic!("{mode:?} crash before operation {k}: recovery failed: {e}")
            }
            Err(e) => panic!("{e}"),
        };
        assert!(
            got == outcome.before || got == outcome.after,
            "{mode:?} crash before operation {k}: recovered {got:#?}\nexpected {:#?}\nor {:#?}",
            outcome.before,
            outcome.after
        );
        continue_after(fault, dir.path(), got);
        k += 1;
    }
}

#[test]
fn a_crash_before_any_operation_recovers_the_old_or_the_new_state() {
    let points = crash_everywhere(Crash::Clean);
    // The script does a few dozen operations; make sure they were all visited.
    assert!(points > 40, "only {points} crash points");
}

#[test]
fn a_crash_tearing_the_write_in_progress_recovers_the_old_or_the_new_state() {
    for seed in [1, 2, 3] {
        let points = crash_everywhere(Crash::Torn(seed));
        assert!(points > 40, "only {points} crash points");
    }
}

#[test]
fn every_acknowledged_append_survives_a_crash_right_after_it() {
    let dir = TempDir::new("acked");
    let fault = FaultVfs::new(portable(), FaultConfig::default());
    let mut state = ManifestState::new(CMP);
    state.next_file_number = 2;
    let mut w = ManifestWriter::create(fault.clone(), dir.path(), 1, &state).unwrap();
    for i in 0..10 {
        let e = script_edit(i, &state);
        state.apply(&e).unwrap();
        w.append(&e).unwrap();
        assert_eq!(fault.pending_bytes(), 0, "append returned before its sync");
    }
    fault.crash_torn(9);
    let r = recover(&*fault, dir.path(), CMP).unwrap().unwrap();
    assert_eq!(r.state, state);
    assert_eq!(r.edits, 11);
}
