//! The block cache's tests: LRU order, charge accounting, sharding, concurrent use.

use super::lru::tests::Rng;
use super::*;
use std::collections::HashSet;
use std::thread;

const OH: usize = ENTRY_OVERHEAD_BYTES;

fn value(key: Key) -> CacheValue {
    Arc::new(key)
}

fn get(c: &BlockCache, t: u64, o: u64) -> Option<Key> {
    c.get_value(t, o).map(|v| {
        *v.downcast_ref::<Key>()
            .expect("the cache returns what was stored")
    })
}

fn put(c: &BlockCache, t: u64, o: u64, bytes: usize) {
    c.insert_value(t, o, value((t, o)), bytes);
}

/// Most to least recently used keys of a one-shard cache, invariants checked.
fn order(c: &BlockCache) -> Vec<Key> {
    assert_eq!(c.shards.len(), 1);
    c.shards[0].lock().check()
}

#[test]
fn evicts_the_least_recently_used() {
    let c = BlockCache::new(3 * (100 + OH));
    put(&c, 1, 0, 100);
    put(&c, 1, 1, 100);
    put(&c, 1, 2, 100);
    assert_eq!(order(&c), [(1, 2), (1, 1), (1, 0)]);
    // A hit refreshes: (1, 0) is now the most recent, (1, 1) the next victim.
    assert_eq!(get(&c, 1, 0), Some((1, 0)));
    assert_eq!(order(&c), [(1, 0), (1, 2), (1, 1)]);
    put(&c, 1, 3, 100);
    assert_eq!(order(&c), [(1, 3), (1, 0), (1, 2)]);
    assert_eq!(get(&c, 1, 1), None);
    assert_eq!(
        c.stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            inserts: 4,
            evictions: 1,
            used_bytes: 3 * (100 + OH) as u64,
            capacity_bytes: 3 * (100 + OH) as u64,
            entries: 3,
        }
    );
}

#[test]
fn capacity_is_counted_in_charge() {
    let cap = 4 * (100 + OH);
    let c = BlockCache::new(cap);
    for o in 0..4 {
        put(&c, 1, o, 100);
    }
    assert_eq!(c.stats().used_bytes, cap as u64);
    // One block of two small blocks' charge evicts the two oldest.
    put(&c, 1, 9, 2 * 100 + OH);
    assert_eq!(order(&c), [(1, 9), (1, 3), (1, 2)]);
    assert_eq!(c.stats().evictions, 2);
    assert_eq!(c.stats().used_bytes, cap as u64);
    // Many tiny blocks: the overhead alone bounds how many fit.
    for o in 100..200 {
        put(&c, 2, o, 0);
    }
    assert_eq!(c.stats().entries, (cap / OH) as u64);
    assert_eq!(order(&c).len(), cap / OH);
}

#[test]
fn an_oversized_block_is_not_inserted_and_evicts_nothing() {
    let cap = 2 * (100 + OH);
    let c = BlockCache::new(cap);
    put(&c, 1, 0, 100);
    put(&c, 1, 1, 100);
    put(&c, 1, 2, cap - OH + 1);
    assert_eq!(order(&c), [(1, 1), (1, 0)]);
    assert_eq!(get(&c, 1, 2), None);
    assert_eq!(c.stats().inserts, 2);
    assert_eq!(c.stats().evictions, 0);
    // Exactly the capacity fits, evicting everything else.
    put(&c, 1, 3, cap - OH);
    assert_eq!(order(&c), [(1, 3)]);
    assert_eq!(c.stats().evictions, 2);
    // usize::MAX bytes does not overflow the charge.
    put(&c, 1, 4, usize::MAX);
    assert_eq!(order(&c), [(1, 3)]);
}

#[test]
fn replacing_an_entry_updates_its_charge() {
    let c = BlockCache::new(3 * (100 + OH));
    put(&c, 1, 0, 100);
    put(&c, 1, 1, 100);
    put(&c, 1, 0, 50);
    assert_eq!(order(&c), [(1, 0), (1, 1)]);
    assert_eq!(c.stats().used_bytes, (150 + 2 * OH) as u64);
    assert_eq!(c.stats().entries, 2);
}

