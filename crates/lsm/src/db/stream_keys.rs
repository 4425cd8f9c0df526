//! The user keys and values of the stream tree (tree 1; see `version`). They are private to
//! the engine: no user key of the key-value API reaches this tree, so the layout only has to
//! sort well. Integers in keys are big-endian so that they sort; integers in values are
//! little-endian as everywhere else.
//!
//! ```text
//! entry:  | 0x01 | name | 0x00 | stream_seq u64 BE |  value: | appended_at u64 LE ms | data |
//! meta:   | 0x02 | name |                             value: | first u64 | last u64 | live_bytes u64 | live_count u64 |
//! cursor: | 0x03 | name | 0x00 | consumer |            value: | position u64 LE |
//! abort:  | 0x04 | log_seq u64 BE |                    value: | conflicting key (≤ 1 KiB) |
//! ```
//! Names never hold 0x00 (`op::check_name`), so `name 0x00` ends a name and all entries of
//! one stream are one contiguous range ordered by stream seq. Kinds 0x03 and 0x04 are
//! reserved for cursors and the change feed's abort markers (later steps of issue 11).

/// Kind byte of a stream entry.
pub(crate) const KIND_ENTRY: u8 = 0x01;
/// Kind byte of a stream's meta record.
pub(crate) const KIND_META: u8 = 0x02;

/// The key of entry `seq` of stream `name`.
pub(crate) fn entry_key(name: &[u8], seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 10);
    k.push(KIND_ENTRY);
    k.extend_from_slice(name);
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The stream name and seq of an entry key, if `key` is one.
pub(crate) fn decode_entry_key(key: &[u8]) -> Option<(&[u8], u64)> {
    let rest = key.strip_prefix(&[KIND_ENTRY])?;
    let (name, seq) = rest.split_at_checked(rest.len().checked_sub(9)?)?;
    let (&zero, seq) = seq.split_first()?;
    if zero != 0 || name.is_empty() || name.contains(&0) {
        return None;
    }
    Some((name, u64::from_be_bytes(seq.try_into().ok()?)))
}

/// An entry's value.
pub(crate) fn entry_value(appended_at_ms: u64, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&appended_at_ms.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// The time and data of an entry's value, if it is well formed.
pub(crate) fn decode_entry_value(value: &[u8]) -> Option<(u64, &[u8])> {
    let (at, data) = value.split_at_checked(8)?;
    Some((u64::from_le_bytes(at.try_into().ok()?), data))
}

/// The key of stream `name`'s meta record.
pub(crate) fn meta_key(name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(KIND_META);
    k.extend_from_slice(name);
    k
}

/// A stream's state as the meta record keeps it (after the record that wrote it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamMeta {
    /// The first live stream seq (1 for a stream never truncated).
    pub first: u64,
    /// The last assigned stream seq (0 for none).
    pub last: u64,
    /// Bytes of live entries' data (advisory: stats and retention's trigger only).
    pub live_bytes: u64,
    /// Live entries (advisory).
    pub live_count: u64,
}

impl StreamMeta {
    /// The state of a stream never written.
    pub(crate) const EMPTY: StreamMeta = StreamMeta {
        first: 1,
        last: 0,
        live_bytes: 0,
        live_count: 0,
    };

    /// The meta record's value.
    pub(crate) fn encode(&self) -> [u8; 32] {
        let mut v = [0u8; 32];
        for (i, n) in [self.first, self.last, self.live_bytes, self.live_count]
            .into_iter()
            .enumerate()
        {
            v[i * 8..i * 8 + 8].copy_from_slice(&n.to_le_bytes());
        }
        v
    }

    /// Decodes a meta record's value (exactly 32 bytes, `first <= last + 1`).
    pub(crate) fn decode(v: &[u8]) -> Option<StreamMeta> {
        if v.len() != 32 {
            return None;
        }
        let n = |i: usize| u64::from_le_bytes(v[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let m = StreamMeta {
            first: n(0),
            last: n(1),
            live_bytes: n(2),
            live_count: n(3),
        };
        (m.first >= 1 && m.first <= m.last.saturating_add(1)).then_some(m)
    }
}

/// The name in a meta key, if `key` is one.
pub(crate) fn decode_meta_key(key: &[u8]) -> Option<&[u8]> {
    let name = key.strip_prefix(&[KIND_META])?;
    (!name.is_empty() && !name.contains(&0)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_stream_then_seq() {
        let keys = [
            entry_key(b"a", 2),
            entry_key(b"a", 10),
            entry_key(b"a", 256),
            entry_key(b"a.", 1),
            entry_key(b"ab", 0),
            meta_key(b"a"),
        ];
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{:?} < {:?}", w[0], w[1]);
        }
        assert_eq!(decode_entry_key(&keys[1]), Some((&b"a"[..], 10)));
        assert_eq!(
            decode_entry_key(&entry_key(b"s/1", u64::MAX)),
            Some((&b"s/1"[..], u64::MAX))
        );
        assert_eq!(decode_entry_key(&meta_key(b"a")), None);
        assert_eq!(decode_entry_key(&keys[1][..keys[1].len() - 1]), None);
        assert_eq!(
            decode_entry_key(&[KIND_ENTRY, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            None
        );
        assert_eq!(decode_meta_key(&meta_key(b"x.y")), Some(&b"x.y"[..]));
        assert_eq!(decode_meta_key(&[KIND_META]), None);
    }

    #[test]
    fn values_round_trip_and_bad_meta_is_refused() {
        let v = entry_value(42, b"data");
        assert_eq!(decode_entry_value(&v), Some((42, &b"data"[..])));
        assert_eq!(decode_entry_value(&v[..7]), None);
        let m = StreamMeta {
            first: 3,
            last: 9,
            live_bytes: 70,
            live_count: 7,
        };
        assert_eq!(StreamMeta::decode(&m.encode()), Some(m));
        assert_eq!(
            StreamMeta::decode(&StreamMeta::EMPTY.encode()),
            Some(StreamMeta::EMPTY)
        );
        assert_eq!(StreamMeta::decode(&m.encode()[..31]), None);
        let gap = StreamMeta { first: 11, ..m };
        assert_eq!(StreamMeta::decode(&gap.encode()), None);
        let zero = StreamMeta { first: 0, ..m };
        assert_eq!(StreamMeta::decode(&zero.encode()), None);
    }
}
