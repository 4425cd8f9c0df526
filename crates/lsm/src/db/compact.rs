//! Background work: flushing immutable memtables to level-0 tables, and leveled
//! compaction. Both write tables through the rate limiter, record the result with one
//! manifest edit, and only then publish a new version; inputs are deleted when the last
//! reader holding them lets go.
//!
//! Dropping versions: for each user key, entries arrive newest first. An entry is dropped
//! when a newer entry of the same key is visible to every snapshot (its sequence number is
//! at or below the smallest live snapshot). A deletion is dropped as well when it is
//! visible to every snapshot and no level below the output holds the key (nothing left to
//! hide).
//!
//! Installing a result, and what a failure leaves (see [`install`]):
//!
//! - before the manifest append (directory fsync, opening the outputs, a fresh manifest
//!   that could not be created): nothing names the outputs; they are removed and the job
//!   fails (a flush keeps its memtable and is retried).
//! - the append itself: the write or its fdatasync failed, but the record may be on disk
//!   and a recovery may read it. The job fails without publishing, yet nothing the edit
//!   names may go: the outputs are kept in limbo (`ManifestCore::limbo`) and the inputs stay
//!   live. The next install first starts a fresh manifest (its snapshot does not name the
//!   limbo files); once CURRENT names it durably, the limbo files are removed. A crash
//!   before that leaves them to the orphan sweep at open, or to the recovered manifest.
//! - after the append returned `Ok` (the manifest rewrite at `manifest_rewrite_bytes`): the
//!   edit is durable, so the job succeeded. A failed rewrite may have left CURRENT naming
//!   either manifest, so the old one is not appended to again: the next install starts a
//!   fresh manifest first (`ManifestCore::fresh_needed`).
//!
//! A flush also makes the log durable up to the flushed sequence number before its edit
//! says so ([`sync_log`]): for `sync: false` writes the log may lag, and a manifest ahead of
//! its log after a power cut would not open.

use std::cmp::Ordering as CmpOrdering;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::open::open_table;
use super::state::{Inner, ManifestCore};
use super::stats::{add, json_string};
use super::version::{Mem, SuperVersion, TableHandle, TableWriter, Version};
use super::write::ChannelSink;
use super::{Db, DbError};
use crate::failpoint::failpoint;
use crate::internal_key::{self, ValueKind};
use crate::manifest::{self, FileMeta, VersionEdit, NUM_LEVELS};
use crate::table::{TableBuilder, TableIter};
use uringdb_uring::OpenMode;
use uringdb_wal::WalError;

/// Pause after a failed background job before it is retried (e.g. after ENOSPC, once
/// space may have been freed).
const RETRY_AFTER: Duration = Duration::from_millis(500);

fn wait_bg(inner: &Inner, timeout: Duration) {
    let s = inner.sched.lock().unwrap_or_else(|e| e.into_inner());
    if inner.closing.load(Ordering::Acquire) {
        return;
    }
    drop(
        inner
            .bg_cv
            .wait_timeout(s, timeout)
            .unwrap_or_else(|e| e.into_inner()),
    );
}

pub(crate) fn flush_thread(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.closing.load(Ordering::Acquire) {
            return;
        }
        let sv = inner.super_version();
        let Some(mem) = sv.imm.last().cloned() else {
            drop(sv);
            wait_bg(&inner, Duration::from_millis(200));
            continue;
        };
        drop(sv);
        inner
            .sched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flushing = true;
        let r = flush_one(&inner, &mem);
        {
            let mut s = inner.sched.lock().unwrap_or_else(|e| e.into_inner());
            s.flushing = false;
            s.epoch += 1;
            inner.done_cv.notify_all();
            inner.bg_cv.notify_all();
        }
        match r {
            Ok(()) => {
                if inner.bg_error().is_some() {
                    inner.clear_bg_error();
                }
            }
            Err(e) => {
                inner.set_bg_error(e);
                wait_bg(&inner, RETRY_AFTER);
            }
        }
    }
}

