//! The apply hook and the applier thread: how a committed group reaches the memtable and
//! becomes visible.
//!
//! # Who may run ahead
//! The log writes a group and, once an fdatasync covers it (for `sync` writes), calls the
//! apply hook ([`Hook`]) on the thread that completes the group, in group order. The hook
//! copies the group's payloads into one [`ApplyMsg::Records`] on a bounded channel
//! ([`ApplyQueue`]) and returns; the log goes on while the applier thread inserts this
//! group into the memtable: the log may run ahead of the memtable by at most
//! [`APPLY_QUEUE_GROUPS`](crate::limits::APPLY_QUEUE_GROUPS) groups, after which the send
//! blocks the log's completing thread and the backlog backs up into the log's ring (and
//! from there to the writers). Nothing runs ahead of the log: the memtable only ever gets
//! records the log has written. Readers never run ahead of the memtable: they read at the
//! visible sequence number, which only the thread applying a group (and replay at open,
//! before any thread starts) advances.
//!
//! # Small groups are applied inline
//! When the applier thread has nothing queued (every message sent so far is handled) and
//! the group has at most
//! [`INLINE_APPLY_RECORDS_MAX`](crate::limits::INLINE_APPLY_RECORDS_MAX) records, the
//! hook applies the group itself, on the completing thread, under the same apply lock. A
//! quiet database (one writer awaiting each write) then skips a thread wake-up per commit,
//! tens of microseconds on a VM; large groups still go to the applier thread, so that the
//! log's thread is not held by memtable inserts. The order is kept: nothing is queued
//! before the group, and the completing thread is the only one that applies or sends
//! records (groups complete one at a time, in order).
//!
//! # Why completions travel behind records
//! The committer reports a group's outcome to each writer's sink right after the hook
//! returns, which may be before the applier thread has inserted the group. Every writer's
//! sink is therefore wrapped in an [`OrderedSink`]: when the applier thread still has
//! messages queued, it does not call the sink but queues an [`ApplyMsg::Done`] on the
//! same channel, behind the group's records; the applier handles the channel in order, so
//! the completion is delivered only after its records and everything logged before them
//! are in the memtable and visible. When nothing is queued (the count is decremented with
//! `Release` after a message's work, loaded with `Acquire`), every record sent before is
//! already applied and visible, and so is this group's if it was applied inline: the sink
//! is called at once. Either way a caller whose write resolved sees it in every later
//! read. Failures always travel the channel (they also come from the stall thread), so
//! that one writer's outcomes stay in order. Only `space_available` bypasses the channel:
//! it carries no outcome, just "retry".
//!
//! # The order of visibility
//! For each group the applying thread, under the apply lock: inserts every record into the active
//! memtable at its sequence number (rotating to a fresh memtable first when a record might
//! not fit, so that no record spans two memtables); stores the memtable's `last_seq`; then
//! publishes the group's last sequence number as the visible sequence number (`Release`).
//! Only after that does it deliver the group's completions. A reader loads the visible
//! sequence number (`Acquire`) and then pins the current super version; every record at or
//! below that number is in what it pinned, and records above it are skipped. After a panic
//! on the applier, the memtable may lack records the log holds, so every later completion
//! is delivered as a failure (the log is failed too, so no new group is written).

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, OnceLock, Weak};

use super::apply_queue::{ApplyMsg, ApplyQueue};
use super::batch;
use super::occ::Decision;
use super::state::Inner;
use super::stats::add;
use super::version::{Mem, SuperVersion, TreeId};
use crate::failpoint::failpoint;
use crate::limits::INLINE_APPLY_RECORDS_MAX;
use crate::memtable::WriteError;
use uringdb_wal::{ApplyHook, CompletionSink, WalError};

/// Counters of one group, added once.
#[derive(Default)]
struct Tally {
    user_bytes: u64,
    puts: u64,
    deletes: u64,
}

/// The log's apply hook: applies a small group itself when the applier thread has nothing
/// queued, and hands every other group to the applier thread (see the module docs).
pub(super) struct Hook {
    pub(super) inner: OnceLock<Weak<Inner>>,
    pub(super) queue: Arc<ApplyQueue>,
}

