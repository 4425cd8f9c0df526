//! The disk-space guard in the writer thread, on the real file system's statvfs: with the
//! watermarks set to 100% the guard engages on any disk that is not entirely free, so the
//! test does not need to fill one (the tmpfs fill test lives on the JavaScript side).

mod common;

use common::*;
use uringdb_logsink::diskguard::{DiskGuardOptions, GuardState};
use uringdb_logsink::{LogSink, SinkError, SinkOptions, SyncMode};

fn with_guard(low_pct: f64, critical_pct: f64) -> SinkOptions {
    SinkOptions {
        backend: backend(),
        sync: SyncMode::Always,
        disk_guard: Some(DiskGuardOptions {
            low_pct,
            critical_pct,
            ..DiskGuardOptions::default()
        }),
        ..SinkOptions::default()
    }
}

fn write_levels(opts: SinkOptions, name: &str) -> (Vec<String>, uringdb_logsink::SinkStats) {
    let dir = TempDir::new(name);
    let (sink, _) = LogSink::open(dir.path(), opts).unwrap();
    for (i, lvl) in [20u32, 30, 40, 50, 60, 30].into_iter().enumerate() {
        sink.write(line(i as u64, lvl, 1_700_000_000_000).as_bytes())
            .unwrap();
    }
    sink.close().unwrap();
    let st = sink.stats();
    (read_all(real_vfs(), dir.path()), st)
}

fn levels(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .map(|l| {
            uringdb_logsink::line::scan(l.as_bytes(), b"")
                .level
                .unwrap()
        })
        .collect()
}

#[test]
fn critical_keeps_only_error_and_fatal_and_counts_the_rest() {
    let (lines, st) = write_levels(with_guard(100.0, 100.0), "guard-critical");
    assert_eq!(levels(&lines), [50, 60]);
    assert_eq!(st.disk_state, GuardState::Critical);
    assert_eq!(st.disk_transitions, 1);
    assert_eq!(st.dropped_disk.iter().sum::<u64>(), 4, "{st:?}");
}

#[test]
fn low_drops_under_warn() {
    let (lines, st) = write_levels(with_guard(100.0, 0.0), "guard-low");
    assert_eq!(levels(&lines), [40, 50, 60]);
    assert_eq!(st.disk_state, GuardState::Low);
    assert_eq!(st.dropped_disk.iter().sum::<u64>(), 3, "{st:?}");
}

#[test]
fn off_or_plenty_of_space_keeps_everything() {
    let (lines, st) = write_levels(with_guard(0.0, 0.0), "guard-normal");
    assert_eq!(lines.len(), 6);
    assert_eq!(
        (st.disk_state, st.disk_transitions),
        (GuardState::Normal, 0)
    );
    let (lines, _) = write_levels(
        SinkOptions {
            disk_guard: None,
            ..with_guard(100.0, 100.0)
        },
        "guard-off",
    );
    assert_eq!(lines.len(), 6);
}

#[test]
fn bad_watermarks_name_the_field() {
    let dir = TempDir::new("guard-bad");
    let err = LogSink::open(dir.path(), with_guard(1.0, 2.0))
        .err()
        .unwrap();
    assert!(
        matches!(&err, SinkError::InvalidOption { field: "diskGuard", message } if message.contains("criticalPct")),
        "{err:?}"
    );
}
