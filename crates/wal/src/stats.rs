//! Counters and latency histograms. Written by the committer once per group (never per
//! record), read by `stats()` from any thread.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Log-linear histogram of nanosecond values: 8 sub-buckets per power of two
/// (about 12% resolution), fixed size, no allocation after creation.
#[derive(Clone)]
pub(crate) struct Histogram {
    buckets: Box<[u64; 64 * 8]>,
    count: u64,
    max: u64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            buckets: Box::new([0; 64 * 8]),
            count: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < 8 {
            return v as usize;
        }
        let log = 63 - v.leading_zeros() as usize; // >= 3
        let sub = ((v >> (log - 3)) & 7) as usize;
        (log - 2) * 8 + sub
    }

    fn lower_bound(i: usize) -> u64 {
        if i < 8 {
            return i as u64;
        }
        let log = i / 8 + 2;
        let sub = (i % 8) as u64;
        (8 + sub) << (log - 3)
    }

    pub fn record(&mut self, v: u64) {
        self.buckets[Self::index(v)] += 1;
        self.count += 1;
        self.max = self.max.max(v);
    }

    pub fn percentile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // Midpoint of the bucket, capped by the true maximum.
                let lo = Self::lower_bound(i);
                let hi = Self::lower_bound(i + 1);
                return ((lo + hi) / 2).min(self.max);
            }
        }
        self.max
    }

    pub fn summary_us(&self) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            count: self.count,
            p50: us(self.percentile(0.50)),
            p90: us(self.percentile(0.90)),
            p99: us(self.percentile(0.99)),
            p999: us(self.percentile(0.999)),
            max: us(self.max),
        }
    }
}

/// Percentiles of a latency distribution, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

pub(crate) struct Latencies {
    pub queue_wait: Histogram,
    pub write: Histogram,
    pub fsync: Histogram,
    pub total: Histogram,
}

/// Live counters of one log.
pub(crate) struct Counters {
    pub appends: AtomicU64,
    pub append_bytes: AtomicU64,
    pub groups: AtomicU64,
    pub fsyncs: AtomicU64,
    pub bytes_written: AtomicU64,
    pub recycled_segments: AtomicU64,
    pub fresh_segments: AtomicU64,
    pub latencies: Mutex<Latencies>,
}

impl Counters {
    pub fn new() -> Counters {
        Counters {
            appends: AtomicU64::new(0),
            append_bytes: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            recycled_segments: AtomicU64::new(0),
            fresh_segments: AtomicU64::new(0),
            latencies: Mutex::new(Latencies {
                queue_wait: Histogram::new(),
                write: Histogram::new(),
                fsync: Histogram::new(),
                total: Histogram::new(),
            }),
        }
    }

    pub fn add(&self, c: &AtomicU64, v: u64) {
        c.fetch_add(v, Relaxed);
    }
}

/// A snapshot of a log's statistics.
#[derive(Clone, Debug, Default)]
pub struct WalStats {
    /// I/O backend in use ("io_uring" or "portable").
    pub backend: &'static str,
    /// Why io_uring is not used, if it is not.
    pub fallback_reason: Option<String>,
    /// Kernel features probed.
    pub features: Vec<String>,
    /// Records written (counted per commit group, when written).
    pub appends: u64,
    /// Payload bytes appended.
    pub append_bytes: u64,
    /// Commit groups written.
    pub groups: u64,
    /// fdatasync calls issued (linked or standalone).
    pub fsyncs: u64,
    /// Bytes written to segment files (frames incl. headers and padding).
    pub bytes_written: u64,
    /// First readable sequence number (0 when empty).
    pub first_seq: u64,
    /// Last durable, visible sequence number (0 when empty).
    pub last_seq: u64,
    /// Number of segment files in use.
    pub segments: u64,
    /// Segments rolled to since open that reused a recycled file (no zero-fill).
    pub recycled_segments: u64,
    /// Segments rolled to since open that were new, zero-filled files.
    pub fresh_segments: u64,
    /// Recycled files waiting in the pool now.
    pub pool_segments: u64,
    /// Per group, from the group's oldest record: waiting in the queue.
    pub queue_wait: Percentiles,
    /// Per group: the write.
    pub write: Percentiles,
    /// Per group: the fdatasync.
    pub fsync: Percentiles,
    /// Per group: from the oldest record's arrival to its completion.
    pub total: Percentiles,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_within_resolution() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 10);
        }
        for (q, exact) in [(0.5, 500_000.0), (0.9, 900_000.0), (0.99, 990_000.0)] {
            let got = h.percentile(q) as f64;
            assert!((got - exact).abs() / exact < 0.13, "q={q} got={got}");
        }
        assert_eq!(h.percentile(1.0), 1_000_000);
        assert_eq!(Histogram::new().percentile(0.5), 0);
    }

    #[test]
    fn index_and_lower_bound_agree() {
        for v in [
            0u64,
            1,
            7,
            8,
            9,
            15,
            16,
            17,
            1000,
            123_456_789,
            u64::MAX / 2,
        ] {
            let i = Histogram::index(v);
            assert!(Histogram::lower_bound(i) <= v, "v={v}");
            assert!(Histogram::lower_bound(i + 1) > v, "v={v}");
        }
    }
}
