//! [`WriteError`]: the one error a memtable write returns. It has its own file so that the
//! skiplist (which raises it) and the memtable API (which returns it) both depend on it
//! without depending on each other.

use std::fmt;

use super::arena::ArenaFull;

/// A write the memtable refused. The memtable is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The arena cannot hold the entry: rotate to a fresh memtable and retry there.
    Full(ArenaFull),
    /// The key or value is longer than a memtable entry can record (`u32::MAX` bytes).
    TooLarge {
        /// Length of the user key.
        key_bytes: usize,
        /// Length of the value.
        value_bytes: usize,
    },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Full(full) => full.fmt(f),
            WriteError::TooLarge {
                key_bytes,
                value_bytes,
            } => write!(
                f,
                "memtable entry too large: {key_bytes}-byte key, {value_bytes}-byte value"
            ),
        }
    }
}

impl std::error::Error for WriteError {}
