//! `FaultVfs`: a test backend that loses every byte not covered by a completed fdatasync, and
//! injects write, sync and allocation errors (STYLE habit 4; after TigerBeetle's testing
//! storage, LevelDB's fault-injection test and Pebble's errorfs).
//!
//! # Semantics
//!
//! `FaultVfs` wraps a real backend (`inner`) and behaves like a page cache in front of it:
//!
//! - **Writes are buffered.** [`File::write_at`] does not reach the inner file: the bytes are
//!   appended to the file's list of pending writes (offset, bytes), in write order. Handles
//!   opened on the same path share one list, as they would share the page cache.
//! - **Reads see what the process wrote.** [`File::read_at`] reads the inner file and overlays
//!   the pending writes in order; [`File::len`] is the larger of the inner length and the end
//!   of the furthest pending write (a gap between the two reads as zeros).
//! - **Only a sync makes bytes durable.** [`File::sync_data`] and `write_at(.., durable:
//!   true)` write the file's pending bytes to the inner file (the last one with
//!   `durable = true`) and clear them. So if the process is killed (SIGKILL), every byte that
//!   no completed fdatasync covered is lost — exactly what durability tests need.
//! - **[`FaultVfs::crash`]** (in-process tests): discards the pending bytes of every file and
//!   makes every `File` handle opened before it fail from then on with an `io::Error` of kind
//!   `Other` whose message starts with "simulated crash". `open` after a crash works again (a
//!   "reboot") and sees only what was synced.
//! - **[`FaultVfs::crash_torn`]**: like `crash`, but first writes to the inner file a
//!   deterministic-random prefix (a byte count, in write order) of each file's pending bytes:
//!   a torn tail. (Real disks tear by sector, not in write order; a prefix is the case a log
//!   must survive.)
//! - **[`FaultVfs::crash_pages`]**: like `crash`, but first writes to the inner file a
//!   deterministic-random *subset* of each file's dirty 4 KiB pages ([`FAULT_PAGE_BYTES`]),
//!   each page with its final content: what a disk that reorders writeback leaves after a
//!   power cut (a later page of a write may survive while an earlier one is lost).
//!
//! [`Vfs::kind`] reports the inner backend's kind. [`FaultVfs::pending_bytes`] and
//! [`FaultVfs::synced_bytes`] count bytes buffered and bytes made durable.
//!
//! # Faults ([`FaultConfig`])
//!
//! - `fail_write_after_bytes`: a `write_at` that would bring the bytes accepted by `write_at`
//!   (all files, in total) above this limit fails with `errno` and accepts nothing; so do all
//!   later writes (the failure is latched).
//! - `fail_sync_nth`: the n-th sync (1-based; `sync_data` and durable `write_at` calls of all
//!   files count) fails with `errno`. The pending bytes of that file are dropped, as a kernel
//!   may drop dirty pages after a failed writeback: retrying the sync does not bring them back.
//! - `sync_fail_persists`: with `fail_sync_nth`, the failing sync first writes the file's
//!   pending bytes durably to the inner file, then reports the error: the ambiguous failure in
//!   which the caller is told the sync failed although the bytes reached the disk. Code that
//!   treats a failed sync as "nothing was written" is wrong, and this mode shows it.
//! - `errno`: the errno of the two faults above (`EIO` by default).
//! - `enospc_allocate_after_bytes`: `allocate(len)` fails with `ENOSPC` when the bytes it would
//!   add (`len` minus the current length, summed over all successful calls) exceed this.
//!
//! # Limitations
//!
//! Metadata operations (open/create, rename, remove, list, lock, allocate, set_len, sync_dir)
//! pass straight through to the inner backend and are immediately durable, unless
//! [`FaultConfig::lose_unsynced_dir_ops`] is on: then a crash undoes every creation, removal
//! and rename that no `sync_dir` of its directory followed (`dirlog.rs`). `set_len` also trims
//! pending writes past the new length. Locks are not released by `crash`.
//!
//! # Threading
//!
//! All state sits behind mutexes; any thread may call anything. A handle's pending list is
//! locked for the duration of each read, write and flush, so the test backend serializes I/O
//! per file (it is built to be right, not fast).
//!
//! # Files
//!
//! This file is the [`FaultVfs`] itself (its `Vfs` impl and the crash entry points);
//! `config.rs` the fault model's settings ([`FaultConfig`]); `state.rs` the state a
//! `FaultVfs` shares with its files (the pending writes of each file, the counters);
//! `file.rs` a handle (`File` impl: buffering, syncs, injected errors); `crash.rs` what a
//! simulated crash writes before dropping the rest (torn prefixes, page subsets).

