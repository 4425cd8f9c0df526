//! The end of a group: delivering its completions or failing its appends (one call per
//! producer either way), and releasing its ring space to the producers waiting for it.
//! Called in group order by the pipeline's drain (see `pipeline.rs`).

use crate::error::WalError;
use crate::format::Kind;
use crate::shared::{GroupInfo, Shared};
use crate::sync::Ordering;

use super::frame::GroupFrame;

pub(super) fn fail_group(s: &Shared, frames: &[GroupFrame], e: &WalError) {
    let mut counts: Vec<(u64, usize)> = Vec::new();
    for f in frames {
        if f.kind == Kind::Pad {
            continue;
        }
        let pid = f.pid;
        match counts.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, n)) => *n += 1,
            None => counts.push((pid, 1)),
        }
    }
    let producers = s.producers.lock().unwrap_or_else(|e| e.into_inner());
    for (pid, n) in counts {
        if let Some(Some(sink)) = producers.get(pid as usize) {
            sink.failed(n, e);
        }
    }
}

/// Delivers the group's completions: one call per producer per group, its outcomes in ring
/// order, with the durable `watermark` as the outcome of each sync marker.
pub(super) fn deliver(
    s: &Shared,
    outcomes: &mut [(u64, Vec<u64>)],
    watermark: u64,
    info: &GroupInfo,
) {
    let producers = s.producers.lock().unwrap_or_else(|e| e.into_inner());
    for (pid, v) in outcomes.iter_mut() {
        if v.is_empty() {
            continue;
        }
        for o in v.iter_mut() {
            if *o == u64::MAX {
                *o = watermark;
            }
        }
        if let Some(Some(sink)) = producers.get(*pid as usize) {
            sink.completed(v, info);
        }
    }
}

/// Releases the ring space up to `end` (a group's end) and wakes producers waiting for it.
pub(super) fn finish(s: &Shared, end: u64) {
    s.ring.release(s.ring.released(), end);
    if s.space_waiters.load(Ordering::SeqCst) > 0 {
        let _g = s.space_lock.lock().unwrap_or_else(|e| e.into_inner());
        s.space_cv.notify_all();
    }
    // Producers that parked a write instead of blocking: one call each, per group at most.
    s.notify_space_wanted();
}
