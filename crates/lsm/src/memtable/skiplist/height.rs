//! Tower heights: the tallest tower, the branching factor, and the writer's seeded PRNG
//! that draws each node's height.

/// The tallest tower a node can have.
pub(crate) const MAX_HEIGHT: usize = 12;
/// One node in `BRANCHING` of height `h` also has height `h + 1` (p = 1/4).
const BRANCHING: u64 = 4;

/// State only the (single, serialised) writer touches.
pub(super) struct Writer {
    /// splitmix64 state for tower heights.
    pub(super) rng: u64,
}

impl Writer {
    pub(super) fn random_height(&mut self) -> usize {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let mut bits = z ^ (z >> 31);
        let mut height = 1;
        while height < MAX_HEIGHT && bits.is_multiple_of(BRANCHING) {
            height += 1;
            bits /= BRANCHING;
        }
        height
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn heights_are_geometric_and_capped() {
        let mut w = Writer { rng: 42 };
        let mut counts = [0usize; MAX_HEIGHT + 1];
        for _ in 0..100_000 {
            counts[w.random_height()] += 1;
        }
        assert_eq!(counts[0], 0);
        // p = 1/4: about 75% of nodes have height 1, 18.75% height 2.
        assert!((73_000..77_000).contains(&counts[1]), "{counts:?}");
        assert!((17_000..20_500).contains(&counts[2]), "{counts:?}");
        assert!(counts[5] > 0 && counts[5] < 1000, "{counts:?}");
    }
}
