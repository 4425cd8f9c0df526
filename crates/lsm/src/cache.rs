//! The block cache: decoded, verified SSTable data blocks kept in memory, shared by every
//! open table of a database and bounded in bytes.
//!
//! # Shape
//!
//! Entries are keyed by `(table id, block offset)`. A table id comes from
//! [`BlockCache::new_table_id`] when a table is opened, so two opens of one file (or a
//! file number reused after deletion) never see each other's blocks, and a damaged file
//! that is reopened is read (and its damage reported) afresh.
//!
//! The cache is split into up to [`SHARDS_MAX`] shards, picked by a hash of the key; each
//! shard is an LRU list bounded by *charge* (the decoded block's bytes plus
//! [`ENTRY_OVERHEAD_BYTES`] for the bookkeeping) and guarded by its own mutex. A shard
//! holds at least [`SHARD_BYTES_MIN`], so small caches have fewer shards (one shard is an
//! exact LRU): sixteen shards of a 64 KiB cache could not hold a single 4 KiB block each.
//! A block whose charge exceeds its shard's capacity is not inserted at all (it would
//! evict everything and then itself). A capacity of 0 disables the cache: every lookup
//! misses (and is counted), nothing is inserted.
//!
//! # Concurrency protocol
//!
//! - Each shard's LRU (hash map, slab of nodes, list links, byte count) is only touched
//!   under that shard's mutex; no operation holds two shard locks, so there is no lock
//!   order to get wrong. Critical sections are O(1) (except [`BlockCache::erase_table`],
//!   O(entries of the shard)) and run no caller code.
//! - A lookup returns a clone of the cached handle (a reference count increment), so an
//!   eviction never invalidates a block a reader is using: the bytes live until the last
//!   clone is dropped.
//! - Two readers that miss the same block at once both read it and both insert it; the
//!   second insert replaces the first (same contents, same charge). The duplicate read is
//!   accepted rather than adding an in-flight table.
//! - Counters are `AtomicU64` updated with `Relaxed` ordering: they publish nothing but
//!   themselves. `hits`, `misses`, `inserts` and `evictions` are bumped once per event;
//!   `used_bytes` and `entries` are stored under the shard lock after each change. So
//!   [`BlockCache::stats`] takes no lock, and a snapshot taken while other threads work
//!   may mix moments (each counter is exact once the threads are quiet).
//! - A poisoned shard mutex (a panic inside a critical section: a bug, since no caller
//!   code runs there) is entered anyway: the cache holds no data that is not also on
//!   disk, and the engine's readers must not start failing because of it.
//!
//! # What is stored
//!
//! The table module's decoded block type is private to that module, so the cache stores
//! values type-erased (`Arc<dyn Any + Send + Sync>`) with an explicit byte count; the
//! typed `get`/`insert` wrappers live beside the table reader (`table/reader.rs`).

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Most shards a cache is split into (a power of two).
pub const SHARDS_MAX: usize = 16;
/// Smallest capacity of one shard, in bytes: caches below `SHARDS_MAX * SHARD_BYTES_MIN`
/// get fewer shards, so that each still holds many blocks.
pub const SHARD_BYTES_MIN: usize = 512 << 10;
/// Bytes charged per entry on top of the decoded block: the slab node (~56 bytes), the
/// hash map slot (~30), the shared block handle and its header (~48) and the reference
/// count header of the block bytes (~16), rounded up. An estimate, so that a cache of many
/// tiny blocks still respects its memory bound.
pub const ENTRY_OVERHEAD_BYTES: usize = 160;

const _: () = assert!(SHARDS_MAX.is_power_of_two());

/// A cached value: a decoded block behind a shared handle (see the module docs).
pub(crate) type CacheValue = Arc<dyn Any + Send + Sync>;

/// `(table id, block offset)`.
type Key = (u64, u64);

/// Counters of a [`BlockCache`], summed over its shards (see [`BlockCache::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found their block.
    pub hits: u64,
    /// Lookups that did not (including every lookup of a disabled cache).
    pub misses: u64,
    /// Blocks inserted (a block too large for its shard, or any block offered to a
    /// disabled cache, is not inserted and not counted).
    pub inserts: u64,
    /// Blocks evicted to make room (not those removed by [`BlockCache::erase_table`]).
    pub evictions: u64,
    /// Bytes charged by the cached blocks (decoded bytes plus [`ENTRY_OVERHEAD_BYTES`]
    /// each); at most `capacity_bytes`.
    pub used_bytes: u64,
    /// The capacity the cache was created with.
    pub capacity_bytes: u64,
    /// Blocks cached.
    pub entries: u64,
}

