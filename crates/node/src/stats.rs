//! What the engines report, as typed objects: statistics, recovery, and the database's
//! events. Their TypeScript interfaces are generated into `binding.d.ts`; the façade's
//! public types (src/diagnostics.ts) are checked against them by the compiler.

use napi_derive::napi;
use uringdb_lsm::db::{CompactionReason, Db, DbEvent, StallLevel};
use uringdb_wal::{Percentiles, WalStats};

/// Percentiles in microseconds.
#[napi(object)]
pub struct NativePercentiles {
    /// Samples.
    pub count: f64,
    /// Median.
    pub p50: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl From<&Percentiles> for NativePercentiles {
    fn from(p: &Percentiles) -> Self {
        NativePercentiles {
            count: p.count as f64,
            p50: p.p50,
            p90: p.p90,
            p99: p.p99,
            p999: p.p999,
            max: p.max,
        }
    }
}

/// The I/O backend in use.
#[napi(string_enum)]
#[derive(Clone, Copy)]
pub enum Backend {
    /// io_uring.
    #[napi(value = "io_uring")]
    IoUring,
    /// Positional writes and fdatasync.
    #[napi(value = "portable")]
    Portable,
}

impl Backend {
    fn of(name: &str) -> Backend {
        if name == "io_uring" {
            Backend::IoUring
        } else {
            Backend::Portable
        }
    }
}

/// Statistics of a write-ahead log.
#[napi(object, use_nullable = true)]
pub struct NativeLogStats {
    /// The I/O backend in use.
    pub backend: Backend,
    /// Why io_uring is not used, when it is not.
    pub fallback_reason: Option<String>,
    /// Probed kernel features.
    pub features: Vec<String>,
    /// Records appended.
    pub appends: f64,
    /// Payload bytes appended.
    pub append_bytes: f64,
    /// Commit groups.
    pub groups: f64,
    /// fdatasync calls.
    pub fsyncs: f64,
    /// Bytes written to segment files.
    pub bytes_written: f64,
    /// First readable seq.
    pub first_seq: f64,
    /// Last durable seq.
    pub last_seq: f64,
    /// Segment files.
    pub segments: f64,
    /// Segments rolled to since open that reused a recycled file.
    pub recycled_segments: f64,
    /// Segments rolled to since open that were new, zero-filled files.
    pub fresh_segments: f64,
    /// Recycled files waiting in the pool now.
    pub pool_segments: f64,
    /// Queue wait per group.
    pub queue_wait: NativePercentiles,
    /// Write time per group.
    pub write: NativePercentiles,
    /// fdatasync time per group.
    pub fsync: NativePercentiles,
    /// Oldest record's arrival to completion, per group.
    pub total: NativePercentiles,
}

impl From<WalStats> for NativeLogStats {
    fn from(s: WalStats) -> Self {
        NativeLogStats {
            backend: Backend::of(s.backend),
            fallback_reason: s.fallback_reason,
            features: s.features,
            appends: s.appends as f64,
            append_bytes: s.append_bytes as f64,
            groups: s.groups as f64,
            fsyncs: s.fsyncs as f64,
            bytes_written: s.bytes_written as f64,
            first_seq: s.first_seq as f64,
            last_seq: s.last_seq as f64,
            segments: s.segments as f64,
            recycled_segments: s.recycled_segments as f64,
            fresh_segments: s.fresh_segments as f64,
            pool_segments: s.pool_segments as f64,
            queue_wait: (&s.queue_wait).into(),
            write: (&s.write).into(),
            fsync: (&s.fsync).into(),
            total: (&s.total).into(),
        }
    }
}

/// Statistics of one level of the tree.
#[napi(object)]
pub struct NativeLevelStats {
    /// Level number (0 = newest).
    pub level: u32,
    /// Table files.
    pub files: f64,
    /// Bytes in those files.
    pub bytes: f64,
    /// Target size (0 for level 0).
    pub target_bytes: f64,
}

/// The block cache.
#[napi(object)]
pub struct NativeCacheStats {
    /// Lookups that found the block.
    pub hits: f64,
    /// Lookups that did not.
    pub misses: f64,
    /// hits / (hits + misses), 0 before any lookup.
    pub hit_rate: f64,
    /// Bytes held.
    pub used_bytes: f64,
    /// Capacity.
    pub capacity_bytes: f64,
    /// Blocks held.
    pub entries: f64,
    /// Blocks evicted.
    pub evictions: f64,
}

/// Bloom filters.
#[napi(object)]
pub struct NativeBloomStats {
    /// Table lookups that consulted a filter.
    pub checked: f64,
    /// Those the filter answered "absent".
    pub useful: f64,
    /// useful / checked, 0 before any check.
    pub useful_rate: f64,
}

/// The process-wide reader queue.
#[napi(object)]
pub struct NativeReaderQueueStats {
    /// Jobs queued or running now.
    pub jobs: f64,
    /// The most there have been.
    pub peak_jobs: f64,
    /// The bound (`READER_QUEUE_JOBS_MAX`).
    pub limit_jobs: f64,
}

/// Statistics of a database.
#[napi(object, use_nullable = true)]
pub struct NativeDbStats {
    /// Per level.
    pub levels: Vec<NativeLevelStats>,
    /// Bytes of user keys and values written.
    pub user_bytes_written: f64,
    /// Put operations applied.
    pub puts: f64,
    /// Delete operations applied.
    pub deletes: f64,
    /// Memtable flushes.
    pub flushes: f64,
    /// Bytes written by flushes.
    pub flush_bytes_written: f64,
    /// Compactions.
    pub compactions: f64,
    /// Bytes read by compactions.
    pub compaction_bytes_read: f64,
    /// Bytes written by compactions.
    pub compaction_bytes_written: f64,
    /// (log + flush + compaction bytes written) / user bytes written.
    pub write_amplification: f64,
    /// Bytes of all tables / bytes of the last non-empty level.
    pub space_amplification: f64,
    /// Times writes were held back.
    pub stalls: f64,
    /// Times writes were slowed.
    pub slowdowns: f64,
    /// Times writes were stopped.
    pub stops: f64,
    /// Time writes were held back, in microseconds.
    pub stall_us: f64,
    /// Payload bytes held by a write stall now.
    pub stall_queue_bytes: f64,
    /// The stall queue's bound (`STALL_QUEUE_BYTES_MAX`).
    pub stall_queue_limit_bytes: f64,
    /// The process-wide reader queue.
    pub reader_queue: NativeReaderQueueStats,
    /// Block cache.
    pub cache: NativeCacheStats,
    /// Bloom filters.
    pub bloom: NativeBloomStats,
    /// Point reads.
    pub gets: f64,
    /// Table files open now.
    pub open_table_files: f64,
    /// Bytes in the active memtable.
    pub memtable_bytes: f64,
    /// Memtables waiting for flush.
    pub immutable_memtables: f64,
    /// Newest visible sequence number.
    pub visible_seq: f64,
    /// Sequence number up to which everything is in tables.
    pub flushed_seq: f64,
    /// Live snapshots.
    pub snapshots: f64,
    /// Prepared transactions not yet committed or rolled back.
    pub prepared_transactions: f64,
    /// Age of the oldest prepared transaction, in ms (0 if none).
    pub oldest_prepared_age_ms: f64,
    /// Background failures so far.
    pub background_errors: f64,
    /// The current background failure, or null.
    pub background_error: Option<String>,
    /// The write-ahead log's statistics.
    pub log: NativeLogStats,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b > 0 {
        a as f64 / b as f64
    } else {
        0.0
    }
}

/// A database's statistics now.
pub(crate) fn db_stats(db: &Db) -> NativeDbStats {
    let s = db.stats();
    let (jobs, peak_jobs) = crate::worker::reader_queue_jobs();
    let c = &s.cache;
    NativeDbStats {
        levels: s
            .levels
            .iter()
            .map(|l| NativeLevelStats {
                level: l.level,
                files: l.files as f64,
                bytes: l.bytes as f64,
                target_bytes: l.target_bytes as f64,
            })
            .collect(),
        user_bytes_written: s.user_bytes_written as f64,
        puts: s.puts as f64,
        deletes: s.deletes as f64,
        flushes: s.flushes as f64,
        flush_bytes_written: s.flush_bytes_written as f64,
        compactions: s.compactions as f64,
        compaction_bytes_read: s.compaction_bytes_read as f64,
        compaction_bytes_written: s.compaction_bytes_written as f64,
        write_amplification: s.write_amplification,
        space_amplification: s.space_amplification,
        stalls: s.stalls as f64,
        slowdowns: s.slowdowns as f64,
        stops: s.stops as f64,
        stall_us: s.stall_us as f64,
        stall_queue_bytes: s.stall_queue_bytes as f64,
        stall_queue_limit_bytes: uringdb_lsm::limits::STALL_QUEUE_BYTES_MAX as f64,
        reader_queue: NativeReaderQueueStats {
            jobs: jobs as f64,
            peak_jobs: peak_jobs as f64,
            limit_jobs: crate::limits::READER_QUEUE_JOBS_MAX as f64,
        },
        cache: NativeCacheStats {
            hits: c.hits as f64,
            misses: c.misses as f64,
            hit_rate: ratio(c.hits, c.hits + c.misses),
            used_bytes: c.used_bytes as f64,
            capacity_bytes: c.capacity_bytes as f64,
            entries: c.entries as f64,
            evictions: c.evictions as f64,
        },
        bloom: NativeBloomStats {
            checked: s.bloom_checked as f64,
            useful: s.bloom_useful as f64,
            useful_rate: ratio(s.bloom_useful, s.bloom_checked),
        },
        gets: s.gets as f64,
        open_table_files: s.open_table_files as f64,
        memtable_bytes: s.memtable_bytes as f64,
        immutable_memtables: s.immutable_memtables as f64,
        visible_seq: s.visible_seq as f64,
        flushed_seq: s.flushed_seq as f64,
        snapshots: s.snapshots as f64,
        prepared_transactions: s.prepared_transactions as f64,
        oldest_prepared_age_ms: s.oldest_prepared_age_ms as f64,
        background_errors: s.background_errors as f64,
        background_error: s.background_error,
        log: s.log.into(),
    }
}

/// What opening a log found.
#[napi(object)]
#[derive(Clone)]
pub struct NativeLogRecovery {
    /// Segment files found.
    pub segments: f64,
    /// Last sequence number recovered.
    pub last_seq: f64,
    /// Bytes cut from a torn tail.
    pub truncated_bytes: f64,
    /// Recovery time in microseconds.
    pub duration_us: f64,
    /// Whether this handle opened the engine (false: it joined one already open).
    pub opened: bool,
}

/// What opening a database found.
#[napi(object, use_nullable = true)]
#[derive(Clone)]
pub struct NativeDbRecovery {
    /// Whether this handle opened the engine (false: it joined one already open).
    pub opened: bool,
    /// Whether the database was created by this open.
    pub created: bool,
    /// Sequence number up to which everything was in tables.
    pub flushed_seq: f64,
    /// Log records replayed into the memtable.
    pub replayed_records: f64,
    /// Tables in the manifest.
    pub tables: f64,
    /// Unreferenced table files removed.
    pub orphans_removed: f64,
    /// Manifest edits replayed.
    pub manifest_edits: f64,
    /// Bytes of a torn manifest tail cut.
    pub manifest_torn_bytes: f64,
    /// Log segments found.
    pub log_segments: f64,
    /// Bytes cut from a torn log tail.
    pub log_truncated_bytes: f64,
    /// Last sequence number.
    pub last_seq: f64,
    /// Time open took, in microseconds.
    pub duration_us: f64,
    /// I/O backend in use.
    pub backend: Backend,
    /// Why io_uring is not used, or null.
    pub fallback_reason: Option<String>,
}

/// What opening `db` found.
pub(crate) fn db_recovery(db: &Db, opened: bool) -> NativeDbRecovery {
    let r = db.recovery();
    let w = db.wal_recovery();
    let p = db.probe();
    NativeDbRecovery {
        opened,
        created: r.created,
        flushed_seq: r.flushed_seq as f64,
        replayed_records: r.replayed_records as f64,
        tables: r.tables as f64,
        orphans_removed: r.orphans_removed as f64,
        manifest_edits: r.manifest_edits as f64,
        manifest_torn_bytes: r.manifest_torn_bytes as f64,
        log_segments: w.segments as f64,
        log_truncated_bytes: w.truncated_bytes as f64,
        last_seq: db.visible_seq() as f64,
        duration_us: r.duration.as_micros() as f64,
        backend: Backend::of(p.backend.as_str()),
        fallback_reason: p.fallback_reason.clone(),
    }
}

/// A database event, published by the façade on the `uringdb:db:<kind>` channel.
#[napi(discriminant = "kind", discriminant_case = "lowercase")]
pub enum NativeDbEvent {
    /// A memtable became a table.
    Flush {
        /// Tables written.
        tables: f64,
        /// Bytes written.
        bytes: f64,
        /// Entries flushed.
        entries: f64,
        /// Everything up to this sequence number is in tables.
        flushed_seq: f64,
        /// Log segments deleted.
        log_segments_removed: f64,
        /// Duration in milliseconds.
        duration_ms: f64,
    },
    /// A compaction finished.
    Compaction {
        /// Input level.
        level: f64,
        /// Output level.
        output_level: f64,
        /// Input tables.
        inputs: f64,
        /// Output tables.
        outputs: f64,
        /// Bytes read.
        bytes_read: f64,
        /// Bytes written.
        bytes_written: f64,
        /// Entries dropped.
        entries_dropped: f64,
        /// Whether `compactRange` asked for it.
        manual: bool,
        /// Duration in milliseconds.
        duration_ms: f64,
        /// Why it ran.
        reason: CompactionWhy,
    },
    /// Writes were slowed, stopped, or released.
    Stall {
        /// The new level.
        level: Stall,
        /// Level-0 tables.
        l0_files: f64,
        /// Memtables waiting for flush.
        immutable_memtables: f64,
    },
    /// A background failure.
    Error {
        /// What failed.
        message: String,
    },
}

/// Why a compaction ran.
#[napi(string_enum)]
pub enum CompactionWhy {
    /// `compactRange`.
    #[napi(value = "manual")]
    Manual,
    /// Level 0 reached its file-count trigger.
    #[napi(value = "l0-files")]
    L0Files,
    /// A level outgrew its target.
    #[napi(value = "level-size")]
    LevelSize,
}

/// How hard writes are held back.
#[napi(string_enum)]
pub enum Stall {
    /// Not at all.
    #[napi(value = "none")]
    None,
    /// Slowed.
    #[napi(value = "slowdown")]
    Slowdown,
    /// Stopped.
    #[napi(value = "stop")]
    Stop,
}

impl From<&DbEvent> for NativeDbEvent {
    fn from(e: &DbEvent) -> Self {
        match e {
            DbEvent::Flush(f) => NativeDbEvent::Flush {
                tables: f.tables as f64,
                bytes: f.bytes as f64,
                entries: f.entries as f64,
                flushed_seq: f.flushed_seq as f64,
                log_segments_removed: f.log_segments_removed as f64,
                duration_ms: f.duration.as_secs_f64() * 1000.0,
            },
            DbEvent::Compaction(c) => NativeDbEvent::Compaction {
                level: c.level as f64,
                output_level: c.output_level as f64,
                inputs: c.inputs as f64,
                outputs: c.outputs as f64,
                bytes_read: c.bytes_read as f64,
                bytes_written: c.bytes_written as f64,
                entries_dropped: c.entries_dropped as f64,
                manual: c.reason == CompactionReason::Manual,
                duration_ms: c.duration.as_secs_f64() * 1000.0,
                reason: match c.reason {
                    CompactionReason::Manual => CompactionWhy::Manual,
                    CompactionReason::L0Files => CompactionWhy::L0Files,
                    CompactionReason::LevelSize => CompactionWhy::LevelSize,
                },
            },
            DbEvent::Stall(s) => NativeDbEvent::Stall {
                level: match s.level {
                    StallLevel::None => Stall::None,
                    StallLevel::Slowdown => Stall::Slowdown,
                    StallLevel::Stop => Stall::Stop,
                },
                l0_files: s.l0_files as f64,
                immutable_memtables: s.immutable_memtables as f64,
            },
            DbEvent::Error(e) => NativeDbEvent::Error {
                message: e.message.clone(),
            },
        }
    }
}
