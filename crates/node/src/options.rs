//! Options as they cross from the façade: one object per product with the field names the
//! user writes (the façade's zod schemas parse them first; the engine validates again and
//! names the field). The bounds and defaults are the engine's (`WalOptions`, `DbOptions`);
//! `__defaultOptions` and `__checkOptions` let the façade's drift test compare its schema
//! with them.

use napi_derive::napi;
use uringdb_lsm::db::{DbError, DbOptions};
use uringdb_lsm::table::Compression as TableCompression;
use uringdb_wal::{BackendChoice, FaultConfig, RecoveryMode, WalError, WalOptions};

use crate::errors::{Failure, NativeError, Res};

/// Which I/O backend the log uses.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoBackend {
    /// Probe io_uring at open; fall back to `portable`.
    #[napi(value = "auto")]
    Auto,
    /// io_uring, or fail to open.
    #[napi(value = "io_uring")]
    IoUring,
    /// Positional writes and fdatasync.
    #[napi(value = "portable")]
    Portable,
}

/// What recovery does with damage followed by valid records.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Refuse to open (`ERR_URINGDB_CORRUPTION`).
    #[napi(value = "strict")]
    Strict,
    /// Cut the log at the damage.
    #[napi(value = "tolerant")]
    Tolerant,
}

/// Block compression of one level.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is.
    #[napi(value = "none")]
    None,
    /// LZ4.
    #[napi(value = "lz4")]
    Lz4,
    /// Zstandard (level 3).
    #[napi(value = "zstd")]
    Zstd,
}

/// Options of a log, as the façade passes them.
#[napi(object)]
pub struct NativeLogOptions {
    /// I/O backend.
    pub io_backend: IoBackend,
    /// Largest segment size in bytes (segments grow to it with the write rate).
    pub segment_bytes: f64,
    /// Commit queue size in bytes.
    pub ring_bytes: f64,
    /// Largest record; absent = the largest that fits.
    pub max_record_bytes: Option<f64>,
    /// Commit delay in microseconds.
    pub commit_delay_us: f64,
    /// Recovery mode.
    pub recovery: Recovery,
}

/// Options of a database, as the façade passes them (the same names as `DbOptions` in
/// TypeScript, less `sync`, which the façade applies per write).
#[napi(object)]
pub struct NativeDbOptions {
    /// I/O backend of the log.
    pub io_backend: IoBackend,
    /// Recovery mode of the log.
    pub recovery: Recovery,
    /// Largest log segment size in bytes (segments grow to it with the write rate).
    pub segment_bytes: f64,
    /// Commit queue size in bytes.
    pub ring_bytes: f64,
    /// Commit delay in microseconds.
    pub commit_delay_us: f64,
    /// Memtable flush trigger.
    pub memtable_bytes: f64,
    /// Immutable memtables at which writes stop.
    pub max_immutable_memtables: f64,
    /// Level-0 compaction trigger.
    pub l0_compaction_trigger: f64,
    /// Level-0 slowdown trigger.
    pub l0_slowdown_trigger: f64,
    /// Level-0 stop trigger.
    pub l0_stop_trigger: f64,
    /// Level-1 target size.
    pub level_base_bytes: f64,
    /// Level growth factor.
    pub level_multiplier: f64,
    /// Compaction output file size.
    pub target_file_bytes: f64,
    /// Per level (the last applies below).
    pub compression: Vec<Compression>,
    /// Bloom bits per key.
    pub bloom_bits_per_key: f64,
    /// Data block size.
    pub block_bytes: f64,
    /// Block cache size.
    pub cache_bytes: f64,
    /// Compaction threads.
    pub compaction_threads: f64,
    /// Background write rate limit (0 = none).
    pub compaction_rate_bytes_per_sec: f64,
    /// Table files kept open at most.
    pub max_open_files: f64,
    /// Reader pool threads (0 = automatic).
    pub reader_threads: f64,
}

/// A non-negative safe integer, or the option's error.
fn int(field: &'static str, v: f64) -> Res<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
        Ok(v as u64)
    } else {
        Err(Failure::from(&WalError::InvalidOption {
            field,
            message: format!("must be a non-negative integer, got {v}"),
        }))
    }
}

