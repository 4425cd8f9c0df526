//! The sink's one error type.

use std::path::PathBuf;
use std::sync::Arc;

/// Errors of the log sink and its readers. Operating errors are values; after a failed
/// write or fdatasync the sink stays failed (it never retries an fsync and pretends).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SinkError {
    /// An option is out of range; `field` is its name as the user writes it.
    InvalidOption {
        /// The option's name.
        field: &'static str,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// An I/O call failed (the errno is kept in `source`).
    Io {
        /// What was being done, with the file.
        context: String,
        /// The operating-system error.
        source: Arc<std::io::Error>,
    },
    /// Stored bytes do not check.
    Corruption {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the damaged block or header in that file.
        offset: u64,
        /// What does not check.
        message: String,
    },
    /// An earlier write or fdatasync failed (the first error inside); the sink is latched
    /// failed until reopened.
    Failed(Box<SinkError>),
    /// The writer thread panicked (a bug); the sink is failed.
    Panicked(String),
    /// The sink is closed.
    Closed,
    /// A line is longer than the ring accepts.
    LineTooLong {
        /// The line's bytes.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Another sink (usually another process) holds the directory's lock.
    Locked(PathBuf),
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkError::InvalidOption { field, message } => {
                write!(f, "invalid option {field}: {message}")
            }
            SinkError::Io { context, source } => write!(f, "{context}: {source}"),
            SinkError::Corruption {
                file,
                offset,
                message,
            } => {
                write!(
                    f,
                    "corruption in {} at offset {offset}: {message}",
                    file.display()
                )
            }
            SinkError::Failed(e) => {
                write!(f, "the log sink failed earlier and must be reopened: {e}")
            }
            SinkError::Panicked(m) => write!(f, "the log sink's writer thread panicked: {m}"),
            SinkError::Closed => write!(f, "the log sink is closed"),
            SinkError::LineTooLong { bytes, max } => {
                write!(
                    f,
                    "a line of {bytes} bytes exceeds the limit of {max} bytes (ringBytes / 2)"
                )
            }
            SinkError::Locked(dir) => write!(f, "{} is locked by another log sink", dir.display()),
        }
    }
}

impl std::error::Error for SinkError {}

impl SinkError {
    /// The errno of an I/O error, if any (so ENOSPC stays ENOSPC).
    pub fn errno(&self) -> Option<i32> {
        match self {
            SinkError::Io { source, .. } => source.raw_os_error(),
            SinkError::Failed(e) => e.errno(),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, e: std::io::Error) -> SinkError {
        SinkError::Io {
            context: context.into(),
            source: Arc::new(e),
        }
    }
}
