//! The bloom filter: one per table, over the filter keys of all its entries (whole keys
//! for [`Comparator::Bytewise`](super::Comparator::Bytewise), user keys for internal keys).
//!
//! Why per table and not per data block: a point lookup then costs one filter probe and,
//! when the filter says "maybe", exactly one index search and one data block read; a
//! per-block filter would need the index search first and a filter block read per
//! candidate block. Tables are bounded ([`super::limits::TABLE_ENTRIES_MAX`]), so a
//! whole-table filter stays small enough to keep in memory while the table is open
//! (RocksDB's "full filter" makes the same choice).
//!
//! The filter block is stored like every block ([`super::trailer`]), never compressed:
//!
//! ```text
//! offset  size  field
//!      0     m  bit array, m >= 8 bytes: bit j is (byte j / 8 >> j % 8) & 1
//!      m     1  k: probes per key, 1..=30
//! ```
//!
//! Probes use double hashing over one 64-bit hash [`hash64`] of the key: probe `i` sets
//! bit `(h + i * delta) mod (8 m)` with `delta = rotate_left(h, 21) | 1`. `k` is
//! `round(bits_per_key × ln 2)`, the value that minimises the false-positive rate.
//! `hash64` is part of the format: changing it needs a new format version.

use super::coding::get_u64_le;

/// Largest number of probes per key.
const PROBES_MAX: u32 = 30;
/// Smallest bit array, in bytes (so tiny tables still get a useful filter).
const BITS_BYTES_MIN: usize = 8;

/// The format's 64-bit key hash: 8-byte little-endian words mixed multiplicatively, then
/// finalised with the MurmurHash3 64-bit finaliser so every input bit affects every output
/// bit. Stable forever (it is on disk, implicitly, in every filter).
pub(crate) fn hash64(key: &[u8]) -> u64 {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let mut h = 0x2545_f491_4f6c_dd1d ^ (key.len() as u64).wrapping_mul(K1);
    let mut chunks = key.chunks_exact(8);
    let mix = |h: u64, w: u64| {
        let w = w.wrapping_mul(K2).rotate_left(31).wrapping_mul(K1);
        (h ^ w)
            .rotate_left(27)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729)
    };
    for c in &mut chunks {
        h = mix(h, get_u64_le(c, 0).unwrap_or(0));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(w));
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn probes_for(bits_per_key: u32) -> u32 {
    // round(bits_per_key * ln 2), computed in integers: ln 2 ≈ 0.693.
    ((bits_per_key * 693 + 500) / 1000).clamp(1, PROBES_MAX)
}

/// Collects key hashes and builds the filter block when the table is finished.
pub(crate) struct FilterBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

impl FilterBuilder {
    /// A builder for `bits_per_key >= 1` (validated by the table options).
    pub(crate) fn new(bits_per_key: u32) -> FilterBuilder {
        assert!(
            bits_per_key >= 1,
            "bloom filter needs at least one bit per key"
        );
        FilterBuilder {
            bits_per_key,
            hashes: Vec::new(),
        }
    }

    /// Adds a filter key. Adding the same key twice in a row is free (versions of one user
    /// key are adjacent in a table).
    pub(crate) fn add(&mut self, filter_key: &[u8]) {
        let h = hash64(filter_key);
        if self.hashes.last() != Some(&h) {
            self.hashes.push(h);
        }
    }

    /// Builds the filter block (undecorated: the caller stores it with a trailer).
    pub(crate) fn finish(&self) -> Vec<u8> {
        let bits_wanted = self.hashes.len().saturating_mul(self.bits_per_key as usize);
        let bytes = bits_wanted.div_ceil(8).max(BITS_BYTES_MIN);
        let bits = (bytes * 8) as u64;
        let k = probes_for(self.bits_per_key);
        let mut out = vec![0u8; bytes + 1];
        for &h in &self.hashes {
            let delta = h.rotate_left(21) | 1;
            let mut x = h;
            for _ in 0..k {
                let bit = (x % bits) as usize;
                out[bit / 8] |= 1 << (bit % 8);
                x = x.wrapping_add(delta);
            }
        }
        out[bytes] = k as u8;
        out
    }
}

