//! The commit pipeline: groups that are written but not yet acknowledged, and the sync
//! threads that make them durable while the committer writes the next ones.
//!
//! # Why
//! A group's fdatasync takes far longer than its write (milliseconds against tens of
//! microseconds on this project's machines). With one group at a time the device idles
//! while the committer delivers completions, forms the next group and writes it. Here the
//! committer writes group N+1 while the fdatasync that covers group N runs, and up to
//! `depth` fdatasyncs run at once, each on its own sync thread.
//!
//! # The rules
//! - **Coverage.** An fdatasync covers every byte written to the file before it was
//!   issued. The committer records, after each write that must be durable, the last
//!   sequence number written (`want`); a sync thread issues its fdatasync only after taking
//!   that number, so every group at or below it was written before the fdatasync began. A
//!   group is acknowledged only once a completed fdatasync covered it: the durable watermark
//!   is the largest number covered by a completed fdatasync.
//! - **Order.** Groups are completed strictly in the order they were written ([`drain`]):
//!   acknowledgements (and the apply hook, and so visibility) never run ahead of an earlier
//!   group. A group that needs no fdatasync (only `sync: false` appends) still waits for the
//!   groups before it.
//! - **Failure.** fdatasync results are retired in the order the fdatasyncs were issued,
//!   and the first failure ends all publication: a later fdatasync that succeeds is not
//!   believed (after a failed writeback the kernel may have dropped the dirty pages, and a
//!   later fdatasync can report success for data that is gone). Each sync thread syncs
//!   through its own open file description, so that a writeback error is reported to every
//!   fdatasync that could have covered the lost pages, not consumed by one of them.
//! - **Segments.** Every fdatasync in flight is on the active segment: before a roll the
//!   committer waits for the pipeline to empty ([`Pipeline::wait_idle`]).
//! - **Not inline.** The committer never runs an fdatasync itself, even on a quiet log
//!   where nothing could overlap with it. Tried (the committer synced a group with nothing
//!   behind it and nothing in flight, saving the sync thread's wake-up): on this project's
//!   VM one awaited writer got slower, not faster, together with the memtable's inline
//!   apply (median of 6 interleaved runs of 1000 awaited puts: 803/s against 1,464/s,
//!   fdatasync p50 283 µs against 172 µs: back-to-back fdatasyncs on the device cost more
//!   than the wake-up saved, which is about 10 µs here: the same runs on tmpfs differ by
//!   noise only).
//! - **Back-pressure.** The committer writes the next group only while fewer than `depth`
//!   fdatasyncs are in flight or none is waiting for a thread, so groups stay as large as
//!   the arrivals during one fdatasync, and at most [`GROUPS_IN_FLIGHT_MAX`] groups wait.
//!   Their ring space is released only when they complete, which bounds them too.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use uringdb_uring::File;

use crate::error::WalError;
use crate::format;
use crate::segment::Segment;
use crate::shared::{GroupInfo, Shared};
use crate::sync::Ordering;

use super::complete::{deliver, fail_group, finish};
use super::frame::GroupFrame;

/// Most groups written and waiting for their fdatasync or for an earlier group.
pub(crate) const GROUPS_IN_FLIGHT_MAX: usize = 64;

/// A group the committer has written (or failed), waiting to be completed in order.
pub(super) struct InFlight {
    pub(super) frames: Vec<GroupFrame>,
    /// Per producer: (pid, outcomes in order); sync markers hold `u64::MAX` until delivery.
    pub(super) outcomes: Vec<(u64, Vec<u64>)>,
    /// Ring position just past the group.
    pub(super) end: u64,
    /// The last sequence number that must be durable before the group is acknowledged.
    pub(super) last_seq: u64,
    /// Whether the group waits for an fdatasync (a `sync` record or a sync marker).
    pub(super) needs_sync: bool,
    /// Set when the group failed before or during its write: it fails, in order.
    pub(super) error: Option<WalError>,
    /// The group's description; `fsync_us` and `synced` are filled in at completion.
    pub(super) info: GroupInfo,
    /// Arrival of the group's oldest record (for the total latency).
    pub(super) arrival_ns: u64,
}

impl InFlight {
    /// A group that failed before its write: it fails with `error`, after the groups before it.
    pub(super) fn failed(frames: Vec<GroupFrame>, end: u64, error: WalError) -> InFlight {
        InFlight {
            frames,
            outcomes: Vec::new(),
            end,
            last_seq: 0,
            needs_sync: false,
            error: Some(error),
            info: GroupInfo::default(),
            arrival_ns: 0,
        }
    }
}

