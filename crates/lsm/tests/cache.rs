//! Tables reading through a shared block cache: a second pass over a table is served from
//! the cache with identical results, tables sharing a cache never see each other's blocks,
//! damage is still reported (with file and offset) because damaged blocks are never
//! cached, a tiny or disabled cache changes nothing but the counters, and four threads can
//! share a table and its cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;

use uringdb_lsm::cache::{BlockCache, CacheStats};
use uringdb_lsm::table::{
    Comparator, Compression, ReadAt, RegionKind, Table, TableBuilder, TableError, TableOptions,
};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// `n` keys; every value starts with `tag`, so two models of one size differ in every
/// value but produce tables of identical layout (same block offsets).
fn model(n: u32, tag: u8) -> Model {
    (0..n)
        .map(|i| {
            let mut v = vec![tag];
            v.extend(format!("-value-{i}-").repeat(1 + (i % 4) as usize).bytes());
            (format!("key-{:06}", i * 2).into_bytes(), v)
        })
        .collect()
}

fn build(m: &Model) -> Vec<u8> {
    let mut out = Vec::new();
    let opts = TableOptions {
        block_bytes: 256,
        compression: Compression::None,
        ..TableOptions::default()
    };
    let mut b = TableBuilder::new(&mut out, opts).expect("builder");
    for (k, v) in m {
        b.add(k, v).expect("add");
    }
    b.finish().expect("finish");
    out
}

fn open<'a>(bytes: &'a [u8], cache: &Arc<BlockCache>) -> Result<Table<&'a [u8]>, TableError> {
    Table::open_cached(
        bytes,
        bytes.len() as u64,
        "cached.sst",
        Comparator::Bytewise,
        Some(Arc::clone(cache)),
    )
}

fn data_blocks<R: ReadAt>(t: &Table<R>) -> u64 {
    let layout = t.layout().expect("layout");
    layout.iter().filter(|r| r.kind == RegionKind::Data).count() as u64
}

/// Everything a reader can observe: a forward scan, a backward scan, a get of every key
/// and of a key between every two.
fn read_all<R: ReadAt>(t: &Table<R>, m: &Model) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut it = t.iter();
    it.seek_to_first().expect("seek_to_first");
    while it.valid() {
        out.push(Some([it.key(), it.value()].concat()));
        it.next().expect("next");
    }
    it.seek_to_last().expect("seek_to_last");
    while it.valid() {
        out.push(Some([it.key(), it.value()].concat()));
        it.prev().expect("prev");
    }
    for k in m.keys() {
        out.push(t.get(k).expect("get"));
        out.push(t.get(&[k.as_slice(), b"x"].concat()).expect("get absent"));
    }
    out
}

fn expected(m: &Model) -> Vec<Option<Vec<u8>>> {
    let fwd = m.iter().map(|(k, v)| Some([k.as_slice(), v].concat()));
    let mut out: Vec<_> = fwd.clone().chain(fwd.rev()).collect();
    for v in m.values() {
        out.push(Some(v.clone()));
        out.push(None);
    }
    out
}

fn delta(after: CacheStats, before: CacheStats) -> (u64, u64, u64) {
    (
        after.hits - before.hits,
        after.misses - before.misses,
        after.inserts - before.inserts,
    )
}

#[test]
fn second_pass_is_served_from_the_cache() {
    let m = model(2000, b'a');
    let bytes = build(&m);
    let cache = BlockCache::new(8 << 20);
    let t = open(&bytes, &cache).expect("open");
    assert!(t.cache_id().is_some());
    let blocks = data_blocks(&t);
    assert!(blocks > 50, "{blocks} data blocks");

    let s0 = cache.stats();
    let first = read_all(&t, &m);
    assert_eq!(first, expected(&m));
    let s1 = cache.stats();
    let (_, misses, inserts) = delta(s1, s0);
    assert_eq!(misses, blocks, "each block read from the file once");
    assert_eq!(inserts, blocks);
    assert_eq!(s1.entries, blocks);
    assert_eq!(s1.evictions, 0);

    let second = read_all(&t, &m);
    assert_eq!(second, first, "identical results from cached blocks");
    let (hits, misses, inserts) = delta(cache.stats(), s1);
    assert_eq!((misses, inserts), (0, 0), "second pass: all hits");
    assert!(hits >= 2 * blocks + m.len() as u64, "{hits} hits");
}

#[test]
fn tables_sharing_a_cache_never_see_each_others_blocks() {
    let (ma, mb) = (model(500, b'a'), model(500, b'b'));
    let (a, b) = (build(&ma), build(&mb));
    assert_eq!(a.len(), b.len(), "same layout, different values");
    let cache = BlockCache::new(8 << 20);
    let ta = open(&a, &cache).expect("open a");
    let tb = open(&b, &cache).expect("open b");
    assert_ne!(ta.cache_id(), tb.cache_id());
    assert_eq!(read_all(&ta, &ma), expected(&ma));
    assert_eq!(read_all(&tb, &mb), expected(&mb));
    assert_eq!(read_all(&ta, &ma), expected(&ma));
    assert_eq!(cache.stats().misses, data_blocks(&ta) + data_blocks(&tb));

    // Erasing one table's blocks leaves the other's.
    cache.erase_table(ta.cache_id().expect("cached"));
    assert_eq!(cache.stats().entries, data_blocks(&tb));
    let before = cache.stats();
    assert_eq!(read_all(&tb, &mb), expected(&mb));
    assert_eq!(cache.stats().misses, before.misses);
}

