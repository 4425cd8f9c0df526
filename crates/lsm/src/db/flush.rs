//! Flushing: the flush thread writes the oldest immutable memtable generation to level-0
//! tables — the key-value tree's, then the stream tree's — and installs both with one edit
//! that records the flushed sequence number (an atomic flush: one flushed sequence number
//! covers both trees, so replay stays "apply every record above it").
//!
//! A flush also makes the log durable up to the flushed sequence number before its edit
//! says so ([`sync_log`]): for `sync: false` writes the log may lag, and a manifest ahead of
//! its log after a power cut would not open.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::compact::{wait_bg, RETRY_AFTER};
use super::outputs::{install_outputs, Dropper, Outputs};
use super::state::Inner;
use super::stats::{add, DbEvent, FlushEvent};
use super::version::{Mem, TreeId};
use super::write::ChannelSink;
use super::DbError;
use crate::failpoint::failpoint;
use crate::manifest::VersionEdit;

pub(crate) fn flush_thread(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.closing.load(Ordering::Acquire) {
            return;
        }
        let sv = inner.super_version();
        let Some(mem) = sv.imm.last().cloned() else {
            drop(sv);
            wait_bg(&inner, Duration::from_millis(200));
            continue;
        };
        drop(sv);
        inner
            .sched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flushing = true;
        let r = flush_one(&inner, &mem);
        {
            let mut s = inner.sched.lock().unwrap_or_else(|e| e.into_inner());
            s.flushing = false;
            s.epoch += 1;
            inner.done_cv.notify_all();
            inner.bg_cv.notify_all();
        }
        match r {
            Ok(()) => {
                if inner.bg_error().is_some() {
                    inner.clear_bg_error();
                }
            }
            Err(e) => {
                inner.set_bg_error(e);
                wait_bg(&inner, RETRY_AFTER);
            }
        }
    }
}

pub(super) fn flush_one(inner: &Inner, mem: &Arc<Mem>) -> Result<(), DbError> {
    let started = Instant::now();
    let flushed_seq = mem.last_seq.load(Ordering::Acquire);
    let mut state_out = Outputs::new(inner, TreeId::State, 0, u64::MAX);
    let mut streams_out = Outputs::new(inner, TreeId::Streams, 0, u64::MAX);
    let smallest_snapshot = inner.smallest_snapshot();
    let mut entries = 0u64;
    let r = (|| {
        for out in [&mut state_out, &mut streams_out] {
            let mut dropper = Dropper::new(smallest_snapshot);
            for e in mem.tree(out.tree).iter() {
                let ikey = e.key.as_bytes();
                if dropper.drop_entry(ikey, |_| false) {
                    continue;
                }
                out.add(ikey, e.value)?;
                entries += 1;
            }
            out.finish_current()?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        state_out.abandon();
        streams_out.abandon();
        return Err(e);
    }
    // The edit says the log is no longer needed up to `flushed_seq`; for `sync: false`
    // writes the log may not be durable that far yet, and a power cut would then leave a
    // manifest ahead of its log (a database that does not open).
    if let Err(e) = sync_log(inner, flushed_seq) {
        state_out.abandon();
        streams_out.abandon();
        return Err(e);
    }
    let edit = VersionEdit {
        flushed_seq: Some(flushed_seq),
        ..VersionEdit::default()
    };
    install_outputs(
        &mut [&mut state_out, &mut streams_out],
        "flush.table_written",
        edit,
        Some(mem),
    )?;
    failpoint("flush.installed");
    let bytes = state_out.bytes + streams_out.bytes;
    add(&inner.counters.flushes, 1);
    add(&inner.counters.flush_bytes, bytes);
    // Log segments wholly below the flushed sequence number are no longer needed, but for
    // those holding a live prepare record (see `txn`: the oldest prepare pins the log).
    // Nor those an optimistic transaction's replay would need (see `occ`).
    let floor = (flushed_seq + 1)
        .min(inner.oldest_prepared_seq())
        .min(inner.occ_floor(flushed_seq));
    let removed = inner.wal.truncate_before(floor).unwrap_or(0);
    inner.emit(DbEvent::Flush(FlushEvent {
        tables: state_out.done.len() + streams_out.done.len(),
        bytes,
        entries,
        flushed_seq,
        log_segments_removed: removed,
        duration: started.elapsed(),
    }));
    Ok(())
}

/// Makes the log durable up to at least `seq` (already written: the records are in a
/// memtable): a sync request through a producer of its own, waited for on this thread. The
/// committer never waits on background work, so this cannot deadlock.
pub(super) fn sync_log(inner: &Inner, seq: u64) -> Result<(), DbError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let producer = inner
        .wal
        .producer(Arc::new(ChannelSink(std::sync::Mutex::new(tx))));
    producer.sync().map_err(DbError::Wal)?;
    match rx.recv() {
        Ok(Ok(durable)) if durable >= seq => Ok(()),
        Ok(Ok(durable)) => Err(DbError::io(
            format!("syncing the log in {}", inner.wal.dir().display()),
            std::io::Error::other(format!(
                "the log is durable up to sequence number {durable}, the flush needs {seq}"
            )),
        )),
        Ok(Err(e)) => Err(DbError::Wal(e)),
        Err(_) => Err(DbError::Closed),
    }
}
