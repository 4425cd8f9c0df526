//! The types of the streams' state (`stream_state` acts on them): the applier's working
//! copy, which assigns stream seqs, and the copy published to readers after the visible
//! sequence number covers it. Kept apart so that `state` can hold them without depending on
//! the files that act on the database. Also the waiters of `tail` (`stream_wait` acts on
//! them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::stream_keys::StreamMeta;

/// The applier's stream state and its published copy.
#[derive(Default)]
pub(super) struct Streams {
    /// The state after the last applied record (written by the applying thread only).
    working: Mutex<Working>,
    /// What readers see: `working` as of the visible sequence number.
    published: Mutex<HashMap<Box<[u8]>, StreamMeta>>,
}

#[derive(Default)]
pub(super) struct Working {
    /// Each stream's state.
    pub(super) by_name: HashMap<Box<[u8]>, StreamMeta>,
    /// Streams changed since the last publish.
    pub(super) dirty: Vec<Box<[u8]>>,
}

impl Working {
    /// Assigns the next seq of `name` to an entry of `bytes` bytes; returns it.
    pub(super) fn assign(&mut self, name: &[u8], bytes: usize) -> u64 {
        let m = match self.by_name.get_mut(name) {
            Some(m) => m,
            None => self.by_name.entry(name.into()).or_insert(StreamMeta::EMPTY),
        };
        m.last += 1;
        m.live_bytes += bytes as u64;
        m.live_count += 1;
        let last = m.last;
        if !self.dirty.iter().any(|d| &d[..] == name) {
            self.dirty.push(name.into());
        }
        last
    }

    /// The state of `name` (after [`Working::assign`]).
    pub(super) fn meta(&self, name: &[u8]) -> StreamMeta {
        self.by_name.get(name).copied().unwrap_or(StreamMeta::EMPTY)
    }
}

impl Streams {
    /// The applier's state (apply lock held).
    pub(super) fn working(&self) -> MutexGuard<'_, Working> {
        self.working.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the streams changed since the last call (after the visible sequence
    /// number covers their records).
    pub(super) fn publish(&self) {
        let mut w = self.working();
        if w.dirty.is_empty() {
            return;
        }
        let mut p = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let dirty = std::mem::take(&mut w.dirty);
        for name in dirty {
            let m = w.meta(&name);
            p.insert(name, m);
        }
    }

    /// The published state of `name`.
    pub(super) fn published(&self, name: &[u8]) -> StreamMeta {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
            .unwrap_or(StreamMeta::EMPTY)
    }
}

/// What ended a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamWaitOutcome {
    /// The stream's last seq is now this (above the seq waited after).
    Ready(u64),
    /// Cancelled ([`Db::stream_wait_cancel`]).
    Cancelled,
    /// The database closed.
    Closed,
}

/// A waiter's callback.
pub type StreamWake = Box<dyn FnOnce(StreamWaitOutcome) + Send>;

/// One registered wait.
pub(super) struct Waiter {
    /// Its id (for cancelling).
    pub(super) id: u64,
    /// The stream waited for.
    pub(super) stream: Box<[u8]>,
    /// It wakes once the stream's last seq exceeds this.
    pub(super) after: u64,
    /// The callback.
    pub(super) wake: StreamWake,
}

/// The waiters, under [`Waiters`]' lock.
#[derive(Default)]
pub(super) struct List {
    /// The last id given.
    pub(super) next_id: u64,
    /// The waits registered.
    pub(super) waiters: Vec<Waiter>,
}

/// The registered waiters of `tail` (see `stream_wait`).
#[derive(Default)]
pub(super) struct Waiters {
    any: AtomicBool,
    list: Mutex<List>,
}

impl Waiters {
    /// The list, locked.
    pub(super) fn list(&self) -> std::sync::MutexGuard<'_, List> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records whether any wait is registered (list lock held).
    pub(super) fn set_any(&self, any: bool) {
        self.any.store(any, Ordering::Release);
    }

    /// Wakes the waiters whose stream grew past their seq; `last(name)` is the published
    /// last seq.
    pub(super) fn notify(&self, last: impl Fn(&[u8]) -> u64) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut ready = Vec::new();
        {
            let mut l = self.list();
            let mut i = 0;
            while i < l.waiters.len() {
                let now = last(&l.waiters[i].stream);
                if now > l.waiters[i].after {
                    ready.push((l.waiters.swap_remove(i).wake, now));
                } else {
                    i += 1;
                }
            }
            self.any.store(!l.waiters.is_empty(), Ordering::Release);
        }
        for (wake, now) in ready {
            wake(StreamWaitOutcome::Ready(now));
        }
    }

    /// Ends every wait with `Closed` (the database is closing).
    pub(super) fn close_all(&self) {
        let all = {
            let mut l = self.list();
            self.any.store(false, Ordering::Release);
            std::mem::take(&mut l.waiters)
        };
        for w in all {
            (w.wake)(StreamWaitOutcome::Closed);
        }
    }
}
