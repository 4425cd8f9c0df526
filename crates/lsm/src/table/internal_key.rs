//! Internal keys: a user key tagged with the sequence number and kind of the write.
//!
//! ```text
//! offset  size  field
//!      0     n  user key (opaque bytes)
//!      n     8  trailer: !((seq << 8) | kind), big-endian
//! ```
//!
//! Why inverted and big-endian: the trailer then compares bytewise in the order we want,
//! so [`compare`] is "user keys bytewise, then trailers bytewise", and for equal user keys
//! the higher sequence number sorts FIRST (a reader seeking to `(user_key, snapshot)` lands
//! on the newest version it may see). Sequence numbers take 56 bits ([`SEQ_MAX`]).
//!
//! Why a comparator is needed at all (and the whole key cannot simply be compared
//! bytewise): a user key that is a prefix of another would be compared against the
//! other's bytes through its trailer. `"a"` must sort before `"a\0"`, but the bytes
//! `"a" ++ trailer` would compare `0xff.. > 0x00`.

use std::cmp::Ordering;

/// Bytes of the trailer that follows the user key.
pub const TRAILER_BYTES: usize = 8;
/// Largest sequence number an internal key can carry (56 bits).
pub const SEQ_MAX: u64 = (1 << 56) - 1;
/// The kind byte of a lookup key: the largest value, so that a lookup key sorts before
/// every stored entry with the same user key and sequence number.
const KIND_SEEK: u8 = 0xff;

/// What a write did to its user key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// A tombstone: the key was deleted.
    Delete = 0,
    /// A value was put.
    Put = 1,
}

impl ValueKind {
    fn from_u8(b: u8) -> Option<ValueKind> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            _ => None,
        }
    }
}

/// An internal key split into its parts (borrowing the user key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedInternalKey<'a> {
    /// The user's key.
    pub user_key: &'a [u8],
    /// Sequence number of the write.
    pub seq: u64,
    /// What the write did.
    pub kind: ValueKind,
}

fn trailer(seq: u64, kind: u8) -> [u8; TRAILER_BYTES] {
    assert!(seq <= SEQ_MAX, "sequence number {seq} exceeds 56 bits");
    (!((seq << 8) | u64::from(kind))).to_be_bytes()
}

/// Appends the internal key for `(user_key, seq, kind)` to `out`.
///
/// # Panics
/// If `seq > SEQ_MAX` (a programmer error: sequence numbers are assigned by the engine).
pub fn encode(out: &mut Vec<u8>, user_key: &[u8], seq: u64, kind: ValueKind) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&trailer(seq, kind as u8));
}

/// Appends the key to seek to for the newest version of `user_key` visible at snapshot
/// `seq`: it sorts before every entry of `user_key` with a sequence number `<= seq` and
/// after every entry with a higher one. It is not a stored key ([`decode`] rejects it).
///
/// # Panics
/// If `seq > SEQ_MAX`.
pub fn encode_lookup(out: &mut Vec<u8>, user_key: &[u8], seq: u64) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&trailer(seq, KIND_SEEK));
}

/// Splits a stored internal key; `None` if it is shorter than a trailer or its kind is
/// unknown.
pub fn decode(key: &[u8]) -> Option<ParsedInternalKey<'_>> {
    let split = key.len().checked_sub(TRAILER_BYTES)?;
    let (user_key, t) = key.split_at(split);
    let mut b = [0u8; TRAILER_BYTES];
    b.copy_from_slice(t);
    let packed = !u64::from_be_bytes(b);
    let kind = ValueKind::from_u8((packed & 0xff) as u8)?;
    Some(ParsedInternalKey {
        user_key,
        seq: packed >> 8,
        kind,
    })
}

/// The user key part of an internal key (the whole key if it is too short to have a
/// trailer; such keys are refused by the table builder).
pub fn user_key(key: &[u8]) -> &[u8] {
    &key[..key.len().saturating_sub(TRAILER_BYTES)]
}

fn trailer_of(key: &[u8]) -> &[u8] {
    &key[key.len().saturating_sub(TRAILER_BYTES)..]
}

