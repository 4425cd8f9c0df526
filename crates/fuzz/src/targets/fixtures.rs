//! The seed material: the v1 fixtures of the lsm crate, plus tables, segments and edits
//! built here.

use std::fs;
use std::path::{Path, PathBuf};

use uringdb_lsm::db::batch;
use uringdb_lsm::internal_key;
use uringdb_lsm::manifest::{self, FileMeta, VersionEdit};
use uringdb_lsm::table::fuzzing as tf;
use uringdb_lsm::table::{Comparator, Compression, TableBuilder, TableOptions};
use uringdb_wal::format::{self as wf, Kind, SegmentHeader};

use super::table_file::{footer_array, reachable_blocks, stored, tf_footer_bytes};

/// The files of the v1 database fixture (`db_v1/`); the `db` target's first input byte
/// picks the one the rest of the input replaces (modulo the count).
pub(super) const DB_FILES: [&str; 6] = [
    "CURRENT",
    "MANIFEST-000001",
    "000003.sst",
    "000004.sst",
    "000005.sst",
    "wal/000000000001.wal",
];

/// Which decoded block of a table a seed is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A data block.
    Data,
    /// The index block.
    Index,
    /// The filter block.
    Filter,
    /// The metaindex block.
    Metaindex,
}

/// The seed material: the v1 fixtures, plus tables, segments and edits built here so
/// that every compression type, batch framing and edit field has a seed.
pub struct Fixtures {
    /// Whole table files.
    pub tables: Vec<Vec<u8>>,
    /// Whole manifest files.
    pub manifests: Vec<Vec<u8>>,
    /// CURRENT files.
    pub currents: Vec<Vec<u8>>,
    /// WAL segment files (trimmed after their last frame, and one kept whole).
    pub wal_segments: Vec<Vec<u8>>,
    /// Single WAL frames.
    pub wal_frames: Vec<Vec<u8>>,
    /// Manifest record payloads (encoded edits).
    pub edits: Vec<Vec<u8>>,
    /// Write batches (WAL record payloads).
    pub batches: Vec<Vec<u8>>,
    /// The `db` target's seeds: each file of `db_v1/` after its index in `DB_FILES`
    /// (the log segment trimmed).
    pub db_files: Vec<Vec<u8>>,
}

/// The v1 fixtures of the lsm crate.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lsm/tests/fixtures")
}

impl Fixtures {
    /// Loads the fixtures and builds the extra seeds.
    pub fn load() -> Result<Fixtures, String> {
        let dir = fixtures_dir();
        let read = |p: &str| fs::read(dir.join(p)).map_err(|e| format!("{p}: {e}"));
        let mut tables = vec![
            read("table_v1.sst")?,
            read("db_v1/000003.sst")?,
            read("db_v1/000004.sst")?,
            read("db_v1/000005.sst")?,
        ];
        tables.extend(built_tables()?);
        let manifests = vec![
            read("manifest_v1/MANIFEST-000001")?,
            read("manifest_v2/MANIFEST-000001")?,
            read("db_v1/MANIFEST-000001")?,
        ];
        let currents = vec![read("manifest_v1/CURRENT")?, read("db_v1/CURRENT")?];
        let whole = read("db_v1/wal/000000000001.wal")?;
        let mut wal_segments = vec![trim_segment(&whole), built_segment(1, 1)];
        // Two segments in one input (split at the second magic): 1..=8, then 9..=16.
        let mut two = built_segment(1, 1);
        two.extend(built_segment(2, 9));
        wal_segments.push(two);
        wal_segments.push(whole);
        let mut wal_frames = Vec::new();
        let mut batches = Vec::new();
        for seg in &wal_segments[..2] {
            let mut off = wf::SEGMENT_HEADER_BYTES;
            let mut number = [0u8; 8];
            number.copy_from_slice(&seg[16..24]);
            let salt = wf::segment_salt(SegmentHeader::version_of(seg), u64::from_le_bytes(number));
            while let Ok(f) = wf::decode_frame_salted(&seg[off.min(seg.len())..], salt) {
                wal_frames.push(seg[off..off + f.total].to_vec());
                batches.push(f.payload.to_vec());
                off += f.total;
            }
        }
        // An optimistic transaction's record (tag 0xB5): a key and two ranges read.
        {
            use std::ops::Bound;
            use uringdb_lsm::db::batch::{encode_optimistic, ReadItem, WriteBatch};
            let mut b = WriteBatch::new();
            b.put(b"k", b"v").delete(b"d");
            let reads = [
                ReadItem::Key(b"a"),
                ReadItem::Range {
                    lo: Bound::Included(b"b"),
                    hi: Bound::Excluded(b"c"),
                },
                ReadItem::Range {
                    lo: Bound::Unbounded,
                    hi: Bound::Included(b"z"),
                },
            ];
            batches.push(encode_optimistic(42, &reads, &b));
        }
        let mut edits = Vec::new();
        for m in &manifests {
            let mut at = manifest::MANIFEST_HEADER_BYTES;
            while at + manifest::RECORD_HEADER_BYTES <= m.len() {
                let len = u32::from_le_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]]) as usize;
                let start = at + manifest::RECORD_HEADER_BYTES;
                let Some(payload) = m.get(start..start + len) else {
                    break;
                };
                edits.push(payload.to_vec());
                at = start + len;
            }
        }
        edits.push(built_edit());
        let mut db_files = Vec::new();
        for (i, name) in DB_FILES.iter().enumerate() {
            let mut file = read(&format!("db_v1/{name}"))?;
            if name.ends_with(".wal") {
                file = trim_segment(&file);
            }
            file.insert(0, i as u8);
            db_files.push(file);
        }
        Ok(Fixtures {
            db_files,
            tables,
            manifests,
            currents,
            wal_segments,
            wal_frames,
            edits,
            batches,
        })
    }

    /// Every stored block reachable in every table.
    pub fn stored_blocks(&self) -> Vec<Vec<u8>> {
        self.tables
            .iter()
            .flat_map(|t| reachable_blocks(t).into_iter().map(|r| t[r].to_vec()))
            .collect()
    }

    /// The decoded blocks of one kind from every table.
    pub fn blocks(&self, kind: BlockKind) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for t in &self.tables {
            let footer_at = t.len() - tf_footer_bytes();
            let Ok((meta, index, filter)) = tf::decode_footer(&footer_array(&t[footer_at..]))
            else {
                continue;
            };
            let handles: Vec<(u64, u64)> = match kind {
                BlockKind::Metaindex => vec![meta],
                BlockKind::Index => vec![index],
                BlockKind::Filter => filter.into_iter().collect(),
                BlockKind::Data => {
                    let Some(r) = stored(t, index) else { continue };
                    let Ok(decoded) = tf::decode_stored_block(&t[r]) else {
                        continue;
                    };
                    tf::walk_index_block(decoded, Comparator::Bytewise, footer_at as u64, 1 << 20).0
                }
            };
            for h in handles {
                if let Some(r) = stored(t, h) {
                    if let Ok(d) = tf::decode_stored_block(&t[r]) {
                        out.push(d);
                    }
                }
            }
        }
        out
    }
}

