//! Two-phase commit: the table of prepared transactions and the key locks they hold.
//!
//! # Life of a prepared transaction
//! 1. **Reserved** ([`Inner::reserve_prepare`], called synchronously by `prepare` at the
//!    API): the txid must be new and no key of its operations locked by another
//!    transaction; the txid enters the table and its keys are locked, all under one mutex.
//!    The lock is taken here, when the prepare is accepted, so a write checked after this
//!    point sees it; a write checked before it is ordered before the prepare (it may still
//!    reach the log after the prepare record; its effect is then overwritten by the commit
//!    or kept by the rollback, as if it had run first).
//! 2. **Logged**: the prepare record entered the log's queue (`admit`); a commit or
//!    rollback may only be logged after this, so that it follows the prepare in the log.
//! 3. **Prepared**: the applier saw the record (its sequence number is known; the
//!    prepare's promise resolves after this). Nothing enters the memtable: prepared writes
//!    are invisible.
//! 4. **Finishing** ([`Inner::begin_finish`]): a commit or rollback record is on its way;
//!    a second one is refused. At apply, a commit inserts the prepared operations at the
//!    commit record's sequence number (one record: atomic) and a rollback drops them; either
//!    removes the txid and releases its locks.
//!
//! A reservation whose record never reached the log (refused, cancelled) is undone with
//! [`Inner::abandon_prepare`], a finish with [`Inner::abandon_finish`].
//!
//! # Restarts
//! Replay at open reads the log from its first record (not only above the flushed
//! sequence number): records at or below the flushed sequence number only rebuild this
//! table (their data is in tables), those above are applied too. Flush never truncates the
//! log past the oldest prepared record (`truncation_floor`), so every live prepare is
//! still in the log: a prepare that is never finished pins the log from its segment on.

use std::sync::atomic::Ordering;

use super::batch::{self, Record};
use super::state::Inner;
use super::txn_table::{prepare_parts, PreparedOp, PreparedTxn, Txn, TxnState, Txns};
use super::DbError;

impl Inner {
    fn txns(&self) -> std::sync::MutexGuard<'_, Txns> {
        self.txns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_locks(&self, t: &Txns) {
        self.locked_keys.store(t.locks.len(), Ordering::Release);
        let any = u32::from(!t.locks.is_empty());
        let mut w = self.lock_watchers.lock().unwrap_or_else(|e| e.into_inner());
        w.retain(|f| match f.upgrade() {
            Some(f) => {
                f.store(any, Ordering::Release);
                true
            }
            None => false,
        });
    }

    /// Keeps `flag` at 1 while any key is locked, 0 otherwise (see `lock_watchers`).
    pub(super) fn watch_locks(&self, flag: &std::sync::Arc<std::sync::atomic::AtomicU32>) {
        let t = self.txns();
        flag.store(u32::from(!t.locks.is_empty()), Ordering::Release);
        self.lock_watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(std::sync::Arc::downgrade(flag));
    }

    /// Refuses a batch that writes a key a prepared transaction holds.
    pub(super) fn check_locks(&self, payload: &[u8]) -> Result<(), DbError> {
        if self.locked_keys.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        batch::validate(payload)?;
        match batch::record(payload)? {
            Record::Batch => self.txns().conflict(batch::ops(payload), None),
            Record::Optimistic { ops, .. } => self.txns().conflict(batch::raw_ops(ops), None),
            _ => Ok(()),
        }
    }

    /// Refuses a write of `key` if a prepared transaction holds it.
    pub(super) fn check_key(&self, key: &[u8]) -> Result<(), DbError> {
        if self.locked_keys.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        match self.txns().locks.get(key) {
            Some(holder) => Err(DbError::Conflict {
                txid: holder.clone(),
                key: key.to_vec(),
            }),
            None => Ok(()),
        }
    }

    /// Step 1 (see the module docs): checks and reserves a prepare record's txid and keys.
    pub(super) fn reserve_prepare(&self, payload: &[u8]) -> Result<(), DbError> {
        batch::validate(payload)?;
        let Some((txid, prepared_at, ops)) = prepare_parts(payload) else {
            return Err(DbError::InvalidArgument(
                "prepare: not a prepare record".into(),
            ));
        };
        let mut t = self.txns();
        if t.map.contains_key(txid) {
            return Err(DbError::TxnExists(txid.to_string()));
        }
        t.conflict(batch::raw_ops(ops), None)?;
        t.lock_keys(txid, ops);
        t.map.insert(
            txid.to_string(),
            Txn {
                state: TxnState::Reserved,
                finishing: false,
                seq: 0,
                prepared_at,
                record: payload.to_vec(),
            },
        );
        self.publish_locks(&t);
        Ok(())
    }

    /// Undoes a reservation whose record did not reach the log (a prepared one stays).
    pub(super) fn abandon_prepare(&self, txid: &str) {
        let mut t = self.txns();
        if t.map
            .get(txid)
            .is_some_and(|x| x.state != TxnState::Prepared)
        {
            t.remove(txid);
            self.publish_locks(&t);
        }
    }

