//! Durability with an I/O layer that drops unsynced data (FaultVfs): every line a
//! `flush_sync` covered survives a crash, what survives is a prefix of what was written,
//! torn tails (prefixes and reordered pages) are cut at open, and a failed fdatasync or
//! write latches the sink with its errno kept.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use uringdb_logsink::{FaultConfig, FaultVfs, LogSink, SinkError, SinkOptions, SyncMode};
use uringdb_uring::Vfs;

fn opts(sync: SyncMode) -> SinkOptions {
    SinkOptions {
        backend: backend(),
        sync,
        block_raw_bytes: 4096,
        ring_bytes: 1 << 16,
        segment_bytes: 128 * 1024,
        ..SinkOptions::default()
    }
}

#[derive(Clone, Copy, Debug)]
enum Crash {
    Drop,
    Torn(u64),
    Pages(u64),
}

/// Writes `rounds` rounds of lines, flushing after each but the last, crashes, reopens:
/// returns (written, flushed count, read back).
fn crash_run(sync: SyncMode, crash: Crash, rounds: u64) -> (Vec<String>, usize, Vec<String>) {
    let dir = TempDir::new("crash");
    let fault = fault_vfs(FaultConfig::default());
    let vfs: Arc<dyn Vfs> = fault.clone();
    let mut written = Vec::new();
    let mut flushed = 0;
    {
        let (sink, _) = LogSink::open_with_vfs(vfs.clone(), dir.path(), opts(sync)).unwrap();
        for r in 0..rounds {
            for i in 0..700 {
                let l = line(r * 1000 + i, 30, (r * 1000 + i) as i64);
                sink.write(l.as_bytes()).unwrap();
                written.push(l);
            }
            if r + 1 < rounds {
                sink.flush_sync().unwrap();
                flushed = written.len();
            }
        }
        // Let the writer put some unsynced blocks into the "page cache".
        std::thread::sleep(Duration::from_millis(20));
        match crash {
            Crash::Drop => fault.crash(),
            Crash::Torn(seed) => fault.crash_torn(seed),
            Crash::Pages(seed) => fault.crash_pages(seed),
        }
        // Closing after the crash fails (the handles are dead) and writes nothing.
        let _ = sink.close();
    }
    let (sink, _report) = LogSink::open_with_vfs(vfs.clone(), dir.path(), opts(sync)).unwrap();
    sink.close().unwrap();
    let got = read_all(vfs, dir.path());
    (written, flushed, got)
}

fn check(written: &[String], flushed: usize, got: &[String], what: &str) {
    assert!(
        got.len() >= flushed,
        "{what}: {} lines back, {flushed} were flushed",
        got.len()
    );
    assert!(
        got.len() <= written.len(),
        "{what}: more lines than written"
    );
    assert_eq!(
        got,
        &written[..got.len()],
        "{what}: not a prefix of what was written"
    );
}

#[test]
fn flushed_lines_survive_a_crash_that_drops_unsynced_data() {
    for sync in [
        SyncMode::None,
        SyncMode::Interval(Duration::from_millis(1000)),
        SyncMode::Always,
    ] {
        let (written, flushed, got) = crash_run(sync, Crash::Drop, 6);
        check(&written, flushed, &got, &format!("{sync:?}"));
        if sync == SyncMode::None {
            // Nothing synced the last round: exactly the flushed lines come back. (Fails
            // if flush_sync returned before its fdatasync, or if unsynced bytes survived.)
            assert_eq!(got.len(), flushed);
        }
    }
}

#[test]
fn torn_tails_and_reordered_pages_are_cut_at_open() {
    for seed in 0..12 {
        let (written, flushed, got) = crash_run(SyncMode::None, Crash::Torn(seed), 4);
        check(&written, flushed, &got, &format!("torn seed {seed}"));
        let (written, flushed, got) = crash_run(SyncMode::None, Crash::Pages(seed), 4);
        check(&written, flushed, &got, &format!("pages seed {seed}"));
    }
}

#[test]
fn a_failed_fdatasync_latches_the_sink() {
    let dir = TempDir::new("syncfail");
    // Sync 1 is the new segment's header; sync 2 is the first flush.
    let fault = fault_vfs(FaultConfig {
        fail_sync_nth: Some(2),
        ..FaultConfig::default()
    });
    let (sink, _) =
        LogSink::open_with_vfs(fault.clone(), dir.path(), opts(SyncMode::None)).unwrap();
    sink.write(b"{\"level\":30}\n").unwrap();
    let err = sink.flush_sync().unwrap_err();
    assert!(matches!(err, SinkError::Failed(_)), "{err:?}");
    assert!(err.to_string().contains("fdatasync"), "{err}");
    assert!(matches!(sink.write(b"after\n"), Err(SinkError::Failed(_))));
    assert!(matches!(sink.flush_sync(), Err(SinkError::Failed(_))));
    assert!(sink.close().is_err());
}

#[test]
fn enospc_is_an_error_that_keeps_its_errno_and_nothing_panics() {
    let dir = TempDir::new("enospc");
    let fault: Arc<FaultVfs> = fault_vfs(FaultConfig {
        fail_write_after_bytes: Some(64 * 1024),
        errno: libc_enospc(),
        ..FaultConfig::default()
    });
    let (sink, _) =
        LogSink::open_with_vfs(fault.clone(), dir.path(), opts(SyncMode::Always)).unwrap();
    let mut failed = None;
    for i in 0..20_000u64 {
        if let Err(e) = sink.write(line(i, 30, 0).as_bytes()) {
            failed = Some(e);
            break;
        }
    }
    let e = failed
        .or_else(|| sink.flush_sync().err())
        .expect("the sink fails");
    assert!(e.to_string().contains("No space left on device"), "{e}");
    assert_eq!(e.errno(), Some(libc_enospc()), "{e:?}");
    let _ = sink.close();
}

fn libc_enospc() -> i32 {
    28
}
