//! The write-batch format: the payload of one write-ahead-log record. A put, a delete or a
//! batch of them is one record, so it is atomic (one sequence number, all or nothing across
//! a crash) and every operation in it shares the record's sequence number.
//!
//! ```text
//! record payload:
//! +------+------------------------------------------------------------+
//! | 0xB1 | op op op ...                                               |
//! +------+------------------------------------------------------------+
//! ```
//!
//! The operations (put, delete, and the stream operations append, cursor, truncate) and
//! their encoding are in the `op` module, re-exported here. This module and `op` are the
//! format's one definition, and [`validate`] checks every byte of a record before it is
//! logged, so a malformed batch is rejected at the API and never reaches the log.
//! Within one batch a later operation on the same key wins.
//!
//! # Two-phase commit records (tags 0xB2, 0xB3, 0xB4)
//! ```text
//! prepare:  | 0xB2 | prepared_at u64 LE (ms since the epoch) | tlen u16 LE | txid (tlen) | op op ... |
//! commit:   | 0xB3 | tlen u16 LE | txid (tlen) |
//! rollback: | 0xB4 | tlen u16 LE | txid (tlen) |
//! ```
//! The txid is 1..=[`TXID_BYTES_MAX`] bytes of UTF-8; a prepare holds at least one
//! operation, encoded as in a batch. A prepare is logged once; its commit record carries
//! only the txid, and at apply makes the prepared operations visible at the commit record's
//! sequence number (see `txn`). A version-1 log (0xB1 records only) reads unchanged.
//!
//! # Optimistic transaction records (tag 0xB5)
//! ```text
//! optimistic: | 0xB5 | snapshot u64 LE | rlen u32 LE | read set (rlen bytes) | op op ... |
//! read set:   item item ...
//! item (key):   | 0 | klen u32 LE | key |
//! item (range): | 1 | flags u8 | lolen u32 LE | lo | hilen u32 LE | hi |
//!               flags: 1 = lo bounded, 2 = lo inclusive, 4 = hi bounded, 8 = hi inclusive
//!               (an unbounded side has length 0)
//! ```
//! The transaction read at sequence number `snapshot`; the read set names the keys it read
//! and the ranges it iterated. At apply (and, identically, at replay) the operations are
//! applied only if no record between `snapshot` and this one wrote a key of the read set
//! (see `occ`); otherwise the record is applied as nothing. At least one operation.

use super::error::DbError;
pub use super::op::{
    check_name, ops, raw_ops, Op, Ops, WriteBatch, BATCH_TAG, KEY_BYTES_MAX, OP_APPEND, OP_CURSOR,
    OP_DELETE, OP_PUT, OP_TRUNCATE,
};
use super::op::{check_ops, u32_at};

