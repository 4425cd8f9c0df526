//! `durable_bench`: durable appends per second on one I/O backend, as one JSON line. Run by
//! the kernel matrix (`scripts/kernels/`) with each backend in each guest kernel, and on the
//! host for comparison.
//!
//! ```text
//! durable_bench --dir /mnt/tmp --backend io_uring|portable|auto [--record-bytes 100]
//!               [--duration-ms 1000] [--window 64]
//! ```
//!
//! Two timed loops, each on a fresh log in a new directory under `--dir`:
//!
//! - `serial`: one writer, one record in flight: append with `sync: true`, wait for its
//!   completion, repeat. Every record pays a whole write + fdatasync: the backend's
//!   round trip.
//! - `grouped`: up to `--window` records in flight (`sync: true` each), topped up as
//!   completions arrive, so that group commit shares each fdatasync among many records.
//!
//! After each loop the log is closed, reopened on the same backend, and every acknowledged
//! record must be there (`verified`); a mismatch or an error exits 1. Prints, for example:
//!
//! ```text
//! {"requested":"io_uring","backend":"io_uring","fallbackReason":null,"recordBytes":100,
//!  "serial":{"records":812,"seconds":1.001,"opsPerSec":811.2,"verified":true},
//!  "grouped":{"records":20480,"seconds":1.002,"opsPerSec":20439.1,"groups":330,"verified":true}}
//! ```
//!
//! When the backend cannot be opened (`io_uring` where the kernel refuses it) it prints
//! `{"requested":"io_uring","error":"..."}` and exits 2, so that the caller can tell a refusal
//! from a failure.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use uringdb_wal::{BackendChoice, CompletionSink, GroupInfo, Wal, WalError, WalOptions};

/// Largest record accepted by `--record-bytes` (the bench measures small durable writes).
const RECORD_BYTES_MAX: usize = 1 << 20;
/// Largest `--window` (records in flight in the grouped loop).
const WINDOW_MAX: u64 = 1 << 16;
/// Longest `--duration-ms` per loop.
const DURATION_MS_MAX: u64 = 600_000;
/// How long a loop waits for an outstanding completion before it calls the log stuck.
const COMPLETION_WAIT_MAX: Duration = Duration::from_secs(60);

struct Args {
    dir: PathBuf,
    backend: BackendChoice,
    backend_name: String,
    record_bytes: usize,
    duration: Duration,
    window: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: std::env::temp_dir(),
        backend: BackendChoice::Auto,
        backend_name: "auto".to_string(),
        record_bytes: 100,
        duration: Duration::from_millis(1_000),
        window: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
        let number = |v: &str, max: u64| -> Result<u64, String> {
            match v.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!("{name}: {v:?} is not a number in 1..={max}")),
            }
        };
        match name.as_str() {
            "--dir" => args.dir = PathBuf::from(value),
            "--backend" => {
                args.backend = match value.as_str() {
                    "auto" => BackendChoice::Auto,
                    "io_uring" => BackendChoice::IoUring,
                    "portable" => BackendChoice::Portable,
                    _ => {
                        return Err(format!(
                            "--backend: {value:?} (accepted: auto, io_uring, portable)"
                        ))
                    }
                };
                args.backend_name = value;
            }
            "--record-bytes" => {
                args.record_bytes = number(&value, RECORD_BYTES_MAX as u64)? as usize
            }
            "--duration-ms" => {
                args.duration = Duration::from_millis(number(&value, DURATION_MS_MAX)?)
            }
            "--window" => args.window = number(&value, WINDOW_MAX)?,
            _ => return Err(format!("unknown flag {name}")),
        }
    }
    Ok(args)
}

/// Counts completions and groups; wakes the loop waiting for them.
#[derive(Default)]
struct Sink {
    done: Mutex<u64>,
    cond: Condvar,
    groups: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl CompletionSink for Sink {
    fn completed(&self, seqs: &[u64], _group: &GroupInfo) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        *done += seqs.len() as u64;
        self.cond.notify_all();
    }

    fn failed(&self, count: usize, error: &WalError) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{count} appends failed: {error}"));
        self.cond.notify_all();
    }
}

