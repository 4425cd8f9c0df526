//! `uringdb-fuzz`: the command line of the fuzz harness (see the crate documentation of
//! `uringdb_fuzz` for what it checks). Exit status: 0 when every target passed, 1 when one
//! failed, 2 for a usage error, 3 when the watchdog found a hang.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use uringdb_fuzz::runner::{self, Config};
use uringdb_fuzz::targets::{self, Env};

const USAGE: &str = "usage: uringdb-fuzz --list
       uringdb-fuzz <target|all> [seconds] [--seed N] [--iterations N] [--hang-seconds N]
       uringdb-fuzz <target> --replay FILE...";

struct Args {
    target: String,
    seconds: Option<f64>,
    iterations: Option<u64>,
    seed: Option<u64>,
    hang_seconds: u64,
    replay: Vec<PathBuf>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        target: String::new(),
        seconds: None,
        iterations: None,
        seed: None,
        hang_seconds: 30,
        replay: Vec::new(),
    };
    let num = |what: &str, v: Option<String>| -> Result<u64, String> {
        v.ok_or(format!("{what} needs a value"))?
            .parse()
            .map_err(|e| format!("{what}: {e}"))
    };
    let mut replaying = false;
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--list" => return Ok(None),
            "-h" | "--help" => return Err(String::new()),
            "--seed" => a.seed = Some(num("--seed", argv.next())?),
            "--iterations" => a.iterations = Some(num("--iterations", argv.next())?),
            "--hang-seconds" => a.hang_seconds = num("--hang-seconds", argv.next())?,
            "--replay" => replaying = true,
            _ if replaying => a.replay.push(PathBuf::from(arg)),
            _ if a.target.is_empty() => a.target = arg,
            _ if a.seconds.is_none() => {
                a.seconds = Some(arg.parse().map_err(|e| format!("seconds {arg:?}: {e}"))?)
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if a.target.is_empty() {
        return Err("which target? (--list shows them)".into());
    }
    if replaying && a.replay.is_empty() {
        return Err("--replay needs at least one file".into());
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    let all = targets::all();
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            for t in &all {
                println!("{:<20} {}", t.name, t.about);
            }
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            if !e.is_empty() {
                eprintln!("uringdb-fuzz: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let chosen: Vec<&targets::Target> = if args.target == "all" {
        all.iter().collect()
    } else {
        match all.iter().find(|t| t.name == args.target) {
            Some(t) => vec![t],
            None => {
                eprintln!(
                    "uringdb-fuzz: no target {:?} (--list shows them)",
                    args.target
                );
                return ExitCode::from(2);
            }
        }
    };
    let crash_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crashes");
    if !args.replay.is_empty() {
        return replay(chosen[0], &args.replay, &crash_dir);
    }
    // A fresh seed unless one is given; always printed, so any run can be repeated.
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let seconds = match (args.seconds, args.iterations) {
        (None, None) => Some(60.0),
        (s, _) => s,
    };
    let cfg = Config {
        seconds,
        iterations: args.iterations,
        seed,
        hang_seconds: args.hang_seconds,
        crash_dir,
    };
    println!("fuzz: seed {seed}");
    let (mut passed, mut failed) = (0, 0);
    for t in chosen {
        let started = std::time::Instant::now();
        match runner::run(t, &cfg) {
            Ok(s) => {
                passed += 1;
                println!(
                    "fuzz {}: ok, {} inputs ({} accepted, corpus {}) in {:.1}s; largest allocation {} bytes (bound {})",
                    t.name,
                    s.inputs,
                    s.accepted,
                    s.corpus,
                    started.elapsed().as_secs_f64(),
                    s.largest_alloc.0,
                    s.largest_alloc.1
                );
            }
            Err(f) => {
                failed += 1;
                if f.kind == "setup" {
                    eprintln!("fuzz {}: could not start: {}", t.name, f.message);
                }
                println!("fuzz {}: FAILED ({})", t.name, f.kind);
            }
        }
    }
    println!("fuzz result: {passed} passed; {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn replay(target: &targets::Target, files: &[PathBuf], crash_dir: &std::path::Path) -> ExitCode {
    let env = match Env::new(target.name) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("uringdb-fuzz: scratch directory: {e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = 0;
    for (i, path) in files.iter().enumerate() {
        let input = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("uringdb-fuzz: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        let (outcome, largest, limit) = runner::check(target, &env, &input);
        match outcome {
            Ok(accepted) => println!(
                "{}: ok ({}; largest allocation {largest} bytes, bound {limit})",
                path.display(),
                if accepted { "accepted" } else { "rejected" }
            ),
            Err(f) => {
                failed += 1;
                runner::report(target.name, None, i as u64, &f, crash_dir);
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
