//! [`SinkOptions`] and their validation (errors name the field as the user writes it).

use std::time::Duration;

use uringdb_uring::{BackendChoice, FaultConfig};

use crate::error::SinkError;
use crate::limits::*;

/// When the writer makes written blocks durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Never on its own (only [`crate::LogSink::flush_sync`] and close sync).
    None,
    /// A group fdatasync at most every interval while something is unsynced.
    Interval(Duration),
    /// After every group the writer drains: the partial block is written and synced at
    /// once. `write` still returns without waiting; [`crate::LogSink::flush_sync`] waits.
    Always,
}

/// Options of [`crate::LogSink::open`].
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// I/O backend.
    pub backend: BackendChoice,
    /// Durability mode (`sync`, `syncIntervalMs`).
    pub sync: SyncMode,
    /// Raw bytes per block (`blockBytes`).
    pub block_raw_bytes: usize,
    /// Commit ring bytes, a power of two (`ringBytes`).
    pub ring_bytes: usize,
    /// Segment size that triggers rotation (`segmentBytes`).
    pub segment_bytes: u64,
    /// zstd level (`compressionLevel`).
    pub zstd_level: i32,
    /// The string field holding a trace id (`traceField`); empty: none.
    pub trace_field: String,
    /// Test-only: route the sink's I/O through a `FaultVfs` with this configuration, so
    /// that a killed process loses every byte no fdatasync covered (the binding sets it
    /// from `URINGDB_FAULT_VFS`, as it does for logs and databases).
    pub fault: Option<FaultConfig>,
    /// Sampling and rate limits per level (`sampling`); the default samples nothing.
    pub sampling: crate::sampler::SamplingOptions,
    /// Seal the active segment once its first block is this old, even if not full
    /// (`rotateAgeMs`); `None`: by size only.
    pub rotate_age: Option<Duration>,
    /// Which sealed segments are deleted (`retention`).
    pub retention: crate::retention::Retention,
    /// The disk-space guard's watermarks (`diskGuard`); `None`: off (the default until the
    /// binding exposes it).
    pub disk_guard: Option<crate::diskguard::DiskGuardOptions>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            backend: BackendChoice::Auto,
            sync: SyncMode::Interval(Duration::from_millis(SYNC_INTERVAL_MS_DEFAULT)),
            block_raw_bytes: BLOCK_RAW_BYTES_DEFAULT,
            ring_bytes: RING_BYTES_DEFAULT,
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            zstd_level: ZSTD_LEVEL_DEFAULT,
            trace_field: "traceId".to_string(),
            fault: None,
            sampling: crate::sampler::SamplingOptions::default(),
            rotate_age: None,
            retention: crate::retention::Retention::default(),
            disk_guard: None,
        }
    }
}

fn invalid(field: &'static str, message: String) -> SinkError {
    SinkError::InvalidOption { field, message }
}

impl SinkOptions {
    /// Checks every bound; the first violation names its field.
    pub fn validate(&self) -> Result<(), SinkError> {
        if let SyncMode::Interval(d) = self.sync {
            let ms = d.as_millis() as u64;
            if !(SYNC_INTERVAL_MS_MIN..=SYNC_INTERVAL_MS_MAX).contains(&ms) {
                return Err(invalid(
                    "syncIntervalMs",
                    format!("{ms} is outside {SYNC_INTERVAL_MS_MIN}..={SYNC_INTERVAL_MS_MAX}"),
                ));
            }
        }
        if !(BLOCK_RAW_BYTES_MIN..=BLOCK_RAW_BYTES_MAX).contains(&self.block_raw_bytes) {
            return Err(invalid(
                "blockBytes",
                format!(
                    "{} is outside {BLOCK_RAW_BYTES_MIN}..={BLOCK_RAW_BYTES_MAX}",
                    self.block_raw_bytes
                ),
            ));
        }
        if !self.ring_bytes.is_power_of_two()
            || !(RING_BYTES_MIN..=RING_BYTES_MAX).contains(&self.ring_bytes)
        {
            return Err(invalid(
                "ringBytes",
                format!(
                    "{} is not a power of two in {RING_BYTES_MIN}..={RING_BYTES_MAX}",
                    self.ring_bytes
                ),
            ));
        }
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(invalid(
                "segmentBytes",
                format!(
                    "{} is outside {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}",
                    self.segment_bytes
                ),
            ));
        }
        if !(ZSTD_LEVEL_MIN..=ZSTD_LEVEL_MAX).contains(&self.zstd_level) {
            return Err(invalid(
                "compressionLevel",
                format!(
                    "{} is outside {ZSTD_LEVEL_MIN}..={ZSTD_LEVEL_MAX}",
                    self.zstd_level
                ),
            ));
        }
        if self.trace_field.len() > TRACE_FIELD_BYTES_MAX
            || self
                .trace_field
                .bytes()
                .any(|b| b == b'"' || b == b'\\' || b < 0x20)
        {
            return Err(invalid(
                "traceField",
                format!("must be at most {TRACE_FIELD_BYTES_MAX} bytes without quotes, backslashes or control characters"),
            ));
        }
        let sm = &self.sampling;
        if !(1..=3_600_000).contains(&sm.tick_ms) {
            return Err(invalid(
                "sampling.tickMs",
                format!("{} is outside 1..=3600000", sm.tick_ms),
            ));
        }
        if !(100..=3_600_000).contains(&sm.summary_ms) {
            return Err(invalid(
                "sampling.summaryIntervalMs",
                format!("{} is outside 100..=3600000", sm.summary_ms),
            ));
        }
        if let Some(g) = &self.disk_guard {
            g.validate().map_err(|m| invalid("diskGuard", m))?;
        }
        Ok(())
    }
}
