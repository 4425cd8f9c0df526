//! uringdb's structured-log sink (issue 12): a destination for pino-style NDJSON lines.
//!
//! Producers ([`LogSink::write`], any thread; the binding's JavaScript thread) copy each
//! line into the WAL's lock-free commit ring ([`uringdb_wal::RecordRing`]) and return: no
//! per-line promise, no batching in JavaScript. One writer thread drains the ring, scans
//! each line for its level, time and trace id ([`line`]), collects lines into blocks of
//! `block_raw_bytes`, compresses each with zstd and appends it, framed and checksummed, to
//! the active segment file through the I/O backend switch (io_uring or portable, or the
//! fault backend in tests). The format is drawn in [`format`], its home.
//!
//! Why not the WAL itself: writing raw lines into the WAL and recompressing them later
//! would write everything twice. The sink keeps the WAL's ring (the part that makes
//! producers cheap) and its discipline (checksums, torn tails cut, corruption named by
//! file and offset, a failed fdatasync latches), with its own file format.
//!
//! Durability ([`SyncMode`]): `None`, `Interval` (the default: one group fdatasync at most
//! every interval while anything is unsynced) or `Always` (every drained group is written
//! and synced at once). [`LogSink::flush_sync`] makes everything written before it durable
//! in any mode and blocks until it is.
//!
//! Reading ([`LogReader`]) works on a store being written, reads only the blocks whose
//! header can match a time range or a level, and never modifies the store.
//!
//! Deviation from the plan noted in issue 12: the per-segment index is the chain of block
//! headers (each 80 bytes, read without the payload), rebuilt by walking them; a sealed
//! segment's footer index (one read per segment) is left for later.
//!
//! * [`format`] — segment and block layout, encoder and decoder.
//! * `line` — the level / time / trace-id scan.
//! * `options`, `limits` — [`SinkOptions`] and every bound.
//! * `shared` — state shared by producers and the writer; the wake-up protocol.
//! * `writer` — the writer thread.
//! * `sink` — [`LogSink`].
//! * `segment`, `recovery` — walking segments; what open does after a crash.
//! * `retention` — deleting the oldest sealed segments by bytes, age, count.
//! * [`diskguard`] — the disk-space guard's watermarks (pure; a fake statvfs in tests).
//! * [`sampler`] — sampling and rate limits per level (pure; a fake clock in tests).
//! * `reader` — [`LogReader`], [`summarize`].
#![deny(missing_docs)]

pub mod diskguard;
mod error;
pub mod format;
pub mod limits;
pub mod line;
mod options;
mod reader;
mod recovery;
mod retention;
pub mod sampler;
mod segment;
mod shared;
mod sink;
mod writer;

pub use error::SinkError;
pub use options::{SinkOptions, SyncMode};
pub use reader::{summarize, LogReader, ReadFilter, ReadStats, StoreSummary};
pub use recovery::RecoveryReport;
pub use retention::Retention;
pub use sink::{LogSink, SinkStats};
pub use uringdb_uring::{open_vfs, BackendChoice, FaultConfig, FaultVfs};