/// The log's options in the engine's terms (`max_record_bytes` 0 = automatic).
fn wal_options(
    io_backend: IoBackend,
    recovery: Recovery,
    segment_bytes: f64,
    ring_bytes: f64,
    max_record_bytes: Option<f64>,
    commit_delay_us: f64,
) -> Res<WalOptions> {
    // Test-only hook: route I/O through the layer that drops unsynced bytes.
    let fault = match std::env::var("URINGDB_FAULT_VFS") {
        Ok(spec) if !spec.is_empty() => Some(FaultConfig::from_env_str(&spec).map_err(|e| {
            Failure::coded(
                "ERR_URINGDB_INVALID_OPTION",
                format!("URINGDB_FAULT_VFS: {e}"),
            )
        })?),
        _ => None,
    };
    let max_record_bytes = match max_record_bytes {
        Some(v) => Some(int("maxRecordBytes", v)? as usize),
        None => None,
    };
    Ok(WalOptions {
        segment_bytes: int("segmentBytes", segment_bytes)?,
        ring_bytes: int("ringBytes", ring_bytes)? as usize,
        max_record_bytes,
        commit_delay_us: int("commitDelayUs", commit_delay_us)?,
        recovery: match recovery {
            Recovery::Strict => RecoveryMode::Strict,
            Recovery::Tolerant => RecoveryMode::Tolerant,
        },
        backend: match io_backend {
            IoBackend::Auto => BackendChoice::Auto,
            IoBackend::IoUring => BackendChoice::IoUring,
            IoBackend::Portable => BackendChoice::Portable,
        },
        // The engine's choice; not a JavaScript option.
        syncs_in_flight: uringdb_wal::limits::SYNCS_IN_FLIGHT_DEFAULT,
        // The engine's default; not a JavaScript option (yet).
        recycle_segments: uringdb_wal::limits::RECYCLE_SEGMENTS_DEFAULT,
        fault,
    })
}

impl NativeLogOptions {
    /// The engine's options.
    pub(crate) fn to_wal(&self) -> Res<WalOptions> {
        // A standalone log keeps `truncateBefore`'s promise to free the removed segments'
        // disk space: no recycling (a database's log recycles, the engine's default).
        wal_options(
            self.io_backend,
            self.recovery,
            self.segment_bytes,
            self.ring_bytes,
            self.max_record_bytes,
            self.commit_delay_us,
        )
        .map(|w| WalOptions {
            recycle_segments: 0,
            ..w
        })
    }
}

impl NativeDbOptions {
    /// The engine's options, validated (the error names the field). Checked here, before
    /// the registry, so that a handle joining an open engine is refused invalid options too
    /// (the registry compares only the options handles must share).
    pub(crate) fn to_db(&self) -> Res<DbOptions> {
        let o = self;
        let wal = wal_options(
            o.io_backend,
            o.recovery,
            o.segment_bytes,
            o.ring_bytes,
            None,
            o.commit_delay_us,
        )?;
        let opts = DbOptions {
            wal,
            memtable_bytes: int("memtableBytes", o.memtable_bytes)? as usize,
            max_immutable_memtables: int("maxImmutableMemtables", o.max_immutable_memtables)?
                as usize,
            l0_compaction_trigger: int("l0CompactionTrigger", o.l0_compaction_trigger)? as usize,
            l0_slowdown_trigger: int("l0SlowdownTrigger", o.l0_slowdown_trigger)? as usize,
            l0_stop_trigger: int("l0StopTrigger", o.l0_stop_trigger)? as usize,
            level_base_bytes: int("levelBaseBytes", o.level_base_bytes)?,
            level_multiplier: int("levelMultiplier", o.level_multiplier)?,
            target_file_bytes: int("targetFileBytes", o.target_file_bytes)?,
            compression: o
                .compression
                .iter()
                .map(|c| match c {
                    Compression::None => TableCompression::None,
                    Compression::Lz4 => TableCompression::Lz4,
                    Compression::Zstd => TableCompression::ZSTD_DEFAULT,
                })
                .collect(),
            bloom_bits_per_key: u32::try_from(int("bloomBitsPerKey", o.bloom_bits_per_key)?)
                .unwrap_or(u32::MAX),
            block_bytes: int("blockBytes", o.block_bytes)? as usize,
            cache_bytes: int("cacheBytes", o.cache_bytes)? as usize,
            compaction_threads: int("compactionThreads", o.compaction_threads)? as usize,
            rate_limit_bytes_per_sec: int(
                "compactionRateBytesPerSec",
                o.compaction_rate_bytes_per_sec,
            )?,
            max_open_files: int("maxOpenFiles", o.max_open_files)? as usize,
            reader_threads: int("readerThreads", o.reader_threads)? as usize,
            // Engine-internal knobs (the manifest rewrite threshold) keep their defaults.
            ..DbOptions::default()
        };
        opts.validate().map_err(|e| Failure::from(&e))?;
        Ok(opts)
    }

