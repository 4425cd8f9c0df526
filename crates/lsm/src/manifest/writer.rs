//! [`ManifestWriter`]: creates a manifest (snapshot record, then the CURRENT switch) and
//! appends edits to it, each durable before `append` returns.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uringdb_uring::{File, OpenMode, Vfs};

use super::current::{self, CURRENT_FILE_BYTES_MAX, CURRENT_FILE_NAME};
use super::edit::VersionEdit;
use super::error::ManifestError;
use super::format::{
    encode_header, encode_record_header, MANIFEST_HEADER_BYTES, MANIFEST_VERSION,
    RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX,
};
use super::names::{manifest_file_name, parse_manifest_file_name};
use super::recover::read_whole;
use super::state::ManifestState;

/// Appends edits to the live manifest.
///
/// Threading: one writer per database, used by one thread at a time (`&mut self`); the
/// database holds it under the same lock as its [`ManifestState`].
///
/// Failure: after a failed write or fdatasync the bytes on disk are unknown, so the writer
/// latches the error and refuses every later append (it never retries an fsync). The caller
/// continues in a fresh manifest ([`ManifestWriter::create`] with a new number) or reopens.
pub struct ManifestWriter {
    file: Arc<dyn File>,
    path: PathBuf,
    number: u64,
    /// The header's format version: 2 if the manifest may hold stream-tree fields.
    version: u32,
    /// Bytes written and synced: where the next record goes.
    file_bytes: u64,
    /// The first write or sync error; set, it fails every later append.
    failed: Option<Arc<io::Error>>,
    /// Reused encoding buffer.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for ManifestWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestWriter")
            .field("path", &self.path)
            .field("file_bytes", &self.file_bytes)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

fn invalid_input(context: String, message: String) -> ManifestError {
    ManifestError::io(
        context,
        io::Error::new(io::ErrorKind::InvalidInput, message),
    )
}

impl ManifestWriter {
    /// Writes a new `MANIFEST-<number>` holding `state.snapshot_edit()` and fdatasyncs it,
    /// then switches `CURRENT` to it atomically (`CURRENT.<number>.tmp`, fdatasync,
    /// directory fsync, rename over `CURRENT`, directory fsync), then removes every other
    /// manifest and stray `CURRENT.*.tmp` (best effort: one left behind is removed by the
    /// next `create`).
    ///
    /// `number` must come from `state.next_file_number` *before* it was incremented, so
    /// `state.next_file_number > number`; a stale file of that name (from a `create` that a
    /// crash interrupted before the switch) is overwritten.
    ///
    /// # Errors
    /// - `Io` with the operation's errno;
    /// - `Io` of kind `InvalidInput` when `state.next_file_number <= number`, when `number`
    ///   is the manifest `CURRENT` names (overwriting it would destroy the live manifest),
    ///   or when `state` does not survive its own replay (a level index out of range, a
    ///   duplicate file number: recovery would reject the manifest).
    ///
    /// On an error before the rename, `CURRENT` still names the old manifest and the new
    /// file is removed (best effort); after it, `CURRENT` may name either, both complete.
    pub fn create(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        number: u64,
        state: &ManifestState,
    ) -> Result<ManifestWriter, ManifestError> {
        Self::create_version(vfs, dir, number, state, state.format_version())
    }

