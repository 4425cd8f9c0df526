//! Internal keys: a user key tagged with the sequence number and kind of the write. This is
//! the one definition of the encoding, shared by the memtable and the SSTables (where it is
//! part of the on-disk format: tables with the `uringdb.internal_key.v1` comparator hold
//! exactly these bytes).
//!
//! ```text
//! +----------------------+-----------------------------------------------+
//! | user key (n bytes)   | trailer (8 bytes): !((seq << 8) | kind),      |
//! | opaque               | u64 big-endian                                |
//! +----------------------+-----------------------------------------------+
//! offset 0               offset n                                  n + 8
//!
//! trailer, before the complement:  bits 63..8 = seq (56 bits)   bits 7..0 = kind
//! kind: 0 = Delete, 1 = Put, 0xff = seek target (never stored)
//! ```
//!
//! Why inverted and big-endian: the trailer then compares bytewise (and as a `u64`) in the
//! order we want, so [`compare`] is "user keys bytewise, then trailers", and for equal user
//! keys the higher sequence number sorts FIRST (a reader seeking to `(user_key, snapshot)`
//! lands on the newest version it may see); at equal sequence numbers a
//! [`ValueKind::Put`] sorts before a [`ValueKind::Delete`]. Sequence numbers take 56 bits
//! ([`SEQ_MAX`]).
//!
//! Why a comparator is needed at all (and the whole key cannot simply be compared
//! bytewise): a user key that is a prefix of another would be compared against the
//! other's bytes through its trailer. `"a"` must sort before `"a\0"`, but the bytes
//! `"a" ++ trailer` would compare `0xff.. > 0x00`.
//!
//! Two styles of access over the same primitives:
//! * functions over byte slices ([`encode`], [`encode_lookup`], [`decode`], [`user_key`],
//!   [`compare`]), used by the table format, which must also survive malformed keys;
//! * [`InternalKey`], a borrowed, validated view, and trailers as `u64`
//!   ([`encode_trailer`]), used by the memtable, which stores the user key and the trailer
//!   separately until it copies them into its arena.

use std::cmp::Ordering;
use std::fmt;

/// Bytes of the trailer that follows the user key.
pub const TRAILER_BYTES: usize = 8;
/// Largest sequence number an internal key can carry (56 bits).
pub const SEQ_MAX: u64 = (1 << 56) - 1;
/// The kind byte of a seek target: the largest value, so that a target built from
/// `(user_key, seq)` sorts before every stored entry of `user_key` whose sequence number is
/// `<= seq`.
const KIND_SEEK: u8 = 0xff;

/// What a write did to its user key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ValueKind {
    /// A tombstone: the key was deleted (it hides older versions).
    Delete = 0,
    /// A value was put.
    Put = 1,
}

