//! `CURRENT`: the pointer to the live manifest, `MANIFEST-<number>\n`, and its atomic
//! replacement (temporary file, fdatasync, directory fsync, rename, directory fsync).

use std::path::Path;
use std::sync::Arc;

use uringdb_uring::{OpenMode, Vfs};

use super::error::ManifestError;
use super::names::{manifest_file_name, parse_manifest_file_name};

/// The file naming the live manifest.
pub const CURRENT_FILE_NAME: &str = "CURRENT";

/// Largest `CURRENT` recovery reads: `MANIFEST-` + 20 digits + newline is 30 bytes.
pub(crate) const CURRENT_FILE_BYTES_MAX: u64 = 64;

const PREFIX: &[u8] = b"MANIFEST-";

/// The temporary file that becomes `CURRENT` for manifest `number`.
pub(crate) fn current_tmp_name(number: u64) -> String {
    format!("{CURRENT_FILE_NAME}.{number}.tmp")
}

/// Whether `name` is a temporary CURRENT (any number): left behind by a crash, removable.
pub(crate) fn is_current_tmp_name(name: &str) -> bool {
    name.strip_prefix("CURRENT.")
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some()
}

/// The contents of `CURRENT` naming manifest `number`.
pub(crate) fn current_contents(number: u64) -> String {
    format!("{}\n", manifest_file_name(number))
}

/// Parses the contents of `CURRENT`: the manifest number, or the offset of the first bad
/// byte and what is wrong.
pub(crate) fn parse_current(bytes: &[u8]) -> Result<u64, (u64, String)> {
    if bytes.is_empty() {
        return Err((0, "CURRENT is empty".into()));
    }
    let newline = bytes.iter().position(|&b| b == b'\n');
    let name = match newline {
        None => {
            return Err((
                bytes.len() as u64,
                format!(
                    "CURRENT ({:?}) does not end with a newline (a torn write?)",
                    String::from_utf8_lossy(bytes)
                ),
            ))
        }
        Some(n) if n + 1 != bytes.len() => {
            return Err((
                n as u64 + 1,
                format!(
                    "CURRENT has {} bytes after its newline",
                    bytes.len() - n - 1
                ),
            ))
        }
        Some(n) => &bytes[..n],
    };
    if let Some(number) = std::str::from_utf8(name)
        .ok()
        .and_then(parse_manifest_file_name)
    {
        return Ok(number);
    }
    // Point at the first byte that cannot belong to a manifest name.
    let offset = match name.iter().zip(PREFIX).position(|(a, b)| a != b) {
        Some(i) => i,
        None if name.len() < PREFIX.len() => name.len(),
        None => name[PREFIX.len()..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(PREFIX.len(), |i| PREFIX.len() + i),
    };
    Err((
        offset as u64,
        format!(
            "CURRENT holds {:?}, not a manifest name (MANIFEST- and at least six digits)",
            String::from_utf8_lossy(name)
        ),
    ))
}

/// Points `CURRENT` at manifest `number`, atomically: writes and fdatasyncs
/// `CURRENT.<number>.tmp`, fsyncs `dir` (the caller's new manifest and the temporary file
/// are then durable entries), renames it over `CURRENT` and fsyncs `dir` again. On an error
/// before the rename the temporary file is removed (best effort) and `CURRENT` is
/// unchanged; on an error of the last fsync, `CURRENT` may name either manifest.
pub(crate) fn switch_current(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    number: u64,
) -> Result<(), ManifestError> {
    let tmp = dir.join(current_tmp_name(number));
    let current = dir.join(CURRENT_FILE_NAME);
    let before_rename = (|| {
        // A stale temporary (a crash before its rename, or anything planted under its name,
        // a symbolic link included) is removed, never opened: unlinking a link removes the
        // link, not its target. The new one is created exclusively (O_EXCL, O_NOFOLLOW).
        let _ = vfs.remove_file(&tmp);
        let f = vfs
            .open(&tmp, OpenMode::CreateNew)
            .map_err(|e| ManifestError::io(format!("creating {}", tmp.display()), e))?;
        f.set_len(0)
            .map_err(|e| ManifestError::io(format!("truncating {}", tmp.display()), e))?;
        f.write_at(0, &[current_contents(number).as_bytes()], true)
            .map_err(|e| ManifestError::io(format!("writing {}", tmp.display()), e))?;
        vfs.sync_dir(dir)
            .map_err(|e| ManifestError::io(format!("syncing directory {}", dir.display()), e))?;
        // The database's crash tests can abort the process here (`URINGDB_FAILPOINT`).
        crate::failpoint::failpoint("manifest.before_current");
        vfs.rename(&tmp, &current).map_err(|e| {
            ManifestError::io(
                format!("renaming {} to {}", tmp.display(), current.display()),
                e,
            )
        })
    })();
    if let Err(e) = before_rename {
        let _ = vfs.remove_file(&tmp);
        return Err(e);
    }
    // Renamed, the directory not yet fsynced: a kill -9 here leaves the rename in the
    // kernel (CURRENT names the new manifest), a power cut may undo it.
    crate::failpoint::failpoint("manifest.after_current");
    vfs.sync_dir(dir)
        .map_err(|e| ManifestError::io(format!("syncing directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_round_trip() {
        for n in [1, 7, 999_999, 1_000_000, u64::MAX] {
            assert_eq!(parse_current(current_contents(n).as_bytes()), Ok(n));
        }
        assert_eq!(current_tmp_name(7), "CURRENT.7.tmp");
        assert!(is_current_tmp_name("CURRENT.7.tmp"));
        assert!(is_current_tmp_name("CURRENT..tmp"));
        assert!(!is_current_tmp_name("CURRENT"));
        assert!(!is_current_tmp_name("CURRENT.7"));
        assert!(!is_current_tmp_name("MANIFEST-000007"));
    }

    #[test]
    fn bad_contents_name_the_first_bad_byte() {
        for (bytes, offset, needle) in [
            (&b""[..], 0, "empty"),
            (b"MANIFEST-000007", 15, "newline"),
            (b"MANIFEST-000007\n\n", 16, "after its newline"),
            (b"MANIFEST-000007\nx", 16, "after its newline"),
            (b"MANIFEST-00x007\n", 11, "not a manifest name"),
            (b"MANIFEST-7\n", 9, "not a manifest name"),
            (b"MANIFEST-\n", 9, "not a manifest name"),
            (b"MANIFOLD-000007\n", 5, "not a manifest name"),
            (b"MANI\n", 4, "not a manifest name"),
            (b"\n", 0, "not a manifest name"),
            (b"MANIFEST-000007\r\n", 15, "not a manifest name"),
            (b"MANIFEST-\xff00007\n", 9, "not a manifest name"),
        ] {
            let (at, reason) = parse_current(bytes).unwrap_err();
            assert_eq!(at, offset, "{bytes:?}: {reason}");
            assert!(reason.contains(needle), "{bytes:?}: {reason}");
        }
    }
}