impl ApplyHook for Hook {
    fn apply(&self, records: &mut dyn Iterator<Item = (u64, &[u8])>) {
        // The upper bound counts the group's frames, records or not.
        let small = records
            .size_hint()
            .1
            .is_some_and(|n| n <= INLINE_APPLY_RECORDS_MAX);
        if small && self.queue.drained() {
            if self.queue.failed().is_some() {
                return;
            }
            let Some(inner) = self.inner.get().and_then(Weak::upgrade) else {
                return;
            };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                failpoint("apply.group");
                inner.apply_records(records, 0);
            }));
            if let Err(p) = r {
                let e = inner.fail_after_panic("applying a commit group", &*p);
                self.queue.set_failed(e);
            }
            return;
        }
        let mut data = Vec::new();
        let mut recs = Vec::new();
        for (seq, payload) in records {
            recs.push((seq, data.len(), payload.len()));
            data.extend_from_slice(payload);
        }
        self.queue.send(ApplyMsg::Records { data, recs });
    }
}

/// Wraps a writer's sink so that its completions come after the records they cover are
/// applied: delivered at once when the applier thread has nothing queued, queued behind the
/// records otherwise.
pub(super) struct OrderedSink {
    pub(super) inner: Arc<dyn CompletionSink>,
    pub(super) queue: Arc<ApplyQueue>,
}

impl CompletionSink for OrderedSink {
    fn completed(&self, seqs: &[u64], group: &uringdb_wal::GroupInfo) {
        if self.queue.drained() {
            // Every record sent before is applied, and this group's were applied inline if
            // they were not sent; nothing queued could come before this outcome.
            deliver_done(&self.queue, &*self.inner, seqs, group);
            return;
        }
        self.queue.send(ApplyMsg::Done {
            sink: self.inner.clone(),
            seqs: seqs.to_vec(),
            group: *group,
        });
    }
    fn failed(&self, count: usize, error: &WalError) {
        // Always through the queue: failures also come from the stall thread, and one
        // writer's outcomes stay in the order they were queued.
        self.queue.send(ApplyMsg::Failed {
            sink: self.inner.clone(),
            count,
            error: error.clone(),
        });
    }
    fn space_available(&self) {
        // Not ordered with completions: it only says "retry", and carries no outcome.
        self.inner.space_available();
    }
}

/// Delivers a group's completions to `sink` once its records are applied: as a success, or,
/// after a panic while applying, as a failure (the memtable may lack records the log holds).
fn deliver_done(
    queue: &ApplyQueue,
    sink: &dyn CompletionSink,
    seqs: &[u64],
    group: &uringdb_wal::GroupInfo,
) {
    match queue.failed() {
        None => sink.completed(seqs, group),
        Some(e) => sink.failed(seqs.len(), &WalError::Failed(e.clone())),
    }
}

/// The applier thread's loop: takes [`ApplyMsg`]s in channel order (see the module docs).
pub(super) fn applier_thread(weak: Weak<Inner>, queue: Arc<ApplyQueue>, rx: Receiver<ApplyMsg>) {
    for msg in rx {
        if let ApplyMsg::Stop = msg {
            queue.handled();
            return;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match msg {
            ApplyMsg::Records { data, recs } => {
                if queue.failed().is_some() {
                    return;
                }
                if let Some(inner) = weak.upgrade() {
                    failpoint("apply.group");
                    let mut it = recs
                        .iter()
                        .map(|&(seq, start, len)| (seq, &data[start..start + len]));
                    inner.apply_records(&mut it, 0);
                }
            }
            ApplyMsg::Done { sink, seqs, group } => deliver_done(&queue, &*sink, &seqs, &group),
            ApplyMsg::Failed { sink, count, error } => sink.failed(count, &error),
            ApplyMsg::Stop => {}
        }));
        if let Err(p) = r {
            let e = match weak.upgrade() {
                Some(inner) => inner.fail_after_panic("the applier thread", &*p),
                None => Arc::new(WalError::Closed),
            };
            queue.set_failed(e);
        }
        queue.handled();
    }
}

