//! Errors of building and reading tables. Operating errors are values; misuse that the
//! type system cannot stop (a cursor read while not valid) is an assertion instead.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// An error from building or reading an SSTable.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TableError {
    /// An operating-system I/O error (errno preserved: ENOSPC stays ENOSPC). After one,
    /// a [`super::TableBuilder`] refuses further work: the table must be discarded.
    Io {
        /// What the table code was doing.
        context: String,
        /// The OS error (shared so that the error stays `Clone`).
        source: Arc<io::Error>,
    },
    /// Damaged data: the file, and the offset of the block or footer that failed
    /// verification (or of the first byte that is missing).
    Corruption {
        /// The damaged file, as named by the caller that opened it.
        file: PathBuf,
        /// Byte offset within the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The table was written by a newer format version than this reader knows.
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version in its footer.
        version: u32,
    },
    /// The table was written with another key order than the reader asked for.
    ComparatorMismatch {
        /// The file.
        file: PathBuf,
        /// The comparator the caller asked for.
        expected: &'static str,
        /// The comparator recorded in the table.
        found: String,
    },
    /// A key was added that does not sort strictly after the previous one.
    OutOfOrder {
        /// Zero-based index of the offending entry.
        entry: u64,
    },
    /// A key that the table's comparator cannot order (for internal keys: no trailer).
    InvalidKey {
        /// Zero-based index of the offending entry.
        entry: u64,
        /// Why.
        reason: &'static str,
    },
    /// A key, value or table beyond the bounds of [`super::limits`].
    TooLarge {
        /// What was too large (`"key"`, `"value"`, `"entries"`).
        what: &'static str,
        /// The size given.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An option is out of range; names the option.
    InvalidOption {
        /// The option's name.
        field: &'static str,
        /// What is accepted.
        message: String,
    },
}

impl TableError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> TableError {
        TableError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// The byte offset of the damage, for `Corruption` errors.
    pub fn corruption_offset(&self) -> Option<u64> {
        match self {
            TableError::Corruption { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::Io { context, source } => write!(f, "{context}: {source}"),
            TableError::Corruption {
                file,
                offset,
                reason,
            } => write!(
                f,
                "{}: corruption at byte {offset}: {reason}",
                file.display()
            ),
            TableError::UnsupportedVersion { file, version } => write!(
                f,
                "{}: table format version {version} is newer than this reader",
                file.display()
            ),
            TableError::ComparatorMismatch {
                file,
                expected,
                found,
            } => write!(
                f,
                "{}: table ordered by {found:?}, expected {expected:?}",
                file.display()
            ),
            TableError::OutOfOrder { entry } => {
                write!(f, "entry {entry}: key does not sort after the previous key")
            }
            TableError::InvalidKey { entry, reason } => write!(f, "entry {entry}: {reason}"),
            TableError::TooLarge { what, size, limit } => {
                write!(f, "{what} too large: {size} (limit {limit})")
            }
            TableError::InvalidOption { field, message } => write!(f, "{field}: {message}"),
        }
    }
}

impl std::error::Error for TableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TableError::Io { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
