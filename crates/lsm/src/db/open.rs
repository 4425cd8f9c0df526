//! Open and recovery: recover the manifest, check it against the log, open the live tables,
//! remove orphans, start a fresh manifest, replay the log above the flushed sequence number
//! into the memtable (and the whole log into the prepared-transaction table), then start the
//! applier and background threads.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::Instant;

use super::apply::{applier_thread, Hook};
use super::apply_queue::ApplyQueue;
use super::batch;
use super::rate_limiter::RateLimiter;
use super::state::{DbRecovery, Inner, ManifestCore, Sched, StallQueue, STALL_NONE};
use super::stats::Counters;
use super::table_files::TableFiles;
use super::version::{Mem, SuperVersion, TableHandle, TreeId, Version, VfsFile};
use super::{Db, DbError, DbOptions, WAL_DIR};
use crate::cache::BlockCache;
use crate::limits::APPLY_QUEUE_GROUPS;
use crate::manifest::{self, ManifestState, ManifestWriter};
use crate::table::{Comparator, Table};
use uringdb_uring::Vfs;
use uringdb_wal::Wal;

/// Crash-test hook beside [`failpoint`](crate::failpoint::failpoint): `URINGDB_TEST_MANIFEST_REWRITE_BYTES=<n>` overrides
/// `manifest_rewrite_bytes` (which JavaScript does not expose), so that a child process
/// rewrites its manifest at every flush and compaction and the rewrite's failpoints are
/// reached. Read at each open.
pub(super) fn test_manifest_rewrite_bytes() -> Option<u64> {
    std::env::var("URINGDB_TEST_MANIFEST_REWRITE_BYTES")
        .ok()?
        .parse()
        .ok()
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: the log in `dir/wal`, tables,
    /// manifest and CURRENT in `dir`.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, DbError> {
        Self::open_with(dir, opts, None)
    }

    /// Opens on a caller-provided I/O layer (tests: a shared `FaultVfs`).
    pub fn open_on(dir: &Path, opts: DbOptions, vfs: Arc<dyn Vfs>) -> Result<Db, DbError> {
        Self::open_with(dir, opts, Some(vfs))
    }

    pub(super) fn open_with(
        dir: &Path,
        mut opts: DbOptions,
        vfs: Option<Arc<dyn Vfs>>,
    ) -> Result<Db, DbError> {
        let started = Instant::now();
        if let Some(bytes) = test_manifest_rewrite_bytes() {
            opts.manifest_rewrite_bytes = bytes;
        }
        opts.validate()?;
        let (apply_queue, apply_rx) = ApplyQueue::new(APPLY_QUEUE_GROUPS);
        let hook = Arc::new(Hook {
            inner: OnceLock::new(),
            queue: apply_queue.clone(),
        });
        let wal_dir = dir.join(WAL_DIR);
        let (wal, wal_report) = Wal::open_with(&wal_dir, &opts.wal, vfs, Some(hook.clone()))?;
        let vfs = wal.vfs();
        let cmp_name = Comparator::InternalKey.name();
        let recovered = manifest::recover(&*vfs, dir, cmp_name)?;
        let mut recovery = DbRecovery::default();
        let mut state = match recovered {
            Some(r) => {
                recovery.manifest_edits = r.edits;
                recovery.manifest_torn_bytes = r.torn_tail_bytes;
                r.state
            }
            None => {
                recovery.created = true;
                ManifestState::new(cmp_name)
            }
        };
        recovery.flushed_seq = state.flushed_seq;
        let wal_last = wal.last_seq();
        if wal_last < state.flushed_seq {
            return Err(DbError::Corruption {
                file: wal_dir.clone(),
                offset: 0,
                reason: format!(
                    "the log ends at sequence number {wal_last} but the manifest says everything up to {} was flushed: the log was replaced or truncated",
                    state.flushed_seq
                ),
            });
        }
        if wal_last > state.flushed_seq && wal.first_seq() > state.flushed_seq + 1 {
            return Err(DbError::Corruption {
                file: wal_dir.clone(),
                offset: 0,
                reason: format!(
                    "log records {}..{} are missing (the log starts at {})",
                    state.flushed_seq + 1,
                    wal.first_seq() - 1,
                    wal.first_seq()
                ),
            });
        }
        let cache = BlockCache::new(opts.cache_bytes);
        let table_files = TableFiles::new(vfs.clone(), opts.effective_max_open_files());
        // Open every live table (beyond the table-file cache's capacity their files are
        // closed again at once, and reopened when read).
        let mut version = Version::empty();
        for (tree, levels) in [
            (TreeId::State, &state.levels),
            (TreeId::Streams, &state.streams.levels),
        ] {
            for (level, files) in levels.iter().enumerate() {
                for meta in files {
                    let t = open_table(&table_files, dir, &cache, meta.clone())?;
                    version.tree_mut(tree)[level].push(Arc::new(t));
                    recovery.tables += 1;
                }
            }
        }
        version.sort();
        // Remove files no version references: tables a crash left half-written, old
        // manifests.
        let live: std::collections::HashSet<u64> = state.live_files().into_iter().collect();
        let names = vfs
            .list_dir(dir)
            .map_err(|e| DbError::io(format!("listing {}", dir.display()), e))?;
        for name in names {
            if let Some(num) = name
                .strip_suffix(".sst")
                .and_then(|n| n.parse::<u64>().ok())
            {
                if !live.contains(&num) {
                    vfs.remove_file(&dir.join(&name))
                        .map_err(|e| DbError::io(format!("removing orphan {name}"), e))?;
                    recovery.orphans_removed += 1;
                }
            }
        }
        // A fresh manifest holding the current state.
        let number = state.next_file_number;
        state.next_file_number += 1;
        state.last_seq = state.last_seq.max(wal_last);
        let writer = ManifestWriter::create(vfs.clone(), dir, number, &state)?;
        let memtable_capacity = opts.memtable_bytes + 2 * wal.max_record_bytes() + (2 << 20);
        let limiter = (opts.rate_limit_bytes_per_sec > 0)
            .then(|| Arc::new(RateLimiter::new(opts.rate_limit_bytes_per_sec)));
        let flushed_seq = state.flushed_seq;
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            vfs,
            cache,
            table_files,
            limiter,
            wal,
            wal_report,
            recovery: DbRecovery::default(),
            sv: RwLock::new(Arc::new(SuperVersion {
                mem: Arc::new(Mem::new(memtable_capacity)),
                imm: Vec::new(),
                version: Arc::new(version),
            })),
            visible_seq: AtomicU64::new(flushed_seq),
            apply_lock: Mutex::new(()),
            memtable_capacity,
            streams: Default::default(),
            stream_waiters: Default::default(),
            manifest: Mutex::new(ManifestCore {
                state,
                writer,
                fresh_needed: false,
                limbo: Vec::new(),
            }),
            sched: Mutex::new(Sched::default()),
            bg_cv: Condvar::new(),
            done_cv: Condvar::new(),
            snapshots: Mutex::new(BTreeMap::new()),
            occ: Mutex::new(Default::default()),
            occ_on: AtomicBool::new(false),
            stall_level: AtomicU8::new(STALL_NONE),
            stall_pending: AtomicU64::new(0),
            stall: Mutex::new(StallQueue {
                q: Default::default(),
                bytes: 0,
                wanted: Vec::new(),
                since: None,
            }),
            stall_cv: Condvar::new(),
            counters: Counters::default(),
            closing: AtomicBool::new(false),
            bg_error: Mutex::new(None),
            panicked: OnceLock::new(),
            listeners: Mutex::new(Vec::new()),
            next_listener: AtomicU64::new(1),
            threads: Mutex::new(Vec::new()),
            apply_queue: apply_queue.clone(),
            applier: Mutex::new(None),
            txns: Mutex::new(Default::default()),
            locked_keys: Default::default(),
            lock_watchers: Mutex::new(Vec::new()),
            opts,
        });
        // Replay the log above the flushed sequence number; the records below it that the log
        // still holds are read too, for their prepare, commit and rollback records only (a
        // live prepare pins the log, see `txn`, so every one is still there).
        // Streams continue from their state at the flushed sequence number (see
        // `stream_state`), so replay assigns the stream seqs it assigned before.
        inner.load_streams()?;
        let mut replayed = 0u64;
        let from = inner.wal.first_seq().clamp(1, flushed_seq + 1);
        inner.occ_replay(Some(flushed_seq), from)?;
        if wal_last >= from {
            let mut cursor = inner.wal.cursor(from)?;
            loop {
                let b = inner.wal.read(&mut cursor, wal_last + 1, 4096, 16 << 20)?;
                if b.records.is_empty() {
                    break;
                }
                // The applier's iterator stops quietly at a malformed operation (it only sees
                // validated batches): a record whose checksum held but whose batch does not
                // is damage to report, not writes to skip.
                for &(seq, start, len) in &b.records {
                    if let Err(e) = batch::validate(&b.data[start..start + len]) {
                        return Err(DbError::Corruption {
                            file: inner.wal.dir().to_path_buf(),
                            offset: 0,
                            reason: format!("log record {seq} is not a valid write batch: {e}"),
                        });
                    }
                }
                let mut it = b
                    .records
                    .iter()
                    .map(|&(seq, start, len)| (seq, &b.data[start..start + len]));
                replayed += b
                    .records
                    .iter()
                    .filter(|&&(seq, _, _)| seq > flushed_seq)
                    .count() as u64;
                inner.apply_records(&mut it, flushed_seq);
            }
        }
        inner.occ_replay(None, 0)?;
        inner
            .visible_seq
            .store(wal_last.max(flushed_seq), Ordering::Release);
        recovery.replayed_records = replayed;
        recovery.duration = started.elapsed();
        // `recovery` is filled in here, before the database is shared (no other reference
        // exists yet: the hook is not set and no thread has started).
        let inner = {
            let mut inner = inner;
            if let Some(i) = Arc::get_mut(&mut inner) {
                i.recovery = recovery;
            }
            inner
        };
        hook.inner
            .set(Arc::downgrade(&inner))
            .map_err(|_| DbError::InvalidArgument("apply hook set twice".into()))?;
        {
            let weak = Arc::downgrade(&inner);
            let h = std::thread::Builder::new()
                .name("uringdb-apply".into())
                .spawn(move || applier_thread(weak, apply_queue, apply_rx))
                .map_err(|e| DbError::io("spawning the applier thread", e))?;
            *inner.applier.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
        }
        inner.start_threads()?;
        inner.update_stall();
        inner.bg_cv.notify_all();
        Ok(Db { inner })
    }
}

pub(super) fn open_table(
    files: &Arc<TableFiles>,
    dir: &Path,
    cache: &Arc<BlockCache>,
    meta: manifest::FileMeta,
) -> Result<TableHandle, DbError> {
    let path = dir.join(manifest::table_file_name(meta.number));
    let file = VfsFile::open(files, meta.number, path.clone(), meta.file_bytes).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DbError::Corruption {
                file: path.clone(),
                offset: 0,
                reason: "table file named by the manifest is missing".into(),
            }
        } else {
            DbError::io(format!("opening {}", path.display()), e)
        }
    })?;
    let table = Table::open_cached(
        file,
        meta.file_bytes,
        path.clone(),
        Comparator::InternalKey,
        Some(cache.clone()),
    )?;
    Ok(TableHandle {
        meta,
        table,
        path,
        obsolete: AtomicBool::new(false),
        vfs: files.vfs().clone(),
        compacting: AtomicBool::new(false),
    })
}
