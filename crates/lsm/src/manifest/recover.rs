//! [`recover`]: reads `CURRENT`, replays the manifest it names, cuts a torn tail. The rules
//! are listed in the module documentation of [`super`].

use std::io;
use std::path::{Path, PathBuf};

use uringdb_uring::{OpenMode, Vfs};

use super::current::{parse_current, CURRENT_FILE_BYTES_MAX, CURRENT_FILE_NAME};
use super::edit::VersionEdit;
use super::error::ManifestError;
use super::format::{
    check_header, intact_record_after, intact_record_at, MANIFEST_FILE_BYTES_MAX,
    MANIFEST_HEADER_BYTES, MANIFEST_VERSION, RECORD_HEADER_BYTES,
};
use super::names::{manifest_file_name, parse_manifest_file_name};
use super::state::ManifestState;

/// What [`recover`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The state after replaying every intact record.
    pub state: ManifestState,
    /// The number of the manifest `CURRENT` names.
    pub manifest_number: u64,
    /// Its path.
    pub manifest_path: PathBuf,
    /// Records replayed, the snapshot included.
    pub edits: u64,
    /// Bytes of a torn tail skipped (0 if the manifest ended cleanly): a record whose
    /// `append` never returned, or zeros.
    pub torn_tail_bytes: u64,
}

/// Recovers the manifest state of the database in `dir`, expecting `comparator`.
///
/// `Ok(None)` for a new database: no `CURRENT`, and no manifest recording tables or flushed
/// data (a crash during the first [`super::ManifestWriter::create`] leaves one that records
/// neither). Reads only; the caller writes a fresh manifest with `create` afterwards.
///
/// # Errors
/// `Io` when a read fails; `Corruption` naming the file (`CURRENT` or the manifest) and
/// the offset of the damage, per the rules in the module documentation.
pub fn recover(
    vfs: &dyn Vfs,
    dir: &Path,
    comparator: &str,
) -> Result<Option<Recovered>, ManifestError> {
    let current_path = dir.join(CURRENT_FILE_NAME);
    let Some(current) = read_whole(vfs, &current_path, CURRENT_FILE_BYTES_MAX)? else {
        check_no_lost_manifest(vfs, dir, &current_path, comparator)?;
        return Ok(None);
    };
    let number = parse_current(&current)
        .map_err(|(offset, reason)| ManifestError::corruption(&current_path, offset, reason))?;
    let name = manifest_file_name(number);
    let path = dir.join(&name);
    let Some(bytes) = read_whole(vfs, &path, MANIFEST_FILE_BYTES_MAX)? else {
        return Err(ManifestError::corruption(
            &current_path,
            0,
            format!("CURRENT names {name}, which does not exist"),
        ));
    };
    let r = replay(&bytes, &path, number, comparator, true)?;
    if r.state.next_file_number <= number {
        // `create` refuses such a state: the next table would reuse the manifest's number.
        return Err(ManifestError::corruption(
            &path,
            MANIFEST_HEADER_BYTES as u64,
            format!(
                "next_file_number is {}, not above the manifest's own number {number}",
                r.state.next_file_number
            ),
        ));
    }
    Ok(Some(Recovered {
        state: r.state,
        manifest_number: number,
        manifest_path: path,
        edits: r.edits,
        torn_tail_bytes: r.torn_tail_bytes,
    }))
}

