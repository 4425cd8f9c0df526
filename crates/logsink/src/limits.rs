//! Every bound of the log sink, with units in the names, and the defaults of its options.

/// Raw (uncompressed) bytes a block collects before it is compressed and written.
pub const BLOCK_RAW_BYTES_DEFAULT: usize = 128 * 1024;
/// Bounds of `block_raw_bytes`.
pub const BLOCK_RAW_BYTES_MIN: usize = 4 * 1024;
/// Upper bound of `block_raw_bytes` (a block's lengths are u32; this keeps a block's
/// decompression buffer small).
pub const BLOCK_RAW_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The commit ring producers copy lines into.
pub const RING_BYTES_DEFAULT: usize = 16 * 1024 * 1024;
/// Bounds of `ring_bytes` (a power of two).
pub const RING_BYTES_MIN: usize = 64 * 1024;
/// Upper bound of `ring_bytes`.
pub const RING_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// A segment is sealed and the next one started once it reaches this many bytes.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Bounds of `segment_bytes`.
pub const SEGMENT_BYTES_MIN: u64 = 64 * 1024;
/// Upper bound of `segment_bytes`.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 40;
/// `sync: interval`: the group fdatasync period.
pub const SYNC_INTERVAL_MS_DEFAULT: u64 = 1000;
/// Bounds of the sync interval.
pub const SYNC_INTERVAL_MS_MIN: u64 = 1;
/// Upper bound of the sync interval.
pub const SYNC_INTERVAL_MS_MAX: u64 = 3_600_000;
/// A partial block is written (not synced) once its first line is this old, so that
/// readers see quiet stores' lines (`sync: none` relies on it alone).
pub const BLOCK_AGE_MS_MAX: u64 = 1000;
/// zstd level of block compression.
pub const ZSTD_LEVEL_DEFAULT: i32 = 1;
/// Bounds of the zstd level.
pub const ZSTD_LEVEL_MIN: i32 = 1;
/// Upper bound of the zstd level.
pub const ZSTD_LEVEL_MAX: i32 = 19;
/// How long a sleeping writer with unfinished work (a partial block, unsynced bytes) waits
/// before it looks again; producers wake it earlier only when the ring is a quarter full or
/// a flush is requested (so a write costs no wake-up on the hot path).
pub const WRITER_POLL_MS: u64 = 10;
/// How often the writer applies age-based retention while no rotation happens.
pub const RETENTION_CHECK_MS: u64 = 10_000;
/// Longest trace-id field name.
pub const TRACE_FIELD_BYTES_MAX: usize = 64;

const _: () = assert!(BLOCK_RAW_BYTES_MIN <= BLOCK_RAW_BYTES_DEFAULT);
const _: () = assert!(BLOCK_RAW_BYTES_DEFAULT <= BLOCK_RAW_BYTES_MAX);
const _: () = assert!(RING_BYTES_DEFAULT.is_power_of_two() && RING_BYTES_MIN.is_power_of_two());
const _: () = assert!(SEGMENT_BYTES_MIN <= SEGMENT_BYTES_DEFAULT);
const _: () = assert!(BLOCK_RAW_BYTES_MAX as u64 <= u32::MAX as u64 / 2);
