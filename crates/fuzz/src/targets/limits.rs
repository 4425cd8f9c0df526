//! The bounds every target shares.

/// Cursor moves allowed per walk: far above any seed's entry count, so a walk that needs
/// more is a decoder that does not advance (reported as a failure by the walk itself).
pub(super) const STEPS_MAX: usize = 1 << 20;

/// Bytes every target may allocate regardless of its input: formatted error messages,
/// small vectors, the table reader's per-table state.
pub(super) const FIXED_BYTES_DEFAULT: u64 = 64 << 10;

/// How many bytes of decoded structure one input byte may become in the manifest targets:
/// the smallest encoded added file is 10 bytes (tag, level, number, size, two empty keys,
/// entries, two sequence numbers: one byte each) and becomes a `(u32, FileMeta)` of 96
/// bytes; a `Vec` that grows by doubling may hold twice its length. 10 bytes → 192: about
/// 19×, rounded up to 32.
pub(super) const STRUCT_EXPANSION: u64 = 32;
