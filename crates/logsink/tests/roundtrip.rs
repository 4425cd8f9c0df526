//! Lines written come back in order, identical, across blocks and segment rotations; the
//! reader skips blocks a time or level filter excludes; options are validated.

mod common;

use std::time::Duration;

use common::*;
use uringdb_logsink::{LogSink, ReadFilter, SinkError, SinkOptions, SyncMode};

fn small(sync: SyncMode) -> SinkOptions {
    SinkOptions {
        backend: backend(),
        sync,
        block_raw_bytes: 4096,
        ring_bytes: 1 << 16,
        segment_bytes: 64 * 1024,
        ..SinkOptions::default()
    }
}

#[test]
fn lines_come_back_in_order_across_blocks_and_segments() {
    let dir = TempDir::new("roundtrip");
    let lines: Vec<String> = (0..20_000)
        .map(|i| line(i, 30, 1_700_000_000_000 + i as i64))
        .collect();
    {
        let (sink, report) = LogSink::open(
            dir.path(),
            small(SyncMode::Interval(Duration::from_millis(5))),
        )
        .unwrap();
        assert_eq!(report.lines, 0);
        for l in &lines {
            sink.write(l.as_bytes()).unwrap();
        }
        sink.close().unwrap();
        let st = sink.stats();
        assert_eq!(st.lines, 20_000);
        assert!(st.blocks > 10, "{st:?}");
        assert!(st.segments_created >= 1, "rotation happened: {st:?}");
        assert!(st.stored_bytes * 5 < st.raw_bytes, "compressed: {st:?}");
    }
    assert_eq!(read_all(real_vfs(), dir.path()), lines);
    // Reopen and append: sequence numbers continue.
    let (sink, report) = LogSink::open(dir.path(), small(SyncMode::Always)).unwrap();
    assert_eq!(report.lines, 20_000);
    assert_eq!(report.cut_bytes, 0);
    sink.write(b"{\"level\":50,\"msg\":\"no newline\"}")
        .unwrap();
    sink.write(b"a\nb\n\n").unwrap();
    sink.close().unwrap();
    let all = read_all(real_vfs(), dir.path());
    assert_eq!(all.len(), 20_003);
    assert_eq!(
        &all[20_000..],
        ["{\"level\":50,\"msg\":\"no newline\"}\n", "a\n", "b\n"]
    );
}

#[test]
fn filters_read_only_blocks_that_can_match() {
    let dir = TempDir::new("filter");
    let (sink, _) = LogSink::open(dir.path(), small(SyncMode::None)).unwrap();
    // 2000 lines, one second apart; one warn line in 200.
    for i in 0..2000u64 {
        let level = if i % 200 == 7 { 40 } else { 30 };
        sink.write(line(i, level, 1_000_000 + i as i64 * 1000).as_bytes())
            .unwrap();
    }
    sink.close().unwrap();
    let (all, all_stats) = read_filtered(real_vfs(), dir.path(), ReadFilter::default());
    assert_eq!(all.len(), 2000);
    assert_eq!(all_stats.blocks_read, all_stats.blocks_seen);

    // The last 1% by time.
    let since = 1_000_000 + 1980 * 1000;
    let (tail, st) = read_filtered(
        real_vfs(),
        dir.path(),
        ReadFilter {
            since: Some(since),
            ..Default::default()
        },
    );
    assert_eq!(tail, all[1980..]);
    assert!(
        st.blocks_read <= 2,
        "read {} of {} blocks",
        st.blocks_read,
        st.blocks_seen
    );

    let (range, _) = read_filtered(
        real_vfs(),
        dir.path(),
        ReadFilter {
            since: Some(1_000_000 + 10_000),
            until: Some(1_000_000 + 19_000),
            ..Default::default()
        },
    );
    assert_eq!(range, all[10..20]);

    let (warns, st) = read_filtered(
        real_vfs(),
        dir.path(),
        ReadFilter {
            min_level: Some(40),
            ..Default::default()
        },
    );
    assert_eq!(warns.len(), 10);
    assert!(warns.iter().all(|l| l.starts_with("{\"level\":40")));
    assert!(
        st.blocks_read < st.blocks_seen,
        "level bits skipped blocks: {st:?}"
    );

    let (grep, _) = read_filtered(
        real_vfs(),
        dir.path(),
        ReadFilter {
            contains: Some(b"request 1999\"".to_vec()),
            ..Default::default()
        },
    );
    assert_eq!(grep, all[1999..]);
}

