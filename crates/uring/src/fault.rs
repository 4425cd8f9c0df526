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
//! pass straight through to the inner backend and are immediately durable: a crash does not
//! undo a rename or a file creation that was not followed by `sync_dir`. `set_len` also trims
//! pending writes past the new length. Locks are not released by `crash`.
//!
//! # Threading
//!
//! All state sits behind mutexes; any thread may call anything. A handle's pending list is
//! locked for the duration of each read, write and flush, so the test backend serializes I/O
//! per file (it is built to be right, not fast).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::portable::nanos_between;
use crate::vfs::{File, LockGuard, OpenMode, Vfs, WriteTiming};
use crate::BackendKind;

/// What [`FaultVfs`] injects. `FaultConfig::default()` injects nothing (buffering only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultConfig {
    /// Once the total bytes accepted by `write_at` would exceed this, `write_at` fails with
    /// `errno` (and keeps failing).
    pub fail_write_after_bytes: Option<u64>,
    /// The n-th sync (1-based, counted over all files) fails with `errno`.
    pub fail_sync_nth: Option<u64>,
    /// The errno of injected write and sync failures; `libc::EIO` by default.
    pub errno: i32,
    /// `allocate()` fails with `ENOSPC` once the total bytes allocated would exceed this.
    pub enospc_allocate_after_bytes: Option<u64>,
    /// The sync failure injected by `fail_sync_nth` persists the file's pending bytes before
    /// it reports the error (the bytes reached the disk; the caller cannot know).
    pub sync_fail_persists: bool,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            fail_write_after_bytes: None,
            fail_sync_nth: None,
            errno: libc::EIO,
            enospc_allocate_after_bytes: None,
            sync_fail_persists: false,
        }
    }
}

/// The page size [`FaultVfs::crash_pages`] persists or loses as a unit.
pub const FAULT_PAGE_BYTES: u64 = 4096;

impl FaultConfig {
    /// Parses a spec such as `"drop-unsynced"` (no faults, just buffering) or
    /// `"drop-unsynced,fail_sync_nth=5,errno=EIO"`: comma-separated items, each either the
    /// flag `drop-unsynced` (buffering is always on; the flag documents it), the flag
    /// `sync_fail_persists` (see [`FaultConfig::sync_fail_persists`]), or `key=value` with
    /// keys `fail_write_after_bytes`, `fail_sync_nth` (>= 1), `enospc_allocate_after_bytes`
    /// (unsigned integers) and `errno` (`EIO` or `ENOSPC`). Each key at most once.
    pub fn from_env_str(s: &str) -> Result<FaultConfig, String> {
        let mut config = FaultConfig::default();
        if s.trim().is_empty() {
            return Err("empty fault spec; expected e.g. 'drop-unsynced' or \
                        'drop-unsynced,fail_sync_nth=5,errno=EIO'"
                .to_string());
        }
        let mut seen: Vec<&str> = Vec::new();
        for item in s.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(format!("empty item in fault spec {s:?}"));
            }
            if item == "drop-unsynced" {
                continue;
            }
            if item == "sync_fail_persists" {
                config.sync_fail_persists = true;
                continue;
            }
            let Some((key, value)) = item.split_once('=') else {
                return Err(format!(
                    "fault spec item {item:?} is neither 'drop-unsynced', 'sync_fail_persists' \
                     nor key=value"
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(format!("fault spec key {key:?} given twice"));
            }
            seen.push(key);
            let number = || -> Result<u64, String> {
                value.parse::<u64>().map_err(|_| {
                    format!("fault spec {key}={value:?}: expected an unsigned integer")
                })
            };
            match key {
                "fail_write_after_bytes" => config.fail_write_after_bytes = Some(number()?),
                "fail_sync_nth" => {
                    let n = number()?;
                    if n == 0 {
                        return Err("fault spec fail_sync_nth is 1-based; 0 never fires".into());
                    }
                    config.fail_sync_nth = Some(n);
                }
                "enospc_allocate_after_bytes" => {
                    config.enospc_allocate_after_bytes = Some(number()?)
                }
                "errno" => {
                    config.errno = match value {
                        "EIO" => libc::EIO,
                        "ENOSPC" => libc::ENOSPC,
                        _ => {
                            return Err(format!(
                                "fault spec errno={value:?}: expected EIO or ENOSPC"
                            ))
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown fault spec key {key:?}; expected fail_write_after_bytes, \
                         fail_sync_nth, errno or enospc_allocate_after_bytes"
                    ))
                }
            }
        }
        Ok(config)
    }
}

