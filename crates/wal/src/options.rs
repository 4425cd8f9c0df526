//! [`WalOptions`]: what [`crate::Wal::open`] accepts, and the [`Limits`] derived from them
//! at open (bounds checked against [`crate::limits`]).

use crate::error::WalError;
use crate::format::{self, FRAME_HEADER_BYTES};
use crate::limits::*;
use crate::recovery::RecoveryMode;
use std::time::Duration;
use uringdb_uring::{BackendChoice, FaultConfig};

/// Options of [`Wal::open`](crate::Wal::open). Field names in errors use the JavaScript spelling.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Largest size of a segment file (`segmentBytes`). Segments start small and grow up to
    /// it, doubling, while writes are heavy; each is preallocated (zero-filled) at its size.
    pub segment_bytes: u64,
    /// Commit-queue capacity, a power of two (`ringBytes`).
    pub ring_bytes: usize,
    /// Largest record payload (`maxRecordBytes`); `None` picks the largest that fits.
    pub max_record_bytes: Option<usize>,
    /// Extra wait before writing a group that started on an idle log (`commitDelayUs`).
    pub commit_delay_us: u64,
    /// Recovery mode (`recovery`).
    pub recovery: RecoveryMode,
    /// I/O backend (`ioBackend`).
    pub backend: BackendChoice,
    /// Most fdatasyncs in flight at once (the commit pipeline's sync threads), 1 to
    /// [`SYNCS_IN_FLIGHT_MAX`]. Not a JavaScript option: the engine's default
    /// ([`SYNCS_IN_FLIGHT_DEFAULT`]); tests and measurements set others.
    pub syncs_in_flight: usize,
    /// Most freed segment files kept for reuse (`recycleSegments`), 0 to
    /// [`RECYCLE_SEGMENTS_MAX`]: when truncation frees segments, up to this many of the
    /// largest are kept (renamed `N.wal.free`) and reused for new segments instead of
    /// zero-filling new files. 0 deletes freed segments. They cost disk space while
    /// unused: up to this many times `segmentBytes`.
    pub recycle_segments: usize,
    /// Test-only: wrap the backend in [`FaultVfs`](uringdb_uring::FaultVfs) (drops unsynced bytes on crash, injects
    /// faults).
    pub fault: Option<FaultConfig>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            ring_bytes: RING_BYTES_DEFAULT,
            max_record_bytes: None,
            commit_delay_us: 0,
            recovery: RecoveryMode::Strict,
            backend: BackendChoice::Auto,
            syncs_in_flight: SYNCS_IN_FLIGHT_DEFAULT,
            recycle_segments: RECYCLE_SEGMENTS_DEFAULT,
            fault: None,
        }
    }
}

/// Limits derived from the options at open.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The largest segment (`segmentBytes`).
    pub segment_bytes: u64,
    /// A new log's first segment, and the smallest a segment shrinks to.
    pub first_segment_bytes: u64,
    pub max_record_bytes: usize,
    /// Largest framed reservation (a record or a whole batch).
    pub max_entry_bytes: usize,
    pub group_bytes_max: usize,
    pub commit_delay: Duration,
    /// Most fdatasyncs in flight at once (the commit pipeline's depth).
    pub sync_depth: usize,
    /// Most freed segment files kept for reuse.
    pub recycle_segments: usize,
}

impl WalOptions {
    /// Checks every option as [`Wal::open`](crate::Wal::open) does; the error names the
    /// first one out of range.
    pub fn validate(&self) -> Result<(), WalError> {
        self.limits().map(|_| ())
    }

    pub(crate) fn limits(&self) -> Result<Limits, WalError> {
        let bad = |field, message: String| Err(WalError::InvalidOption { field, message });
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes)
            || !self.segment_bytes.is_multiple_of(8)
        {
            return bad(
                "segmentBytes",
                format!("must be a multiple of 8 between {SEGMENT_BYTES_MIN} and {SEGMENT_BYTES_MAX}, got {}", self.segment_bytes),
            );
        }
        if !self.ring_bytes.is_power_of_two()
            || !(RING_BYTES_MIN..=RING_BYTES_MAX).contains(&self.ring_bytes)
        {
            return bad(
                "ringBytes",
                format!(
                    "must be a power of two between {RING_BYTES_MIN} and {RING_BYTES_MAX}, got {}",
                    self.ring_bytes
                ),
            );
        }
        if !(1..=SYNCS_IN_FLIGHT_MAX).contains(&self.syncs_in_flight) {
            return bad(
                "syncsInFlight",
                format!("1..={SYNCS_IN_FLIGHT_MAX}, got {}", self.syncs_in_flight),
            );
        }
        if self.recycle_segments > RECYCLE_SEGMENTS_MAX {
            return bad(
                "recycleSegments",
                format!(
                    "must be between 0 and {RECYCLE_SEGMENTS_MAX}, got {}",
                    self.recycle_segments
                ),
            );
        }
        if self.commit_delay_us > COMMIT_DELAY_US_MAX {
            return bad(
                "commitDelayUs",
                format!(
                    "must be between 0 and {COMMIT_DELAY_US_MAX}, got {}",
                    self.commit_delay_us
                ),
            );
        }
        let segment_payload = format::segment_record_room(self.segment_bytes as usize);
        // One reservation (a record, or a whole atomic batch, framed) may take up to half
        // the ring and must fit in one segment.
        let max_entry_bytes = (self.ring_bytes / 2).min(segment_payload);
        let record_cap = (self.ring_bytes / 4)
            .min(segment_payload - FRAME_HEADER_BYTES)
            .min(format::FRAME_PAYLOAD_MAX);
        let max_record_bytes = match self.max_record_bytes {
            None => RECORD_BYTES_DEFAULT.min(record_cap),
            Some(n) if n >= 1 && n <= record_cap => n,
            Some(n) => {
                return bad(
                    "maxRecordBytes",
                    format!("must be between 1 and {record_cap} (at most a quarter of ringBytes, and what fits in a segment), got {n}"),
                )
            }
        };
        Ok(Limits {
            segment_bytes: self.segment_bytes,
            first_segment_bytes: SEGMENT_BYTES_FIRST.min(self.segment_bytes),
            max_record_bytes,
            max_entry_bytes,
            group_bytes_max: GROUP_BYTES_MAX.max(max_entry_bytes),
            commit_delay: Duration::from_micros(self.commit_delay_us),
            sync_depth: self.syncs_in_flight,
            recycle_segments: self.recycle_segments,
        })
    }
}
