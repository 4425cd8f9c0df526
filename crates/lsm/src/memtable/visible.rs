//! [`VisibleIter`]: the user-level view of a memtable at a snapshot — for each user key in a
//! range, its newest version with a sequence number at or below the snapshot, deletions
//! skipped. Both directions; the two ends never cross.
//!
//! Forward iteration walks level 0 from the current position, finding each key's visible
//! version among its first few versions (or by a seek, when a key has many). Backward
//! iteration cannot walk a singly linked list: each step searches for the last node before
//! the previous key, then seeks its visible version — two `O(log n)` searches per key, as in
//! LevelDB's memtable.

use std::fmt;
use std::ops::Bound;

use super::skiplist::{NodeRef, SkipList};
use crate::internal_key::{seek_trailer, ValueKind};

/// Versions of one user key walked one by one before skipping the rest with a search.
const VERSIONS_WALKED_MAX: usize = 8;

/// An iterator over `(user_key, value)` pairs visible at a snapshot (see
/// [`super::MemTable::visible`]).
pub struct VisibleIter<'a> {
    list: &'a SkipList,
    snapshot_seq: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    /// The node the forward side examines next (`None`: the forward side is done).
    front: Option<NodeRef<'a>>,
    /// The last user key the forward side returned or skipped: the back side stops above it.
    front_last: Option<&'a [u8]>,
    /// The last user key the back side returned or skipped: the front side stops below it.
    back_last: Option<&'a [u8]>,
}

impl<'a> VisibleIter<'a> {
    pub(crate) fn new(
        list: &'a SkipList,
        snapshot_seq: u64,
        (lower, upper): (Bound<&[u8]>, Bound<&[u8]>),
    ) -> VisibleIter<'a> {
        let front = match lower {
            Bound::Unbounded => list.first(),
            Bound::Included(k) => list.seek(k, 0),
            Bound::Excluded(k) => list.search(|n| n.key().user_key() <= k).1,
        };
        VisibleIter {
            list,
            snapshot_seq,
            lower: lower.map(<[u8]>::to_vec),
            upper: upper.map(<[u8]>::to_vec),
            front,
            front_last: None,
            back_last: None,
        }
    }

    /// The newest version of `node`'s user key visible at the snapshot: `None` if there is
    /// none, `Some(None)` if it is a deletion, `Some(Some(value))` if it is a put. `node` is
    /// the first (newest) version of its user key.
    fn visible_entry(&self, node: NodeRef<'a>) -> Option<Option<&'a [u8]>> {
        let key = node.key();
        let visible = if key.seq() <= self.snapshot_seq {
            node
        } else {
            let v = self
                .list
                .seek(key.user_key(), seek_trailer(self.snapshot_seq))?;
            if v.key().user_key() != key.user_key() {
                return None;
            }
            v
        };
        Some((visible.key().kind() == ValueKind::Put).then(|| visible.value()))
    }

    /// The first node after every version of `node`'s user key.
    fn skip_versions(&self, node: NodeRef<'a>) -> Option<NodeRef<'a>> {
        let user_key = node.key().user_key();
        let mut next = node.next(0);
        for _ in 0..VERSIONS_WALKED_MAX {
            match next {
                Some(n) if n.key().user_key() == user_key => next = n.next(0),
                _ => return next,
            }
        }
        self.list.search(|n| n.key().user_key() <= user_key).1
    }

    fn below_upper(&self, user_key: &[u8]) -> bool {
        let in_range = match &self.upper {
            Bound::Unbounded => true,
            Bound::Included(u) => user_key <= &u[..],
            Bound::Excluded(u) => user_key < &u[..],
        };
        in_range && self.back_last.is_none_or(|b| user_key < b)
    }

    fn above_lower(&self, user_key: &[u8]) -> bool {
        let in_range = match &self.lower {
            Bound::Unbounded => true,
            Bound::Included(l) => user_key >= &l[..],
            Bound::Excluded(l) => user_key > &l[..],
        };
        in_range && self.front_last.is_none_or(|f| user_key > f)
    }
}

impl<'a> VisibleIter<'a> {
    /// Like [`Iterator::next`], but deletions visible at the snapshot are returned too, as
    /// `(key, None)`: what a reader merging this memtable with older data needs (a
    /// deletion here hides the key's older versions there).
    pub fn next_entry(&mut self) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        loop {
            let node = self.front?;
            let user_key = node.key().user_key();
            if !self.below_upper(user_key) {
                self.front = None;
                return None;
            }
            self.front_last = Some(user_key);
            self.front = self.skip_versions(node);
            if let Some(entry) = self.visible_entry(node) {
                return Some((user_key, entry));
            }
        }
    }

    /// Like [`DoubleEndedIterator::next_back`], deletions included (see
    /// [`VisibleIter::next_entry`]).
    pub fn next_back_entry(&mut self) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        loop {
            let (last, _) = match (self.back_last, &self.upper) {
                (Some(b), _) => self.list.search(|n| n.key().user_key() < b),
                (None, Bound::Unbounded) => self.list.search(|_| true),
                (None, Bound::Included(u)) => self.list.search(|n| n.key().user_key() <= &u[..]),
                (None, Bound::Excluded(u)) => self.list.search(|n| n.key().user_key() < &u[..]),
            };
            let user_key = last?.key().user_key();
            if !self.above_lower(user_key) {
                return None;
            }
            self.back_last = Some(user_key);
            // The newest version of `user_key`, from which the visible one is found.
            let newest = self.list.seek(user_key, 0)?;
            if let Some(entry) = self.visible_entry(newest) {
                return Some((user_key, entry));
            }
        }
    }
}

