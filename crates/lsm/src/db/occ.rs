//! Optimistic transactions: validation of a transaction's read set at apply time.
//!
//! # Where validation happens, and why there
//! A transaction reads at a snapshot (sequence number `S`), buffers its writes, and logs
//! one record ([`batch`]'s tag 0xB5) holding `S`, its read set (keys read, ranges
//! iterated) and its writes. The record goes through the same group commit as any batch.
//! It is **validated on the applier thread, at apply**: the applier applies records one at
//! a time in log order, so when it reaches the transaction's record, everything before it
//! in the log is applied and nothing after it is; the question "did a record between `S`
//! and this one write a key of the read set?" has one answer, with no window in which a
//! write accepted "in between" could slip past it. If the answer is no, the record's
//! writes are inserted at its sequence number; if yes, the record is applied as nothing
//! and its writer is told that it conflicted (the transaction retries with a fresh
//! snapshot).
//!
//! The other place — at accept, under a lock that orders writes into the log — would need
//! the newest accepted (not yet visible) sequence number of every key written by every
//! plain `put`, which the lock-free commit ring does not know at accept (sequence numbers
//! are given by the committer) and which would put a lock and a map update on the plain
//! write path. Here the plain write path is unchanged: the applier records the keys of
//! each applied record into [`Occ::recent`] only while a transaction is in flight (a flag
//! read once per group, under the apply lock the applier holds anyway).
//!
//! Cost: a conflicting attempt still costs one durable log write, and the log carries
//! aborted attempts (their read sets too), which replay reads again.
//!
//! # Replay decides the same
//! A transaction's record is durable before it is decided, so replay at open must reach
//! the decision the applier reached (a transaction that resolved must be there, one that
//! was refused must not). Replay applies records in the same order over the same state;
//! it needs to know which keys were written between `S` and the record:
//! - records above the flushed sequence number `F` are replayed in order (and records in
//!   the log at or below `F` are read too, see `txn`), so their keys go into `recent` as
//!   live; a transaction above `F` is decided again, by the same rule;
//! - a transaction record at or below `F` is not decided again (its effect, if any, is in
//!   the tables). Its keys go into [`Occ::uncertain`]; a key there counts as written
//!   after `S` only if the tables' newest version of it is newer than `S`, which is
//!   exactly "some record in `(S, F]` that was applied wrote it".
//!
//! Two guarantees make that exact: the log keeps every record above `S` of every
//! transaction that is in flight or applied but not yet flushed ([`Inner::occ_floor`],
//! with the flushed sequence number and the oldest prepare), and `S` stays a registered
//! snapshot until the record is flushed, so compaction never drops the newest version of
//! a key written after `S` (a deletion is dropped only at or below the oldest snapshot).
//!
//! # Protocol
//! [`Db::begin_optimistic`] registers the attempt and takes its snapshot. The first attempt
//! (none in flight) turns tracking on under the apply lock, with no group half applied, so
//! every record applied after its snapshot is noted; later ones only take the `occ` lock (the
//! applier takes it per record, briefly, never across a group), so a begin does not wait
//! for the applier. The writer logs the
//! record; its completion is delivered after the applier decided; then
//! [`Db::end_optimistic`] returns the decision and unregisters the attempt.

use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::batch::{self, Op, ReadItem, Record};
use super::occ_state::Occ;
use super::state::Inner;
use super::{Db, DbError, SnapshotPin};
use crate::internal_key;
use crate::manifest::NUM_LEVELS;

/// An attempt of an optimistic transaction (see [`Db::begin_optimistic`]).
#[derive(Debug)]
pub struct OptimisticAttempt {
    /// The attempt's id, for [`Db::end_optimistic`].
    pub id: u64,
    /// The snapshot its reads must use.
    pub snapshot: Arc<SnapshotPin>,
}

impl Db {
    /// Starts an attempt of an optimistic transaction: its snapshot, and from now on the
    /// applier records what is written after it (see the module docs). End every attempt
    /// with [`Db::end_optimistic`].
    pub fn begin_optimistic(&self) -> OptimisticAttempt {
        let inner = &self.inner;
        // While tracking is on (some attempt is in flight), every record applied since
        // `since` is noted, so the visible sequence number read now is a valid snapshot:
        // a record above it is noted whenever it is applied. Only turning tracking on needs
        // the apply lock (no group half applied, untracked, above the snapshot).
        {
            let mut o = inner.occ_state();
            if !o.regs.is_empty() && inner.occ_on.load(Ordering::Relaxed) {
                let snapshot = Arc::new(self.snapshot());
                return inner.occ_register(&mut o, snapshot);
            }
        }
        let _a = inner.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = inner.occ_state();
        let snapshot = Arc::new(self.snapshot());
        if o.regs.is_empty() && o.replay.is_none() {
            o.recent.clear();
            o.since = snapshot.seq();
            o.pruned_len = 0;
        }
        inner.occ_on.store(true, Ordering::Relaxed);
        inner.occ_register(&mut o, snapshot)
    }

