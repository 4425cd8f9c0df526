//! The commit queue: a bounded, lock-free, multi-producer single-consumer byte ring that
//! holds WAL frames exactly as they will be written to disk.
//!
//! # Ownership protocol
//!
//! The ring is `capacity` bytes (a power of two) addressed by two monotonically increasing
//! 64-bit byte positions; `pos & (capacity - 1)` is the offset in the buffer.
//!
//! * `reserved`: the next position a producer may claim. Producers claim
//!   `[p, p + n)` with a compare-and-swap from `p` to `p + n`. A successful CAS makes that
//!   range the producer's, exclusively, until it publishes it. Frames never straddle the
//!   end of the buffer: a producer whose frame would straddle claims the tail of the buffer
//!   as well and fills it with a `Pad` frame.
//! * `released`: everything below it is free. Only the consumer advances it, with
//!   `Release`, after it has written the frames to disk, delivered their completions and
//!   zeroed their bytes. The consumer is two threads in turn: the committer walks, patches
//!   and writes frames; the thread completing a group (in group order, under the commit
//!   pipeline's drain lock, after the committer handed the group over through a mutex)
//!   zeroes and releases them. The committer never touches a frame again once handed over,
//!   and the completing thread never touches frames beyond the group it releases. A producer may claim `[p, p + n)` only if
//!   `p + n - released <= capacity` (read with `Acquire`), so it never touches bytes the
//!   consumer still owns, and it sees them zeroed.
//! * Publication: the first 8-byte word of every frame (word0 + crc) is its *publish word*.
//!   It is zero while the frame is being written. The producer writes the rest of the frame
//!   (sequence slot, payload, padding) with plain stores, then stores the publish word with
//!   `Release`. The consumer walks frames from its `consumed` position, loading each publish
//!   word with `Acquire`: non-zero means the whole frame is visible and now belongs to the
//!   consumer; zero means "not yet" and ends the walk (later frames wait for the next
//!   group — order is preserved). A multi-frame batch publishes its first frame's word last,
//!   so the consumer sees a batch whole or not at all.
//! * Reuse: before advancing `released`, the consumer zeroes every byte it consumed, so
//!   any 8-byte word a later producer's frame starts at reads as zero (unpublished) until
//!   that producer publishes it. The `Release` on `released` orders the zeroing before
//!   the producer's `Acquire` load that lets it claim the space.
//! * Between publication and release, the consumer may rewrite a frame in place (it
//!   patches the sequence number and seals the checksum): it is the sole owner then.
//!
//! "Full" is back-pressure: [`Ring::try_reserve`] returns `None` and the caller waits for
//! the consumer to release space. Nothing grows. A blocking producer (`Producer::append`)
//! waits on a condvar; a non-blocking one (`Producer::try_*`, the binding's JS thread)
//! parks its write with its caller instead: it registers in `Shared::space_wanted`, fences
//! (SeqCst) and tries once more; the consumer, after advancing `released`, fences (SeqCst)
//! and answers every registration with one `space_available` call. By the fences, either
//! the retry sees the released space or the consumer sees the registration — no lost
//! wake-up — and close answers any registration left.
//!
//! The protocol is model-checked with loom (`RUSTFLAGS="--cfg loom" cargo test -p
//! uringdb-wal --release --lib ring::loom`), where every word is a loom atomic.

use crate::format::{parse_word0, Kind, FRAME_HEADER_BYTES};
use crate::sync::{AtomicU64, Ordering};

/// A claimed range, owned by the producer until [`Ring::publish`].
#[derive(Debug)]
pub(crate) struct Reservation {
    /// Ring position of the first frame.
    pub start: u64,
    /// Ring position of a pad frame that the producer must publish too (straddling case).
    pub pad_at: Option<u64>,
}

