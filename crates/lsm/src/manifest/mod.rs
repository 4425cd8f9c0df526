//! The MANIFEST: an append-only log of version edits (tables added to and removed from
//! levels, the flushed sequence number, the next file number), and CURRENT, which names the
//! live manifest and is switched atomically (write a temporary file, fdatasync, rename over
//! CURRENT, fsync the directory).
//!
//! ```text
//! MANIFEST-NNNNNN:
//! +----------------------+------------------+------------------+----------+
//! | "URDBMAN1"  8 bytes  | version u32 LE   | crc32c u32 LE of | records… |
//! |                      | (1)              | the 12 before    |          |
//! +----------------------+------------------+------------------+----------+
//! record:
//! +--------------+-----------------------------------+---------------------+
//! | len u32 LE   | crc u32 LE = crc32c(len LE ++ pl) | payload (len bytes) |
//! +--------------+-----------------------------------+---------------------+
//! payload: one version edit, a sequence of tagged fields (tag u8, then varints and
//! length-prefixed byte strings):
//!   1 comparator        varint len, bytes
//!   2 flushed seq       varint
//!   3 next file number  varint
//!   4 last seq          varint
//!   5 deleted table     varint level, varint number
//!   6 added table       varint level, number, file bytes, entries, smallest seq,
//!                       largest seq; varint len + smallest key; varint len + largest key
//!   7 compact pointer   varint level, varint len + internal key
//! An unknown tag is corruption (a newer writer), never skipped.
//!
//! CURRENT: "MANIFEST-NNNNNN\n".
//! ```
//!
//! A new manifest starts with one edit holding the whole state ([`ManifestState::snapshot_edit`]).
//! Each [`ManifestWriter::append`] is fdatasync'ed before it returns, so at most the last
//! record can be incomplete after a crash: a final record that runs past the end of the file
//! or fails its checksum, with no valid record after it, is a torn tail and is cut (it was
//! never acknowledged). Any other damage — a bad header, a bad record followed by a valid
//! one, an edit that does not decode or apply, a CURRENT that is malformed or names a
//! missing file — is [`ManifestError::Corruption`] naming the file and byte offset.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uringdb_uring::{OpenMode, Vfs};

/// Number of levels of the tree.
pub const NUM_LEVELS: usize = 7;

const MAGIC: &[u8; 8] = b"URDBMAN1";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 16;
const RECORD_HEADER_BYTES: usize = 8;
/// Largest edit accepted when reading (a length above it is damage).
const RECORD_BYTES_MAX: usize = 256 << 20;

const TAG_COMPARATOR: u8 = 1;
const TAG_FLUSHED_SEQ: u8 = 2;
const TAG_NEXT_FILE: u8 = 3;
const TAG_LAST_SEQ: u8 = 4;
const TAG_DELETED: u8 = 5;
const TAG_ADDED: u8 = 6;
const TAG_COMPACT_POINTER: u8 = 7;

/// A table file as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// File number; the file is [`table_file_name`]`(number)`.
    pub number: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Smallest internal key.
    pub smallest: Vec<u8>,
    /// Largest internal key.
    pub largest: Vec<u8>,
    /// Entries in the table.
    pub entries: u64,
    /// Smallest sequence number in the table.
    pub smallest_seq: u64,
    /// Largest sequence number in the table.
    pub largest_seq: u64,
}

/// A change to the set of tables and counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// The key order (recorded once, checked at every open).
    pub comparator: Option<String>,
    /// Every log record with a sequence number at or below this is in tables.
    pub flushed_seq: Option<u64>,
    /// The next file number to use.
    pub next_file_number: Option<u64>,
    /// The last sequence number applied when the edit was made.
    pub last_seq: Option<u64>,
    /// Tables removed: (level, file number).
    pub deleted: Vec<(u32, u64)>,
    /// Tables added: (level, table).
    pub added: Vec<(u32, FileMeta)>,
    /// Where the next compaction of a level starts: (level, internal key).
    pub compact_pointers: Vec<(u32, Vec<u8>)>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.at).ok_or("truncated varint")?;
            self.at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.varint()? as usize;
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or("byte string runs past the edit")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn level(&mut self) -> Result<u32, String> {
        let l = self.varint()?;
        if l as usize >= NUM_LEVELS {
            return Err(format!("level {l} out of range"));
        }
        Ok(l as u32)
    }
}