/// The segment up to the 4 KiB page after its last non-zero byte.
fn trim_segment(seg: &[u8]) -> Vec<u8> {
    let end = seg.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    seg[..end.next_multiple_of(4096).min(seg.len())].to_vec()
}

/// A segment with single records and an atomic batch (FIRST, MIDDLE, LAST), whose
/// payloads are write batches.
fn built_segment(number: u64, first_seq: u64) -> Vec<u8> {
    let mut seg = SegmentHeader { number, first_seq }.encode().to_vec();
    let payload = |i: u64| {
        let mut b = batch::WriteBatch::new();
        b.put(
            format!("key{i:05}").as_bytes(),
            &vec![i as u8; i as usize * 3],
        );
        if i.is_multiple_of(2) {
            b.delete(b"gone");
        }
        b.as_bytes().to_vec()
    };
    let kinds = [
        Kind::Full,
        Kind::Full,
        Kind::First,
        Kind::Middle,
        Kind::Last,
        Kind::First,
        Kind::Last,
        Kind::Full,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let seq = first_seq + i as u64;
        let salt = wf::segment_salt(wf::SEGMENT_VERSION, number);
        wf::encode_frame_salted(
            &mut seg,
            salt,
            kind,
            seq,
            &payload(seq),
            seq.is_multiple_of(3),
        );
    }
    seg.resize(8192, 0);
    seg
}

/// Small tables with every compression, with and without a filter, under both
/// comparators, several blocks each.
fn built_tables() -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let configs = [
        (Compression::None, 10, Comparator::Bytewise),
        (Compression::Lz4, 0, Comparator::InternalKey),
        (Compression::ZSTD_DEFAULT, 10, Comparator::InternalKey),
    ];
    for (compression, bloom_bits_per_key, comparator) in configs {
        let mut file = Vec::new();
        let opts = TableOptions {
            block_bytes: 256,
            restart_interval: 4,
            compression,
            bloom_bits_per_key,
            comparator,
        };
        let mut b = TableBuilder::new(&mut file, opts).map_err(|e| e.to_string())?;
        for i in 0..60u64 {
            let user_key = format!("key{i:05}").into_bytes();
            let key = if comparator == Comparator::InternalKey {
                let mut k = Vec::new();
                internal_key::encode(&mut k, &user_key, 1000 - i, internal_key::ValueKind::Put);
                k
            } else {
                user_key
            };
            let value = format!("value {i} ").repeat(1 + (i % 5) as usize);
            b.add(&key, value.as_bytes()).map_err(|e| e.to_string())?;
        }
        b.finish().map_err(|e| e.to_string())?;
        out.push(file);
    }
    Ok(out)
}

/// An edit with every field.
fn built_edit() -> Vec<u8> {
    let meta = |number| FileMeta {
        number,
        file_bytes: 4096,
        smallest: b"a\0\0\0\0\0\0\x01\x01".to_vec(),
        largest: b"z\0\0\0\0\0\0\x02\x01".to_vec(),
        entries: 10,
        smallest_seq: 1,
        largest_seq: 2,
    };
    let e = VersionEdit {
        comparator: Some("uringdb.internal_key.v1".into()),
        flushed_seq: Some(2),
        next_file_number: Some(10),
        last_seq: Some(2),
        deleted: vec![(0, 3)],
        added: vec![(0, meta(4)), (1, meta(5))],
        compact_pointers: vec![(1, b"m\0\0\0\0\0\0\x01\x01".to_vec())],
        streams: uringdb_lsm::manifest::TreeEdit {
            deleted: vec![(0, 6)],
            added: vec![(0, meta(7))],
            compact_pointers: vec![(2, b"n\0\0\0\0\0\0\x01\x01".to_vec())],
        },
    };
    let mut out = Vec::new();
    e.encode(&mut out);
    out
}
