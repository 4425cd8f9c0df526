//! The write path's entry: writers ([`DbWriter`], [`BlockingWriter`]) validate a batch and
//! hand it to the log, or to the stall queue while a stall holds writes.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::apply::OrderedSink;
use super::state::{Inner, WriterCore, STALL_NONE};
use super::{batch, Db, DbError};
use uringdb_wal::{CompletionSink, TryOutcome, WalError};

/// A source of writes whose completions go to one [`CompletionSink`] (one per JavaScript
/// thread). Writes through one writer complete in order.
pub struct DbWriter {
    core: Arc<WriterCore>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DbWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbWriter").finish_non_exhaustive()
    }
}

impl Db {
    /// A writer whose completions go to `sink` (see [`DbWriter`]).
    pub fn writer(&self, sink: Arc<dyn CompletionSink>) -> DbWriter {
        let sink: Arc<dyn CompletionSink> = Arc::new(OrderedSink {
            inner: sink,
            queue: self.inner.apply_queue.clone(),
        });
        DbWriter {
            core: Arc::new(WriterCore {
                producer: self.inner.wal.producer(sink.clone()),
                sink,
            }),
            inner: self.inner.clone(),
        }
    }
}

/// A writer that waits for each write's outcome (for Rust callers and tests; the binding
/// uses [`DbWriter`] with its own sink).
pub struct BlockingWriter {
    w: DbWriter,
    rx: Mutex<std::sync::mpsc::Receiver<Result<u64, WalError>>>,
}

impl std::fmt::Debug for BlockingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingWriter").finish_non_exhaustive()
    }
}

pub(super) struct ChannelSink(pub(super) Mutex<std::sync::mpsc::Sender<Result<u64, WalError>>>);

impl CompletionSink for ChannelSink {
    fn completed(&self, seqs: &[u64], _group: &uringdb_wal::GroupInfo) {
        let tx = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for &s in seqs {
            let _ = tx.send(Ok(s));
        }
    }
    fn failed(&self, count: usize, error: &WalError) {
        let tx = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..count {
            let _ = tx.send(Err(error.clone()));
        }
    }
}

impl BlockingWriter {
    /// Writes `batch` and waits for its outcome; returns its sequence number.
    pub fn write(&self, batch: &batch::WriteBatch, sync: bool) -> Result<u64, DbError> {
        self.w.inner.check_locks(batch.as_bytes())?;
        self.write_payload(batch.as_bytes(), sync)
    }

    fn write_payload(&self, payload: &[u8], sync: bool) -> Result<u64, DbError> {
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        self.w.write(payload, sync)?;
        match rx.recv() {
            Ok(r) => r.map_err(DbError::Wal),
            Err(_) => Err(DbError::Closed),
        }
    }

    /// Prepares `batch` as the transaction `txid` (durable when it returns; see `txn`).
    pub fn prepare(&self, txid: &str, batch: &batch::WriteBatch) -> Result<u64, DbError> {
        let payload = batch::encode_prepare(txid, super::txn_table::now_ms(), batch);
        self.w.inner.reserve_prepare(&payload)?;
        let r = self.write_payload(&payload, true);
        if r.is_err() {
            self.w.inner.abandon_prepare(txid);
        }
        r
    }

    /// Commits (`commit`) or rolls back the prepared transaction `txid` (durable when it
    /// returns).
    pub fn finish_prepared(&self, txid: &str, commit: bool) -> Result<u64, DbError> {
        self.w.inner.begin_finish(txid)?;
        let r = self.write_payload(&batch::encode_finish(txid, commit), true);
        if r.is_err() {
            self.w.inner.abandon_finish(txid);
        }
        r
    }

    /// Commits the optimistic transaction attempt `attempt` (see `occ`): its reads were
    /// `reads` at `attempt.snapshot`, its writes are `batch` (at least one). Returns the
    /// record's sequence number, or [`DbError::ReadConflict`] (nothing applied), or
    /// [`DbError::Conflict`] if `batch` writes a key a prepared transaction holds.
    pub fn commit_optimistic(
        &self,
        attempt: super::OptimisticAttempt,
        reads: &[batch::ReadItem<'_>],
        batch: &batch::WriteBatch,
        sync: bool,
    ) -> Result<u64, DbError> {
        let payload = batch::encode_optimistic(attempt.snapshot.seq(), reads, batch);
        let r = self
            .w
            .inner
            .check_locks(&payload)
            .and_then(|()| self.write_payload(&payload, sync));
        let conflict = self.w.inner.occ_end(attempt.id, r.as_ref().ok().copied());
        match (r, conflict) {
            (Ok(_), Some(key)) => Err(DbError::ReadConflict { key }),
            (r, _) => r,
        }
    }

    /// Puts one key.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<u64, DbError> {
        let mut b = batch::WriteBatch::new();
        b.put(key, value);
        self.write(&b, true)
    }

    /// Deletes one key.
    pub fn delete(&self, key: &[u8]) -> Result<u64, DbError> {
        let mut b = batch::WriteBatch::new();
        b.delete(key);
        self.write(&b, true)
    }
}

impl Db {
    /// A [`BlockingWriter`].
    pub fn blocking_writer(&self) -> BlockingWriter {
        let (tx, rx) = std::sync::mpsc::channel();
        BlockingWriter {
            w: self.writer(Arc::new(ChannelSink(Mutex::new(tx)))),
            rx: Mutex::new(rx),
        }
    }
}