/// `n` zeroed words, allocated zeroed (`calloc`: the kernel maps the pages lazily), so that
/// a large ring costs no memory or time until it is used; building it word by word would
/// touch every page at open (32 MiB by default).
#[cfg(not(loom))]
fn zeroed_words(n: usize) -> Box<[AtomicU64]> {
    const _: () = assert!(
        std::mem::size_of::<AtomicU64>() == std::mem::size_of::<u64>()
            && std::mem::align_of::<AtomicU64>() == std::mem::align_of::<u64>()
    );
    let words: Box<[u64]> = vec![0u64; n].into_boxed_slice();
    let raw = Box::into_raw(words) as *mut [AtomicU64];
    // SAFETY: `AtomicU64` has the same size, alignment and bit validity as `u64` (checked
    // above at compile time; documented by std), so the boxed slice of `n` zeroed `u64`s is
    // a valid boxed slice of `n` atomics holding 0, allocated with the same layout it will
    // be freed with. The original box is consumed, so nothing else aliases it.
    unsafe { Box::from_raw(raw) }
}

/// Under loom the words are loom atomics, built one by one.
#[cfg(loom)]
fn zeroed_words(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

pub(crate) struct Ring {
    words: Box<[AtomicU64]>,
    mask: u64,
    reserved: CachePadded<AtomicU64>,
    released: CachePadded<AtomicU64>,
}

#[repr(align(128))]
struct CachePadded<T>(T);

impl std::ops::Deref for CachePadded<AtomicU64> {
    type Target = AtomicU64;
    fn deref(&self) -> &AtomicU64 {
        &self.0
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity())
            .field("reserved", &self.reserved.load(Ordering::Relaxed))
            .field("released", &self.released.load(Ordering::Relaxed))
            .finish()
    }
}

impl Ring {
    /// `capacity_bytes` must be a power of two and at least 64.
    pub fn new(capacity_bytes: usize) -> Ring {
        assert!(capacity_bytes.is_power_of_two() && capacity_bytes >= 64);
        let words = zeroed_words(capacity_bytes / 8);
        Ring {
            words,
            mask: capacity_bytes as u64 - 1,
            reserved: CachePadded(AtomicU64::new(0)),
            released: CachePadded(AtomicU64::new(0)),
        }
    }

    pub fn capacity(&self) -> usize {
        self.words.len() * 8
    }

    fn word(&self, pos: u64) -> &AtomicU64 {
        debug_assert_eq!(pos % 8, 0);
        &self.words[((pos & self.mask) / 8) as usize]
    }

