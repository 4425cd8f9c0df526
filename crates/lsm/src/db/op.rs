//! The operations of a record (the op list of a batch, a prepare and an optimistic
//! transaction; see `batch` for the records around them): their encoding, the stream and
//! consumer name rules, and [`WriteBatch`], which builds an op list.
//!
//! ```text
//! op (delete):   | 0 | klen u32 LE | key (klen)                                          |
//! op (put):      | 1 | klen u32 LE | vlen u32 LE | key (klen) | value (vlen)              |
//! op (append):   | 2 | slen u32 LE | vlen u32 LE | appended_at u64 LE | stream | value   |
//! op (cursor):   | 3 | slen u32 LE | clen u32 LE | position u64 LE | stream | consumer   |
//! op (truncate): | 4 | slen u32 LE | before u64 LE | stream (slen)                      |
//! ```
//! Fixed-width lengths (not varints) so that the JavaScript façade can stage operations
//! straight into a shared buffer with `DataView` writes. Kinds 2–4 (issue 11) write to the
//! stream tree: `appended_at` is the writer's clock in milliseconds since the epoch, stamped
//! at accept so that age retention is a function of the log alone. A build older than these
//! kinds refuses them as "unknown operation kind" (never misreads them).
//!
//! Stream and consumer names are 1..=[`STREAM_NAME_BYTES_MAX`] bytes of ASCII
//! `[A-Za-z0-9._:/-]` whose first byte is alphanumeric: so 0x00 (the stream-tree key
//! delimiter, see `stream_keys`) never occurs, and names starting with `$` stay free for
//! internal streams.

use super::limits::STREAM_NAME_BYTES_MAX;

/// First byte of a version-1 batch (the record tag whose payload is an op list; the other
/// records are in `batch`).
pub const BATCH_TAG: u8 = 0xB1;
/// Operation kind of a delete.
pub const OP_DELETE: u8 = 0;
/// Operation kind of a put.
pub const OP_PUT: u8 = 1;
/// Operation kind of a stream append.
pub const OP_APPEND: u8 = 2;
/// Operation kind of a stream consumer's cursor commit.
pub const OP_CURSOR: u8 = 3;
/// Operation kind of a stream truncation.
pub const OP_TRUNCATE: u8 = 4;
/// Largest key, in bytes.
pub const KEY_BYTES_MAX: usize = 64 << 10;

/// One operation of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// Set `key` to `value`.
    Put(&'a [u8], &'a [u8]),
    /// Remove `key`.
    Delete(&'a [u8]),
    /// Append `data` to `stream` (its stream seq is assigned at apply).
    Append {
        /// The stream's name (checked by [`check_name`]).
        stream: &'a [u8],
        /// The writer's clock at accept, in milliseconds since the epoch.
        appended_at_ms: u64,
        /// The entry.
        data: &'a [u8],
    },
    /// Set the position of `consumer` on `stream`.
    Cursor {
        /// The stream's name.
        stream: &'a [u8],
        /// The consumer's name (the same rules as a stream's).
        consumer: &'a [u8],
        /// The last stream seq the consumer has processed.
        position: u64,
    },
    /// Drop the entries of `stream` below `before`.
    Truncate {
        /// The stream's name.
        stream: &'a [u8],
        /// The first stream seq kept.
        before: u64,
    },
}

impl<'a> Op<'a> {
    /// The key-value key the operation writes, if it writes one (stream operations write
    /// none: they lock nothing and conflict with nothing, the log orders them).
    pub fn state_key(&self) -> Option<&'a [u8]> {
        match *self {
            Op::Put(k, _) | Op::Delete(k) => Some(k),
            Op::Append { .. } | Op::Cursor { .. } | Op::Truncate { .. } => None,
        }
    }
}

/// Checks a stream or consumer name against the rules in the module docs; `field` names it
/// in the error (`stream`, `consumer`).
pub fn check_name(field: &str, name: &[u8]) -> Result<(), String> {
    let ok_byte = |b: &u8| b.is_ascii_alphanumeric() || b"._:/-".contains(b);
    if name.is_empty() || name.len() > STREAM_NAME_BYTES_MAX {
        return Err(format!(
            "{field} must be 1..={STREAM_NAME_BYTES_MAX} bytes, got {}",
            name.len()
        ));
    }
    if !name[0].is_ascii_alphanumeric() || !name.iter().all(ok_byte) {
        return Err(format!(
            "{field} must be ASCII letters, digits and . _ : / - starting with a letter or digit, got {:?}",
            String::from_utf8_lossy(name)
        ));
    }
    Ok(())
}

/// Builds a batch payload.
#[derive(Clone, Debug)]
pub struct WriteBatch {
    pub(super) buf: Vec<u8>,
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

    fn head(&mut self, kind: u8, a: usize, b: Option<usize>) {
        self.buf.push(kind);
        self.buf.extend_from_slice(&(a as u32).to_le_bytes());
        if let Some(b) = b {
            self.buf.extend_from_slice(&(b as u32).to_le_bytes());
        }
        self.count += 1;
    }