pub(crate) fn compaction_thread(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.closing.load(Ordering::Acquire) {
            return;
        }
        let job = pick(&inner);
        let Some(job) = job else {
            wait_bg(&inner, Duration::from_millis(200));
            continue;
        };
        let r = run(&inner, &job);
        finish_job(&inner, &job);
        if r.is_ok() && inner.bg_error().is_some() {
            // The failed job succeeded on retry (e.g. space was freed): writes resume.
            inner.clear_bg_error();
        }
        if let Err(e) = r {
            if inner.closing.load(Ordering::Acquire) {
                return; // a compaction cut short by close: nothing failed
            }
            inner.set_bg_error(e);
            wait_bg(&inner, RETRY_AFTER);
        }
    }
}

fn finish_job(inner: &Inner, job: &Job) {
    for t in &job.inputs {
        t.compacting.store(false, Ordering::Release);
    }
    let mut s = inner.sched.lock().unwrap_or_else(|e| e.into_inner());
    s.compactions_running -= 1;
    if job.level == 0 {
        s.l0_compacting = false;
    }
    s.epoch += 1;
    inner.done_cv.notify_all();
    inner.bg_cv.notify_all();
}

/// A compaction: `inputs` (level-0 newest first, then by level) into `output_level`.
struct Job {
    level: usize,
    output_level: usize,
    inputs: Vec<Arc<TableHandle>>,
    /// Levels of each input (parallel to `inputs`).
    input_levels: Vec<usize>,
    version: Arc<Version>,
    manual: bool,
}

fn range_of(tables: &[Arc<TableHandle>]) -> (Vec<u8>, Vec<u8>) {
    let lo = tables
        .iter()
        .map(|t| t.smallest_user_key())
        .min()
        .unwrap_or_default()
        .to_vec();
    let hi = tables
        .iter()
        .map(|t| t.largest_user_key())
        .max()
        .unwrap_or_default()
        .to_vec();
    (lo, hi)
}

/// Picks the most urgent automatic compaction and marks its inputs (sched lock held).
fn pick(inner: &Inner) -> Option<Job> {
    let mut s = inner.sched.lock().unwrap_or_else(|e| e.into_inner());
    if s.manual {
        return None;
    }
    let sv = inner.super_version();
    let v = &sv.version;
    let busy = |ts: &[Arc<TableHandle>]| ts.iter().any(|t| t.compacting.load(Ordering::Acquire));
    let mut job: Option<Job> = None;
    if !s.l0_compacting && v.levels[0].len() >= inner.opts.l0_compaction_trigger {
        let l0 = v.levels[0].clone();
        let (lo, hi) = range_of(&l0);
        let l1 = v.overlapping(1, Some(&lo), Some(&hi));
        if !busy(&l0) && !busy(&l1) {
            let mut levels = vec![0; l0.len()];
            levels.extend(std::iter::repeat_n(1, l1.len()));
            let mut inputs = l0;
            inputs.extend(l1);
            job = Some(Job {
                level: 0,
                output_level: 1,
                inputs,
                input_levels: levels,
                version: v.clone(),
                manual: false,
            });
        }
    }
    if job.is_none() {
        // The level furthest over its target.
        let mut best: Option<(f64, usize)> = None;
        for level in 1..NUM_LEVELS - 1 {
            let score = v.level_bytes(level) as f64 / inner.opts.level_target_bytes(level) as f64;
            if score >= 1.0 && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, level));
            }
        }
        if let Some((_, level)) = best {
            let pointer = inner
                .manifest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .state
                .compact_pointers
                .get(level)
                .cloned()
                .unwrap_or_default();
            let files = &v.levels[level];
            let start = if pointer.is_empty() {
                0
            } else {
                files
                    .iter()
                    .position(|t| {
                        internal_key::compare(&t.meta.largest, &pointer) == CmpOrdering::Greater
                    })
                    .unwrap_or(0)
            };
            for i in (start..files.len()).chain(0..start) {
                let t = &files[i];
                if t.compacting.load(Ordering::Acquire) {
                    continue;
                }
                let next = v.overlapping(
                    level + 1,
                    Some(t.smallest_user_key()),
                    Some(t.largest_user_key()),
                );
                if busy(&next) {
                    continue;
                }
                let mut inputs = vec![t.clone()];
                let mut levels = vec![level];
                levels.extend(std::iter::repeat_n(level + 1, next.len()));
                inputs.extend(next);
                job = Some(Job {
                    level,
                    output_level: level + 1,
                    inputs,
                    input_levels: levels,
                    version: v.clone(),
                    manual: false,
                });
                break;
            }
        }
    }
    let job = job?;
    for t in &job.inputs {
        t.compacting.store(true, Ordering::Release);
    }
    s.compactions_running += 1;
    if job.level == 0 {
        s.l0_compacting = true;
    }
    Some(job)
}

