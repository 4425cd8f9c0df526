//! A skiplist of internal keys and values stored in the arena: one writer at a time, any
//! number of lock-free readers.
//!
//! # Node layout
//!
//! Each entry is one arena allocation, aligned to 8 bytes:
//!
//! ```text
//! +--------------------------------+---------------------------+-------------+---------+
//! | header: key_bytes, value_bytes,| tower: `height` atomic    | internal    | value   |
//! | height (u32 each, native)      | pointers, level 0 first   | key bytes   | bytes   |
//! +--------------------------------+---------------------------+-------------+---------+
//! ```
//!
//! Everything but the tower is immutable once the node is linked. The head is a node of
//! [`MAX_HEIGHT`] with an empty key that is never compared; it lives outside the arena so
//! that creating a list cannot fail.
//!
//! # Publication protocol
//!
//! * Writers are serialised by `writer` (a mutex that in uringdb is never contended: the
//!   applier thread applies commit groups one after another). Only the writer stores into
//!   towers and `max_height`, and only the writer allocates from the arena.
//! * A node is fully initialised before it is reachable: the writer writes the header, key
//!   and value bytes with plain stores and the node's own tower with `Relaxed` stores (each
//!   level pointing at the successor found by the search), and only then links it, level 0
//!   first, with one `Release` store per level into the predecessor's tower.
//! * Readers load every tower pointer with `Acquire`. A reader that obtains a node's address
//!   from any level's link therefore synchronises with the `Release` store that linked it at
//!   that level, and every initialising store was sequenced before the first link: the
//!   reader sees the header, key, value and the node's own tower as initialised. Loading a
//!   pointer written before the link (an older successor) is equally safe: that node was
//!   published, with the same argument, before the writer read it.
//! * A linked node is never unlinked, moved or freed while the list lives (the arena frees
//!   memory only when dropped, and the list owns the arena), so a reference handed to a
//!   reader stays valid for the reader's borrow of the list.
//! * Linking is not atomic across levels, and need not be: level 0 alone defines the list's
//!   contents; higher levels are shortcuts. A reader that descends past a level where the new
//!   node is not linked yet simply finds it (or not) at a lower level. A reader racing with
//!   the insertion of node N between A and B sees either A→B or A→N→B at each level, both
//!   sorted, because N's tower points at B before A is changed to point at N.
//! * `max_height` is read `Relaxed`: a stale value only makes a search start lower; a fresh
//!   value whose head pointers are still null makes it descend immediately. Both are
//!   correct.
//! * `len` is a statistic, updated `Relaxed` after linking.
//!
//! Heights come from a seeded PRNG: a node has height `h + 1` with probability `1/4` of
//! having height `h`, capped at [`MAX_HEIGHT`] (12 levels: searches stay logarithmic up to
//! about 4^12 = 16 million entries, far beyond a memtable's few hundred thousand).
//!
//! The protocol is model-checked with loom: `RUSTFLAGS="--cfg loom" cargo test -p
//! uringdb-lsm --release --lib memtable`, where a loom cell in each node stands for the
//! node's plain bytes and fails the model if a reader could see them before they are
//! written.

//!
//! # Files
//!
//! This file is the list: its search, its insertion and the publication above. `node.rs` is
//! the node layout and every raw access to a node's bytes ([`NodeRef`]); `height.rs` the
//! tower heights and the writer's state that draws them.

mod height;
#[cfg(all(test, loom))]
mod loom_model;
mod node;
#[cfg(all(test, not(loom)))]
mod tests;

pub(crate) use node::NodeRef;

use std::cmp::Ordering as CmpOrdering;
use std::ptr::{self, NonNull};

use super::arena::Arena;
use super::error::WriteError;
use super::sync::{lock, AtomicPtr, AtomicUsize, Mutex, Ordering};
use crate::internal_key::{compare_parts, TRAILER_BYTES};
use height::{Writer, MAX_HEIGHT};
#[cfg(loom)]
use node::witness_of;
use node::{node_bytes, write_node, writer_load, Head, Node, NODE_ALIGN};

