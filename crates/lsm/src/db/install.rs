//! Recording a flush's or compaction's result in the manifest and publishing its version.
//!
//! Installing a result, and what a failure leaves (see [`install()`]):
//!
//! - before the manifest append (directory fsync, opening the outputs, a fresh manifest
//!   that could not be created): nothing names the outputs; they are removed and the job
//!   fails (a flush keeps its memtable and is retried).
//! - the append itself: the write or its fdatasync failed, but the record may be on disk
//!   and a recovery may read it. The job fails without publishing, yet nothing the edit
//!   names may go: the outputs are kept in limbo (`ManifestCore::limbo`) and the inputs stay
//!   live. The next install first starts a fresh manifest (its snapshot does not name the
//!   limbo files); once CURRENT names it durably, the limbo files are removed. A crash
//!   before that leaves them to the orphan sweep at open, or to the recovered manifest.
//! - after the append returned `Ok` (the manifest rewrite at `manifest_rewrite_bytes`): the
//!   edit is durable, so the job succeeded. A failed rewrite may have left CURRENT naming
//!   either manifest, so the old one is not appended to again: the next install starts a
//!   fresh manifest first (`ManifestCore::fresh_needed`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::state::{Inner, ManifestCore};
use super::version::{Mem, SuperVersion, TableHandle, TreeId, Version};
use super::DbError;
use crate::failpoint::failpoint;
use crate::manifest::{self, VersionEdit};

/// A failed install, and whether its edit may have reached the manifest (a failed append:
/// the write or its fdatasync failed, yet the record may be on disk and recovered).
pub(super) struct InstallError {
    pub(super) error: DbError,
    pub(super) maybe_recorded: bool,
}

impl InstallError {
    pub(super) fn not_recorded(error: DbError) -> InstallError {
        InstallError {
            error,
            maybe_recorded: false,
        }
    }
}

/// Continues in a fresh manifest holding `m.state` (manifest lock held). Once it is durable
/// and named by CURRENT no recovery reads the old manifest, so the limbo files — named only
/// by a record of the old one — are removed. On failure the next install tries again.
///
/// `version` is the fresh manifest's format version: at least what `m.state` needs, and
/// [`manifest::MANIFEST_VERSION`] when an edit of the stream tree is to follow.
pub(super) fn start_fresh_manifest(
    inner: &Inner,
    m: &mut ManifestCore,
    version: u32,
) -> Result<(), DbError> {
    m.fresh_needed = true;
    let number = m.state.next_file_number;
    m.state.next_file_number += 1;
    let version = version.max(m.state.format_version());
    m.writer = manifest::ManifestWriter::create_version(
        inner.vfs.clone(),
        &inner.dir,
        number,
        &m.state,
        version,
    )?;
    m.fresh_needed = false;
    for n in m.limbo.drain(..) {
        // Best effort: one left behind is an orphan that the next open removes.
        let _ = inner
            .vfs
            .remove_file(&inner.dir.join(manifest::table_file_name(n)));
    }
    Ok(())
}

/// Records `edit` in the manifest, then publishes the version it describes. `flushed`
/// is the immutable memtable the edit flushed (removed from the super version).
///
/// Once the append returned `Ok` the edit is durable and this succeeds: a failure of the
/// rewrite that may follow only makes the next install start a fresh manifest.
pub(super) fn install(
    inner: &Inner,
    edit: &mut VersionEdit,
    added: Vec<Arc<TableHandle>>,
    flushed: Option<&Arc<Mem>>,
) -> Result<(), InstallError> {
    let mut guard = inner.manifest.lock().unwrap_or_else(|e| e.into_inner());
    let m = &mut *guard;
    edit.last_seq = Some(inner.visible_seq.load(Ordering::Acquire));
    // An edit of the stream tree needs a version-2 manifest (a build before streams must
    // refuse the database by its version, not misread it).
    let version = if edit.has_stream_tree() {
        manifest::MANIFEST_VERSION
    } else {
        manifest::MANIFEST_VERSION_MIN
    };
    if m.writer.failed() || m.fresh_needed || m.writer.version() < version {
        // The last append failed (its record may or may not be on disk), or a rewrite
        // failed (CURRENT may name either manifest): appending to this manifest could be
        // lost or could resurrect that record later. Continue in a fresh one. (Or the
        // manifest's version cannot hold the edit.)
        start_fresh_manifest(inner, m, version).map_err(InstallError::not_recorded)?;
    }
    edit.next_file_number = Some(m.state.next_file_number);
    let mut next = m.state.clone();
    next.apply(edit).map_err(|reason| {
        InstallError::not_recorded(DbError::Corruption {
            file: inner.dir.clone(),
            offset: 0,
            reason: format!("a version edit does not apply: {reason}"),
        })
    })?;
    failpoint("manifest.before_append");
    if let Err(e) = m.writer.append(edit) {
        // A latched writer means a write or fdatasync failed: the record may be on disk
        // (fdatasync failed after the bytes reached the device), so whatever it names must
        // stay. An unlatched error (an edit over the size limit) wrote nothing.
        return Err(InstallError {
            maybe_recorded: m.writer.failed(),
            error: e.into(),
        });
    }
    failpoint("manifest.after_append");
    m.state = next;
    let mut obsolete: Vec<Arc<TableHandle>> = Vec::new();
    {
        let mut sv = inner.sv.write().unwrap_or_else(|e| e.into_inner());
        let mut v: Version = (*sv.version).clone();
        let deleted = [
            (TreeId::State, &edit.deleted),
            (TreeId::Streams, &edit.streams.deleted),
        ];
        for (tree, dels) in deleted {
            for (level, number) in dels {
                let l = &mut v.tree_mut(tree)[*level as usize];
                if let Some(i) = l.iter().position(|t| t.meta.number == *number) {
                    obsolete.push(l.remove(i));
                }
            }
        }
        // `added` holds the handles of both trees' added files, matched by number.
        let mut handles: std::collections::HashMap<u64, Arc<TableHandle>> =
            added.into_iter().map(|t| (t.meta.number, t)).collect();
        let adds = [
            (TreeId::State, &edit.added),
            (TreeId::Streams, &edit.streams.added),
        ];
        for (tree, adds) in adds {
            for (level, meta) in adds {
                if let Some(t) = handles.remove(&meta.number) {
                    v.tree_mut(tree)[*level as usize].push(t);
                }
            }
        }
        debug_assert!(handles.is_empty(), "a handle without an added file");
        v.sort();
        let imm = match flushed {
            Some(f) => sv
                .imm
                .iter()
                .filter(|x| !Arc::ptr_eq(x, f))
                .cloned()
                .collect(),
            None => sv.imm.clone(),
        };
        *sv = Arc::new(SuperVersion {
            mem: sv.mem.clone(),
            imm,
            version: Arc::new(v),
        });
    }
    for t in obsolete {
        t.obsolete.store(true, Ordering::Release);
    }
    // Keep the manifest short: rewrite it as one snapshot edit once it grows. The edit is
    // durable already, so a failure here (e.g. ENOSPC) fails nothing: `fresh_needed` stays
    // set and the next install retries before it appends.
    if m.writer.file_bytes() > inner.opts.manifest_rewrite_bytes {
        let version = m.writer.version();
        let _ = start_fresh_manifest(inner, m, version);
    }
    drop(guard);
    inner.update_stall();
    Ok(())
}
