//! uringdb's write-ahead log: segmented files of checksummed frames, written by one
//! committer thread in adaptive commit groups drained from a lock-free multi-producer
//! ring buffer, each group one write linked to one fdatasync.
//!
//! * [`format`] — the on-disk format (drawn there).
//! * `ring` — the commit queue and its ownership protocol.
//! * `committer` — group formation, durability, failure latching.
//! * `recovery` — what happens at open after a crash.
//! * `reader` — reading committed records by sequence number.
//!
//! Nothing here knows about JavaScript; the binding crate adapts [`CompletionSink`] to
//! promises.
#![deny(missing_docs)]

mod committer;
mod error;
pub mod format;
pub mod limits;
mod reader;
mod recovery;
mod ring;
mod scan;
mod segment;
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
        crate::recovery::recover(vfs, dir, mode, segment_bytes).map(|r| r.report)
    }
}

pub use error::WalError;
pub use reader::{ReadBatch, ReadCursor};
pub use stats::{Percentiles, WalStats};
pub use uringdb_uring::{BackendChoice, FaultConfig, FaultVfs};
pub use wal::{
    ApplyHook, CompletionSink, GroupInfo, Producer, RecoveryMode, RecoveryReport, WaitOutcome, Wal,
    WalOptions,
};