    /// Step 4: marks `txid` as finishing, or refuses (unknown, not logged yet, finishing).
    pub(super) fn begin_finish(&self, txid: &str) -> Result<(), DbError> {
        let mut t = self.txns();
        match t.map.get_mut(txid) {
            Some(x) if x.state != TxnState::Reserved && !x.finishing => {
                x.finishing = true;
                Ok(())
            }
            _ => Err(DbError::TxnNotFound(txid.to_string())),
        }
    }

    /// Undoes [`Inner::begin_finish`] for a record that did not reach the log.
    pub(super) fn abandon_finish(&self, txid: &str) {
        if let Some(x) = self.txns().map.get_mut(txid) {
            x.finishing = false;
        }
    }

    /// At `admit`, before a record enters the log: a prepare must be reserved, a finish
    /// begun (they are only logged through those steps).
    pub(super) fn admit_check(&self, rec: &Record<'_>) -> Result<(), DbError> {
        let t = self.txns();
        match *rec {
            Record::Batch | Record::Optimistic { .. } => Ok(()),
            Record::Prepare { txid, .. } => match t.map.get(txid) {
                Some(x) if x.state == TxnState::Reserved => Ok(()),
                _ => Err(DbError::InvalidArgument(format!(
                    "prepare {txid:?}: the record was not reserved"
                ))),
            },
            Record::Commit(txid) | Record::Rollback(txid) => match t.map.get(txid) {
                Some(x) if x.finishing => Ok(()),
                _ => Err(DbError::TxnNotFound(txid.to_string())),
            },
        }
    }

    /// Step 2: the prepare record entered the log's queue.
    pub(super) fn logged(&self, rec: &Record<'_>) {
        if let Record::Prepare { txid, .. } = *rec {
            if let Some(x) = self.txns().map.get_mut(txid) {
                if x.state == TxnState::Reserved {
                    x.state = TxnState::Logged;
                }
            }
        }
    }

    /// At apply (and replay): a prepare record becomes prepared (replay adds it and locks
    /// its keys).
    pub(super) fn applied_prepare(&self, seq: u64, payload: &[u8]) {
        let Some((txid, prepared_at, ops)) = prepare_parts(payload) else {
            return;
        };
        let mut t = self.txns();
        if let Some(x) = t.map.get_mut(txid) {
            x.state = TxnState::Prepared;
            x.seq = seq;
            return;
        }
        t.lock_keys(txid, ops);
        t.map.insert(
            txid.to_string(),
            Txn {
                state: TxnState::Prepared,
                finishing: false,
                seq,
                prepared_at,
                record: payload.to_vec(),
            },
        );
        self.publish_locks(&t);
    }

    /// At apply: a commit or rollback removes `txid`; returns its prepare record.
    pub(super) fn applied_finish(&self, txid: &str) -> Option<Vec<u8>> {
        let mut t = self.txns();
        let r = t.remove(txid).map(|x| x.record);
        self.publish_locks(&t);
        r
    }

    /// The log must be kept from here on: the oldest prepared record (or `u64::MAX`).
    pub(super) fn oldest_prepared_seq(&self) -> u64 {
        self.txns()
            .map
            .values()
            .filter(|x| x.state == TxnState::Prepared)
            .map(|x| x.seq)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Prepared transactions: how many, and the oldest's `prepared_at`.
    pub(super) fn prepared_summary(&self) -> (u64, Option<u64>) {
        let t = self.txns();
        let p = t.map.values().filter(|x| x.state == TxnState::Prepared);
        let (mut n, mut oldest) = (0u64, None::<u64>);
        for x in p {
            n += 1;
            oldest = Some(oldest.map_or(x.prepared_at, |o| o.min(x.prepared_at)));
        }
        (n, oldest)
    }

    /// The prepared transactions, in log order.
    pub(super) fn prepared_transactions(&self) -> Vec<PreparedTxn> {
        let t = self.txns();
        let mut v: Vec<PreparedTxn> = t
            .map
            .values()
            .filter(|x| x.state == TxnState::Prepared)
            .filter_map(|x| {
                let (txid, prepared_at, ops) = prepare_parts(&x.record)?;
                Some(PreparedTxn {
                    txid: txid.to_string(),
                    prepared_at,
                    seq: x.seq,
                    ops: batch::raw_ops(ops)
                        .filter_map(|op| match op {
                            batch::Op::Put(k, v) => Some(PreparedOp {
                                key: k.to_vec(),
                                value: Some(v.to_vec()),
                                stream: None,
                            }),
                            batch::Op::Delete(k) => Some(PreparedOp {
                                key: k.to_vec(),
                                value: None,
                                stream: None,
                            }),
                            batch::Op::Append { stream, data, .. } => Some(PreparedOp {
                                key: Vec::new(),
                                value: Some(data.to_vec()),
                                // Names are ASCII (validated).
                                stream: Some(String::from_utf8_lossy(stream).into_owned()),
                            }),
                            // `validate` refuses cursors and truncations (later steps).
                            batch::Op::Cursor { .. } | batch::Op::Truncate { .. } => None,
                        })
                        .collect(),
                })
            })
            .collect();
        v.sort_by_key(|x| x.seq);
        v
    }
}