/// A [`Vfs`] that buffers writes until they are synced, drops them on a simulated crash and
/// injects faults. See the module documentation for the exact semantics.
pub struct FaultVfs {
    inner: Arc<dyn Vfs>,
    shared: Arc<Shared>,
}

/// State shared by a `FaultVfs` and its files.
struct Shared {
    config: FaultConfig,
    /// Incremented by every crash; a handle from an older epoch is dead.
    epoch: AtomicU64,
    /// Pending-write state per file, keyed by canonical path (handles share it).
    files: Mutex<HashMap<PathBuf, Arc<FileState>>>,
    counters: Mutex<Counters>,
    synced_bytes: AtomicU64,
    pending_bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted_write_bytes: u64,
    write_refused: bool,
    syncs: u64,
    allocated_bytes: u64,
}

/// One file's page cache.
#[derive(Default)]
struct FileState {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    /// Unsynced writes in write order.
    writes: Vec<(u64, Vec<u8>)>,
    /// The inner handle of the last writer: used to flush (it is open for writing).
    writer: Option<Arc<dyn File>>,
}

impl Pending {
    fn bytes(&self) -> u64 {
        self.writes.iter().map(|(_, b)| b.len() as u64).sum()
    }

    fn end(&self) -> u64 {
        self.writes
            .iter()
            .map(|(off, b)| off + b.len() as u64)
            .max()
            .unwrap_or(0)
    }
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

fn lock<T>(mutex: &Mutex<T>) -> io::Result<MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| io::Error::other("FaultVfs state poisoned by a panic"))
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash: this handle was opened before FaultVfs::crash (EIO)")
}

/// The key under which handles of one file share state.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
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
            pending.writer = None;
            self.shared.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
        }
    }

    fn state_for(&self, key: PathBuf) -> io::Result<Arc<FileState>> {
        let mut files = lock(&self.shared.files)?;
        Ok(Arc::clone(files.entry(key).or_default()))
    }
}

/// How a simulated crash treats unsynced bytes beyond dropping them.
#[derive(Clone, Copy, Debug)]
enum CrashKind {
    /// A prefix of the pending bytes, in write order, reaches the file.
    Torn(u64),
    /// A random subset of the dirty pages reaches the file.
    Pages(u64),
}

/// Writes a deterministic-random subset of the pages dirtied by `writes` through `writer`,
/// each page with the bytes the writes left in it (later writes win) and, where no pending
/// write covered a byte of a kept page, the inner file's current byte (read back first), so
/// that a kept page is exactly the page the process saw. Errors are ignored, as in
/// [`write_prefix`].
fn write_page_subset(writer: &dyn File, writes: &[(u64, Vec<u8>)], seed: u64) {
    let mut pages: Vec<u64> = writes
        .iter()
        .filter(|(_, b)| !b.is_empty())
        .flat_map(|(at, b)| {
            let first = at / FAULT_PAGE_BYTES;
            let last = (at + b.len() as u64 - 1) / FAULT_PAGE_BYTES;
            first..=last
        })
        .collect();
    pages.sort_unstable();
    pages.dedup();
    for page in pages {
        if splitmix64(seed ^ splitmix64(page)) & 1 == 0 {
            continue;
        }
        let start = page * FAULT_PAGE_BYTES;
        let mut buf = vec![0u8; FAULT_PAGE_BYTES as usize];
        let got = writer.read_at(start, &mut buf).unwrap_or(0);
        let mut end = start + got as u64;
        for (at, data) in writes {
            let lo = (*at).max(start);
            let hi = (at + data.len() as u64).min(start + FAULT_PAGE_BYTES);
            if lo < hi {
                buf[(lo - start) as usize..(hi - start) as usize]
                    .copy_from_slice(&data[(lo - at) as usize..(hi - at) as usize]);
                end = end.max(hi);
            }
        }
        let _ = writer.write_at(start, &[&buf[..(end - start) as usize]], false);
    }
}

