//! Waiting for a stream to grow (`tail`): a waiter names a stream and a seq; its callback
//! runs once the stream's published `lastSeq` exceeds that seq, or when it is cancelled or
//! the database closes.
//!
//! Ordering: the applier publishes the streams' state (after storing the visible sequence
//! number), then calls [`Waiters::notify`] if any waiter is registered (one relaxed load
//! otherwise). [`Db::stream_wait`] registers under the waiters' lock and checks the
//! published state under the same lock: a publish before the check is seen by the check, one
//! after it is followed by a `notify` that sees the waiter. Callbacks run outside the lock,
//! on the thread that applied the records (or the caller's, when already satisfied): they
//! must be short (the binding's resolves a promise).

use std::sync::atomic::Ordering;

use super::batch::check_name;
use super::error::DbError;
use super::state::Inner;
use super::stream_table::{StreamWaitOutcome, StreamWake, Waiter};
use super::Db;
use crate::limits::STREAM_WAITERS_MAX;

impl Inner {
    /// Wakes the tails of streams the last group grew (after `Streams::publish`).
    pub(super) fn notify_stream_waiters(&self) {
        self.stream_waiters
            .notify(|name| self.streams.published(name).last);
    }
}

impl Db {
    /// Calls `wake` once stream `name`'s last seq exceeds `after` (at once if it does
    /// already, or if the database is closing), or when the wait is cancelled. Returns the
    /// wait's id for [`Db::stream_wait_cancel`] (0: `wake` already ran). At most
    /// [`STREAM_WAITERS_MAX`] waits at once: beyond, an error.
    pub fn stream_wait(&self, name: &[u8], after: u64, wake: StreamWake) -> Result<u64, DbError> {
        check_name("stream", name).map_err(DbError::InvalidArgument)?;
        let inner = &self.inner;
        let w = &inner.stream_waiters;
        let mut l = w.list();
        if inner.closing.load(Ordering::Acquire) {
            drop(l);
            wake(StreamWaitOutcome::Closed);
            return Ok(0);
        }
        let now = inner.streams.published(name).last;
        if now > after {
            drop(l);
            wake(StreamWaitOutcome::Ready(now));
            return Ok(0);
        }
        if l.waiters.len() >= STREAM_WAITERS_MAX {
            return Err(DbError::InvalidArgument(format!(
                "too many stream waits at once (at most {STREAM_WAITERS_MAX}): close unused tails"
            )));
        }
        l.next_id += 1;
        let id = l.next_id;
        l.waiters.push(Waiter {
            id,
            stream: name.into(),
            after,
            wake,
        });
        w.set_any(true);
        Ok(id)
    }

    /// Cancels wait `id`: its callback runs with `Cancelled` unless it ran already.
    pub fn stream_wait_cancel(&self, id: u64) {
        let wake = {
            let mut l = self.inner.stream_waiters.list();
            let i = l.waiters.iter().position(|w| w.id == id);
            i.map(|i| l.waiters.swap_remove(i).wake)
        };
        if let Some(wake) = wake {
            wake(StreamWaitOutcome::Cancelled);
        }
    }
}
