//! The rate limiter for background writes (flush and compaction output).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket limiting background write bytes per second.
pub(crate) struct RateLimiter {
    rate: u64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub(super) fn new(rate: u64) -> RateLimiter {
        RateLimiter {
            rate,
            state: Mutex::new((rate as f64 / 10.0, Instant::now())),
        }
    }

    /// Waits until `bytes` may be written.
    pub(crate) fn request(&self, bytes: u64) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let burst = self.rate as f64 / 10.0;
            s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate as f64).min(burst);
            s.1 = now;
            s.0 -= bytes as f64;
            if s.0 < 0.0 {
                Duration::from_secs_f64(-s.0 / self.rate as f64)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}