    /// Claims `len` bytes (a multiple of 8, at most half the capacity) for frames.
    /// `None` when the ring is full right now.
    pub fn try_reserve(&self, len: usize) -> Option<Reservation> {
        debug_assert!(
            len.is_multiple_of(8) && len >= FRAME_HEADER_BYTES && len <= self.capacity() / 2
        );
        let cap = self.capacity() as u64;
        let mut pos = self.reserved.load(Ordering::Relaxed);
        loop {
            let offset = pos & self.mask;
            let room_to_end = cap - offset;
            let (pad, total) = if len as u64 <= room_to_end {
                (0, len as u64)
            } else {
                (room_to_end, room_to_end + len as u64)
            };
            // `pos` was loaded before `released`: a consumer that released past `pos`
            // meanwhile must not make this subtraction underflow, so compare sums.
            if pos + total > self.released.load(Ordering::Acquire) + cap {
                return None;
            }
            match self.reserved.compare_exchange_weak(
                pos,
                pos + total,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(Reservation {
                        start: pos + pad,
                        pad_at: (pad > 0).then_some(pos),
                    })
                }
                Err(now) => pos = now,
            }
        }
    }

    /// Copies `bytes` into a claimed range at `pos` (never the publish word of a frame: that
    /// goes through [`Ring::publish_word`]). `pos` and `bytes.len()` need not be aligned.
    pub fn write(&self, pos: u64, bytes: &[u8]) {
        let offset = (pos & self.mask) as usize;
        assert!(offset + bytes.len() <= self.capacity());
        #[cfg(not(loom))]
        {
            // SAFETY: `[offset, offset + len)` lies inside the buffer (asserted above) and is
            // owned exclusively by the caller under the protocol in the module doc (claimed by
            // its reservation, not yet published), so no other thread reads or writes these
            // bytes concurrently; AtomicU64 has the layout of u64, so the buffer is plain bytes.
            unsafe {
                let base = self.words.as_ptr() as *mut u8;
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(offset), bytes.len());
            }
        }
        #[cfg(loom)]
        for (i, &b) in bytes.iter().enumerate() {
            self.model_write_byte(offset + i, b);
        }
    }

    #[cfg(loom)]
    fn model_write_byte(&self, offset: usize, b: u8) {
        let w = &self.words[offset / 8];
        let shift = (offset % 8) * 8;
        let old = w.load(Ordering::Relaxed);
        w.store(
            (old & !(0xFF << shift)) | ((b as u64) << shift),
            Ordering::Relaxed,
        );
    }

    /// Publishes the frame at `pos` by storing its first word (word0 | crc << 32, which is
    /// non-zero because word0 carries a non-zero kind) with `Release`.
    pub fn publish_word(&self, pos: u64, word0: u32, crc: u32) {
        let v = u64::from(word0) | (u64::from(crc) << 32);
        debug_assert_ne!(v, 0);
        self.word(pos).store(v.to_le(), Ordering::Release);
    }

    /// Writes and publishes a pad frame at `pos` that extends to the end of the buffer.
    pub fn publish_pad(&self, pos: u64) {
        self.publish_word(pos, crate::format::word0(Kind::Pad, 0, false), 0);
    }

    /// Consumer: the publish word at `pos`, decoded, if the frame there is published.
    /// Returns (kind, payload length, sync flag, total frame bytes, producer's crc).
    pub fn peek(&self, pos: u64) -> Option<Peeked> {
        // A full lap past `released` is this walk's own earlier frames (consumed, not yet
        // zeroed): never read them as new ones. Only the consumer moves `released`.
        if pos - self.released.load(Ordering::Relaxed) >= self.capacity() as u64 {
            return None;
        }
        let v = u64::from_le(self.word(pos).load(Ordering::Acquire));
        if v == 0 {
            return None;
        }
        let w0 = parse_word0(v as u32).expect("ring holds only frames encoded by this crate");
        let total = if w0.kind == Kind::Pad {
            (self.capacity() as u64 - (pos & self.mask)) as usize
        } else {
            crate::format::frame_bytes(w0.len)
        };
        Some(Peeked {
            kind: w0.kind,
            len: w0.len,
            sync: w0.sync,
            total,
            crc: (v >> 32) as u32,
        })
    }

    /// Consumer: reads the 8-byte word at `pos + 8` (the sequence slot).
    pub fn read_u64(&self, pos: u64) -> u64 {
        u64::from_le(self.word(pos).load(Ordering::Relaxed))
    }

    /// Consumer: overwrites an 8-aligned word it owns.
    pub fn write_u64(&self, pos: u64, v: u64) {
        self.word(pos).store(v.to_le(), Ordering::Relaxed);
    }

    /// Consumer: the bytes `[pos, pos + len)`, which must be published frames it owns and
    /// must not wrap.
    ///
    /// # Safety
    /// The caller must be the consumer and own the range under the module's protocol
    /// (published, not yet released), and must not use the slice after calling
    /// [`Ring::release`] for it.
    #[cfg(not(loom))]
    pub unsafe fn slice(&self, pos: u64, len: usize) -> &[u8] {
        let offset = (pos & self.mask) as usize;
        assert!(offset + len <= self.capacity());
        // SAFETY: in bounds (asserted); the caller guarantees exclusive ownership of the
        // published range, so no producer writes it while the slice lives, and the bytes are
        // initialised (the buffer starts zeroed and is only ever written, never uninit).
        unsafe { std::slice::from_raw_parts((self.words.as_ptr() as *const u8).add(offset), len) }
    }

    /// The model-checked build never runs the committer (which borrows ring memory for
    /// I/O); this exists so the crate builds under loom.
    ///
    /// # Safety
    /// Never called.
    #[cfg(loom)]
    pub unsafe fn slice(&self, _pos: u64, _len: usize) -> &[u8] {
        unreachable!("the committer is not run under loom")
    }

    /// Consumer: reads bytes (the model-checked build's stand-in for [`Ring::slice`]).
    #[cfg(loom)]
    pub fn read_bytes(&self, pos: u64, len: usize) -> Vec<u8> {
        let offset = (pos & self.mask) as usize;
        (offset..offset + len)
            .map(|o| (self.words[o / 8].load(Ordering::Relaxed) >> ((o % 8) * 8)) as u8)
            .collect()
    }

    /// Consumer: the current `released` position.
    pub fn released(&self) -> u64 {
        self.released.load(Ordering::Relaxed)
    }

    /// Consumer: zeroes `[from, to)` (positions, may wrap) and makes it free for producers.
    /// `from` must be the current `released` position.
    pub fn release(&self, from: u64, to: u64) {
        debug_assert_eq!(from, self.released.load(Ordering::Relaxed));
        debug_assert!(to - from <= self.capacity() as u64);
        let mut p = from;
        while p < to {
            self.word(p).store(0, Ordering::Relaxed);
            p += 8;
        }
        self.released.store(to, Ordering::Release);
    }

    /// Bytes claimed and not yet released (a snapshot; any thread).
    pub fn used_bytes(&self) -> u64 {
        let released = self.released.load(Ordering::Relaxed);
        self.reserved
            .load(Ordering::Relaxed)
            .saturating_sub(released)
    }

    /// Consumer: whether any reservation is outstanding beyond `consumed`.
    pub fn has_reserved_beyond(&self, consumed: u64) -> bool {
        self.reserved.load(Ordering::Acquire) > consumed
    }
}

