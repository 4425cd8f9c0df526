//! `rawsync`: what the device gives a plain loop of `write` + `fdatasync`.
//!
//! The yardstick for the workload benchmark (`benchmark/log/workload.mjs`): one thread, no engine,
//! no io_uring, no batching other than the size of each write. For every (mode, size) pair it
//! runs a warm-up, then a timed loop of "write `bytes_per_write` bytes, then `fdatasync`", and
//! prints one JSON line:
//!
//! ```text
//! {"mode":"prealloc","bytesPerWrite":102400,"writes":1234,"seconds":1.5,"writesPerSec":822.6,
//!  "p50Us":1180.2,"p99Us":2410.0,"p999Us":3100.4,"maxUs":4000.1,"MBps":84.2,"fileBytes":67108864}
//! ```
//!
//! Modes (each on a fresh file in `--dir`, removed afterwards):
//!
//! - `append`: the file grows with every write, so each `fdatasync` also commits the new file
//!   size (a journal commit on ext4/xfs). This is what a naive log does.
//! - `prealloc`: the file is zero-filled with real writes and fsynced before the loop, then
//!   overwritten in place (wrapping around at its end, like a recycled WAL segment), so
//!   `fdatasync` flushes data only. This is the device's best case.
//! - `fallocate`: the file is reserved with `fallocate(2)` (unwritten extents) before the loop
//!   and written forward, never wrapping: when the reserved region is used up, the next one is
//!   reserved (inside the timed loop, outside the per-write latency), like a log moving to its
//!   next preallocated segment. Every write lands on an unwritten extent, so `fdatasync` still
//!   commits the extent conversion. This is what a segment preallocated with `fallocate` costs.
//!
//! Usage (built by `cargo build --release -p uringdb-uring --example rawsync`):
//!
//! ```text
//! rawsync --dir /tmp [--sizes 100,6400,102400,1048576] [--modes append,prealloc,fallocate]
//!         [--duration-ms 1500] [--warmup-ms 200] [--region-bytes N]
//! ```
//!
//! Only std: the single `fallocate` call goes through the C library std already links.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Region overwritten in place by the `prealloc` and `fallocate` modes, at least this many bytes.
const REGION_BYTES_MIN: u64 = 64 << 20;
/// ... and at least this many writes long, so that wrap-around is rare.
const REGION_WRITES_MIN: u64 = 16;
/// ... and never more than this (the zero-fill is written before every timed loop).
const REGION_BYTES_MAX: u64 = 1 << 30;
/// Chunk used to zero-fill a `prealloc` file.
const ZERO_CHUNK_BYTES: usize = 1 << 20;
/// Latency samples kept per loop; past it the loop still runs but stops recording.
const SAMPLES_MAX: usize = 4 << 20;
/// Largest write accepted by `--sizes`.
const WRITE_BYTES_MAX: u64 = 256 << 20;

extern "C" {
    // From the C library that std links on Linux (glibc and musl both export it).
    fn fallocate(fd: i32, mode: i32, offset: i64, len: i64) -> i32;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Append,
    Prealloc,
    Fallocate,
}

impl Mode {
    fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "append" => Ok(Mode::Append),
            "prealloc" => Ok(Mode::Prealloc),
            "fallocate" => Ok(Mode::Fallocate),
            _ => Err(format!(
                "unknown mode {s:?} (accepted: append, prealloc, fallocate)"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Append => "append",
            Mode::Prealloc => "prealloc",
            Mode::Fallocate => "fallocate",
        }
    }
}

struct Args {
    dir: PathBuf,
    sizes: Vec<u64>,
    modes: Vec<Mode>,
    duration: Duration,
    warmup: Duration,
    region_bytes: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: std::env::temp_dir(),
        sizes: vec![100, 6_400, 102_400, 1 << 20],
        modes: vec![Mode::Append, Mode::Prealloc, Mode::Fallocate],
        duration: Duration::from_millis(1_500),
        warmup: Duration::from_millis(200),
        region_bytes: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        if name == "--help" || name == "-h" {
            return Err(String::new());
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{name}: {v:?}: {e}"));
        match name.as_str() {
            "--dir" => args.dir = PathBuf::from(value),
            "--sizes" => {
                args.sizes = value.split(',').map(number).collect::<Result<_, _>>()?;
                if let Some(bad) = args.sizes.iter().find(|&&s| s == 0 || s > WRITE_BYTES_MAX) {
                    return Err(format!("--sizes: {bad} is outside 1..={WRITE_BYTES_MAX}"));
                }
            }
            "--modes" => {
                args.modes = value
                    .split(',')
                    .map(Mode::parse)
                    .collect::<Result<_, _>>()?
            }
            "--duration-ms" => args.duration = Duration::from_millis(number(&value)?),
            "--warmup-ms" => args.warmup = Duration::from_millis(number(&value)?),
            "--region-bytes" => args.region_bytes = Some(number(&value)?),
            _ => return Err(format!("unknown flag {name}")),
        }
    }
    Ok(args)
}