    /// Ends the attempt `id`; `seq` is its record's sequence number if it was logged and
    /// applied. Returns the key whose write since the snapshot refused the record, if so.
    pub fn end_optimistic(&self, id: u64, seq: Option<u64>) -> Option<Vec<u8>> {
        self.inner.occ_end(id, seq)
    }
}

impl Inner {
    /// See [`Db::end_optimistic`].
    pub(super) fn occ_end(&self, id: u64, seq: Option<u64>) -> Option<Vec<u8>> {
        let mut o = self.occ_state();
        if let Some(s) = o.regs.remove(&id) {
            self.unpin_snapshot(s);
        }
        let r = seq.and_then(|s| o.aborts.remove(&s));
        if o.regs.is_empty() && o.replay.is_none() {
            o.recent.clear();
            o.aborts.clear();
            self.occ_on.store(false, Ordering::Relaxed);
        } else {
            o.prune();
        }
        r
    }
}

/// What the applier does with one record, for [`Inner::occ_apply`].
pub(super) enum Decision {
    /// Insert these operations.
    Apply,
    /// Apply nothing (a conflict).
    Skip,
}

impl Inner {
    pub(super) fn occ_state(&self) -> MutexGuard<'_, Occ> {
        self.occ.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an attempt (the `occ` lock held).
    fn occ_register(&self, o: &mut Occ, snapshot: Arc<SnapshotPin>) -> OptimisticAttempt {
        o.next_id += 1;
        let id = o.next_id;
        // Pinned by the engine too, until the end (the caller may drop its handle earlier).
        self.pin_snapshot(snapshot.seq());
        o.regs.insert(id, snapshot.seq());
        OptimisticAttempt { id, snapshot }
    }

    /// Whether the applier notes the keys of the group it starts (read under the apply
    /// lock, where tracking is turned on; see [`Db::begin_optimistic`]).
    pub(super) fn occ_tracking(&self) -> bool {
        self.occ_on.load(Ordering::Relaxed)
    }

