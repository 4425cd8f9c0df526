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
//!
//! # Files
//!
//! This file is the cache the tables see ([`BlockCache`]: sharding, counters, the
//! type-erased values); `lru.rs` is one shard's LRU map, bounded by charge.

mod lru;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lru::{Key, Lru};

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
    #[cfg(test)]
    pub(crate) fn get_value(&self, table_id: u64, offset: u64) -> Option<CacheValue> {
        self.get_value_with(table_id, offset, CacheValue::clone)
    }

    /// `f` of the value cached under `(table_id, offset)` (now the most recently used of its
    /// shard), called under the shard's lock: a reader that wants the typed block inside
    /// clones only that, not the shared handle around it too. Counts a hit or a miss.
    pub(crate) fn get_value_with<T>(
        &self,
        table_id: u64,
        offset: u64,
        f: impl FnOnce(&CacheValue) -> T,
    ) -> Option<T> {
        let key = (table_id, offset);
        let shard = self.shard(key);
        let found = if self.capacity_bytes == 0 {
            None
        } else {
            shard.lock().get(key).map(f)
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