/// Size of the in-place region for writes of `bytes_per_write`, a whole number of writes.
fn region_bytes(bytes_per_write: u64, requested: Option<u64>) -> u64 {
    let wanted = requested.unwrap_or_else(|| {
        (bytes_per_write * REGION_WRITES_MIN).clamp(REGION_BYTES_MIN, REGION_BYTES_MAX)
    });
    (wanted / bytes_per_write).max(1) * bytes_per_write
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let offset = i64::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    let len = i64::try_from(len).map_err(|_| io::Error::other("region too large"))?;
    // SAFETY: `file` is open for writing for the whole call, so the fd is valid; fallocate only
    // reads its integer arguments and touches no memory of ours.
    let rc = unsafe { fallocate(file.as_raw_fd(), 0, offset, len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates the file for one loop and prepares it as `mode` says; returns its region size
/// (0 for `append`).
fn prepare(
    path: &Path,
    mode: Mode,
    bytes_per_write: u64,
    requested: Option<u64>,
) -> io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let region = match mode {
        Mode::Append => 0,
        Mode::Prealloc => {
            let region = region_bytes(bytes_per_write, requested);
            let zeros = vec![0u8; ZERO_CHUNK_BYTES];
            let mut offset = 0u64;
            while offset < region {
                let n = (region - offset).min(ZERO_CHUNK_BYTES as u64) as usize;
                file.write_all_at(&zeros[..n], offset)?;
                offset += n as u64;
            }
            region
        }
        Mode::Fallocate => {
            let region = region_bytes(bytes_per_write, requested);
            reserve(&file, 0, region)?;
            region
        }
    };
    // Make the creation, the size and (for prealloc) the zeros durable before timing starts.
    file.sync_all()?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok((file, region))
}

struct Loop {
    writes: u64,
    elapsed: Duration,
    latencies_ns: Vec<u64>,
}

/// Writes `buf` then fdatasyncs, over and over, until `duration` has passed.
fn run_loop(
    file: &mut File,
    mode: Mode,
    region: u64,
    offset: &mut u64,
    buf: &[u8],
    duration: Duration,
    record: bool,
) -> io::Result<Loop> {
    let mut latencies_ns = Vec::with_capacity(if record { SAMPLES_MAX.min(1 << 16) } else { 0 });
    let start = Instant::now();
    let mut writes = 0u64;
    loop {
        if mode == Mode::Fallocate && (*offset).is_multiple_of(region) && *offset > 0 {
            reserve(file, *offset, region)?;
        }
        if mode == Mode::Prealloc && *offset == region {
            *offset = 0;
        }
        let t0 = Instant::now();
        if mode == Mode::Append {
            file.write_all(buf)?;
        } else {
            file.write_all_at(buf, *offset)?;
            *offset += buf.len() as u64;
        }
        file.sync_data()?;
        let t1 = Instant::now();
        writes += 1;
        if record && latencies_ns.len() < SAMPLES_MAX {
            latencies_ns.push(t1.duration_since(t0).as_nanos() as u64);
        }
        if t1.duration_since(start) >= duration {
            return Ok(Loop {
                writes,
                elapsed: t1.duration_since(start),
                latencies_ns,
            });
        }
    }
}

/// The `p`-th percentile (0..=100) of sorted samples, in microseconds (nearest rank).
fn percentile_us(sorted_ns: &[u64], p: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_ns.len() as f64).ceil() as usize;
    sorted_ns[rank.clamp(1, sorted_ns.len()) - 1] as f64 / 1_000.0
}

fn measure(args: &Args, mode: Mode, bytes_per_write: u64, buf: &[u8]) -> io::Result<String> {
    let path = args.dir.join(format!(
        "rawsync-{}-{}-{}.dat",
        std::process::id(),
        mode.name(),
        bytes_per_write
    ));
    let result = (|| {
        let (mut file, region) = prepare(&path, mode, bytes_per_write, args.region_bytes)?;
        let mut offset = 0u64;
        if !args.warmup.is_zero() {
            run_loop(
                &mut file,
                mode,
                region,
                &mut offset,
                buf,
                args.warmup,
                false,
            )?;
        }
        let mut l = run_loop(
            &mut file,
            mode,
            region,
            &mut offset,
            buf,
            args.duration,
            true,
        )?;
        l.latencies_ns.sort_unstable();
        let seconds = l.elapsed.as_secs_f64();
        let writes_per_sec = l.writes as f64 / seconds;
        let file_bytes = file.metadata()?.len();
        Ok(format!(
            concat!(
                "{{\"mode\":\"{}\",\"bytesPerWrite\":{},\"writes\":{},\"seconds\":{:.4},",
                "\"writesPerSec\":{:.1},\"p50Us\":{:.1},\"p99Us\":{:.1},\"p999Us\":{:.1},\"maxUs\":{:.1},",
                "\"MBps\":{:.2},\"fileBytes\":{}}}"
            ),
            mode.name(),
            bytes_per_write,
            l.writes,
            seconds,
            writes_per_sec,
            percentile_us(&l.latencies_ns, 50.0),
            percentile_us(&l.latencies_ns, 99.0),
            percentile_us(&l.latencies_ns, 99.9),
            percentile_us(&l.latencies_ns, 100.0),
            writes_per_sec * bytes_per_write as f64 / 1e6,
            file_bytes,
        ))
    })();
    let _ = fs::remove_file(&path);
    result
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("rawsync: {msg}");
            }
            eprintln!(
                "usage: rawsync [--dir DIR] [--sizes 100,6400,102400,1048576] \
                 [--modes append,prealloc,fallocate] [--duration-ms 1500] [--warmup-ms 200] [--region-bytes N]"
            );
            return ExitCode::from(2);
        }
    };
    // Incompressible, non-zero bytes (xorshift), so no layer can shortcut zero pages.
    let largest = args.sizes.iter().copied().max().unwrap_or(0) as usize;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let buf: Vec<u8> = (0..largest)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let stdout = io::stdout();
    for &mode in &args.modes {
        for &size in &args.sizes {
            match measure(&args, mode, size, &buf[..size as usize]) {
                Ok(line) => {
                    let mut out = stdout.lock();
                    // A closed pipe ends the run quietly.
                    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                        return ExitCode::SUCCESS;
                    }
                }
                Err(e) => {
                    eprintln!(
                        "rawsync: {} {} B in {}: {e}",
                        mode.name(),
                        size,
                        args.dir.display()
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
