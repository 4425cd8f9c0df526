//! Errors of the key-value database: one enum, wrapping the layers below it so that their
//! detail (errno, file and offset of damage, the option's name) reaches the caller intact.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::manifest::ManifestError;
use crate::table::TableError;
use uringdb_wal::WalError;

/// An error from the key-value database.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DbError {
    /// From the write-ahead log (I/O, corruption, a latched failure, closed, ...).
    Wal(WalError),
    /// From an SSTable (I/O, corruption naming the file and offset, ...).
    Table(TableError),
    /// From the manifest (I/O, corruption naming the file and offset).
    Manifest(ManifestError),
    /// Damage the database itself detected (e.g. the log is behind the manifest).
    Corruption {
        /// The file.
        file: PathBuf,
        /// Byte offset within the file (0 if the whole file is at fault).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An operating-system error outside the log, tables and manifest.
    Io {
        /// What the database was doing.
        context: String,
        /// The OS error (errno preserved).
        source: Arc<std::io::Error>,
    },
    /// A malformed argument (e.g. a key over the size limit).
    InvalidArgument(String),
    /// An option is out of range; names it as the user spells it.
    InvalidOption {
        /// The option's name (camelCase).
        field: &'static str,
        /// What is accepted.
        message: String,
    },
    /// The database is closed (or closing).
    Closed,
    /// A write touches a key that a prepared transaction holds.
    Conflict {
        /// The transaction holding the key.
        txid: String,
        /// The key.
        key: Vec<u8>,
    },
    /// An optimistic transaction's read set was written after its snapshot (a key it read,
    /// or a key inserted into a range it iterated); nothing of it was applied.
    ReadConflict {
        /// The key written since the snapshot (empty if the snapshot was older than what
        /// the database tracked).
        key: Vec<u8>,
    },
    /// `prepare` with a txid that is already prepared (or being prepared).
    TxnExists(String),
    /// `commitPrepared` or `rollbackPrepared` of a txid that is not prepared (or is already
    /// being finished).
    TxnNotFound(String),
    /// A background flush or compaction failed (e.g. the disk filled up); writes are
    /// refused until a retry of it succeeds (the job is retried every 0.5 s, so freeing
    /// space resumes writes). Reads still work.
    Background(Arc<DbError>),
}

impl DbError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> DbError {
        DbError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// The OS error number behind this error, if any (e.g. `libc::ENOSPC`).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            DbError::Wal(WalError::Io { source, .. }) => source.raw_os_error(),
            DbError::Wal(WalError::Failed(inner)) => DbError::Wal((**inner).clone()).raw_os_error(),
            DbError::Table(TableError::Io { source, .. }) => source.raw_os_error(),
            DbError::Manifest(ManifestError::Io { source, .. }) => source.raw_os_error(),
            DbError::Io { source, .. } => source.raw_os_error(),
            DbError::Background(inner) => inner.raw_os_error(),
            _ => None,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Wal(e) => e.fmt(f),
            DbError::Table(e) => e.fmt(f),
            DbError::Manifest(e) => e.fmt(f),
            DbError::Corruption {
                file,
                offset,
                reason,
            } => write!(
                f,
                "corruption in {} at offset {offset}: {reason}",
                file.display()
            ),
            DbError::Io { context, source } => write!(f, "{context}: {source}"),
            DbError::InvalidArgument(m) => f.write_str(m),
            DbError::InvalidOption { field, message } => {
                write!(f, "invalid option {field}: {message}")
            }
            DbError::Closed => f.write_str("the database is closed"),
            DbError::Conflict { txid, key } => write!(
                f,
                "the key {} is locked by the prepared transaction {txid:?}",
                String::from_utf8_lossy(key)
            ),
            DbError::ReadConflict { key } => write!(
                f,
                "the transaction read {} and it was written after its snapshot",
                String::from_utf8_lossy(key)
            ),
            DbError::TxnExists(t) => write!(f, "txid {t:?} is already prepared"),
            DbError::TxnNotFound(t) => write!(
                f,
                "txid {t:?} is not a prepared transaction (unknown, finished or being finished, or its prepare has not been handed to the log yet)"
            ),
            DbError::Background(e) => write!(
                f,
                "a background flush or compaction failed; writes are refused until a retry (every 0.5 s) succeeds, e.g. once space is freed: {e}"
            ),
        }
    }
}

impl std::error::Error for DbError {}

impl From<WalError> for DbError {
    fn from(e: WalError) -> Self {
        DbError::Wal(e)
    }
}

impl From<TableError> for DbError {
    fn from(e: TableError) -> Self {
        DbError::Table(e)
    }
}

impl From<ManifestError> for DbError {
    fn from(e: ManifestError) -> Self {
        DbError::Manifest(e)
    }
}
