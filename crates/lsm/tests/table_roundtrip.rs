//! SSTable round trips through the public API: seeded random tables in every compression,
//! several block sizes and restart intervals, compared entry by entry with a `BTreeMap`
//! model (forward and reverse scans, gets, seeks); seek semantics at the edges; internal
//! keys with versions; the bloom filter through a real table; a table on a real file; and
//! the committed format fixture.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::SplitMix as Rng;
use uringdb_lsm::internal_key::{self, ValueKind};
use uringdb_lsm::table::{
    Comparator, Compression, Table, TableBuilder, TableError, TableOptions, TableProperties,
    FORMAT_VERSION,
};

/// The shared splitmix64 (every run tests the same tables), with this test's keys and values.
impl Rng {
    /// Keys over a small alphabet, so neighbours share prefixes (exercises prefix
    /// compression) and some keys are prefixes of others.
    fn key(&mut self) -> Vec<u8> {
        let len = 1 + self.below(24) as usize;
        (0..len)
            .map(|_| b"abcd\x00\xff"[self.below(6) as usize])
            .collect()
    }
    /// Values from empty to a few hundred bytes; half of them compressible.
    fn value(&mut self) -> Vec<u8> {
        let len = self.below(300) as usize;
        if self.below(2) == 0 {
            vec![b'v'; len]
        } else {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn model(seed: u64, n: usize) -> Model {
    let mut rng = Rng(seed);
    let mut m = Model::new();
    while m.len() < n {
        m.insert(rng.key(), rng.value());
    }
    m
}

fn build(m: &Model, opts: TableOptions) -> (Vec<u8>, TableProperties) {
    let mut out = Vec::new();
    let mut b = TableBuilder::new(&mut out, opts).expect("builder");
    for (k, v) in m {
        b.add(k, v).expect("add");
    }
    let props = b.finish().expect("finish");
    (out, props)
}

fn open(bytes: &[u8]) -> Table<&[u8]> {
    Table::open(bytes, bytes.len() as u64, "mem.sst", Comparator::Bytewise).expect("open")
}

fn scan_forward<R: uringdb_lsm::table::ReadAt>(t: &Table<R>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = t.iter();
    it.seek_to_first().expect("seek_to_first");
    let mut out = Vec::new();
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_vec()));
        it.next().expect("next");
    }
    out
}

fn scan_backward<R: uringdb_lsm::table::ReadAt>(t: &Table<R>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = t.iter();
    it.seek_to_last().expect("seek_to_last");
    let mut out = Vec::new();
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_vec()));
        it.prev().expect("prev");
    }
    out.reverse();
    out
}

const COMPRESSIONS: [Compression; 3] = [
    Compression::None,
    Compression::Lz4,
    Compression::Zstd { level: 3 },
];

