//! Crash points for tests, shared by the database and the manifest: named places in the
//! code where a test can abort the process (or panic the thread) to check recovery.
//! Unarmed, a crash point costs one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// A crash point armed for tests (see [`failpoint`]).
struct FailSpec {
    name: String,
    /// Fires at this hit (1 = the first).
    nth: u64,
    /// Panic on the calling thread instead of aborting the process.
    panic: bool,
    hits: u64,
}

impl FailSpec {
    /// `<name>[:<n>][:panic]`; a bad count means 1.
    fn parse(spec: &str) -> Option<FailSpec> {
        let mut parts = spec.split(':');
        let name = parts.next().filter(|n| !n.is_empty())?.to_string();
        let (mut nth, mut panic) = (1, false);
        for p in parts {
            match p {
                "panic" => panic = true,
                n => nth = n.parse().unwrap_or(1),
            }
        }
        Some(FailSpec {
            name,
            nth,
            panic,
            hits: 0,
        })
    }
}

static FAILPOINT: Mutex<Option<FailSpec>> = Mutex::new(None);
/// Whether a crash point is armed: the one atomic load an unarmed `failpoint` costs.
static FAILPOINT_ARMED: AtomicBool = AtomicBool::new(false);

fn failpoint_from_env() {
    static ENV: OnceLock<()> = OnceLock::new();
    ENV.get_or_init(|| {
        if let Some(spec) = std::env::var("URINGDB_FAILPOINT")
            .ok()
            .and_then(|v| FailSpec::parse(&v))
        {
            *FAILPOINT.lock().unwrap_or_else(|e| e.into_inner()) = Some(spec);
            FAILPOINT_ARMED.store(true, Ordering::SeqCst);
        }
    });
}

/// Crash points for tests: `URINGDB_FAILPOINT=<name>[:<n>][:panic]` aborts the process at
/// the n-th (default first) time `name` is reached, or with `:panic` panics on the thread
/// that reached it (to test that a panic fails the database instead of hanging it). Read
/// once from the environment; [`arm_failpoint`] arms one in-process.
pub(crate) fn failpoint(name: &str) {
    failpoint_from_env();
    if !FAILPOINT_ARMED.load(Ordering::Relaxed) {
        return;
    }
    let fire = {
        let mut g = FAILPOINT.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *g {
            Some(s) if s.name == name => {
                s.hits += 1;
                (s.hits == s.nth).then_some(s.panic)
            }
            _ => None,
        }
    };
    match fire {
        Some(true) => panic!("uringdb: failpoint {name} reached: panicking (test)"),
        Some(false) => {
            eprintln!("uringdb: failpoint {name} reached: aborting");
            std::process::abort();
        }
        None => {}
    }
}

/// Test seam: arms the crash point `spec` (`<name>[:<n>][:panic]`, as `URINGDB_FAILPOINT`)
/// for this process, replacing any other; `None` disarms. Not for production use.
#[doc(hidden)]
pub fn arm_failpoint(spec: Option<&str>) {
    failpoint_from_env();
    let spec = spec.and_then(FailSpec::parse);
    FAILPOINT_ARMED.store(spec.is_some(), Ordering::SeqCst);
    *FAILPOINT.lock().unwrap_or_else(|e| e.into_inner()) = spec;
}
