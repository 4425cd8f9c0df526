//! Directory entries that no `sync_dir` made durable, for
//! [`FaultConfig::lose_unsynced_dir_ops`](super::FaultConfig::lose_unsynced_dir_ops).
//!
//! A file's creation, removal or rename changes its directory, and on Linux that change is
//! durable only after an fsync of the directory: after a power cut a file created (even with
//! its data synced) may be missing, a removed file may be back, and a rename may be undone.
//! When the option is on, every such operation is logged per directory; `sync_dir` clears its
//! directory's log; a crash undoes the logged operations of every directory, newest first.
//!
//! Undoing needs the replaced or removed files: before a rename replaces a file, and before a
//! file is removed, it gets a hard link (a "keeper") under a hidden name in the same
//! directory, which `list_dir` does not show. A keeper is removed when its operation becomes
//! durable or is undone. Only operations within one directory are modelled (a rename across
//! directories is logged under the destination's directory).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The prefix of keeper names; `list_dir` hides names that start with it.
pub(super) const KEEPER_PREFIX: &str = ".faultvfs-keeper-";

/// One directory operation that is not durable yet.
#[derive(Debug)]
pub(super) enum DirOp {
    /// A file created at `path` (it did not exist before).
    Created { path: PathBuf },
    /// A file removed from `path`, kept at `keeper`.
    Removed { path: PathBuf, keeper: PathBuf },
    /// A rename; the file it replaced at `to` (if any) is kept at `keeper`.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        keeper: Option<PathBuf>,
    },
}

impl DirOp {
    /// The directory whose sync makes the operation durable.
    fn dir(&self) -> &Path {
        let p = match self {
            DirOp::Created { path } | DirOp::Removed { path, .. } => path,
            DirOp::Renamed { to, .. } => to,
        };
        p.parent().unwrap_or_else(|| Path::new("."))
    }

    fn keeper(&self) -> Option<&Path> {
        match self {
            DirOp::Created { .. } => None,
            DirOp::Removed { keeper, .. } => Some(keeper),
            DirOp::Renamed { keeper, .. } => keeper.as_deref(),
        }
    }
}

/// The log of operations not made durable, in the order they happened.
#[derive(Debug, Default)]
pub(super) struct DirLog {
    ops: Vec<DirOp>,
    next_keeper: AtomicU64,
}

impl DirLog {
    /// Links `path` (an existing file) to a new keeper name in its directory.
    pub(super) fn keep(&self, path: &Path) -> io::Result<PathBuf> {
        let n = self.next_keeper.fetch_add(1, Ordering::Relaxed);
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let keeper = dir.join(format!("{KEEPER_PREFIX}{}-{n}", std::process::id()));
        std::fs::hard_link(path, &keeper)?;
        Ok(keeper)
    }

    pub(super) fn push(&mut self, op: DirOp) {
        self.ops.push(op);
    }

    /// `dir` was synced: its operations are durable (their keepers go).
    pub(super) fn synced(&mut self, dir: &Path) {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let dir = canonical(dir);
        self.ops.retain(|op| {
            if canonical(op.dir()) != dir {
                return true;
            }
            if let Some(k) = op.keeper() {
                let _ = std::fs::remove_file(k);
            }
            false
        });
    }

    /// A crash: undoes every logged operation, newest first. Returns how many were undone.
    pub(super) fn undo_all(&mut self) -> io::Result<usize> {
        let n = self.ops.len();
        while let Some(op) = self.ops.pop() {
            match op {
                DirOp::Created { path } => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                },
                DirOp::Removed { path, keeper } => std::fs::rename(&keeper, &path)?,
                DirOp::Renamed { from, to, keeper } => {
                    std::fs::rename(&to, &from)?;
                    if let Some(k) = keeper {
                        std::fs::rename(&k, &to)?;
                    }
                }
            }
        }
        Ok(n)
    }
}
