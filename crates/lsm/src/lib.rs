//! uringdb's LSM tree: the memtable, the SSTable format, the manifest, the block cache,
//! and the database that ties them to the write-ahead log (flush, compaction, snapshots,
//! iterators). Nothing here knows about JavaScript.
#![deny(missing_docs)]

pub mod cache;
pub mod db;
mod failpoint;
pub mod internal_key;
pub mod limits;
pub mod manifest;
pub mod memtable;
pub mod table;