#[test]
fn invalid_options_name_their_field() {
    let dir = TempDir::new("options");
    let cases: Vec<(SinkOptions, &str)> = vec![
        (
            SinkOptions {
                ring_bytes: 100_000,
                ..SinkOptions::default()
            },
            "ringBytes",
        ),
        (
            SinkOptions {
                block_raw_bytes: 10,
                ..SinkOptions::default()
            },
            "blockBytes",
        ),
        (
            SinkOptions {
                segment_bytes: 1,
                ..SinkOptions::default()
            },
            "segmentBytes",
        ),
        (
            SinkOptions {
                zstd_level: 99,
                ..SinkOptions::default()
            },
            "compressionLevel",
        ),
        (
            SinkOptions {
                sync: SyncMode::Interval(Duration::ZERO),
                ..SinkOptions::default()
            },
            "syncIntervalMs",
        ),
        (
            SinkOptions {
                trace_field: "a\"b".into(),
                ..SinkOptions::default()
            },
            "traceField",
        ),
    ];
    for (o, field) in cases {
        match LogSink::open(dir.path(), o) {
            Err(SinkError::InvalidOption { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn a_second_sink_on_the_directory_is_refused_and_closed_sinks_refuse_writes() {
    let dir = TempDir::new("lock");
    let (sink, _) = LogSink::open(dir.path(), small(SyncMode::None)).unwrap();
    assert!(matches!(
        LogSink::open(dir.path(), small(SyncMode::None)),
        Err(SinkError::Locked(_))
    ));
    let long = vec![b'x'; sink.line_bytes_max() + 1];
    assert!(matches!(
        sink.write(&long),
        Err(SinkError::LineTooLong { .. })
    ));
    sink.close().unwrap();
    assert!(matches!(sink.write(b"late\n"), Err(SinkError::Closed)));
    // Closing released the directory (the handle is still alive).
    let (again, _) = LogSink::open(dir.path(), small(SyncMode::None)).unwrap();
    again.close().unwrap();
    sink.close().unwrap();
}

#[test]
fn a_full_ring_waits_or_drops_but_never_loses_accepted_lines() {
    let dir = TempDir::new("full");
    let (sink, _) = LogSink::open(dir.path(), small(SyncMode::None)).unwrap();
    let mut accepted = Vec::new();
    let mut dropped = 0;
    for i in 0..20_000u64 {
        let l = line(i, 20, i as i64);
        if sink.try_write(l.as_bytes()).unwrap() {
            accepted.push(l);
        } else {
            dropped += 1;
        }
    }
    sink.close().unwrap();
    assert_eq!(sink.stats().dropped_full, dropped);
    assert_eq!(read_all(real_vfs(), dir.path()), accepted);
}

#[test]
fn a_reader_follows_a_store_being_written() {
    let dir = TempDir::new("follow");
    let (sink, _) = LogSink::open(dir.path(), small(SyncMode::Always)).unwrap();
    let mut reader =
        uringdb_logsink::LogReader::open(real_vfs(), dir.path(), ReadFilter::default()).unwrap();
    assert_eq!(reader.next_lines(1 << 20).unwrap().1, 0);
    let mut got = Vec::new();
    let mut want = Vec::new();
    for round in 0..20u64 {
        for i in 0..300 {
            let l = line(round * 1000 + i, 30, 0);
            sink.write(l.as_bytes()).unwrap();
            want.push(l);
        }
        sink.flush_sync().unwrap();
        loop {
            let (bytes, n) = reader.next_lines(1 << 20).unwrap();
            if n == 0 {
                break;
            }
            got.extend(
                String::from_utf8(bytes)
                    .unwrap()
                    .lines()
                    .map(|l| format!("{l}\n")),
            );
        }
        assert_eq!(got, want, "round {round}");
    }
    sink.close().unwrap();
}