/// The skiplist (see the module documentation for the protocol).
pub(crate) struct SkipList {
    arena: Arena,
    /// From `Box::into_raw`, freed in `Drop`.
    head: NonNull<Head>,
    /// The tallest tower linked so far, `1..=MAX_HEIGHT`.
    max_height: AtomicUsize,
    len: AtomicUsize,
    writer: Mutex<Writer>,
}

// SAFETY: the only non-thread-safe field is `head`, an owned allocation like a `Box<Head>`
// whose contents (a header never written after construction and atomics) are `Send + Sync`.
// All other state is atomics, a mutex or the arena, which is `Send + Sync` itself; the
// protocol in the module documentation makes concurrent readers and the one writer sound.
unsafe impl Send for SkipList {}
// SAFETY: as for `Send`, above.
unsafe impl Sync for SkipList {}

impl Drop for SkipList {
    fn drop(&mut self) {
        // SAFETY: `head` came from `Box::into_raw` in `SkipList::new` and is freed only here;
        // `&mut self` means no reader holds a `NodeRef` into the list any more.
        drop(unsafe { Box::from_raw(self.head.as_ptr()) });
    }
}

impl std::fmt::Debug for SkipList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipList")
            .field("len", &self.len())
            .field("max_height", &self.max_height.load(Ordering::Relaxed))
            .field("arena", &self.arena)
            .finish()
    }
}

impl SkipList {
    /// An empty list whose entries live in `arena`; `seed` drives the tower heights.
    pub(crate) fn new(arena: Arena, seed: u64) -> SkipList {
        let head = Box::new(Head {
            node: Node {
                key_bytes: 0,
                value_bytes: 0,
                height: MAX_HEIGHT as u32,
                #[cfg(loom)]
                witness: loom::cell::UnsafeCell::new(witness_of(&[], &[])),
            },
            tower: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        });
        SkipList {
            arena,
            head: NonNull::from(Box::leak(head)),
            max_height: AtomicUsize::new(1),
            len: AtomicUsize::new(0),
            writer: Mutex::new(Writer { rng: seed }),
        }
    }

