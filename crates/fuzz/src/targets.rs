//! The fuzz targets: one per decoder of untrusted bytes, each with its seeds (cut from the
//! v1 fixtures, plus tables and segments built here with every compression), its checks,
//! the size it may allocate, and an optional fix-up that re-seals checksums so that
//! mutated inputs get past the checksum to the decoder behind it.
//!
//! A target's `run` returns whether the decoder accepted the input (accepted inputs join
//! the corpus, so later mutations start from valid-but-odd inputs). A rejection is fine;
//! a panic, a hang or an allocation over the bound is a failure. Some targets also check
//! a property that must hold whenever the input is accepted (a round trip, idempotent
//! recovery) with `assert!`: its failure is a panic, reported like any other.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uringdb_lsm::db::{batch, Db, DbOptions, RangeOptions};
use uringdb_lsm::internal_key;
use uringdb_lsm::manifest::{self, FileMeta, ManifestState, VersionEdit};
use uringdb_lsm::table::fuzzing as tf;
use uringdb_lsm::table::{Comparator, Compression, Table, TableBuilder, TableOptions};
use uringdb_uring::{BackendChoice, Vfs};
use uringdb_wal::format::{self as wf, Kind, SegmentHeader};
use uringdb_wal::{RecoveryMode, Wal, WalError, WalOptions};

/// Cursor moves allowed per walk: far above any seed's entry count, so a walk that needs
/// more is a decoder that does not advance (reported as a failure by the walk itself).
const STEPS_MAX: usize = 1 << 20;

/// Bytes every target may allocate regardless of its input: formatted error messages,
/// small vectors, the table reader's per-table state.
const FIXED_BYTES_DEFAULT: u64 = 64 << 10;

/// One fuzz target.
pub struct Target {
    /// Name on the command line.
    pub name: &'static str,
    /// What it feeds, to which decoder.
    pub about: &'static str,
    /// Longest input the mutator makes.
    pub max_len: usize,
    /// The size the input declares for the thing being decoded (0: nothing beyond the
    /// input itself). Computed outside the allocation record.
    pub declared: fn(&[u8]) -> u64,
    /// Bytes of decoded structure one input byte may legitimately become (1 for decoders
    /// that produce bytes; more for ones that produce structs, see the crate docs).
    pub expansion: u64,
    /// Input-independent bytes the code under test allocates (fixed buffers).
    pub fixed_bytes: u64,
    /// Seeds from the fixtures.
    pub seeds: fn(&Fixtures) -> Vec<Vec<u8>>,
    /// Runs the decoder; `true` if it accepted the input.
    pub run: fn(&Env, &[u8]) -> bool,
    /// Re-seals checksums after a mutation (applied to half the mutated inputs).
    pub fixup: Option<fn(&mut Vec<u8>)>,
}

impl Target {
    /// The largest single allocation `input` may cause: the declared size or the input's
    /// length, whichever is larger, times the expansion, plus the fixed bytes.
    pub fn alloc_limit(&self, input: &[u8]) -> (u64, u64) {
        let declared = (self.declared)(input);
        let base = declared.max(input.len() as u64);
        (
            declared,
            base.saturating_mul(self.expansion)
                .saturating_add(self.fixed_bytes),
        )
    }
}

fn nothing_declared(_: &[u8]) -> u64 {
    0
}

