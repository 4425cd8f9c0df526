//! The memtable: an ordered, arena-backed map of internal keys, written by one thread and
//! read by many without locks.
//!
//! * `arena`: the bounded bump arena all entries live in ("full" is back-pressure).
//! * Keys are internal keys ([`crate::internal_key::InternalKey`]): user key + 8-byte trailer
//!   (sequence number and kind), newest first; the encoding is shared with the tables.
//! * `skiplist`: the skiplist in the arena and its publication protocol (one writer, lock-free
//!   readers; model-checked with loom).
//! * [`MemTable`]: puts, deletes, reads at a snapshot, and the internal-entry iterator.
//! * [`VisibleIter`]: the user-level view at a snapshot, both directions.

mod arena;
mod error;
#[allow(
    clippy::module_inception,
    reason = "one concept per file: the MemTable type's file is named after it"
)]
mod memtable;
mod skiplist;
mod sync;
mod visible;

pub use arena::{ArenaFull, ARENA_CHUNK_BYTES_DEFAULT};
pub use error::WriteError;
pub use memtable::{Entry, Iter, Lookup, MemTable, MemTableOptions};
pub use visible::VisibleIter;
