//! [`VersionEdit`]: one change to the set of tables (the payload of one manifest record),
//! and [`FileMeta`], what the manifest knows of one table. The payload's field table is
//! drawn in the module documentation of [`super`].

use super::format::{get_varint, put_bytes, put_varint};

const TAG_COMPARATOR: u64 = 1;
const TAG_FLUSHED_SEQ: u64 = 2;
const TAG_NEXT_FILE_NUMBER: u64 = 3;
const TAG_LAST_SEQ: u64 = 4;
const TAG_DELETED: u64 = 5;
const TAG_ADDED: u64 = 6;
const TAG_COMPACT_POINTER: u64 = 7;
const TAG_TREE_ADDED: u64 = 8;
const TAG_TREE_DELETED: u64 = 9;
const TAG_TREE_COMPACT_POINTER: u64 = 10;
/// The stream tree's id in tags 8–10 (tree 0, the key-value state, keeps tags 5–7, so a
/// manifest of a database without streams reads in a build before them).
pub(crate) const STREAM_TREE: u64 = 1;

/// What the manifest records about one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// The table's file number; its file is [`super::table_file_name`]`(number)`.
    pub number: u64,
    /// Size of the table file in bytes.
    pub file_bytes: u64,
    /// Smallest internal key in the table (user key + 8-byte trailer). Opaque to the
    /// manifest except for ordering the files of levels >= 1 (by the state's comparator).
    pub smallest: Vec<u8>,
    /// Largest internal key in the table.
    pub largest: Vec<u8>,
    /// Number of entries in the table.
    pub entries: u64,
    /// Smallest sequence number in the table.
    pub smallest_seq: u64,
    /// Largest sequence number in the table (orders level 0, newest first).
    pub largest_seq: u64,
}

/// One change to the [`super::ManifestState`]: every field is optional or may be empty.
/// Applied as: check the comparator, delete files, add files, then set the counters and
/// compaction pointers given (see [`super::ManifestState::apply`] for the rules).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// The comparator's name; must match the state's.
    pub comparator: Option<String>,
    /// Every WAL record with a sequence number `<=` this is in tables.
    pub flushed_seq: Option<u64>,
    /// The next file number to allocate (tables and manifests share the counter).
    pub next_file_number: Option<u64>,
    /// The last sequence number made visible.
    pub last_seq: Option<u64>,
    /// Files removed: (level, file number).
    pub deleted: Vec<(u32, u64)>,
    /// Files added: (level, metadata).
    pub added: Vec<(u32, FileMeta)>,
    /// Per level, the internal key where the next compaction of that level starts; an
    /// empty key clears the level's pointer.
    pub compact_pointers: Vec<(u32, Vec<u8>)>,
    /// The same three changes for the stream tree (tree 1; tags 8–10).
    pub streams: TreeEdit,
}

/// The changes of one edit to the stream tree's tables (see [`VersionEdit`]'s fields of the
/// same names, which are the key-value tree's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeEdit {
    /// Files removed: (level, file number).
    pub deleted: Vec<(u32, u64)>,
    /// Files added: (level, metadata).
    pub added: Vec<(u32, FileMeta)>,
    /// Compaction pointers set (an empty key clears one).
    pub compact_pointers: Vec<(u32, Vec<u8>)>,
}

impl TreeEdit {
    /// Whether the edit changes nothing in the stream tree.
    pub fn is_empty(&self) -> bool {
        self.deleted.is_empty() && self.added.is_empty() && self.compact_pointers.is_empty()
    }
}

fn put_file(out: &mut Vec<u8>, f: &FileMeta) {
    put_varint(out, f.number);
    put_varint(out, f.file_bytes);
    put_bytes(out, &f.smallest);
    put_bytes(out, &f.largest);
    put_varint(out, f.entries);
    put_varint(out, f.smallest_seq);
    put_varint(out, f.largest_seq);
}

