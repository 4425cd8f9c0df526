//! Retention: which sealed segments the writer deletes, by total bytes, age and file count.
//! The active segment is never deleted. A segment's age is the time since its file was
//! last modified (when its last block was written). Deleting the oldest segments leaves the
//! store's sequence numbers starting later; readers that hold a deleted file open finish
//! reading it (the file lives until closed) and continue with the next one.

use std::path::Path;
use std::time::{Duration, SystemTime};

use uringdb_uring::Vfs;

use crate::error::SinkError;
use crate::segment::list_segments;

/// Retention limits; `None` is no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many bytes of segment files (`retention.maxBytes`), the active
    /// one included.
    pub max_bytes: Option<u64>,
    /// Delete sealed segments last written longer ago (`retention.maxAgeMs`).
    pub max_age: Option<Duration>,
    /// Keep at most this many segment files (`retention.maxFiles`), the active one included.
    pub max_files: Option<u64>,
}

impl Retention {
    /// Whether any limit is set.
    pub fn active(&self) -> bool {
        self.max_bytes.is_some() || self.max_age.is_some() || self.max_files.is_some()
    }
}

/// What one pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Segment files deleted.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Deletes the oldest sealed segments of `dir` (all but `active`) while a limit is exceeded.
pub(crate) fn apply(
    vfs: &dyn Vfs,
    dir: &Path,
    active: u64,
    r: &Retention,
    now: SystemTime,
) -> Result<Removed, SinkError> {
    let segs = list_segments(vfs, dir)?;
    let mut sizes = Vec::with_capacity(segs.len());
    for (index, path) in &segs {
        let meta = std::fs::metadata(path)
            .map_err(|e| SinkError::io(format!("reading the size of {}", path.display()), e))?;
        let age = now
            .duration_since(meta.modified().unwrap_or(now))
            .unwrap_or_default();
        sizes.push((*index, path.clone(), meta.len(), age));
    }
    let mut total: u64 = sizes.iter().map(|s| s.2).sum();
    let mut files = sizes.len() as u64;
    let mut removed = Removed::default();
    for (index, path, len, age) in sizes {
        if index >= active {
            break;
        }
        let over = r.max_bytes.is_some_and(|m| total > m)
            || r.max_files.is_some_and(|m| files > m)
            || r.max_age.is_some_and(|m| age > m);
        if !over {
            break;
        }
        vfs.remove_file(&path)
            .map_err(|e| SinkError::io(format!("removing {}", path.display()), e))?;
        total -= len;
        files -= 1;
        removed.segments += 1;
        removed.bytes += len;
    }
    if removed.segments > 0 {
        vfs.sync_dir(dir)
            .map_err(|e| SinkError::io(format!("syncing {}", dir.display()), e))?;
    }
    Ok(removed)
}
