//! One shard's LRU map, bounded by total charge (see the cache's module docs for how the
//! shards use it).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// `(table id, block offset)`.
pub(super) type Key = (u64, u64);

/// The map's hasher: keys are two integers chosen by the engine (not by an adversary), so
/// a splitmix64 mix of each replaces SipHash, which cost more than the rest of a lookup.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        let mut z = (self.0.rotate_left(29) ^ x).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
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
pub(super) struct Lru<V> {
    pub(super) map: HashMap<Key, usize, BuildHasherDefault<KeyHasher>>,
    nodes: Vec<Node<V>>,
    free: Vec<usize>,
    /// Most recently used entry.
    head: usize,
    /// Least recently used entry: the next victim.
    tail: usize,
    pub(super) used_bytes: usize,
    pub(super) capacity_bytes: usize,
}

impl<V: Clone> Lru<V> {
    pub(super) fn new(capacity_bytes: usize) -> Lru<V> {
        Lru {
            map: HashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            used_bytes: 0,
            capacity_bytes,
        }
    }

    /// The value under `key` (borrowed), made the most recently used.
    pub(super) fn get(&mut self, key: Key) -> Option<&V> {
        let i = *self.map.get(&key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        self.nodes[i].value.as_ref()
    }

    /// Inserts (or replaces) `key` as the most recently used entry, then evicts from the
    /// least recently used end until within capacity. Returns how many entries were
    /// evicted, or `None` (and changes nothing) if `charge` alone exceeds the capacity.
    pub(super) fn insert(&mut self, key: Key, value: V, charge: usize) -> Option<u64> {
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
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Key) -> bool) {
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
    pub(super) fn check(&self) -> Vec<Key> {
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
pub(super) mod tests {
    use super::*;

    /// xorshift64*: a seeded generator, so a failure replays.
    pub(in crate::cache) struct Rng(pub(in crate::cache) u64);

    impl Rng {
        pub(in crate::cache) fn below(&mut self, n: u64) -> u64 {
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
                        assert_eq!(got.copied(), want, "seed {seed} step {step} get {key:?}");
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
}
