//! SSTables (in progress).

pub(crate) mod block;
pub(crate) mod coding;
pub mod comparator;
pub mod internal_key;
pub mod limits;

pub use comparator::Comparator;
