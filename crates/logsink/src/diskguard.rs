//! The disk-space guard (issue 12, item 5, second half): watermarks on the free space and
//! free inodes of the store's file system, so a filling disk sheds low levels first
//! instead of failing every write with ENOSPC.
//!
//! Pure state machine ([`DiskGuard`]) fed by a [`SpaceProbe`]: the real one calls
//! `statvfs(2)` on the store directory ([`StatvfsProbe`]), tests feed a fake. The guard is
//! meant to be consulted by the writer thread, never the JavaScript thread; it probes at
//! most once per `check_interval_ms` and otherwise answers from its last state.
//!
//! States, by the smaller of the free-bytes and free-inodes percentages:
//! * `Normal` — every level is kept.
//! * `Low` (free below `low_pct`, default 5) — lines under WARN (40) are dropped.
//! * `Critical` (free below `critical_pct`, default 1) — only ERROR (50) and FATAL (60)
//!   are kept.
//!
//! Hysteresis: a state is left towards a better one only once free space is at least
//! `hysteresis_pct` (default 1) above the watermark that entered it, so a file system
//! hovering at a watermark does not flap. Entering a worse state is immediate. A probe
//! that fails (the directory vanished, EIO) keeps the last state: the guard never makes
//! things worse by guessing. Every transition is counted.

use std::path::{Path, PathBuf};

/// WARN in pino's numeric levels.
pub const WARN: u32 = 40;
/// ERROR in pino's numeric levels.
pub const ERROR: u32 = 50;

/// What a probe reports about a file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    /// Bytes available to an unprivileged writer.
    pub free_bytes: u64,
    /// Size of the file system in bytes.
    pub total_bytes: u64,
    /// Inodes available (0 with `total_inodes` 0 when the file system has no inode limit).
    pub free_inodes: u64,
    /// Inodes in the file system.
    pub total_inodes: u64,
}

impl Space {
    /// The smaller of the free-bytes and free-inodes percentages (inodes ignored when the
    /// file system reports none).
    pub fn free_pct(&self) -> f64 {
        let pct = |free: u64, total: u64| {
            if total == 0 {
                100.0
            } else {
                free as f64 * 100.0 / total as f64
            }
        };
        pct(self.free_bytes, self.total_bytes).min(pct(self.free_inodes, self.total_inodes))
    }
}

/// Source of [`Space`] readings.
pub trait SpaceProbe: Send {
    /// The file system's current space, or an I/O error.
    fn probe(&mut self) -> std::io::Result<Space>;
}

/// The guard's watermarks (`diskGuard` in the façade's options).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiskGuardOptions {
    /// Below this free percentage, drop lines under WARN.
    pub low_pct: f64,
    /// Below this free percentage, keep only ERROR and FATAL.
    pub critical_pct: f64,
    /// How far above a watermark free space must climb to leave the state it entered.
    pub hysteresis_pct: f64,
    /// Probe at most this often, ms.
    pub check_interval_ms: u64,
}

impl Default for DiskGuardOptions {
    fn default() -> Self {
        DiskGuardOptions {
            low_pct: 5.0,
            critical_pct: 1.0,
            hysteresis_pct: 1.0,
            check_interval_ms: 1000,
        }
    }
}

impl DiskGuardOptions {
    /// Checks the watermarks, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let in_range = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
        if !in_range(self.low_pct) {
            return Err(format!(
                "diskGuard.lowPct must be within 0..=100, got {}",
                self.low_pct
            ));
        }
        if !in_range(self.critical_pct) || self.critical_pct > self.low_pct {
            return Err(format!(
                "diskGuard.criticalPct must be within 0..=lowPct ({}), got {}",
                self.low_pct, self.critical_pct
            ));
        }
        if !in_range(self.hysteresis_pct) {
            return Err(format!(
                "diskGuard.hysteresisPct must be within 0..=100, got {}",
                self.hysteresis_pct
            ));
        }
        if self.check_interval_ms == 0 {
            return Err("diskGuard.checkIntervalMs must be at least 1".into());
        }
        Ok(())
    }
}

/// The guard's state, from best to worst.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum GuardState {
    /// Everything is kept.
    #[default]
    Normal,
    /// Lines under WARN are dropped.
    Low,
    /// Only ERROR and FATAL are kept.
    Critical,
}

impl GuardState {
    /// The state's name in stats and diagnostics.
    pub fn name(self) -> &'static str {
        match self {
            GuardState::Normal => "normal",
            GuardState::Low => "low",
            GuardState::Critical => "critical",
        }
    }

    /// Whether a line of `level` (None: no numeric level) is kept in this state. A line
    /// without a level is treated as below WARN.
    pub fn keeps(self, level: Option<u32>) -> bool {
        let level = level.unwrap_or(0);
        match self {
            GuardState::Normal => true,
            GuardState::Low => level >= WARN,
            GuardState::Critical => level >= ERROR,
        }
    }
}