/// A published frame's header as seen by the consumer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peeked {
    pub kind: Kind,
    pub len: usize,
    pub sync: bool,
    pub total: usize,
    pub crc: u32,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::format::{frame_bytes, word0};
    use std::sync::Arc;

    fn produce(ring: &Ring, payload: &[u8]) -> bool {
        let len = frame_bytes(payload.len());
        let Some(r) = ring.try_reserve(len) else {
            return false;
        };
        if let Some(p) = r.pad_at {
            ring.publish_pad(p);
        }
        ring.write(r.start + 16, payload);
        let w = word0(Kind::Full, payload.len(), false);
        ring.publish_word(r.start, w, crate::format::partial_crc(w, payload));
        true
    }

    /// Consumes everything published; returns payloads in order.
    fn consume(ring: &Ring, consumed: &mut u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let start = *consumed;
        while let Some(p) = ring.peek(*consumed) {
            if p.kind != Kind::Pad {
                // SAFETY: single consumer; the frame is published and not released yet.
                let s = unsafe { ring.slice(*consumed + 16, p.len) };
                out.push(s.to_vec());
            }
            *consumed += p.total as u64;
        }
        ring.release(start, *consumed);
        out
    }

    #[test]
    fn fills_wraps_and_reuses_space() {
        let ring = Ring::new(1024);
        let mut consumed = 0;
        let mut expect = 0u32;
        let mut next = 0u32;
        for _round in 0..200 {
            while produce(&ring, &next.to_le_bytes().repeat((next % 13) as usize + 1)) {
                next += 1;
            }
            for p in consume(&ring, &mut consumed) {
                assert_eq!(p, expect.to_le_bytes().repeat((expect % 13) as usize + 1));
                expect += 1;
            }
        }
        assert_eq!(expect, next);
        assert!(next > 1000, "the ring wrapped many times");
    }

    #[test]
    fn many_producers_one_consumer_stress() {
        const PRODUCERS: u32 = 4;
        const PER: u32 = 20_000;
        let ring = Arc::new(Ring::new(4096));
        let handles: Vec<_> = (0..PRODUCERS)
            .map(|t| {
                let ring = ring.clone();
                std::thread::spawn(move || {
                    for i in 0..PER {
                        let payload = [t.to_le_bytes(), i.to_le_bytes()].concat();
                        while !produce(&ring, &payload) {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut consumed = 0;
        let mut next = [0u32; PRODUCERS as usize];
        let mut total = 0;
        while total < PRODUCERS * PER {
            for p in consume(&ring, &mut consumed) {
                let t = u32::from_le_bytes(p[0..4].try_into().unwrap());
                let i = u32::from_le_bytes(p[4..8].try_into().unwrap());
                assert_eq!(i, next[t as usize], "per-producer order kept");
                next[t as usize] += 1;
                total += 1;
            }
        }
        for h in handles {
            h.join().unwrap();
        }
    }
}

#[cfg(all(test, loom))]
mod loom {
    use super::*;
    use crate::format::{frame_bytes, word0};
    // `::loom`: inside this module, plain `loom` would name the module itself.
    use ::loom::sync::Arc;

    /// Payload bytes per frame: `frame_bytes(16)` is 32, a quarter of the ring (the largest
    /// reservation `try_reserve` accepts).
    const PAYLOAD: usize = 16;
    /// Ring capacity in bytes.
    const CAPACITY: usize = 128;
    /// Where the model starts: 16 bytes before the end of the buffer.
    const START: u64 = 112;

    fn payload(t: u8, i: u8) -> [u8; PAYLOAD] {
        std::array::from_fn(|k| (k as u8).wrapping_mul(17) ^ (t << 4) ^ i)
    }

    /// Runs `f` under loom. A run holds a few hundred atomic operations (the model writes
    /// the ring byte by byte) plus spinning, more than loom's default of 1000 branches per
    /// execution; `LOOM_MAX_BRANCHES` still overrides this.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = ::loom::model::Builder::new();
        if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
            builder.max_branches = 20_000;
        }
        builder.check(f);
    }

    /// Two producers append two 32-byte frames each to a 128-byte ring whose positions start
    /// 16 bytes before the end of the buffer, as if 112 bytes had been produced, consumed and
    /// released already. So the first reservation wraps with a pad, and the last one must
    /// wait until the consumer has released the pad and the first frame. In every
    /// interleaving the consumer gets all four frames whole (producer id in the sequence
    /// slot, payload), once, with each producer's order kept, and the ring ends empty and
    /// zeroed.
    #[test]
    fn two_producers_one_consumer() {
        model(|| {
            let ring = Arc::new(Ring::new(CAPACITY));
            ring.reserved.store(START, Ordering::Relaxed);
            ring.released.store(START, Ordering::Relaxed);
            let producers: Vec<_> = (0..2u8)
                .map(|t| {
                    let ring = ring.clone();
                    ::loom::thread::spawn(move || {
                        for i in 0..2u8 {
                            loop {
                                if let Some(r) = ring.try_reserve(frame_bytes(PAYLOAD)) {
                                    if let Some(p) = r.pad_at {
                                        ring.publish_pad(p);
                                    }
                                    ring.write(r.start + 8, &u64::from(t).to_le_bytes());
                                    ring.write(r.start + 16, &payload(t, i));
                                    let w = word0(Kind::Full, PAYLOAD, false);
                                    ring.publish_word(r.start, w, 1);
                                    break;
                                }
                                ::loom::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            let mut consumed = START;
            let mut seen = [0u8; 2];
            let mut got = 0;
            while got < 4 {
                let start = consumed;
                while let Some(p) = ring.peek(consumed) {
                    if p.kind != Kind::Pad {
                        assert_eq!(p.len, PAYLOAD);
                        let pid = ring.read_bytes(consumed + 8, 8);
                        let t = pid[0];
                        assert!(t < 2 && pid[1..].iter().all(|&b| b == 0), "{pid:?}");
                        let i = seen[t as usize];
                        assert_eq!(ring.read_bytes(consumed + 16, PAYLOAD), payload(t, i));
                        seen[t as usize] += 1;
                        got += 1;
                    }
                    consumed += p.total as u64;
                }
                if consumed > start {
                    ring.release(start, consumed);
                } else {
                    ::loom::thread::yield_now();
                }
            }
            for p in producers {
                p.join().unwrap();
            }
            // 16 bytes of pad and four frames.
            assert_eq!(consumed, START + 16 + 4 * frame_bytes(PAYLOAD) as u64);
            assert_eq!(ring.reserved.load(Ordering::Relaxed), consumed);
            assert!(ring.peek(consumed).is_none());
            assert!(ring.read_bytes(0, CAPACITY).iter().all(|&b| b == 0));
        });
    }
}
