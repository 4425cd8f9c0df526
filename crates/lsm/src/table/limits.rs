//! Every bound of the SSTable format in one place, with units in the names (STYLE habit 5).
//!
//! The writer refuses input beyond these bounds with [`super::TableError::TooLarge`]; the
//! reader treats an on-disk length beyond them as corruption, so a damaged length field can
//! never make it allocate or decompress without bound.

/// Largest key accepted (for internal keys: user key plus the 8-byte trailer).
pub const KEY_BYTES_MAX: usize = 1 << 20;
/// Largest value accepted. Larger values belong in blob files (a later milestone).
pub const VALUE_BYTES_MAX: usize = 64 << 20;
/// Largest decoded (uncompressed) block, and the largest stored payload, of any kind.
/// One maximal entry plus its header always fits: see the assertion below.
pub const BLOCK_BYTES_MAX: usize = 128 << 20;
/// Default target size of a data block before compression.
pub const BLOCK_BYTES_DEFAULT: usize = 4 << 10;
/// Smallest target data block size accepted.
pub const BLOCK_BYTES_MIN: usize = 256;
/// Largest target data block size accepted.
pub const BLOCK_BYTES_TARGET_MAX: usize = 16 << 20;
/// Default number of entries between restart points in a data block.
pub const RESTART_INTERVAL_DEFAULT: usize = 16;
/// Largest restart interval accepted (a seek scans at most this many entries linearly).
pub const RESTART_INTERVAL_MAX: usize = 1024;
/// Default bloom filter bits per key (about 1% false positives).
pub const BLOOM_BITS_PER_KEY_DEFAULT: u32 = 10;
/// Largest bits per key accepted (beyond ~30 the false-positive rate is already below one in a million).
pub const BLOOM_BITS_PER_KEY_MAX: u32 = 32;
/// Most entries in one table: bounds the builder's filter memory (8 bytes per key) and
/// keeps the filter block under [`BLOCK_BYTES_MAX`] at any accepted bits per key.
pub const TABLE_ENTRIES_MAX: u64 = 16 << 20;
/// zstd levels accepted (zstd's own range, without the "fast" negative levels).
pub const ZSTD_LEVEL_MIN: i32 = 1;
/// Highest zstd level accepted.
pub const ZSTD_LEVEL_MAX: i32 = 22;
/// Default zstd level: fast to write, and decoding speed does not depend on the level.
pub const ZSTD_LEVEL_DEFAULT: i32 = 3;

// A maximal entry (three 5-byte varints, key, value) must fit in one block.
const _: () = assert!(15 + KEY_BYTES_MAX + VALUE_BYTES_MAX + 8 < BLOCK_BYTES_MAX);
// The largest filter (bits/key × entries, in bytes) must fit in one block.
const _: () =
    assert!((BLOOM_BITS_PER_KEY_MAX as u64 * TABLE_ENTRIES_MAX) / 8 + 64 < BLOCK_BYTES_MAX as u64);
