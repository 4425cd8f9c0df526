//! Bounds of the database's options that are not table-format bounds (those are in
//! [`crate::table::limits`]), with units in the names. The façade's option schema repeats
//! them (`DbOptionsSchema` in index.ts).

/// Fewest table files the table-file cache may keep open (`maxOpenFiles`): a compaction reads
/// a few tables at once, and with fewer it would reopen a file for nearly every block.
pub const MAX_OPEN_FILES_MIN: usize = 16;
/// Most table files the table-file cache may keep open.
pub const MAX_OPEN_FILES_MAX: usize = 1 << 20;
/// Default of `maxOpenFiles` (as LevelDB's). The cap actually used is also at most half of
/// the process's open-file limit (`RLIMIT_NOFILE`), see [`MAX_OPEN_FILES_SHARE_OF_RLIMIT`].
pub const MAX_OPEN_FILES_DEFAULT: usize = 1000;
/// The table-file cache keeps at most 1/N of the process's soft `RLIMIT_NOFILE` open (but
/// never fewer than [`MAX_OPEN_FILES_MIN`]), so that a small `ulimit -n` leaves descriptors
/// for the log, the manifest, compaction outputs and the rest of the process.
pub const MAX_OPEN_FILES_SHARE_OF_RLIMIT: usize = 2;

const _: () = assert!(MAX_OPEN_FILES_MIN <= MAX_OPEN_FILES_DEFAULT);
const _: () = assert!(MAX_OPEN_FILES_DEFAULT <= MAX_OPEN_FILES_MAX);

/// Most threads of the binding's reader pool (`readerThreads`).
pub const READER_THREADS_MAX: usize = 64;
/// The reader pool's size when `readerThreads` is 0 (automatic): one thread per core but
/// one, at most this many (beyond four, async reads on a shared machine gain little and each
/// thread holds a stack).
pub const READER_THREADS_AUTO_MAX: usize = 4;

const _: () = assert!(READER_THREADS_AUTO_MAX <= READER_THREADS_MAX);

/// Longest stream or consumer name, in bytes (the rules are in `op`'s docs: ASCII
/// `[A-Za-z0-9._:/-]`, a letter or digit first).
pub const STREAM_NAME_BYTES_MAX: usize = 128;
