//! Sampling and rate limits per level, decided on the writer thread from what the line
//! scan found (level, trace id, message). Pure: the caller passes the time, so tests drive
//! it with a fake clock.
//!
//! # Semantics
//!
//! * **ERROR and FATAL (and any level above WARN) are never sampled**; neither are lines
//!   with no numeric level.
//! * **zap's sampler** for TRACE, DEBUG, INFO and WARN, each configured on its own: lines
//!   are counted per (level, message) in windows of `tick_ms`; within a window the n-th
//!   line of a key is kept if n <= `first`, or if `thereafter` > 0 and (n - `first`) is a
//!   multiple of `thereafter`; otherwise dropped (reason `sampling`). Counters live in
//!   `KEY_SLOTS` hashed slots per level (as zap's 4096): keys that collide share a count.
//! * **Trace-aware keep**: once a line that carries a trace id is kept by the sampler, the
//!   trace is marked kept, and every later line of that trace skips the sampler. (A trace
//!   whose first lines were sampled out becomes kept at its first kept line.)
//! * **Per-trace cap** (`trace_info_cap`): a trace that logs more than that many INFO
//!   lines in a row (no line of another level of the same trace in between) is silenced
//!   for the rest of its INFO lines (reason `trace_cap`), kept or not. Its lines of other
//!   levels still pass.
//! * Traces live in a table of `TRACE_SLOTS` hashed slots: a trace evicted by a colliding
//!   one starts over (not kept, run 0, not silenced). Bounded memory, never growth.
//!
//! Dropped lines are counted by level class and reason ([`DropCounts`]); the writer turns
//! the counts of each `summary_ms` period into one summary line in the store.

use crate::format::{level, level_class};

/// Hashed counter slots per sampled level.
pub const KEY_SLOTS: usize = 4096;
/// Hashed trace slots.
pub const TRACE_SLOTS: usize = 8192;

/// zap's (first, thereafter) for one level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelSampling {
    /// Lines per key and window always kept.
    pub first: u32,
    /// After those, every `thereafter`-th is kept; 0 drops the rest.
    pub thereafter: u32,
}

/// Sampling options; `Default` samples nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamplingOptions {
    /// The counting window, ms (`tickMs`).
    pub tick_ms: u64,
    /// Per level class TRACE, DEBUG, INFO, WARN (indexes 0..4); `None`: not sampled.
    pub levels: [Option<LevelSampling>; 4],
    /// The per-trace INFO cap (`traceInfoCap`); `None`: no cap.
    pub trace_info_cap: Option<u32>,
    /// Period of the drop summary line, ms (`summaryIntervalMs`).
    pub summary_ms: u64,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            tick_ms: 1000,
            levels: [None; 4],
            trace_info_cap: None,
            summary_ms: 10_000,
        }
    }
}

impl SamplingOptions {
    /// Whether anything can be dropped.
    pub fn active(&self) -> bool {
        self.levels.iter().any(Option::is_some) || self.trace_info_cap.is_some()
    }
}

/// Why a line was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The (first, thereafter) sampler.
    Sampling = 0,
    /// The per-trace INFO cap.
    TraceCap = 1,
}

/// Dropped lines per level class (see [`crate::format::level`]) and reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts(pub [[u64; 2]; 8]);

impl DropCounts {
    /// Total dropped.
    pub fn total(&self) -> u64 {
        self.0.iter().flatten().sum()
    }

    fn add(&mut self, class: u32, reason: DropReason) {
        self.0[class as usize][reason as usize] += 1;
    }
}

#[derive(Clone, Copy, Default)]
struct TraceSlot {
    hash: u64,
    kept: bool,
    info_run: u32,
    silenced: bool,
}

#[derive(Clone, Copy, Default)]
struct KeySlot {
    window: u64,
    count: u64,
}

/// The sampler's state.
pub struct Sampler {
    options: SamplingOptions,
    keys: Vec<KeySlot>,
    traces: Vec<TraceSlot>,
    /// Drops since the last summary.
    pub period: DropCounts,
    /// Drops since open.
    pub total: DropCounts,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("options", &self.options)
            .field("total", &self.total)
            .finish()
    }
}

/// FNV-1a, 64-bit.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1 // 0 marks an empty trace slot
}

impl Sampler {
    /// A sampler with these options.
    pub fn new(options: SamplingOptions) -> Sampler {
        Sampler {
            keys: vec![KeySlot::default(); 4 * KEY_SLOTS],
            traces: vec![TraceSlot::default(); TRACE_SLOTS],
            options,
            period: DropCounts::default(),
            total: DropCounts::default(),
        }
    }

    /// The options.
    pub fn options(&self) -> &SamplingOptions {
        &self.options
    }

