//! A handle of a [`FaultVfs`](super::FaultVfs): buffered writes, reads overlaid with them,
//! syncs that flush them, and the injected write, sync and allocation errors.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use super::state::{crashed, lock, FileState, Pending, Shared};
use crate::portable::nanos_between;
use crate::vfs::{File, WriteTiming};

/// A handle of [`FaultVfs`].
pub(super) struct FaultFile {
    pub(super) inner: Arc<dyn File>,
    pub(super) state: Arc<FileState>,
    pub(super) shared: Arc<Shared>,
    /// The crash epoch this handle was opened in.
    pub(super) epoch: u64,
    /// False for `OpenMode::ReadOnly`: writes fail with `EBADF` like on a real file.
    pub(super) writable: bool,
    /// For `Debug` output only.
    pub(super) path: PathBuf,
}

impl std::fmt::Debug for FaultFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultFile")
            .field("path", &self.path)
            .field("epoch", &self.epoch)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl FaultFile {
    /// Locks this file's pending writes, failing if a crash happened since the handle was
    /// opened. Checking under the lock orders the operation against `crash`.
    fn pending(&self) -> io::Result<MutexGuard<'_, Pending>> {
        let pending = lock(&self.state.pending)?;
        if self.shared.epoch.load(Ordering::SeqCst) != self.epoch {
            return Err(crashed());
        }
        Ok(pending)
    }

    /// Counts a sync, injects `fail_sync_nth`, and flushes the pending writes (those with
    /// an id below `before`, all of them for `u64::MAX`).
    fn sync_locked(&self, pending: &mut Pending, before: u64) -> io::Result<()> {
        let nth = {
            let mut counters = lock(&self.shared.counters)?;
            counters.syncs += 1;
            counters.syncs
        };
        let n = pending.ids.iter().take_while(|&&id| id < before).count();
        let writes: Vec<(u64, Vec<u8>)> = pending.writes.drain(..n).collect();
        pending.ids.drain(..n);
        let bytes: u64 = writes.iter().map(|(_, b)| b.len() as u64).sum();
        self.shared.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
        if self.shared.config.fail_sync_nth == Some(nth) {
            if self.shared.config.sync_fail_persists {
                if let Some(writer) = &pending.writer {
                    // The bytes reach the disk; only the report says otherwise.
                    for (offset, data) in &writes {
                        writer.write_at(*offset, &[data], false)?;
                    }
                    writer.sync_data()?;
                    self.shared.synced_bytes.fetch_add(bytes, Ordering::SeqCst);
                }
            }
            // Dropped otherwise: the pages a failed writeback loses.
            return Err(io::Error::from_raw_os_error(self.shared.config.errno));
        }
        let writer = match (&pending.writer, writes.is_empty()) {
            (Some(writer), false) => Arc::clone(writer),
            _ => return self.inner.sync_data(),
        };
        let last = writes.len() - 1;
        for (i, (offset, data)) in writes.iter().enumerate() {
            writer.write_at(*offset, &[data], i == last)?;
        }
        self.shared.synced_bytes.fetch_add(bytes, Ordering::SeqCst);
        Ok(())
    }
}