/// First byte of a prepare record.
pub const PREPARE_TAG: u8 = 0xB2;
/// First byte of a commit-prepared record.
pub const COMMIT_TAG: u8 = 0xB3;
/// First byte of a rollback-prepared record.
pub const ROLLBACK_TAG: u8 = 0xB4;
/// First byte of an optimistic-transaction record.
pub const OPTIMISTIC_TAG: u8 = 0xB5;
/// Read-set item kind of a key.
pub const READ_KEY: u8 = 0;
/// Read-set item kind of a range.
pub const READ_RANGE: u8 = 1;
/// Largest txid, in bytes of UTF-8.
pub const TXID_BYTES_MAX: usize = 256;
/// One log record, decoded (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A batch; `ops(payload)` iterates its operations.
    Batch,
    /// A prepare: its txid, time, and the operations (`ops` in batch encoding, without the
    /// batch tag).
    Prepare {
        /// The transaction's id.
        txid: &'a str,
        /// Milliseconds since the epoch at prepare.
        prepared_at: u64,
        /// The operations, encoded as in a batch, without the tag.
        ops: &'a [u8],
    },
    /// Commit the prepared transaction `txid`.
    Commit(&'a str),
    /// Roll back the prepared transaction `txid`.
    Rollback(&'a str),
    /// An optimistic transaction (see `occ`).
    Optimistic {
        /// The sequence number its reads saw.
        snapshot: u64,
        /// The read set, encoded (iterate it with [`read_set`]).
        reads: &'a [u8],
        /// The operations, encoded as in a batch, without the tag.
        ops: &'a [u8],
    },
}

/// One item of an optimistic transaction's read set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadItem<'a> {
    /// A key read with `get`.
    Key(&'a [u8]),
    /// A range iterated (absent keys in it count: a key inserted there is a conflict).
    Range {
        /// The lower bound.
        lo: std::ops::Bound<&'a [u8]>,
        /// The upper bound.
        hi: std::ops::Bound<&'a [u8]>,
    },
}

/// Encodes an optimistic-transaction record.
pub fn encode_optimistic(snapshot: u64, reads: &[ReadItem<'_>], batch: &WriteBatch) -> Vec<u8> {
    use std::ops::Bound;
    let mut r = Vec::new();
    let side = |r: &mut Vec<u8>, b: Bound<&[u8]>| {
        let k: &[u8] = match b {
            Bound::Included(k) | Bound::Excluded(k) => k,
            Bound::Unbounded => &[],
        };
        r.extend_from_slice(&(k.len() as u32).to_le_bytes());
        r.extend_from_slice(k);
    };
    for item in reads {
        match *item {
            ReadItem::Key(k) => {
                r.push(READ_KEY);
                r.extend_from_slice(&(k.len() as u32).to_le_bytes());
                r.extend_from_slice(k);
            }
            ReadItem::Range { lo, hi } => {
                let flags = match lo {
                    Bound::Included(_) => 3,
                    Bound::Excluded(_) => 1,
                    Bound::Unbounded => 0,
                } | match hi {
                    Bound::Included(_) => 12,
                    Bound::Excluded(_) => 4,
                    Bound::Unbounded => 0,
                };
                r.push(READ_RANGE);
                r.push(flags);
                side(&mut r, lo);
                side(&mut r, hi);
            }
        }
    }
    let mut v = Vec::with_capacity(13 + r.len() + batch.buf.len());
    v.push(OPTIMISTIC_TAG);
    v.extend_from_slice(&snapshot.to_le_bytes());
    v.extend_from_slice(&(r.len() as u32).to_le_bytes());
    v.extend_from_slice(&r);
    v.extend_from_slice(&batch.buf[1..]);
    v
}

/// Iterates over a read set that [`validate`] accepted (a malformed tail ends it).
pub fn read_set(reads: &[u8]) -> ReadSet<'_> {
    ReadSet { rest: reads }
}

/// See [`read_set`].
pub struct ReadSet<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ReadSet<'a> {
    type Item = ReadItem<'a>;
    fn next(&mut self) -> Option<ReadItem<'a>> {
        let (item, used) = decode_read(self.rest).ok()??;
        self.rest = &self.rest[used..];
        Some(item)
    }
}

/// Decodes the read-set item at the start of `b`: `Ok(None)` at the end.
fn decode_read(b: &[u8]) -> Result<Option<(ReadItem<'_>, usize)>, &'static str> {
    use std::ops::Bound;
    let Some(&kind) = b.first() else {
        return Ok(None);
    };
    let sized = |at: usize| -> Result<(&[u8], usize), &'static str> {
        let n = u32_at(b, at).ok_or("truncated length")?;
        if n > KEY_BYTES_MAX {
            return Err("key larger than the key limit");
        }
        let end = at + 4 + n;
        let k = b.get(at + 4..end).ok_or("read set runs past its end")?;
        Ok((k, end))
    };
    match kind {
        READ_KEY => {
            let (k, end) = sized(1)?;
            Ok(Some((ReadItem::Key(k), end)))
        }
        READ_RANGE => {
            let flags = *b.get(1).ok_or("truncated range flags")?;
            if flags & !15 != 0
                || (flags & 1 == 0 && flags & 2 != 0)
                || (flags & 4 == 0 && flags & 8 != 0)
            {
                return Err("bad range flags");
            }
            let (lo, at) = sized(2)?;
            let (hi, end) = sized(at)?;
            let bound = |k, bounded, inclusive| match (bounded, inclusive) {
                (false, _) => Bound::Unbounded,
                (true, true) => Bound::Included(k),
                (true, false) => Bound::Excluded(k),
            };
            if (flags & 1 == 0 && !lo.is_empty()) || (flags & 4 == 0 && !hi.is_empty()) {
                return Err("a key on an unbounded side");
            }
            Ok(Some((
                ReadItem::Range {
                    lo: bound(lo, flags & 1 != 0, flags & 2 != 0),
                    hi: bound(hi, flags & 4 != 0, flags & 8 != 0),
                },
                end,
            )))
        }
        _ => Err("unknown read-set item kind"),
    }
}

/// Encodes a prepare record.
pub fn encode_prepare(txid: &str, prepared_at: u64, batch: &WriteBatch) -> Vec<u8> {
    let mut v = Vec::with_capacity(11 + txid.len() + batch.buf.len());
    v.push(PREPARE_TAG);
    v.extend_from_slice(&prepared_at.to_le_bytes());
    v.extend_from_slice(&(txid.len() as u16).to_le_bytes());
    v.extend_from_slice(txid.as_bytes());
    v.extend_from_slice(&batch.buf[1..]);
    v
}

