//! Background work: flushing immutable memtables to level-0 tables, and leveled
//! compaction. Both write tables through the rate limiter, record the result with one
//! manifest edit, and only then publish a new version; inputs are deleted when the last
//! reader holding them lets go.
//!
//! This file picks and runs compactions; flushing is in `flush`, writing the output tables
//! (and deciding which versions to drop) in `outputs`, and recording the result in the
//! manifest and publishing it in `install`.

use std::cmp::Ordering as CmpOrdering;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::outputs::{Dropper, Outputs};
use super::state::{Inner, Sched};
use super::stats::{add, CompactionEvent, CompactionReason, DbEvent};
use super::version::{TableHandle, TreeId, Version};
use super::{Db, DbError};
use crate::failpoint::failpoint;
use crate::internal_key;
use crate::manifest::{VersionEdit, NUM_LEVELS};
use crate::table::TableIter;
use uringdb_wal::WalError;

/// Pause after a failed background job before it is retried (e.g. after ENOSPC, once
/// space may have been freed).
pub(super) const RETRY_AFTER: Duration = Duration::from_millis(500);

pub(super) fn wait_bg(inner: &Inner, timeout: Duration) {
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
        s.l0_compacting[job.tree as usize] = false;
    }
    s.epoch += 1;
    inner.done_cv.notify_all();
    inner.bg_cv.notify_all();
}

/// A compaction: `inputs` (level-0 newest first, then by level) into `output_level`.
struct Job {
    /// The tree whose tables these are.
    tree: TreeId,
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

/// Picks the most urgent automatic compaction and marks its inputs (sched lock held): the
/// key-value tree's first, then the stream tree's (each tree is compacted on its own, with
/// its own level-0 trigger, level scores and compaction pointers).
fn pick(inner: &Inner) -> Option<Job> {
    let mut s = inner.sched.lock().unwrap_or_else(|e| e.into_inner());
    if s.manual {
        return None;
    }
    let sv = inner.super_version();
    let job = TreeId::ALL
        .into_iter()
        .find_map(|tree| pick_in(inner, &s, &sv.version, tree))?;
    for t in &job.inputs {
        t.compacting.store(true, Ordering::Release);
    }
    s.compactions_running += 1;
    if job.level == 0 {
        s.l0_compacting[job.tree as usize] = true;
    }
    Some(job)
}

/// The most urgent compaction of `tree`, if one is due and its inputs are free.
fn pick_in(inner: &Inner, s: &Sched, v: &Arc<Version>, tree: TreeId) -> Option<Job> {
    let busy = |ts: &[Arc<TableHandle>]| ts.iter().any(|t| t.compacting.load(Ordering::Acquire));
    let levels = v.tree(tree);
    if !s.l0_compacting[tree as usize] && levels[0].len() >= inner.opts.l0_compaction_trigger {
        let l0 = levels[0].clone();
        let (lo, hi) = range_of(&l0);
        let l1 = v.overlapping(tree, 1, Some(&lo), Some(&hi));
        if !busy(&l0) && !busy(&l1) {
            let mut input_levels = vec![0; l0.len()];
            input_levels.extend(std::iter::repeat_n(1, l1.len()));
            let mut inputs = l0;
            inputs.extend(l1);
            return Some(Job {
                tree,
                level: 0,
                output_level: 1,
                inputs,
                input_levels,
                version: v.clone(),
                manual: false,
            });
        }
    }
    // The level furthest over its target.
    let mut best: Option<(f64, usize)> = None;
    for level in 1..NUM_LEVELS - 1 {
        let score = v.level_bytes(tree, level) as f64 / inner.opts.level_target_bytes(level) as f64;
        if score >= 1.0 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, level));
        }
    }
    let (_, level) = best?;
    let pointer = {
        let m = inner.manifest.lock().unwrap_or_else(|e| e.into_inner());
        let pointers = match tree {
            TreeId::State => &m.state.compact_pointers,
            TreeId::Streams => &m.state.streams.compact_pointers,
        };
        pointers.get(level).cloned().unwrap_or_default()
    };
    let files = &levels[level];
    let start = if pointer.is_empty() {
        0
    } else {
        files
            .iter()
            .position(|t| internal_key::compare(&t.meta.largest, &pointer) == CmpOrdering::Greater)
            .unwrap_or(0)
    };
    for i in (start..files.len()).chain(0..start) {
        let t = &files[i];
        if t.compacting.load(Ordering::Acquire) {
            continue;
        }
        let next = v.overlapping(
            tree,
            level + 1,
            Some(t.smallest_user_key()),
            Some(t.largest_user_key()),
        );
        if busy(&next) {
            continue;
        }
        let mut inputs = vec![t.clone()];
        let mut input_levels = vec![level];
        input_levels.extend(std::iter::repeat_n(level + 1, next.len()));
        inputs.extend(next);
        return Some(Job {
            tree,
            level,
            output_level: level + 1,
            inputs,
            input_levels,
            version: v.clone(),
            manual: false,
        });
    }
    None
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
        tree: TreeId::State,
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
    let deeper: Vec<&Vec<Arc<TableHandle>>> = job.version.tree(job.tree)[job.output_level + 1..]
        .iter()
        .collect();
    let base = |uk: &[u8]| {
        !deeper.iter().any(|l| {
            l.iter()
                .any(|t| t.smallest_user_key() <= uk && uk <= t.largest_user_key())
        })
    };
    let mut dropper = Dropper::new(inner.smallest_snapshot());
    let mut out = Outputs::new(
        inner,
        job.tree,
        job.output_level,
        inner.opts.target_file_bytes,
    );
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
    let deleted = job
        .inputs
        .iter()
        .zip(&job.input_levels)
        .map(|(t, &l)| (l as u32, t.meta.number))
        .collect();
    let pointers = match job.inputs.first() {
        Some(t) if job.level >= 1 && !job.manual => {
            vec![(job.level as u32, t.meta.largest.clone())]
        }
        _ => Vec::new(),
    };
    let mut edit = VersionEdit::default();
    match job.tree {
        TreeId::State => {
            edit.deleted = deleted;
            edit.compact_pointers = pointers;
        }
        TreeId::Streams => {
            edit.streams.deleted = deleted;
            edit.streams.compact_pointers = pointers;
        }
    }
    out.install("compaction.outputs_written", edit, None)?;
    failpoint("compaction.installed");
    let read: u64 = job.inputs.iter().map(|t| t.meta.file_bytes).sum();
    add(&inner.counters.compactions, 1);
    add(&inner.counters.compaction_read, read);
    add(&inner.counters.compaction_written, out.bytes);
    inner.emit(DbEvent::Compaction(CompactionEvent {
        level: job.level,
        output_level: job.output_level,
        inputs: job.inputs.len(),
        outputs: out.done.len(),
        bytes_read: read,
        bytes_written: out.bytes,
        entries_dropped: dropped,
        reason: if job.manual {
            CompactionReason::Manual
        } else if job.level == 0 {
            CompactionReason::L0Files
        } else {
            CompactionReason::LevelSize
        },
        duration: started.elapsed(),
    }));
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
