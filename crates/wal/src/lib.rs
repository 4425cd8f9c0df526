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

pub use error::WalError;
pub use reader::{ReadBatch, ReadCursor};
pub use stats::{Percentiles, WalStats};
pub use uringdb_uring::{BackendChoice, FaultConfig, FaultVfs};
pub use wal::{
    ApplyHook, CompletionSink, GroupInfo, Producer, RecoveryMode, RecoveryReport, TryOutcome,
    WaitOutcome, Wal, WalOptions,
};
