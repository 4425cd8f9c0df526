//! [`MemTable`]: the memtable's API over the skiplist — puts, deletes, reads at a snapshot and
//! iterators.
//!
//! # Threading
//!
//! A memtable is shared (`&MemTable`, `Sync`) between one writer and any number of readers.
//! Writes are serialised internally (in uringdb the applier thread applies commit groups in
//! sequence order, so the lock is uncontended) and never block readers; readers take no
//! lock. A reader sees a consistent view when it reads at a snapshot sequence number that
//! the writer has finished applying (the engine publishes that number after each group).
//!
//! # Capacity
//!
//! A memtable is bounded by its arena's capacity. [`MemTable::is_full`] is the soft trigger
//! for rotating and flushing; a write that does not fit fails with [`WriteError::Full`],
//! which leaves the memtable unchanged and asks the caller to rotate (back-pressure, never
//! growth).

use std::fmt;
use std::ops::Bound;

use super::arena::{Arena, ARENA_CHUNK_BYTES_DEFAULT};
use super::error::WriteError;
use super::skiplist::{NodeRef, SkipList};
use super::visible::VisibleIter;
use crate::internal_key::{encode_trailer, seek_trailer, InternalKey, ValueKind, SEQ_MAX};

/// How a memtable is sized and seeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemTableOptions {
    /// The most memory the memtable's arena may reserve; writes beyond fail with
    /// [`WriteError::Full`]. Leave room above the flush trigger passed to
    /// [`MemTable::is_full`], so that the entries applied while a flush is being arranged
    /// still fit.
    pub capacity_bytes: usize,
    /// Size of one arena chunk (a positive multiple of 16).
    pub chunk_bytes: usize,
    /// Seed of the skiplist's tower heights (any value; fixed for reproducible tests).
    pub seed: u64,
}

impl Default for MemTableOptions {
    /// 64 MiB in 1 MiB chunks.
    fn default() -> MemTableOptions {
        MemTableOptions {
            capacity_bytes: 64 << 20,
            chunk_bytes: ARENA_CHUNK_BYTES_DEFAULT,
            seed: 0x5eed_5eed_5eed_5eed,
        }
    }
}

/// The result of [`MemTable::get`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The newest visible version is a put of this value.
    Found(&'a [u8]),
    /// The newest visible version is a deletion: older tables must not be consulted.
    Deleted,
    /// The memtable holds no visible version: look in older tables.
    NotFound,
}

/// One internal entry: a versioned key and its value (empty for deletions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// User key, sequence number and kind.
    pub key: InternalKey<'a>,
    /// The value of a put; empty for a deletion.
    pub value: &'a [u8],
}

impl<'a> Entry<'a> {
    fn of(node: NodeRef<'a>) -> Entry<'a> {
        Entry {
            key: node.key(),
            value: node.value(),
        }
    }
}

/// An ordered, arena-backed map of internal keys to values (see the module documentation).
#[derive(Debug)]
pub struct MemTable {
    list: SkipList,
}

impl MemTable {
    /// An empty memtable of `capacity_bytes` with the default chunk size.
    pub fn new(capacity_bytes: usize) -> MemTable {
        MemTable::with_options(MemTableOptions {
            capacity_bytes,
            ..MemTableOptions::default()
        })
    }

    /// An empty memtable.
    pub fn with_options(options: MemTableOptions) -> MemTable {
        MemTable {
            list: SkipList::new(
                Arena::new(options.chunk_bytes, options.capacity_bytes),
                options.seed,
            ),
        }
    }

    /// Records `user_key = value` at sequence number `seq` (unique per user key).
    /// Serialised with other writes; never blocks readers.
    ///
    /// # Panics
    /// If `seq` exceeds [`SEQ_MAX`] (a programmer error: the engine allocates them).
    pub fn put(&self, user_key: &[u8], seq: u64, value: &[u8]) -> Result<(), WriteError> {
        self.list
            .insert(user_key, encode_trailer(seq, ValueKind::Put), value)
    }

    /// Records the deletion of `user_key` at sequence number `seq` (as for [`MemTable::put`]).
    ///
    /// # Panics
    /// If `seq` exceeds [`SEQ_MAX`].
    pub fn delete(&self, user_key: &[u8], seq: u64) -> Result<(), WriteError> {
        self.list
            .insert(user_key, encode_trailer(seq, ValueKind::Delete), &[])
    }

