//! The seeded mutator: a small, deterministic PRNG and the mutations it applies to corpus
//! entries. Same seed, same corpus: same inputs, in the same order.

/// SplitMix64: tiny, fast, and good enough to pick mutations (not for cryptography).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Values that tend to break length and offset handling: zero, one, sign and width
/// boundaries, and the format limits of this code base (the 27-bit frame length, the
/// 128 MiB block bound, the 64 MiB manifest record bound, the WAL's largest sequence
/// number 2^63 - 1).
const INTERESTING: [u64; 23] = [
    0,
    1,
    7,
    8,
    9,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    (1 << 27) - 1,
    1 << 27,
    64 << 20,
    128 << 20,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

/// A value for a length or offset field: an interesting constant, or one near the input's
/// own length (a field pointing just inside or just past the end).
fn interesting(rng: &mut Rng, len: usize) -> u64 {
    if rng.one_in(3) {
        (len as u64)
            .wrapping_add(rng.below(17) as u64)
            .wrapping_sub(8)
    } else {
        INTERESTING[rng.below(INTERESTING.len())]
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Applies one to eight random mutations to `data` (a copy of a corpus entry), splicing
/// with `other` (another corpus entry) sometimes; the result is at most `max_len` bytes.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], max_len: usize) {
    // Mostly few mutations (most inputs stay close to a valid one), sometimes many.
    let most = 1 + rng.below(8);
    let count = 1 + rng.below(most);
    for _ in 0..count {
        mutate_once(rng, data, other, max_len);
    }
    data.truncate(max_len);
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], max_len: usize) {
    let len = data.len();
    match rng.below(14) {
        // Flip one bit.
        0 | 1 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        // Set one byte.
        2 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next_u64() as u8;
        }
        // Write an interesting value as a little-endian u8/u16/u32/u64, or big-endian
        // (internal key trailers are big-endian).
        3 | 4 if len > 0 => {
            let width = [1usize, 2, 4, 8][rng.below(4)];
            let v = interesting(rng, len);
            let bytes = if rng.one_in(4) {
                v.to_be_bytes()[8 - width..].to_vec()
            } else {
                v.to_le_bytes()[..width].to_vec()
            };
            let i = rng.below(len);
            let n = width.min(len - i);
            data[i..i + n].copy_from_slice(&bytes[..n]);
        }
        // Overwrite with an interesting varint (table and manifest lengths are varints).
        5 if len > 0 => {
            let mut v = Vec::new();
            put_varint(&mut v, interesting(rng, len));
            let i = rng.below(len);
            let n = v.len().min(len - i);
            data[i..i + n].copy_from_slice(&v[..n]);
        }
        // Truncate.
        6 => {
            let keep = rng.below(len + 1);
            data.truncate(keep);
        }
        // Extend with zeros, 0xff or random bytes.
        7 => {
            let most = 1 + rng.below(4096);
            let n = rng.below(most);
            let fill = rng.below(3);
            for _ in 0..n.min(max_len.saturating_sub(data.len())) {
                data.push(match fill {
                    0 => 0,
                    1 => 0xff,
                    _ => rng.next_u64() as u8,
                });
            }
        }
        // Splice: a prefix of this entry and a suffix of another.
        8 if !other.is_empty() => {
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        // Copy a chunk within the input over another place.
        9 if len > 1 => {
            let n = 1 + rng.below(len.min(256));
            let src = rng.below(len - n + 1);
            let dst = rng.below(len - n + 1);
            data.copy_within(src..src + n, dst);
        }
        // Duplicate a chunk (insert a copy of it).
        10 if len > 0 => {
            let n = 1 + rng.below(len.min(256));
            let src = rng.below(len - n + 1);
            let at = rng.below(len + 1);
            let chunk = data[src..src + n].to_vec();
            data.splice(at..at, chunk);
        }
        // Delete a chunk.
        11 if len > 0 => {
            let n = 1 + rng.below(len.min(256));
            let at = rng.below(len - n + 1);
            data.drain(at..at + n);
        }
        // Zero a range, sometimes a whole 4 KiB page (a torn or lost page write).
        12 if len > 0 => {
            let (at, n) = if rng.one_in(2) && len > 4096 {
                let page = rng.below(len / 4096);
                (page * 4096, 4096)
            } else {
                let at = rng.below(len);
                (at, 1 + rng.below((len - at).min(64)))
            };
            data[at..at + n].fill(0);
        }
        // Overwrite a chunk with a chunk of the other entry.
        13 if len > 0 && !other.is_empty() => {
            let n = 1 + rng.below(other.len().min(len).min(256));
            let src = rng.below(other.len() - n + 1);
            let dst = rng.below(len - n + 1);
            data[dst..dst + n].copy_from_slice(&other[src..src + n]);
        }
        _ => {
            // The chosen mutation needs bytes the input does not have: grow it by one.
            if data.len() < max_len {
                data.push(rng.next_u64() as u8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_mutations() {
        let base: Vec<u8> = (0..200u8).collect();
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..100)
                .map(|_| {
                    let mut d = base.clone();
                    mutate(&mut rng, &mut d, b"other entry", 1000);
                    d
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn results_respect_the_length_bound() {
        let mut rng = Rng::new(1);
        for _ in 0..2000 {
            let mut d = vec![0xAAu8; rng.below(300)];
            mutate(&mut rng, &mut d, &[1u8; 500], 256);
            assert!(d.len() <= 256);
        }
    }
}
