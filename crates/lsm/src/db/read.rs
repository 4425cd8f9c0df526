//! The read path: snapshots, point reads (memtables newest first, then level 0 newest
//! first, then one table per deeper level) and range iterators (see the `iter` module).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::state::Inner;
use super::stats::add;
use super::version::TableHandle;
use super::{Db, DbError};
use crate::internal_key::{self, ValueKind};
use crate::manifest::NUM_LEVELS;
use crate::memtable::Lookup;

/// Lookup keys (user key + 8-byte trailer) up to this many bytes are built on the stack.
const LOOKUP_INLINE_BYTES: usize = 264;

/// A registered snapshot: while it lives, compaction keeps every version it can see.
pub struct SnapshotPin {
    pub(super) seq: u64,
    inner: Weak<Inner>,
}

impl SnapshotPin {
    /// The snapshot's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl std::fmt::Debug for SnapshotPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotPin")
            .field("seq", &self.seq)
            .finish()
    }
}

impl Drop for SnapshotPin {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            let mut s = inner.snapshots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = s.get_mut(&self.seq) {
                *n -= 1;
                if *n == 0 {
                    s.remove(&self.seq);
                }
            }
        }
    }
}

impl Db {
    /// The newest visible sequence number.
    pub fn visible_seq(&self) -> u64 {
        self.inner.visible_seq.load(Ordering::Acquire)
    }

    /// Reads `key` at the current state (or at `snapshot`).
    pub fn get(
        &self,
        key: &[u8],
        snapshot: Option<&SnapshotPin>,
    ) -> Result<Option<Vec<u8>>, DbError> {
        let mut out = None;
        self.get_with(key, snapshot, |v| out = v.map(<[u8]>::to_vec))?;
        Ok(out)
    }

    /// Reads `key` and passes the value (borrowed, `None` if absent) to `f`, without
    /// copying when it is in a memtable.
    pub fn get_with<R>(
        &self,
        key: &[u8],
        snapshot: Option<&SnapshotPin>,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, DbError> {
        let inner = &self.inner;
        add(&inner.counters.gets, 1);
        let seq = match snapshot {
            Some(s) => s.seq,
            None => inner.visible_seq.load(Ordering::Acquire),
        };
        let sv = inner.super_version();
        for m in std::iter::once(&sv.mem).chain(sv.imm.iter()) {
            match m.table.get(key, seq) {
                Lookup::Found(v) => return Ok(f(Some(v))),
                Lookup::Deleted => return Ok(f(None)),
                Lookup::NotFound => {}
            }
        }
        // The lookup key on the stack when it fits (keys up to LOOKUP_INLINE_BYTES - 8
        // bytes: no allocation on the table path), else on the heap.
        let mut inline = [0u8; LOOKUP_INLINE_BYTES];
        let heap;
        let lookup = match internal_key::encode_lookup_into(&mut inline, key, seq) {
            Some(l) => l,
            None => {
                let mut v = Vec::with_capacity(key.len() + internal_key::TRAILER_BYTES);
                internal_key::encode_lookup(&mut v, key, seq);
                heap = v;
                &heap[..]
            }
        };
        // `f` goes to the table that holds the key (or to the end, if none does).
        let mut f = Some(f);
        let v = &sv.version;
        for t in &v.levels[0] {
            if t.smallest_user_key() <= key && key <= t.largest_user_key() {
                if let Some(r) = inner.table_get(t, key, lookup, &mut f)? {
                    return Ok(r);
                }
            }
        }
        for level in 1..NUM_LEVELS {
            let files = &v.levels[level];
            let i = v.find_file(level, key);
            if let Some(t) = files.get(i) {
                if t.smallest_user_key() <= key {
                    if let Some(r) = inner.table_get(t, key, lookup, &mut f)? {
                        return Ok(r);
                    }
                }
            }
        }
        let f = f.take().expect("no table took the reader's callback");
        Ok(f(None))
    }

    /// Whether `snapshot` was taken from this database.
    pub fn owns(&self, snapshot: &SnapshotPin) -> bool {
        std::ptr::eq(snapshot.inner.as_ptr(), Arc::as_ptr(&self.inner))
    }

    /// Registers a snapshot of the current state.
    pub fn snapshot(&self) -> SnapshotPin {
        let inner = &self.inner;
        let mut s = inner.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        let seq = inner.visible_seq.load(Ordering::Acquire);
        *s.entry(seq).or_insert(0) += 1;
        SnapshotPin {
            seq,
            inner: Arc::downgrade(inner),
        }
    }
}

impl Inner {
    /// Point lookup in one table: if the table holds `key` (a value or a tombstone), `f`
    /// (taken from its option) is called with the value borrowed from the cached block, or
    /// `None` for a tombstone, and its result returned; `None` if the table does not hold
    /// the key (then `f` stays).
    pub(super) fn table_get<R, F: FnOnce(Option<&[u8]>) -> R>(
        &self,
        t: &TableHandle,
        key: &[u8],
        lookup: &[u8],
        f: &mut Option<F>,
    ) -> Result<Option<R>, DbError> {
        add(&self.counters.bloom_checked, 1);
        if !t.table.may_contain(lookup) {
            add(&self.counters.bloom_useful, 1);
            return Ok(None);
        }
        let found = t.table.find_with(lookup, |k, v| {
            let p = internal_key::decode(k).ok_or_else(|| DbError::Corruption {
                file: t.path.clone(),
                offset: 0,
                reason: "malformed internal key".into(),
            })?;
            if p.user_key != key {
                return Ok(None);
            }
            let f = f.take().expect("a read's callback is called once");
            Ok(Some(f(match p.kind {
                ValueKind::Put => Some(v),
                ValueKind::Delete => None,
            })))
        })?;
        found.unwrap_or(Ok(None))
    }

    pub(super) fn smallest_snapshot(&self) -> u64 {
        let s = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        let visible = self.visible_seq.load(Ordering::Acquire);
        s.keys().next().copied().unwrap_or(visible).min(visible)
    }
}
