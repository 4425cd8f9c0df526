//! The runner: feeds a target its seeds, then mutated inputs until the time or iteration
//! budget is spent, and checks each input for the three failures (panic, hang, allocation
//! over the bound). On a failure it shrinks the input, writes it to the crash folder and
//! prints everything needed to reproduce it.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use crate::alloc;
use crate::mutate::{mutate, Rng};
use crate::targets::{Env, Fixtures, Target};

/// Most corpus entries kept (seeds plus accepted mutants); beyond it, an accepted mutant
/// replaces a random earlier mutant.
const CORPUS_MAX: usize = 512;
/// Time spent shrinking a failing input before it is reported.
const SHRINK_BUDGET: Duration = Duration::from_secs(10);

/// How long to run and with what.
#[derive(Clone, Debug)]
pub struct Config {
    /// Stop after this long (after the seeds, which always run).
    pub seconds: Option<f64>,
    /// Stop after this many inputs (seeds included).
    pub iterations: Option<u64>,
    /// The mutator's seed.
    pub seed: u64,
    /// An input that runs longer than this is a hang.
    pub hang_seconds: u64,
    /// Where failing inputs are written (`<dir>/<target>/<kind>-<hash>.bin`).
    pub crash_dir: PathBuf,
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Inputs run, seeds included.
    pub inputs: u64,
    /// Inputs the decoder accepted.
    pub accepted: u64,
    /// Corpus entries at the end.
    pub corpus: usize,
    /// Largest single allocation seen for one input, and that input's bound.
    pub largest_alloc: (usize, u64),
}

/// An input that failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// `panic` or `alloc` (hangs are reported by the watchdog, which ends the process).
    pub kind: &'static str,
    /// What happened.
    pub message: String,
    /// The input (shrunk, once reported).
    pub input: Vec<u8>,
}

// ---- panics ---------------------------------------------------------------------------

/// The message of the last panic on any thread (the hook records it; `check` takes it).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let thread = std::thread::current();
            let bt = std::backtrace::Backtrace::capture();
            let msg = format!(
                "panic on thread '{}': {info}\n{bt}",
                thread.name().unwrap_or("<unnamed>")
            );
            let mut last = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner());
            // Keep the first panic of an input: later ones are usually consequences.
            if last.is_none() {
                *last = Some(msg);
            }
        }));
    });
}