/// A decoded filter block.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    bits: Vec<u8>,
    probes: u32,
}

impl Filter {
    /// Validates a decoded filter block; the error is a reason.
    pub(crate) fn new(mut block: Vec<u8>) -> Result<Filter, &'static str> {
        let Some(k) = block.pop() else {
            return Err("empty filter block");
        };
        if block.len() < BITS_BYTES_MIN {
            return Err("filter bit array shorter than 8 bytes");
        }
        if k == 0 || u32::from(k) > PROBES_MAX {
            return Err("filter probe count out of range");
        }
        Ok(Filter {
            bits: block,
            probes: u32::from(k),
        })
    }

    /// False if `filter_key` is certainly not in the table; true if it may be.
    pub(crate) fn may_contain(&self, filter_key: &[u8]) -> bool {
        let bits = (self.bits.len() * 8) as u64;
        let h = hash64(filter_key);
        let delta = h.rotate_left(21) | 1;
        let mut x = h;
        for _ in 0..self.probes {
            let bit = (x % bits) as usize;
            if self.bits[bit / 8] & (1 << (bit % 8)) == 0 {
                return false;
            }
            x = x.wrapping_add(delta);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Vec<u8> {
        // Similar keys on purpose: hashes must separate neighbours.
        format!("user:{i:012}").into_bytes()
    }

    fn build(n: u64, bits_per_key: u32) -> Filter {
        let mut b = FilterBuilder::new(bits_per_key);
        for i in 0..n {
            b.add(&key(i));
        }
        Filter::new(b.finish()).expect("valid filter")
    }

    #[test]
    fn no_false_negatives() {
        for n in [0u64, 1, 10, 1000] {
            let f = build(n, 10);
            for i in 0..n {
                assert!(f.may_contain(&key(i)), "n={n} key {i}");
            }
        }
    }

    /// Statistical: 10,000 keys, 100,000 absent probes (deterministic keys, so the result
    /// is the same on every run); the observed rate must be within 1.3× of the theoretical
    /// `(1 - e^(-k/b))^k` plus a small slack for sampling.
    #[test]
    fn false_positive_rate_matches_theory() {
        let n = 10_000u64;
        for bits_per_key in [4u32, 6, 10, 16] {
            let f = build(n, bits_per_key);
            let probes = 100_000u64;
            let fp = (0..probes)
                .filter(|i| f.may_contain(&key(n + 1_000_000 + i)))
                .count() as f64
                / probes as f64;
            let k = f64::from(probes_for(bits_per_key));
            let theory = (1.0 - (-k / f64::from(bits_per_key)).exp()).powf(k);
            assert!(
                fp <= theory * 1.3 + 0.001,
                "bits/key {bits_per_key}: fp {fp:.5} vs theory {theory:.5}"
            );
            if bits_per_key == 10 {
                assert!(fp < 0.0125, "10 bits/key: fp {fp:.5}");
            }
        }
    }

    #[test]
    fn probes_follow_bits_per_key() {
        assert_eq!(probes_for(1), 1);
        assert_eq!(probes_for(10), 7);
        assert_eq!(probes_for(32), 22);
        assert_eq!(build(100, 10).probes, 7);
    }

    #[test]
    fn hash_is_stable() {
        // Pinned: these values are part of the on-disk format.
        let pinned = [hash64(b""), hash64(b"a"), hash64(b"user:000000000042")];
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u64; 3] = [0xb800bd6c02472607, 0x74a78b374c3e8a4b, 0x85830928b2eee975];

    #[test]
    fn malformed_filter_blocks_are_rejected() {
        assert!(Filter::new(vec![]).is_err());
        assert!(Filter::new(vec![0; 5]).is_err());
        assert!(
            Filter::new(vec![0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(),
            "k = 0"
        );
        assert!(
            Filter::new(vec![0, 0, 0, 0, 0, 0, 0, 0, 31]).is_err(),
            "k > 30"
        );
        assert!(Filter::new(vec![0, 0, 0, 0, 0, 0, 0, 0, 30]).is_ok());
    }
}
