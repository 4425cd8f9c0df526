//! uringdb's LSM tree (milestone 2, in progress): the in-memory memtable and the on-disk
//! SSTable format. Manifest, compaction and the database that ties them to the write-ahead
//! log come next. Nothing here knows about JavaScript.
#![deny(missing_docs)]

pub mod internal_key;
pub mod memtable;
pub mod table;