    /// Adds a put.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.head(OP_PUT, key.len(), Some(value.len()));
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.head(OP_DELETE, key.len(), None);
        self.buf.extend_from_slice(key);
        self
    }

    /// Adds an append of `data` to `stream`, stamped `appended_at_ms`.
    pub fn append(&mut self, stream: &[u8], appended_at_ms: u64, data: &[u8]) -> &mut Self {
        self.head(OP_APPEND, stream.len(), Some(data.len()));
        self.buf.extend_from_slice(&appended_at_ms.to_le_bytes());
        self.buf.extend_from_slice(stream);
        self.buf.extend_from_slice(data);
        self
    }

    /// Adds a cursor commit (`consumer` on `stream` at `position`).
    pub fn cursor(&mut self, stream: &[u8], consumer: &[u8], position: u64) -> &mut Self {
        self.head(OP_CURSOR, stream.len(), Some(consumer.len()));
        self.buf.extend_from_slice(&position.to_le_bytes());
        self.buf.extend_from_slice(stream);
        self.buf.extend_from_slice(consumer);
        self
    }

    /// Adds a truncation of `stream` below `before`.
    pub fn truncate(&mut self, stream: &[u8], before: u64) -> &mut Self {
        self.head(OP_TRUNCATE, stream.len(), None);
        self.buf.extend_from_slice(&before.to_le_bytes());
        self.buf.extend_from_slice(stream);
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

/// The operations of a prepare record's `ops` (validated).
pub fn raw_ops(ops: &[u8]) -> Ops<'_> {
    Ops { rest: ops }
}

/// Iterates over the operations of a payload that `batch::validate` accepted.
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

pub(super) fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    let w = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let w = b.get(at..at + 8)?;
    Some(u64::from_le_bytes(w.try_into().ok()?))
}

impl<'a> Iterator for Ops<'a> {
    type Item = Op<'a>;
    fn next(&mut self) -> Option<Op<'a>> {
        let (op, used) = decode_op(self.rest).ok()??;
        self.rest = &self.rest[used..];
        Some(op)
    }
}

/// The end of an op whose header is `head` bytes and whose body is `a + b` bytes, if `b`
/// holds it.
fn body_end(b: &[u8], head: usize, x: usize, y: usize) -> Result<usize, &'static str> {
    let end = head
        .checked_add(x)
        .and_then(|n| n.checked_add(y))
        .ok_or("length overflow")?;
    if end > b.len() {
        return Err("operation runs past the end of the batch");
    }
    Ok(end)
}

