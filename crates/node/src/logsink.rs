//! The log sink's binding (`uringdb/pino`): `openLogSink`, `NativeLogSink`,
//! `openLogReader`, `NativeLogReader`, `summarizeLogs`. No engine logic: a write copies
//! the line into the sink's commit ring in one synchronous call and returns; reads and
//! summaries walk the store synchronously, a bounded amount per call (one `nextLines`
//! call decodes blocks until about `maxBytes` of matching lines, at least one block).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use uringdb_logsink::{
    open_vfs, BackendChoice, LogReader, LogSink, ReadFilter, SinkError, SinkOptions, SyncMode,
};

use crate::errors::{guard, panic_failure, settle, Failure, Res, Settle};
use crate::worker;

/// Options of `openLogSink`, as the façade passes them after validating them (the engine
/// checks its bounds again and names the field).
#[napi(object)]
#[derive(Clone, Debug, Default)]
pub struct NativeLogSinkOptions {
    /// `'auto' | 'io_uring' | 'portable'`.
    pub io_backend: Option<String>,
    /// `'none' | 'interval' | 'always'`.
    pub sync: Option<String>,
    /// The group fdatasync period of `sync: 'interval'`.
    pub sync_interval_ms: Option<f64>,
    /// Raw bytes per block.
    pub block_bytes: Option<f64>,
    /// Commit ring bytes (a power of two).
    pub ring_bytes: Option<f64>,
    /// Segment size that triggers rotation.
    pub segment_bytes: Option<f64>,
    /// zstd level.
    pub compression_level: Option<i32>,
    /// The trace-id field name.
    pub trace_field: Option<String>,
    /// Sampling and rate limits per level.
    pub sampling: Option<NativeSamplingOptions>,
    /// Seal the active segment once its first block is this old (ms).
    pub rotate_age_ms: Option<f64>,
    /// Retention: total bytes of segment files.
    pub retention_max_bytes: Option<f64>,
    /// Retention: age of sealed segments (ms since their last write).
    pub retention_max_age_ms: Option<f64>,
    /// Retention: number of segment files.
    pub retention_max_files: Option<f64>,
}

/// zap's (first, thereafter) for one level.
#[napi(object)]
#[derive(Clone, Debug, Default)]
pub struct NativeLevelSampling {
    /// Lines per message and window always kept.
    pub first: u32,
    /// After those, every n-th; 0 drops the rest.
    pub thereafter: u32,
}

/// Sampling options (see `uringdb_logsink::sampler`).
#[napi(object)]
#[derive(Clone, Debug, Default)]
pub struct NativeSamplingOptions {
    /// Counting window, ms.
    pub tick_ms: u32,
    /// TRACE lines.
    pub trace: Option<NativeLevelSampling>,
    /// DEBUG lines.
    pub debug: Option<NativeLevelSampling>,
    /// INFO lines.
    pub info: Option<NativeLevelSampling>,
    /// WARN lines.
    pub warn: Option<NativeLevelSampling>,
    /// A trace with more INFO lines in a row is silenced for the rest of them.
    pub trace_info_cap: Option<u32>,
    /// Period of the drop summary line, ms.
    pub summary_interval_ms: u32,
}

fn invalid(field: &'static str, message: String) -> Failure {
    Failure::from(&SinkError::InvalidOption { field, message })
}

fn whole(field: &'static str, v: f64) -> Res<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
        Ok(v as u64)
    } else {
        Err(invalid(
            field,
            format!("must be a non-negative integer, got {v}"),
        ))
    }
}