impl VersionEdit {
    /// Appends the encoded edit to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(c) = &self.comparator {
            out.push(TAG_COMPARATOR);
            put_bytes(out, c.as_bytes());
        }
        for (tag, v) in [
            (TAG_FLUSHED_SEQ, self.flushed_seq),
            (TAG_NEXT_FILE, self.next_file_number),
            (TAG_LAST_SEQ, self.last_seq),
        ] {
            if let Some(v) = v {
                out.push(tag);
                put_varint(out, v);
            }
        }
        for &(level, number) in &self.deleted {
            out.push(TAG_DELETED);
            put_varint(out, u64::from(level));
            put_varint(out, number);
        }
        for (level, f) in &self.added {
            out.push(TAG_ADDED);
            put_varint(out, u64::from(*level));
            for v in [
                f.number,
                f.file_bytes,
                f.entries,
                f.smallest_seq,
                f.largest_seq,
            ] {
                put_varint(out, v);
            }
            put_bytes(out, &f.smallest);
            put_bytes(out, &f.largest);
        }
        for (level, key) in &self.compact_pointers {
            out.push(TAG_COMPACT_POINTER);
            put_varint(out, u64::from(*level));
            put_bytes(out, key);
        }
    }

    /// Decodes an edit; the error says what is malformed.
    pub fn decode(bytes: &[u8]) -> Result<VersionEdit, String> {
        let mut r = Reader { b: bytes, at: 0 };
        let mut e = VersionEdit::default();
        while r.at < bytes.len() {
            let tag = bytes[r.at];
            r.at += 1;
            match tag {
                TAG_COMPARATOR => {
                    let c = r.bytes()?;
                    e.comparator = Some(
                        String::from_utf8(c.to_vec())
                            .map_err(|_| "comparator name is not UTF-8")?,
                    );
                }
                TAG_FLUSHED_SEQ => e.flushed_seq = Some(r.varint()?),
                TAG_NEXT_FILE => e.next_file_number = Some(r.varint()?),
                TAG_LAST_SEQ => e.last_seq = Some(r.varint()?),
                TAG_DELETED => {
                    let level = r.level()?;
                    e.deleted.push((level, r.varint()?));
                }
                TAG_ADDED => {
                    let level = r.level()?;
                    let number = r.varint()?;
                    let file_bytes = r.varint()?;
                    let entries = r.varint()?;
                    let smallest_seq = r.varint()?;
                    let largest_seq = r.varint()?;
                    let smallest = r.bytes()?.to_vec();
                    let largest = r.bytes()?.to_vec();
                    e.added.push((
                        level,
                        FileMeta {
                            number,
                            file_bytes,
                            smallest,
                            largest,
                            entries,
                            smallest_seq,
                            largest_seq,
                        },
                    ));
                }
                TAG_COMPACT_POINTER => {
                    let level = r.level()?;
                    e.compact_pointers.push((level, r.bytes()?.to_vec()));
                }
                other => return Err(format!("unknown field tag {other} at byte {}", r.at - 1)),
            }
        }
        Ok(e)
    }
}

/// The state a manifest describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestState {
    /// Tables per level ([`NUM_LEVELS`] entries), in the order they were added.
    pub levels: Vec<Vec<FileMeta>>,
    /// The next file number (tables and manifests share the numbering).
    pub next_file_number: u64,
    /// Every log record at or below this is in tables.
    pub flushed_seq: u64,
    /// Last sequence number recorded.
    pub last_seq: u64,
    /// The key order.
    pub comparator: String,
    /// Per level, where the next compaction starts (empty: the beginning).
    pub compact_pointers: Vec<Vec<u8>>,
}

impl ManifestState {
    /// An empty database's state.
    pub fn new(comparator: &str) -> ManifestState {
        ManifestState {
            levels: vec![Vec::new(); NUM_LEVELS],
            next_file_number: 1,
            flushed_seq: 0,
            last_seq: 0,
            comparator: comparator.to_string(),
            compact_pointers: vec![Vec::new(); NUM_LEVELS],
        }
    }