impl Sink {
    fn done(&self) -> u64 {
        *self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until at least `target` appends completed; an error on failure or when none
    /// completes for [`COMPLETION_WAIT_MAX`].
    fn wait_done(&self, target: u64) -> Result<(), String> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while *done < target {
            if let Some(f) = self
                .failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                return Err(f);
            }
            let (guard, timeout) = self
                .cond
                .wait_timeout(done, COMPLETION_WAIT_MAX)
                .unwrap_or_else(|e| e.into_inner());
            done = guard;
            if timeout.timed_out() && *done < target {
                return Err(format!(
                    "no completion for {COMPLETION_WAIT_MAX:?} ({} of {target} done)",
                    *done
                ));
            }
        }
        Ok(())
    }
}

/// Why a loop stopped: the backend could not be opened (a refusal), or anything else.
enum Failure {
    Open(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Other(e)
    }
}

/// One loop's result.
struct Run {
    /// `"backend":…,"fallbackReason":…` as the log reports them (`Wal::probe`).
    backend: String,
    records: u64,
    seconds: f64,
    groups: u64,
}

fn options(args: &Args) -> WalOptions {
    WalOptions {
        backend: args.backend,
        ..WalOptions::default()
    }
}

/// Runs one loop on a fresh log in `dir` with at most `window` records in flight, then
/// reopens the log and checks that every acknowledged record is there.
fn run(args: &Args, dir: &Path, window: u64) -> Result<Run, Failure> {
    let (wal, _) = Wal::open(dir, &options(args)).map_err(|e| Failure::Open(e.to_string()))?;
    let report = wal.probe();
    let backend = format!(
        "\"backend\":{},\"fallbackReason\":{}",
        json_str(report.backend.as_str()),
        report
            .fallback_reason
            .as_deref()
            .map_or_else(|| "null".to_string(), json_str)
    );
    let sink = Arc::new(Sink::default());
    let producer = wal.producer(sink.clone());
    let record = vec![0xA5u8; args.record_bytes];
    let start = Instant::now();
    let mut appended = 0u64;
    while start.elapsed() < args.duration {
        let done = sink.done();
        if appended - done < window {
            producer
                .append(&record, true)
                .map_err(|e| format!("append: {e}"))?;
            appended += 1;
        } else {
            // `window` records in flight: wait for the oldest.
            sink.wait_done(appended - window + 1)?;
        }
    }
    sink.wait_done(appended)?;
    let seconds = start.elapsed().as_secs_f64();
    let groups = sink.groups.load(Ordering::Relaxed);
    drop(producer);
    wal.close().map_err(|e| format!("close: {e}"))?;
    drop(wal);

    let (wal, _) = Wal::open(dir, &options(args)).map_err(|e| format!("reopen: {e}"))?;
    let last = wal.last_seq();
    wal.close()
        .map_err(|e| format!("close after reopen: {e}"))?;
    if last != appended {
        return Err(format!("reopen found {last} records, {appended} were acknowledged").into());
    }
    Ok(Run {
        backend,
        records: appended,
        seconds,
        groups,
    })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("durable_bench: {e}");
            eprintln!(
                "usage: durable_bench --dir DIR --backend auto|io_uring|portable \
                 [--record-bytes N] [--duration-ms N] [--window N]"
            );
            std::process::exit(2);
        }
    };
    let base = args.dir.join(format!(
        "uringdb-durable-bench-{}-{}",
        args.backend_name,
        std::process::id()
    ));
    let requested = json_str(&args.backend_name);
    let mut backend = String::new();
    let mut results = Vec::new();
    for (name, window) in [("serial", 1), ("grouped", args.window)] {
        match run(&args, &base.join(name), window) {
            Ok(r) => {
                backend = r.backend;
                results.push(format!(
                    "\"{name}\":{{\"records\":{},\"seconds\":{:.3},\"opsPerSec\":{:.1},\
                     \"groups\":{},\"verified\":true}}",
                    r.records,
                    r.seconds,
                    r.records as f64 / r.seconds,
                    r.groups
                ))
            }
            Err(failure) => {
                let (code, e) = match failure {
                    Failure::Open(e) => (2, format!("open: {e}")),
                    Failure::Other(e) => (1, format!("{name}: {e}")),
                };
                println!("{{\"requested\":{requested},\"error\":{}}}", json_str(&e));
                let _ = std::fs::remove_dir_all(&base);
                std::process::exit(code);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    println!(
        "{{\"requested\":{requested},{backend},\"recordBytes\":{},{}}}",
        args.record_bytes,
        results.join(",")
    );
}

/// A JSON string literal (quotes, backslashes and control characters escaped).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
