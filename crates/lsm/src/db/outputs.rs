//! Writing the tables of a flush or compaction, and which entries they leave out.
//!
//! Dropping versions: for each user key, entries arrive newest first. An entry is dropped
//! when a newer entry of the same key is visible to every snapshot (its sequence number is
//! at or below the smallest live snapshot). A deletion is dropped as well when it is
//! visible to every snapshot and no level below the output holds the key (nothing left to
//! hide).

use std::sync::Arc;

use super::install::{install, InstallError};
use super::open::open_table;
use super::state::Inner;
use super::version::{Mem, TableHandle, TableWriter, TreeId};
use super::DbError;
use crate::failpoint::failpoint;
use crate::internal_key::{self, ValueKind};
use crate::manifest::{self, FileMeta, VersionEdit};
use crate::table::TableBuilder;
use uringdb_uring::OpenMode;

/// Decides, entry by entry in internal-key order, what a flush or compaction keeps.
pub(super) struct Dropper {
    pub(super) smallest_snapshot: u64,
    pub(super) last_user_key: Vec<u8>,
    pub(super) has_last: bool,
    /// Sequence number of the previous entry of the current user key (u64::MAX: none).
    pub(super) last_seq: u64,
    pub(super) last_ikey: Vec<u8>,
}

impl Dropper {
    pub(super) fn new(smallest_snapshot: u64) -> Dropper {
        Dropper {
            smallest_snapshot,
            last_user_key: Vec::new(),
            has_last: false,
            last_seq: u64::MAX,
            last_ikey: Vec::new(),
        }
    }

    /// Whether to drop `ikey`; `base` tells whether no deeper level holds `user_key`.
    pub(super) fn drop_entry(&mut self, ikey: &[u8], base: impl FnOnce(&[u8]) -> bool) -> bool {
        let Some(p) = internal_key::decode(ikey) else {
            return false;
        };
        if self.has_last && self.last_ikey == ikey {
            return true; // the same entry twice (a record replayed into two tables)
        }
        self.last_ikey.clear();
        self.last_ikey.extend_from_slice(ikey);
        if !self.has_last || self.last_user_key != p.user_key {
            self.last_user_key.clear();
            self.last_user_key.extend_from_slice(p.user_key);
            self.has_last = true;
            self.last_seq = u64::MAX;
        }
        let drop = if self.last_seq <= self.smallest_snapshot {
            true
        } else {
            p.kind == ValueKind::Delete && p.seq <= self.smallest_snapshot && base(p.user_key)
        };
        self.last_seq = p.seq;
        drop
    }
}

/// Writes tables from an ordered stream of internal entries, splitting at `target` bytes
/// (only between user keys).
pub(super) struct Outputs<'a> {
    pub(super) inner: &'a Inner,
    /// The tree the tables belong to.
    pub(super) tree: TreeId,
    pub(super) level: usize,
    pub(super) target: u64,
    pub(super) current: Option<Building>,
    pub(super) done: Vec<FileMeta>,
    pub(super) bytes: u64,
}

pub(super) struct Building {
    pub(super) number: u64,
    pub(super) path: std::path::PathBuf,
    /// The file the builder's writer writes (kept to sync it after `finish`).
    pub(super) file: Arc<dyn uringdb_uring::File>,
    pub(super) builder: TableBuilder<TableWriter>,
    pub(super) smallest_seq: u64,
    pub(super) largest_seq: u64,
    pub(super) last_user_key: Vec<u8>,
}