struct State {
    queue: VecDeque<InFlight>,
    /// The latest request: sync this segment to cover sequence numbers up to `want_seq`.
    want_segment: Option<Arc<Segment>>,
    want_seq: u64,
    /// The largest `want_seq` an fdatasync was issued for.
    issued_seq: u64,
    /// fdatasyncs in flight, and threads spawned (at most `depth`).
    syncing: usize,
    threads: usize,
    /// Tickets in issue order; results are retired in that order.
    next_ticket: u64,
    retire_ticket: u64,
    /// Completed fdatasyncs not retired yet: (ticket, covered seq, duration or error).
    finished: Vec<(u64, u64, Result<u64, WalError>)>,
    /// The first fdatasync failure: nothing is published after it.
    sync_failed: Option<Arc<WalError>>,
    /// That failure's own error and the last sequence number it was to cover: the groups
    /// it covered get the original error (EIO, ...), later ones `Failed` wrapping it.
    sync_error: Option<(WalError, u64)>,
    /// Duration of the last retired fdatasync, reported with the groups it covered.
    last_sync_ns: u64,
    stop: bool,
}

impl State {
    /// Whether an fdatasync was asked for and not issued yet (none is, after a failure).
    fn sync_wanted(&self) -> bool {
        self.want_seq > self.issued_seq && self.sync_failed.is_none()
    }
}