/// One state change, for stats and the diagnostics channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// State left.
    pub from: GuardState,
    /// State entered.
    pub to: GuardState,
    /// Free percentage that caused it.
    pub free_pct: f64,
}

/// The guard: options, probe, state and counters.
pub struct DiskGuard<P: SpaceProbe> {
    options: DiskGuardOptions,
    probe: P,
    state: GuardState,
    last_check_ms: Option<u64>,
    transitions: u64,
    probe_errors: u64,
}

impl<P: SpaceProbe> DiskGuard<P> {
    /// A guard in `Normal` that probes on its first [`DiskGuard::poll`].
    pub fn new(options: DiskGuardOptions, probe: P) -> Self {
        DiskGuard {
            options,
            probe,
            state: GuardState::Normal,
            last_check_ms: None,
            transitions: 0,
            probe_errors: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> GuardState {
        self.state
    }

    /// Transitions so far.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// Probes that failed so far (the state was kept).
    pub fn probe_errors(&self) -> u64 {
        self.probe_errors
    }

    /// Probes when `check_interval_ms` has passed since the last probe (`now_ms`: any
    /// monotonic clock) and returns the transition it caused, if any.
    pub fn poll(&mut self, now_ms: u64) -> Option<Transition> {
        if let Some(last) = self.last_check_ms {
            if now_ms.saturating_sub(last) < self.options.check_interval_ms {
                return None;
            }
        }
        self.last_check_ms = Some(now_ms);
        match self.probe.probe() {
            Ok(space) => self.observe(space.free_pct()),
            Err(_) => {
                self.probe_errors += 1;
                None
            }
        }
    }

    /// Forces the next [`DiskGuard::poll`] to probe (after an ENOSPC, say).
    pub fn recheck_soon(&mut self) {
        self.last_check_ms = None;
    }

    fn observe(&mut self, free_pct: f64) -> Option<Transition> {
        let o = &self.options;
        let worst = if free_pct < o.critical_pct {
            GuardState::Critical
        } else if free_pct < o.low_pct {
            GuardState::Low
        } else {
            GuardState::Normal
        };
        let next = if worst >= self.state {
            worst
        } else {
            // Improving: leave each state only with the hysteresis margin above its entry.
            let mut s = self.state;
            if s == GuardState::Critical && free_pct >= o.critical_pct + o.hysteresis_pct {
                s = GuardState::Low;
            }
            if s == GuardState::Low && free_pct >= o.low_pct + o.hysteresis_pct {
                s = GuardState::Normal;
            }
            s.max(worst)
        };
        if next == self.state {
            return None;
        }
        let t = Transition {
            from: self.state,
            to: next,
            free_pct,
        };
        self.state = next;
        self.transitions += 1;
        Some(t)
    }
}

/// The real probe: `statvfs(2)` on the store directory.
pub struct StatvfsProbe {
    dir: PathBuf,
}

impl StatvfsProbe {
    /// A probe of the file system holding `dir`.
    pub fn new(dir: &Path) -> Self {
        StatvfsProbe {
            dir: dir.to_path_buf(),
        }
    }
}

#[cfg(unix)]
impl SpaceProbe for StatvfsProbe {
    // The statvfs field types differ by platform (u64 on Linux, u32 on macOS).
    #[allow(clippy::useless_conversion)]
    fn probe(&mut self) -> std::io::Result<Space> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(self.dir.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
        // SAFETY: `path` is a valid NUL-terminated C string that outlives the call, and
        // `st` points to writable memory of the size statvfs expects; the kernel fills it
        // entirely on success, and we read it only then.
        let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: statvfs returned 0, so it initialized the struct.
        let st = unsafe { st.assume_init() };
        let frsize = u64::from(st.f_frsize);
        Ok(Space {
            free_bytes: u64::from(st.f_bavail).saturating_mul(frsize),
            total_bytes: u64::from(st.f_blocks).saturating_mul(frsize),
            free_inodes: u64::from(st.f_favail),
            total_inodes: u64::from(st.f_files),
        })
    }
}

#[cfg(not(unix))]
impl SpaceProbe for StatvfsProbe {
    fn probe(&mut self) -> std::io::Result<Space> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "statvfs: not on this platform",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A fake file system: tests set its free percentage (of 100 units) or make it fail.
    #[derive(Clone)]
    struct Fake(Arc<Mutex<Option<(u64, u64)>>>);

    impl Fake {
        fn new() -> Self {
            Fake(Arc::new(Mutex::new(Some((100, 100)))))
        }
        fn set(&self, free_bytes_pct: u64, free_inodes_pct: u64) {
            *self.0.lock().unwrap() = Some((free_bytes_pct, free_inodes_pct));
        }
        fn fail(&self) {
            *self.0.lock().unwrap() = None;
        }
    }

    impl SpaceProbe for Fake {
        fn probe(&mut self) -> std::io::Result<Space> {
            let (b, i) = (*self.0.lock().unwrap()).ok_or_else(|| std::io::Error::other("EIO"))?;
            Ok(Space {
                free_bytes: b * 1000,
                total_bytes: 100_000,
                free_inodes: i * 10,
                total_inodes: 1000,
            })
        }
    }

    fn guard() -> (DiskGuard<Fake>, Fake) {
        let fake = Fake::new();
        let opts = DiskGuardOptions {
            check_interval_ms: 100,
            ..DiskGuardOptions::default()
        };
        (DiskGuard::new(opts, fake.clone()), fake)
    }

    #[test]
    fn watermarks_shed_levels_and_recover_with_hysteresis() {
        let (mut g, fake) = guard();
        assert_eq!(g.poll(0), None);
        assert!(g.state().keeps(Some(10)));
        fake.set(4, 100);
        let t = g.poll(100).unwrap();
        assert_eq!((t.from, t.to), (GuardState::Normal, GuardState::Low));
        assert!(!g.state().keeps(Some(30)) && g.state().keeps(Some(40)) && !g.state().keeps(None));
        fake.set(0, 100);
        assert_eq!(g.poll(200).unwrap().to, GuardState::Critical);
        assert!(
            !g.state().keeps(Some(40)) && g.state().keeps(Some(50)) && g.state().keeps(Some(60))
        );
        // 1.5% is above critical but within its hysteresis: stays critical.
        fake.set(1, 100);
        assert_eq!(g.poll(300), None);
        fake.set(2, 100);
        assert_eq!(g.poll(400).unwrap().to, GuardState::Low);
        fake.set(5, 100); // at the low watermark, not 1 above it: stays low
        assert_eq!(g.poll(500), None);
        fake.set(6, 100);
        assert_eq!(g.poll(600).unwrap().to, GuardState::Normal);
        assert_eq!(g.transitions(), 4);
    }

    #[test]
    fn a_jump_from_critical_to_plenty_goes_straight_to_normal() {
        let (mut g, fake) = guard();
        fake.set(0, 100);
        assert_eq!(g.poll(0).unwrap().to, GuardState::Critical);
        fake.set(50, 100);
        let t = g.poll(100).unwrap();
        assert_eq!((t.from, t.to), (GuardState::Critical, GuardState::Normal));
    }

    #[test]
    fn hovering_at_a_watermark_does_not_flap() {
        let (mut g, fake) = guard();
        for (i, pct) in [4u64, 5, 4, 5, 4, 5].into_iter().enumerate() {
            fake.set(pct, 100);
            g.poll(i as u64 * 100);
        }
        assert_eq!(g.transitions(), 1, "one entry into low, never left");
        assert_eq!(g.state(), GuardState::Low);
    }

    #[test]
    fn inodes_count_like_bytes() {
        let (mut g, fake) = guard();
        fake.set(90, 0);
        assert_eq!(g.poll(0).unwrap().to, GuardState::Critical);
    }

    #[test]
    fn probes_at_most_once_per_interval_and_keeps_state_on_errors() {
        let (mut g, fake) = guard();
        g.poll(0);
        fake.set(0, 100);
        assert_eq!(g.poll(99), None, "within the interval: no probe");
        assert_eq!(g.state(), GuardState::Normal);
        g.recheck_soon();
        assert_eq!(g.poll(99).unwrap().to, GuardState::Critical);
        fake.fail();
        assert_eq!(g.poll(300), None);
        assert_eq!((g.state(), g.probe_errors()), (GuardState::Critical, 1));
    }

    #[test]
    fn options_name_the_bad_field() {
        let bad = |o: DiskGuardOptions| o.validate().unwrap_err();
        let d = DiskGuardOptions::default();
        assert!(d.validate().is_ok());
        assert!(bad(DiskGuardOptions {
            low_pct: 101.0,
            ..d
        })
        .contains("diskGuard.lowPct"));
        assert!(bad(DiskGuardOptions {
            critical_pct: 6.0,
            ..d
        })
        .contains("diskGuard.criticalPct"));
        assert!(bad(DiskGuardOptions {
            hysteresis_pct: f64::NAN,
            ..d
        })
        .contains("diskGuard.hysteresisPct"));
        assert!(bad(DiskGuardOptions {
            check_interval_ms: 0,
            ..d
        })
        .contains("diskGuard.checkIntervalMs"));
    }

    #[test]
    fn statvfs_reads_the_real_file_system() {
        let dir = std::env::temp_dir();
        let s = StatvfsProbe::new(&dir).probe().unwrap();
        assert!(s.total_bytes > 0 && s.free_bytes <= s.total_bytes);
        assert!(StatvfsProbe::new(Path::new("/nonexistent/uringdb"))
            .probe()
            .is_err());
    }
}
