//! The apply hook and the applier thread: how a committed group reaches the memtable and
//! becomes visible.
//!
//! # Who may run ahead
//! The log writes a group and, once an fdatasync covers it (for `sync` writes), calls the
//! apply hook ([`Hook`]) on the thread that completes the group, in group order. The hook
//! copies the group's payloads into one [`ApplyMsg::Records`] on a bounded channel and
//! returns; the log goes on while the applier thread inserts this group into the
//! memtable: the log may run ahead of the memtable by at most
//! [`APPLY_QUEUE_GROUPS`](crate::limits::APPLY_QUEUE_GROUPS) groups, after which the send
//! blocks the log's completing thread and the backlog backs up into the log's ring (and
//! from there to the
//! writers). Nothing runs ahead of the log: the applier only ever sees records the log has
//! written. Readers never run ahead of the applier: they read at the visible sequence
//! number, which only the applier (and replay at open, before any thread starts) advances.
//!
//! # Why completions travel behind records
//! The committer reports a group's outcome to each writer's sink right after the hook
//! returns, which is before the applier has inserted the group. Every writer's sink is
//! therefore wrapped in an [`OrderedSink`], which does not call it but queues an
//! [`ApplyMsg::Done`] (or [`ApplyMsg::Failed`]) on the same channel, behind the group's
//! records. The applier handles the channel in order, so a completion is delivered only
//! after its records and everything logged before them are in the memtable and visible: a
//! caller whose write resolved sees it in every later read. Failures travel the same way so
//! that one writer's outcomes stay in order. Only `space_available` bypasses the channel:
//! it carries no outcome, just "retry".
//!
//! # The order of visibility
//! For each group the applier, under the apply lock: inserts every record into the active
//! memtable at its sequence number (rotating to a fresh memtable first when a record might
//! not fit, so that no record spans two memtables); stores the memtable's `last_seq`; then
//! publishes the group's last sequence number as the visible sequence number (`Release`).
//! Only after that does it deliver the group's completions. A reader loads the visible
//! sequence number (`Acquire`) and then pins the current super version; every record at or
//! below that number is in what it pinned, and records above it are skipped. After a panic
//! on the applier, the memtable may lack records the log holds, so every later completion
//! is delivered as a failure (the log is failed too, so no new group is written).

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};

use super::batch;
use super::occ::Decision;
use super::state::{ApplyMsg, Inner};
use super::stats::add;
use super::version::{Mem, SuperVersion};
use crate::failpoint::failpoint;
use crate::memtable::WriteError;
use uringdb_wal::{ApplyHook, CompletionSink, WalError};

/// Counters of one group, added once.
#[derive(Default)]
struct Tally {
    user_bytes: u64,
    puts: u64,
    deletes: u64,
}

/// The log's apply hook: hands each group to the applier thread (see [`ApplyMsg`]).
pub(super) struct Hook {
    pub(super) inner: OnceLock<Weak<Inner>>,
    pub(super) tx: std::sync::mpsc::SyncSender<ApplyMsg>,
}

impl ApplyHook for Hook {
    fn apply(&self, records: &mut dyn Iterator<Item = (u64, &[u8])>) {
        let mut data = Vec::new();
        let mut recs = Vec::new();
        for (seq, payload) in records {
            recs.push((seq, data.len(), payload.len()));
            data.extend_from_slice(payload);
        }
        // The applier outlives every sender's use (it stops only on `Stop`, sent after the
        // log closed); if it is gone the database is gone too.
        let _ = self.tx.send(ApplyMsg::Records { data, recs });
    }
}

/// Wraps a writer's sink so that its completions travel behind the records they cover.
pub(super) struct OrderedSink {
    pub(super) inner: Arc<dyn CompletionSink>,
    pub(super) tx: std::sync::mpsc::SyncSender<ApplyMsg>,
}

impl CompletionSink for OrderedSink {
    fn completed(&self, seqs: &[u64], group: &uringdb_wal::GroupInfo) {
        let _ = self.tx.send(ApplyMsg::Done {
            sink: self.inner.clone(),
            seqs: seqs.to_vec(),
            group: *group,
        });
    }
    fn failed(&self, count: usize, error: &WalError) {
        let _ = self.tx.send(ApplyMsg::Failed {
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

/// The applier thread's loop: takes [`ApplyMsg`]s in channel order (see the module docs).
pub(super) fn applier_thread(weak: Weak<Inner>, rx: std::sync::mpsc::Receiver<ApplyMsg>) {
    // After a panic here the memtable may lack records the log holds, so nothing from then on
    // may be acknowledged; completions keep flowing, as failures, so that no caller waits
    // forever (the log is failed too, so no new group is written).
    let mut failed: Option<Arc<WalError>> = None;
    for msg in rx {
        if let ApplyMsg::Stop = msg {
            return;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match msg {
            ApplyMsg::Records { data, recs } => {
                if failed.is_some() {
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
            ApplyMsg::Done { sink, seqs, group } => match &failed {
                None => sink.completed(&seqs, &group),
                Some(e) => sink.failed(seqs.len(), &WalError::Failed(e.clone())),
            },
            ApplyMsg::Failed { sink, count, error } => sink.failed(count, &error),
            ApplyMsg::Stop => {}
        }));
        if let Err(p) = r {
            if let Some(inner) = weak.upgrade() {
                failed = Some(inner.fail_after_panic("the applier thread", &*p));
            } else {
                failed = Some(Arc::new(WalError::Closed));
            }
        }
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
        if mem.table.is_full(self.opts.memtable_bytes) {
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
        if mem.table.reserved_bytes() + estimate + (1 << 20) > self.memtable_capacity
            && !mem.table.is_empty()
        {
            self.rotate_locked();
            *mem = self.super_version().mem.clone();
        }
        let n = ops.len();
        // A later operation on the same key in this batch wins (all share `seq`).
        shadowed.clear();
        if n <= 16 {
            shadowed.extend((0..n).map(|i| ops[i + 1..].iter().any(|o| o.key() == ops[i].key())));
        } else {
            let mut seen = std::collections::HashSet::with_capacity(n);
            shadowed.extend(ops.iter().rev().map(|o| !seen.insert(o.key())));
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
            }
            let mut attempts = 0;
            loop {
                let r = match *op {
                    batch::Op::Put(k, v) => mem.table.put(k, seq, v),
                    batch::Op::Delete(k) => mem.table.delete(k, seq),
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
    }

    /// Makes the active memtable immutable and starts a fresh one (apply lock held).
    pub(super) fn rotate_locked(&self) {
        {
            let mut sv = self.sv.write().unwrap_or_else(|e| e.into_inner());
            if sv.mem.table.is_empty() {
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
