//! The order of keys in a table, and the key arithmetic that depends on it.
//!
//! A table records the name of its comparator in its properties; opening it with another
//! comparator is an error (the index and every seek would silently go wrong otherwise).
//! A closed enum rather than a trait object: the set is small, known to the format, and
//! its names are on disk.

use std::cmp::Ordering;

use crate::internal_key;

/// How keys in a table are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Comparator {
    /// Plain bytewise (lexicographic) order; the filter is built over whole keys.
    #[default]
    Bytewise,
    /// [`internal_key::compare`]: user key ascending, then sequence number descending. The
    /// filter is built over user keys, so a lookup at any snapshot can consult it.
    InternalKey,
}

impl Comparator {
    /// Compares two keys.
    pub fn compare(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            Comparator::Bytewise => a.cmp(b),
            Comparator::InternalKey => internal_key::compare(a, b),
        }
    }

    /// The name stored in the table's properties.
    pub fn name(self) -> &'static str {
        match self {
            Comparator::Bytewise => "uringdb.bytewise",
            Comparator::InternalKey => "uringdb.internal_key.v1",
        }
    }

    pub(crate) fn from_name(name: &[u8]) -> Option<Comparator> {
        [Comparator::Bytewise, Comparator::InternalKey]
            .into_iter()
            .find(|c| c.name().as_bytes() == name)
    }

    /// The part of a key that the bloom filter is built over and probed with.
    pub(crate) fn filter_key(self, key: &[u8]) -> &[u8] {
        match self {
            Comparator::Bytewise => key,
            Comparator::InternalKey => internal_key::user_key(key),
        }
    }

    /// Why `key` cannot be stored under this comparator, if it cannot.
    pub(crate) fn check_key(self, key: &[u8]) -> Result<(), &'static str> {
        match self {
            Comparator::Bytewise => Ok(()),
            Comparator::InternalKey => internal_key::decode(key)
                .map(|_| ())
                .ok_or("not an internal key (shorter than 8 bytes or unknown kind)"),
        }
    }

    /// A short key `k` with `start <= k < limit` (callers guarantee `start < limit`), used
    /// as the index entry between two data blocks. Returns `start` itself when nothing
    /// shorter fits.
    pub(crate) fn separator(self, start: &[u8], limit: &[u8]) -> Vec<u8> {
        debug_assert_eq!(self.compare(start, limit), Ordering::Less);
        match self {
            Comparator::Bytewise => bytewise_separator(start, limit),
            Comparator::InternalKey => {
                let (us, ul) = (internal_key::user_key(start), internal_key::user_key(limit));
                let short = bytewise_separator(us, ul);
                // A shortened user key is strictly between `us` and `ul` (see
                // bytewise_separator), so with the smallest trailer it is > start and
                // < limit. Keep `start` when shortening saved nothing.
                if short.len() < us.len() && us < &short[..] {
                    internal_key::first_for_user_key(&short)
                } else {
                    start.to_vec()
                }
            }
        }
    }

    /// A short key `k >= key`, used as the index entry of the last data block.
    pub(crate) fn successor(self, key: &[u8]) -> Vec<u8> {
        match self {
            Comparator::Bytewise => bytewise_successor(key),
            Comparator::InternalKey => {
                let uk = internal_key::user_key(key);
                let short = bytewise_successor(uk);
                if short.len() < uk.len() && uk < &short[..] {
                    internal_key::first_for_user_key(&short)
                } else {
                    key.to_vec()
                }
            }
        }
    }
}

/// Shortest `k` with `start <= k < limit` of the form `start[..=i]` with byte `i` bumped;
/// `start` if there is none. When it differs from `start`, `start < k < limit`.
fn bytewise_separator(start: &[u8], limit: &[u8]) -> Vec<u8> {
    let common = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    if common < start.len() && common < limit.len() {
        let b = start[common];
        // b < limit[common] because start < limit; bumping must stay below it.
        if b < 0xff && b + 1 < limit[common] {
            let mut k = start[..=common].to_vec();
            k[common] = b + 1;
            return k;
        }
    }
    start.to_vec()
}

/// Shortest `k >= key`: the first byte that is not 0xff, bumped, and the rest dropped.
fn bytewise_successor(key: &[u8]) -> Vec<u8> {
    match key.iter().position(|&b| b != 0xff) {
        Some(i) => {
            let mut k = key[..=i].to_vec();
            k[i] += 1;
            k
        }
        None => key.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal_key::{encode, ValueKind};

    fn ik(uk: &[u8], seq: u64) -> Vec<u8> {
        let mut k = Vec::new();
        encode(&mut k, uk, seq, ValueKind::Put);
        k
    }

    #[test]
    fn names_round_trip() {
        for c in [Comparator::Bytewise, Comparator::InternalKey] {
            assert_eq!(Comparator::from_name(c.name().as_bytes()), Some(c));
        }
        assert_eq!(Comparator::from_name(b"leveldb.BytewiseComparator"), None);
    }

    #[test]
    fn bytewise_separators_stay_between() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"abcdef", b"abzzz", b"abd"),
            (b"abc", b"abd", b"abc"), // adjacent bytes: nothing shorter fits
            (b"ab", b"abc", b"ab"),   // prefix
            (b"a\xff\x01", b"b", b"a\xff\x01"),
            (b"", b"a", b""),
        ];
        for &(s, l, want) in cases {
            let k = Comparator::Bytewise.separator(s, l);
            assert_eq!(k, want, "{s:?} {l:?}");
            assert!(s <= &k[..] && &k[..] < l);
        }
        assert_eq!(bytewise_successor(b"abc"), b"b");
        assert_eq!(bytewise_successor(b"\xff\xffx"), b"\xff\xffy");
        assert_eq!(bytewise_successor(b"\xff\xff"), b"\xff\xff");
    }

    #[test]
    fn internal_key_separators_stay_between() {
        let c = Comparator::InternalKey;
        let pairs = [
            (ik(b"apple", 5), ik(b"banana", 9)),
            (ik(b"apple", 5), ik(b"apple", 4)),
            (ik(b"a", 5), ik(b"a\0", 4)),
            (ik(b"abc1", 1), ik(b"abc9", 1)),
        ];
        for (s, l) in pairs {
            let k = c.separator(&s, &l);
            assert_ne!(c.compare(&s, &k), Ordering::Greater, "{s:?} {k:?}");
            assert_eq!(c.compare(&k, &l), Ordering::Less, "{k:?} {l:?}");
        }
        let s = c.separator(&ik(b"apple", 5), &ik(b"cherry", 9));
        assert_eq!(internal_key::user_key(&s), b"b");
        let k = ik(b"zebra", 3);
        let succ = c.successor(&k);
        assert_ne!(c.compare(&succ, &k), Ordering::Less);
        assert_eq!(internal_key::user_key(&succ), b"{");
    }

    #[test]
    fn filter_keys() {
        assert_eq!(Comparator::Bytewise.filter_key(b"abc"), b"abc");
        assert_eq!(Comparator::InternalKey.filter_key(&ik(b"abc", 1)), b"abc");
        assert!(Comparator::InternalKey.check_key(b"short").is_err());
        assert!(Comparator::InternalKey.check_key(&ik(b"", 0)).is_ok());
    }
}
