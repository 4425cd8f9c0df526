//! uringdb's write-ahead log: segmented files of checksummed frames, written by one
//! committer thread in adaptive commit groups drained from a lock-free multi-producer
//! ring buffer, each group one gathered write; the fdatasyncs that acknowledge them run on
//! sync threads (up to two at once) while the committer writes the next groups.
//!
//! * [`format`] — the on-disk format (drawn there).
//! * `wal` — the [`Wal`] type: open, producers, reads, waits, truncation, close.
//! * `options` — [`WalOptions`] and the limits derived from them at open.
//! * `producer` — [`Producer`]: appends into the commit queue.
//! * `shared` — the state producers, the committer, readers and the preparer share, and
//!   the callbacks it holds ([`CompletionSink`], [`ApplyHook`]).
//! * `ring` — the commit queue and its ownership protocol.
//! * `committer` — group formation, durability, failure latching.
//! * `recovery` — what happens at open after a crash ([`RecoveryMode`], [`RecoveryReport`]).
//! * `reader` — reading committed records by sequence number.
//! * `record_ring` — [`RecordRing`]: the commit ring as a queue of opaque records for
//!   other consumers (the log sink).
//!
//! Nothing here knows about JavaScript; the binding crate adapts [`CompletionSink`] to
//! promises.
#![deny(missing_docs)]

mod committer;
mod error;
pub mod format;
pub mod limits;
mod options;
mod producer;
mod reader;
mod record_ring;
mod recovery;
mod ring;
mod scan;
mod segment;
mod shared;
mod stats;
mod sync;
mod wal;

/// Entry points for the fuzz harness (`crates/fuzz`); not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;
    use uringdb_uring::Vfs;

    /// Runs recovery alone on the segments in `dir` (what [`crate::Wal::open`] does before
    /// it starts its threads): the report, or the error open would return.
    pub fn recover(
        vfs: &dyn Vfs,
        dir: &Path,
        mode: crate::RecoveryMode,
        segment_bytes: u64,
    ) -> Result<crate::RecoveryReport, crate::WalError> {
        crate::recovery::recover(
            vfs,
            dir,
            mode,
            segment_bytes,
            crate::limits::RECYCLE_SEGMENTS_DEFAULT,
        )
        .map(|r| r.report)
    }
}

pub use error::WalError;
pub use options::WalOptions;
pub use producer::{Producer, TryOutcome};
pub use reader::{ReadBatch, ReadCursor};
pub use record_ring::{RecordConsumer, RecordRing};
pub use recovery::{RecoveryMode, RecoveryReport};
pub use shared::{ApplyHook, CompletionSink, GroupInfo, WaitOutcome};
pub use stats::{Percentiles, WalStats};
pub use uringdb_uring::{BackendChoice, FaultConfig, FaultVfs};
pub use wal::Wal;