    /// Applies `edit`; refuses edits that contradict the state (nothing is changed then).
    pub fn apply(&mut self, edit: &VersionEdit) -> Result<(), String> {
        let mut next = self.clone();
        if let Some(c) = &edit.comparator {
            if *c != next.comparator {
                return Err(format!(
                    "the manifest was written with comparator {c}, not {}",
                    next.comparator
                ));
            }
        }
        for &(level, number) in &edit.deleted {
            let l = next
                .levels
                .get_mut(level as usize)
                .ok_or_else(|| format!("level {level} out of range"))?;
            let i = l
                .iter()
                .position(|f| f.number == number)
                .ok_or_else(|| format!("deletes table {number} which is not in level {level}"))?;
            l.remove(i);
        }
        for (level, f) in &edit.added {
            if next.levels.iter().flatten().any(|g| g.number == f.number) {
                return Err(format!("adds table {} twice", f.number));
            }
            next.levels
                .get_mut(*level as usize)
                .ok_or_else(|| format!("level {level} out of range"))?
                .push(f.clone());
        }
        for (level, key) in &edit.compact_pointers {
            *next
                .compact_pointers
                .get_mut(*level as usize)
                .ok_or_else(|| format!("level {level} out of range"))? = key.clone();
        }
        if let Some(v) = edit.flushed_seq {
            next.flushed_seq = v;
        }
        if let Some(v) = edit.next_file_number {
            next.next_file_number = v;
        }
        if let Some(v) = edit.last_seq {
            next.last_seq = v;
        }
        *self = next;
        Ok(())
    }

    /// One edit that recreates this state from an empty one.
    pub fn snapshot_edit(&self) -> VersionEdit {
        VersionEdit {
            comparator: Some(self.comparator.clone()),
            flushed_seq: Some(self.flushed_seq),
            next_file_number: Some(self.next_file_number),
            last_seq: Some(self.last_seq),
            deleted: Vec::new(),
            added: self
                .levels
                .iter()
                .enumerate()
                .flat_map(|(l, fs)| fs.iter().map(move |f| (l as u32, f.clone())))
                .collect(),
            compact_pointers: self
                .compact_pointers
                .iter()
                .enumerate()
                .filter(|(_, k)| !k.is_empty())
                .map(|(l, k)| (l as u32, k.clone()))
                .collect(),
        }
    }

    /// File numbers of every live table.
    pub fn live_files(&self) -> Vec<u64> {
        self.levels.iter().flatten().map(|f| f.number).collect()
    }
}

/// An error reading or writing the manifest.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ManifestError {
    /// An OS error (errno preserved).
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: Arc<io::Error>,
    },
    /// Damage: the file and the byte offset of the damaged header, record or content.
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset within it.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
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
                "corruption in {} at offset {offset}: {reason}",
                file.display()
            ),
        }
    }
}

impl std::error::Error for ManifestError {}

fn io_err(context: String, e: io::Error) -> ManifestError {
    ManifestError::Io {
        context,
        source: Arc::new(e),
    }
}

/// The file name of table `number`.
pub fn table_file_name(number: u64) -> String {
    format!("{number:06}.sst")
}

/// The file name of manifest `number`.
pub fn manifest_file_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

fn header() -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn record_header(payload: &[u8]) -> [u8; RECORD_HEADER_BYTES] {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    let mut h = [0u8; RECORD_HEADER_BYTES];
    h[..4].copy_from_slice(&len);
    h[4..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends edits to one manifest file.
pub struct ManifestWriter {
    file: Arc<dyn uringdb_uring::File>,
    path: PathBuf,
    number: u64,
    offset: u64,
    failed: bool,
}

impl fmt::Debug for ManifestWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestWriter")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .finish()
    }
}