/// The pipeline of a log (see the module docs).
pub(crate) struct Pipeline {
    state: Mutex<State>,
    /// Sync threads wait here for requests; the committer waits here for room or for the
    /// pipeline to empty.
    cv: Condvar,
    /// Held while completing groups, so that two threads never complete out of order.
    drain: Mutex<()>,
    depth: usize,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pipeline {
    /// A pipeline with up to `depth` fdatasyncs in flight (at least 1).
    pub(crate) fn new(depth: usize) -> Pipeline {
        Pipeline {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                want_segment: None,
                want_seq: 0,
                issued_seq: 0,
                syncing: 0,
                threads: 0,
                next_ticket: 0,
                retire_ticket: 0,
                finished: Vec::new(),
                sync_failed: None,
                sync_error: None,
                last_sync_ns: 0,
                stop: false,
            }),
            cv: Condvar::new(),
            drain: Mutex::new(()),
            depth: depth.max(1),
            handles: Mutex::new(Vec::new()),
        }
    }

    /// Queues a written (or failed) group; if `sync` is given, asks for an fdatasync of
    /// that segment covering sequence numbers up to `sync.1`. Then completes whatever is
    /// ready.
    pub(super) fn push(
        s: &Arc<Shared>,
        p: &Arc<Pipeline>,
        group: InFlight,
        sync: Option<(&Arc<Segment>, u64)>,
    ) {
        {
            let mut st = locked(&p.state);
            st.queue.push_back(group);
            if let Some((segment, seq)) = sync {
                want(s, p, &mut st, segment, seq);
            }
        }
        p.cv.notify_all();
        drain(s, p);
    }

    /// Asks for an fdatasync covering everything written up to `seq` without queuing a
    /// group (idle syncs of `sync: false` records).
    pub(super) fn request_sync(
        s: &Arc<Shared>,
        p: &Arc<Pipeline>,
        segment: &Arc<Segment>,
        seq: u64,
    ) {
        want(s, p, &mut locked(&p.state), segment, seq);
        p.cv.notify_all();
    }

    /// The committer, before forming the next group: waits while every sync thread is busy
    /// and an fdatasync is already waiting for one (what arrives meanwhile joins the next
    /// group instead of making a group of its own), or while the queue is full.
    pub(super) fn wait_for_room(&self) {
        let mut st = locked(&self.state);
        while (st.syncing >= self.depth && st.sync_wanted()
            || st.queue.len() >= GROUPS_IN_FLIGHT_MAX && st.sync_failed.is_none())
            && st.threads > 0
        {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until every queued group is completed and every requested fdatasync has
    /// finished (before a roll, and at close). If no sync thread could be started, runs
    /// the requested fdatasync on the calling thread.
    pub(super) fn wait_idle(s: &Arc<Shared>, p: &Arc<Pipeline>) {
        let mut st = locked(&p.state);
        loop {
            let syncs_pending = st.sync_wanted();
            if st.threads == 0 && syncs_pending {
                drop(st);
                sync_once(s, p, None);
                drain(s, p);
                st = locked(&p.state);
                continue;
            }
            if st.queue.is_empty() && st.syncing == 0 && !syncs_pending {
                return;
            }
            st = p.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Stops the sync threads (after [`Pipeline::wait_idle`]) and joins them.
    pub(super) fn stop(&self) {
        locked(&self.state).stop = true;
        self.cv.notify_all();
        let handles = std::mem::take(&mut *locked(&self.handles));
        for h in handles {
            let _ = h.join();
        }
    }
}

/// Records a request for an fdatasync of `segment` covering sequence numbers up to `seq`
/// (requests coalesce: the latest covers the earlier ones), and starts a sync thread if
/// none is free.
fn want(s: &Arc<Shared>, p: &Arc<Pipeline>, st: &mut State, segment: &Arc<Segment>, seq: u64) {
    st.want_seq = st.want_seq.max(seq);
    st.want_segment = Some(segment.clone());
    spawn_if_busy(s, p, st);
}

/// Starts one more sync thread if every one is busy and fewer than `depth` run.
fn spawn_if_busy(s: &Arc<Shared>, p: &Arc<Pipeline>, st: &mut State) {
    if st.syncing < st.threads || st.threads >= p.depth {
        return;
    }
    st.threads += 1;
    let (shared, pipeline) = (s.clone(), p.clone());
    let spawned = std::thread::Builder::new()
        .name("uringdb-wal-sync".into())
        .spawn(move || sync_thread(shared, pipeline));
    match spawned {
        Ok(h) => locked(&p.handles).push(h),
        // The threads already running serve the request; with none, the committer syncs
        // inline (see `Pipeline::wait_idle`).
        Err(_) => st.threads -= 1,
    }
}

/// A sync thread: issues an fdatasync for the latest request, retires results in issue
/// order, and completes the groups they cover.
fn sync_thread(s: Arc<Shared>, p: Arc<Pipeline>) {
    // This thread's own open file description of the segment it syncs (see the module
    // docs), reopened when the active segment changes.
    let mut own: Option<(u64, Arc<dyn File>)> = None;
    loop {
        {
            let mut st = locked(&p.state);
            while !st.sync_wanted() && !st.stop {
                st = p.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if !st.sync_wanted() {
                return;
            }
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sync_once(&s, &p, Some(&mut own));
            drain(&s, &p);
        }));
        if r.is_err() {
            // A bug (a completion sink that panicked, say): fail everything not yet
            // acknowledged rather than leave callers waiting; this thread goes on failing
            // groups until close.
            let e = s.latch_failure(&WalError::io(
                "commit pipeline",
                std::io::Error::other("internal error: a sync thread panicked"),
            ));
            locked(&p.state).sync_failed.get_or_insert(e);
            p.cv.notify_all();
        }
    }
}

/// Takes the latest request, runs its fdatasync, and retires finished fdatasyncs in issue
/// order (publishing the durable watermark, or latching the first failure).
fn sync_once(s: &Shared, p: &Pipeline, own: Option<&mut Option<(u64, Arc<dyn File>)>>) {
    let (segment, seq, ticket) = {
        let mut st = locked(&p.state);
        if !st.sync_wanted() {
            return;
        }
        let Some(segment) = st.want_segment.clone() else {
            return;
        };
        st.issued_seq = st.want_seq;
        st.syncing += 1;
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        (segment, st.want_seq, ticket)
    };
    p.cv.notify_all();
    let file: Arc<dyn File> = match own {
        Some(own) => match own {
            Some((n, f)) if *n == segment.number => f.clone(),
            _ => match segment.file.sync_handle() {
                Ok(f) => {
                    *own = Some((segment.number, f.clone()));
                    f
                }
                // Out of descriptors, or no such handle on this platform: the committer's
                // handle syncs the file.
                Err(_) => segment.file.clone(),
            },
        },
        None => segment.file.clone(),
    };
    let t0 = s.now_ns();
    let result = file
        .sync_data()
        .map(|()| s.now_ns().saturating_sub(t0))
        .map_err(|e| WalError::io(format!("fdatasync of {}", segment.path.display()), e));
    let mut durable = None;
    {
        let mut st = locked(&p.state);
        st.syncing -= 1;
        st.finished.push((ticket, seq, result));
        loop {
            let next = st.retire_ticket;
            let Some(i) = st.finished.iter().position(|f| f.0 == next) else {
                break;
            };
            let (_, covered, r) = st.finished.swap_remove(i);
            st.retire_ticket += 1;
            if st.sync_failed.is_some() {
                continue;
            }
            match r {
                Ok(ns) => {
                    s.counters.add(&s.counters.fsyncs, 1);
                    locked(&s.counters.latencies).fsync.record(ns);
                    st.last_sync_ns = ns;
                    durable = Some(durable.unwrap_or(0).max(covered));
                }
                Err(e) => {
                    st.sync_failed = Some(s.latch_failure(&e));
                    st.sync_error = Some((e, covered));
                }
            }
        }
    }
    if let Some(seq) = durable {
        s.publish_durable(seq);
    }
    p.cv.notify_all();
}

/// Completes queued groups from the front while they are ready: acknowledged once covered
/// by the durable watermark, failed once failed or once an fdatasync failure means no
/// fdatasync will cover them.
pub(super) fn drain(s: &Shared, p: &Pipeline) {
    let _order = locked(&p.drain);
    loop {
        let (group, verdict, sync_ns) = {
            let mut st = locked(&p.state);
            let durable = s.durable_seq.load(Ordering::Acquire);
            let Some(front) = st.queue.front() else {
                break;
            };
            // A group behind a failed fdatasync fails even if it needed none: nothing is
            // acknowledged after a failure (acknowledged sequence numbers stay gapless).
            let verdict = if let Some(e) = &front.error {
                Err(e.clone())
            } else if front.last_seq <= durable {
                Ok(front.last_seq)
            } else if let Some(e) = &st.sync_failed {
                match &st.sync_error {
                    Some((own, covered)) if front.needs_sync && front.last_seq <= *covered => {
                        Err(own.clone())
                    }
                    _ => Err(WalError::Failed(e.clone())),
                }
            } else if !front.needs_sync {
                Ok(front.last_seq)
            } else {
                break;
            };
            let group = st.queue.pop_front().expect("front exists");
            (group, verdict, st.last_sync_ns)
        };
        complete(s, group, verdict, sync_ns);
        p.cv.notify_all();
    }
}

/// Completes one group: the apply hook, the counters, and the completions; or its failure.
/// Then releases its ring space. A sync marker's outcome is the group's `last_seq` (every
/// record before it, durable and applied), not the watermark, which may already cover
/// later groups not yet applied.
fn complete(s: &Shared, mut g: InFlight, verdict: Result<u64, WalError>, sync_ns: u64) {
    match verdict {
        Ok(covered) => {
            if g.info.records > 0 {
                if let Some(hook) = &s.apply {
                    apply_group(s, &g, &**hook);
                }
            }
            g.info.synced = g.needs_sync;
            if g.needs_sync {
                g.info.fsync_us = sync_ns as f64 / 1000.0;
            }
            // Counted once per group, before the completions go out: a caller whose
            // append resolved sees it in stats().
            s.counters.add(&s.counters.appends, g.info.records);
            s.counters.add(
                &s.counters.append_bytes,
                g.frames
                    .iter()
                    .filter(|f| f.kind.is_on_disk())
                    .map(|f| f.len as u64)
                    .sum(),
            );
            s.counters.add(&s.counters.groups, 1);
            locked(&s.counters.latencies)
                .total
                .record(s.now_ns().saturating_sub(g.arrival_ns));
            deliver(s, &mut g.outcomes, covered, &g.info);
        }
        Err(e) => fail_group(s, &g.frames, &e),
    }
    finish(s, g.end);
}

/// Hands the group's records (sequence numbers assigned) to the apply hook.
fn apply_group(s: &Shared, g: &InFlight, hook: &dyn crate::shared::ApplyHook) {
    let mut seq = g.info.first_seq;
    let mut it = g.frames.iter().filter(|f| f.kind.is_on_disk()).map(|f| {
        // SAFETY: the group's frames are published and not released: the ring space of a
        // queued group is released only by `finish` after this call, by the one thread
        // holding the drain lock; a frame never wraps the ring (pads split them).
        let payload = unsafe {
            s.ring
                .slice(f.pos + format::FRAME_HEADER_BYTES as u64, f.len)
        };
        let r = (seq, payload);
        seq += 1;
        r
    });
    hook.apply(&mut it);
}