/// Encodes a commit (`commit`) or rollback record.
pub fn encode_finish(txid: &str, commit: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(3 + txid.len());
    v.push(if commit { COMMIT_TAG } else { ROLLBACK_TAG });
    v.extend_from_slice(&(txid.len() as u16).to_le_bytes());
    v.extend_from_slice(txid.as_bytes());
    v
}

fn txid_at(b: &[u8], at: usize) -> Result<(&str, usize), String> {
    let tlen = b
        .get(at..at + 2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]) as usize)
        .ok_or("truncated txid length")?;
    let raw = b
        .get(at + 2..at + 2 + tlen)
        .ok_or("txid runs past the end of the record")?;
    let txid = std::str::from_utf8(raw).map_err(|_| "txid is not valid UTF-8")?;
    if txid.is_empty() || txid.len() > TXID_BYTES_MAX {
        return Err(format!(
            "txid must be 1..={TXID_BYTES_MAX} bytes of UTF-8, got {}",
            txid.len()
        ));
    }
    Ok((txid, at + 2 + tlen))
}

/// Decodes a record's header (its operations are checked by [`validate`]).
pub fn record(payload: &[u8]) -> Result<Record<'_>, DbError> {
    let bad = |m: String| Err(DbError::InvalidArgument(m));
    match payload.first() {
        Some(&BATCH_TAG) => Ok(Record::Batch),
        Some(&PREPARE_TAG) => {
            let Some(t) = payload.get(1..9) else {
                return bad("malformed prepare record: truncated time".into());
            };
            let prepared_at = u64::from_le_bytes(t.try_into().unwrap_or([0; 8]));
            let (txid, end) = txid_at(payload, 9)
                .map_err(|m| DbError::InvalidArgument(format!("malformed prepare record: {m}")))?;
            Ok(Record::Prepare {
                txid,
                prepared_at,
                ops: &payload[end..],
            })
        }
        Some(&tag @ (COMMIT_TAG | ROLLBACK_TAG)) => {
            let (txid, end) = txid_at(payload, 1)
                .map_err(|m| DbError::InvalidArgument(format!("malformed finish record: {m}")))?;
            if end != payload.len() {
                return bad("malformed finish record: bytes after the txid".into());
            }
            Ok(if tag == COMMIT_TAG {
                Record::Commit(txid)
            } else {
                Record::Rollback(txid)
            })
        }
        Some(&OPTIMISTIC_TAG) => {
            let (Some(t), Some(rlen)) = (payload.get(1..9), u32_at(payload, 9)) else {
                return bad("malformed optimistic record: truncated header".into());
            };
            let snapshot = u64::from_le_bytes(t.try_into().unwrap_or([0; 8]));
            let Some(reads) = payload.get(13..13 + rlen) else {
                return bad("malformed optimistic record: read set runs past the end".into());
            };
            Ok(Record::Optimistic {
                snapshot,
                reads,
                ops: &payload[13 + rlen..],
            })
        }
        _ => bad("malformed batch: missing or unknown tag".into()),
    }
}