/// Every target, in the order `--list` shows them.
pub fn all() -> Vec<Target> {
    vec![
        Target {
            name: "wal_frame",
            about: "one WAL frame: wal::format::decode_frame, then re-encode what it accepted",
            max_len: 64 << 10,
            declared: declared_frame,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.wal_frames.clone(),
            run: run_wal_frame,
            fixup: Some(|b| {
                reseal_frame(b, 0);
            }),
        },
        Target {
            name: "wal_segment_header",
            about: "a WAL segment header: SegmentHeader::decode, then re-encode",
            max_len: 128,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| {
                f.wal_segments
                    .iter()
                    .map(|s| s[..wf::SEGMENT_HEADER_BYTES.min(s.len())].to_vec())
                    .collect()
            },
            run: run_wal_segment_header,
            fixup: Some(|b| reseal_segment_header(b)),
        },
        Target {
            name: "wal_recovery",
            about: "WAL segment files (the input cut at each segment magic): Wal::open \
                    (recovery, strict then tolerant), read every record back, reopen",
            max_len: 1 << 20,
            declared: nothing_declared,
            expansion: 1,
            // Wal::open allocates its commit ring (1 MiB here, the smallest accepted) and
            // recovery its 1 MiB I/O chunks (wal::limits::IO_CHUNK_BYTES), whatever the
            // file holds.
            fixed_bytes: (1 << 20) + FIXED_BYTES_DEFAULT,
            seeds: |f| f.wal_segments.clone(),
            run: run_wal_recovery,
            fixup: Some(|b| reseal_segments(b)),
        },
        Target {
            name: "wal_scan",
            about: "WAL segment files as for wal_recovery, through recovery alone (no log \
                    threads: many more inputs per second), strict then tolerant, twice",
            max_len: 1 << 20,
            declared: nothing_declared,
            expansion: 1,
            // Recovery's 1 MiB I/O chunk (wal::limits::IO_CHUNK_BYTES).
            fixed_bytes: (1 << 20) + FIXED_BYTES_DEFAULT,
            seeds: |f| f.wal_segments.clone(),
            run: run_wal_scan,
            fixup: Some(|b| reseal_segments(b)),
        },
        Target {
            name: "table_block",
            about: "a decoded data block: restart array, entries, forward/backward/seek \
                    under both comparators",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.blocks(BlockKind::Data),
            run: |_, input| {
                let targets: [&[u8]; 4] = [b"", b"key", &[0xff; 9], b"m\0\0\0\0\0\0\0\x01"];
                let a = tf::walk_block(input.to_vec(), Comparator::Bytewise, &targets, STEPS_MAX);
                let b =
                    tf::walk_block(input.to_vec(), Comparator::InternalKey, &targets, STEPS_MAX);
                assert_no_runaway(&a);
                assert_no_runaway(&b);
                a.is_ok() || b.is_ok()
            },
            fixup: None,
        },
        Target {
            name: "table_index",
            about: "a decoded index block: entries and every block handle in them",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.blocks(BlockKind::Index),
            run: |_, input| {
                let (_, stopped) = tf::walk_index_block(
                    input.to_vec(),
                    Comparator::InternalKey,
                    1 << 40,
                    STEPS_MAX,
                );
                let r = stopped.map_or(Ok(()), Err);
                assert_no_runaway(&r);
                r.is_ok()
            },
            fixup: None,
        },
        Target {
            name: "table_filter",
            about: "a decoded bloom filter block: validation and probes",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.blocks(BlockKind::Filter),
            run: |_, input| {
                let keys: [&[u8]; 4] = [b"", b"a", b"key00042", &[0xff; 40]];
                tf::probe_filter(input.to_vec(), &keys).is_ok()
            },
            fixup: None,
        },
        Target {
            name: "table_footer",
            about: "a table footer (64 bytes, zero-padded or cut): magic, checksum, version",
            max_len: 128,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| {
                f.tables
                    .iter()
                    .map(|t| t[t.len() - tf_footer_bytes()..].to_vec())
                    .collect()
            },
            run: |_, input| tf::decode_footer(&footer_array(input)).is_ok(),
            fixup: Some(|b| {
                b.resize(tf_footer_bytes(), 0);
                reseal_footer(b);
            }),
        },
        Target {
            name: "table_trailer",
            about: "a stored block (payload, compression type, crc32c): checksum and \
                    none/lz4/zstd decoding",
            max_len: 64 << 10,
            declared: |input| tf::declared_decoded_bytes(input).unwrap_or(0),
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.stored_blocks(),
            run: |_, input| match tf::decode_stored_block(input) {
                Ok(out) => {
                    let payload = &input[..input.len() - tf::TRAILER_BYTES];
                    if input[payload.len()] == 0 {
                        assert_eq!(out, payload, "an uncompressed block decodes to its payload");
                    }
                    true
                }
                Err(_) => false,
            },
            fixup: Some(|b| reseal_stored_block(b)),
        },
        Target {
            name: "table_properties",
            about: "a decoded metaindex block: table properties",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.blocks(BlockKind::Metaindex),
            run: |_, input| tf::decode_properties(input.to_vec()).is_ok(),
            fixup: None,
        },
        Target {
            name: "table",
            about: "a whole table file: Table::open under both comparators, walk, seek, get, \
                    layout",
            max_len: 256 << 10,
            declared: declared_table,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.tables.clone(),
            run: run_table,
            fixup: Some(|b| reseal_table(b)),
        },
        Target {
            name: "manifest_edit",
            about: "a manifest record payload: VersionEdit::decode, apply to a state, \
                    snapshot round trip",
            max_len: 16 << 10,
            declared: nothing_declared,
            expansion: STRUCT_EXPANSION,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.edits.clone(),
            run: run_manifest_edit,
            fixup: None,
        },
        Target {
            name: "manifest_current",
            about: "the contents of CURRENT",
            max_len: 128,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.currents.clone(),
            run: |_, input| match manifest::fuzzing::parse_current(input) {
                Ok(n) => {
                    let canonical = format!("{}\n", manifest::manifest_file_name(n));
                    assert_eq!(
                        canonical.as_bytes(),
                        input,
                        "CURRENT accepted only canonical"
                    );
                    true
                }
                Err((offset, _)) => {
                    assert!(offset <= input.len() as u64, "offset within CURRENT");
                    false
                }
            },
            fixup: None,
        },
        Target {
            name: "manifest",
            about: "a whole MANIFEST file: manifest::recover with and without CURRENT, \
                    snapshot round trip",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: STRUCT_EXPANSION,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.manifests.clone(),
            run: run_manifest,
            fixup: Some(|b| reseal_manifest(b)),
        },
        Target {
            name: "db",
            about: "the v1 database directory with one file replaced by the input (first \
                    byte: which file): Db::open, scan everything, get, close",
            max_len: 64 << 10,
            declared: |input| match input.split_first() {
                Some((&which, file))
                    if DB_FILES[usize::from(which) % DB_FILES.len()].ends_with(".sst") =>
                {
                    declared_table(file)
                }
                _ => 0,
            },
            expansion: STRUCT_EXPANSION,
            // The database's fixed buffers: its log's commit ring and I/O chunk (1 MiB
            // each here) and its memtable's arena (1 MiB here).
            fixed_bytes: (1 << 20) + FIXED_BYTES_DEFAULT,
            seeds: |f| f.db_files.clone(),
            run: run_db,
            fixup: Some(|b| {
                if let Some((&mut which, file)) = b.split_first_mut() {
                    let name = DB_FILES[usize::from(which) % DB_FILES.len()];
                    if name.ends_with(".sst") {
                        reseal_table(file);
                    } else if name.starts_with("MANIFEST") {
                        reseal_manifest(file);
                    } else if name.ends_with(".wal") {
                        reseal_segments(file);
                    }
                }
            }),
        },
        Target {
            name: "batch",
            about: "a write batch (WAL record payload): validate and ops, rebuild",
            max_len: 16 << 10,
            declared: nothing_declared,
            // `validate` collects nothing; `ops` yields borrowed slices. The rebuild
            // check copies the batch once.
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.batches.clone(),
            run: run_batch,
            fixup: None,
        },
    ]
}