    /// [`ManifestWriter::create`] at format `version`, which must be at least
    /// `state.format_version()` (2 lets the manifest take edits of the stream tree while
    /// its snapshot has no stream-tree table yet).
    pub fn create_version(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        number: u64,
        state: &ManifestState,
        version: u32,
    ) -> Result<ManifestWriter, ManifestError> {
        let path = dir.join(manifest_file_name(number));
        let context = || format!("creating {}", path.display());
        if version < state.format_version() || version > MANIFEST_VERSION {
            return Err(invalid_input(
                context(),
                format!(
                    "format version {version} cannot hold this state (it needs {} to \
                     {MANIFEST_VERSION})",
                    state.format_version()
                ),
            ));
        }
        if state.next_file_number <= number {
            return Err(invalid_input(
                context(),
                format!(
                    "the state's next_file_number ({}) must exceed the manifest's number \
                     ({number}), which was allocated from it",
                    state.next_file_number
                ),
            ));
        }
        let current_path = dir.join(CURRENT_FILE_NAME);
        if let Some(bytes) = read_whole(&*vfs, &current_path, CURRENT_FILE_BYTES_MAX)? {
            // A damaged CURRENT is about to be replaced; only a valid one naming `number`
            // stops us.
            if current::parse_current(&bytes) == Ok(number) {
                return Err(invalid_input(
                    context(),
                    "CURRENT names this manifest: refusing to overwrite the live manifest".into(),
                ));
            }
        }
        let snapshot = state.snapshot_edit();
        let mut check = ManifestState::new(&state.comparator);
        check.apply(&snapshot).map_err(|reason| {
            invalid_input(
                context(),
                format!("the state would not recover from its own snapshot: {reason}"),
            )
        })?;
        let mut payload = Vec::new();
        snapshot.encode(&mut payload);
        if payload.len() > RECORD_PAYLOAD_BYTES_MAX {
            return Err(invalid_input(
                context(),
                format!(
                    "the snapshot record is {} bytes, over the {RECORD_PAYLOAD_BYTES_MAX}-byte limit",
                    payload.len()
                ),
            ));
        }

        let written = (|| {
            // A stale file of this name (checked above: CURRENT does not name it) is
            // removed, never opened — unlinking a planted symbolic link removes the link,
            // not its target — and the manifest is created exclusively.
            let _ = vfs.remove_file(&path);
            let file = vfs
                .open(&path, OpenMode::CreateNew)
                .map_err(|e| ManifestError::io(context(), e))?;
            file.set_len(0)
                .map_err(|e| ManifestError::io(format!("truncating {}", path.display()), e))?;
            let header = encode_header(number, version);
            let record = encode_record_header(&payload);
            file.write_at(0, &[&header, &record, &payload], true)
                .map_err(|e| ManifestError::io(format!("writing {}", path.display()), e))?;
            // The new manifest is durable, CURRENT still names the old one.
            crate::failpoint::failpoint("manifest.written");
            current::switch_current(&vfs, dir, number)?;
            Ok(file)
        })();
        let file = match written {
            Ok(file) => file,
            Err(e) => {
                // Before the rename CURRENT does not name this file; after the rename the
                // only failure left is the final directory fsync, and then it may: keep it.
                let renamed = read_whole(&*vfs, &current_path, CURRENT_FILE_BYTES_MAX)
                    .ok()
                    .flatten()
                    .is_some_and(|b| current::parse_current(&b) == Ok(number));
                if !renamed {
                    let _ = vfs.remove_file(&path);
                }
                return Err(e);
            }
        };

        // CURRENT names the new manifest durably; the old one is still there.
        crate::failpoint::failpoint("manifest.switched");
        remove_obsolete(&*vfs, dir, number);
        Ok(ManifestWriter {
            file,
            path,
            number,
            version,
            file_bytes: (MANIFEST_HEADER_BYTES + RECORD_HEADER_BYTES + payload.len()) as u64,
            failed: None,
            // Not the snapshot's buffer: that may be megabytes, edits are small.
            scratch: Vec::new(),
        })
    }

    /// Appends `edit` as one checksummed record and fdatasyncs it: when this returns `Ok`,
    /// the edit survives a crash. The caller checks that the edit applies (see
    /// [`ManifestState::apply`]) before appending it.
    ///
    /// # Errors
    /// `Io` with the errno of the failed write or sync, and from then on `Io` for every
    /// call (the same error: the writer is failed). `Io` of kind `InvalidInput` (not
    /// latched; nothing was written) when the encoded edit exceeds the record size limit.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<(), ManifestError> {
        if let Some(e) = &self.failed {
            return Err(ManifestError::Io {
                context: format!(
                    "appending to {}: an earlier write or sync failed; reopen the database",
                    self.path.display()
                ),
                source: Arc::clone(e),
            });
        }
        if edit.has_stream_tree() && self.version < MANIFEST_VERSION {
            return Err(invalid_input(
                format!("appending to {}", self.path.display()),
                format!(
                    "the edit changes the stream tree, which a version-{} manifest cannot \
                     hold: continue in a fresh manifest at version {MANIFEST_VERSION}",
                    self.version
                ),
            ));
        }
        self.scratch.clear();
        edit.encode(&mut self.scratch);
        if self.scratch.len() > RECORD_PAYLOAD_BYTES_MAX {
            return Err(invalid_input(
                format!("appending to {}", self.path.display()),
                format!(
                    "the edit is {} bytes, over the {RECORD_PAYLOAD_BYTES_MAX}-byte record limit",
                    self.scratch.len()
                ),
            ));
        }
        let header = encode_record_header(&self.scratch);
        match self
            .file
            .write_at(self.file_bytes, &[&header, &self.scratch], true)
        {
            Ok(_) => {
                self.file_bytes += (RECORD_HEADER_BYTES + self.scratch.len()) as u64;
                Ok(())
            }
            Err(e) => {
                let e = Arc::new(e);
                self.failed = Some(Arc::clone(&e));
                Err(ManifestError::Io {
                    context: format!(
                        "appending {} bytes at offset {} of {}",
                        RECORD_HEADER_BYTES + self.scratch.len(),
                        self.file_bytes,
                        self.path.display()
                    ),
                    source: e,
                })
            }
        }
    }

    /// Whether a write or sync failed: every later append fails. The file may end in a
    /// partial record (recovery cuts it); continue in a fresh manifest (`create`).
    pub fn failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Size of the manifest in bytes (header and every appended record).
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// The manifest's format version (see the module docs of [`super`]).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// This manifest's number (its file is `MANIFEST-<number>`).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// This manifest's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes every manifest but `keep` and every temporary CURRENT. Best effort: an error
/// leaves a file for the next `create`; nothing depends on it being gone.
fn remove_obsolete(vfs: &dyn Vfs, dir: &Path, keep: u64) {
    let Ok(names) = vfs.list_dir(dir) else {
        return;
    };
    for name in names {
        let obsolete = match parse_manifest_file_name(&name) {
            Some(n) => n != keep,
            None => current::is_current_tmp_name(&name),
        };
        if obsolete {
            let _ = vfs.remove_file(&dir.join(&name));
        }
    }
}