/// Without `CURRENT`: errors (naming `CURRENT`) if some manifest in `dir` records tables or
/// flushed data, i.e. if treating the directory as a new database would lose data.
fn check_no_lost_manifest(
    vfs: &dyn Vfs,
    dir: &Path,
    current_path: &Path,
    comparator: &str,
) -> Result<(), ManifestError> {
    let mut names = match vfs.list_dir(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ManifestError::io(format!("listing {}", dir.display()), e)),
    };
    names.sort();
    for name in names {
        let Some(number) = parse_manifest_file_name(&name) else {
            continue;
        };
        let path = dir.join(&name);
        let Some(bytes) = read_whole(vfs, &path, MANIFEST_FILE_BYTES_MAX)? else {
            continue;
        };
        if bytes.len() < MANIFEST_HEADER_BYTES {
            // The first create crashed before its header was synced.
            continue;
        }
        match replay(&bytes, &path, number, comparator, false) {
            Ok(r) if r.state.file_count() == 0 && r.state.flushed_seq == 0 => {}
            Ok(r) => {
                return Err(ManifestError::corruption(
                    current_path,
                    0,
                    format!(
                        "CURRENT is missing, but {name} records {} tables and data flushed up \
                         to sequence number {}: the pointer to the live manifest was lost",
                        r.state.file_count(),
                        r.state.flushed_seq
                    ),
                ))
            }
            Err(e) => {
                return Err(ManifestError::corruption(
                    current_path,
                    0,
                    format!("CURRENT is missing, and {name} cannot be read to tell whether it was live: {e}"),
                ))
            }
        }
    }
    Ok(())
}

/// A replayed manifest.
struct Replayed {
    state: ManifestState,
    edits: u64,
    torn_tail_bytes: u64,
}

/// Replays manifest `number`, whose whole contents are `file`. With `snapshot_required` (a
/// manifest `CURRENT` names) the first record must be intact.
fn replay(
    file: &[u8],
    path: &Path,
    number: u64,
    comparator: &str,
    snapshot_required: bool,
) -> Result<Replayed, ManifestError> {
    let version = check_header(file, number)
        .map_err(|(offset, reason)| ManifestError::corruption(path, offset, reason))?;
    let mut state = ManifestState::new(comparator);
    let mut at = MANIFEST_HEADER_BYTES;
    let mut edits = 0u64;
    while at < file.len() {
        let Some(payload) = intact_record_at(file, at) else {
            if let Some(next) = intact_record_after(file, at) {
                return Err(ManifestError::corruption(
                    path,
                    at as u64,
                    format!(
                        "damaged record (bad length or checksum) followed by an intact record \
                         at byte {next}"
                    ),
                ));
            }
            break;
        };
        let corrupt = |reason: String| ManifestError::corruption(path, at as u64, reason);
        let edit = VersionEdit::decode(payload)
            .map_err(|e| corrupt(format!("record does not decode: {e}")))?;
        if version < MANIFEST_VERSION && edit.has_stream_tree() {
            return Err(corrupt(format!(
                "a version-{version} manifest holds stream-tree fields (tags 8-10 need \
                 version {MANIFEST_VERSION})"
            )));
        }
        if edits == 0 && edit.comparator.is_none() {
            return Err(corrupt(
                "the first record is not a snapshot (it names no comparator)".into(),
            ));
        }
        state
            .apply(&edit)
            .map_err(|e| corrupt(format!("record does not apply: {e}")))?;
        edits += 1;
        at += RECORD_HEADER_BYTES + payload.len();
    }
    if edits == 0 && snapshot_required {
        return Err(ManifestError::corruption(
            path,
            MANIFEST_HEADER_BYTES as u64,
            "the snapshot record (written and synced before CURRENT named this file) is \
             damaged or missing",
        ));
    }
    Ok(Replayed {
        state,
        edits,
        torn_tail_bytes: (file.len() - at) as u64,
    })
}

/// The whole contents of `path`, or `None` if it does not exist. A file longer than
/// `max_bytes` is corruption (at offset `max_bytes`) rather than an allocation without
/// bound.
pub(crate) fn read_whole(
    vfs: &dyn Vfs,
    path: &Path,
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, ManifestError> {
    let file = match vfs.open(path, OpenMode::ReadOnly) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ManifestError::io(format!("opening {}", path.display()), e)),
    };
    let context = || format!("reading {}", path.display());
    let len = file.len().map_err(|e| ManifestError::io(context(), e))?;
    if len > max_bytes {
        return Err(ManifestError::corruption(
            path,
            max_bytes,
            format!("the file is {len} bytes, over the {max_bytes}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    let mut filled = 0;
    while filled < buf.len() {
        let n = file
            .read_at(filled as u64, &mut buf[filled..])
            .map_err(|e| ManifestError::io(context(), e))?;
        if n == 0 {
            break; // Shrank while we read: what we have is the file.
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(Some(buf))
}
