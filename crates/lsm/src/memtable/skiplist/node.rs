//! The node layout (drawn in the skiplist's module documentation) and every raw access to
//! a node: [`NodeRef`] reads a published node's header, tower, key and value; the writer's
//! own loads of links go through [`writer_load`].

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::{self, NonNull};

use super::super::arena::ARENA_ALIGN_BYTES_MAX;
use super::super::sync::{AtomicPtr, Ordering};
use super::height::{Writer, MAX_HEIGHT};
use crate::internal_key::{InternalKey, TRAILER_BYTES};

/// The fixed part of a node; its tower, key and value follow it in the same allocation.
#[repr(C, align(8))]
pub(crate) struct Node {
    /// Length of the internal key (user key and trailer).
    pub(super) key_bytes: u32,
    pub(super) value_bytes: u32,
    /// Levels in the tower, `1..=MAX_HEIGHT`.
    pub(super) height: u32,
    /// Stands for the node's plain bytes in the loom model (see the module documentation).
    #[cfg(loom)]
    pub(super) witness: loom::cell::UnsafeCell<u64>,
}

/// Offset of the tower from the start of a node.
const TOWER_OFFSET: usize = size_of::<Node>().next_multiple_of(align_of::<AtomicPtr<Node>>());
/// Bytes per tower level.
const LINK_BYTES: usize = size_of::<AtomicPtr<Node>>();
/// Alignment of a node allocation.
pub(super) const NODE_ALIGN: usize = if align_of::<Node>() > align_of::<AtomicPtr<Node>>() {
    align_of::<Node>()
} else {
    align_of::<AtomicPtr<Node>>()
};
const _: () = assert!(NODE_ALIGN <= ARENA_ALIGN_BYTES_MAX);

/// The head node: a header and a full tower, laid out as an arena node of `MAX_HEIGHT`.
#[repr(C)]
pub(super) struct Head {
    pub(super) node: Node,
    pub(super) tower: [AtomicPtr<Node>; MAX_HEIGHT],
}
const _: () = assert!(std::mem::offset_of!(Head, tower) == TOWER_OFFSET);

/// Bytes of a node with a tower of `height` levels, an internal key of `key_bytes` and a
/// value of `value_bytes`; `None` if that overflows.
pub(super) fn node_bytes(height: usize, key_bytes: usize, value_bytes: usize) -> Option<usize> {
    (TOWER_OFFSET + height * LINK_BYTES)
        .checked_add(key_bytes)
        .and_then(|n| n.checked_add(value_bytes))
}

/// Writes a whole node into `node` with plain stores, before it is linked (see the
/// protocol): the header, a tower of `successors.len()` levels (level `i` pointing at
/// `successors[i]`), the internal key (`user_key`, then `trailer` big-endian) and the value.
/// The last argument is the key's and the value's lengths, checked by the caller to fit the
/// header's `u32`s.
///
/// # Safety
/// `node` must be a fresh, exclusively owned allocation of at least
/// `node_bytes(successors.len(), user_key.len() + TRAILER_BYTES, value.len())` bytes,
/// aligned to `NODE_ALIGN`, that no other thread can reach until it is linked;
/// `successors.len()` must be in `1..=MAX_HEIGHT`, and every successor a published node or
/// null.
pub(super) unsafe fn write_node(
    node: NonNull<Node>,
    successors: &[*mut Node],
    user_key: &[u8],
    trailer: u64,
    value: &[u8],
    (key_len, value_len): (u32, u32),
) {
    let height = successors.len();
    debug_assert!((1..=MAX_HEIGHT).contains(&height));
    let key_bytes = user_key.len() + TRAILER_BYTES;
    debug_assert_eq!(key_bytes, key_len as usize);
    debug_assert_eq!(value.len(), value_len as usize);
    // SAFETY: `node` is a fresh, exclusively owned allocation of `node_bytes` bytes aligned
    // to `NODE_ALIGN` (the caller's contract): room for the header, `height` links at
    // `TOWER_OFFSET`, the key and the value. Nothing else can see it until it is linked.
    // The successors written into its tower are published nodes (or null).
    unsafe {
        node.as_ptr().write(Node {
            key_bytes: key_len,
            value_bytes: value_len,
            height: height as u32,
            #[cfg(loom)]
            witness: loom::cell::UnsafeCell::new(witness_of(
                &[user_key, &trailer.to_be_bytes()].concat(),
                value,
            )),
        });
        let base = node.as_ptr().cast::<u8>();
        let tower = base.add(TOWER_OFFSET).cast::<AtomicPtr<Node>>();
        for (level, &next) in successors.iter().enumerate() {
            tower.add(level).write(AtomicPtr::new(next));
        }
        let key = base.add(TOWER_OFFSET + height * LINK_BYTES);
        ptr::copy_nonoverlapping(user_key.as_ptr(), key, user_key.len());
        ptr::copy_nonoverlapping(
            trailer.to_be_bytes().as_ptr(),
            key.add(user_key.len()),
            TRAILER_BYTES,
        );
        ptr::copy_nonoverlapping(value.as_ptr(), key.add(key_bytes), value.len());
    }
}

/// A stand-in for a node's bytes in the loom model: any function of key and value will do.
#[cfg(loom)]
pub(super) fn witness_of(key: &[u8], value: &[u8]) -> u64 {
    key.iter()
        .chain(value)
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

/// A linked node, borrowed for as long as the list is.
#[derive(Clone, Copy)]
pub(crate) struct NodeRef<'a> {
    /// Points at an initialised node (the head or a published arena node); carries the
    /// provenance of the whole allocation, so the tower and bytes behind the header are
    /// reachable through it.
    pub(super) ptr: NonNull<Node>,
    /// The borrow of the list (which keeps the node alive) this reference lives within.
    _list: PhantomData<&'a ()>,
}

