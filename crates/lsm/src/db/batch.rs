//! The write-batch format: the payload of one write-ahead-log record. A put, a delete or a
//! batch of them is one record, so it is atomic (one sequence number, all or nothing across
//! a crash) and every operation in it shares the record's sequence number.
//!
//! ```text
//! record payload:
//! +------+------------------------------------------------------------+
//! | 0xB1 | op op op ...                                               |
//! +------+------------------------------------------------------------+
//! op (put):    | 1 | klen u32 LE | vlen u32 LE | key (klen) | value (vlen) |
//! op (delete): | 0 | klen u32 LE | key (klen)                              |
//! ```
//!
//! Fixed-width lengths (not varints) so that the JavaScript façade can stage operations
//! straight into a shared buffer with `DataView` writes; this module is the format's one
//! definition and [`validate`] checks every byte of a batch before it is logged, so a
//! malformed batch is rejected at the API and never reaches the log.
//! Within one batch a later operation on the same key wins.

use super::error::DbError;

/// First byte of a version-1 batch.
pub const BATCH_TAG: u8 = 0xB1;
/// Operation kind of a put.
pub const OP_PUT: u8 = 1;
/// Operation kind of a delete.
pub const OP_DELETE: u8 = 0;
/// Largest key, in bytes.
pub const KEY_BYTES_MAX: usize = 64 << 10;

/// One operation of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// Set `key` to `value`.
    Put(&'a [u8], &'a [u8]),
    /// Remove `key`.
    Delete(&'a [u8]),
}

impl<'a> Op<'a> {
    /// The operation's key.
    pub fn key(&self) -> &'a [u8] {
        match *self {
            Op::Put(k, _) | Op::Delete(k) => k,
        }
    }
}

/// Builds a batch payload.
#[derive(Clone, Debug)]
pub struct WriteBatch {
    buf: Vec<u8>,
    count: usize,
}

impl Default for WriteBatch {
    fn default() -> Self {
        WriteBatch::new()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch {
            buf: vec![BATCH_TAG],
            count: 0,
        }
    }

    /// Adds a put.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.buf.push(OP_PUT);
        self.buf
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        self.count += 1;
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.buf.push(OP_DELETE);
        self.buf
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
        self.count += 1;
        self
    }

    /// Operations added.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no operation was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Iterates over the operations of a payload that [`validate`] accepted.
pub struct Ops<'a> {
    rest: &'a [u8],
}

/// The operations of `payload` (which must have been validated: a malformed tail ends the
/// iteration).
pub fn ops(payload: &[u8]) -> Ops<'_> {
    Ops {
        rest: payload.get(1..).unwrap_or(&[]),
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    let w = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
}

impl<'a> Iterator for Ops<'a> {
    type Item = Op<'a>;
    fn next(&mut self) -> Option<Op<'a>> {
        let (op, used) = decode_op(self.rest).ok()??;
        self.rest = &self.rest[used..];
        Some(op)
    }
}

/// Decodes the op at the start of `b`: `Ok(None)` at the end, `Err(reason)` if malformed.
fn decode_op(b: &[u8]) -> Result<Option<(Op<'_>, usize)>, &'static str> {
    let Some(&kind) = b.first() else {
        return Ok(None);
    };
    let klen = u32_at(b, 1).ok_or("truncated key length")?;
    match kind {
        OP_PUT => {
            let vlen = u32_at(b, 5).ok_or("truncated value length")?;
            let end = 9usize
                .checked_add(klen)
                .and_then(|n| n.checked_add(vlen))
                .ok_or("length overflow")?;
            if end > b.len() {
                return Err("operation runs past the end of the batch");
            }
            Ok(Some((Op::Put(&b[9..9 + klen], &b[9 + klen..end]), end)))
        }
        OP_DELETE => {
            let end = 5usize.checked_add(klen).ok_or("length overflow")?;
            if end > b.len() {
                return Err("operation runs past the end of the batch");
            }
            Ok(Some((Op::Delete(&b[5..end]), end)))
        }
        _ => Err("unknown operation kind"),
    }
}

/// Checks a payload before it is logged: the tag, every operation's framing, key sizes.
/// Returns the number of operations.
pub fn validate(payload: &[u8]) -> Result<usize, DbError> {
    let bad = |m: String| Err(DbError::InvalidArgument(m));
    match payload.first() {
        Some(&BATCH_TAG) => {}
        _ => return bad("malformed batch: missing or unknown tag".into()),
    }
    let mut rest = &payload[1..];
    let mut n = 0;
    loop {
        match decode_op(rest) {
            Ok(None) => break,
            Ok(Some((op, used))) => {
                if op.key().len() > KEY_BYTES_MAX {
                    return bad(format!(
                        "key of {} bytes is larger than the limit of {KEY_BYTES_MAX} bytes (operation {n})",
                        op.key().len()
                    ));
                }
                rest = &rest[used..];
                n += 1;
            }
            Err(reason) => return bad(format!("malformed batch at operation {n}: {reason}")),
        }
    }
    Ok(n)
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
        assert!(validate(&[BATCH_TAG, 7, 0, 0, 0, 0]).is_err());
        let big = vec![0u8; KEY_BYTES_MAX + 1];
        let mut b = WriteBatch::new();
        b.put(&big, b"");
        assert!(
            matches!(validate(b.as_bytes()), Err(DbError::InvalidArgument(m)) if m.contains("65537"))
        );
    }
}
