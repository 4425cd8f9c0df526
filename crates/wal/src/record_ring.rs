//! [`RecordRing`]: the commit ring ([`crate::ring`]) offered to other crates as a bounded,
//! lock-free, multi-producer queue of opaque byte records, for a consumer that is not the
//! WAL's committer (the log sink of `crates/logsink` drains it into compressed blocks).
//!
//! It reuses the ring's ownership protocol unchanged (see `ring.rs`): a producer claims a
//! frame with one compare-and-swap, copies its record in and publishes the frame's first
//! word with `Release`; the single consumer walks published frames in claim order, hands
//! each record to a callback, zeroes them and releases the space. Records are `Full`
//! frames whose checksum word is 0: the ring is memory, and the consumer's on-disk format
//! carries its own checksums (computing a CRC per record here would cost the producer,
//! often the JavaScript thread, for nothing).
//!
//! Single consumer: [`RecordRing::consumer`] hands out the only [`RecordConsumer`] once.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::format::{frame_bytes, word0, Kind, FRAME_HEADER_BYTES};
use crate::ring::Ring;

/// A bounded MPSC queue of byte records on the commit ring. Shared by reference
/// (`Arc<RecordRing>`) between producers and the one consumer.
#[derive(Debug)]
pub struct RecordRing {
    ring: Ring,
    consumer_taken: AtomicBool,
}

/// The one consumer of a [`RecordRing`]: its read position.
#[derive(Debug)]
pub struct RecordConsumer {
    consumed: u64,
}

impl RecordRing {
    /// A ring of `capacity_bytes` (a power of two, at least 64).
    pub fn new(capacity_bytes: usize) -> RecordRing {
        RecordRing {
            ring: Ring::new(capacity_bytes),
            consumer_taken: AtomicBool::new(false),
        }
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The largest record [`RecordRing::try_push`] accepts: a frame is at most half the ring.
    pub fn record_bytes_max(&self) -> usize {
        (self.capacity() / 2 - FRAME_HEADER_BYTES).min(crate::format::FRAME_PAYLOAD_MAX)
    }

    /// Copies the concatenation of `parts` into the ring as one record. `false` when the
    /// ring is full right now (back-pressure: nothing was written). Panics if the record is
    /// larger than [`RecordRing::record_bytes_max`] (the caller validates sizes).
    pub fn try_push(&self, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        assert!(
            len <= self.record_bytes_max(),
            "record of {len} bytes exceeds the ring's limit"
        );
        let Some(r) = self.ring.try_reserve(frame_bytes(len)) else {
            return false;
        };
        if let Some(p) = r.pad_at {
            self.ring.publish_pad(p);
        }
        let mut at = r.start + FRAME_HEADER_BYTES as u64;
        for part in parts {
            self.ring.write(at, part);
            at += part.len() as u64;
        }
        // Non-zero: word0 carries the kind. The checksum half stays 0 (see the module doc).
        self.ring
            .publish_word(r.start, word0(Kind::Full, len, false), 0);
        true
    }

    /// Bytes held by records not yet released by the consumer (a snapshot).
    pub fn used_bytes(&self) -> u64 {
        self.ring.used_bytes()
    }

    /// The only consumer; `None` after the first call.
    pub fn consumer(&self) -> Option<RecordConsumer> {
        (!self.consumer_taken.swap(true, Ordering::AcqRel))
            .then_some(RecordConsumer { consumed: 0 })
    }

    /// Consumer: hands every record published so far (in claim order, stopping at the
    /// first unpublished frame) to `f`, then releases their space to producers. Returns the
    /// number of records. `f` must not keep the slice.
    pub fn drain(&self, consumer: &mut RecordConsumer, mut f: impl FnMut(&[u8])) -> usize {
        let start = consumer.consumed;
        let mut n = 0;
        while let Some(p) = self.ring.peek(consumer.consumed) {
            if p.kind != Kind::Pad {
                // SAFETY: `consumer` is the ring's only consumer (`consumer()` hands it out
                // once and `drain` takes it by `&mut`), the frame is published (peek saw its
                // publish word with Acquire) and is released only below, after `f` returned
                // and the slice is dead.
                let bytes = unsafe {
                    self.ring
                        .slice(consumer.consumed + FRAME_HEADER_BYTES as u64, p.len)
                };
                f(bytes);
                n += 1;
            }
            consumer.consumed += p.total as u64;
        }
        if consumer.consumed != start {
            self.ring.release(start, consumer.consumed);
        }
        n
    }

    /// Whether a producer claimed space the consumer has not consumed yet (published or
    /// still being written).
    pub fn has_pending(&self, consumer: &RecordConsumer) -> bool {
        self.ring.has_reserved_beyond(consumer.consumed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn records_come_out_in_order_across_wraps() {
        let ring = RecordRing::new(1024);
        let mut c = ring.consumer().unwrap();
        assert!(ring.consumer().is_none());
        let mut got = Vec::new();
        for i in 0..500u32 {
            let rec = format!("line {i} {}", "x".repeat((i % 37) as usize));
            while !ring.try_push(&[rec.as_bytes()]) {
                ring.drain(&mut c, |b| got.push(b.to_vec()));
            }
        }
        ring.drain(&mut c, |b| got.push(b.to_vec()));
        assert!(!ring.has_pending(&c));
        assert_eq!(got.len(), 500);
        for (i, g) in got.iter().enumerate() {
            let want = format!("line {i} {}", "x".repeat(i % 37));
            assert_eq!(g, want.as_bytes());
        }
    }

    #[test]
    fn full_ring_refuses_then_accepts_after_drain() {
        let ring = RecordRing::new(256);
        let mut c = ring.consumer().unwrap();
        let big = vec![7u8; ring.record_bytes_max()];
        assert!(ring.try_push(&[&big]));
        assert!(ring.try_push(&[&big[..8]]));
        assert!(!ring.try_push(&[&big]));
        assert_eq!(ring.drain(&mut c, |_| {}), 2);
        assert!(ring.try_push(&[&big]));
    }

    #[test]
    fn concurrent_producers_lose_nothing() {
        let ring = Arc::new(RecordRing::new(4096));
        let mut c = ring.consumer().unwrap();
        let producers: Vec<_> = (0..3u8)
            .map(|t| {
                let ring = ring.clone();
                std::thread::spawn(move || {
                    for i in 0..2000u32 {
                        let rec = [&[t][..], &i.to_le_bytes()[..]];
                        while !ring.try_push(&rec) {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next = [0u32; 3];
        let mut total = 0;
        while total < 6000 {
            total += ring.drain(&mut c, |b| {
                let t = b[0] as usize;
                let i = u32::from_le_bytes(b[1..5].try_into().unwrap());
                assert_eq!(i, next[t], "producer {t} out of order");
                next[t] += 1;
            });
        }
        for p in producers {
            p.join().unwrap();
        }
    }
}
