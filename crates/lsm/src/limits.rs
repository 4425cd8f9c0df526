//! Bounds of the database's in-memory queues, with units in the names (STYLE habit 5).
//! The log's own bounds (ring, group, record) live in `uringdb_wal::limits`.

/// Payload bytes a write stall may hold (copied) before further writes are parked with
/// their caller: past this, `DbWriter::try_write_packed` stops and the writer is told
/// when the stall thread has drained some (the binding's writes then wait as pending
/// promises). One write larger than this is still taken when the queue is empty, so no
/// write is refused for its size; the queue thus holds at most this plus one write.
pub const STALL_QUEUE_BYTES_MAX: usize = 4 << 20;

/// Commit groups the committer may run ahead of the applier (each at most the ring's
/// size); the committer blocks beyond that, which backs up into the ring.
pub const APPLY_QUEUE_GROUPS: usize = 16;

/// Records (at most) in a commit group that the thread completing it applies itself when
/// the applier thread has nothing queued: a quiet database then skips one thread wake-up
/// per commit, while large groups still go to the applier thread so that the log's thread
/// can go on (see `db::apply`). At about 2 µs per random insert, this bounds the inline
/// work to tens of microseconds.
pub const INLINE_APPLY_RECORDS_MAX: usize = 16;

const _: () = assert!(STALL_QUEUE_BYTES_MAX >= 1 << 20 && APPLY_QUEUE_GROUPS >= 1);

/// Most stream waits (`tail`s waiting for a stream to grow) registered at once per
/// database: each is a callback held until the stream grows, so a leak of tails is an error,
/// not unbounded growth.
pub const STREAM_WAITERS_MAX: usize = 4096;