/// A damaged data block fails its checksum when read; it is never cached, so it fails
/// again on every read, and reopening the damaged file with a cache full of the intact
/// file's blocks (another table id) does not hide the damage.
#[test]
fn damage_is_reported_with_file_and_offset_and_never_cached() {
    let m = model(500, b'a');
    let good = build(&m);
    let cache = BlockCache::new(8 << 20);
    let intact = open(&good, &cache).expect("open");
    assert_eq!(read_all(&intact, &m), expected(&m));
    let layout = intact.layout().expect("layout");
    let victim = layout
        .iter()
        .filter(|r| r.kind == RegionKind::Data)
        .nth(3)
        .expect("a fourth data block");

    let mut bad = good.clone();
    bad[victim.offset as usize + 10] ^= 0x40;
    let t = open(&bad, &cache).expect("the index is intact");
    let inserts = cache.stats().inserts;
    // The first key whose seek fails lies in the damaged block.
    let key = m
        .keys()
        .find(|k| t.iter().seek(k).is_err())
        .expect("some key lies in the damaged block");
    for _ in 0..3 {
        match t.get(key) {
            Err(TableError::Corruption { file, offset, .. }) => {
                assert_eq!(file.to_str(), Some("cached.sst"));
                assert_eq!(offset, victim.offset);
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }
    let mut it = t.iter();
    it.seek_to_first()
        .expect("blocks before the damage are fine");
    let mut err = None;
    while it.valid() {
        if let Err(e) = it.next() {
            err = Some(e);
            break;
        }
    }
    match err {
        Some(TableError::Corruption { offset, .. }) => assert_eq!(offset, victim.offset),
        other => panic!("scan must fail at the damaged block, got {other:?}"),
    }
    let cached = cache.stats().inserts - inserts;
    assert_eq!(cached, 3, "only the three intact blocks before the damage");
    // The intact table still reads from its cached blocks.
    assert_eq!(read_all(&intact, &m), expected(&m));
}

#[test]
fn a_tiny_cache_evicts_and_stays_correct() {
    let m = model(2000, b'a');
    let bytes = build(&m);
    // Room for about four 256-byte blocks and their overhead.
    let cache = BlockCache::new(2000);
    let t = open(&bytes, &cache).expect("open");
    for _ in 0..2 {
        assert_eq!(read_all(&t, &m), expected(&m));
    }
    let s = cache.stats();
    assert!(s.evictions > 0 && s.hits > 0, "{s:?}");
    assert!(s.used_bytes <= s.capacity_bytes, "{s:?}");
    assert!((1..=5).contains(&s.entries), "{s:?}");
}

#[test]
fn a_disabled_cache_only_counts() {
    let m = model(300, b'a');
    let bytes = build(&m);
    let cache = BlockCache::new(0);
    let t = open(&bytes, &cache).expect("open");
    assert_eq!(read_all(&t, &m), expected(&m));
    assert_eq!(read_all(&t, &m), expected(&m));
    let s = cache.stats();
    assert_eq!((s.hits, s.inserts, s.entries, s.used_bytes), (0, 0, 0, 0));
    assert!(s.misses >= 2 * data_blocks(&t));
    // And no cache at all reads the same.
    let plain = Table::open(
        &bytes[..],
        bytes.len() as u64,
        "p.sst",
        Comparator::Bytewise,
    )
    .expect("open");
    assert_eq!(plain.cache_id(), None);
    assert_eq!(read_all(&plain, &m), expected(&m));
}

/// Four threads share one table and one small cache. A get of a stored key reads exactly
/// one data block, so lookups are countable from outside: hits + misses must equal them.
#[test]
fn four_threads_share_a_table_and_its_cache() {
    const THREADS: usize = 4;
    const GETS: usize = 5000;
    let m = model(3000, b'a');
    let bytes = build(&m);
    let keys: Vec<(Vec<u8>, Vec<u8>)> = m.into_iter().collect();
    let cache = BlockCache::new(16 << 10);
    let t = Table::open_cached(
        Arc::new(bytes.clone()),
        bytes.len() as u64,
        "shared.sst",
        Comparator::Bytewise,
        Some(Arc::clone(&cache)),
    )
    .expect("open");
    thread::scope(|s| {
        for i in 0..THREADS {
            let (t, keys) = (&t, &keys);
            s.spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1);
                for _ in 0..GETS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (k, v) = &keys[(x % keys.len() as u64) as usize];
                    assert_eq!(t.get(k).expect("get").as_ref(), Some(v));
                }
            });
        }
    });
    let s = cache.stats();
    assert_eq!(s.hits + s.misses, (THREADS * GETS) as u64, "{s:?}");
    assert!(s.hits > 0 && s.evictions > 0, "{s:?}");
    assert!(s.used_bytes <= s.capacity_bytes, "{s:?}");
}

#[test]
fn tables_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn for_every_source<R: ReadAt + Send + Sync>() {
        send_sync::<Table<R>>();
    }
    for_every_source::<std::fs::File>();
    for_every_source::<Arc<Vec<u8>>>();
    send_sync::<Arc<BlockCache>>();
}