impl ValueKind {
    /// The kind with this byte, if any.
    pub fn from_u8(byte: u8) -> Option<ValueKind> {
        match byte {
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

// ---- primitives: everything below is built on these --------------------------------------

/// `!((seq << 8) | kind)`.
///
/// # Panics
/// If `seq > SEQ_MAX`.
fn pack(seq: u64, kind: u8) -> u64 {
    assert!(seq <= SEQ_MAX, "sequence number {seq} exceeds 56 bits");
    !((seq << 8) | u64::from(kind))
}

/// The sequence number in a trailer.
fn seq_of(trailer: u64) -> u64 {
    !trailer >> 8
}

/// The kind in a trailer, if it is a stored kind.
fn kind_of(trailer: u64) -> Option<ValueKind> {
    ValueKind::from_u8(!trailer as u8)
}

/// The trailer bytes of `key` (fewer than [`TRAILER_BYTES`] if the key is too short, in
/// which case [`user_key`] is empty).
fn trailer_bytes(key: &[u8]) -> &[u8] {
    &key[key.len().saturating_sub(TRAILER_BYTES)..]
}

/// The trailer of `key` as a number; `None` if the key is shorter than a trailer.
fn trailer_value(key: &[u8]) -> Option<u64> {
    trailer_bytes(key).try_into().ok().map(u64::from_be_bytes)
}

/// The order of internal keys: user keys bytewise, then trailers ascending. The trailer may
/// be given as its big-endian bytes or as the `u64` they encode: both orders agree.
pub(crate) fn compare_parts<T: Ord>(
    a_user: &[u8],
    a_trailer: T,
    b_user: &[u8],
    b_trailer: T,
) -> Ordering {
    a_user.cmp(b_user).then_with(|| a_trailer.cmp(&b_trailer))
}

// ---- trailers as numbers (the memtable's style) -------------------------------------------

/// The trailer of an entry with sequence number `seq` and `kind`.
///
/// # Panics
/// If `seq > SEQ_MAX` (a programmer error: sequence numbers are assigned by the engine).
pub fn encode_trailer(seq: u64, kind: ValueKind) -> u64 {
    pack(seq, kind as u8)
}

/// The trailer of a seek target: the smallest trailer any entry with sequence number `<= seq`
/// can have. Entries that sort before `(user_key, seek_trailer(seq))` are newer than `seq`.
/// `seq` is clamped to [`SEQ_MAX`] (a snapshot beyond it sees everything).
pub(crate) fn seek_trailer(seq: u64) -> u64 {
    pack(seq.min(SEQ_MAX), KIND_SEEK)
}

// ---- functions over byte slices (the table's style) ---------------------------------------

/// Appends `user_key` and then `trailer` to `out`.
fn append(out: &mut Vec<u8>, user_key: &[u8], trailer: u64) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&trailer.to_be_bytes());
}

/// Appends the internal key for `(user_key, seq, kind)` to `out`.
///
/// # Panics
/// If `seq > SEQ_MAX` (a programmer error: sequence numbers are assigned by the engine).
pub fn encode(out: &mut Vec<u8>, user_key: &[u8], seq: u64, kind: ValueKind) {
    append(out, user_key, encode_trailer(seq, kind));
}

/// Appends the key to seek to for the newest version of `user_key` visible at snapshot
/// `seq`: it sorts before every entry of `user_key` with a sequence number `<= seq` and
/// after every entry with a higher one. It is not a stored key ([`decode`] rejects it).
///
/// # Panics
/// If `seq > SEQ_MAX`.
pub fn encode_lookup(out: &mut Vec<u8>, user_key: &[u8], seq: u64) {
    append(out, user_key, pack(seq, KIND_SEEK));
}

/// The lookup key for `user_key` at `seq` written into `buf` when it fits (no allocation:
/// point reads use a buffer on the stack), else `None`.
pub fn encode_lookup_into<'b>(buf: &'b mut [u8], user_key: &[u8], seq: u64) -> Option<&'b [u8]> {
    let n = user_key.len().checked_add(TRAILER_BYTES)?;
    let out = buf.get_mut(..n)?;
    out[..user_key.len()].copy_from_slice(user_key);
    out[user_key.len()..].copy_from_slice(&pack(seq, KIND_SEEK).to_be_bytes());
    Some(out)
}

/// Splits a stored internal key; `None` if it is shorter than a trailer or its kind is
/// unknown.
pub fn decode(key: &[u8]) -> Option<ParsedInternalKey<'_>> {
    let key = InternalKey::from_bytes(key)?;
    Some(ParsedInternalKey {
        user_key: key.user_key(),
        seq: key.seq(),
        kind: key.kind(),
    })
}

/// The user key part of an internal key (the whole key if it is too short to have a
/// trailer; such keys are refused by the table builder).
pub fn user_key(key: &[u8]) -> &[u8] {
    &key[..key.len().saturating_sub(TRAILER_BYTES)]
}

/// Orders internal keys: user keys ascending (bytewise), then sequence numbers
/// descending, then kinds descending. Never panics, even on keys without a trailer.
pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
    compare_parts(user_key(a), trailer_bytes(a), user_key(b), trailer_bytes(b))
}

/// The smallest internal key with this user key (the lookup key at [`SEQ_MAX`]).
pub(crate) fn first_for_user_key(user_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(user_key.len() + TRAILER_BYTES);
    encode_lookup(&mut k, user_key, SEQ_MAX);
    k
}

// ---- the borrowed view (the memtable's style) ---------------------------------------------

/// A borrowed, validated internal key (see the module documentation for the layout). It
/// orders as [`compare`] does.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InternalKey<'a> {
    /// At least [`TRAILER_BYTES`] long, with a valid kind byte.
    bytes: &'a [u8],
}

impl<'a> InternalKey<'a> {
    /// Views `bytes` as an internal key; `None` if shorter than the trailer or if the kind
    /// byte is not a [`ValueKind`].
    pub fn from_bytes(bytes: &'a [u8]) -> Option<InternalKey<'a>> {
        kind_of(trailer_value(bytes)?)?;
        Some(InternalKey { bytes })
    }

    /// The encoded key: user key then trailer.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The user key.
    pub fn user_key(&self) -> &'a [u8] {
        user_key(self.bytes)
    }

    /// The trailer, decoded: `!(seq << 8 | kind)`.
    pub fn trailer(&self) -> u64 {
        // Validated by every constructor: the key has a whole trailer.
        trailer_value(self.bytes).unwrap_or_else(|| unreachable!("internal key without trailer"))
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        seq_of(self.trailer())
    }

    /// The kind.
    pub fn kind(&self) -> ValueKind {
        // Validated by every constructor; `Put` is unreachable for a valid key.
        kind_of(self.trailer()).unwrap_or(ValueKind::Put)
    }
}