/// Compacts every table overlapping `[lo, hi]` into the bottom level in one pass (the
/// input set is closed under overlap across all levels, so nothing newer is left above
/// the output's range).
pub(crate) fn compact_range(
    inner: &Arc<Inner>,
    lo: Option<&[u8]>,
    hi: Option<&[u8]>,
) -> Result<(), DbError> {
    {
        let mut s = inner.sched.lock().unwrap_or_else(|e| e.into_inner());
        while s.manual || s.compactions_running > 0 {
            if inner.closing.load(Ordering::Acquire) {
                return Err(DbError::Closed);
            }
            // A compaction that panicked stays "running": the database is failed instead.
            if let Some(e) = inner.panic_error() {
                return Err(e);
            }
            s = inner
                .done_cv
                .wait_timeout(s, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        s.manual = true;
        s.compactions_running += 1;
    }
    let sv = inner.super_version();
    let v = sv.version.clone();
    let bottom = (0..NUM_LEVELS)
        .rev()
        .find(|&l| !v.levels[l].is_empty())
        .unwrap_or(0);
    let mut lo_k = lo.map(<[u8]>::to_vec);
    let mut hi_k = hi.map(<[u8]>::to_vec);
    let mut chosen: Vec<(usize, Arc<TableHandle>)> = Vec::new();
    loop {
        let mut changed = false;
        for level in 0..=bottom {
            for t in &v.levels[level] {
                if chosen.iter().any(|(_, c)| Arc::ptr_eq(c, t)) {
                    continue;
                }
                if t.overlaps(lo_k.as_deref(), hi_k.as_deref()) {
                    if let Some(l) = &lo_k {
                        if t.smallest_user_key() < &l[..] {
                            lo_k = Some(t.smallest_user_key().to_vec());
                        }
                    }
                    if let Some(h) = &hi_k {
                        if t.largest_user_key() > &h[..] {
                            hi_k = Some(t.largest_user_key().to_vec());
                        }
                    }
                    chosen.push((level, t.clone()));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let job = Job {
        level: chosen.iter().map(|(l, _)| *l).min().unwrap_or(0),
        output_level: bottom.max(1),
        input_levels: chosen.iter().map(|(l, _)| *l).collect(),
        inputs: chosen.into_iter().map(|(_, t)| t).collect(),
        version: v,
        manual: true,
    };
    let r = if job.inputs.is_empty() {
        Ok(())
    } else {
        for t in &job.inputs {
            t.compacting.store(true, Ordering::Release);
        }
        run(inner, &job)
    };
    for t in &job.inputs {
        t.compacting.store(false, Ordering::Release);
    }
    {
        let mut s = inner.sched.lock().unwrap_or_else(|e| e.into_inner());
        s.manual = false;
        s.compactions_running -= 1;
        s.epoch += 1;
        inner.done_cv.notify_all();
        inner.bg_cv.notify_all();
    }
    r
}

/// Decides, entry by entry in internal-key order, what a flush or compaction keeps.
struct Dropper {
    smallest_snapshot: u64,
    last_user_key: Vec<u8>,
    has_last: bool,
    /// Sequence number of the previous entry of the current user key (u64::MAX: none).
    last_seq: u64,
    last_ikey: Vec<u8>,
}

impl Dropper {
    fn new(smallest_snapshot: u64) -> Dropper {
        Dropper {
            smallest_snapshot,
            last_user_key: Vec::new(),
            has_last: false,
            last_seq: u64::MAX,
            last_ikey: Vec::new(),
        }
    }

    /// Whether to drop `ikey`; `base` tells whether no deeper level holds `user_key`.
    fn drop_entry(&mut self, ikey: &[u8], base: impl FnOnce(&[u8]) -> bool) -> bool {
        let Some(p) = internal_key::decode(ikey) else {
            return false;
        };
        if self.has_last && self.last_ikey == ikey {
            return true; // the same entry twice (a record replayed into two tables)
        }
        self.last_ikey.clear();
        self.last_ikey.extend_from_slice(ikey);
        if !self.has_last || self.last_user_key != p.user_key {
            self.last_user_key.clear();
            self.last_user_key.extend_from_slice(p.user_key);
            self.has_last = true;
            self.last_seq = u64::MAX;
        }
        let drop = if self.last_seq <= self.smallest_snapshot {
            true
        } else {
            p.kind == ValueKind::Delete && p.seq <= self.smallest_snapshot && base(p.user_key)
        };
        self.last_seq = p.seq;
        drop
    }
}

/// Writes tables from an ordered stream of internal entries, splitting at `target` bytes
/// (only between user keys).
struct Outputs<'a> {
    inner: &'a Inner,
    level: usize,
    target: u64,
    current: Option<Building>,
    done: Vec<FileMeta>,
    bytes: u64,
}

struct Building {
    number: u64,
    path: std::path::PathBuf,
    /// The file the builder's writer writes (kept to sync it after `finish`).
    file: Arc<dyn uringdb_uring::File>,
    builder: TableBuilder<TableWriter>,
    smallest_seq: u64,
    largest_seq: u64,
    last_user_key: Vec<u8>,
}

impl<'a> Outputs<'a> {
    fn new(inner: &'a Inner, level: usize, target: u64) -> Outputs<'a> {
        Outputs {
            inner,
            level,
            target,
            current: None,
            done: Vec::new(),
            bytes: 0,
        }
    }

    fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<(), DbError> {
        let p = internal_key::decode(ikey).ok_or_else(|| {
            DbError::InvalidArgument("malformed internal key during compaction".into())
        })?;
        if let Some(b) = &self.current {
            let est = b.builder.estimated_bytes();
            if est >= self.target && b.last_user_key != p.user_key {
                self.finish_current()?;
            }
        }
        if self.current.is_none() {
            self.start()?;
        }
        let b = self.current.as_mut().expect("started");
        let path = &b.path;
        b.builder.add(ikey, value).map_err(|e| with_file(e, path))?;
        b.smallest_seq = b.smallest_seq.min(p.seq);
        b.largest_seq = b.largest_seq.max(p.seq);
        b.last_user_key.clear();
        b.last_user_key.extend_from_slice(p.user_key);
        Ok(())
    }

    fn start(&mut self) -> Result<(), DbError> {
        let number = {
            let mut m = self
                .inner
                .manifest
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let n = m.state.next_file_number;
            m.state.next_file_number += 1;
            n
        };
        let path = self.inner.dir.join(manifest::table_file_name(number));
        let file = self
            .inner
            .vfs
            .open(&path, OpenMode::CreateNew)
            .map_err(|e| DbError::io(format!("creating {}", path.display()), e))?;
        let writer = TableWriter::new(file.clone(), self.inner.limiter.clone());
        let builder = match TableBuilder::new(writer, self.inner.opts.table_options(self.level)) {
            Ok(b) => b,
            Err(e) => {
                let _ = self.inner.vfs.remove_file(&path);
                return Err(e.into());
            }
        };
        self.current = Some(Building {
            number,
            path,
            file,
            builder,
            smallest_seq: u64::MAX,
            largest_seq: 0,
            last_user_key: Vec::new(),
        });
        Ok(())
    }

    fn finish_current(&mut self) -> Result<(), DbError> {
        let Some(b) = self.current.take() else {
            return Ok(());
        };
        let path = b.path.clone();
        let props = match b.builder.finish() {
            Ok(p) => p,
            Err(e) => {
                let _ = self.inner.vfs.remove_file(&path);
                return Err(with_file(e, &path));
            }
        };
        if let Err(e) = b.file.sync_data() {
            let _ = self.inner.vfs.remove_file(&path);
            return Err(DbError::io(format!("syncing {}", path.display()), e));
        }
        self.bytes += props.file_bytes;
        self.done.push(FileMeta {
            number: b.number,
            file_bytes: props.file_bytes,
            smallest: props.smallest_key.clone(),
            largest: props.largest_key.clone(),
            entries: props.entries,
            smallest_seq: b.smallest_seq,
            largest_seq: b.largest_seq,
        });
        Ok(())
    }

    /// Makes the written tables part of the database: syncs the directory (their entries
    /// must be durable before the manifest names them), opens them, records `edit` — with
    /// the outputs added at this level — and publishes the version. `reached` is the
    /// failpoint between writing and recording.
    ///
    /// On a failure before the edit could reach the manifest the output files are removed;
    /// on a failed append (whose record may be on disk all the same) they are kept in limbo
    /// until a fresh manifest supersedes that record (see [`install`]).
    fn install(
        &mut self,
        reached: &str,
        mut edit: VersionEdit,
        flushed: Option<&Arc<Mem>>,
    ) -> Result<(), DbError> {
        let r = (|| {
            sync_dir(self.inner).map_err(InstallError::not_recorded)?;
            failpoint(reached);
            let added = open_outputs(self.inner, &self.done).map_err(InstallError::not_recorded)?;
            edit.added = self
                .done
                .iter()
                .map(|m| (self.level as u32, m.clone()))
                .collect();
            install(self.inner, &mut edit, added, flushed)
        })();
        match r {
            Ok(()) => Ok(()),
            Err(InstallError {
                error,
                maybe_recorded: false,
            }) => {
                self.abandon();
                Err(error)
            }
            Err(InstallError {
                error,
                maybe_recorded: true,
            }) => {
                let mut m = self
                    .inner
                    .manifest
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                m.limbo.extend(self.done.iter().map(|t| t.number));
                Err(error)
            }
        }
    }

    /// Removes the files of a job that failed before any edit could name them.
    fn abandon(&mut self) {
        if let Some(b) = self.current.take() {
            let _ = self.inner.vfs.remove_file(&b.path);
        }
        for m in &self.done {
            let _ = self
                .inner
                .vfs
                .remove_file(&self.inner.dir.join(manifest::table_file_name(m.number)));
        }
    }
}

/// A failed install, and whether its edit may have reached the manifest (a failed append:
/// the write or its fdatasync failed, yet the record may be on disk and recovered).
struct InstallError {
    error: DbError,
    maybe_recorded: bool,
}

impl InstallError {
    fn not_recorded(error: DbError) -> InstallError {
        InstallError {
            error,
            maybe_recorded: false,
        }
    }
}

/// Continues in a fresh manifest holding `m.state` (manifest lock held). Once it is durable
/// and named by CURRENT no recovery reads the old manifest, so the limbo files — named only
/// by a record of the old one — are removed. On failure the next install tries again.
fn start_fresh_manifest(inner: &Inner, m: &mut ManifestCore) -> Result<(), DbError> {
    m.fresh_needed = true;
    let number = m.state.next_file_number;
    m.state.next_file_number += 1;
    m.writer = manifest::ManifestWriter::create(inner.vfs.clone(), &inner.dir, number, &m.state)?;
    m.fresh_needed = false;
    for n in m.limbo.drain(..) {
        // Best effort: one left behind is an orphan that the next open removes.
        let _ = inner
            .vfs
            .remove_file(&inner.dir.join(manifest::table_file_name(n)));
    }
    Ok(())
}

/// Records `edit` in the manifest, then publishes the version it describes. `flushed`
/// is the immutable memtable the edit flushed (removed from the super version).
///
/// Once the append returned `Ok` the edit is durable and this succeeds: a failure of the
/// rewrite that may follow only makes the next install start a fresh manifest.
fn install(
    inner: &Inner,
    edit: &mut VersionEdit,
    added: Vec<Arc<TableHandle>>,
    flushed: Option<&Arc<Mem>>,
) -> Result<(), InstallError> {
    let mut guard = inner.manifest.lock().unwrap_or_else(|e| e.into_inner());
    let m = &mut *guard;
    edit.last_seq = Some(inner.visible_seq.load(Ordering::Acquire));
    if m.writer.failed() || m.fresh_needed {
        // The last append failed (its record may or may not be on disk), or a rewrite
        // failed (CURRENT may name either manifest): appending to this manifest could be
        // lost or could resurrect that record later. Continue in a fresh one.
        start_fresh_manifest(inner, m).map_err(InstallError::not_recorded)?;
    }
    edit.next_file_number = Some(m.state.next_file_number);
    let mut next = m.state.clone();
    next.apply(edit).map_err(|reason| {
        InstallError::not_recorded(DbError::Corruption {
            file: inner.dir.clone(),
            offset: 0,
            reason: format!("a version edit does not apply: {reason}"),
        })
    })?;
    failpoint("manifest.before_append");
    if let Err(e) = m.writer.append(edit) {
        // A latched writer means a write or fdatasync failed: the record may be on disk
        // (fdatasync failed after the bytes reached the device), so whatever it names must
        // stay. An unlatched error (an edit over the size limit) wrote nothing.
        return Err(InstallError {
            maybe_recorded: m.writer.failed(),
            error: e.into(),
        });
    }
    failpoint("manifest.after_append");
    m.state = next;
    let mut obsolete: Vec<Arc<TableHandle>> = Vec::new();
    {
        let mut sv = inner.sv.write().unwrap_or_else(|e| e.into_inner());
        let mut v: Version = (*sv.version).clone();
        for (level, number) in &edit.deleted {
            let l = &mut v.levels[*level as usize];
            if let Some(i) = l.iter().position(|t| t.meta.number == *number) {
                obsolete.push(l.remove(i));
            }
        }
        for (t, (level, _)) in added.into_iter().zip(edit.added.iter()) {
            v.levels[*level as usize].push(t);
        }
        v.sort();
        let imm = match flushed {
            Some(f) => sv
                .imm
                .iter()
                .filter(|x| !Arc::ptr_eq(x, f))
                .cloned()
                .collect(),
            None => sv.imm.clone(),
        };
        *sv = Arc::new(SuperVersion {
            mem: sv.mem.clone(),
            imm,
            version: Arc::new(v),
        });
    }
    for t in obsolete {
        t.obsolete.store(true, Ordering::Release);
    }
    // Keep the manifest short: rewrite it as one snapshot edit once it grows. The edit is
    // durable already, so a failure here (e.g. ENOSPC) fails nothing: `fresh_needed` stays
    // set and the next install retries before it appends.
    if m.writer.file_bytes() > inner.opts.manifest_rewrite_bytes {
        let _ = start_fresh_manifest(inner, m);
    }
    drop(guard);
    inner.update_stall();
    Ok(())
}

/// Names the table being written in an I/O error from the table builder (whose own context
/// does not know the file).
fn with_file(e: crate::table::TableError, path: &std::path::Path) -> DbError {
    match e {
        crate::table::TableError::Io { context, source } => DbError::Io {
            context: format!("writing table {}: {context}", path.display()),
            source,
        },
        other => DbError::Table(other),
    }
}

fn sync_dir(inner: &Inner) -> Result<(), DbError> {
    inner
        .vfs
        .sync_dir(&inner.dir)
        .map_err(|e| DbError::io(format!("syncing {}", inner.dir.display()), e))
}

fn open_outputs(inner: &Inner, metas: &[FileMeta]) -> Result<Vec<Arc<TableHandle>>, DbError> {
    metas
        .iter()
        .map(|m| open_table(&inner.table_files, &inner.dir, &inner.cache, m.clone()).map(Arc::new))
        .collect()
}

fn flush_one(inner: &Inner, mem: &Arc<Mem>) -> Result<(), DbError> {
    let started = Instant::now();
    let flushed_seq = mem.last_seq.load(Ordering::Acquire);
    let mut out = Outputs::new(inner, 0, u64::MAX);
    let mut dropper = Dropper::new(inner.smallest_snapshot());
    let mut entries = 0u64;
    let r = (|| {
        for e in mem.table.iter() {
            let ikey = e.key.as_bytes();
            if dropper.drop_entry(ikey, |_| false) {
                continue;
            }
            out.add(ikey, e.value)?;
            entries += 1;
        }
        out.finish_current()
    })();
    if let Err(e) = r {
        out.abandon();
        return Err(e);
    }
    // The edit says the log is no longer needed up to `flushed_seq`; for `sync: false`
    // writes the log may not be durable that far yet, and a power cut would then leave a
    // manifest ahead of its log (a database that does not open).
    if let Err(e) = sync_log(inner, flushed_seq) {
        out.abandon();
        return Err(e);
    }
    let edit = VersionEdit {
        flushed_seq: Some(flushed_seq),
        ..VersionEdit::default()
    };
    out.install("flush.table_written", edit, Some(mem))?;
    failpoint("flush.installed");
    add(&inner.counters.flushes, 1);
    add(&inner.counters.flush_bytes, out.bytes);
    // Log segments wholly below the flushed sequence number are no longer needed.
    let removed = inner.wal.truncate_before(flushed_seq + 1).unwrap_or(0);
    inner.emit(
        "flush",
        format!(
            "{{\"tables\":{},\"bytes\":{},\"entries\":{entries},\"flushedSeq\":{flushed_seq},\"logSegmentsRemoved\":{removed},\"durationMs\":{:.3}}}",
            out.done.len(),
            out.bytes,
            started.elapsed().as_secs_f64() * 1000.0
        ),
    );
    Ok(())
}

/// Makes the log durable up to at least `seq` (already written: the records are in a
/// memtable): a sync request through a producer of its own, waited for on this thread. The
/// committer never waits on background work, so this cannot deadlock.
fn sync_log(inner: &Inner, seq: u64) -> Result<(), DbError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let producer = inner
        .wal
        .producer(Arc::new(ChannelSink(std::sync::Mutex::new(tx))));
    producer.sync().map_err(DbError::Wal)?;
    match rx.recv() {
        Ok(Ok(durable)) if durable >= seq => Ok(()),
        Ok(Ok(durable)) => Err(DbError::io(
            format!("syncing the log in {}", inner.wal.dir().display()),
            std::io::Error::other(format!(
                "the log is durable up to sequence number {durable}, the flush needs {seq}"
            )),
        )),
        Ok(Err(e)) => Err(DbError::Wal(e)),
        Err(_) => Err(DbError::Closed),
    }
}

/// K-way merge of table cursors by internal key (ties: the earlier input, i.e. newer).
fn merge_step(iters: &mut [TableIter<'_, super::version::VfsFile>]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, it) in iters.iter().enumerate() {
        if !it.valid() {
            continue;
        }
        best = match best {
            None => Some(i),
            Some(b) => {
                if internal_key::compare(it.key(), iters[b].key()) == CmpOrdering::Less {
                    Some(i)
                } else {
                    Some(b)
                }
            }
        };
    }
    best
}

fn run(inner: &Inner, job: &Job) -> Result<(), DbError> {
    let started = Instant::now();
    let mut iters: Vec<TableIter<'_, super::version::VfsFile>> = Vec::new();
    for t in &job.inputs {
        let mut it = t.table.iter();
        it.seek_to_first()?;
        iters.push(it);
    }
    let deeper: Vec<&Vec<Arc<TableHandle>>> =
        job.version.levels[job.output_level + 1..].iter().collect();
    let base = |uk: &[u8]| {
        !deeper.iter().any(|l| {
            l.iter()
                .any(|t| t.smallest_user_key() <= uk && uk <= t.largest_user_key())
        })
    };
    let mut dropper = Dropper::new(inner.smallest_snapshot());
    let mut out = Outputs::new(inner, job.output_level, inner.opts.target_file_bytes);
    let mut dropped = 0u64;
    let r = (|| {
        while let Some(i) = merge_step(&mut iters) {
            if inner.closing.load(Ordering::Acquire) && !job.manual {
                return Err(DbError::Closed);
            }
            let it = &mut iters[i];
            if dropper.drop_entry(it.key(), base) {
                dropped += 1;
            } else {
                out.add(it.key(), it.value())?;
            }
            it.next()?;
        }
        out.finish_current()
    })();
    if let Err(e) = r {
        out.abandon();
        return Err(e);
    }
    let mut edit = VersionEdit {
        deleted: job
            .inputs
            .iter()
            .zip(&job.input_levels)
            .map(|(t, &l)| (l as u32, t.meta.number))
            .collect(),
        ..VersionEdit::default()
    };
    if job.level >= 1 && !job.manual {
        if let Some(t) = job.inputs.first() {
            edit.compact_pointers = vec![(job.level as u32, t.meta.largest.clone())];
        }
    }
    out.install("compaction.outputs_written", edit, None)?;
    failpoint("compaction.installed");
    let read: u64 = job.inputs.iter().map(|t| t.meta.file_bytes).sum();
    add(&inner.counters.compactions, 1);
    add(&inner.counters.compaction_read, read);
    add(&inner.counters.compaction_written, out.bytes);
    inner.emit(
        "compaction",
        format!(
            "{{\"level\":{},\"outputLevel\":{},\"inputs\":{},\"outputs\":{},\"bytesRead\":{read},\"bytesWritten\":{},\"entriesDropped\":{dropped},\"manual\":{},\"durationMs\":{:.3},\"reason\":{}}}",
            job.level,
            job.output_level,
            job.inputs.len(),
            out.done.len(),
            out.bytes,
            job.manual,
            started.elapsed().as_secs_f64() * 1000.0,
            json_string(if job.manual { "manual" } else if job.level == 0 { "l0-files" } else { "level-size" })
        ),
    );
    Ok(())
}

impl Db {
    /// Compacts every table overlapping `[lo, hi]` (unbounded where `None`) into the
    /// bottom level, dropping overwritten versions and deletions no snapshot needs.
    pub fn compact_range(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Result<(), DbError> {
        self.inner.flush_and_wait()?;
        // The compaction runs on the caller's thread: a panic in it fails the database (the
        // scheduler would otherwise keep it marked running) and is returned as that failure.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            compact_range(&self.inner, lo, hi)
        }))
        .unwrap_or_else(|p| {
            let e = self.inner.fail_after_panic("a manual compaction", &*p);
            Err(DbError::Wal(WalError::Failed(e)))
        })
    }
}