impl DbWriter {
    /// Logs a batch payload (see [`batch`]); the outcome arrives at the writer's sink.
    /// Key locks are not checked here but at the API, when the write is called
    /// ([`Db::check_locks`], [`BlockingWriter::write`]): a write called before a prepare is
    /// ordered before it even if it reaches the log after. Prepare, commit and rollback
    /// records must have been reserved or begun (see `txn`).
    /// Refuses malformed batches, a closed database, and (after a background error)
    /// writes, synchronously. Blocks while the commit queue or a stall's queue is full
    /// (for Rust callers on their own threads; the binding uses
    /// [`DbWriter::try_write_packed`]).
    pub fn write(&self, payload: &[u8], sync: bool) -> Result<(), DbError> {
        self.admit(payload, sync, true).map(|_| ())
    }

    /// Logs a run of batch payloads in order without ever blocking: `data` holds them back
    /// to back, `lens` their lengths, `syncs` one flag each (non-zero: sync). Payloads are
    /// taken in order until the commit queue or a write stall's queue (bounded by
    /// [`STALL_QUEUE_BYTES_MAX`](crate::limits::STALL_QUEUE_BYTES_MAX)) is full; [`TryOutcome::accepted`] says how many went in.
    /// When `full`, the writer is registered for one `space_available` call at its sink
    /// (`registered`, see [`TryOutcome`]) and the caller retries the rest, in order, then.
    /// On an error, the payloads before it were taken and the error says how many.
    pub fn try_write_packed(
        &self,
        data: &[u8],
        lens: &[u32],
        syncs: &[u8],
    ) -> Result<TryOutcome, (usize, DbError)> {
        let mut out = TryOutcome::default();
        if lens.len() != syncs.len() {
            return Err((
                0,
                DbError::InvalidArgument("writePacked: lens and syncs differ in length".into()),
            ));
        }
        let mut at = 0usize;
        for (i, (&len, &sync)) in lens.iter().zip(syncs).enumerate() {
            let end = at + len as usize;
            let Some(p) = data.get(at..end) else {
                return Err((
                    i,
                    DbError::InvalidArgument("writePacked: lengths run past the data".into()),
                ));
            };
            let r = self.admit(p, sync != 0, false).map_err(|e| (i, e))?;
            out.registered |= r.registered;
            if r.full {
                out.full = true;
                break;
            }
            out.accepted = i + 1;
            at = end;
        }
        Ok(out)
    }

    /// One write: validated, then into the stall queue (if a stall holds writes) or the
    /// log. Without `wait`, a full queue returns `full` instead of blocking.
    pub(super) fn admit(
        &self,
        payload: &[u8],
        sync: bool,
        wait: bool,
    ) -> Result<TryOutcome, DbError> {
        let inner = &self.inner;
        if inner.closing.load(Ordering::Acquire) {
            return Err(DbError::Closed);
        }
        batch::validate(payload)?;
        let rec = batch::record(payload)?;
        if !matches!(rec, batch::Record::Batch | batch::Record::Optimistic { .. }) {
            inner.admit_check(&rec)?;
        }
        if payload.len() > inner.wal.max_record_bytes() {
            return Err(DbError::Wal(WalError::TooLarge {
                bytes: payload.len(),
                limit: inner.wal.max_record_bytes(),
            }));
        }
        if let Some(e) = inner.bg_error() {
            return Err(DbError::Background(e));
        }
        let accepted = TryOutcome {
            accepted: 1,
            ..TryOutcome::default()
        };
        if inner.stall_level.load(Ordering::Acquire) != STALL_NONE
            || inner.stall_pending.load(Ordering::Acquire) > 0
        {
            let mut st = inner.stall.lock().unwrap_or_else(|e| e.into_inner());
            if inner.stall_level.load(Ordering::Acquire) != STALL_NONE
                || inner.stall_pending.load(Ordering::Acquire) > 0
            {
                while !st.fits(payload.len()) {
                    if !wait {
                        // Parked with the caller; the stall thread calls back once it
                        // drained some (the check and the registration share the lock
                        // with the drain, so the call cannot be missed).
                        let registered = !st.wanted.iter().any(|w| Arc::ptr_eq(w, &self.core));
                        if registered {
                            st.wanted.push(self.core.clone());
                        }
                        return Ok(TryOutcome {
                            accepted: 0,
                            full: true,
                            registered,
                        });
                    }
                    if inner.closing.load(Ordering::Acquire) {
                        return Err(DbError::Closed);
                    }
                    st = inner
                        .stall_cv
                        .wait_timeout(st, Duration::from_millis(50))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                if st.since.is_none() {
                    st.since = Some(Instant::now());
                }
                inner.stall_pending.fetch_add(1, Ordering::AcqRel);
                st.bytes += payload.len();
                st.q.push_back((self.core.clone(), payload.to_vec(), sync));
                drop(st);
                inner.logged(&rec);
                inner.stall_cv.notify_all();
                return Ok(accepted);
            }
        }
        if wait {
            self.core
                .producer
                .append(payload, sync)
                .map_err(DbError::Wal)?;
            inner.logged(&rec);
            return Ok(accepted);
        }
        let out = self
            .core
            .producer
            .try_append_many(&[payload], sync)
            .map_err(DbError::Wal)?;
        if out.accepted > 0 {
            inner.logged(&rec);
        }
        Ok(out)
    }

    /// Asks for every earlier write of this writer to be durable; completes (at the sink)
    /// with the durable sequence number.
    pub fn sync(&self) -> Result<(), DbError> {
        self.core.producer.sync().map_err(DbError::Wal)
    }
}
