//! The state a [`FaultVfs`](super::FaultVfs) shares with its files: the configuration, the
//! crash epoch, each file's pending (unsynced) writes, and the counters.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use super::config::FaultConfig;
use crate::vfs::File;

/// State shared by a `FaultVfs` and its files.
pub(super) struct Shared {
    pub(super) config: FaultConfig,
    /// Incremented by every crash; a handle from an older epoch is dead.
    pub(super) epoch: AtomicU64,
    /// Pending-write state per file, keyed by canonical path (handles share it).
    pub(super) files: Mutex<HashMap<PathBuf, Arc<FileState>>>,
    pub(super) counters: Mutex<Counters>,
    pub(super) synced_bytes: AtomicU64,
    pub(super) pending_bytes: AtomicU64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) accepted_write_bytes: u64,
    pub(super) write_refused: bool,
    pub(super) syncs: u64,
    pub(super) allocated_bytes: u64,
}

/// One file's page cache.
#[derive(Default)]
pub(super) struct FileState {
    pub(super) pending: Mutex<Pending>,
}

#[derive(Default)]
pub(super) struct Pending {
    /// Unsynced writes in write order.
    pub(super) writes: Vec<(u64, Vec<u8>)>,
    /// The inner handle of the last writer: used to flush (it is open for writing).
    pub(super) writer: Option<Arc<dyn File>>,
    /// Ids of `writes`, one each, increasing (`sync_delay_us`: a sync flushes only the
    /// writes made before it was issued).
    pub(super) ids: Vec<u64>,
    pub(super) next_id: u64,
}

impl Pending {
    pub(super) fn bytes(&self) -> u64 {
        self.writes.iter().map(|(_, b)| b.len() as u64).sum()
    }

    pub(super) fn end(&self) -> u64 {
        self.writes
            .iter()
            .map(|(off, b)| off + b.len() as u64)
            .max()
            .unwrap_or(0)
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> io::Result<MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| io::Error::other("FaultVfs state poisoned by a panic"))
}

pub(super) fn crashed() -> io::Error {
    io::Error::other("simulated crash: this handle was opened before FaultVfs::crash (EIO)")
}

/// The key under which handles of one file share state.
pub(super) fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