impl ManifestWriter {
    /// Writes a new manifest holding `state`, makes it durable, switches CURRENT to it, and
    /// removes older manifests (best effort).
    pub fn create(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        number: u64,
        state: &ManifestState,
    ) -> Result<ManifestWriter, ManifestError> {
        let name = manifest_file_name(number);
        let path = dir.join(&name);
        // A leftover from a crash before CURRENT named it is garbage.
        let _ = vfs.remove_file(&path);
        let file = vfs
            .open(&path, OpenMode::CreateNew)
            .map_err(|e| io_err(format!("creating {}", path.display()), e))?;
        let mut payload = Vec::new();
        state.snapshot_edit().encode(&mut payload);
        let h = header();
        let rh = record_header(&payload);
        file.write_at(0, &[&h, &rh, &payload], true)
            .map_err(|e| io_err(format!("writing {}", path.display()), e))?;
        let offset = (HEADER_BYTES + RECORD_HEADER_BYTES + payload.len()) as u64;
        // Switch CURRENT atomically.
        let tmp = dir.join(format!("CURRENT.{number:06}.tmp"));
        let _ = vfs.remove_file(&tmp);
        let t = vfs
            .open(&tmp, OpenMode::CreateNew)
            .map_err(|e| io_err(format!("creating {}", tmp.display()), e))?;
        let content = format!("{name}\n");
        t.write_at(0, &[content.as_bytes()], true)
            .map_err(|e| io_err(format!("writing {}", tmp.display()), e))?;
        drop(t);
        crate::db::failpoint("manifest.before_current");
        vfs.rename(&tmp, &dir.join("CURRENT"))
            .map_err(|e| io_err(format!("renaming {} to CURRENT", tmp.display()), e))?;
        vfs.sync_dir(dir)
            .map_err(|e| io_err(format!("syncing {}", dir.display()), e))?;
        // Older manifests and stray temporary files are garbage now.
        if let Ok(names) = vfs.list_dir(dir) {
            for n in names {
                let old_manifest = n.starts_with("MANIFEST-") && n != name;
                let stray_tmp = n.starts_with("CURRENT.") && n.ends_with(".tmp");
                if old_manifest || stray_tmp {
                    let _ = vfs.remove_file(&dir.join(&n));
                }
            }
        }
        Ok(ManifestWriter {
            file,
            path,
            number,
            offset,
            failed: false,
        })
    }

    /// Appends `edit` and fdatasyncs; durable when this returns `Ok`. After an error the
    /// writer refuses further edits ([`ManifestWriter::failed`]): start a new manifest.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<(), ManifestError> {
        if self.failed {
            return Err(io_err(
                format!("appending to {}", self.path.display()),
                io::Error::other("an earlier append to this manifest failed"),
            ));
        }
        let mut payload = Vec::new();
        edit.encode(&mut payload);
        let rh = record_header(&payload);
        match self.file.write_at(self.offset, &[&rh, &payload], true) {
            Ok(_) => {
                self.offset += (RECORD_HEADER_BYTES + payload.len()) as u64;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(io_err(
                    format!(
                        "appending to {} at offset {}",
                        self.path.display(),
                        self.offset
                    ),
                    e,
                ))
            }
        }
    }

    /// Whether an append failed (the file may hold a partial record at its end).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Bytes written.
    pub fn file_bytes(&self) -> u64 {
        self.offset
    }

    /// This manifest's number.
    pub fn number(&self) -> u64 {
        self.number
    }
}

/// What [`recover`] read.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The state.
    pub state: ManifestState,
    /// The manifest's number.
    pub manifest_number: u64,
    /// Its path.
    pub manifest_path: PathBuf,
    /// Edits replayed.
    pub edits: u64,
    /// Bytes of a torn final record ignored.
    pub torn_tail_bytes: u64,
}

fn read_all(vfs: &dyn Vfs, path: &Path) -> Result<Option<Vec<u8>>, ManifestError> {
    let file = match vfs.open(path, OpenMode::ReadOnly) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(format!("opening {}", path.display()), e)),
    };
    let len = file
        .len()
        .map_err(|e| io_err(format!("reading {}", path.display()), e))?;
    let mut buf = vec![0u8; len as usize];
    let mut done = 0;
    while done < buf.len() {
        let n = file
            .read_at(done as u64, &mut buf[done..])
            .map_err(|e| io_err(format!("reading {}", path.display()), e))?;
        if n == 0 {
            buf.truncate(done);
            break;
        }
        done += n;
    }
    Ok(Some(buf))
}