fn take_panic() -> Option<String> {
    LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Runs one input through `target`: `Ok(accepted)`, or the failure. Also returns the
/// largest allocation and the bound it was checked against.
pub fn check(target: &Target, env: &Env, input: &[u8]) -> (Result<bool, Failure>, usize, u64) {
    install_panic_hook();
    let (declared, limit) = target.alloc_limit(input);
    let _ = take_panic();
    let (r, largest) =
        alloc::measure(|| panic::catch_unwind(AssertUnwindSafe(|| (target.run)(env, input))));
    let fail = |kind, message| Failure {
        kind,
        message,
        input: input.to_vec(),
    };
    let outcome = match (r, take_panic()) {
        (Err(_), msg) | (Ok(_), msg @ Some(_)) => Err(fail(
            "panic",
            msg.unwrap_or_else(|| "panic (no message)".into()),
        )),
        (Ok(_), None) if largest as u64 > limit => Err(fail(
            "alloc",
            format!(
                "one allocation of {largest} bytes; the bound is {limit} (input {} bytes, \
                 declared size {declared}, x{} + {} fixed)",
                input.len(),
                target.expansion,
                target.fixed_bytes
            ),
        )),
        (Ok(accepted), None) => Ok(accepted),
    };
    (outcome, largest, limit)
}

// ---- the watchdog ---------------------------------------------------------------------

struct Current {
    started: Option<Instant>,
    iteration: u64,
    input: Vec<u8>,
}

/// A thread that ends the process if one input runs longer than the hang limit: a hung
/// decoder cannot be interrupted, so the watchdog keeps a copy of the current input and
/// reports it itself.
struct Watchdog {
    current: Arc<Mutex<Current>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(target: &'static str, cfg: &Config) -> Watchdog {
        let current = Arc::new(Mutex::new(Current {
            started: None,
            iteration: 0,
            input: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, cfg) = (current.clone(), stop.clone(), cfg.clone());
        let limit = Duration::from_secs(cfg.hang_seconds);
        let thread = std::thread::Builder::new()
            .name("fuzz-watchdog".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    let cur = c.lock().unwrap_or_else(|e| e.into_inner());
                    if cur.started.is_some_and(|t| t.elapsed() > limit) {
                        let f = Failure {
                            kind: "hang",
                            message: format!("one input ran longer than {limit:?}"),
                            input: cur.input.clone(),
                        };
                        report(target, Some(cfg.seed), cur.iteration, &f, &cfg.crash_dir);
                        std::process::exit(3);
                    }
                }
            })
            .ok();
        Watchdog {
            current,
            stop,
            thread,
        }
    }

    fn begin(&self, iteration: u64, input: &[u8]) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        cur.iteration = iteration;
        cur.input.clear();
        cur.input.extend_from_slice(input);
        cur.started = Some(Instant::now());
    }

    fn end(&self) {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .started = None;
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- running --------------------------------------------------------------------------

/// FNV-1a: names crash files by content, and mixes the target name into the seed.
pub fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `target` under `cfg`. On a failure the input is shrunk, written and reported
/// before the `Err` is returned.
pub fn run(target: &Target, cfg: &Config) -> Result<Stats, Failure> {
    let setup = |message: String| Failure {
        kind: "setup",
        message,
        input: Vec::new(),
    };
    let fixtures = Fixtures::load().map_err(|e| setup(format!("loading the fixtures: {e}")))?;
    let mut corpus = (target.seeds)(&fixtures);
    if corpus.is_empty() {
        return Err(setup(format!("{}: no seeds", target.name)));
    }
    let seeds = corpus.len() as u64;
    let env = Env::new(target.name).map_err(|e| setup(format!("scratch directory: {e}")))?;
    let watchdog = Watchdog::start(target.name, cfg);
    let mut rng = Rng::new(cfg.seed ^ fnv64(target.name.as_bytes()));
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut i = 0u64;
    loop {
        let out_of_budget = cfg.iterations.is_some_and(|n| i >= n)
            || cfg
                .seconds
                .is_some_and(|s| started.elapsed().as_secs_f64() >= s);
        if i >= seeds && out_of_budget {
            break;
        }
        let input = if i < seeds {
            corpus[i as usize].clone()
        } else {
            let mut input = corpus[rng.below(corpus.len())].clone();
            let other = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, &mut input, other, target.max_len);
            if let Some(fix) = target.fixup {
                if rng.one_in(2) {
                    fix(&mut input);
                }
            }
            input
        };
        watchdog.begin(i, &input);
        let (outcome, largest, limit) = check(target, &env, &input);
        watchdog.end();
        if largest >= stats.largest_alloc.0 {
            stats.largest_alloc = (largest, limit);
        }
        match outcome {
            Ok(accepted) => {
                if accepted {
                    stats.accepted += 1;
                    if i >= seeds {
                        if corpus.len() < CORPUS_MAX {
                            corpus.push(input);
                        } else {
                            let at = seeds as usize + rng.below(corpus.len() - seeds as usize);
                            corpus[at] = input;
                        }
                    }
                }
            }
            Err(mut f) => {
                f.input = shrink(target, &env, &watchdog, i, f.kind, f.input);
                report(target.name, Some(cfg.seed), i, &f, &cfg.crash_dir);
                return Err(f);
            }
        }
        i += 1;
    }
    stats.inputs = i;
    stats.corpus = corpus.len();
    Ok(stats)
}

/// Greedily removes chunks (halves, then smaller) while the input still fails the same
/// way; bounded by [`SHRINK_BUDGET`].
fn shrink(
    target: &Target,
    env: &Env,
    watchdog: &Watchdog,
    iteration: u64,
    kind: &str,
    input: Vec<u8>,
) -> Vec<u8> {
    let deadline = Instant::now() + SHRINK_BUDGET;
    let fails = |cand: &[u8]| {
        watchdog.begin(iteration, cand);
        let r = check(target, env, cand).0;
        watchdog.end();
        matches!(r, Err(f) if f.kind == kind)
    };
    let mut best = input;
    let mut chunk = best.len() / 2;
    while chunk >= 1 && Instant::now() < deadline {
        let mut at = 0;
        let mut progressed = false;
        while at < best.len() && Instant::now() < deadline {
            let mut cand = best.clone();
            cand.drain(at..(at + chunk).min(best.len()));
            if fails(&cand) {
                best = cand;
                progressed = true;
            } else {
                at += chunk;
            }
        }
        if !progressed {
            chunk /= 2;
        }
    }
    // Leave the panic record clean for whoever checks next.
    let _ = take_panic();
    best
}

/// Writes the failing input to `<crash_dir>/<target>/<kind>-<hash>.bin` and prints the
/// target, seed, iteration, message, path and a hex dump. Returns the path.
pub fn report(
    target: &str,
    seed: Option<u64>,
    iteration: u64,
    f: &Failure,
    crash_dir: &Path,
) -> Option<PathBuf> {
    let dir = crash_dir.join(target);
    let path = dir.join(format!("{}-{:016x}.bin", f.kind, fnv64(&f.input)));
    let written = fs::create_dir_all(&dir)
        .and_then(|()| fs::write(&path, &f.input))
        .is_ok();
    let seed = seed.map_or("none (replay)".into(), |s| s.to_string());
    eprintln!();
    eprintln!(
        "FAILED {target}: {} at input {iteration} (seed {seed})",
        f.kind
    );
    eprintln!("{}", f.message.trim_end());
    if written {
        eprintln!(
            "input ({} bytes) written to {}",
            f.input.len(),
            path.display()
        );
        eprintln!(
            "reproduce: npm run fuzz -- {target} --replay {}",
            path.display()
        );
    } else {
        eprintln!(
            "input ({} bytes) could not be written to {}",
            f.input.len(),
            path.display()
        );
    }
    eprintln!("{}", hex_dump(&f.input, 512));
    written.then_some(path)
}

/// `xxd`-style dump of the first `max` bytes.
pub fn hex_dump(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for (i, line) in bytes[..bytes.len().min(max)].chunks(16).enumerate() {
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = line
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!("{:08x}: {:<47}  {text}\n", i * 16, hex.join(" ")));
    }
    if bytes.len() > max {
        out.push_str(&format!("... ({} more bytes)\n", bytes.len() - max));
    }
    out
}