    /// The newest version of `user_key` with a sequence number `<= snapshot_seq`.
    pub fn get(&self, user_key: &[u8], snapshot_seq: u64) -> Lookup<'_> {
        match self.list.seek(user_key, seek_trailer(snapshot_seq)) {
            Some(node) if node.key().user_key() == user_key => match node.key().kind() {
                ValueKind::Put => Lookup::Found(node.value()),
                ValueKind::Delete => Lookup::Deleted,
            },
            _ => Lookup::NotFound,
        }
    }

    /// An iterator over every internal entry, in internal-key order (user key ascending,
    /// newest version first), from the first entry; see [`Iter::seek`]. This is what a flush
    /// writes out.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            list: &self.list,
            next: self.list.first(),
        }
    }

    /// An iterator over the user keys visible at `snapshot_seq` within `range`: for each
    /// user key, its newest version with a sequence number `<= snapshot_seq`, skipped if that
    /// version is a deletion. Double-ended: `.rev()` iterates in descending key order, and
    /// both ends may be used together. `range` is `..` or a pair of [`Bound`]s (`gt`/`gte`,
    /// `lt`/`lte`).
    pub fn visible<'k>(
        &self,
        snapshot_seq: u64,
        range: (Bound<&'k [u8]>, Bound<&'k [u8]>),
    ) -> VisibleIter<'_> {
        VisibleIter::new(&self.list, snapshot_seq.min(SEQ_MAX), range)
    }

    /// Bytes the entries occupy in the arena (alignment included): the memtable's logical
    /// size, compared with the flush trigger.
    pub fn approximate_bytes(&self) -> usize {
        self.list.arena().used_bytes()
    }

    /// Bytes of memory the memtable holds (whole arena chunks).
    pub fn reserved_bytes(&self) -> usize {
        self.list.arena().reserved_bytes()
    }

    /// The hard bound on [`MemTable::reserved_bytes`].
    pub fn capacity_bytes(&self) -> usize {
        self.list.arena().capacity_bytes()
    }

    /// Entries (versions, including deletions) recorded.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no entry has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the memtable has reached the flush trigger `limit_bytes` (compared with
    /// [`MemTable::approximate_bytes`]), or its arena cannot take another chunk: time to
    /// rotate it and flush it.
    pub fn is_full(&self, limit_bytes: usize) -> bool {
        let arena = self.list.arena();
        self.approximate_bytes() >= limit_bytes || arena.reserved_bytes() >= arena.capacity_bytes()
    }
}

/// An iterator over a memtable's internal entries in internal-key order (see
/// [`MemTable::iter`]). Entries inserted concurrently may or may not be returned, depending
/// on where the iterator is; readers that need a consistent view filter by sequence number
/// (as [`MemTable::visible`] does).
#[derive(Clone)]
pub struct Iter<'a> {
    list: &'a SkipList,
    /// The entry `next` returns.
    next: Option<NodeRef<'a>>,
}

impl<'a> Iter<'a> {
    /// Positions the iterator so that `next` returns the first entry whose user key is
    /// `>= user_key` (its newest version).
    pub fn seek(&mut self, user_key: &[u8]) {
        self.next = self.list.seek(user_key, 0);
    }

    /// Positions the iterator so that `next` returns the first entry whose internal key is
    /// `>= key`.
    pub fn seek_internal(&mut self, key: InternalKey<'_>) {
        self.next = self.list.seek(key.user_key(), key.trailer());
    }

    /// Positions the iterator at the first entry.
    pub fn seek_to_first(&mut self) {
        self.next = self.list.first();
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let node = self.next?;
        self.next = node.next(0);
        Some(Entry::of(node))
    }
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("next", &self.next.map(|n| n.key()))
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn small() -> MemTable {
        MemTable::with_options(MemTableOptions {
            capacity_bytes: 1 << 20,
            chunk_bytes: 4096,
            seed: 3,
        })
    }