impl<'a> Outputs<'a> {
    pub(super) fn new(inner: &'a Inner, tree: TreeId, level: usize, target: u64) -> Outputs<'a> {
        Outputs {
            inner,
            tree,
            level,
            target,
            current: None,
            done: Vec::new(),
            bytes: 0,
        }
    }

    pub(super) fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<(), DbError> {
        let p = internal_key::decode(ikey).ok_or_else(|| {
            DbError::InvalidArgument("malformed internal key during compaction".into())
        })?;
        if let Some(b) = &self.current {
            let est = b.builder.estimated_bytes();
            if est >= self.target && b.last_user_key != p.user_key {
                self.finish_current()?;
            }
        }
        if self.current.is_none() {
            self.start()?;
        }
        let b = self.current.as_mut().expect("started");
        let path = &b.path;
        b.builder.add(ikey, value).map_err(|e| with_file(e, path))?;
        b.smallest_seq = b.smallest_seq.min(p.seq);
        b.largest_seq = b.largest_seq.max(p.seq);
        b.last_user_key.clear();
        b.last_user_key.extend_from_slice(p.user_key);
        Ok(())
    }

    pub(super) fn start(&mut self) -> Result<(), DbError> {
        let number = {
            let mut m = self
                .inner
                .manifest
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let n = m.state.next_file_number;
            m.state.next_file_number += 1;
            n
        };
        let path = self.inner.dir.join(manifest::table_file_name(number));
        let file = self
            .inner
            .vfs
            .open(&path, OpenMode::CreateNew)
            .map_err(|e| DbError::io(format!("creating {}", path.display()), e))?;
        let writer = TableWriter::new(file.clone(), self.inner.limiter.clone());
        let builder = match TableBuilder::new(writer, self.inner.opts.table_options(self.level)) {
            Ok(b) => b,
            Err(e) => {
                let _ = self.inner.vfs.remove_file(&path);
                return Err(e.into());
            }
        };
        self.current = Some(Building {
            number,
            path,
            file,
            builder,
            smallest_seq: u64::MAX,
            largest_seq: 0,
            last_user_key: Vec::new(),
        });
        Ok(())
    }

    pub(super) fn finish_current(&mut self) -> Result<(), DbError> {
        let Some(b) = self.current.take() else {
            return Ok(());
        };
        let path = b.path.clone();
        let props = match b.builder.finish() {
            Ok(p) => p,
            Err(e) => {
                let _ = self.inner.vfs.remove_file(&path);
                return Err(with_file(e, &path));
            }
        };
        if let Err(e) = b.file.sync_data() {
            let _ = self.inner.vfs.remove_file(&path);
            return Err(DbError::io(format!("syncing {}", path.display()), e));
        }
        self.bytes += props.file_bytes;
        self.done.push(FileMeta {
            number: b.number,
            file_bytes: props.file_bytes,
            smallest: props.smallest_key.clone(),
            largest: props.largest_key.clone(),
            entries: props.entries,
            smallest_seq: b.smallest_seq,
            largest_seq: b.largest_seq,
        });
        Ok(())
    }

    /// Makes the written tables part of the database (see [`install_outputs`]).
    pub(super) fn install(
        &mut self,
        reached: &str,
        edit: VersionEdit,
        flushed: Option<&Arc<Mem>>,
    ) -> Result<(), DbError> {
        install_outputs(&mut [self], reached, edit, flushed)
    }

    /// Removes the files of a job that failed before any edit could name them.
    pub(super) fn abandon(&mut self) {
        if let Some(b) = self.current.take() {
            let _ = self.inner.vfs.remove_file(&b.path);
        }
        for m in &self.done {
            let _ = self
                .inner
                .vfs
                .remove_file(&self.inner.dir.join(manifest::table_file_name(m.number)));
        }
    }
}

/// Makes the tables written by `outs` (of one tree each; a flush has one per tree) part of
/// the database: syncs the directory (their entries must be durable before the manifest
/// names them), opens them, records `edit` — with each one's outputs added at its level in
/// its tree — and publishes the version. `reached` is the failpoint between writing and
/// recording. One edit for all: a flush of both trees is atomic.
///
/// On a failure before the edit could reach the manifest the output files are removed;
/// on a failed append (whose record may be on disk all the same) they are kept in limbo
/// until a fresh manifest supersedes that record (see [`install`]).
pub(super) fn install_outputs(
    outs: &mut [&mut Outputs<'_>],
    reached: &str,
    mut edit: VersionEdit,
    flushed: Option<&Arc<Mem>>,
) -> Result<(), DbError> {
    let Some(inner) = outs.first().map(|o| o.inner) else {
        return Ok(());
    };
    let r = (|| {
        sync_dir(inner).map_err(InstallError::not_recorded)?;
        failpoint(reached);
        let mut added = Vec::new();
        for o in outs.iter() {
            added.extend(open_outputs(inner, &o.done).map_err(InstallError::not_recorded)?);
            let metas = o.done.iter().map(|m| (o.level as u32, m.clone()));
            match o.tree {
                TreeId::State => edit.added.extend(metas),
                TreeId::Streams => edit.streams.added.extend(metas),
            }
        }
        install(inner, &mut edit, added, flushed)
    })();
    match r {
        Ok(()) => Ok(()),
        Err(InstallError {
            error,
            maybe_recorded: false,
        }) => {
            for o in outs.iter_mut() {
                o.abandon();
            }
            Err(error)
        }
        Err(InstallError {
            error,
            maybe_recorded: true,
        }) => {
            let mut m = inner.manifest.lock().unwrap_or_else(|e| e.into_inner());
            for o in outs.iter() {
                m.limbo.extend(o.done.iter().map(|t| t.number));
            }
            Err(error)
        }
    }
}

/// Names the table being written in an I/O error from the table builder (whose own context
/// does not know the file).
pub(super) fn with_file(e: crate::table::TableError, path: &std::path::Path) -> DbError {
    match e {
        crate::table::TableError::Io { context, source } => DbError::Io {
            context: format!("writing table {}: {context}", path.display()),
            source,
        },
        other => DbError::Table(other),
    }
}

pub(super) fn sync_dir(inner: &Inner) -> Result<(), DbError> {
    inner
        .vfs
        .sync_dir(&inner.dir)
        .map_err(|e| DbError::io(format!("syncing {}", inner.dir.display()), e))
}

pub(super) fn open_outputs(
    inner: &Inner,
    metas: &[FileMeta],
) -> Result<Vec<Arc<TableHandle>>, DbError> {
    metas
        .iter()
        .map(|m| open_table(&inner.table_files, &inner.dir, &inner.cache, m.clone()).map(Arc::new))
        .collect()
}