/// Orders internal keys: user keys ascending (bytewise), then sequence numbers
/// descending, then kinds descending. Never panics, even on keys without a trailer.
pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
    user_key(a)
        .cmp(user_key(b))
        .then_with(|| trailer_of(a).cmp(trailer_of(b)))
}

/// The smallest internal key with this user key (the lookup key at [`SEQ_MAX`]).
pub(crate) fn first_for_user_key(user_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(user_key.len() + TRAILER_BYTES);
    encode_lookup(&mut k, user_key, SEQ_MAX);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ik(user_key: &[u8], seq: u64, kind: ValueKind) -> Vec<u8> {
        let mut k = Vec::new();
        encode(&mut k, user_key, seq, kind);
        k
    }

    #[test]
    fn round_trip() {
        for (uk, seq, kind) in [
            (&b""[..], 0, ValueKind::Delete),
            (b"a", 1, ValueKind::Put),
            (b"hello\0world", SEQ_MAX, ValueKind::Put),
            (b"\xff\xff", 123_456_789, ValueKind::Delete),
        ] {
            let k = ik(uk, seq, kind);
            assert_eq!(k.len(), uk.len() + TRAILER_BYTES);
            let p = decode(&k).expect("decodes");
            assert_eq!((p.user_key, p.seq, p.kind), (uk, seq, kind));
            assert_eq!(user_key(&k), uk);
        }
    }

    #[test]
    fn higher_sequence_sorts_first_for_equal_user_keys() {
        let newer = ik(b"k", 10, ValueKind::Put);
        let older = ik(b"k", 9, ValueKind::Put);
        assert_eq!(compare(&newer, &older), Ordering::Less);
        // Same sequence: Put (1) sorts before Delete (0).
        assert_eq!(
            compare(
                &ik(b"k", 5, ValueKind::Put),
                &ik(b"k", 5, ValueKind::Delete)
            ),
            Ordering::Less
        );
        // The trailer alone already orders bytewise.
        assert!(newer[1..] < older[1..]);
    }

    #[test]
    fn user_key_order_wins_even_for_prefixes() {
        // Bytewise the whole keys compare the other way round (see the module doc).
        let a = ik(b"a", 1, ValueKind::Put);
        let a0 = ik(b"a\0", 1, ValueKind::Put);
        assert!(a > a0, "bytewise order of whole keys is wrong for prefixes");
        assert_eq!(compare(&a, &a0), Ordering::Less);
        assert_eq!(
            compare(&ik(b"a", 1, ValueKind::Put), &ik(b"b", 99, ValueKind::Put)),
            Ordering::Less
        );
    }

    #[test]
    fn lookup_key_lands_on_newest_visible_version() {
        let mut keys = [
            ik(b"k", 3, ValueKind::Put),
            ik(b"k", 7, ValueKind::Delete),
            ik(b"k", 5, ValueKind::Put),
            ik(b"j", 100, ValueKind::Put),
            ik(b"l", 1, ValueKind::Put),
        ];
        keys.sort_by(|a, b| compare(a, b));
        let mut look = Vec::new();
        encode_lookup(&mut look, b"k", 6);
        let first_ge = keys
            .iter()
            .find(|k| compare(k, &look) != Ordering::Less)
            .expect("some key");
        let p = decode(first_ge).expect("stored key");
        assert_eq!((p.user_key, p.seq), (&b"k"[..], 5));
        // A lookup at the same sequence as an entry sorts before it.
        look.clear();
        encode_lookup(&mut look, b"k", 5);
        assert_eq!(compare(&look, &ik(b"k", 5, ValueKind::Put)), Ordering::Less);
        assert!(decode(&look).is_none(), "lookup keys are not stored keys");
    }

    #[test]
    fn malformed_keys_neither_panic_nor_decode() {
        assert!(decode(b"short").is_none());
        assert_eq!(user_key(b"short"), b"");
        let _ = compare(b"x", b"");
        let mut k = ik(b"u", 1, ValueKind::Put);
        let last = k.len() - 1;
        k[last] = !7; // kind 7 does not exist
        assert!(decode(&k).is_none());
    }

    #[test]
    #[should_panic(expected = "exceeds 56 bits")]
    fn sequence_numbers_beyond_56_bits_are_a_programmer_error() {
        ik(b"k", SEQ_MAX + 1, ValueKind::Put);
    }
}
