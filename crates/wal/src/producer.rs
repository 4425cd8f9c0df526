//! [`Producer`]: a registered source of appends — blocking, non-blocking (`try_*`) and
//! packed appends into the commit queue, and sync requests.

use crate::error::WalError;
use crate::format::{self, frame_bytes, Kind, FRAME_HEADER_BYTES};
use crate::limits::*;
use crate::shared::Shared;
use crate::sync::{fence, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a non-blocking append (`try_*`) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TryOutcome {
    /// Entries accepted, in order (they complete at the sink like blocking appends).
    pub accepted: usize,
    /// The queue was full at entry `accepted`: that entry and the rest were not taken.
    pub full: bool,
    /// This call registered the producer for one [`CompletionSink::space_available`](crate::CompletionSink::space_available)
    /// call (false if it was registered already; the earlier registration's call covers
    /// this one too). Set even when a retry after registering then found room.
    pub registered: bool,
}

/// A registered source of appends. Appends made through one producer complete in the
/// order they were made. Dropping it unregisters its sink; completions still pending for
/// it are discarded, so drop it only after a [`Producer::sync`] completed (or on close).
pub struct Producer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pid: u64,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("pid", &self.pid).finish()
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let mut p = self
            .shared
            .producers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = p.get_mut(self.pid as usize) {
            *slot = None;
        }
    }
}

