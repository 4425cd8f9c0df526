//! The memtable's internal key: a user key followed by an 8-byte trailer that orders versions.
//!
//! ```text
//! +----------------------+----------------------------------------------+
//! | user key (n bytes)   | trailer: u64 big-endian, !(seq << 8 | kind)   |
//! +----------------------+----------------------------------------------+
//! ```
//!
//! Internal keys order by user key (bytewise), then by trailer ascending. The trailer is
//! the bitwise complement of `seq << 8 | kind`, so for equal user keys the newer entry (the
//! larger sequence number) sorts first, and at equal sequence numbers a [`Kind::Put`] sorts
//! before a [`Kind::Delete`]. Sequence numbers have 56 bits ([`MAX_SEQUENCE`]).
//!
//! This is a small, local view; `table::internal_key` defines the matching on-disk
//! encoding and the two are to be unified.

use std::cmp::Ordering;
use std::fmt;

/// The largest sequence number an internal key can carry (56 bits).
pub const MAX_SEQUENCE: u64 = (1 << 56) - 1;
/// Bytes of the trailer that follows the user key.
pub const TRAILER_BYTES: usize = 8;
/// The kind byte used for seek targets: above every real kind, so that a target built from
/// `(user_key, seq)` sorts before every entry of `user_key` whose sequence is `<= seq`.
const KIND_FOR_SEEK: u64 = 0xff;

/// What an entry records for its user key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// The user key was deleted (a tombstone: it hides older versions).
    Delete = 0,
    /// The user key was set to the entry's value.
    Put = 1,
}

impl Kind {
    /// The kind with this byte, if any.
    pub fn from_u8(byte: u8) -> Option<Kind> {
        match byte {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Put),
            _ => None,
        }
    }
}

/// The trailer of an entry with sequence number `seq` (at most [`MAX_SEQUENCE`]) and `kind`.
pub fn encode_trailer(seq: u64, kind: Kind) -> u64 {
    assert!(seq <= MAX_SEQUENCE, "sequence number {seq} exceeds 56 bits");
    !(seq << 8 | kind as u64)
}

/// The trailer of a seek target: the smallest trailer any entry with sequence number `<= seq`
/// can have. Entries that sort before `(user_key, seek_trailer(seq))` are newer than `seq`.
pub(crate) fn seek_trailer(seq: u64) -> u64 {
    !(seq.min(MAX_SEQUENCE) << 8 | KIND_FOR_SEEK)
}

/// Compares the internal key `(a_user, a_trailer)` with `(b_user, b_trailer)`.
pub(crate) fn compare(a_user: &[u8], a_trailer: u64, b_user: &[u8], b_trailer: u64) -> Ordering {
    a_user.cmp(b_user).then(a_trailer.cmp(&b_trailer))
}

/// A borrowed, validated internal key (see the module documentation for the layout).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InternalKey<'a> {
    /// At least [`TRAILER_BYTES`] long, with a valid kind byte.
    bytes: &'a [u8],
}

impl<'a> InternalKey<'a> {
    /// Views `bytes` as an internal key; `None` if shorter than the trailer or if the kind
    /// byte is not a [`Kind`].
    pub fn from_bytes(bytes: &'a [u8]) -> Option<InternalKey<'a>> {
        let split = bytes.len().checked_sub(TRAILER_BYTES)?;
        let trailer = u64::from_be_bytes(bytes[split..].try_into().ok()?);
        Kind::from_u8(!trailer as u8)?;
        Some(InternalKey { bytes })
    }

    /// The encoded key: user key then trailer.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The user key.
    pub fn user_key(&self) -> &'a [u8] {
        &self.bytes[..self.bytes.len() - TRAILER_BYTES]
    }