// SAFETY: a `NodeRef` is a shared reference to a node in disguise: its header, key and value
// are immutable once published, and its tower is made of atomics. Sharing or sending it
// between threads is as sound as sharing `&Node` (which is `Sync`: `u32`s and atomics).
unsafe impl Send for NodeRef<'_> {}
// SAFETY: as for `Send`, above.
unsafe impl Sync for NodeRef<'_> {}

impl<'a> NodeRef<'a> {
    /// # Safety
    /// `ptr` must point at a node that is published (or is the head) and outlives `'a`.
    pub(super) unsafe fn new(ptr: NonNull<Node>) -> NodeRef<'a> {
        NodeRef {
            ptr,
            _list: PhantomData,
        }
    }

    fn header(self) -> &'a Node {
        // SAFETY: the node is initialised and published (`NodeRef::new`'s contract), its header
        // is never written again, and the list keeps it alive for `'a`.
        unsafe { self.ptr.as_ref() }
    }

    fn height(self) -> usize {
        self.header().height as usize
    }

    pub(super) fn link(self, level: usize) -> &'a AtomicPtr<Node> {
        assert!(level < self.height(), "level {level} above a node's tower");
        // SAFETY: the tower holds `height` initialised atomics at `TOWER_OFFSET` of the same
        // allocation (`SkipList::insert`, or the `Head` layout asserted above), `level` is
        // below `height`, and `ptr` carries the provenance of the whole allocation.
        unsafe {
            &*self
                .ptr
                .as_ptr()
                .cast::<u8>()
                .add(TOWER_OFFSET + level * LINK_BYTES)
                .cast::<AtomicPtr<Node>>()
        }
    }

    /// The successor at `level`, loaded with `Acquire` (see the protocol).
    pub(crate) fn next(self, level: usize) -> Option<NodeRef<'a>> {
        let next = NonNull::new(self.link(level).load(Ordering::Acquire))?;
        // SAFETY: a non-null link points at a node that was initialised before it was linked
        // (with `Release`; this load is `Acquire`), and nodes live as long as the list.
        Some(unsafe { NodeRef::new(next) })
    }

    /// The successor at `level` as the writer sees it: only the writer stores links, so its
    /// own view is current without synchronisation. `_writer` proves the lock is held.
    pub(super) fn writer_next(self, level: usize, _writer: &Writer) -> Option<NodeRef<'a>> {
        let next = NonNull::new(writer_load(self.link(level)))?;
        // SAFETY: a non-null link points at a node the writer (this thread, or an earlier
        // holder of the writer lock, which happens-before us) initialised before linking it;
        // nodes live as long as the list.
        Some(unsafe { NodeRef::new(next) })
    }

    fn bytes(self, offset: usize, len: usize) -> &'a [u8] {
        // SAFETY: `offset..offset + len` lies within the node's allocation (callers pass the
        // key or value span computed from the header), those bytes were written before the
        // node was published and are never written again, and they live as long as the list.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>().add(offset).cast_const(), len)
        }
    }

    fn key_offset(self) -> usize {
        TOWER_OFFSET + self.height() * LINK_BYTES
    }

    /// The node's internal key bytes (empty for the head).
    pub(crate) fn key_bytes(self) -> &'a [u8] {
        self.bytes(self.key_offset(), self.header().key_bytes as usize)
    }

    /// The node's internal key. Not for the head.
    pub(crate) fn key(self) -> InternalKey<'a> {
        let bytes = self.key_bytes();
        debug_assert!(InternalKey::from_bytes(bytes).is_some());
        // Every inserted key is valid; an invalid one would be a bug in `insert`.
        InternalKey::from_bytes(bytes).unwrap_or_else(|| unreachable!("invalid internal key"))
    }

    /// The node's value (empty for deletions and the head).
    pub(crate) fn value(self) -> &'a [u8] {
        let header = self.header();
        self.bytes(
            self.key_offset() + header.key_bytes as usize,
            header.value_bytes as usize,
        )
    }

    /// Checks, in the loom model, that the node's bytes happen-before this read.
    #[cfg(all(loom, test))]
    pub(crate) fn check_witness(self) {
        let seen = self.header().witness.with(|w| {
            // SAFETY: a shared read of a cell that is written only at node creation; loom
            // itself checks that the creation happens-before this access.
            unsafe { *w }
        });
        assert_eq!(seen, witness_of(self.key_bytes(), self.value()));
    }
}

/// Loads a link on the writer's side (see [`NodeRef::writer_next`]).
#[cfg(not(loom))]
pub(super) fn writer_load(link: &AtomicPtr<Node>) -> *mut Node {
    link.load(Ordering::Relaxed)
}

/// Loads a link on the writer's side. loom's `unsync_load` states what the production
/// `Relaxed` load relies on (no other thread stores links) and loom checks it. It also keeps
/// the writer's reads out of loom's dependency tracking, which remembers only the last access
/// to an object: a writer's load just before its store would otherwise hide a reader's
/// earlier load from the store, and the model would miss the interleavings that matter.
#[cfg(loom)]
pub(super) fn writer_load(link: &AtomicPtr<Node>) -> *mut Node {
    // SAFETY: only the holder of the writer lock stores links, and every store by an
    // earlier holder happens-before this one's loads (through the lock), so no store races
    // with this load — which loom verifies.
    unsafe { link.unsync_load() }
}