/// Whether a valid record starts anywhere in `b` at or after `from`.
fn valid_record_after(b: &[u8], from: usize) -> bool {
    (from..b.len().saturating_sub(RECORD_HEADER_BYTES)).any(|p| {
        let len = u32::from_le_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]) as usize;
        let crc = u32::from_le_bytes([b[p + 4], b[p + 5], b[p + 6], b[p + 7]]);
        let end = p + RECORD_HEADER_BYTES + len;
        len > 0
            && end <= b.len()
            && crc
                == crc32c::crc32c_append(
                    crc32c::crc32c(&b[p..p + 4]),
                    &b[p + RECORD_HEADER_BYTES..end],
                )
    })
}

/// Reads CURRENT and replays the manifest it names. `Ok(None)`: no database here yet.
pub fn recover(
    vfs: &dyn Vfs,
    dir: &Path,
    comparator: &str,
) -> Result<Option<Recovered>, ManifestError> {
    let current = dir.join("CURRENT");
    let corrupt = |file: &Path, offset: u64, reason: String| ManifestError::Corruption {
        file: file.to_path_buf(),
        offset,
        reason,
    };
    let Some(cur) = read_all(vfs, &current)? else {
        let names = vfs
            .list_dir(dir)
            .map_err(|e| io_err(format!("listing {}", dir.display()), e))?;
        if names.iter().any(|n| n.starts_with("MANIFEST-")) {
            return Err(corrupt(
                &current,
                0,
                "CURRENT is missing but manifest files exist".into(),
            ));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&cur).map_err(|_| corrupt(&current, 0, "not UTF-8".into()))?;
    let name = text
        .strip_suffix('\n')
        .filter(|n| {
            n.strip_prefix("MANIFEST-")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
        })
        .ok_or_else(|| {
            corrupt(
                &current,
                0,
                format!("expected \"MANIFEST-<number>\\n\", found {:?}", text),
            )
        })?;
    let number: u64 = name["MANIFEST-".len()..]
        .parse()
        .map_err(|_| corrupt(&current, 0, "manifest number out of range".into()))?;
    let path = dir.join(name);
    let b = read_all(vfs, &path)?.ok_or_else(|| {
        corrupt(
            &current,
            0,
            format!("CURRENT names {name}, which does not exist"),
        )
    })?;
    if b.len() < HEADER_BYTES || b[..HEADER_BYTES] != header() {
        return Err(corrupt(
            &path,
            0,
            "bad manifest header (magic, version or checksum)".into(),
        ));
    }
    let mut state = ManifestState::new(comparator);
    let mut at = HEADER_BYTES;
    let mut edits = 0u64;
    let mut torn = 0u64;
    while at < b.len() {
        let rest = &b[at..];
        let torn_here = |reason: &str| -> Result<u64, ManifestError> {
            if valid_record_after(&b, at + 1) {
                Err(corrupt(&path, at as u64, reason.to_string()))
            } else {
                Ok((b.len() - at) as u64)
            }
        };
        if rest.len() < RECORD_HEADER_BYTES {
            torn = torn_here("truncated record header")?;
            break;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > RECORD_BYTES_MAX || RECORD_HEADER_BYTES + len > rest.len() {
            torn = torn_here("record length runs past the end of the file")?;
            break;
        }
        let payload = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len];
        if crc != crc32c::crc32c_append(crc32c::crc32c(&rest[..4]), payload) {
            torn = torn_here("record checksum mismatch")?;
            break;
        }
        let edit = VersionEdit::decode(payload)
            .map_err(|r| corrupt(&path, at as u64, format!("malformed version edit: {r}")))?;
        if edits == 0 && edit.comparator.is_none() {
            return Err(corrupt(
                &path,
                at as u64,
                "the first edit does not record the comparator".into(),
            ));
        }
        state.apply(&edit).map_err(|r| {
            corrupt(
                &path,
                at as u64,
                format!("version edit does not apply: {r}"),
            )
        })?;
        edits += 1;
        at += RECORD_HEADER_BYTES + len;
    }
    if edits == 0 {
        return Err(corrupt(
            &path,
            HEADER_BYTES as u64,
            "the manifest holds no edit".into(),
        ));
    }
    if state.next_file_number <= number {
        state.next_file_number = number + 1;
    }
    Ok(Some(Recovered {
        state,
        manifest_number: number,
        manifest_path: path,
        edits,
        torn_tail_bytes: torn,
    }))
}