    /// Whether to keep a line of numeric `lvl` with this trace id and message, at
    /// `now_ms` (any monotonic clock). Counts the drop when it says no.
    pub fn keep(
        &mut self,
        lvl: Option<u32>,
        trace: Option<&[u8]>,
        msg: &[u8],
        now_ms: u64,
    ) -> bool {
        let class = level_class(lvl);
        let sampled = class <= level::WARN;
        let mut slot_ix = None;
        if let Some(t) = trace.filter(|t| !t.is_empty()) {
            let h = hash(t);
            let ix = (h as usize) % TRACE_SLOTS;
            let slot = &mut self.traces[ix];
            if slot.hash != h {
                *slot = TraceSlot {
                    hash: h,
                    ..TraceSlot::default()
                };
            }
            if class == level::INFO {
                slot.info_run = slot.info_run.saturating_add(1);
                if let Some(cap) = self.options.trace_info_cap {
                    if slot.info_run > cap {
                        slot.silenced = true;
                    }
                }
                if slot.silenced {
                    self.drop_line(class, DropReason::TraceCap);
                    return false;
                }
            } else {
                slot.info_run = 0;
            }
            if slot.kept || !sampled {
                return true;
            }
            slot_ix = Some(ix);
        }
        if !sampled {
            return true;
        }
        let Some(cfg) = self.options.levels[class as usize] else {
            if let Some(ix) = slot_ix {
                self.traces[ix].kept = true;
            }
            return true;
        };
        let window = now_ms / self.options.tick_ms.max(1);
        let key = &mut self.keys[class as usize * KEY_SLOTS + (hash(msg) as usize % KEY_SLOTS)];
        if key.window != window {
            *key = KeySlot { window, count: 0 };
        }
        key.count += 1;
        let n = key.count;
        let first = u64::from(cfg.first);
        let keep = n <= first
            || (cfg.thereafter > 0 && (n - first).is_multiple_of(u64::from(cfg.thereafter)));
        if keep {
            if let Some(ix) = slot_ix {
                self.traces[ix].kept = true;
            }
        } else {
            self.drop_line(class, DropReason::Sampling);
        }
        keep
    }

    fn drop_line(&mut self, class: u32, reason: DropReason) {
        self.period.add(class, reason);
        self.total.add(class, reason);
    }