impl Inner {
    /// The apply hook's body (also used by replay at open, with `txn_only_upto`: records at
    /// or below it only rebuild the prepared-transaction table, see `txn`).
    pub(super) fn apply_records(
        &self,
        records: &mut dyn Iterator<Item = (u64, &[u8])>,
        txn_only_upto: u64,
    ) {
        let _g = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut mem = self.super_version().mem.clone();
        let mut last = 0;
        // Buffers reused across the group's records; counters added once per group.
        let mut ops: Vec<batch::Op<'_>> = Vec::new();
        let mut shadowed: Vec<bool> = Vec::new();
        let mut n = Tally::default();
        // Written keys are tracked only while an optimistic transaction is in flight (or
        // during replay); see `occ`.
        let track = self.occ_tracking();
        for (seq, payload) in records {
            let rec = batch::record(payload).unwrap_or(batch::Record::Batch);
            if seq <= txn_only_upto {
                match rec {
                    batch::Record::Prepare { .. } => self.applied_prepare(seq, payload),
                    batch::Record::Rollback(t) => {
                        self.applied_finish(t);
                    }
                    batch::Record::Commit(t) => {
                        if let Some(p) = self.applied_finish(t) {
                            if let Ok(batch::Record::Prepare { ops: raw, .. }) = batch::record(&p) {
                                self.occ_wrote(track, seq, batch::raw_ops(raw));
                            }
                        }
                    }
                    batch::Record::Batch => self.occ_wrote(track, seq, batch::ops(payload)),
                    batch::Record::Optimistic { .. } => {
                        self.occ_apply(track, seq, &rec);
                    }
                }
                continue;
            }
            match rec {
                batch::Record::Batch => {
                    ops.clear();
                    ops.extend(batch::ops(payload));
                    self.insert_ops(&mut mem, seq, payload.len(), &ops, &mut shadowed, &mut n);
                    self.occ_wrote(track, seq, ops.iter().copied());
                }
                batch::Record::Optimistic { ops: raw, .. } => {
                    if let Decision::Apply = self.occ_apply(track, seq, &rec) {
                        ops.clear();
                        ops.extend(batch::raw_ops(raw));
                        self.insert_ops(&mut mem, seq, payload.len(), &ops, &mut shadowed, &mut n);
                    }
                }
                batch::Record::Prepare { .. } => self.applied_prepare(seq, payload),
                batch::Record::Rollback(t) => {
                    self.applied_finish(t);
                }
                batch::Record::Commit(t) => {
                    // The prepared operations become visible at the commit's sequence number.
                    if let Some(prepared) = self.applied_finish(t) {
                        if let Ok(batch::Record::Prepare { ops: raw, .. }) =
                            batch::record(&prepared)
                        {
                            let committed: Vec<batch::Op<'_>> = batch::raw_ops(raw).collect();
                            self.insert_ops(
                                &mut mem,
                                seq,
                                prepared.len(),
                                &committed,
                                &mut shadowed,
                                &mut n,
                            );
                            self.occ_wrote(track, seq, committed.iter().copied());
                        }
                    }
                }
            }
            mem.last_seq.store(seq, Ordering::Release);
            last = seq;
        }
        add(&self.counters.puts, n.puts);
        add(&self.counters.deletes, n.deletes);
        add(&self.counters.user_bytes, n.user_bytes);
        if last > 0 {
            self.visible_seq.store(last, Ordering::Release);
        }
        // After V: a stream's published `lastSeq` never runs ahead of what a read sees;
        // then the tails of the streams that grew wake up.
        self.streams.publish();
        self.notify_stream_waiters();
        if mem.is_full(self.opts.memtable_bytes) {
            self.rotate_locked();
        }
    }