impl NativeLogSinkOptions {
    fn to_sink(&self) -> Res<SinkOptions> {
        let backend = match self.io_backend.as_deref() {
            None | Some("auto") => BackendChoice::Auto,
            Some("io_uring") => BackendChoice::IoUring,
            Some("portable") => BackendChoice::Portable,
            Some(other) => {
                return Err(invalid(
                    "ioBackend",
                    format!("{other:?} is not one of 'auto', 'io_uring', 'portable'"),
                ))
            }
        };
        let mut o = SinkOptions {
            backend,
            ..SinkOptions::default()
        };
        let interval = match self.sync_interval_ms {
            Some(v) => whole("syncIntervalMs", v)?,
            None => uringdb_logsink::limits::SYNC_INTERVAL_MS_DEFAULT,
        };
        o.sync = match self.sync.as_deref() {
            None | Some("interval") => SyncMode::Interval(Duration::from_millis(interval)),
            Some("none") => SyncMode::None,
            Some("always") => SyncMode::Always,
            Some(other) => {
                return Err(invalid(
                    "sync",
                    format!("{other:?} is not one of 'none', 'interval', 'always'"),
                ))
            }
        };
        if let Some(v) = self.block_bytes {
            o.block_raw_bytes = whole("blockBytes", v)? as usize;
        }
        if let Some(v) = self.ring_bytes {
            o.ring_bytes = whole("ringBytes", v)? as usize;
        }
        if let Some(v) = self.segment_bytes {
            o.segment_bytes = whole("segmentBytes", v)?;
        }
        if let Some(v) = self.compression_level {
            o.zstd_level = v;
        }
        if let Some(v) = &self.trace_field {
            o.trace_field = v.clone();
        }
        if let Some(v) = self.rotate_age_ms {
            o.rotate_age = Some(Duration::from_millis(whole("rotateAgeMs", v)?));
        }
        if let Some(v) = self.retention_max_bytes {
            o.retention.max_bytes = Some(whole("retention.maxBytes", v)?);
        }
        if let Some(v) = self.retention_max_age_ms {
            o.retention.max_age = Some(Duration::from_millis(whole("retention.maxAgeMs", v)?));
        }
        if let Some(v) = self.retention_max_files {
            o.retention.max_files = Some(whole("retention.maxFiles", v)?);
        }
        if let Some(sm) = &self.sampling {
            let level = |l: &Option<NativeLevelSampling>| {
                l.as_ref().map(|l| uringdb_logsink::sampler::LevelSampling {
                    first: l.first,
                    thereafter: l.thereafter,
                })
            };
            o.sampling = uringdb_logsink::sampler::SamplingOptions {
                tick_ms: u64::from(sm.tick_ms),
                levels: [
                    level(&sm.trace),
                    level(&sm.debug),
                    level(&sm.info),
                    level(&sm.warn),
                ],
                trace_info_cap: sm.trace_info_cap,
                summary_ms: u64::from(sm.summary_interval_ms),
            };
        }
        // Test-only hook: route I/O through the layer that drops unsynced bytes.
        if let Ok(spec) = std::env::var("URINGDB_FAULT_VFS") {
            if !spec.is_empty() {
                o.fault = Some(
                    uringdb_logsink::FaultConfig::from_env_str(&spec).map_err(|e| {
                        Failure::coded(
                            "ERR_URINGDB_INVALID_OPTION",
                            format!("URINGDB_FAULT_VFS: {e}"),
                        )
                    })?,
                );
            }
        }
        o.validate().map_err(|e| Failure::from(&e))?;
        Ok(o)
    }
}

/// What open found (`recovery` of a destination).
#[napi(object)]
#[derive(Clone, Debug, Default)]
pub struct NativeLogSinkRecovery {
    /// Segment files found.
    pub segments: f64,
    /// Lines already in the store.
    pub lines: f64,
    /// Bytes cut from a torn tail.
    pub cut_bytes: f64,
}

/// Counters of an open sink.
#[napi(object)]
#[derive(Clone, Debug, Default)]
pub struct NativeLogSinkStats {
    /// The I/O backend in use.
    pub backend: String,
    /// Lines written into blocks since open.
    pub lines: f64,
    /// Blocks written.
    pub blocks: f64,
    /// Raw NDJSON bytes in those blocks.
    pub raw_bytes: f64,
    /// Bytes on disk for those blocks.
    pub stored_bytes: f64,
    /// fdatasyncs.
    pub syncs: f64,
    /// Segments started by rotation.
    pub segments_created: f64,
    /// Writes that waited for ring space.
    pub full_waits: f64,
    /// Writes dropped because the ring was full.
    pub dropped_full: f64,
    /// Segment files deleted by retention.
    pub segments_removed: f64,
    /// Their bytes.
    pub bytes_removed: f64,
    /// Lines the sampler dropped, per level class (trace, debug, info, warn, error, fatal,
    /// other, none).
    pub dropped_sampling: Vec<f64>,
    /// Lines the per-trace cap silenced, per level class.
    pub dropped_trace_cap: Vec<f64>,
}