    /// The engine's defaults, in the façade's terms.
    fn defaults() -> NativeDbOptions {
        let d = DbOptions::default();
        let w = &d.wal;
        NativeDbOptions {
            io_backend: match w.backend {
                BackendChoice::Auto => IoBackend::Auto,
                BackendChoice::IoUring => IoBackend::IoUring,
                BackendChoice::Portable => IoBackend::Portable,
            },
            recovery: match w.recovery {
                RecoveryMode::Strict => Recovery::Strict,
                RecoveryMode::Tolerant => Recovery::Tolerant,
            },
            segment_bytes: w.segment_bytes as f64,
            ring_bytes: w.ring_bytes as f64,
            commit_delay_us: w.commit_delay_us as f64,
            memtable_bytes: d.memtable_bytes as f64,
            max_immutable_memtables: d.max_immutable_memtables as f64,
            l0_compaction_trigger: d.l0_compaction_trigger as f64,
            l0_slowdown_trigger: d.l0_slowdown_trigger as f64,
            l0_stop_trigger: d.l0_stop_trigger as f64,
            level_base_bytes: d.level_base_bytes as f64,
            level_multiplier: d.level_multiplier as f64,
            target_file_bytes: d.target_file_bytes as f64,
            compression: d
                .compression
                .iter()
                .map(|c| match c {
                    TableCompression::Lz4 => Compression::Lz4,
                    TableCompression::Zstd { .. } => Compression::Zstd,
                    // A variant the binding does not name: as stored.
                    _ => Compression::None,
                })
                .collect(),
            bloom_bits_per_key: f64::from(d.bloom_bits_per_key),
            block_bytes: d.block_bytes as f64,
            cache_bytes: d.cache_bytes as f64,
            compaction_threads: d.compaction_threads as f64,
            compaction_rate_bytes_per_sec: d.rate_limit_bytes_per_sec as f64,
            max_open_files: d.max_open_files as f64,
            reader_threads: d.reader_threads as f64,
        }
    }
}

/// Test-only (the drift test): the engine's default options.
#[napi(js_name = "__defaultDbOptions")]
pub fn default_db_options() -> NativeDbOptions {
    NativeDbOptions::defaults()
}

/// Test-only (the drift test): what the engine says about `options` — null if it accepts
/// them, else the error (naming the field) that opening with them would give. Checks the
/// log's limits too (a segment that cannot hold a record, ...).
#[napi(js_name = "__checkDbOptions")]
pub fn check_db_options(options: NativeDbOptions) -> Option<NativeError> {
    let r = options.to_db().and_then(|o| {
        o.wal
            .validate()
            .map_err(|e| Failure::from(&DbError::Wal(e)))
    });
    r.err().map(Failure::into_inner)
}

/// Test-only (the drift test): the engine's default log options.
#[napi(js_name = "__defaultLogOptions")]
pub fn default_log_options() -> NativeLogOptions {
    // The log's defaults are the database's log defaults (both are WalOptions::default()).
    let n = NativeDbOptions::defaults();
    NativeLogOptions {
        io_backend: n.io_backend,
        segment_bytes: n.segment_bytes,
        ring_bytes: n.ring_bytes,
        max_record_bytes: WalOptions::default().max_record_bytes.map(|m| m as f64),
        commit_delay_us: n.commit_delay_us,
        recovery: n.recovery,
    }
}

/// Test-only (the drift test): null if the engine accepts these log options, else the
/// error (naming the field) that opening with them would give.
#[napi(js_name = "__checkLogOptions")]
pub fn check_log_options(options: NativeLogOptions) -> Option<NativeError> {
    let r = options
        .to_wal()
        .and_then(|o| o.validate().map_err(|e| Failure::from(&e)));
    r.err().map(Failure::into_inner)
}
