//! The memtable: an ordered, arena-backed map of internal keys, written by one thread and
//! read by many without locks.
//!
//! * [`arena`]: the bounded bump arena all entries live in ("full" is back-pressure).
//! * `skiplist`: the lock-free-for-readers skiplist and its publication protocol.
//! * [`MemTable`]: puts, deletes, snapshot reads and iterators over it.

pub mod arena;
mod sync;

pub use arena::{Arena, ArenaFull, ARENA_CHUNK_BYTES_DEFAULT};