/// An open log sink.
#[napi]
pub struct NativeLogSink {
    sink: Option<Arc<LogSink>>,
    recovery: NativeLogSinkRecovery,
}

fn closed() -> Failure {
    Failure::from(&SinkError::Closed)
}

/// Opens (creating if needed) the store in `dir` for writing, off the JS thread.
#[napi(ts_return_type = "Promise<NativeLogSink>")]
pub fn open_log_sink<'env>(
    env: &'env Env,
    dir: String,
    options: NativeLogSinkOptions,
) -> napi::Result<Object<'env>> {
    guard(env, || {
        let opts = options.to_sink()?;
        let (deferred, promise) = env.create_deferred::<NativeLogSink, Settle<NativeLogSink>>()?;
        worker::spawn_named("uringdb-open", move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                LogSink::open(Path::new(&dir), opts)
            }));
            let r = match r {
                Ok(Ok((sink, report))) => {
                    let recovery = NativeLogSinkRecovery {
                        segments: report.segments as f64,
                        lines: report.lines as f64,
                        cut_bytes: report.cut_bytes as f64,
                    };
                    Ok(Box::new(move |_| {
                        Ok(NativeLogSink {
                            sink: Some(Arc::new(sink)),
                            recovery,
                        })
                    }) as Settle<NativeLogSink>)
                }
                Ok(Err(e)) => Err(Failure::from(&e)),
                Err(p) => Err(panic_failure(&*p)),
            };
            settle(deferred, r);
        });
        Ok(promise)
    })
}

#[napi]
impl NativeLogSink {
    fn sink(&self) -> Res<&Arc<LogSink>> {
        self.sink.as_ref().ok_or_else(closed)
    }

    /// Copies `line` into the commit ring. `block`: when the ring is full, wait for space
    /// (back-pressure); otherwise return false (the line was dropped and counted).
    #[napi]
    pub fn write(&self, env: Env, line: String, block: bool) -> napi::Result<bool> {
        guard(&env, || {
            let sink = self.sink()?;
            let r = if block {
                sink.write(line.as_bytes()).map(|()| true)
            } else {
                sink.try_write(line.as_bytes())
            };
            r.map_err(|e| Failure::from(&e))
        })
    }

    /// Makes every line written before it durable; blocks until it is.
    #[napi]
    pub fn flush_sync(&self, env: Env) -> napi::Result<()> {
        guard(&env, || {
            self.sink()?.flush_sync().map_err(|e| Failure::from(&e))
        })
    }

    /// Writes and syncs what is left, stops the writer, releases the directory; off the
    /// JS thread. A second call resolves at once.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> napi::Result<Object<'env>> {
        let sink = self.sink.take();
        guard(env, || {
            let (deferred, promise) = env.create_deferred::<(), Settle<()>>()?;
            let Some(sink) = sink else {
                settle(deferred, Ok(Box::new(|_| Ok(()))));
                return Ok(promise);
            };
            worker::spawn_named("uringdb-close", move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.close()));
                let r = match r {
                    Ok(Ok(())) => Ok(Box::new(|_| Ok(())) as Settle<()>),
                    Ok(Err(e)) => Err(Failure::from(&e)),
                    Err(p) => Err(panic_failure(&*p)),
                };
                settle(deferred, r);
            });
            Ok(promise)
        })
    }

    /// The counters.
    #[napi]
    pub fn stats(&self, env: Env) -> napi::Result<NativeLogSinkStats> {
        guard(&env, || {
            let s = self.sink()?.stats();
            Ok(NativeLogSinkStats {
                backend: s.backend.to_string(),
                lines: s.lines as f64,
                blocks: s.blocks as f64,
                raw_bytes: s.raw_bytes as f64,
                stored_bytes: s.stored_bytes as f64,
                syncs: s.syncs as f64,
                segments_created: s.segments_created as f64,
                full_waits: s.full_waits as f64,
                dropped_full: s.dropped_full as f64,
                segments_removed: s.segments_removed as f64,
                bytes_removed: s.bytes_removed as f64,
                dropped_sampling: s.dropped.0.iter().map(|c| c[0] as f64).collect(),
                dropped_trace_cap: s.dropped.0.iter().map(|c| c[1] as f64).collect(),
            })
        })
    }

    /// The largest line one write accepts.
    #[napi(getter)]
    pub fn line_bytes_max(&self) -> f64 {
        self.sink
            .as_ref()
            .map_or(0.0, |s| s.line_bytes_max() as f64)
    }

    /// What open found.
    #[napi(getter)]
    pub fn recovery(&self) -> NativeLogSinkRecovery {
        self.recovery.clone()
    }
}

