//! Errors of the WAL. Operating errors are values; the binding maps each variant to one
//! stable JavaScript error code in one place.

use std::path::PathBuf;
use std::sync::Arc;

/// An error from the write-ahead log.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WalError {
    /// An operating-system I/O error (errno preserved: ENOSPC stays ENOSPC).
    Io {
        /// What the log was doing.
        context: String,
        /// The OS error (shared: one failure may fail many waiting appends).
        source: Arc<std::io::Error>,
    },
    /// Damaged data: the file and byte offset where it was found.
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage within the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An earlier write or fsync failed; the log refuses writes until it is reopened
    /// (retrying an fsync after a failure can silently lose data, so it never does).
    Failed(Arc<WalError>),
    /// The log is closed (or closing).
    Closed,
    /// Another process holds the directory's LOCK file.
    Locked(PathBuf),
    /// A record (or an atomic batch) is larger than the configured limit.
    TooLarge {
        /// Bytes given.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// An atomic batch is larger than one commit-queue entry may be.
    BatchTooLarge {
        /// Framed bytes of the batch.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// An option is out of range; names the option.
    InvalidOption {
        /// The option's name as the user spells it (camelCase).
        field: &'static str,
        /// What is accepted.
        message: String,
    },
    /// A requested sequence number is no longer in the log (truncated).
    Truncated {
        /// The requested sequence number.
        requested: u64,
        /// The first sequence number still present.
        first: u64,
    },
    /// The requested I/O backend is not available (e.g. io_uring refused by seccomp).
    BackendUnavailable(String),
}

impl WalError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> WalError {
        WalError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// The OS errno, for `Io` errors (and failures caused by one).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            WalError::Io { source, .. } => source.raw_os_error(),
            WalError::Failed(inner) => inner.raw_os_error(),
            _ => None,
        }
    }
}

impl std::fmt::Display for WalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalError::Io { context, source } => write!(f, "{context}: {source}"),
            WalError::Corruption {
                file,
                offset,
                reason,
            } => write!(
                f,
                "corruption in {} at offset {offset}: {reason}",
                file.display()
            ),
            WalError::Failed(inner) => write!(
                f,
                "the log failed earlier and refuses writes until reopened (cause: {inner})"
            ),
            WalError::Closed => write!(f, "the log is closed"),
            WalError::Locked(p) => write!(
                f,
                "{} is locked by another process (only one process may open a log directory)",
                p.display()
            ),
            WalError::TooLarge { bytes, limit } => {
                write!(
                    f,
                    "record of {bytes} bytes exceeds the limit of {limit} bytes"
                )
            }
            WalError::BatchTooLarge { bytes, limit } => write!(
                f,
                "batch of {bytes} bytes (framed) exceeds the limit of {limit} bytes for one atomic batch (half of ringBytes, and what fits in a segment)"
            ),
            WalError::InvalidOption { field, message } => {
                write!(f, "invalid option {field}: {message}")
            }
            WalError::Truncated { requested, first } => write!(
                f,
                "sequence number {requested} was truncated; the log starts at {first}"
            ),
            WalError::BackendUnavailable(why) => write!(f, "io_uring is unavailable: {why}"),
        }
    }
}

impl std::error::Error for WalError {}
