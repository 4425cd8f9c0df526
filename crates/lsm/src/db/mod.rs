//! The key-value database: an LSM tree on the write-ahead log.
//!
//! # Write path
//! A put, delete or batch is validated and encoded as one log record ([`batch`]). It goes
//! through the log's group commit like any record. After the group's write (and fdatasync,
//! for `sync` writes) the log's committer thread hands the group to the apply hook, which
//! queues a copy of it for the applier thread and returns, so that the committer writes the
//! next group while this one is applied. The applier inserts each record into the active
//! memtable under its sequence number, publishes the visible sequence number, and only then
//! delivers the group's completions (which the log queued behind the records). So a
//! resolved write is visible to every later read, and readers never see a record the log
//! could still lose (for `sync` writes).
//!
//! # Memtables, flush, compaction
//! A memtable that reaches `memtable_bytes` becomes immutable (rotated by the applier
//! thread, the memtable's only writer) and a flush thread writes it to a level-0 table; a version
//! edit in the manifest records the table and the flushed sequence number, after which log
//! segments wholly below it are deleted. Compaction threads merge level 0 into level 1 and
//! level n into n+1 when a level exceeds its target size, dropping versions no snapshot can
//! see. Writes slow down, then stop, when level 0 grows too deep or memtables pile up.
//!
//! # Reads
//! A read takes the visible sequence number, then pins the current `SuperVersion`
//! (memtable, immutable memtables, tables): everything at or below that sequence number is
//! in what it pinned. Point reads look newest first and stop at the first version found;
//! range reads merge all sources (the `iter` module).
//!
//! # Where things are
//! Writers and the stall queue's admission: `write`; the apply hook and the applier
//! thread: `apply`; write stalls and the stall thread: `stall`; point reads and snapshots:
//! `read` (range reads: `iter`); open and recovery: `open`; the flush thread: `flush`;
//! picking and running compactions: `compact`; writing their tables: `outputs`; recording
//! and publishing their result: `install`; starting, waiting for and stopping the
//! background threads: `lifecycle`; the state all threads share (`Inner`), background
//! errors and the statistics snapshot: `state`; the statistics' and events' types: `stats`;
//! the background rate limiter: `rate_limiter`; two-phase commit (prepare reservations, key
//! locks, finishing at apply, the log's truncation floor): `txn`, over the table's types in
//! `txn_table`; optimistic transactions (validation at apply, replay's decisions): `occ`, over its
//! state's types in `occ_state`. This module holds the [`Db`] type and ties
//! them together. The files depend on each other one way: `state` and the types below it
//! know nothing of the files that act on them.

mod apply;
mod apply_queue;
pub mod batch;
mod compact;
mod error;
mod flush;
mod install;
mod iter;
mod lifecycle;
pub mod limits;
mod occ;
mod occ_state;
mod op;
mod open;
mod options;
mod outputs;
mod rate_limiter;
mod read;
mod stall;
mod state;
mod stats;
mod stream_keys;
mod stream_state;
mod stream_table;
mod stream_wait;
mod table_files;
mod txn;
mod txn_table;
mod version;
mod write;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use crate::failpoint::arm_failpoint;
pub use error::DbError;
pub use iter::{DbIter, IterBatch, RangeOptions};
pub use occ::OptimisticAttempt;
pub use options::DbOptions;
pub use read::SnapshotPin;
pub use state::DbRecovery;
pub use stats::{
    CompactionEvent, CompactionReason, DbEvent, DbStats, ErrorEvent, FlushEvent, LevelStats,
    StallEvent, StallLevel,
};
pub use stream_state::{StreamBatch, StreamInfo, StreamIter};
pub use stream_table::{StreamWaitOutcome, StreamWake};
pub use txn_table::{PreparedOp, PreparedTxn};
pub use write::{BlockingWriter, DbWriter};

use state::Inner;
use uringdb_wal::RecoveryReport;