    #[test]
    fn get_sees_the_newest_version_at_or_below_the_snapshot() {
        let m = small();
        m.put(b"k", 10, b"v10").expect("fits");
        m.delete(b"k", 20).expect("fits");
        m.put(b"k", 30, b"v30").expect("fits");
        m.put(b"j", 15, b"j15").expect("fits");
        assert_eq!(m.get(b"k", 5), Lookup::NotFound);
        assert_eq!(m.get(b"k", 10), Lookup::Found(b"v10"));
        assert_eq!(m.get(b"k", 19), Lookup::Found(b"v10"));
        assert_eq!(m.get(b"k", 20), Lookup::Deleted);
        assert_eq!(m.get(b"k", 29), Lookup::Deleted);
        assert_eq!(m.get(b"k", 30), Lookup::Found(b"v30"));
        assert_eq!(m.get(b"k", u64::MAX), Lookup::Found(b"v30"));
        assert_eq!(m.get(b"kk", u64::MAX), Lookup::NotFound);
        assert_eq!(m.get(b"", u64::MAX), Lookup::NotFound);
        assert_eq!(m.get(b"j", 14), Lookup::NotFound);
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn user_keys_that_prefix_each_other_do_not_mix() {
        // Bytewise comparison of whole internal keys would interleave "a" and "a\0" versions.
        let m = small();
        m.put(b"a", 1, b"a1").expect("fits");
        m.put(b"a\0", 2, b"a0-2").expect("fits");
        m.put(b"a", 3, b"a3").expect("fits");
        let keys: Vec<_> = m
            .iter()
            .map(|e| (e.key.user_key().to_vec(), e.key.seq()))
            .collect();
        assert_eq!(
            keys,
            [(b"a".to_vec(), 3), (b"a".to_vec(), 1), (b"a\0".to_vec(), 2)]
        );
        assert_eq!(m.get(b"a", 2), Lookup::Found(b"a1"));
    }

    #[test]
    fn iter_seeks_to_a_user_key() {
        let m = small();
        for (i, k) in [b"b", b"d", b"f"].iter().enumerate() {
            m.put(*k, i as u64 + 1, *k).expect("fits");
            m.delete(*k, i as u64 + 10).expect("fits");
        }
        let mut it = m.iter();
        it.seek(b"c");
        let e = it.next().expect("d");
        assert_eq!(
            (e.key.user_key(), e.key.seq(), e.key.kind()),
            (&b"d"[..], 11, ValueKind::Delete)
        );
        assert_eq!(e.value, b"");
        let e = it.next().expect("d");
        assert_eq!(
            (e.key.user_key(), e.key.seq(), e.value),
            (&b"d"[..], 2, &b"d"[..])
        );
        it.seek(b"g");
        assert!(it.next().is_none());
        it.seek_to_first();
        assert_eq!(it.count(), 6);
        let mut it = m.iter();
        let target = [
            b"d".as_slice(),
            &encode_trailer(5, ValueKind::Put).to_be_bytes(),
        ]
        .concat();
        it.seek_internal(InternalKey::from_bytes(&target).expect("valid"));
        assert_eq!(it.next().map(|e| e.key.seq()), Some(2));
    }

    #[test]
    fn full_is_reported_and_leaves_the_memtable_readable() {
        let m = MemTable::with_options(MemTableOptions {
            capacity_bytes: 8192,
            chunk_bytes: 4096,
            seed: 1,
        });
        let mut seq = 0;
        let err = loop {
            seq += 1;
            let key = format!("key{seq:05}");
            if let Err(e) = m.put(key.as_bytes(), seq, &[7; 64]) {
                break e;
            }
        };
        assert!(matches!(err, WriteError::Full(_)), "{err}");
        assert!(m.is_full(usize::MAX));
        assert_eq!(m.len() as u64, seq - 1);
        assert_eq!(m.iter().count() as u64, seq - 1);
        assert_eq!(m.get(b"key00001", seq), Lookup::Found(&[7; 64]));
        assert!(m.reserved_bytes() <= m.capacity_bytes());
        assert!(m.approximate_bytes() <= m.reserved_bytes());
    }

    #[test]
    fn is_full_triggers_at_the_limit() {
        let m = small();
        assert!(!m.is_full(1));
        assert!(m.is_empty());
        m.put(b"k", 1, &[0; 100]).expect("fits");
        let used = m.approximate_bytes();
        assert!(used >= 100 + 1 + 8, "{used}");
        assert!(m.is_full(used));
        assert!(!m.is_full(used + 1));
    }

    #[test]
    fn memtables_are_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MemTable>();
        assert_send_sync::<Iter<'_>>();
        assert_send_sync::<VisibleIter<'_>>();
    }
}