#[test]
fn random_tables_match_the_model_in_every_configuration() {
    let m = model(0x5eed, 3000);
    let expected: Vec<_> = m.clone().into_iter().collect();
    let mut rng = Rng(42);
    for compression in COMPRESSIONS {
        for block_bytes in [256usize, 4096, 65536] {
            for restart_interval in [1usize, 16, 128] {
                let what =
                    format!("{compression:?} block {block_bytes} restart {restart_interval}");
                let opts = TableOptions {
                    block_bytes,
                    restart_interval,
                    compression,
                    ..TableOptions::default()
                };
                let (bytes, props) = build(&m, opts);
                assert_eq!(props.file_bytes, bytes.len() as u64, "{what}");
                assert_eq!(props.entries, m.len() as u64, "{what}");
                let t = open(&bytes);
                assert_eq!(t.properties(), &props, "{what}: properties read back");
                assert_eq!(scan_forward(&t), expected, "{what}: forward");
                assert_eq!(scan_backward(&t), expected, "{what}: backward");
                for (k, v) in m.iter().step_by(7) {
                    assert_eq!(t.get(k).expect("get").as_ref(), Some(v), "{what}: get");
                }
                let mut it = t.iter();
                for _ in 0..300 {
                    let target = rng.key();
                    assert_eq!(
                        t.get(&target).expect("get"),
                        m.get(&target).cloned(),
                        "{what}: get {target:?}"
                    );
                    it.seek(&target).expect("seek");
                    let want = m.range(target.clone()..).next();
                    let got = it.valid().then(|| (it.key(), it.value()));
                    assert_eq!(
                        got,
                        want.map(|(k, v)| (k.as_slice(), v.as_slice())),
                        "{what}: seek {target:?}"
                    );
                    // One step back from a seek lands on the model's predecessor.
                    if it.valid() {
                        it.prev().expect("prev");
                        let before = m.range(..target.clone()).next_back();
                        assert_eq!(
                            it.valid().then(|| it.key().to_vec()),
                            before.map(|(k, _)| k.clone()),
                            "{what}: prev after seek {target:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn compression_shrinks_compressible_tables() {
    let m: Model = (0..2000u32)
        .map(|i| {
            (
                format!("key{i:08}").into_bytes(),
                b"a fairly repetitive value ".repeat(4),
            )
        })
        .collect();
    let size = |c| {
        build(
            &m,
            TableOptions {
                compression: c,
                ..TableOptions::default()
            },
        )
        .1
    };
    let none = size(Compression::None);
    for c in [Compression::Lz4, Compression::Zstd { level: 3 }] {
        let p = size(c);
        assert!(
            p.data_bytes * 2 < none.data_bytes,
            "{c:?}: {} vs {}",
            p.data_bytes,
            none.data_bytes
        );
    }
}

#[test]
fn seek_semantics_at_the_edges() {
    let m: Model = (1..=500u32)
        .map(|i| {
            (
                format!("k{:05}", i * 10).into_bytes(),
                i.to_le_bytes().to_vec(),
            )
        })
        .collect();
    for restart_interval in [1usize, 16] {
        let (bytes, _) = build(
            &m,
            TableOptions {
                block_bytes: 256,
                restart_interval,
                ..TableOptions::default()
            },
        );
        let t = open(&bytes);
        let mut it = t.iter();
        // Exact match.
        it.seek(b"k00120").expect("seek");
        assert_eq!(it.key(), b"k00120");
        // Between two keys: the next one.
        it.seek(b"k00125").expect("seek");
        assert_eq!(it.key(), b"k00130");
        // Between the last key of one block and the first of the next: every boundary.
        for (k, _) in m.iter() {
            let mut between = k.clone();
            between.push(0);
            it.seek(&between).expect("seek");
            let want = m.range(between.clone()..).next().map(|(k, _)| k.as_slice());
            assert_eq!(it.valid().then(|| it.key()), want);
        }
        // Before the first key.
        it.seek(b"").expect("seek");
        assert_eq!(it.key(), b"k00010");
        it.seek(b"a").expect("seek");
        assert_eq!(it.key(), b"k00010");
        it.prev().expect("prev");
        assert!(!it.valid(), "nothing before the first key");
        // After the last key.
        it.seek(b"k05001").expect("seek");
        assert!(!it.valid());
        it.seek(b"z").expect("seek");
        assert!(!it.valid());
        it.seek_to_last().expect("last");
        assert_eq!(it.key(), b"k05000");
        it.next().expect("next");
        assert!(!it.valid(), "nothing after the last key");
    }
}

/// One write of a user key: sequence number, kind, value.
type Version = (u64, ValueKind, Vec<u8>);

#[test]
fn internal_key_tables_find_the_newest_visible_version() {
    // Several versions per user key, some tombstones; user keys that are prefixes of
    // each other on purpose.
    let mut rng = Rng(7);
    let mut versions: BTreeMap<Vec<u8>, Vec<Version>> = BTreeMap::new();
    let mut seq = 1u64;
    for _ in 0..3000 {
        let uk = rng.key();
        let kind = if rng.below(5) == 0 {
            ValueKind::Delete
        } else {
            ValueKind::Put
        };
        versions
            .entry(uk)
            .or_default()
            .push((seq, kind, rng.value()));
        seq += 1;
    }
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (uk, vs) in &versions {
        for (s, kind, v) in vs {
            let mut k = Vec::new();
            internal_key::encode(&mut k, uk, *s, *kind);
            entries.push((k, v.clone()));
        }
    }
    entries.sort_by(|a, b| internal_key::compare(&a.0, &b.0));
    let opts = TableOptions {
        comparator: Comparator::InternalKey,
        block_bytes: 512,
        ..TableOptions::default()
    };
    let mut bytes = Vec::new();
    let mut b = TableBuilder::new(&mut bytes, opts).expect("builder");
    for (k, v) in &entries {
        b.add(k, v).expect("add");
    }
    b.finish().expect("finish");
    let t = Table::open(
        bytes.as_slice(),
        bytes.len() as u64,
        "ik.sst",
        Comparator::InternalKey,
    )
    .expect("open");
    assert_eq!(scan_forward(&t), entries);
    assert_eq!(scan_backward(&t), entries);
    for (uk, vs) in versions.iter().step_by(3) {
        for snapshot in [0, seq / 3, seq / 2, seq] {
            let mut look = Vec::new();
            internal_key::encode_lookup(&mut look, uk, snapshot);
            let want = vs
                .iter()
                .filter(|(s, _, _)| *s <= snapshot)
                .max_by_key(|(s, _, _)| *s);
            let got = t.get_entry(&look).expect("get_entry");
            match (want, got) {
                (None, None) => {}
                (Some((s, kind, v)), Some((k, value))) => {
                    let p = internal_key::decode(&k).expect("stored key");
                    assert_eq!((p.user_key, p.seq, p.kind), (uk.as_slice(), *s, *kind));
                    assert_eq!(&value, v);
                }
                (w, g) => panic!("{uk:?}@{snapshot}: want {w:?}, got {g:?}"),
            }
        }
    }
}

#[test]
fn bloom_filter_skips_absent_keys_in_a_real_table() {
    let m: Model = (0..10_000u32)
        .map(|i| (format!("present-{i:08}").into_bytes(), Vec::new()))
        .collect();
    let (bytes, props) = build(&m, TableOptions::default());
    assert!(props.filter_bytes >= 10_000 * 10 / 8);
    let t = open(&bytes);
    assert!(m.keys().all(|k| t.may_contain(k)), "no false negatives");
    let absent = 20_000u32;
    let fp = (0..absent)
        .filter(|i| t.may_contain(format!("absent-{i:08}").as_bytes()))
        .count() as f64
        / f64::from(absent);
    // 10 bits per key: about 0.8% in theory.
    assert!(fp < 0.015, "false-positive rate {fp}");

    // Without a filter every key "may" be present, and gets still work.
    let (bytes, props) = build(
        &m,
        TableOptions {
            bloom_bits_per_key: 0,
            ..TableOptions::default()
        },
    );
    assert_eq!(props.filter_bytes, 0);
    let t = open(&bytes);
    assert!(t.may_contain(b"absent"));
    assert_eq!(t.get(b"absent").expect("get"), None);
    assert_eq!(t.get(b"present-00000042").expect("get"), Some(Vec::new()));
}

#[test]
fn table_on_a_real_file() {
    let m = model(99, 2000);
    let path = std::env::temp_dir().join(format!("uringdb-table-{}.sst", std::process::id()));
    let props = {
        let f = std::fs::File::create(&path).expect("create");
        let mut w = std::io::BufWriter::new(f);
        let mut b = TableBuilder::new(&mut w, TableOptions::default()).expect("builder");
        for (k, v) in &m {
            b.add(k, v).expect("add");
        }
        b.finish().expect("finish")
    };
    let f = std::fs::File::open(&path).expect("open file");
    let len = f.metadata().expect("metadata").len();
    assert_eq!(len, props.file_bytes);
    let t = Table::open(f, len, &path, Comparator::Bytewise).expect("open table");
    assert_eq!(scan_forward(&t), m.clone().into_iter().collect::<Vec<_>>());
    std::fs::remove_file(&path).expect("remove");
}

#[test]
fn unsupported_version_is_not_called_corruption() {
    let (mut bytes, _) = build(&model(1, 10), TableOptions::default());
    let footer = bytes.len() - 64;
    bytes[footer + 48..footer + 52].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let crc = crc32c::crc32c(&bytes[footer..footer + 52]);
    bytes[footer + 52..footer + 56].copy_from_slice(&crc.to_le_bytes());
    let e = Table::open(
        bytes.as_slice(),
        bytes.len() as u64,
        "v2.sst",
        Comparator::Bytewise,
    )
    .expect_err("newer version");
    assert!(
        matches!(e, TableError::UnsupportedVersion { version: 2, .. }),
        "{e}"
    );
}

// ---- the format fixture -------------------------------------------------------------

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/table_v1.sst")
}

/// The entries of the v1 fixture: internal keys (user keys `user:NNNN`, two versions of
/// every third key, a tombstone on every fifth), values of varied sizes.
fn fixture_entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..300u64 {
        let uk = format!("user:{i:04}").into_bytes();
        let mut push = |seq: u64, kind: ValueKind, v: Vec<u8>| {
            let mut k = Vec::new();
            internal_key::encode(&mut k, &uk, seq, kind);
            out.push((k, v));
        };
        if i % 5 == 0 {
            push(1000 + i, ValueKind::Delete, Vec::new());
        }
        push(
            i + 1,
            ValueKind::Put,
            format!("value {i} ")
                .repeat((i % 7) as usize + 1)
                .into_bytes(),
        );
        if i % 3 == 0 {
            push(i / 3, ValueKind::Put, b"older".to_vec());
        }
    }
    out
}

fn fixture_options() -> TableOptions {
    TableOptions {
        block_bytes: 1024,
        restart_interval: 4,
        compression: Compression::Lz4,
        bloom_bits_per_key: 10,
        comparator: Comparator::InternalKey,
    }
}

/// Writes `tests/fixtures/table_v1.sst`. Run once, when format version 1 was released:
/// `cargo test -p uringdb-lsm --test table_roundtrip -- --ignored write_fixture`.
/// Never regenerate it for a later version: add `table_v2.sst` beside it instead.
#[test]
#[ignore = "writes the committed fixture; run only to create it"]
fn write_fixture_table_v1() {
    let mut bytes = Vec::new();
    let mut b = TableBuilder::new(&mut bytes, fixture_options()).expect("builder");
    for (k, v) in fixture_entries() {
        b.add(&k, &v).expect("add");
    }
    b.finish().expect("finish");
    std::fs::create_dir_all(fixture_path().parent().expect("parent")).expect("mkdir");
    std::fs::write(fixture_path(), bytes).expect("write fixture");
}

#[test]
fn reads_the_committed_v1_fixture() {
    let bytes = std::fs::read(fixture_path()).expect("tests/fixtures/table_v1.sst is committed");
    let t = Table::open(
        bytes.as_slice(),
        bytes.len() as u64,
        fixture_path(),
        Comparator::InternalKey,
    )
    .expect("open fixture");
    let entries = fixture_entries();
    let p = t.properties();
    assert_eq!(p.entries, entries.len() as u64);
    assert_eq!(p.comparator, Comparator::InternalKey);
    assert_eq!(p.smallest_key, entries[0].0);
    assert_eq!(p.largest_key, entries[entries.len() - 1].0);
    assert!(p.data_blocks > 5, "several data blocks: {}", p.data_blocks);
    assert_eq!(scan_forward(&t), entries);
    assert_eq!(scan_backward(&t), entries);
    let mut look = Vec::new();
    internal_key::encode_lookup(&mut look, b"user:0010", internal_key::SEQ_MAX);
    let (k, _) = t.get_entry(&look).expect("get").expect("present");
    let parsed = internal_key::decode(&k).expect("key");
    assert_eq!((parsed.seq, parsed.kind), (1010, ValueKind::Delete));
    // An older version, visible only to an old snapshot.
    look.clear();
    internal_key::encode_lookup(&mut look, b"user:0009", 5);
    let (k, v) = t.get_entry(&look).expect("get").expect("present");
    assert_eq!(internal_key::decode(&k).map(|p| p.seq), Some(3));
    assert_eq!(v, b"older");
    // An absent user key.
    look.clear();
    internal_key::encode_lookup(&mut look, b"user:9999", internal_key::SEQ_MAX);
    assert_eq!(t.get_entry(&look).expect("get"), None);
    assert!(bytes.ends_with(&uringdb_lsm::table::TABLE_MAGIC));
}
