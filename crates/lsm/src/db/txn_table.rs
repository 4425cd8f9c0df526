//! The prepared-transaction table's types (see `txn` for how the database uses them): each
//! txid's state and prepare record, and the key locks. Knows nothing of `Inner`.

use std::collections::HashMap;

use super::batch::{self, Record};
use super::DbError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TxnState {
    Reserved,
    Logged,
    Prepared,
}

pub(super) struct Txn {
    pub(super) state: TxnState,
    pub(super) finishing: bool,
    pub(super) seq: u64,
    pub(super) prepared_at: u64,
    /// The prepare record's payload.
    pub(super) record: Vec<u8>,
}

/// The prepared transactions and the keys they lock.
#[derive(Default)]
pub(super) struct Txns {
    pub(super) map: HashMap<String, Txn>,
    pub(super) locks: HashMap<Vec<u8>, String>,
}

/// One operation of a prepared transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedOp {
    /// The key (empty for an append).
    pub key: Vec<u8>,
    /// The value of a put or an append; `None` for a delete.
    pub value: Option<Vec<u8>>,
    /// The stream of an append (its seq is assigned at commit); `None` otherwise.
    pub stream: Option<String>,
}

/// A prepared transaction, as listed by [`Db::prepared_transactions`](super::Db::prepared_transactions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedTxn {
    /// The txid.
    pub txid: String,
    /// Milliseconds since the epoch at prepare.
    pub prepared_at: u64,
    /// The prepare record's sequence number.
    pub seq: u64,
    /// The operations, in order.
    pub ops: Vec<PreparedOp>,
}

pub(super) fn prepare_parts(payload: &[u8]) -> Option<(&str, u64, &[u8])> {
    match batch::record(payload).ok()? {
        Record::Prepare {
            txid,
            prepared_at,
            ops,
        } => Some((txid, prepared_at, ops)),
        _ => None,
    }
}

impl Txns {
    pub(super) fn lock_keys(&mut self, txid: &str, ops: &[u8]) {
        for k in batch::raw_ops(ops).filter_map(|op| op.state_key()) {
            self.locks.insert(k.to_vec(), txid.to_string());
        }
    }

    pub(super) fn remove(&mut self, txid: &str) -> Option<Txn> {
        let t = self.map.remove(txid)?;
        if let Some((_, _, ops)) = prepare_parts(&t.record) {
            for k in batch::raw_ops(ops).filter_map(|op| op.state_key()) {
                if self.locks.get(k).is_some_and(|h| h == txid) {
                    self.locks.remove(k);
                }
            }
        }
        Some(t)
    }

    pub(super) fn conflict(&self, ops: batch::Ops<'_>, mine: Option<&str>) -> Result<(), DbError> {
        for k in ops.filter_map(|op| op.state_key()) {
            if let Some(holder) = self.locks.get(k) {
                if Some(holder.as_str()) != mine {
                    return Err(DbError::Conflict {
                        txid: holder.clone(),
                        key: k.to_vec(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