    fn head(&self) -> NodeRef<'_> {
        // SAFETY: the head is initialised in `new` and freed only when the list is dropped,
        // which the borrow of `self` prevents for the reference's lifetime.
        unsafe { NodeRef::new(self.head.cast::<Node>()) }
    }

    /// Entries linked so far.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// The arena the entries live in.
    pub(crate) fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The first entry, if any.
    pub(crate) fn first(&self) -> Option<NodeRef<'_>> {
        self.head().next(0)
    }

    /// Searches for the boundary of a prefix of the list: `before` must hold for every node
    /// up to some point and for none after it (a monotone predicate over the order). Returns
    /// the last node for which it holds (`None`: no such node) and the node after it (the
    /// first node for which it does not hold, as loaded at level 0 by this search).
    pub(crate) fn search<'a>(
        &'a self,
        mut before: impl FnMut(NodeRef<'a>) -> bool,
    ) -> (Option<NodeRef<'a>>, Option<NodeRef<'a>>) {
        let head = self.head();
        let mut x = head;
        let mut level = self.max_height.load(Ordering::Relaxed).clamp(1, MAX_HEIGHT) - 1;
        loop {
            match x.next(level) {
                Some(next) if before(next) => x = next,
                next if level == 0 => {
                    let last = (x.ptr != head.ptr).then_some(x);
                    return (last, next);
                }
                _ => level -= 1,
            }
        }
    }

    /// The first entry whose internal key is `>= (user_key, trailer)`.
    pub(crate) fn seek(&self, user_key: &[u8], trailer: u64) -> Option<NodeRef<'_>> {
        let (_, next) = self.search(|n| compare_node(n, user_key, trailer) == CmpOrdering::Less);
        next
    }

    /// Inserts an entry. The caller must not insert an internal key that is present already
    /// (sequence numbers are unique per entry); if it does, the new entry sorts before the
    /// old one. On error the list is unchanged (though the arena may have grown).
    pub(crate) fn insert(
        &self,
        user_key: &[u8],
        trailer: u64,
        value: &[u8],
    ) -> Result<(), WriteError> {
        let mut writer = lock(&self.writer);
        let height = writer.random_height();
        self.insert_locked(&writer, user_key, trailer, value, height)
    }

    /// `insert` with a chosen height, for tests that need a particular shape.
    #[cfg(test)]
    pub(crate) fn insert_with_height(
        &self,
        user_key: &[u8],
        trailer: u64,
        value: &[u8],
        height: usize,
    ) -> Result<(), WriteError> {
        let writer = lock(&self.writer);
        self.insert_locked(&writer, user_key, trailer, value, height)
    }

    /// The insertion proper; `writer` is the locked writer state.
    fn insert_locked(
        &self,
        writer: &Writer,
        user_key: &[u8],
        trailer: u64,
        value: &[u8],
        height: usize,
    ) -> Result<(), WriteError> {
        assert!((1..=MAX_HEIGHT).contains(&height));
        let too_large = WriteError::TooLarge {
            key_bytes: user_key.len(),
            value_bytes: value.len(),
        };
        let key_bytes = user_key.len().checked_add(TRAILER_BYTES).ok_or(too_large)?;
        let key_len = u32::try_from(key_bytes).map_err(|_| too_large)?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_large)?;
        let node_bytes = node_bytes(height, key_bytes, value.len()).ok_or(too_large)?;

        // Predecessors at every level (the head above the current height).
        let head = self.head();
        let mut prev = [head; MAX_HEIGHT];
        let mut x = head;
        for level in (0..self.max_height.load(Ordering::Relaxed)).rev() {
            while let Some(next) = x.writer_next(level, writer) {
                if compare_node(next, user_key, trailer) != CmpOrdering::Less {
                    break;
                }
                x = next;
            }
            prev[level] = x;
        }
        debug_assert!(
            prev[0]
                .writer_next(0, writer)
                .is_none_or(|n| compare_node(n, user_key, trailer).is_ne()),
            "internal key inserted twice"
        );

        let node = self
            .arena
            .alloc(node_bytes, NODE_ALIGN)
            .map_err(WriteError::Full)?
            .cast::<Node>();
        // The successors at each level, as the writer sees them (only it stores links).
        let mut successors = [ptr::null_mut(); MAX_HEIGHT];
        for (level, p) in prev.iter().enumerate().take(height) {
            successors[level] = writer_load(p.link(level));
        }
        // SAFETY: `node` is a fresh, exclusively owned arena allocation of `node_bytes` bytes
        // (computed above by `node_bytes` for this height, key and value) aligned to
        // `NODE_ALIGN`. Nothing else can see it until it is linked below. The successors are
        // published nodes (or null), and the lengths were checked to fit `u32`.
        unsafe {
            write_node(
                node,
                &successors[..height],
                user_key,
                trailer,
                value,
                (key_len, value_len),
            );
        }

        if height > self.max_height.load(Ordering::Relaxed) {
            self.max_height.store(height, Ordering::Relaxed);
        }
        // Publication: every store above happens-before a reader's Acquire load of any of
        // these links.
        for (level, p) in prev.iter().enumerate().take(height) {
            p.link(level).store(node.as_ptr(), Ordering::Release);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Compares a node's internal key with `(user_key, trailer)`.
fn compare_node(node: NodeRef<'_>, user_key: &[u8], trailer: u64) -> CmpOrdering {
    let key = node.key();
    compare_parts(key.user_key(), key.trailer(), user_key, trailer)
}