impl VersionEdit {
    /// Appends the encoded edit to `out` (fields in tag order).
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(c) = &self.comparator {
            put_varint(out, TAG_COMPARATOR);
            put_bytes(out, c.as_bytes());
        }
        for (tag, value) in [
            (TAG_FLUSHED_SEQ, self.flushed_seq),
            (TAG_NEXT_FILE_NUMBER, self.next_file_number),
            (TAG_LAST_SEQ, self.last_seq),
        ] {
            if let Some(v) = value {
                put_varint(out, tag);
                put_varint(out, v);
            }
        }
        for &(level, number) in &self.deleted {
            put_varint(out, TAG_DELETED);
            put_varint(out, u64::from(level));
            put_varint(out, number);
        }
        for (level, f) in &self.added {
            put_varint(out, TAG_ADDED);
            put_varint(out, u64::from(*level));
            put_file(out, f);
        }
        for (level, key) in &self.compact_pointers {
            put_varint(out, TAG_COMPACT_POINTER);
            put_varint(out, u64::from(*level));
            put_bytes(out, key);
        }
        for (level, f) in &self.streams.added {
            put_varint(out, TAG_TREE_ADDED);
            put_varint(out, STREAM_TREE);
            put_varint(out, u64::from(*level));
            put_file(out, f);
        }
        for &(level, number) in &self.streams.deleted {
            put_varint(out, TAG_TREE_DELETED);
            put_varint(out, STREAM_TREE);
            put_varint(out, u64::from(level));
            put_varint(out, number);
        }
        for (level, key) in &self.streams.compact_pointers {
            put_varint(out, TAG_TREE_COMPACT_POINTER);
            put_varint(out, STREAM_TREE);
            put_varint(out, u64::from(*level));
            put_bytes(out, key);
        }
    }

    /// Whether the edit has a field of the stream tree (tags 8–10: version 2 of the
    /// manifest format).
    pub fn has_stream_tree(&self) -> bool {
        !self.streams.is_empty()
    }

    /// Decodes an edit encoded by [`VersionEdit::encode`]. Truncated or over-long values,
    /// unknown tags, a singular field given twice, a level beyond `u32` and a comparator
    /// name that is not UTF-8 are errors naming the byte offset within `bytes`. Never
    /// panics and never allocates more than `bytes.len()` per value.
    pub fn decode(bytes: &[u8]) -> Result<VersionEdit, String> {
        let mut d = Decoder { buf: bytes, pos: 0 };
        let mut e = VersionEdit::default();
        while d.pos < bytes.len() {
            let at = d.pos;
            let tag = d.varint("field tag")?;
            match tag {
                TAG_COMPARATOR => {
                    let raw = d.bytes("comparator name")?;
                    let name = String::from_utf8(raw.to_vec())
                        .map_err(|_| format!("byte {at}: comparator name is not UTF-8"))?;
                    once(&mut e.comparator, name, at, "comparator")?;
                }
                TAG_FLUSHED_SEQ => {
                    let v = d.varint("flushed_seq")?;
                    once(&mut e.flushed_seq, v, at, "flushed_seq")?;
                }
                TAG_NEXT_FILE_NUMBER => {
                    let v = d.varint("next_file_number")?;
                    once(&mut e.next_file_number, v, at, "next_file_number")?;
                }
                TAG_LAST_SEQ => {
                    let v = d.varint("last_seq")?;
                    once(&mut e.last_seq, v, at, "last_seq")?;
                }
                TAG_DELETED => {
                    let level = d.level("deleted file's level")?;
                    let number = d.varint("deleted file's number")?;
                    e.deleted.push((level, number));
                }
                TAG_ADDED => {
                    let level = d.level("added file's level")?;
                    let f = d.file()?;
                    e.added.push((level, f));
                }
                TAG_TREE_ADDED => {
                    d.tree()?;
                    let level = d.level("added file's level")?;
                    let f = d.file()?;
                    e.streams.added.push((level, f));
                }
                TAG_TREE_DELETED => {
                    d.tree()?;
                    let level = d.level("deleted file's level")?;
                    let number = d.varint("deleted file's number")?;
                    e.streams.deleted.push((level, number));
                }
                TAG_TREE_COMPACT_POINTER => {
                    d.tree()?;
                    let level = d.level("compact pointer's level")?;
                    let key = d.bytes("compact pointer's key")?.to_vec();
                    e.streams.compact_pointers.push((level, key));
                }
                TAG_COMPACT_POINTER => {
                    let level = d.level("compact pointer's level")?;
                    let key = d.bytes("compact pointer's key")?.to_vec();
                    e.compact_pointers.push((level, key));
                }
                _ => return Err(format!("byte {at}: unknown field tag {tag}")),
            }
        }
        Ok(e)
    }
}

/// Sets a field that may occur at most once.
fn once<T>(slot: &mut Option<T>, value: T, at: usize, what: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("byte {at}: {what} given twice"));
    }
    *slot = Some(value);
    Ok(())
}