/// Checks a payload before it is logged: the tag, the txid of a two-phase-commit record,
/// every operation's framing, key sizes. Returns the number of operations.
pub fn validate(payload: &[u8]) -> Result<usize, DbError> {
    let bad = |m: String| Err(DbError::InvalidArgument(m));
    let rest = match record(payload)? {
        Record::Batch => &payload[1..],
        Record::Prepare { ops, .. } => {
            if ops.is_empty() {
                return bad("prepare: ops must hold at least one operation".into());
            }
            // Appends in a prepare get their stream seqs when the commit is applied.
            ops
        }
        Record::Commit(_) | Record::Rollback(_) => return Ok(0),
        Record::Optimistic { reads, ops, .. } => {
            let mut rest = reads;
            let mut i = 0;
            loop {
                match decode_read(rest) {
                    Ok(None) => break,
                    Ok(Some((_, used))) => rest = &rest[used..],
                    Err(reason) => {
                        return bad(format!("malformed read set at item {i}: {reason}"));
                    }
                }
                i += 1;
            }
            if ops.is_empty() {
                return bad("transaction: ops must hold at least one operation".into());
            }
            // Appends get their stream seqs if the applier commits the transaction; an
            // aborted attempt uses none.
            ops
        }
    };
    check_ops(rest).map_err(DbError::InvalidArgument)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1").delete(b"b").put(b"", b"");
        assert_eq!(validate(b.as_bytes()).unwrap(), 3);
        let v: Vec<Op<'_>> = ops(b.as_bytes()).collect();
        assert_eq!(
            v,
            vec![Op::Put(b"a", b"1"), Op::Delete(b"b"), Op::Put(b"", b"")]
        );
        // Every truncation of the payload (but the empty batch boundary) is rejected.
        let bytes = b.as_bytes();
        for cut in 1..bytes.len() {
            let t = &bytes[..cut];
            let ends_on_op = [1usize, 12, 18].contains(&cut);
            assert_eq!(validate(t).is_ok(), ends_on_op, "cut at {cut}");
        }
        assert!(validate(&[]).is_err());
        assert!(validate(&[0xB2]).is_err());
        assert!(validate(&[0xB5]).is_err());
        assert!(validate(&[0xB6]).is_err());
        assert!(validate(&[BATCH_TAG, 7, 0, 0, 0, 0]).is_err());
        let big = vec![0u8; KEY_BYTES_MAX + 1];
        let mut b = WriteBatch::new();
        b.put(&big, b"");
        assert!(
            matches!(validate(b.as_bytes()), Err(DbError::InvalidArgument(m)) if m.contains("65537"))
        );
    }

    #[test]
    fn two_phase_records_round_trip_and_validation() {
        let mut b = WriteBatch::new();
        b.put(b"k", b"v").delete(b"d");
        let p = encode_prepare("tx-1", 42, &b);
        assert_eq!(validate(&p).unwrap(), 2);
        match record(&p).unwrap() {
            Record::Prepare {
                txid,
                prepared_at,
                ops,
            } => {
                assert_eq!((txid, prepared_at), ("tx-1", 42));
                let v: Vec<Op<'_>> = raw_ops(ops).collect();
                assert_eq!(v, vec![Op::Put(b"k", b"v"), Op::Delete(b"d")]);
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(
            record(&encode_finish("tx-1", true)).unwrap(),
            Record::Commit("tx-1")
        );
        assert_eq!(
            record(&encode_finish("tx-1", false)).unwrap(),
            Record::Rollback("tx-1")
        );
        // Every truncation of a prepare is rejected (the empty op list included) but the
        // one that ends on the first operation's end (15 bytes of header, 11 of operation).
        for cut in 0..p.len() {
            assert_eq!(validate(&p[..cut]).is_ok(), cut == 26, "cut at {cut}");
        }
        let empty = encode_prepare("t", 1, &WriteBatch::new());
        assert!(matches!(validate(&empty), Err(DbError::InvalidArgument(m)) if m.contains("ops")));
        let long = "x".repeat(TXID_BYTES_MAX + 1);
        assert!(
            matches!(validate(&encode_finish(&long, true)), Err(DbError::InvalidArgument(m)) if m.contains("txid"))
        );
        assert!(validate(&encode_finish("", true)).is_err());
        let mut f = encode_finish("t", true);
        f.push(0);
        assert!(validate(&f).is_err());
    }

    #[test]
    fn optimistic_records_round_trip_and_validation() {
        use std::ops::Bound;
        let mut b = WriteBatch::new();
        b.put(b"k", b"v");
        let reads = [
            ReadItem::Key(b"a"),
            ReadItem::Range {
                lo: Bound::Included(b"b"),
                hi: Bound::Excluded(b"c"),
            },
            ReadItem::Range {
                lo: Bound::Unbounded,
                hi: Bound::Included(b"z"),
            },
        ];
        let p = encode_optimistic(7, &reads, &b);
        assert_eq!(validate(&p).unwrap(), 1);
        match record(&p).unwrap() {
            Record::Optimistic {
                snapshot,
                reads: r,
                ops,
            } => {
                assert_eq!(snapshot, 7);
                assert_eq!(read_set(r).collect::<Vec<_>>(), reads.to_vec());
                assert_eq!(raw_ops(ops).collect::<Vec<_>>(), vec![Op::Put(b"k", b"v")]);
            }
            r => panic!("{r:?}"),
        }
        // Every truncation is rejected but the whole record.
        for cut in 0..p.len() {
            assert!(validate(&p[..cut]).is_err(), "cut at {cut}");
        }
        let none = encode_optimistic(1, &reads, &WriteBatch::new());
        assert!(matches!(validate(&none), Err(DbError::InvalidArgument(m)) if m.contains("ops")));
        // A bad item kind and bad flags are named.
        let mut bad = encode_optimistic(1, &[ReadItem::Key(b"a")], &b);
        bad[13] = 9;
        assert!(
            matches!(validate(&bad), Err(DbError::InvalidArgument(m)) if m.contains("read set"))
        );
        let mut bad = encode_optimistic(1, &reads[1..2], &b);
        bad[14] = 2;
        assert!(validate(&bad).is_err());
    }
}