    /// The trailer, decoded: `!(seq << 8 | kind)`.
    pub fn trailer(&self) -> u64 {
        let mut trailer = [0; TRAILER_BYTES];
        trailer.copy_from_slice(&self.bytes[self.bytes.len() - TRAILER_BYTES..]);
        u64::from_be_bytes(trailer)
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        !self.trailer() >> 8
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        // Validated by every constructor; `Put` is unreachable for a valid key.
        Kind::from_u8(!self.trailer() as u8).unwrap_or(Kind::Put)
    }
}

impl Ord for InternalKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(
            self.user_key(),
            self.trailer(),
            other.user_key(),
            other.trailer(),
        )
    }
}

impl PartialOrd for InternalKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for InternalKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}@{}:{:?}",
            self.user_key().escape_ascii().to_string(),
            self.seq(),
            self.kind()
        )
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn key(user: &[u8], seq: u64, kind: Kind) -> Vec<u8> {
        let mut k = user.to_vec();
        k.extend_from_slice(&encode_trailer(seq, kind).to_be_bytes());
        k
    }

    #[test]
    fn round_trip() {
        let bytes = key(b"apple", 42, Kind::Delete);
        let k = InternalKey::from_bytes(&bytes).expect("valid");
        assert_eq!(k.user_key(), b"apple");
        assert_eq!(k.seq(), 42);
        assert_eq!(k.kind(), Kind::Delete);
        assert_eq!(k.as_bytes(), &bytes[..]);
        let max = key(b"", MAX_SEQUENCE, Kind::Put);
        let k = InternalKey::from_bytes(&max).expect("valid");
        assert_eq!(
            (k.user_key(), k.seq(), k.kind()),
            (&b""[..], MAX_SEQUENCE, Kind::Put)
        );
    }

    #[test]
    fn rejects_short_keys_and_unknown_kinds() {
        assert!(InternalKey::from_bytes(b"short").is_none());
        let mut bytes = key(b"k", 1, Kind::Put);
        let last = bytes.len() - 1;
        bytes[last] = !7;
        assert!(InternalKey::from_bytes(&bytes).is_none());
    }

    #[test]
    #[should_panic(expected = "exceeds 56 bits")]
    fn sequence_numbers_have_56_bits() {
        encode_trailer(MAX_SEQUENCE + 1, Kind::Put);
    }

    #[test]
    fn order_user_key_then_newest_first() {
        let mut keys = [
            key(b"b", 1, Kind::Put),
            key(b"a", 1, Kind::Put),
            key(b"ab", 9, Kind::Put),
            key(b"a", 7, Kind::Delete),
            key(b"a", 7, Kind::Put),
            key(b"", 3, Kind::Put),
        ];
        keys.sort_by(|x, y| {
            let (x, y) = (InternalKey::from_bytes(x), InternalKey::from_bytes(y));
            x.cmp(&y)
        });
        let seen: Vec<_> = keys
            .iter()
            .filter_map(|k| InternalKey::from_bytes(k))
            .map(|k| (k.user_key().to_vec(), k.seq(), k.kind()))
            .collect();
        assert_eq!(
            seen,
            [
                (b"".to_vec(), 3, Kind::Put),
                (b"a".to_vec(), 7, Kind::Put),
                (b"a".to_vec(), 7, Kind::Delete),
                (b"a".to_vec(), 1, Kind::Put),
                (b"ab".to_vec(), 9, Kind::Put),
                (b"b".to_vec(), 1, Kind::Put),
            ]
        );
    }

    #[test]
    fn seek_trailer_bounds_the_visible_versions() {
        for seq in [0, 1, 5, MAX_SEQUENCE] {
            let t = seek_trailer(seq);
            assert!(t < encode_trailer(seq, Kind::Put) && t < encode_trailer(seq, Kind::Delete));
            if seq < MAX_SEQUENCE {
                assert!(t > encode_trailer(seq + 1, Kind::Delete));
            }
        }
        assert_eq!(seek_trailer(u64::MAX), seek_trailer(MAX_SEQUENCE));
    }
}
