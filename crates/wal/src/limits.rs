//! Every bound of the WAL in one place, with units in the names (STYLE habit 5).

/// Default largest size of one segment file (`segmentBytes`): segments grow up to it while
/// writes are heavy (see [`crate::segment`]).
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// Smallest `segmentBytes` accepted.
pub const SEGMENT_BYTES_MIN: u64 = 1 << 20;
/// Size of a new log's first segment, and the smallest a segment shrinks back to while
/// writes are light (never more than `segmentBytes`). Small so that an empty log costs
/// little disk and a quick open; the sizes double from here under load.
pub const SEGMENT_BYTES_FIRST: u64 = 256 << 10;
/// A segment projected (from the rate it is being filled at) to fill faster than this is
/// followed by one twice its size, prepared as soon as it becomes active.
pub const SEGMENT_FILL_FAST_MS: u64 = 1_000;
/// A segment projected to take longer than this to fill is followed by one half its size.
pub const SEGMENT_FILL_SLOW_MS: u64 = 10_000;
/// Largest segment size accepted.
pub const SEGMENT_BYTES_MAX: u64 = 4 << 30;
/// Default capacity of the commit queue (ring buffer).
pub const RING_BYTES_DEFAULT: usize = 32 << 20;
/// Smallest ring accepted.
pub const RING_BYTES_MIN: usize = 1 << 20;
/// Largest ring accepted.
pub const RING_BYTES_MAX: usize = 1 << 30;
/// Default cap on a single record's payload.
pub const RECORD_BYTES_DEFAULT: usize = 8 << 20;
/// Most bytes one commit group writes with one submission.
pub const GROUP_BYTES_MAX: usize = 8 << 20;
/// Default fdatasyncs in flight at once (`WalOptions::syncs_in_flight`), each on its own
/// sync thread (started when first needed); the committer writes the next group while they
/// run, so with one, group N+1 is written while group N's fdatasync runs. Measured on a
/// 2-core VM with 1, 2 and 4 (`benchmark/ab.mjs`, issue 10's closing note): throughput
/// within noise, and CPU per write lowest with one (fewer, larger groups).
pub const SYNCS_IN_FLIGHT_DEFAULT: usize = 1;
/// Largest `WalOptions::syncs_in_flight`.
pub const SYNCS_IN_FLIGHT_MAX: usize = 8;
/// Default `WalOptions::recycle_segments`: freed segment files kept for reuse. Two cover a
/// flush that frees the segments written while a memtable filled (the LSM truncates after
/// each flush) at the cost of up to two largest segments of disk while the log is idle.
pub const RECYCLE_SEGMENTS_DEFAULT: usize = 2;
/// Largest `WalOptions::recycle_segments`.
pub const RECYCLE_SEGMENTS_MAX: usize = 64;
/// Unsynced bytes (from `sync: false` appends) after which the next group is synced anyway.
pub const UNSYNCED_BYTES_MAX: u64 = 16 << 20;
/// Largest commit delay accepted.
pub const COMMIT_DELAY_US_MAX: u64 = 100_000;
/// A sparse index point is kept for every this many bytes of a segment.
pub const INDEX_INTERVAL_BYTES: u64 = 64 << 10;
/// Chunk size for reading and zero-filling segment files.
pub const IO_CHUNK_BYTES: usize = 1 << 20;
/// How long a producer waits for ring space before re-checking for close/failure.
pub const SPACE_WAIT_MS: u64 = 5;
/// Safety-net timeout of the committer's idle park (wake-ups are explicit; this only
/// bounds the cost of a bug in the wake-up protocol).
pub const COMMITTER_PARK_MS: u64 = 50;
/// Largest sequence number a segment may start at: far beyond any real log (2^63 records
/// at ten million a second is 29,000 years), and so far below `u64::MAX` that counting on
/// from it cannot overflow. Recovery reports a segment header beyond it as corruption.
pub const SEQ_MAX: u64 = (1 << 63) - 1;