    /// Notes that the applied record `seq` wrote `ops` (apply lock held), if tracking.
    pub(super) fn occ_wrote<'a>(&self, track: bool, seq: u64, ops: impl Iterator<Item = Op<'a>>) {
        if track {
            let mut o = self.occ_state();
            for k in ops.filter_map(|op| op.state_key()) {
                o.note(seq, k);
            }
        }
    }

    /// Decides the transaction record `seq` (apply lock held; see the module docs). At
    /// replay, records at or below the flushed sequence number only note their keys.
    pub(super) fn occ_apply(&self, track: bool, seq: u64, rec: &Record<'_>) -> Decision {
        let Record::Optimistic {
            snapshot,
            reads,
            ops,
        } = *rec
        else {
            return Decision::Skip;
        };
        if !track {
            // Nothing in flight registered this record's snapshot: it cannot be validated.
            return Decision::Skip;
        }
        let o = &mut *self.occ_state();
        if o.replay.is_some_and(|f| seq <= f) {
            for k in batch::raw_ops(ops).filter_map(|op| op.state_key()) {
                match o.uncertain.get_mut(k) {
                    Some(s) => *s = seq,
                    None => {
                        o.uncertain.insert(k.to_vec(), seq);
                    }
                }
            }
            return Decision::Skip;
        }
        let conflict = match self.occ_conflict(o, snapshot, reads) {
            Ok(c) => c,
            Err(e) => {
                o.replay_error.get_or_insert(e);
                Some(Vec::new())
            }
        };
        self.pin_snapshot(snapshot);
        o.applied.push_back((seq, snapshot));
        match conflict {
            None => {
                for k in batch::raw_ops(ops).filter_map(|op| op.state_key()) {
                    o.note(seq, k);
                }
                Decision::Apply
            }
            Some(key) => {
                if o.replay.is_none() {
                    o.aborts.insert(seq, key);
                }
                Decision::Skip
            }
        }
    }

    /// The first key of the read set written after `snapshot`, if any.
    fn occ_conflict(
        &self,
        o: &Occ,
        snapshot: u64,
        reads: &[u8],
    ) -> Result<Option<Vec<u8>>, DbError> {
        if snapshot < o.since {
            // Older than what is tracked: it cannot be shown free of conflicts.
            return Ok(Some(Vec::new()));
        }
        let after = |s: u64| s > snapshot;
        for item in batch::read_set(reads) {
            match item {
                ReadItem::Key(k) => {
                    if o.recent.get(k).is_some_and(|&s| after(s)) {
                        return Ok(Some(k.to_vec()));
                    }
                    if o.uncertain.get(k).is_some_and(|&s| after(s))
                        && self.table_written_after(o, k, snapshot)?
                    {
                        return Ok(Some(k.to_vec()));
                    }
                }
                ReadItem::Range { lo, hi } => {
                    if !range_ok(lo, hi) {
                        continue;
                    }
                    let r = (lo, hi);
                    if let Some((k, _)) = o.recent.range::<[u8], _>(r).find(|(_, &s)| after(s)) {
                        return Ok(Some(k.clone()));
                    }
                    for (k, &s) in o.uncertain.range::<[u8], _>(r) {
                        if after(s) && self.table_written_after(o, k, snapshot)? {
                            return Ok(Some(k.clone()));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// For a key of `uncertain` (replay only): whether the tables' newest version of `key`
    /// (at or below the flushed sequence number) is newer than `snapshot`, i.e. whether a
    /// record that was applied wrote it after `snapshot`.
    fn table_written_after(&self, o: &Occ, key: &[u8], snapshot: u64) -> Result<bool, DbError> {
        let flushed = o.replay.unwrap_or(internal_key::SEQ_MAX);
        Ok(self
            .table_newest_seq(key, flushed)?
            .is_some_and(|s| s > snapshot))
    }

    /// The sequence number of the newest version of `key` at or below `upto` in the
    /// tables (not the memtables), if any.
    fn table_newest_seq(&self, key: &[u8], upto: u64) -> Result<Option<u64>, DbError> {
        let mut lookup = Vec::with_capacity(key.len() + internal_key::TRAILER_BYTES);
        internal_key::encode_lookup(&mut lookup, key, upto);
        let v = self.super_version().version.clone();
        let mut tables = Vec::new();
        for t in &v.levels[0] {
            if t.smallest_user_key() <= key && key <= t.largest_user_key() {
                tables.push(t);
            }
        }
        for level in 1..NUM_LEVELS {
            let i = v.find_file(level, key);
            if let Some(t) = v.levels[level].get(i) {
                if t.smallest_user_key() <= key {
                    tables.push(t);
                }
            }
        }
        for t in tables {
            if !t.table.may_contain(&lookup) {
                continue;
            }
            let found = t.table.find_with(&lookup, |k, _| {
                let p = internal_key::decode(k).ok_or_else(|| DbError::Corruption {
                    file: t.path.clone(),
                    offset: 0,
                    reason: "malformed internal key".into(),
                })?;
                Ok::<_, DbError>((p.user_key == key).then_some(p.seq))
            })?;
            if let Some(Some(s)) = found.transpose()? {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// Registers one more hold on the snapshot at `seq` (compaction keeps what it sees).
    fn pin_snapshot(&self, seq: u64) {
        let mut s = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        *s.entry(seq).or_insert(0) += 1;
    }

    /// Drops a hold taken by [`Inner::pin_snapshot`].
    fn unpin_snapshot(&self, seq: u64) {
        let mut s = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = s.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                s.remove(&seq);
            }
        }
    }

    /// Replay at open: `Some(flushed)` before it, with `from` the first record the log
    /// holds; `None` after it (returns a table read error replay met, see the module docs).
    pub(super) fn occ_replay(&self, flushed: Option<u64>, from: u64) -> Result<(), DbError> {
        let _a = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = self.occ_state();
        o.replay = flushed;
        o.recent.clear();
        o.uncertain.clear();
        o.since = from.saturating_sub(1);
        self.occ_on.store(flushed.is_some(), Ordering::Relaxed);
        match o.replay_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The log must be kept from here on for optimistic transactions (or `u64::MAX`):
    /// called by flush with the new flushed sequence number, it also lets go of the
    /// transaction records the flush covered (and their snapshots).
    pub(super) fn occ_floor(&self, flushed: u64) -> u64 {
        let mut o = self.occ_state();
        while let Some(&(seq, snap)) = o.applied.front() {
            if seq > flushed {
                break;
            }
            o.applied.pop_front();
            self.unpin_snapshot(snap);
        }
        let applied = o.applied.iter().map(|&(_, s)| s);
        let live = o.regs.values().copied();
        applied.chain(live).min().map_or(u64::MAX, |s| s + 1)
    }
}

/// Whether `(lo, hi)` is a range `BTreeMap::range` accepts (it panics on lo > hi and on
/// an empty excluded-excluded range at one key); an empty range holds nothing to check.
fn range_ok(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a < b,
        _ => true,
    }
}