impl<'a> Iterator for VisibleIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        loop {
            if let (k, Some(v)) = self.next_entry()? {
                return Some((k, v));
            }
        }
    }
}

impl<'a> DoubleEndedIterator for VisibleIter<'a> {
    fn next_back(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        loop {
            if let (k, Some(v)) = self.next_back_entry()? {
                return Some((k, v));
            }
        }
    }
}

impl fmt::Debug for VisibleIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VisibleIter")
            .field("snapshot_seq", &self.snapshot_seq)
            .field("lower", &self.lower)
            .field("upper", &self.upper)
            .field("front", &self.front.map(|n| n.key()))
            .field("front_last", &self.front_last)
            .field("back_last", &self.back_last)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::MemTable;
    use std::ops::Bound::{self, Excluded, Included, Unbounded};

    /// Keys a..g; "b" deleted at 5, "d" overwritten at 6, "f" put only at 9, "g" with 20
    /// versions (more than the forward walk visits one by one).
    fn table() -> MemTable {
        let m = MemTable::new(1 << 20);
        let put = |k: &[u8], seq, v: &[u8]| m.put(k, seq, v).expect("fits");
        put(b"a", 1, b"a1");
        put(b"b", 2, b"b2");
        put(b"c", 3, b"c3");
        put(b"d", 4, b"d4");
        put(b"d", 6, b"d6");
        put(b"f", 9, b"f9");
        for seq in 10..30 {
            put(b"g", seq, format!("g{seq}").as_bytes());
        }
        m.delete(b"b", 5).expect("fits");
        m
    }

    fn fwd(m: &MemTable, snap: u64, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Vec<String> {
        m.visible(snap, (lo, hi))
            .map(|(k, v)| format!("{}={}", k.escape_ascii(), v.escape_ascii()))
            .collect()
    }

    fn rev(m: &MemTable, snap: u64, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Vec<String> {
        let mut v: Vec<_> = m
            .visible(snap, (lo, hi))
            .rev()
            .map(|(k, v)| format!("{}={}", k.escape_ascii(), v.escape_ascii()))
            .collect();
        v.reverse();
        v
    }

    #[test]
    fn snapshots_pick_versions_and_skip_deletions() {
        let m = table();
        for snap in [0, 1, 4, 5, 6, 8, 9, 15, 29, u64::MAX] {
            let f = fwd(&m, snap, Unbounded, Unbounded);
            assert_eq!(f, rev(&m, snap, Unbounded, Unbounded), "snapshot {snap}");
            match snap {
                0 => assert!(f.is_empty()),
                4 => assert_eq!(f, ["a=a1", "b=b2", "c=c3", "d=d4"]),
                5 => assert_eq!(f, ["a=a1", "c=c3", "d=d4"]),
                15 => assert_eq!(f, ["a=a1", "c=c3", "d=d6", "f=f9", "g=g15"]),
                u64::MAX => assert_eq!(f, ["a=a1", "c=c3", "d=d6", "f=f9", "g=g29"]),
                _ => {}
            }
        }
    }

    #[test]
    fn bounds() {
        let m = table();
        let s = u64::MAX;
        assert_eq!(
            fwd(&m, s, Included(b"c"), Included(b"f")),
            ["c=c3", "d=d6", "f=f9"]
        );
        assert_eq!(fwd(&m, s, Excluded(b"c"), Excluded(b"f")), ["d=d6"]);
        assert_eq!(fwd(&m, s, Excluded(b"b"), Excluded(b"e")), ["c=c3", "d=d6"]);
        assert_eq!(fwd(&m, s, Included(b"bb"), Unbounded).len(), 4);
        assert!(fwd(&m, s, Included(b"e"), Excluded(b"e")).is_empty());
        assert!(fwd(&m, s, Included(b"z"), Unbounded).is_empty());
        for (lo, hi) in [
            (Included(&b"c"[..]), Included(&b"f"[..])),
            (Excluded(&b"c"[..]), Excluded(&b"f"[..])),
            (Excluded(&b"a"[..]), Unbounded),
            (Unbounded, Excluded(&b"g"[..])),
            (Included(&b"g"[..]), Included(&b"g"[..])),
            (Included(&b"e"[..]), Excluded(&b"e"[..])),
        ] {
            assert_eq!(fwd(&m, s, lo, hi), rev(&m, s, lo, hi), "{lo:?} {hi:?}");
        }
    }

    #[test]
    fn the_two_ends_meet_without_crossing() {
        let m = table();
        let mut it = m.visible(u64::MAX, (Unbounded, Unbounded));
        assert_eq!(it.next().map(|e| e.0), Some(&b"a"[..]));
        assert_eq!(it.next_back().map(|e| e.0), Some(&b"g"[..]));
        assert_eq!(it.next_back().map(|e| e.0), Some(&b"f"[..]));
        assert_eq!(it.next().map(|e| e.0), Some(&b"c"[..]));
        assert_eq!(it.next_back().map(|e| e.0), Some(&b"d"[..]));
        assert_eq!(it.next(), None);
        assert_eq!(it.next_back(), None);
        assert_eq!(it.next(), None);
    }
}