/// A sharded LRU cache of decoded data blocks, shared by the tables of a database
/// (`Send + Sync`; hand it to [`crate::table::Table::open_cached`] as an `Arc`). See the
/// module documentation.
pub struct BlockCache {
    shards: Box<[Shard]>,
    capacity_bytes: usize,
    next_table_id: AtomicU64,
}

impl fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockCache")
            .field("shards", &self.shards.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of charge (decoded block bytes plus
    /// [`ENTRY_OVERHEAD_BYTES`] per block). A capacity of 0 disables caching.
    pub fn new(capacity_bytes: usize) -> Arc<BlockCache> {
        Arc::new(BlockCache::with_shards(
            capacity_bytes,
            shard_count(capacity_bytes),
        ))
    }

    /// A cache of exactly `shards` shards (a power of two); the capacity is divided among
    /// them to the byte.
    fn with_shards(capacity_bytes: usize, shards: usize) -> BlockCache {
        assert!(
            shards.is_power_of_two() && shards <= SHARDS_MAX,
            "shard count {shards} must be a power of two up to {SHARDS_MAX}"
        );
        let shards = (0..shards)
            .map(|i| {
                let extra = usize::from(i < capacity_bytes % shards);
                Shard::new(capacity_bytes / shards + extra)
            })
            .collect();
        BlockCache {
            shards,
            capacity_bytes,
            next_table_id: AtomicU64::new(1),
        }
    }

    /// A new id, never returned before by this cache, for a table being opened. Blocks are
    /// cached under it: the id, not the file name, tells tables apart.
    pub fn new_table_id(&self) -> u64 {
        // Uniqueness is all that matters; 2^64 opens do not happen.
        self.next_table_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The counters, summed over the shards without taking any lock (see the module docs
    /// on what a snapshot taken under concurrent use means).
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats {
            capacity_bytes: self.capacity_bytes as u64,
            ..CacheStats::default()
        };
        for shard in self.shards.iter() {
            s.hits += shard.hits.load(Ordering::Relaxed);
            s.misses += shard.misses.load(Ordering::Relaxed);
            s.inserts += shard.inserts.load(Ordering::Relaxed);
            s.evictions += shard.evictions.load(Ordering::Relaxed);
            s.used_bytes += shard.used_bytes.load(Ordering::Relaxed);
            s.entries += shard.entries.load(Ordering::Relaxed);
        }
        s
    }

    /// Drops every cached block of `table_id` (for a table whose file is being deleted).
    /// Optional: blocks of a closed table are never looked up again and age out of the LRU
    /// anyway. Costs a scan of the whole cache under each shard's lock in turn.
    pub fn erase_table(&self, table_id: u64) {
        for shard in self.shards.iter() {
            let mut lru = shard.lock();
            lru.retain(|key| key.0 != table_id);
            shard.publish_size(&lru);
        }
    }

    /// The value cached under `(table_id, offset)`, now the most recently used of its
    /// shard. Counts a hit or a miss.
    pub(crate) fn get_value(&self, table_id: u64, offset: u64) -> Option<CacheValue> {
        let key = (table_id, offset);
        let shard = self.shard(key);
        let found = if self.capacity_bytes == 0 {
            None
        } else {
            shard.lock().get(key)
        };
        let counter = if found.is_some() {
            &shard.hits
        } else {
            &shard.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `value` (a decoded block of `block_bytes` bytes) under `(table_id, offset)`
    /// as the most recently used entry of its shard, replacing any value already there and
    /// evicting least recently used entries until the shard is within its capacity. A
    /// value whose charge exceeds the shard's capacity is dropped instead.
    pub(crate) fn insert_value(
        &self,
        table_id: u64,
        offset: u64,
        value: CacheValue,
        block_bytes: usize,
    ) {
        if self.capacity_bytes == 0 {
            return;
        }
        let key = (table_id, offset);
        let shard = self.shard(key);
        let charge = block_bytes.saturating_add(ENTRY_OVERHEAD_BYTES);
        let mut lru = shard.lock();
        let Some(evicted) = lru.insert(key, value, charge) else {
            return;
        };
        shard.publish_size(&lru);
        drop(lru);
        shard.inserts.fetch_add(1, Ordering::Relaxed);
        if evicted > 0 {
            shard.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    fn shard(&self, key: Key) -> &Shard {
        // The shard count is a power of two; take the hash's high bits, the best mixed.
        let i = (mix(key) >> 32) as usize & (self.shards.len() - 1);
        &self.shards[i]
    }
}

/// How many shards a cache of `capacity_bytes` gets: the largest power of two up to
/// [`SHARDS_MAX`] that leaves each shard at least [`SHARD_BYTES_MIN`] (at least one).
fn shard_count(capacity_bytes: usize) -> usize {
    let n = (capacity_bytes / SHARD_BYTES_MIN).clamp(1, SHARDS_MAX);
    1 << n.ilog2()
}

/// A 64-bit hash of a key (the splitmix64 finalizer over both halves): table ids are
/// small consecutive numbers and offsets multiples of similar block sizes, so both must
/// be mixed before a few bits pick a shard.
fn mix((table_id, offset): Key) -> u64 {
    let mut x = offset ^ table_id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One shard: its LRU under a mutex, and its counters (kept per shard so that threads
/// working in different shards do not contend on one counter's cache line).
#[repr(align(128))] // One shard per pair of cache lines: no false sharing between shards.
struct Shard {
    lru: Mutex<Lru<CacheValue>>,
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    evictions: AtomicU64,
    used_bytes: AtomicU64,
    entries: AtomicU64,
}

impl Shard {
    fn new(capacity_bytes: usize) -> Shard {
        Shard {
            lru: Mutex::new(Lru::new(capacity_bytes)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            inserts: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            used_bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru<CacheValue>> {
        // See the module docs on poisoning.
        self.lru.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the size counters; called under the lock after every change.
    fn publish_size(&self, lru: &Lru<CacheValue>) {
        self.used_bytes
            .store(lru.used_bytes as u64, Ordering::Relaxed);
        self.entries.store(lru.map.len() as u64, Ordering::Relaxed);
    }
}

/// End of a list / no node.
const NIL: usize = usize::MAX;

/// A slot of the slab: a cached entry linked into the recency list, or a free slot.
struct Node<V> {
    key: Key,
    /// `None` while the slot is free (listed in `Lru::free`).
    value: Option<V>,
    charge: usize,
    /// Towards the most recently used end.
    prev: usize,
    /// Towards the least recently used end.
    next: usize,
}

/// An LRU map bounded by total charge, O(1) per operation: a hash map from key to slab
/// index, and a doubly linked recency list threaded through the slab by index (no
/// pointers, no `unsafe`). Freed slots are reused, so the slab never outgrows the most
/// entries the capacity admits (capacity / smallest charge).
struct Lru<V> {
    map: HashMap<Key, usize>,
    nodes: Vec<Node<V>>,
    free: Vec<usize>,
    /// Most recently used entry.
    head: usize,
    /// Least recently used entry: the next victim.
    tail: usize,
    used_bytes: usize,
    capacity_bytes: usize,
}

impl<V: Clone> Lru<V> {
    fn new(capacity_bytes: usize) -> Lru<V> {
        Lru {
            map: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            used_bytes: 0,
            capacity_bytes,
        }
    }

    /// The value under `key`, made the most recently used.
    fn get(&mut self, key: Key) -> Option<V> {
        let i = *self.map.get(&key)?;
        self.unlink(i);
        self.push_front(i);
        self.nodes[i].value.clone()
    }

    /// Inserts (or replaces) `key` as the most recently used entry, then evicts from the
    /// least recently used end until within capacity. Returns how many entries were
    /// evicted, or `None` (and changes nothing) if `charge` alone exceeds the capacity.
    fn insert(&mut self, key: Key, value: V, charge: usize) -> Option<u64> {
        if charge > self.capacity_bytes {
            return None;
        }
        if let Some(&i) = self.map.get(&key) {
            let node = &mut self.nodes[i];
            self.used_bytes = self.used_bytes - node.charge + charge;
            node.value = Some(value);
            node.charge = charge;
            self.unlink(i);
            self.push_front(i);
        } else {
            let node = Node {
                key,
                value: Some(value),
                charge,
                prev: NIL,
                next: NIL,
            };
            let i = match self.free.pop() {
                Some(i) => {
                    debug_assert!(self.nodes[i].value.is_none(), "free slot in use");
                    self.nodes[i] = node;
                    i
                }
                None => {
                    self.nodes.push(node);
                    self.nodes.len() - 1
                }
            };
            self.map.insert(key, i);
            self.push_front(i);
            self.used_bytes += charge;
        }
        let mut evicted = 0;
        while self.used_bytes > self.capacity_bytes {
            // The new entry alone fits (checked above), so the victim is never it.
            let victim = self.tail;
            assert!(
                victim != NIL && victim != self.head,
                "LRU over capacity with nothing else to evict"
            );
            self.remove(victim);
            evicted += 1;
        }
        Some(evicted)
    }

    /// Removes every entry whose key fails `keep`.
    fn retain(&mut self, mut keep: impl FnMut(&Key) -> bool) {
        let mut i = self.head;
        while i != NIL {
            let next = self.nodes[i].next;
            if !keep(&self.nodes[i].key) {
                self.remove(i);
            }
            i = next;
        }
    }

    /// Unlinks entry `i`, drops its value and frees its slot.
    fn remove(&mut self, i: usize) {
        self.unlink(i);
        let node = &mut self.nodes[i];
        let removed = self.map.remove(&node.key);
        debug_assert_eq!(removed, Some(i), "map and list disagree");
        // Dropping the value under the lock frees the block's bytes if no reader holds a
        // clone: a deallocation, bounded by one block.
        node.value = None;
        self.used_bytes -= node.charge;
        node.charge = 0;
        self.free.push(i);
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.nodes[i].prev, self.nodes[i].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next].prev = prev;
        }
        self.nodes[i].prev = NIL;
        self.nodes[i].next = NIL;
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head == NIL {
            self.tail = i;
        } else {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
    }

    /// Keys from most to least recently used, checking every invariant on the way: the
    /// links are symmetric, the list holds exactly the mapped entries, free slots hold no
    /// value, and the charges add up to `used_bytes`, within capacity.
    #[cfg(test)]
    fn check(&self) -> Vec<Key> {
        let mut keys = Vec::new();
        let (mut i, mut prev, mut charge) = (self.head, NIL, 0);
        while i != NIL {
            let n = &self.nodes[i];
            assert_eq!(n.prev, prev, "asymmetric link at {i}");
            assert!(n.value.is_some(), "listed slot {i} holds no value");
            assert_eq!(self.map.get(&n.key), Some(&i), "listed slot {i} not mapped");
            assert!(keys.len() < self.nodes.len(), "cycle in the list");
            keys.push(n.key);
            charge += n.charge;
            (prev, i) = (i, n.next);
        }
        assert_eq!(self.tail, prev, "tail is not the last node");
        assert_eq!(keys.len(), self.map.len(), "map holds unlisted entries");
        assert_eq!(keys.len() + self.free.len(), self.nodes.len(), "lost slots");
        assert!(self.free.iter().all(|&f| self.nodes[f].value.is_none()));
        assert_eq!(charge, self.used_bytes, "used_bytes drifted");
        assert!(self.used_bytes <= self.capacity_bytes, "over capacity");
        keys
    }
}

#[cfg(test)]
mod tests {
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

    /// xorshift64*: a seeded generator, so a failure replays.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    /// The LRU against an obviously correct O(n) model: a vector of (key, charge) from
    /// most to least recently used.
    #[test]
    fn lru_matches_a_model() {
        for seed in 1..=20u64 {
            let cap = 1000;
            let mut lru: Lru<u64> = Lru::new(cap);
            let mut model: Vec<(Key, usize, u64)> = Vec::new();
            let mut rng = Rng(seed * 0x9e37_79b9);
            for step in 0..2000u64 {
                let key = (rng.below(3), rng.below(12));
                match rng.below(10) {
                    0..=3 => {
                        let got = lru.get(key);
                        let want = model.iter().position(|e| e.0 == key).map(|p| {
                            let e = model.remove(p);
                            model.insert(0, e);
                            e.2
                        });
                        assert_eq!(got, want, "seed {seed} step {step} get {key:?}");
                    }
                    4..=8 => {
                        let charge = rng.below(400) as usize;
                        let got = lru.insert(key, step, charge);
                        let want = (charge <= cap).then(|| {
                            model.retain(|e| e.0 != key);
                            model.insert(0, (key, charge, step));
                            let mut evicted = 0;
                            while model.iter().map(|e| e.1).sum::<usize>() > cap {
                                model.pop();
                                evicted += 1;
                            }
                            evicted
                        });
                        assert_eq!(got, want, "seed {seed} step {step} insert {key:?}");
                    }
                    _ => {
                        lru.retain(|k| k.0 != key.0);
                        model.retain(|e| e.0 .0 != key.0);
                    }
                }
                let keys: Vec<Key> = model.iter().map(|e| e.0).collect();
                assert_eq!(lru.check(), keys, "seed {seed} step {step}");
                assert!(lru.nodes.len() <= 3 * 12, "slots are reused");
            }
        }
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
}