/// Name of the write-ahead log's subdirectory.
pub const WAL_DIR: &str = "wal";

/// The open database (cheap to clone; all clones share it).
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).finish()
    }
}

impl Db {
    /// What open found and did.
    pub fn recovery(&self) -> &DbRecovery {
        &self.inner.recovery
    }

    /// The log's recovery report.
    pub fn wal_recovery(&self) -> &RecoveryReport {
        &self.inner.wal_report
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &DbOptions {
        &self.inner.opts
    }

    /// The I/O backend's probe report (which backend, why a fallback).
    pub fn probe(&self) -> &uringdb_uring::ProbeReport {
        self.inner.wal.probe()
    }

    /// Largest batch payload accepted.
    pub fn max_batch_bytes(&self) -> usize {
        self.inner.wal.max_record_bytes()
    }

    /// Flushes the memtable to a table and waits until every memtable holding data
    /// written before this call is in a table.
    pub fn flush(&self) -> Result<(), DbError> {
        self.inner.flush_and_wait()
    }

    /// Stops background work, writes out writes held by a stall, closes the log (pending
    /// writes complete), and releases the directory. Idempotent.
    pub fn close(&self) -> Result<(), DbError> {
        self.inner.close()
    }

    /// Refuses a batch payload that writes a key a prepared transaction holds
    /// ([`DbError::Conflict`]). The binding calls this at the API, before a write is staged;
    /// [`BlockingWriter`] calls it itself.
    pub fn check_locks(&self, payload: &[u8]) -> Result<(), DbError> {
        self.inner.check_locks(payload)
    }

    /// Refuses a put or delete of `key` that a prepared transaction holds.
    pub fn check_key(&self, key: &[u8]) -> Result<(), DbError> {
        self.inner.check_key(key)
    }

    /// Keeps `flag` at 1 while a prepared transaction locks any key, 0 otherwise, until
    /// `flag` is dropped: a caller may skip [`Db::check_key`] / [`Db::check_locks`] while it
    /// reads 0 (the binding's handles read it from JavaScript without a call).
    pub fn watch_locks(&self, flag: &Arc<std::sync::atomic::AtomicU32>) {
        self.inner.watch_locks(flag)
    }

    /// Reserves a prepare record's txid and locks its keys (see `txn`), before the record is
    /// written; [`DbError::TxnExists`] or [`DbError::Conflict`] if it cannot.
    pub fn reserve_prepare(&self, payload: &[u8]) -> Result<(), DbError> {
        self.inner.reserve_prepare(payload)
    }

    /// Undoes a reservation whose record did not reach the log.
    pub fn abandon_prepare(&self, txid: &str) {
        self.inner.abandon_prepare(txid)
    }

    /// Marks `txid` as finishing before its commit or rollback record is written;
    /// [`DbError::TxnNotFound`] if it is unknown, not yet logged, or already finishing.
    pub fn begin_finish(&self, txid: &str) -> Result<(), DbError> {
        self.inner.begin_finish(txid)
    }

    /// Undoes [`Db::begin_finish`] for a record that did not reach the log.
    pub fn abandon_finish(&self, txid: &str) {
        self.inner.abandon_finish(txid)
    }

    /// The prepared transactions (durable, not finished), in log order.
    pub fn prepared_transactions(&self) -> Vec<PreparedTxn> {
        self.inner.prepared_transactions()
    }

    /// Statistics.
    pub fn stats(&self) -> DbStats {
        self.inner.stats()
    }

    /// Registers an event listener (called on background threads; must not block).
    /// Returns an id for [`Db::remove_listener`].
    pub fn add_listener(&self, f: Arc<dyn Fn(&DbEvent) + Send + Sync>) -> u64 {
        let id = self.inner.next_listener.fetch_add(1, Ordering::Relaxed);
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, f));
        id
    }

    /// Removes a listener.
    pub fn remove_listener(&self, id: u64) {
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| *i != id);
    }
}
