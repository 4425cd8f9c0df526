//! Options of [`super::Db::open`], validated with errors that name the option as the user
//! spells it (camelCase).

use crate::manifest::NUM_LEVELS;
use crate::table::Compression;
use uringdb_wal::WalOptions;

use super::error::DbError;
#[cfg(unix)]
use super::limits::MAX_OPEN_FILES_SHARE_OF_RLIMIT;
use super::limits::{
    MAX_OPEN_FILES_DEFAULT, MAX_OPEN_FILES_MAX, MAX_OPEN_FILES_MIN, READER_THREADS_AUTO_MAX,
    READER_THREADS_MAX,
};

/// Options of the key-value database.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// The write-ahead log's options (I/O backend, recovery mode, segment and ring sizes).
    pub wal: WalOptions,
    /// Memtable size that triggers a flush (`memtableBytes`).
    pub memtable_bytes: usize,
    /// Immutable memtables waiting for flush at which writes stop (`maxImmutableMemtables`).
    pub max_immutable_memtables: usize,
    /// Level-0 tables that trigger a compaction into level 1 (`l0CompactionTrigger`).
    pub l0_compaction_trigger: usize,
    /// Level-0 tables at which writes are slowed (`l0SlowdownTrigger`).
    pub l0_slowdown_trigger: usize,
    /// Level-0 tables at which writes stop until compaction catches up (`l0StopTrigger`).
    pub l0_stop_trigger: usize,
    /// Target size of level 1 (`levelBaseBytes`); level n+1 is `levelMultiplier` times level n.
    pub level_base_bytes: u64,
    /// Growth factor between levels (`levelMultiplier`).
    pub level_multiplier: u64,
    /// Target size of one table written by compaction (`targetFileBytes`).
    pub target_file_bytes: u64,
    /// Compression per level (`compression`); the last entry applies to deeper levels.
    pub compression: Vec<Compression>,
    /// Bloom filter bits per key; 0 disables filters (`bloomBitsPerKey`).
    pub bloom_bits_per_key: u32,
    /// Target size of a data block (`blockBytes`).
    pub block_bytes: usize,
    /// Block cache capacity (`cacheBytes`); 0 disables the cache.
    pub cache_bytes: usize,
    /// Compaction threads (`compactionThreads`).
    pub compaction_threads: usize,
    /// Bytes per second that flush and compaction may write; 0 = unlimited
    /// (`compactionRateBytesPerSec`).
    pub rate_limit_bytes_per_sec: u64,
    /// Manifest size past which it is rewritten as one snapshot record
    /// (`manifestRewriteBytes`; not exposed to JavaScript, where it is always 4 MiB). Tests
    /// set it tiny so that every flush and compaction rewrites the manifest.
    pub manifest_rewrite_bytes: u64,
    /// Table files kept open at most (`maxOpenFiles`); the least recently used beyond it
    /// are closed and reopened when read. Also capped by the process's open-file limit,
    /// see [`DbOptions::effective_max_open_files`].
    pub max_open_files: usize,
    /// Threads serving async reads off the JavaScript thread (`readerThreads`); 0 =
    /// automatic, see [`DbOptions::effective_reader_threads`]. The engine itself does not
    /// read it: the binding's reader pool (process-wide, shared by every open database and
    /// log) grows to the largest count any open asked for.
    pub reader_threads: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            wal: WalOptions::default(),
            memtable_bytes: 64 << 20,
            max_immutable_memtables: 2,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 12,
            l0_stop_trigger: 20,
            level_base_bytes: 256 << 20,
            level_multiplier: 10,
            target_file_bytes: 64 << 20,
            compression: vec![Compression::None, Compression::None, Compression::Lz4],
            bloom_bits_per_key: 10,
            block_bytes: 4096,
            cache_bytes: 64 << 20,
            compaction_threads: 1,
            rate_limit_bytes_per_sec: 0,
            manifest_rewrite_bytes: 4 << 20,
            max_open_files: MAX_OPEN_FILES_DEFAULT,
            reader_threads: 0,
        }
    }
}