/// Decodes the op at the start of `b`: `Ok(None)` at the end, `Err(reason)` if malformed.
/// Names are not checked here (see [`check_ops`]).
pub(super) fn decode_op(b: &[u8]) -> Result<Option<(Op<'_>, usize)>, &'static str> {
    let Some(&kind) = b.first() else {
        return Ok(None);
    };
    let alen = u32_at(b, 1).ok_or("truncated key length")?;
    match kind {
        OP_PUT => {
            let vlen = u32_at(b, 5).ok_or("truncated value length")?;
            let end = body_end(b, 9, alen, vlen)?;
            Ok(Some((Op::Put(&b[9..9 + alen], &b[9 + alen..end]), end)))
        }
        OP_DELETE => {
            let end = body_end(b, 5, alen, 0)?;
            Ok(Some((Op::Delete(&b[5..end]), end)))
        }
        OP_APPEND | OP_CURSOR => {
            let blen = u32_at(b, 5).ok_or("truncated value length")?;
            let n = u64_at(b, 9).ok_or("truncated header")?;
            let end = body_end(b, 17, alen, blen)?;
            let (stream, other) = (&b[17..17 + alen], &b[17 + alen..end]);
            let op = if kind == OP_APPEND {
                Op::Append {
                    stream,
                    appended_at_ms: n,
                    data: other,
                }
            } else {
                Op::Cursor {
                    stream,
                    consumer: other,
                    position: n,
                }
            };
            Ok(Some((op, end)))
        }
        OP_TRUNCATE => {
            let before = u64_at(b, 5).ok_or("truncated header")?;
            let end = body_end(b, 13, alen, 0)?;
            Ok(Some((
                Op::Truncate {
                    stream: &b[13..end],
                    before,
                },
                end,
            )))
        }
        _ => Err("unknown operation kind"),
    }
}

/// Checks every operation of an op list (framing, key sizes, names); returns how many.
/// Operations that the engine does not apply yet are refused with "not supported yet", so
/// that they never reach a log: cursors and truncations. (Appends are accepted in every op
/// list: a batch, a prepare and an optimistic transaction.)
pub(super) fn check_ops(mut rest: &[u8]) -> Result<usize, String> {
    let mut n = 0;
    loop {
        match decode_op(rest) {
            Ok(None) => return Ok(n),
            Ok(Some((op, used))) => {
                check_op(&op).map_err(|m| format!("{m} (operation {n})"))?;
                rest = &rest[used..];
                n += 1;
            }
            Err(reason) => return Err(format!("malformed batch at operation {n}: {reason}")),
        }
    }
}

fn check_op(op: &Op<'_>) -> Result<(), String> {
    match *op {
        Op::Put(k, _) | Op::Delete(k) => {
            if k.len() > KEY_BYTES_MAX {
                return Err(format!(
                    "key of {} bytes is larger than the limit of {KEY_BYTES_MAX} bytes",
                    k.len()
                ));
            }
            Ok(())
        }
        Op::Append { stream, .. } => check_name("stream", stream),
        Op::Cursor {
            stream, consumer, ..
        } => {
            check_name("stream", stream)?;
            check_name("consumer", consumer)?;
            Err("cursor: stream cursors are not supported yet".into())
        }
        Op::Truncate { stream, .. } => {
            check_name("stream", stream)?;
            Err("truncate: stream truncation is not supported yet".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> WriteBatch {
        let mut b = WriteBatch::new();
        b.put(b"k", b"v")
            .append(b"out.box", 7, b"hello")
            .cursor(b"out.box", b"relay-1", 3)
            .truncate(b"out.box", 2)
            .delete(b"d");
        b
    }

    #[test]
    fn stream_ops_round_trip() {
        let b = all_kinds();
        let v: Vec<Op<'_>> = ops(b.as_bytes()).collect();
        assert_eq!(
            v,
            vec![
                Op::Put(b"k", b"v"),
                Op::Append {
                    stream: b"out.box",
                    appended_at_ms: 7,
                    data: b"hello"
                },
                Op::Cursor {
                    stream: b"out.box",
                    consumer: b"relay-1",
                    position: 3
                },
                Op::Truncate {
                    stream: b"out.box",
                    before: 2
                },
                Op::Delete(b"d"),
            ]
        );
        assert_eq!(v[0].state_key(), Some(&b"k"[..]));
        assert!(v[1..4].iter().all(|o| o.state_key().is_none()));
        // Every truncation inside an op is malformed: only op boundaries decode whole.
        let bytes = b.as_bytes();
        let ends = [1usize, 12, 41, 72, 92, 98];
        for cut in 1..=bytes.len() {
            let whole = decode_all(&bytes[1..cut]);
            assert_eq!(whole, ends.contains(&cut), "cut at {cut}");
        }
    }

    fn decode_all(mut b: &[u8]) -> bool {
        loop {
            match decode_op(b) {
                Ok(None) => return true,
                Ok(Some((_, used))) => b = &b[used..],
                Err(_) => return false,
            }
        }
    }

    #[test]
    fn names_are_checked_with_the_field_named() {
        assert!(check_name("stream", b"a").is_ok());
        assert!(check_name("stream", b"Orders-1/eu:west.v2_x").is_ok());
        let max = vec![b'a'; STREAM_NAME_BYTES_MAX];
        assert!(check_name("stream", &max).is_ok());
        let over = vec![b'a'; STREAM_NAME_BYTES_MAX + 1];
        let e = check_name("stream", &over).unwrap_err();
        assert!(
            e.starts_with("stream must be 1..=128 bytes") && e.contains("129"),
            "{e}"
        );
        assert!(check_name("consumer", b"")
            .unwrap_err()
            .starts_with("consumer must be 1..=128 bytes"));
        for bad in [
            &b"$changes"[..],
            b"-a",
            b".a",
            b"a b",
            b"a\0b",
            b"caf\xc3\xa9",
            b"a*",
        ] {
            let e = check_name("stream", bad).unwrap_err();
            assert!(e.starts_with("stream must be ASCII"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn stream_ops_are_refused_until_supported_and_bad_names_first() {
        let mut b = WriteBatch::new();
        b.put(b"k", b"v").append(b"s", 1, b"x");
        assert_eq!(check_ops(&b.as_bytes()[1..]), Ok(2));
        let mut b = WriteBatch::new();
        b.append(b"bad name", 1, b"x");
        let e = check_ops(&b.as_bytes()[1..]).unwrap_err();
        assert!(e.starts_with("stream must be ASCII"), "{e}");
        let mut b = WriteBatch::new();
        b.cursor(b"s", b"$c", 1);
        let e = check_ops(&b.as_bytes()[1..]).unwrap_err();
        assert!(e.starts_with("consumer must be ASCII"), "{e}");
        let mut b = WriteBatch::new();
        b.truncate(b"", 1);
        let e = check_ops(&b.as_bytes()[1..]).unwrap_err();
        assert!(e.starts_with("stream must be 1..="), "{e}");
        let mut b = WriteBatch::new();
        b.cursor(b"s", b"c", 1).truncate(b"s", 1);
        let e = check_ops(&b.as_bytes()[1..]).unwrap_err();
        assert!(
            e.contains("cursor") && e.contains("not supported yet"),
            "{e}"
        );
        // An unknown kind (5) is malformed, as kinds 2–4 are to a build before them.
        let e = check_ops(&[5, 0, 0, 0, 0]).unwrap_err();
        assert!(e.contains("unknown operation kind"), "{e}");
    }
}
