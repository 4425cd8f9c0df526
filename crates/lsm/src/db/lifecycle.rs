//! The background threads' lifecycle: starting them (flush, compaction, stall), waiting for
//! a flush, and closing (threads, then the log, then the applier).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::apply_queue::ApplyMsg;
use super::stall::stall_thread;
use super::state::Inner;
use super::DbError;
use super::{compact, flush};
use uringdb_wal::WalError;

impl Inner {
    pub(super) fn start_threads(self: &Arc<Self>) -> Result<(), DbError> {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        // A panic in a background job must fail the database, not leave its scheduler state
        // (a flush or compaction marked running forever) for writers and close to wait on.
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            let weak = Arc::downgrade(self);
            let place = format!("the {name} thread");
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                        if let Some(inner) = weak.upgrade() {
                            inner.fail_after_panic(&place, &*p);
                        }
                    }
                })
                .map_err(|e| DbError::io("spawning a background thread", e))
        };
        let weak = Arc::downgrade(self);
        threads.push(spawn(
            "uringdb-flush".into(),
            Box::new(move || flush::flush_thread(weak)),
        )?);
        for i in 0..self.opts.compaction_threads {
            let weak = Arc::downgrade(self);
            threads.push(spawn(
                format!("uringdb-compact-{i}"),
                Box::new(move || compact::compaction_thread(weak)),
            )?);
        }
        let weak = Arc::downgrade(self);
        threads.push(spawn(
            "uringdb-stall".into(),
            Box::new(move || stall_thread(weak)),
        )?);
        Ok(())
    }

    pub(super) fn flush_and_wait(&self) -> Result<(), DbError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(DbError::Closed);
        }
        if let Some(e) = self.panic_error() {
            return Err(e);
        }
        let target = {
            let _g = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
            let seq = self.visible_seq.load(Ordering::Acquire);
            self.rotate_locked();
            seq
        };
        let mut s = self.sched.lock().unwrap_or_else(|e| e.into_inner());
        self.bg_cv.notify_all();
        loop {
            let flushed = self
                .manifest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .state
                .flushed_seq;
            let sv = self.super_version();
            let pending = sv
                .imm
                .iter()
                .any(|m| m.last_seq.load(Ordering::Acquire) <= target && !m.is_empty());
            if flushed >= target || !pending {
                return Ok(());
            }
            if let Some(e) = self.bg_error() {
                return Err(DbError::Background(e));
            }
            if self.closing.load(Ordering::Acquire) {
                return Err(DbError::Closed);
            }
            s = self
                .done_cv
                .wait_timeout(s, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub(super) fn close(&self) -> Result<(), DbError> {
        if self.closing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Tails end: nothing more will be appended.
        self.stream_waiters.close_all();
        // Release writes held by a stall into the log, so they complete with the close.
        {
            let _g = self.stall.lock().unwrap_or_else(|e| e.into_inner());
            self.stall_cv.notify_all();
        }
        {
            let _s = self.sched.lock().unwrap_or_else(|e| e.into_inner());
            self.bg_cv.notify_all();
            self.done_cv.notify_all();
        }
        let threads: Vec<JoinHandle<()>> = self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
        let closed = self.wal.close();
        // Everything the log completed is queued for the applier: let it finish.
        self.apply_queue.send(ApplyMsg::Stop);
        let applier = self
            .applier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = applier {
            let _ = h.join();
        }
        match closed {
            Err(WalError::Failed(_)) | Ok(()) => Ok(()),
            Err(e) => Err(DbError::Wal(e)),
        }
    }
}
