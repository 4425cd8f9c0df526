//! Write stalls: when level 0 grows too deep or memtables pile up, writes are held in a
//! bounded queue and released by the stall thread: a few at a time during a slowdown, none
//! while writes are stopped, all at once when the stall ends.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::state::{Inner, WriterCore, STALL_NONE, STALL_SLOWDOWN, STALL_STOP};
use super::stats::{add, DbEvent, StallEvent, StallLevel};

impl Inner {
    /// Recomputes the stall level from the current super version.
    pub(super) fn update_stall(&self) {
        let sv = self.super_version();
        // The deeper of the two trees' level 0 (both are flushed together).
        let l0 = sv.version.levels[0].len().max(sv.version.streams[0].len());
        let level = if sv.imm.len() >= self.opts.max_immutable_memtables
            || l0 >= self.opts.l0_stop_trigger
        {
            STALL_STOP
        } else if l0 >= self.opts.l0_slowdown_trigger {
            STALL_SLOWDOWN
        } else {
            STALL_NONE
        };
        let old = self.stall_level.swap(level, Ordering::AcqRel);
        if old != level {
            if level != STALL_NONE && old == STALL_NONE {
                add(&self.counters.stalls, 1);
            }
            if level == STALL_STOP {
                add(&self.counters.stops, 1);
            } else if level == STALL_SLOWDOWN {
                add(&self.counters.slowdowns, 1);
            }
            self.emit(DbEvent::Stall(StallEvent {
                level: [StallLevel::None, StallLevel::Slowdown, StallLevel::Stop][level as usize],
                l0_files: l0,
                immutable_memtables: sv.imm.len(),
            }));
            let _g = self.stall.lock().unwrap_or_else(|e| e.into_inner());
            self.stall_cv.notify_all();
        }
    }
}

/// Releases writes held back by a stall: all at once when the stall ends; a few per
/// millisecond during a slowdown; none while writes are stopped (or all, when closing).
pub(super) fn stall_thread(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let closing = inner.closing.load(Ordering::Acquire);
        let level = inner.stall_level.load(Ordering::Acquire);
        let batch: Vec<(Arc<WriterCore>, Vec<u8>, bool)> = {
            let mut st = inner.stall.lock().unwrap_or_else(|e| e.into_inner());
            // After a background failure the stall cannot clear by itself: let the held
            // writes go to the log (which fails them properly if the disk is full) rather
            // than hold them — and a close() waiting for them — forever.
            let failed = inner.bg_error().is_some();
            let take = if closing || failed || level == STALL_NONE {
                st.q.len()
            } else if level == STALL_SLOWDOWN {
                st.q.len().min(16)
            } else {
                0
            };
            let out: Vec<_> = st.q.drain(..take).collect();
            st.bytes -= out.iter().map(|(_, p, _)| p.len()).sum::<usize>();
            // Room was made (or the queue is being emptied for good): writers parked on a
            // full queue retry now — one call per registration.
            let wanted = if out.is_empty() && !closing {
                Vec::new()
            } else {
                std::mem::take(&mut st.wanted)
            };
            for w in &wanted {
                w.sink.space_available();
            }
            if !out.is_empty() {
                // Blocking writers (`DbWriter::write`) waiting for room.
                inner.stall_cv.notify_all();
            }
            if st.q.is_empty() {
                if let Some(since) = st.since.take() {
                    add(&inner.counters.stall_us, since.elapsed().as_micros() as u64);
                }
            }
            if out.is_empty() {
                if closing {
                    return;
                }
                let wait = if level == STALL_SLOWDOWN {
                    Duration::from_millis(1)
                } else {
                    Duration::from_millis(50)
                };
                drop(
                    inner
                        .stall_cv
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|e| e.into_inner()),
                );
                continue;
            }
            out
        };
        for (w, payload, sync) in batch {
            if let Err(e) = w.producer.append(&payload, sync) {
                w.sink.failed(1, &e);
            }
            inner.stall_pending.fetch_sub(1, Ordering::AcqRel);
        }
        if level == STALL_SLOWDOWN && !closing {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