impl Ord for InternalKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(self.bytes, other.bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An internal key built with the slice functions.
    fn ik(user_key: &[u8], seq: u64, kind: ValueKind) -> Vec<u8> {
        let mut k = Vec::new();
        encode(&mut k, user_key, seq, kind);
        k
    }

    /// An internal key built from a numeric trailer, as the memtable does.
    fn key(user: &[u8], seq: u64, kind: ValueKind) -> Vec<u8> {
        let mut k = user.to_vec();
        k.extend_from_slice(&encode_trailer(seq, kind).to_be_bytes());
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
            // Both styles write and read the same bytes.
            assert_eq!(key(uk, seq, kind), k);
            let v = InternalKey::from_bytes(&k).expect("valid");
            assert_eq!((v.user_key(), v.seq(), v.kind()), (uk, seq, kind));
        }
    }

    #[test]
    fn round_trip_view() {
        let bytes = key(b"apple", 42, ValueKind::Delete);
        let k = InternalKey::from_bytes(&bytes).expect("valid");
        assert_eq!(k.user_key(), b"apple");
        assert_eq!(k.seq(), 42);
        assert_eq!(k.kind(), ValueKind::Delete);
        assert_eq!(k.as_bytes(), &bytes[..]);
        let max = key(b"", SEQ_MAX, ValueKind::Put);
        let k = InternalKey::from_bytes(&max).expect("valid");
        assert_eq!(
            (k.user_key(), k.seq(), k.kind()),
            (&b""[..], SEQ_MAX, ValueKind::Put)
        );
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
    fn order_user_key_then_newest_first() {
        let mut keys: Vec<_> = [
            (&b"b"[..], 1, ValueKind::Put),
            (b"a", 1, ValueKind::Put),
            (b"ab", 9, ValueKind::Put),
            (b"a", 7, ValueKind::Delete),
            (b"a", 7, ValueKind::Put),
            (b"", 3, ValueKind::Put),
        ]
        .into_iter()
        .map(|(user, seq, kind)| key(user, seq, kind))
        .collect();
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
                (b"".to_vec(), 3, ValueKind::Put),
                (b"a".to_vec(), 7, ValueKind::Put),
                (b"a".to_vec(), 7, ValueKind::Delete),
                (b"a".to_vec(), 1, ValueKind::Put),
                (b"ab".to_vec(), 9, ValueKind::Put),
                (b"b".to_vec(), 1, ValueKind::Put),
            ]
        );
        // The slice order and the numeric-trailer order agree with the view's.
        let mut by_slices = keys.clone();
        by_slices.reverse();
        by_slices.sort_by(|x, y| compare(x, y));
        assert_eq!(by_slices, keys);
        for w in keys.windows(2) {
            let (x, y) = (
                InternalKey::from_bytes(&w[0]).expect("valid"),
                InternalKey::from_bytes(&w[1]).expect("valid"),
            );
            let by_parts = compare_parts(x.user_key(), x.trailer(), y.user_key(), y.trailer());
            assert_eq!(by_parts, Ordering::Less);
        }
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
        // The lookup key's trailer is the memtable's seek trailer.
        assert_eq!(look, [&b"k"[..], &seek_trailer(5).to_be_bytes()].concat());
        assert_eq!(
            first_for_user_key(b"k"),
            [&b"k"[..], &seek_trailer(SEQ_MAX).to_be_bytes()].concat()
        );
    }

    #[test]
    fn seek_trailer_bounds_the_visible_versions() {
        for seq in [0, 1, 5, SEQ_MAX] {
            let t = seek_trailer(seq);
            assert!(
                t < encode_trailer(seq, ValueKind::Put)
                    && t < encode_trailer(seq, ValueKind::Delete)
            );
            if seq < SEQ_MAX {
                assert!(t > encode_trailer(seq + 1, ValueKind::Delete));
            }
        }
        assert_eq!(seek_trailer(u64::MAX), seek_trailer(SEQ_MAX));
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
    fn rejects_short_keys_and_unknown_kinds() {
        assert!(InternalKey::from_bytes(b"short").is_none());
        let mut bytes = key(b"k", 1, ValueKind::Put);
        let last = bytes.len() - 1;
        bytes[last] = !7;
        assert!(InternalKey::from_bytes(&bytes).is_none());
    }

    #[test]
    #[should_panic(expected = "exceeds 56 bits")]
    fn sequence_numbers_beyond_56_bits_are_a_programmer_error() {
        ik(b"k", SEQ_MAX + 1, ValueKind::Put);
    }

    #[test]
    #[should_panic(expected = "exceeds 56 bits")]
    fn sequence_numbers_have_56_bits() {
        encode_trailer(SEQ_MAX + 1, ValueKind::Put);
    }

    #[test]
    #[should_panic(expected = "exceeds 56 bits")]
    fn lookup_keys_beyond_56_bits_are_a_programmer_error() {
        encode_lookup(&mut Vec::new(), b"k", SEQ_MAX + 1);
    }
}