/// A cursor over an edit's payload whose errors name the offset.
struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let (v, n) = get_varint(&self.buf[self.pos..])
            .ok_or_else(|| format!("byte {}: {what}: truncated or over-long varint", self.pos))?;
        self.pos += n;
        Ok(v)
    }

    fn file(&mut self) -> Result<FileMeta, String> {
        Ok(FileMeta {
            number: self.varint("added file's number")?,
            file_bytes: self.varint("added file's size")?,
            smallest: self.bytes("added file's smallest key")?.to_vec(),
            largest: self.bytes("added file's largest key")?.to_vec(),
            entries: self.varint("added file's entry count")?,
            smallest_seq: self.varint("added file's smallest_seq")?,
            largest_seq: self.varint("added file's largest_seq")?,
        })
    }

    /// The tree id of tags 8–10: only the stream tree (tree 0 has tags 5–7).
    fn tree(&mut self) -> Result<(), String> {
        let at = self.pos;
        match self.varint("tree")? {
            STREAM_TREE => Ok(()),
            t => Err(format!(
                "byte {at}: unknown tree {t} (tags 8-10 name tree {STREAM_TREE}, the stream tree)"
            )),
        }
    }

    fn level(&mut self, what: &str) -> Result<u32, String> {
        let at = self.pos;
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| format!("byte {at}: {what} {v} does not fit in 32 bits"))
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let at = self.pos;
        let len = self.varint(what)?;
        let rest = self.buf.len() - self.pos;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= rest)
            .ok_or_else(|| {
                format!("byte {at}: {what}: length {len} runs past the end ({rest} bytes left)")
            })?;
        let b = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(number: u64) -> FileMeta {
        FileMeta {
            number,
            file_bytes: 4096 + number,
            smallest: b"a\0\0\0\0\0\0\x01\x01".to_vec(),
            largest: b"zz\xff\xff\xff\xff\xff\xff\xfe".to_vec(),
            entries: 10,
            smallest_seq: 3,
            largest_seq: 900,
        }
    }

    fn full() -> VersionEdit {
        VersionEdit {
            comparator: Some("uringdb.internal_key.v1".into()),
            flushed_seq: Some(77),
            next_file_number: Some(12),
            last_seq: Some(u64::MAX),
            deleted: vec![(0, 3), (6, 4)],
            added: vec![(1, meta(9)), (0, meta(10))],
            compact_pointers: vec![(2, b"k".to_vec()), (3, Vec::new())],
            streams: TreeEdit {
                deleted: vec![(1, 5)],
                added: vec![(0, meta(11))],
                compact_pointers: vec![(1, b"s".to_vec())],
            },
        }
    }

    #[test]
    fn round_trips() {
        for e in [VersionEdit::default(), full()] {
            let mut out = Vec::new();
            e.encode(&mut out);
            assert_eq!(VersionEdit::decode(&out), Ok(e));
        }
        let mut out = Vec::new();
        VersionEdit::default().encode(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error_or_a_shorter_edit_never_a_panic() {
        let mut out = Vec::new();
        full().encode(&mut out);
        for n in 0..out.len() {
            // A cut at a field boundary decodes to a prefix of the fields; anywhere else it
            // is an error. Either way: no panic.
            let _ = VersionEdit::decode(&out[..n]);
        }
        assert!(VersionEdit::decode(&out[..out.len() - 1]).is_err());
    }

    #[test]
    fn rejects_malformed_fields() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![99, 0], "byte 0: unknown field tag 99"),
            (vec![0], "byte 0: unknown field tag 0"),
            (vec![2, 1, 2, 1], "byte 2: flushed_seq given twice"),
            (
                vec![1, 1, b'a', 1, 1, b'b'],
                "byte 3: comparator given twice",
            ),
            (
                vec![1, 2, 0xff, 0xfe],
                "byte 0: comparator name is not UTF-8",
            ),
            (vec![1, 5, b'a'], "length 5 runs past the end"),
            (
                vec![5, 0x80, 0x80, 0x80, 0x80, 0x10, 1],
                "does not fit in 32 bits",
            ),
            (vec![3, 0x80], "truncated or over-long varint"),
            (vec![3], "byte 1: next_file_number"),
            (vec![0x80], "byte 0: field tag"),
            (vec![8, 0, 0], "byte 1: unknown tree 0"),
            (vec![9, 2, 0, 1], "byte 1: unknown tree 2"),
            (vec![10, 1], "byte 2: compact pointer's level"),
            (vec![8, 1, 0, 1], "added file's size"),
        ];
        for (bytes, needle) in cases {
            let err = VersionEdit::decode(&bytes).unwrap_err();
            assert!(err.contains(needle), "{bytes:?}: {err}");
        }
    }
}
