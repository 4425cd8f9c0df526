//! The descriptor of one fuzz target, and the checks every target shares.

use super::env::Env;
use super::fixtures::Fixtures;

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

pub(super) fn nothing_declared(_: &[u8]) -> u64 {
    0
}

/// A walk that ran out of steps is a cursor that does not advance: a decoder bug.
pub(super) fn assert_no_runaway<T>(r: &Result<T, String>) {
    if let Err(e) = r {
        assert!(!e.contains("did not end"), "{e}");
    }
}