    /// Inserts one record's operations at `seq` (apply lock held).
    fn insert_ops(
        &self,
        mem: &mut Arc<Mem>,
        seq: u64,
        payload_len: usize,
        ops: &[batch::Op<'_>],
        shadowed: &mut Vec<bool>,
        t: &mut Tally,
    ) {
        // Rotate first if the record might not fit, so a record never spans two
        // memtables (the flushed sequence number must cover whole records).
        let estimate = payload_len + ops.len() * 128;
        if mem.reserved_bytes() + estimate + (1 << 20) > self.memtable_capacity && !mem.is_empty() {
            self.rotate_locked();
            *mem = self.super_version().mem.clone();
        }
        let n = ops.len();
        // A later operation on the same key in this batch wins (all share `seq`).
        shadowed.clear();
        if n <= 16 {
            shadowed.extend((0..n).map(|i| {
                let k = ops[i].state_key();
                k.is_some() && ops[i + 1..].iter().any(|o| o.state_key() == k)
            }));
        } else {
            let mut seen = std::collections::HashSet::with_capacity(n);
            shadowed.extend(
                ops.iter()
                    .rev()
                    .map(|o| o.state_key().is_some_and(|k| !seen.insert(k))),
            );
            shadowed.reverse();
        }
        for (i, op) in ops.iter().enumerate() {
            if shadowed[i] {
                continue;
            }
            match op {
                batch::Op::Put(k, v) => {
                    t.user_bytes += (k.len() + v.len()) as u64;
                    t.puts += 1;
                }
                batch::Op::Delete(k) => {
                    t.user_bytes += k.len() as u64;
                    t.deletes += 1;
                }
                // Appends are inserted below, after the record's state operations;
                // `validate` refuses cursors and truncations (later steps of issue 11), so
                // none reaches a log.
                batch::Op::Append { .. }
                | batch::Op::Cursor { .. }
                | batch::Op::Truncate { .. } => continue,
            }
            let (k, v) = match *op {
                batch::Op::Put(k, v) => (k, Some(v)),
                batch::Op::Delete(k) => (k, None),
                _ => continue,
            };
            self.insert_retry(mem, TreeId::State, k, seq, v);
        }
        // Stream appends get their stream seqs now, in log order (see `stream_state`).
        if ops.iter().any(|o| matches!(o, batch::Op::Append { .. })) {
            t.user_bytes += self.insert_appends(mem, seq, ops);
        }
    }

    /// Inserts `key` (a put of `value`, or a deletion when `None`) into `tree` of the active
    /// memtable at `seq`, rotating once if the memtable is full (apply lock held).
    pub(super) fn insert_retry(
        &self,
        mem: &mut Arc<Mem>,
        tree: TreeId,
        key: &[u8],
        seq: u64,
        value: Option<&[u8]>,
    ) {
        let mut attempts = 0;
        loop {
            let table = mem.tree(tree);
            let r = match value {
                Some(v) => table.put(key, seq, v),
                None => table.delete(key, seq),
            };
            match r {
                Ok(()) => break,
                Err(WriteError::Full(_)) if attempts == 0 => {
                    attempts += 1;
                    self.rotate_locked();
                    *mem = self.super_version().mem.clone();
                }
                // Validated sizes make this unreachable; never lose silently.
                Err(e) => panic!("memtable refused a validated write: {e}"),
            }
        }
    }

    /// Makes the active memtable immutable and starts a fresh one (apply lock held).
    pub(super) fn rotate_locked(&self) {
        {
            let mut sv = self.sv.write().unwrap_or_else(|e| e.into_inner());
            if sv.mem.is_empty() {
                return;
            }
            let mut imm = Vec::with_capacity(sv.imm.len() + 1);
            imm.push(sv.mem.clone());
            imm.extend(sv.imm.iter().cloned());
            *sv = Arc::new(SuperVersion {
                mem: Arc::new(Mem::new(self.memtable_capacity)),
                imm,
                version: sv.version.clone(),
            });
        }
        self.update_stall();
        let _s = self.sched.lock().unwrap_or_else(|e| e.into_inner());
        self.bg_cv.notify_all();
    }
}