/// How many bytes of decoded structure one input byte may become in the manifest targets:
/// the smallest encoded added file is 10 bytes (tag, level, number, size, two empty keys,
/// entries, two sequence numbers: one byte each) and becomes a `(u32, FileMeta)` of 96
/// bytes; a `Vec` that grows by doubling may hold twice its length. 10 bytes → 192: about
/// 19×, rounded up to 32.
const STRUCT_EXPANSION: u64 = 32;

/// A walk that ran out of steps is a cursor that does not advance: a decoder bug.
fn assert_no_runaway<T>(r: &Result<T, String>) {
    if let Err(e) = r {
        assert!(!e.contains("did not end"), "{e}");
    }
}

// ---- WAL ------------------------------------------------------------------------------

fn declared_frame(input: &[u8]) -> u64 {
    match input.get(..4) {
        Some(w) => wf::parse_word0(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .map_or(0, |w| wf::frame_bytes(w.len) as u64),
        None => 0,
    }
}

fn run_wal_frame(_: &Env, input: &[u8]) -> bool {
    match wf::decode_frame(input) {
        Ok(f) => {
            assert!(f.total <= input.len(), "frame longer than its input");
            assert_eq!(f.total, wf::frame_bytes(f.payload.len()));
            let mut again = Vec::new();
            wf::encode_frame(&mut again, f.kind, f.seq, f.payload, f.sync);
            assert_eq!(again, &input[..f.total], "re-encoding gives other bytes");
            true
        }
        Err(_) => false,
    }
}

fn run_wal_segment_header(_: &Env, input: &[u8]) -> bool {
    match SegmentHeader::decode(input) {
        Ok(h) => {
            // Re-encoding writes the current version; an older one that decoded keeps its
            // fields.
            let again = h.encode();
            if SegmentHeader::version_of(input) == wf::SEGMENT_VERSION {
                assert_eq!(&again[..], &input[..wf::SEGMENT_HEADER_BYTES]);
            } else {
                assert_eq!(SegmentHeader::decode(&again), Ok(h));
            }
            true
        }
        Err(_) => false,
    }
}

fn wal_options(recovery: RecoveryMode) -> WalOptions {
    WalOptions {
        segment_bytes: 1 << 20,
        ring_bytes: 1 << 20,
        recovery,
        backend: BackendChoice::Portable,
        ..WalOptions::default()
    }
}

/// Reads every record of an open log from `first` to `last`; asserts the sequence numbers
/// are contiguous. Recovery verifies only the last segment (older ones were sealed before
/// the next was created), so damage in an older one may surface here, as corruption naming
/// that file; any other failure to read a recovered record is a bug.
fn read_all(wal: &Wal, first: u64, last: u64, last_segment: &Path) {
    let mut cursor = match wal.cursor(first) {
        Ok(c) => c,
        Err(e) => panic!("cursor at {first}: {e}"),
    };
    let mut expected = first;
    while expected <= last {
        let batch = match wal.read(&mut cursor, u64::MAX, 1024, 1 << 20) {
            Ok(b) => b,
            Err(WalError::Corruption { file, .. }) if file != last_segment => return,
            Err(e) => panic!("recovered record {expected} does not read back: {e}"),
        };
        assert!(
            !batch.records.is_empty(),
            "no record {expected} (last {last})"
        );
        for &(seq, _, _) in &batch.records {
            assert_eq!(seq, expected, "records out of sequence");
            expected += 1;
        }
    }
}

/// Most segment files one input becomes.
const SEGMENTS_MAX: usize = 4;

/// The input as segment files: it is cut at every 8-aligned offset (after the first)
/// where a segment magic starts, up to [`SEGMENTS_MAX`] parts.
fn split_segments(input: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut cuts = vec![0];
    let mut at = 8;
    while at + 8 <= input.len() && cuts.len() < SEGMENTS_MAX {
        if input[at..at + 8] == wf::SEGMENT_MAGIC {
            cuts.push(at);
        }
        at += 8;
    }
    cuts.push(input.len());
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Writes the input's segment files into a fresh directory; returns it and the path of
/// the last segment, or `None` if writing failed.
fn write_segments(env: &Env, input: &[u8]) -> Option<(PathBuf, PathBuf)> {
    let dir = env.fresh_dir("wal");
    let parts = split_segments(input);
    for (i, r) in parts.iter().enumerate() {
        let name = wf::segment_file_name(i as u64 + 1);
        fs::write(dir.join(name), &input[r.clone()]).ok()?;
    }
    let last_segment = dir.join(wf::segment_file_name(parts.len() as u64));
    Some((dir, last_segment))
}

fn run_wal_scan(env: &Env, input: &[u8]) -> bool {
    let Some((dir, _)) = write_segments(env, input) else {
        return false;
    };
    for mode in [RecoveryMode::Strict, RecoveryMode::Tolerant] {
        let Ok(report) = uringdb_wal::fuzzing::recover(&*env.vfs, &dir, mode, 1 << 20) else {
            continue;
        };
        // What recovery kept, a second recovery keeps (the cut tail was zeroed).
        match uringdb_wal::fuzzing::recover(&*env.vfs, &dir, RecoveryMode::Strict, 1 << 20) {
            Ok(again) => assert_eq!(
                again.last_seq, report.last_seq,
                "a second recovery kept other records"
            ),
            Err(e) => panic!("a log that recovered ({mode:?}) does not recover again: {e}"),
        }
        return true;
    }
    false
}

fn run_wal_recovery(env: &Env, input: &[u8]) -> bool {
    let Some((dir, last_segment)) = write_segments(env, input) else {
        return false;
    };
    let mut accepted = false;
    for mode in [RecoveryMode::Strict, RecoveryMode::Tolerant] {
        let Ok((wal, report)) = Wal::open(&dir, &wal_options(mode)) else {
            continue;
        };
        let (first, last) = (report.first_seq, report.last_seq);
        if last >= first && first > 0 {
            read_all(&wal, first, last, &last_segment);
        }
        drop(wal);
        // Recovery cut what it did not keep: opening again, strictly, keeps it all.
        match Wal::open(&dir, &wal_options(RecoveryMode::Strict)) {
            Ok((wal, again)) => {
                assert_eq!(again.last_seq, last, "a second recovery kept other records");
                drop(wal);
            }
            Err(e) => panic!("a log that recovered ({mode:?}) does not reopen: {e}"),
        }
        accepted = true;
        break;
    }
    accepted
}

/// Re-seals the frame at `off`: its checksum and zero padding, if its header parses and it
/// fits. Returns its size.
fn reseal_frame(b: &mut [u8], off: usize) -> Option<usize> {
    let head = b.get(off..off + wf::FRAME_HEADER_BYTES)?;
    let w = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let w0 = wf::parse_word0(w)?;
    let total = wf::frame_bytes(w0.len);
    let frame = b.get_mut(off..off.checked_add(total)?)?;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&frame[8..16]);
    let payload_end = wf::FRAME_HEADER_BYTES + w0.len;
    let crc = wf::seal_crc(
        wf::partial_crc(w, &frame[wf::FRAME_HEADER_BYTES..payload_end]),
        u64::from_le_bytes(seq),
    );
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame[payload_end..].fill(0);
    Some(total)
}

fn reseal_segment_header(b: &mut [u8]) {
    if b.len() >= wf::SEGMENT_HEADER_BYTES {
        let crc = crc32c::crc32c(&b[..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b[36..40].fill(0);
    }
}

fn reseal_segments(b: &mut [u8]) {
    for r in split_segments(b) {
        let seg = &mut b[r];
        reseal_segment_header(seg);
        let mut off = wf::SEGMENT_HEADER_BYTES;
        while off + wf::FRAME_HEADER_BYTES <= seg.len() && seg[off..off + 4] != [0; 4] {
            match reseal_frame(seg, off) {
                Some(total) => off += total,
                None => break,
            }
        }
    }
}

// ---- tables ---------------------------------------------------------------------------

fn tf_footer_bytes() -> usize {
    uringdb_lsm::table::FOOTER_BYTES
}

fn footer_array(input: &[u8]) -> [u8; uringdb_lsm::table::FOOTER_BYTES] {
    let mut f = [0u8; uringdb_lsm::table::FOOTER_BYTES];
    let n = input.len().min(f.len());
    f[..n].copy_from_slice(&input[..n]);
    f
}

fn reseal_footer(b: &mut [u8]) {
    let n = tf_footer_bytes();
    if b.len() >= n {
        let at = b.len() - n;
        let crc = crc32c::crc32c(&b[at..at + 52]);
        b[at + 52..at + 56].copy_from_slice(&crc.to_le_bytes());
    }
}

fn reseal_stored_block(b: &mut [u8]) {
    if let Some(payload) = b.len().checked_sub(tf::TRAILER_BYTES) {
        let crc = crc32c::crc32c(&b[..=payload]);
        b[payload + 1..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The stored block `(offset, size)` of `file`, if it lies inside it.
fn stored(file: &[u8], (offset, size): (u64, u64)) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start
        .checked_add(usize::try_from(size).ok()?)?
        .checked_add(tf::TRAILER_BYTES)?;
    (end <= file.len()).then_some(start..end)
}

/// Every stored block a reader of `file` can reach: the footer's, then the data blocks
/// the index names (when the index decodes).
fn reachable_blocks(file: &[u8]) -> Vec<std::ops::Range<usize>> {
    let n = tf_footer_bytes();
    let Some(footer_at) = file.len().checked_sub(n) else {
        return Vec::new();
    };
    let Ok((meta, index, filter)) = tf::decode_footer(&footer_array(&file[footer_at..])) else {
        return Vec::new();
    };
    let mut out: Vec<_> = [Some(meta), Some(index), filter]
        .into_iter()
        .flatten()
        .filter_map(|h| stored(file, h))
        .collect();
    // The target also seeks to the smallest and largest keys of the properties.
    let mut seeks: Vec<Vec<u8>> = TABLE_SEEKS.iter().map(|k| k.to_vec()).collect();
    if let Some(r) = stored(file, meta) {
        if let Ok(p) = tf::decode_stored_block(&file[r]).and_then(tf::decode_properties) {
            seeks.push(p.smallest_key);
            seeks.push(p.largest_key);
        }
    }
    let seeks: Vec<&[u8]> = seeks.iter().map(Vec::as_slice).collect();
    if let Some(r) = stored(file, index) {
        if let Ok(decoded) = tf::decode_stored_block(&file[r]) {
            for cmp in [Comparator::Bytewise, Comparator::InternalKey] {
                let handles = tf::reachable_index_handles(
                    decoded.clone(),
                    cmp,
                    footer_at as u64,
                    &seeks,
                    STEPS_MAX,
                );
                out.extend(handles.into_iter().filter_map(|h| stored(file, h)));
            }
        }
    }
    out
}

/// The largest decoded size any reachable compressed block declares.
fn declared_table(file: &[u8]) -> u64 {
    reachable_blocks(file)
        .into_iter()
        .filter_map(|r| tf::declared_decoded_bytes(&file[r]))
        .max()
        .unwrap_or(0)
}

fn reseal_table(b: &mut [u8]) {
    reseal_footer(b);
    // The index first (the data handles are read from it), then everything reachable.
    if let Some(footer_at) = b.len().checked_sub(tf_footer_bytes()) {
        if let Ok((_, index, _)) = tf::decode_footer(&footer_array(&b[footer_at..])) {
            if let Some(r) = stored(b, index) {
                let mut blk = b[r.clone()].to_vec();
                reseal_stored_block(&mut blk);
                b[r].copy_from_slice(&blk);
            }
        }
    }
    for r in reachable_blocks(b) {
        let mut blk = b[r.clone()].to_vec();
        reseal_stored_block(&mut blk);
        b[r].copy_from_slice(&blk);
    }
}

/// Keys the table target seeks to and looks up (besides the table's smallest and largest
/// keys, which come from its properties).
const TABLE_SEEKS: [&[u8]; 3] = [b"", b"key00042\0\0\0\0\0\0\0\x01", &[0xff; 12]];

fn run_table(_: &Env, input: &[u8]) -> bool {
    let mut accepted = false;
    for cmp in [Comparator::Bytewise, Comparator::InternalKey] {
        let Ok(t) = Table::open(input.to_vec(), input.len() as u64, "fuzz.sst", cmp) else {
            continue;
        };
        accepted = true;
        let _ = t.layout();
        let props = t.properties().clone();
        let mut it = t.iter();
        let mut steps = 0;
        let mut r = it.seek_to_first();
        while r.is_ok() && it.valid() {
            steps += 1;
            assert!(steps <= STEPS_MAX, "forward table walk does not end");
            let _ = (it.key(), it.value());
            r = it.next();
        }
        steps = 0;
        let mut r = it.seek_to_last();
        while r.is_ok() && it.valid() {
            steps += 1;
            assert!(steps <= STEPS_MAX, "backward table walk does not end");
            r = it.prev();
        }
        let keys = [&props.smallest_key[..], &props.largest_key[..]];
        for key in TABLE_SEEKS.iter().chain(&keys) {
            let _ = it.seek(key);
            let _ = t.get(key);
            let _ = t.may_contain(key);
        }
    }
    accepted
}

// ---- manifest and batch ---------------------------------------------------------------

/// Replaying the snapshot of `state` from scratch gives `state` again.
fn assert_snapshot_round_trip(state: &ManifestState) {
    let snap = state.snapshot_edit();
    let mut bytes = Vec::new();
    snap.encode(&mut bytes);
    let decoded = match VersionEdit::decode(&bytes) {
        Ok(e) => e,
        Err(e) => panic!("a snapshot does not decode: {e}"),
    };
    assert_eq!(decoded, snap, "snapshot edit round trip");
    let mut again = ManifestState::new(&state.comparator);
    if let Err(e) = again.apply(&decoded) {
        panic!("a snapshot does not apply to a fresh state: {e}");
    }
    assert_eq!(&again, state, "snapshot replay gives another state");
}

fn run_manifest_edit(_: &Env, input: &[u8]) -> bool {
    let Ok(edit) = VersionEdit::decode(input) else {
        return false;
    };
    let mut bytes = Vec::new();
    edit.encode(&mut bytes);
    assert_eq!(
        VersionEdit::decode(&bytes).as_ref(),
        Ok(&edit),
        "edit round trip"
    );
    let comparator = edit
        .comparator
        .clone()
        .unwrap_or_else(|| "uringdb.internal_key.v1".into());
    let mut state = ManifestState::new(&comparator);
    if state.apply(&edit).is_ok() {
        assert_snapshot_round_trip(&state);
    }
    true
}

fn run_manifest(env: &Env, input: &[u8]) -> bool {
    let dir = env.fresh_dir("manifest");
    let name = manifest::manifest_file_name(1);
    let current = dir.join(manifest::CURRENT_FILE_NAME);
    let written = fs::write(dir.join(&name), input).is_ok()
        && fs::write(&current, format!("{name}\n")).is_ok();
    if !written {
        return false;
    }
    let comparator = "uringdb.internal_key.v1";
    let accepted = match manifest::recover(&*env.vfs, &dir, comparator) {
        Ok(Some(r)) => {
            assert_snapshot_round_trip(&r.state);
            assert!(
                r.torn_tail_bytes <= input.len() as u64,
                "cut more than the file"
            );
            true
        }
        Ok(None) => panic!("CURRENT exists, yet recovery found a new database"),
        Err(_) => false,
    };
    // Without CURRENT, recovery decides whether the manifest held data.
    if fs::remove_file(&current).is_ok() {
        let _ = manifest::recover(&*env.vfs, &dir, comparator);
    }
    accepted
}

/// The files of the v1 database fixture (`db_v1/`); the `db` target's first input byte
/// picks the one the rest of the input replaces (modulo the count).
const DB_FILES: [&str; 6] = [
    "CURRENT",
    "MANIFEST-000001",
    "000003.sst",
    "000004.sst",
    "000005.sst",
    "wal/000000000001.wal",
];

fn db_options() -> DbOptions {
    DbOptions {
        wal: wal_options(RecoveryMode::Strict),
        memtable_bytes: 1 << 20,
        ..DbOptions::default()
    }
}

fn run_db(env: &Env, input: &[u8]) -> bool {
    let Some((&which, content)) = input.split_first() else {
        return false;
    };
    let replaced = DB_FILES[usize::from(which) % DB_FILES.len()];
    let dir = env.fresh_dir("db");
    let src = fixtures_dir().join("db_v1");
    for name in DB_FILES {
        let to = dir.join(name);
        if let Some(parent) = to.parent() {
            let _ = fs::create_dir_all(parent);
        }
        let written = if name == replaced {
            fs::write(&to, content)
        } else {
            fs::copy(src.join(name), &to).map(|_| ())
        };
        if written.is_err() {
            return false;
        }
    }
    let Ok(db) = Db::open(&dir, db_options()) else {
        return false;
    };
    let mut it = db.iter(RangeOptions::default(), None);
    for _ in 0..STEPS_MAX {
        match it.next_batch(1000, 1 << 20) {
            Ok(b) if !b.done => {}
            _ => break,
        }
    }
    drop(it);
    for key in [&b"key0003"[..], b"unflushed", b""] {
        let _ = db.get(key, None);
    }
    let _ = db.close();
    true
}

fn run_batch(_: &Env, input: &[u8]) -> bool {
    // The database replays logged payloads with `ops` alone: it must not panic on any.
    let unvalidated = batch::ops(input).take(STEPS_MAX).count();
    match batch::validate(input) {
        Ok(n) => {
            assert_eq!(unvalidated, n, "ops and validate disagree");
            let mut b = batch::WriteBatch::new();
            for op in batch::ops(input) {
                match op {
                    batch::Op::Put(k, v) => b.put(k, v),
                    batch::Op::Delete(k) => b.delete(k),
                };
            }
            assert_eq!(b.as_bytes(), input, "rebuilt batch differs");
            true
        }
        Err(_) => false,
    }
}

fn reseal_manifest(b: &mut [u8]) {
    if b.len() >= manifest::MANIFEST_HEADER_BYTES {
        let crc = crc32c::crc32c(&b[..24]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
    }
    let mut at = manifest::MANIFEST_HEADER_BYTES;
    while at + manifest::RECORD_HEADER_BYTES <= b.len() {
        let len = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let start = at + manifest::RECORD_HEADER_BYTES;
        let Some(end) = start.checked_add(len).filter(|&e| e <= b.len()) else {
            break;
        };
        let crc = crc32c::crc32c_append(crc32c::crc32c(&b[at..at + 4]), &b[start..end]);
        b[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

// ---- the environment and the seeds ----------------------------------------------------

/// What targets that go through files need: a scratch directory (on tmpfs when there is
/// one) and an I/O layer.
pub struct Env {
    root: PathBuf,
    /// The portable I/O backend (decoding does not depend on the backend).
    pub vfs: Arc<dyn Vfs>,
}

impl Env {
    /// A scratch root for this process and `label`; removed on drop.
    pub fn new(label: &str) -> std::io::Result<Env> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!("uringdb-fuzz-{}-{label}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root)?;
        let (vfs, _) = uringdb_uring::open_vfs(BackendChoice::Portable)?;
        Ok(Env { root, vfs })
    }

    /// An empty directory `name` under the root (emptied if it exists).
    pub fn fresh_dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::create_dir_all(&dir);
        dir
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

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
            while let Ok(f) = wf::decode_frame(&seg[off.min(seg.len())..]) {
                wal_frames.push(seg[off..off + f.total].to_vec());
                batches.push(f.payload.to_vec());
                off += f.total;
            }
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
        wf::encode_frame(&mut seg, kind, seq, &payload(seq), seq.is_multiple_of(3));
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
    };
    let mut out = Vec::new();
    e.encode(&mut out);
    out
}