impl File for FaultFile {
    fn write_at(&self, offset: u64, bufs: &[&[u8]], durable: bool) -> io::Result<WriteTiming> {
        let start = Instant::now();
        let mut pending = self.pending()?;
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        if offset
            .checked_add(total)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "write of {total} bytes at offset {offset} overflows the file offset range"
                ),
            ));
        }
        {
            let mut counters = lock(&self.shared.counters)?;
            if let Some(limit) = self.shared.config.fail_write_after_bytes {
                if counters.write_refused || counters.accepted_write_bytes + total > limit {
                    counters.write_refused = true;
                    return Err(io::Error::from_raw_os_error(self.shared.config.errno));
                }
            }
            counters.accepted_write_bytes += total;
        }
        if total > 0 {
            pending.writes.push((offset, bufs.concat()));
            let id = pending.next_id;
            pending.next_id += 1;
            pending.ids.push(id);
            pending.writer = Some(Arc::clone(&self.inner));
            self.shared.pending_bytes.fetch_add(total, Ordering::SeqCst);
        }
        let written = Instant::now();
        let write_ns = nanos_between(start, written);
        if !durable {
            return Ok(WriteTiming {
                write_ns,
                sync_ns: 0,
            });
        }
        self.sync_locked(&mut pending, u64::MAX)?;
        Ok(WriteTiming {
            write_ns,
            sync_ns: nanos_between(written, Instant::now()),
        })
    }

    /// Shares this file's pending writes (a sync through it flushes them, as on a real
    /// file); its inner handle has its own open file description where the backend has one.
    fn sync_handle(&self) -> io::Result<Arc<dyn File>> {
        drop(self.pending()?);
        Ok(Arc::new(FaultFile {
            inner: self
                .inner
                .sync_handle()
                .unwrap_or_else(|_| self.inner.clone()),
            state: Arc::clone(&self.state),
            shared: Arc::clone(&self.shared),
            epoch: self.epoch,
            writable: self.writable,
            path: self.path.clone(),
        }))
    }

    fn sync_data(&self) -> io::Result<()> {
        let delay = self.shared.config.sync_delay_us;
        if delay == 0 {
            let mut pending = self.pending()?;
            return self.sync_locked(&mut pending, u64::MAX);
        }
        // A slow device: the sync covers the writes made before it was issued, and
        // completes `delay` later; writes made meanwhile stay pending (a crash drops them).
        let issued = self.pending()?.next_id;
        std::thread::sleep(std::time::Duration::from_micros(delay));
        let mut pending = self.pending()?;
        self.sync_locked(&mut pending, issued)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let pending = self.pending()?;
        let from_inner = self.inner.read_at(offset, buf)?;
        if pending.writes.is_empty() {
            return Ok(from_inner);
        }
        let logical_len = self.inner.len()?.max(pending.end());
        let visible = logical_len.saturating_sub(offset).min(buf.len() as u64) as usize;
        // Between the inner end of file and a pending write further on: zeros.
        if visible > from_inner {
            buf[from_inner..visible].fill(0);
        }
        let window_end = offset + visible as u64;
        for (at, data) in &pending.writes {
            let end = at + data.len() as u64;
            let lo = (*at).max(offset);
            let hi = end.min(window_end);
            if lo < hi {
                let dst = (lo - offset) as usize..(hi - offset) as usize;
                let src = (lo - at) as usize..(hi - at) as usize;
                buf[dst].copy_from_slice(&data[src]);
            }
        }
        Ok(visible.max(from_inner))
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let _pending = self.pending()?;
        if let Some(limit) = self.shared.config.enospc_allocate_after_bytes {
            let growth = len.saturating_sub(self.inner.len()?);
            let mut counters = lock(&self.shared.counters)?;
            if counters.allocated_bytes + growth > limit {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.inner.allocate(len)?;
            counters.allocated_bytes += growth;
            return Ok(());
        }
        self.inner.allocate(len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut pending = self.pending()?;
        self.inner.set_len(len)?;
        // Truncation drops cached bytes past the new end.
        let before = pending.bytes();
        let mut kept_ids = Vec::with_capacity(pending.ids.len());
        let Pending { writes, ids, .. } = &mut *pending;
        let mut id = ids.iter();
        writes.retain_mut(|(at, data)| {
            let this = *id.next().expect("one id per write");
            if *at >= len {
                return false;
            }
            let keep = (len - *at).min(data.len() as u64) as usize;
            data.truncate(keep);
            kept_ids.push(this);
            true
        });
        pending.ids = kept_ids;
        let after = pending.bytes();
        self.shared
            .pending_bytes
            .fetch_sub(before - after, Ordering::SeqCst);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let pending = self.pending()?;
        Ok(self.inner.len()?.max(pending.end()))
    }
}