impl DbOptions {
    /// Checks every option; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), DbError> {
        fn check(ok: bool, field: &'static str, message: String) -> Result<(), DbError> {
            if ok {
                Ok(())
            } else {
                Err(DbError::InvalidOption { field, message })
            }
        }
        let o = self;
        check(
            (64 << 10..=4 << 30).contains(&o.memtable_bytes),
            "memtableBytes",
            format!(
                "must be between 65536 and 4294967296, got {}",
                o.memtable_bytes
            ),
        )?;
        check(
            (1..=16).contains(&o.max_immutable_memtables),
            "maxImmutableMemtables",
            format!(
                "must be between 1 and 16, got {}",
                o.max_immutable_memtables
            ),
        )?;
        check(
            (1..=1000).contains(&o.l0_compaction_trigger),
            "l0CompactionTrigger",
            format!(
                "must be between 1 and 1000, got {}",
                o.l0_compaction_trigger
            ),
        )?;
        check(
            o.l0_slowdown_trigger >= o.l0_compaction_trigger && o.l0_slowdown_trigger <= 1000,
            "l0SlowdownTrigger",
            format!(
                "must be between l0CompactionTrigger ({}) and 1000, got {}",
                o.l0_compaction_trigger, o.l0_slowdown_trigger
            ),
        )?;
        check(
            o.l0_stop_trigger >= o.l0_slowdown_trigger && o.l0_stop_trigger <= 1000,
            "l0StopTrigger",
            format!(
                "must be between l0SlowdownTrigger ({}) and 1000, got {}",
                o.l0_slowdown_trigger, o.l0_stop_trigger
            ),
        )?;
        check(
            (1 << 20..=1 << 40).contains(&o.level_base_bytes),
            "levelBaseBytes",
            format!(
                "must be between 1 MiB and 1 TiB, got {}",
                o.level_base_bytes
            ),
        )?;
        check(
            (2..=100).contains(&o.level_multiplier),
            "levelMultiplier",
            format!("must be between 2 and 100, got {}", o.level_multiplier),
        )?;
        check(
            (64 << 10..=4 << 30).contains(&o.target_file_bytes),
            "targetFileBytes",
            format!(
                "must be between 65536 and 4294967296, got {}",
                o.target_file_bytes
            ),
        )?;
        check(
            (1..=NUM_LEVELS).contains(&o.compression.len()),
            "compression",
            format!(
                "must name 1 to {NUM_LEVELS} levels' compression, got {}",
                o.compression.len()
            ),
        )?;
        check(
            (1..=64).contains(&o.compaction_threads),
            "compactionThreads",
            format!("must be between 1 and 64, got {}", o.compaction_threads),
        )?;
        check(
            o.rate_limit_bytes_per_sec == 0
                || (1 << 20..=1 << 50).contains(&o.rate_limit_bytes_per_sec),
            "compactionRateBytesPerSec",
            format!(
                "must be 0 (unlimited) or between 1048576 and 2^50, got {}",
                o.rate_limit_bytes_per_sec
            ),
        )?;
        check(
            (1..=1 << 30).contains(&o.manifest_rewrite_bytes),
            "manifestRewriteBytes",
            format!(
                "must be between 1 and 1073741824, got {}",
                o.manifest_rewrite_bytes
            ),
        )?;
        check(
            (MAX_OPEN_FILES_MIN..=MAX_OPEN_FILES_MAX).contains(&o.max_open_files),
            "maxOpenFiles",
            format!(
                "must be between {MAX_OPEN_FILES_MIN} and {MAX_OPEN_FILES_MAX}, got {}",
                o.max_open_files
            ),
        )?;
        check(
            o.reader_threads <= READER_THREADS_MAX,
            "readerThreads",
            format!(
                "must be between 0 (automatic) and {READER_THREADS_MAX}, got {}",
                o.reader_threads
            ),
        )?;
        check(
            o.cache_bytes <= 1 << 40,
            "cacheBytes",
            format!("must be at most 1 TiB, got {}", o.cache_bytes),
        )?;
        for level in 0..NUM_LEVELS {
            self.table_options(level).validate().map_err(|e| match e {
                crate::table::TableError::InvalidOption { field, message } => {
                    DbError::InvalidOption { field, message }
                }
                other => DbError::Table(other),
            })?;
        }
        Ok(())
    }

    /// The table-file cache's capacity: `max_open_files`, but at most 1 /
    /// [`MAX_OPEN_FILES_SHARE_OF_RLIMIT`] of the process's soft open-file limit (never below
    /// [`MAX_OPEN_FILES_MIN`]), so that the default works under a small `ulimit -n`.
    pub fn effective_max_open_files(&self) -> usize {
        self.max_open_files
            .min(open_files_share().max(MAX_OPEN_FILES_MIN))
    }

    /// The reader pool's size this database asks for: `reader_threads`, or when 0 one per
    /// available core but one (the JavaScript thread, which creates and settles every
    /// read's promise, keeps a core: on 2 cores a second reader thread measured slower, as
    /// it took turns with the JavaScript thread), at least 1, at most
    /// [`READER_THREADS_AUTO_MAX`].
    pub fn effective_reader_threads(&self) -> usize {
        match self.reader_threads {
            0 => std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .saturating_sub(1)
                .clamp(1, READER_THREADS_AUTO_MAX),
            n => n,
        }
    }

    /// How tables of `level` are built.
    pub fn table_options(&self, level: usize) -> crate::table::TableOptions {
        crate::table::TableOptions {
            block_bytes: self.block_bytes,
            // A point read binary-searches a data block's restart keys, then scans its run
            // entry by entry: with 4 instead of 16 the scan touches ~2 cache lines instead
            // of ~16 (random 16-byte keys share almost no prefix, so restart points cost
            // only their 4-byte offsets: +0.8% of a 1M-key table). -12% CPU per getSync.
            restart_interval: 4,
            compression: *self
                .compression
                .get(level)
                .or(self.compression.last())
                .unwrap_or(&Compression::None),
            bloom_bits_per_key: self.bloom_bits_per_key,
            comparator: crate::table::Comparator::InternalKey,
        }
    }

    /// Target bytes of `level` (>= 1).
    pub fn level_target_bytes(&self, level: usize) -> u64 {
        let mut t = self.level_base_bytes;
        for _ in 1..level {
            t = t.saturating_mul(self.level_multiplier);
        }
        t
    }
}

/// 1 / [`MAX_OPEN_FILES_SHARE_OF_RLIMIT`] of the process's soft open-file limit (unbounded
/// when there is none).
#[cfg(unix)]
fn open_files_share() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the valid, exclusively borrowed struct.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if r == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX) / MAX_OPEN_FILES_SHARE_OF_RLIMIT
    } else {
        usize::MAX
    }
}

/// Windows has no per-process descriptor limit of the Unix kind (handles are plentiful).
#[cfg(not(unix))]
fn open_files_share() -> usize {
    usize::MAX
}
