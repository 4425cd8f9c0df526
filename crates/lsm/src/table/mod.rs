//! SSTables (in progress).

pub(crate) mod block;
pub(crate) mod coding;
pub mod comparator;
pub(crate) mod filter;
pub mod internal_key;
pub mod limits;
pub(crate) mod trailer;

pub use comparator::Comparator;
pub use trailer::Compression;