mod config;
mod crash;
mod dirlog;
mod file;
mod state;

pub use config::FaultConfig;
pub use crash::FAULT_PAGE_BYTES;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crash::{fnv1a, splitmix64, write_page_subset, write_prefix, CrashKind};
use dirlog::{DirLog, DirOp, KEEPER_PREFIX};
use file::FaultFile;
use state::{canonical, lock, Counters, FileState, Shared};

use crate::vfs::{File, LockGuard, OpenMode, Vfs};
use crate::BackendKind;

/// A [`Vfs`] that buffers writes until they are synced, drops them on a simulated crash and
/// injects faults. See the module documentation for the exact semantics.
pub struct FaultVfs {
    inner: Arc<dyn Vfs>,
    shared: Arc<Shared>,
    /// Directory operations not made durable (only with `lose_unsynced_dir_ops`).
    dirlog: Mutex<DirLog>,
}

impl std::fmt::Debug for FaultVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultVfs")
            .field("inner", &self.inner)
            .field("config", &self.shared.config)
            .field("epoch", &self.shared.epoch.load(Ordering::Relaxed))
            .field("pending_bytes", &self.pending_bytes())
            .finish_non_exhaustive()
    }
}

impl FaultVfs {
    /// Wraps `inner`; see the module documentation.
    pub fn new(inner: Arc<dyn Vfs>, config: FaultConfig) -> Arc<FaultVfs> {
        Arc::new(FaultVfs {
            inner,
            shared: Arc::new(Shared {
                config,
                epoch: AtomicU64::new(0),
                files: Mutex::new(HashMap::new()),
                counters: Mutex::new(Counters::default()),
                synced_bytes: AtomicU64::new(0),
                pending_bytes: AtomicU64::new(0),
            }),
            dirlog: Mutex::new(DirLog::default()),
        })
    }

    /// Simulates a crash: drops every pending (unsynced) byte of every file, and makes every
    /// handle opened so far fail from now on. Later `open` calls work (a reboot).
    pub fn crash(&self) {
        self.crash_with(None);
    }

    /// Like [`FaultVfs::crash`], but first writes a deterministic-random prefix (by byte
    /// count, in write order) of each file's pending bytes to the inner file: a torn tail. The
    /// prefix length depends only on `seed`, the file's name and its pending bytes.
    pub fn crash_torn(&self, seed: u64) {
        self.crash_with(Some(CrashKind::Torn(seed)));
    }

    /// Like [`FaultVfs::crash`], but first writes to the inner file a deterministic-random
    /// subset of each file's dirty pages ([`FAULT_PAGE_BYTES`] each, aligned), each with the
    /// content the process last wrote there: writeback in any order, cut by a power failure.
    /// Which pages survive depends only on `seed`, the file's name and the page's index.
    pub fn crash_pages(&self, seed: u64) {
        self.crash_with(Some(CrashKind::Pages(seed)));
    }

    /// Total bytes written to inner files by syncs so far.
    pub fn synced_bytes(&self) -> u64 {
        self.shared.synced_bytes.load(Ordering::SeqCst)
    }

    /// Bytes currently buffered and not yet synced (overlapping writes count twice).
    pub fn pending_bytes(&self) -> u64 {
        self.shared.pending_bytes.load(Ordering::SeqCst)
    }

