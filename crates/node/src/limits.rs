//! Bounds of the binding's own queues, with units in the names (STYLE habit 5). The
//! engine's bounds live in `uringdb_wal::limits` and `uringdb_lsm::limits`.

/// Read jobs (a multi-get, an iterator batch, a log read, a truncation) queued for the
/// reader thread, process-wide. The façade keeps each handle's multi-gets far below this
/// (`DB_READS_IN_FLIGHT_MAX` in index.ts: the excess waits as pending promises); a job
/// beyond it — many handles or readers at once — is rejected with the retryable
/// `ERR_URINGDB_BUSY` instead of growing the queue.
pub const READER_QUEUE_JOBS_MAX: usize = 1024;

const _: () = assert!(READER_QUEUE_JOBS_MAX >= 64);

/// Most threads of the reader pool (the engine's bound on `readerThreads`).
pub const READER_THREADS_MAX: usize = uringdb_lsm::db::limits::READER_THREADS_MAX;