    /// The summary line of the drops since the last call (without time: the caller adds
    /// it), or `None` when nothing was dropped; resets the period's counts.
    pub fn take_summary(&mut self, time_ms: i64) -> Option<String> {
        if self.period.total() == 0 {
            return None;
        }
        let names = [
            "trace", "debug", "info", "warn", "error", "fatal", "other", "none",
        ];
        let secs = self.options.summary_ms as f64 / 1000.0;
        let mut parts = Vec::new();
        let mut detail = Vec::new();
        for (class, counts) in self.period.0.iter().enumerate() {
            for (reason, &n) in counts.iter().enumerate() {
                if n > 0 {
                    let why = if reason == 0 { "sampling" } else { "trace_cap" };
                    parts.push(format!(
                        "dropped {n} {} lines in the last {secs} s: {why}",
                        names[class]
                    ));
                    detail.push(format!(
                        "{{\"level\":\"{}\",\"reason\":\"{why}\",\"count\":{n}}}",
                        names[class]
                    ));
                }
            }
        }
        self.period = DropCounts::default();
        Some(format!(
            "{{\"level\":40,\"time\":{time_ms},\"msg\":\"uringdb: {}\",\"uringdbDropped\":[{}]}}",
            parts.join("; "),
            detail.join(",")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(levels: [Option<LevelSampling>; 4], cap: Option<u32>) -> Sampler {
        Sampler::new(SamplingOptions {
            tick_ms: 1000,
            levels,
            trace_info_cap: cap,
            summary_ms: 10_000,
        })
    }

    const INFO: Option<u32> = Some(30);

    #[test]
    fn first_n_then_every_mth_per_window_and_key() {
        let mut s = sampler(
            [
                None,
                None,
                Some(LevelSampling {
                    first: 3,
                    thereafter: 4,
                }),
                None,
            ],
            None,
        );
        let kept: Vec<u64> = (1..=20)
            .filter(|_| s.keep(INFO, None, b"GET /", 5_000))
            .enumerate()
            .map(|(i, _)| i as u64)
            .collect();
        // n = 1, 2, 3 (first), then 7, 11, 15, 19 (n - 3 a multiple of 4).
        assert_eq!(kept.len(), 7);
        assert_eq!(s.total.0[level::INFO as usize][0], 13);
        // Another message has its own count.
        assert!(s.keep(INFO, None, b"POST /", 5_000));
        // A new window starts over.
        assert!(s.keep(INFO, None, b"GET /", 6_000));
        assert!(s.keep(INFO, None, b"GET /", 6_999));
        assert!(s.keep(INFO, None, b"GET /", 6_500));
        assert!(!s.keep(INFO, None, b"GET /", 6_500));
    }

    #[test]
    fn exact_positions_of_kept_lines() {
        let mut s = sampler(
            [
                None,
                None,
                Some(LevelSampling {
                    first: 2,
                    thereafter: 3,
                }),
                None,
            ],
            None,
        );
        let kept: Vec<u32> = (1..=12).filter(|_| s.keep(INFO, None, b"m", 0)).collect();
        assert_eq!(kept.len(), 5);
        let mut s = sampler(
            [
                None,
                None,
                Some(LevelSampling {
                    first: 2,
                    thereafter: 3,
                }),
                None,
            ],
            None,
        );
        let pattern: Vec<bool> = (1..=12).map(|_| s.keep(INFO, None, b"m", 0)).collect();
        let want: Vec<bool> = (1..=12u32).map(|n| n <= 2 || (n - 2) % 3 == 0).collect();
        assert_eq!(pattern, want);
    }

    #[test]
    fn thereafter_zero_drops_the_rest_and_unconfigured_levels_pass() {
        let mut s = sampler(
            [
                None,
                Some(LevelSampling {
                    first: 1,
                    thereafter: 0,
                }),
                None,
                None,
            ],
            None,
        );
        assert!(s.keep(Some(20), None, b"m", 0));
        assert!(!s.keep(Some(20), None, b"m", 0));
        assert!(!s.keep(Some(20), None, b"m", 999));
        assert!(s.keep(Some(30), None, b"m", 0));
    }

    #[test]
    fn error_and_fatal_are_never_sampled() {
        let all = Some(LevelSampling {
            first: 0,
            thereafter: 0,
        });
        let mut s = sampler([all; 4], Some(0));
        for _ in 0..1000 {
            assert!(s.keep(Some(50), Some(b"t"), b"m", 0));
            assert!(s.keep(Some(60), None, b"m", 0));
            assert!(s.keep(None, None, b"m", 0));
            assert!(!s.keep(Some(40), None, b"m", 0));
        }
        assert_eq!(s.total.0[level::ERROR as usize], [0, 0]);
        assert_eq!(s.total.0[level::FATAL as usize], [0, 0]);
        assert_eq!(s.total.0[level::WARN as usize], [1000, 0]);
    }

    #[test]
    fn a_kept_trace_keeps_all_its_lines() {
        let mut s = sampler(
            [
                None,
                Some(LevelSampling {
                    first: 1,
                    thereafter: 0,
                }),
                None,
                None,
            ],
            None,
        );
        // The first DEBUG line of "m" is kept; it carries trace A, so A is kept.
        assert!(s.keep(Some(20), Some(b"A"), b"m", 0));
        // Trace B's line is sampled out (the key "m" used its one).
        assert!(!s.keep(Some(20), Some(b"B"), b"m", 0));
        for _ in 0..100 {
            assert!(s.keep(Some(20), Some(b"A"), b"m", 0), "trace A is kept");
            assert!(!s.keep(Some(20), Some(b"B"), b"m", 0));
            assert!(!s.keep(Some(20), None, b"m", 0));
        }
    }

    #[test]
    fn a_trace_with_more_than_cap_info_lines_in_a_row_is_silenced_for_its_info_lines() {
        let mut s = sampler([None; 4], Some(50));
        for i in 0..50 {
            assert!(s.keep(INFO, Some(b"chatty"), b"m", i), "line {i}");
        }
        assert!(!s.keep(INFO, Some(b"chatty"), b"m", 50));
        // Other levels of the trace still pass; its INFO lines stay silenced.
        assert!(s.keep(Some(40), Some(b"chatty"), b"m", 51));
        assert!(s.keep(Some(50), Some(b"chatty"), b"m", 52));
        assert!(!s.keep(INFO, Some(b"chatty"), b"m", 53));
        // A trace whose run is broken by another level never reaches the cap.
        for i in 0..200 {
            let lvl = if i % 50 == 49 { Some(20) } else { INFO };
            assert!(s.keep(lvl, Some(b"polite"), b"m", i));
        }
        assert_eq!(s.total.0[level::INFO as usize], [0, 2]);
    }

    #[test]
    fn summary_line_names_counts_levels_and_reasons_and_resets() {
        let mut s = sampler(
            [
                None,
                None,
                Some(LevelSampling {
                    first: 1,
                    thereafter: 0,
                }),
                None,
            ],
            Some(1),
        );
        for _ in 0..5 {
            s.keep(INFO, None, b"m", 0);
        }
        s.keep(INFO, Some(b"t"), b"x", 0);
        s.keep(INFO, Some(b"t"), b"x", 0);
        let line = s.take_summary(123).unwrap();
        assert!(line.starts_with("{\"level\":40,\"time\":123,"), "{line}");
        assert!(
            line.contains("dropped 4 info lines in the last 10 s: sampling"),
            "{line}"
        );
        assert!(
            line.contains("dropped 1 info lines in the last 10 s: trace_cap"),
            "{line}"
        );
        assert!(s.take_summary(124).is_none());
        assert_eq!(s.total.total(), 5, "4 sampled, 1 capped");
    }
}