/// Guard for `in_flight`: a producer between "not closing" and "published".
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(s: &'a Shared) -> Result<InFlight<'a>, WalError> {
        s.in_flight.fetch_add(1, Ordering::SeqCst);
        let g = InFlight(s);
        if s.closing.load(Ordering::SeqCst) {
            return Err(WalError::Closed);
        }
        if let Some(e) = s.failure() {
            return Err(WalError::Failed(e));
        }
        Ok(g)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Producer {
    /// Appends one record. Returns once the record is in the commit queue; the outcome
    /// arrives at the producer's sink. Blocks (back-pressure) while the queue is full.
    pub fn append(&self, record: &[u8], sync: bool) -> Result<(), WalError> {
        self.append_many(std::slice::from_ref(&record), sync)
    }

    /// Appends records atomically (all or none survive a crash) with contiguous sequence
    /// numbers. One completion per record.
    pub fn append_many(&self, records: &[&[u8]], sync: bool) -> Result<(), WalError> {
        let s = &*self.shared;
        let _g = InFlight::enter(s)?;
        let r = self.append_entry(records, sync, true, &mut false);
        s.wake_committer();
        r.map(|_| ())
    }

    /// Appends a packed run of entries in order — the binding's one-crossing-per-tick path.
    /// `data` holds the records' bytes back to back, `lens` their lengths, and `entries`
    /// one word per entry: `count << 1 | sync`, where an entry of `count` records is
    /// appended like [`Producer::append_many`] (atomic). Entries are accepted in order; on
    /// an error, the ones before it were accepted and the error says how many. Blocks
    /// while the queue is full.
    pub fn append_packed(
        &self,
        data: &[u8],
        lens: &[u32],
        entries: &[u32],
    ) -> Result<(), (usize, WalError)> {
        self.packed(data, lens, entries, true).map(|_| ())
    }

    /// Like [`Producer::append_packed`], but never blocks: entries are accepted in order
    /// until one does not fit in the queue; that one and those after it are left to the
    /// caller ([`TryOutcome::accepted`] says how many went in), and the producer is
    /// registered for one [`CompletionSink::space_available`](crate::CompletionSink::space_available) call, which comes after the
    /// committer released space. The caller retries then, with the rest, in order — so
    /// a full queue parks writes without blocking the caller's thread.
    pub fn try_append_packed(
        &self,
        data: &[u8],
        lens: &[u32],
        entries: &[u32],
    ) -> Result<TryOutcome, (usize, WalError)> {
        self.packed(data, lens, entries, false)
    }

    fn packed(
        &self,
        data: &[u8],
        lens: &[u32],
        entries: &[u32],
        wait: bool,
    ) -> Result<TryOutcome, (usize, WalError)> {
        let s = &*self.shared;
        let _g = InFlight::enter(s).map_err(|e| (0, e))?;
        let mut recs: Vec<&[u8]> = Vec::new();
        let (mut off, mut li) = (0usize, 0usize);
        let mut out = TryOutcome {
            accepted: 0,
            full: false,
            registered: false,
        };
        let mut result = Ok(());
        for (i, &e) in entries.iter().enumerate() {
            let (count, sync) = ((e >> 1) as usize, e & 1 == 1);
            recs.clear();
            for _ in 0..count {
                let Some(&len) = lens.get(li) else {
                    result = Err((i, bad_packing("lens is shorter than entries say")));
                    break;
                };
                let Some(rec) = data.get(off..off + len as usize) else {
                    result = Err((i, bad_packing("data is shorter than lens say")));
                    break;
                };
                recs.push(rec);
                off += len as usize;
                li += 1;
            }
            if result.is_err() {
                break;
            }
            match self.append_entry(&recs, sync, wait, &mut out.registered) {
                Ok(true) => out.accepted = i + 1,
                Ok(false) => {
                    out.full = true;
                    break;
                }
                Err(e) => {
                    result = Err((i, e));
                    break;
                }
            }
        }
        s.wake_committer();
        result.map(|()| out)
    }

    /// Non-blocking [`Producer::append_many`]: `accepted` is 1 if the records went in, 0
    /// if the queue was full (see [`Producer::try_append_packed`]).
    pub fn try_append_many(&self, records: &[&[u8]], sync: bool) -> Result<TryOutcome, WalError> {
        let s = &*self.shared;
        let _g = InFlight::enter(s)?;
        let mut registered = false;
        let r = self.append_entry(records, sync, false, &mut registered);
        s.wake_committer();
        let ok = r?;
        Ok(TryOutcome {
            accepted: usize::from(ok),
            full: !ok,
            registered,
        })
    }

    /// Validates and enqueues one entry (a record or an atomic batch); the caller holds
    /// an [`InFlight`] guard and wakes the committer afterwards. `Ok(false)`: the queue
    /// is full and `wait` is false (nothing was enqueued; see [`Producer::reserve`]).
    fn append_entry(
        &self,
        records: &[&[u8]],
        sync: bool,
        wait: bool,
        registered: &mut bool,
    ) -> Result<bool, WalError> {
        let s = &*self.shared;
        let limits = &s.limits;
        let mut total = 0usize;
        for r in records {
            if r.len() > limits.max_record_bytes {
                return Err(WalError::TooLarge {
                    bytes: r.len(),
                    limit: limits.max_record_bytes,
                });
            }
            total += frame_bytes(r.len());
        }
        if records.is_empty() {
            return Ok(true);
        }
        if total > limits.max_entry_bytes {
            return Err(WalError::BatchTooLarge {
                bytes: total,
                limit: limits.max_entry_bytes,
            });
        }
        let Some(r) = self.reserve(total, wait, registered)? else {
            return Ok(false);
        };
        let ring = &s.ring;
        let n = records.len();
        let mut pos = r.start;
        let mut first = (0u64, 0u32, 0u32);
        for (i, rec) in records.iter().enumerate() {
            let kind = match (n, i) {
                (1, _) => Kind::Full,
                (_, 0) => Kind::First,
                (_, i) if i + 1 == n => Kind::Last,
                _ => Kind::Middle,
            };
            let w = format::word0(kind, rec.len(), sync);
            ring.write(pos + 8, &self.pid.to_le_bytes());
            ring.write(pos + FRAME_HEADER_BYTES as u64, rec);
            let pad = format::align8(rec.len()) - rec.len();
            if pad > 0 {
                ring.write(
                    pos + (FRAME_HEADER_BYTES + rec.len()) as u64,
                    &[0u8; 8][..pad],
                );
            }
            let crc = format::partial_crc(w, rec);
            if i == 0 {
                first = (pos, w, crc);
            } else {
                // Frames after the first are published first, so that the consumer,
                // which only proceeds past a published word, sees the batch whole.
                ring.publish_word(pos, w, crc);
            }
            pos += frame_bytes(rec.len()) as u64;
        }
        debug_assert_eq!(pos, r.start + total as u64);
        if let Some(p) = r.pad_at {
            ring.publish_pad(p);
        }
        if s.arrival_ns.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            let _ = s.arrival_ns.compare_exchange(
                0,
                s.now_ns(),
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let (p0, w0, c0) = first;
        ring.publish_word(p0, w0, c0);
        Ok(true)
    }

    /// Requests that everything appended so far (by anyone) be made durable. Completes
    /// at the sink, in order with this producer's appends, with the last durable sequence
    /// number.
    pub fn sync(&self) -> Result<(), WalError> {
        self.sync_marker(true, &mut false).map(|_| ())
    }

    /// Non-blocking [`Producer::sync`]: `accepted` is 0 if the queue was full (see
    /// [`Producer::try_append_packed`]).
    pub fn try_sync(&self) -> Result<TryOutcome, WalError> {
        let mut registered = false;
        let ok = self.sync_marker(false, &mut registered)?;
        Ok(TryOutcome {
            accepted: usize::from(ok),
            full: !ok,
            registered,
        })
    }

    fn sync_marker(&self, wait: bool, registered: &mut bool) -> Result<bool, WalError> {
        let s = &*self.shared;
        let _g = InFlight::enter(s)?;
        let Some(r) = self.reserve(FRAME_HEADER_BYTES, wait, registered)? else {
            s.wake_committer();
            return Ok(false);
        };
        s.ring.write(r.start + 8, &self.pid.to_le_bytes());
        if let Some(p) = r.pad_at {
            s.ring.publish_pad(p);
        }
        s.ring
            .publish_word(r.start, format::word0(Kind::SyncMarker, 0, true), 0);
        s.wake_committer();
        Ok(true)
    }

    /// Claims `len` bytes of the ring. When it is full: with `wait`, blocks until the
    /// committer releases space (back-pressure on a thread that may block); without,
    /// registers this producer for one [`CompletionSink::space_available`](crate::CompletionSink::space_available) call
    /// (`registered` is set if this call added the registration) and returns `None`
    /// unless a retry after registering finds room.
    fn reserve(
        &self,
        len: usize,
        wait: bool,
        registered: &mut bool,
    ) -> Result<Option<crate::ring::Reservation>, WalError> {
        let s = &*self.shared;
        if let Some(r) = s.ring.try_reserve(len) {
            return Ok(Some(r));
        }
        if !wait {
            *registered |= self.register_space_wait();
            // The retry pairs with the committer's `notify_space_wanted`: either it sees
            // the space released before our registration, or the committer sees the
            // registration (SeqCst fences on both sides) — no lost wake-up.
            let r = s.ring.try_reserve(len);
            if r.is_none() {
                s.wake_committer();
            }
            return Ok(r);
        }
        // Back-pressure: wait for the committer to release space.
        s.space_waiters.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            if let Some(r) = s.ring.try_reserve(len) {
                break Ok(Some(r));
            }
            if let Some(e) = s.failure() {
                break Err(WalError::Failed(e));
            }
            s.wake_committer();
            let g = s.space_lock.lock().unwrap_or_else(|e| e.into_inner());
            let _ = s
                .space_cv
                .wait_timeout(g, Duration::from_millis(SPACE_WAIT_MS))
                .unwrap_or_else(|e| e.into_inner());
        };
        s.space_waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Adds this producer to `space_wanted` (once); true if it was not there yet.
    fn register_space_wait(&self) -> bool {
        let s = &*self.shared;
        let added = {
            let mut w = s.space_wanted.lock().unwrap_or_else(|e| e.into_inner());
            let added = !w.contains(&self.pid);
            if added {
                w.push(self.pid);
            }
            s.space_wanted_count.store(w.len() as u64, Ordering::SeqCst);
            added
        };
        fence(Ordering::SeqCst);
        added
    }
}

fn bad_packing(what: &str) -> WalError {
    WalError::InvalidOption {
        field: "records",
        message: format!("inconsistent packed append: {what}"),
    }
}
