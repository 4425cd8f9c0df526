//! [`ManifestError`]: the errors of writing and recovering the manifest.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An error from the manifest or CURRENT.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ManifestError {
    /// An operating-system I/O error (errno preserved: ENOSPC stays ENOSPC). After one, a
    /// [`super::ManifestWriter`] refuses further appends.
    Io {
        /// What the manifest code was doing (names the file).
        context: String,
        /// The OS error (shared so that the error stays `Clone`).
        source: Arc<io::Error>,
    },
    /// Damaged or inconsistent data: the file and the byte offset of the damage.
    Corruption {
        /// The damaged file (the manifest, or `CURRENT`).
        file: PathBuf,
        /// Byte offset within the file: the start of the damaged header field or record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl ManifestError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ManifestError {
        ManifestError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn corruption(file: &Path, offset: u64, reason: impl Into<String>) -> ManifestError {
        ManifestError::Corruption {
            file: file.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// The byte offset of the damage, for `Corruption` errors.
    pub fn corruption_offset(&self) -> Option<u64> {
        match self {
            ManifestError::Corruption { offset, .. } => Some(*offset),
            ManifestError::Io { .. } => None,
        }
    }

    /// The OS error number behind an `Io` error (e.g. `libc::ENOSPC`).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            ManifestError::Io { source, .. } => source.raw_os_error(),
            ManifestError::Corruption { .. } => None,
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Io { context, source } => write!(f, "{context}: {source}"),
            ManifestError::Corruption {
                file,
                offset,
                reason,
            } => write!(
                f,
                "{}: corruption at byte {offset}: {reason}",
                file.display()
            ),
        }
    }
}

impl std::error::Error for ManifestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManifestError::Io { source, .. } => Some(source.as_ref()),
            ManifestError::Corruption { .. } => None,
        }
    }
}