/// Which lines a reader returns (bounds inclusive, times in ms since the epoch).
#[napi(object)]
#[derive(Clone, Debug, Default)]
pub struct NativeReadFilter {
    /// Lines whose `time` is at least this.
    pub since: Option<f64>,
    /// Lines whose `time` is at most this.
    pub until: Option<f64>,
    /// Lines whose numeric `level` is at least this.
    pub min_level: Option<f64>,
    /// Lines containing this text.
    pub contains: Option<String>,
}

/// A reader of a store (possibly being written).
#[napi]
pub struct NativeLogReader {
    reader: LogReader,
}

/// Opens a reader of the store in `dir`.
#[napi]
pub fn open_log_reader(
    env: Env,
    dir: String,
    filter: NativeReadFilter,
) -> napi::Result<NativeLogReader> {
    guard(&env, || {
        // Readers only read (pread); the portable backend serves them whatever the writer uses.
        let vfs = open_vfs(BackendChoice::Portable)
            .map_err(|e| {
                Failure::from(&SinkError::Io {
                    context: "opening the I/O backend".into(),
                    source: Arc::new(e),
                })
            })?
            .0;
        let f = ReadFilter {
            since: filter.since.map(|v| v as i64),
            until: filter.until.map(|v| v as i64),
            min_level: filter
                .min_level
                .map(|v| v.clamp(0.0, u32::MAX as f64) as u32),
            contains: filter.contains.map(String::into_bytes),
        };
        let reader = LogReader::open(vfs, Path::new(&dir), f).map_err(|e| Failure::from(&e))?;
        Ok(NativeLogReader { reader })
    })
}

#[napi]
impl NativeLogReader {
    /// The next matching lines as NDJSON (about `maxBytes`, at least one block's worth
    /// processed), or null when there is nothing more for now.
    #[napi]
    pub fn next_lines(&mut self, env: Env, max_bytes: u32) -> napi::Result<Option<Buffer>> {
        guard(&env, || {
            let (bytes, n) = self
                .reader
                .next_lines(max_bytes as usize)
                .map_err(|e| Failure::from(&e))?;
            Ok((n > 0).then(|| Buffer::from(bytes)))
        })
    }

    /// Blocks whose header was read, and of those, blocks decompressed.
    #[napi]
    pub fn blocks(&self) -> Vec<f64> {
        let s = self.reader.stats();
        vec![s.blocks_seen as f64, s.blocks_read as f64]
    }
}

/// Totals over a store's block headers.
#[napi(object)]
pub struct NativeLogSummary {
    /// Segment files.
    pub segments: f64,
    /// Blocks.
    pub blocks: f64,
    /// Lines.
    pub lines: f64,
    /// Raw NDJSON bytes.
    pub raw_bytes: f64,
    /// Bytes of the segment files.
    pub file_bytes: f64,
    /// Earliest line time (ms), if any.
    pub min_time: Option<f64>,
    /// Latest line time (ms), if any.
    pub max_time: Option<f64>,
}

/// Walks the block headers of the store in `dir`.
#[napi]
pub fn summarize_logs(env: Env, dir: String) -> napi::Result<NativeLogSummary> {
    guard(&env, || {
        let vfs = open_vfs(BackendChoice::Portable)
            .map_err(|e| {
                Failure::from(&SinkError::Io {
                    context: "opening the I/O backend".into(),
                    source: Arc::new(e),
                })
            })?
            .0;
        let s = uringdb_logsink::summarize(vfs, Path::new(&dir)).map_err(|e| Failure::from(&e))?;
        Ok(NativeLogSummary {
            segments: s.segments as f64,
            blocks: s.blocks as f64,
            lines: s.lines as f64,
            raw_bytes: s.raw_bytes as f64,
            file_bytes: s.file_bytes as f64,
            min_time: s.min_time.map(|t| t as f64),
            max_time: s.max_time.map(|t| t as f64),
        })
    })
}