/// Writes the first `keep` bytes of `writes` (in order) through `writer`. Errors are ignored:
/// the machine is "crashing", whatever reached the file reached it.
fn write_prefix(writer: &dyn File, writes: &[(u64, Vec<u8>)], mut keep: u64) {
    for (offset, bytes) in writes {
        if keep == 0 {
            break;
        }
        let n = usize::try_from(keep).unwrap_or(usize::MAX).min(bytes.len());
        let _ = writer.write_at(*offset, &[&bytes[..n]], false);
        keep -= n as u64;
    }
}

/// A well-mixed 64-bit hash of `x` (SplitMix64's finalizer): deterministic and stable.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of `bytes`: stable across runs and Rust versions (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Vfs for FaultVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
        let epoch = self.shared.epoch.load(Ordering::SeqCst);
        let inner = self.inner.open(path, mode)?;
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
        self.inner.remove_file(path)?;
        lock(&self.shared.files)?.remove(&key);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let from_key = canonical(from);
        self.inner.rename(from, to)?;
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
        self.inner.list_dir(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        self.inner.lock(path)
    }

    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }
}

/// A handle of [`FaultVfs`].
struct FaultFile {
    inner: Arc<dyn File>,
    state: Arc<FileState>,
    shared: Arc<Shared>,
    /// The crash epoch this handle was opened in.
    epoch: u64,
    /// False for `OpenMode::ReadOnly`: writes fail with `EBADF` like on a real file.
    writable: bool,
    /// For `Debug` output only.
    path: PathBuf,
}

impl std::fmt::Debug for FaultFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultFile")
            .field("path", &self.path)
            .field("epoch", &self.epoch)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl FaultFile {
    /// Locks this file's pending writes, failing if a crash happened since the handle was
    /// opened. Checking under the lock orders the operation against `crash`.
    fn pending(&self) -> io::Result<MutexGuard<'_, Pending>> {
        let pending = lock(&self.state.pending)?;
        if self.shared.epoch.load(Ordering::SeqCst) != self.epoch {
            return Err(crashed());
        }
        Ok(pending)
    }

    /// Counts a sync, injects `fail_sync_nth`, and flushes the pending writes.
    fn sync_locked(&self, pending: &mut Pending) -> io::Result<()> {
        let nth = {
            let mut counters = lock(&self.shared.counters)?;
            counters.syncs += 1;
            counters.syncs
        };
        let bytes = pending.bytes();
        if self.shared.config.fail_sync_nth == Some(nth) {
            let writes = std::mem::take(&mut pending.writes);
            self.shared.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
            if self.shared.config.sync_fail_persists {
                if let Some(writer) = &pending.writer {
                    // The bytes reach the disk; only the report says otherwise.
                    for (offset, data) in &writes {
                        writer.write_at(*offset, &[data], false)?;
                    }
                    writer.sync_data()?;
                    self.shared.synced_bytes.fetch_add(bytes, Ordering::SeqCst);
                }
            }
            return Err(io::Error::from_raw_os_error(self.shared.config.errno));
        }
        let writes = std::mem::take(&mut pending.writes);
        self.shared.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
        let writer = match (&pending.writer, writes.is_empty()) {
            (Some(writer), false) => Arc::clone(writer),
            _ => return self.inner.sync_data(),
        };
        let last = writes.len() - 1;
        for (i, (offset, data)) in writes.iter().enumerate() {
            writer.write_at(*offset, &[data], i == last)?;
        }
        self.shared.synced_bytes.fetch_add(bytes, Ordering::SeqCst);
        Ok(())
    }
}