#[test]
fn a_disabled_cache_misses_and_counts() {
    let c = BlockCache::new(0);
    put(&c, 1, 0, 0);
    assert_eq!(get(&c, 1, 0), None);
    assert_eq!(get(&c, 1, 0), None);
    assert_eq!(
        c.stats(),
        CacheStats {
            misses: 2,
            ..CacheStats::default()
        }
    );
}

#[test]
fn erase_table_drops_only_that_table() {
    let c = BlockCache::new(64 << 20);
    assert_eq!(c.shards.len(), SHARDS_MAX);
    for t in 1..=3 {
        for o in 0..100 {
            put(&c, t, o * 4096, 4000);
        }
    }
    c.erase_table(2);
    assert_eq!(c.stats().entries, 200);
    assert_eq!(c.stats().used_bytes, 200 * (4000 + OH) as u64);
    assert_eq!(c.stats().evictions, 0);
    for o in 0..100 {
        assert_eq!(get(&c, 1, o * 4096), Some((1, o * 4096)));
        assert_eq!(get(&c, 2, o * 4096), None);
        assert_eq!(get(&c, 3, o * 4096), Some((3, o * 4096)));
    }
    for s in c.shards.iter() {
        s.lock().check();
    }
}

#[test]
fn shard_count_follows_capacity() {
    assert_eq!(shard_count(0), 1);
    assert_eq!(shard_count(SHARD_BYTES_MIN - 1), 1);
    assert_eq!(shard_count(2 * SHARD_BYTES_MIN), 2);
    assert_eq!(shard_count(7 * SHARD_BYTES_MIN), 4);
    assert_eq!(shard_count(SHARDS_MAX * SHARD_BYTES_MIN), SHARDS_MAX);
    assert_eq!(shard_count(usize::MAX), SHARDS_MAX);
    // Capacity is split to the byte.
    let c = BlockCache::with_shards(1003, 4);
    let caps: Vec<usize> = c.shards.iter().map(|s| s.lock().capacity_bytes).collect();
    assert_eq!(caps, [251, 251, 251, 250]);
}

#[test]
fn keys_spread_over_every_shard() {
    let c = BlockCache::new(64 << 20);
    for t in 1..=4 {
        for o in 0..64 {
            put(&c, t, o * 4096, 0);
        }
    }
    for s in c.shards.iter() {
        let n = s.lock().check().len();
        assert!((4..=40).contains(&n), "uneven shard: {n} of 256 entries");
    }
}

#[test]
fn table_ids_are_unique_across_threads() {
    let c = BlockCache::new(0);
    let ids: Vec<u64> = thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..1000).map(|_| c.new_table_id()).collect::<Vec<_>>()))
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 4000);
}

/// Four threads hammer one cache (eight shards, small enough to evict constantly):
/// no deadlock, every hit returns the value stored under its key, and the counters
/// add up once the threads are done.
#[test]
fn concurrent_hammering_keeps_counts_consistent() {
    const THREADS: u64 = 4;
    const OPS: u64 = 20_000;
    let c = BlockCache::with_shards(8 * 20 * (64 + OH), 8);
    let (lookups, inserts): (u64, u64) = thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let c = &c;
                s.spawn(move || {
                    let mut rng = Rng(t + 1);
                    let (mut lookups, mut inserts) = (0, 0);
                    for _ in 0..OPS {
                        let (tid, off) = (rng.below(4), rng.below(100) * 4096);
                        lookups += 1;
                        match get(c, tid, off) {
                            Some(k) => assert_eq!(k, (tid, off), "wrong value"),
                            None => {
                                put(c, tid, off, rng.below(128) as usize);
                                inserts += 1;
                            }
                        }
                        if rng.below(5000) == 0 {
                            c.erase_table(tid);
                        }
                    }
                    (lookups, inserts)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("thread"))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    let st = c.stats();
    assert_eq!(st.hits + st.misses, lookups);
    assert_eq!(lookups, THREADS * OPS);
    assert_eq!(st.inserts, inserts, "every block here fits its shard");
    assert!(st.hits > 0 && st.evictions > 0, "{st:?}");
    let (mut entries, mut used) = (0, 0);
    for s in c.shards.iter() {
        let lru = s.lock();
        entries += lru.check().len() as u64;
        used += lru.used_bytes as u64;
    }
    assert_eq!((st.entries, st.used_bytes), (entries, used));
    assert!(st.used_bytes <= st.capacity_bytes);
}