    fn crash_with(&self, kind: Option<CrashKind>) {
        // Kill the handles first: an operation that takes its file's lock after this sees the
        // new epoch and fails; one that already holds it finishes "before the crash".
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        let states: Vec<(PathBuf, Arc<FileState>)> = match self.shared.files.lock() {
            Ok(mut files) => files.drain().collect(),
            Err(poisoned) => poisoned.into_inner().drain().collect(),
        };
        for (path, state) in states {
            let mut pending = match state.pending.lock() {
                Ok(pending) => pending,
                Err(poisoned) => poisoned.into_inner(),
            };
            let bytes = pending.bytes();
            if let (Some(kind), Some(writer)) = (kind, pending.writer.clone()) {
                let name = path
                    .file_name()
                    .map(|n| n.as_encoded_bytes())
                    .unwrap_or(&[]);
                match kind {
                    CrashKind::Torn(seed) => {
                        let keep = splitmix64(seed ^ fnv1a(name)) % (bytes + 1);
                        write_prefix(&*writer, &pending.writes, keep);
                    }
                    CrashKind::Pages(seed) => {
                        write_page_subset(&*writer, &pending.writes, seed ^ fnv1a(name));
                    }
                }
            }
            pending.writes.clear();
            pending.ids.clear();
            pending.writer = None;
            self.shared.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
        }
        if self.shared.config.lose_unsynced_dir_ops {
            let mut log = match self.dirlog.lock() {
                Ok(log) => log,
                Err(poisoned) => poisoned.into_inner(),
            };
            // A test backend: failing to restore the directory would make every later check
            // meaningless, so it is loud.
            if let Err(e) = log.undo_all() {
                panic!("FaultVfs: undoing unsynced directory operations failed: {e}");
            }
        }
    }

    fn dir_ops(&self) -> bool {
        self.shared.config.lose_unsynced_dir_ops
    }

    fn state_for(&self, key: PathBuf) -> io::Result<Arc<FileState>> {
        let mut files = lock(&self.shared.files)?;
        Ok(Arc::clone(files.entry(key).or_default()))
    }
}

impl Vfs for FaultVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
        let epoch = self.shared.epoch.load(Ordering::SeqCst);
        let creates = self.dir_ops()
            && matches!(mode, OpenMode::CreateReadWrite | OpenMode::CreateNew)
            && !path.exists();
        let inner = self.inner.open(path, mode)?;
        if creates {
            lock(&self.dirlog)?.push(DirOp::Created {
                path: path.to_path_buf(),
            });
        }
        let state = self.state_for(canonical(path))?;
        Ok(Arc::new(FaultFile {
            inner,
            state,
            shared: Arc::clone(&self.shared),
            epoch,
            writable: mode != OpenMode::ReadOnly,
            path: path.to_path_buf(),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let key = canonical(path);
        if self.dir_ops() {
            let mut log = lock(&self.dirlog)?;
            let keeper = log.keep(path)?;
            if let Err(e) = self.inner.remove_file(path) {
                let _ = std::fs::remove_file(&keeper);
                return Err(e);
            }
            log.push(DirOp::Removed {
                path: path.to_path_buf(),
                keeper,
            });
        } else {
            self.inner.remove_file(path)?;
        }
        lock(&self.shared.files)?.remove(&key);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let from_key = canonical(from);
        if self.dir_ops() {
            let mut log = lock(&self.dirlog)?;
            let keeper = if to.exists() {
                Some(log.keep(to)?)
            } else {
                None
            };
            if let Err(e) = self.inner.rename(from, to) {
                if let Some(k) = keeper {
                    let _ = std::fs::remove_file(k);
                }
                return Err(e);
            }
            log.push(DirOp::Renamed {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                keeper,
            });
        } else {
            self.inner.rename(from, to)?;
        }
        let to_key = canonical(to);
        let mut files = lock(&self.shared.files)?;
        match files.remove(&from_key) {
            Some(state) => {
                files.insert(to_key, state);
            }
            None => {
                // The file replaced at `to` (if any) keeps its state with its open handles.
                files.remove(&to_key);
            }
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = self.inner.list_dir(dir)?;
        names.retain(|n| !n.starts_with(KEEPER_PREFIX));
        Ok(names)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)?;
        if self.dir_ops() {
            lock(&self.dirlog)?.synced(dir);
        }
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        self.inner.lock(path)
    }

    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }
}
