//! SSTables: immutable, sorted files of key/value entries, written once by a flush or a
//! compaction and then only read. This module is the one home of the table format; each
//! part has its own file with its byte layout drawn:
//!
//! - `block.rs`: data blocks — prefix-compressed entries, restart points;
//!   the index and metaindex blocks use the same format;
//! - `trailer.rs`: how every block is stored — payload, compression type, crc32c;
//! - `filter.rs`: the per-table bloom filter;
//! - `index.rs`: block handles and the index block;
//! - `properties.rs`: the metaindex block (table properties);
//! - `footer.rs`: the fixed-size footer;
//! - [`Comparator`]: the key orders a table may hold, bytewise or by internal key
//!   ([`crate::internal_key`], the encoding shared with the memtable);
//! - [`TableBuilder`] (`builder.rs`) writes a table, [`Table`] (`reader.rs`) reads it,
//!   [`TableIter`] (`iter.rs`) walks it, from a [`ReadAt`] source (`read_at.rs`): a file
//!   read with `pread`, or a [`Mapping`] of it (`mapping.rs`), whose uncompressed blocks
//!   are borrowed where they lie.
//!
//! Fixed-width integers are little-endian everywhere in the file (internal key trailers,
//! which are big-endian so that they compare bytewise, are part of the keys, not of the
//! format); variable-length integers are LEB128 varints.
//!
//! ```text
//! offset 0
//! [data block 0][trailer]          entries in key order, each block ~block_bytes before
//! [data block 1][trailer]          compression; trailer = type u8 + crc32c u32
//! ...
//! [data block N-1][trailer]
//! [filter block][trailer]          bloom filter over all keys (absent if disabled)
//! [index block][trailer]           separator key -> data block handle, one per block
//! [metaindex block][trailer]       named properties (comparator, counts, key range)
//! [footer: 64 bytes]               handles of metaindex, index, filter; version; crc; magic
//! end of file
//! ```
//!
//! A reader needs the file's size (from the manifest, or the file system): it reads the
//! footer from the end, then the metaindex, index and filter blocks, and after that one
//! data block per point lookup. Every block is verified against its checksum whenever it
//! is read from the file (a block cache holds only blocks that passed); any damage is a [`TableError::Corruption`] naming the file and the offset of the
//! block or footer that failed. Fixtures of each released version are kept in
//! `crates/lsm/tests/fixtures/` and read by the tests, so later versions prove they still
//! read them.

mod block;
mod builder;
mod coding;
mod comparator;
mod error;
mod filter;
mod footer;
/// Entry points for the fuzz harness (`crates/fuzz`); not part of the API.
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod iter;
pub mod limits;
mod mapping;
mod properties;
mod read_at;
mod reader;
mod trailer;

pub use builder::{TableBuilder, TableOptions};
pub use comparator::Comparator;
pub use error::TableError;
pub use footer::{FOOTER_BYTES, FORMAT_VERSION, TABLE_MAGIC};
pub use iter::TableIter;
pub use mapping::Mapping;
pub use properties::TableProperties;
pub use read_at::ReadAt;
pub use reader::{OwnedEntry, Region, RegionKind, Table};
pub use trailer::Compression;