impl File for FaultFile {
    fn write_at(&self, offset: u64, bufs: &[&[u8]], durable: bool) -> io::Result<WriteTiming> {
        let start = Instant::now();
        let mut pending = self.pending()?;
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        if offset
            .checked_add(total)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "write of {total} bytes at offset {offset} overflows the file offset range"
                ),
            ));
        }
        {
            let mut counters = lock(&self.shared.counters)?;
            if let Some(limit) = self.shared.config.fail_write_after_bytes {
                if counters.write_refused || counters.accepted_write_bytes + total > limit {
                    counters.write_refused = true;
                    return Err(io::Error::from_raw_os_error(self.shared.config.errno));
                }
            }
            counters.accepted_write_bytes += total;
        }
        if total > 0 {
            pending.writes.push((offset, bufs.concat()));
            pending.writer = Some(Arc::clone(&self.inner));
            self.shared.pending_bytes.fetch_add(total, Ordering::SeqCst);
        }
        let written = Instant::now();
        let write_ns = nanos_between(start, written);
        if !durable {
            return Ok(WriteTiming {
                write_ns,
                sync_ns: 0,
            });
        }
        self.sync_locked(&mut pending)?;
        Ok(WriteTiming {
            write_ns,
            sync_ns: nanos_between(written, Instant::now()),
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut pending = self.pending()?;
        self.sync_locked(&mut pending)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let pending = self.pending()?;
        let from_inner = self.inner.read_at(offset, buf)?;
        if pending.writes.is_empty() {
            return Ok(from_inner);
        }
        let logical_len = self.inner.len()?.max(pending.end());
        let visible = logical_len.saturating_sub(offset).min(buf.len() as u64) as usize;
        // Between the inner end of file and a pending write further on: zeros.
        if visible > from_inner {
            buf[from_inner..visible].fill(0);
        }
        let window_end = offset + visible as u64;
        for (at, data) in &pending.writes {
            let end = at + data.len() as u64;
            let lo = (*at).max(offset);
            let hi = end.min(window_end);
            if lo < hi {
                let dst = (lo - offset) as usize..(hi - offset) as usize;
                let src = (lo - at) as usize..(hi - at) as usize;
                buf[dst].copy_from_slice(&data[src]);
            }
        }
        Ok(visible.max(from_inner))
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let _pending = self.pending()?;
        if let Some(limit) = self.shared.config.enospc_allocate_after_bytes {
            let growth = len.saturating_sub(self.inner.len()?);
            let mut counters = lock(&self.shared.counters)?;
            if counters.allocated_bytes + growth > limit {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.inner.allocate(len)?;
            counters.allocated_bytes += growth;
            return Ok(());
        }
        self.inner.allocate(len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut pending = self.pending()?;
        self.inner.set_len(len)?;
        // Truncation drops cached bytes past the new end.
        let before = pending.bytes();
        pending.writes.retain_mut(|(at, data)| {
            if *at >= len {
                return false;
            }
            let keep = (len - *at).min(data.len() as u64) as usize;
            data.truncate(keep);
            true
        });
        let after = pending.bytes();
        self.shared
            .pending_bytes
            .fetch_sub(before - after, Ordering::SeqCst);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let pending = self.pending()?;
        Ok(self.inner.len()?.max(pending.end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            FaultConfig::from_env_str("drop-unsynced").unwrap(),
            FaultConfig::default()
        );
        let c = FaultConfig::from_env_str("drop-unsynced,fail_sync_nth=5,errno=EIO").unwrap();
        assert_eq!(c.fail_sync_nth, Some(5));
        assert_eq!(c.errno, libc::EIO);
        let c = FaultConfig::from_env_str(
            " drop-unsynced , fail_write_after_bytes=4096, errno=ENOSPC, \
             enospc_allocate_after_bytes=1048576",
        )
        .unwrap();
        assert_eq!(c.fail_write_after_bytes, Some(4096));
        assert_eq!(c.errno, libc::ENOSPC);
        assert_eq!(c.enospc_allocate_after_bytes, Some(1 << 20));
        assert_eq!(c.fail_sync_nth, None);
    }

    #[test]
    fn rejects_bad_specs() {
        for (spec, needle) in [
            ("", "empty"),
            ("drop-unsynced,", "empty item"),
            ("fail_sync_nth=0", "1-based"),
            ("fail_sync_nth=x", "unsigned integer"),
            ("fail_sync_nth=-1", "unsigned integer"),
            ("errno=EPERM", "EIO or ENOSPC"),
            ("bogus=1", "unknown fault spec key"),
            ("drop-everything", "neither"),
            ("fail_sync_nth=1,fail_sync_nth=2", "twice"),
        ] {
            let err = FaultConfig::from_env_str(spec).unwrap_err();
            assert!(err.contains(needle), "{spec:?} -> {err}");
        }
    }

    #[test]
    fn hashes_are_stable() {
        // Pinned: crash_torn prefixes must not change between releases.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }
}
