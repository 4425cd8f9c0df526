//! Sampling in a running sink: what the sampler drops never reaches the store, ERROR lines
//! always do, drops are counted by level and reason in `stats()`, and a summary line says
//! what was dropped. (The sampler's semantics on a fake clock are unit tests in
//! `src/sampler.rs`.)

mod common;

use std::time::Duration;

use common::*;
use uringdb_logsink::format::level;
use uringdb_logsink::sampler::{LevelSampling, SamplingOptions};
use uringdb_logsink::{LogSink, SinkOptions, SyncMode};

#[test]
fn sampled_lines_are_dropped_counted_and_summarized() {
    let dir = TempDir::new("sampling");
    let options = SinkOptions {
        backend: backend(),
        sync: SyncMode::None,
        sampling: SamplingOptions {
            // One window for the whole test.
            tick_ms: 3_600_000,
            levels: [
                None,
                None,
                Some(LevelSampling {
                    first: 10,
                    thereafter: 0,
                }),
                None,
            ],
            trace_info_cap: Some(50),
            summary_ms: 100,
        },
        ..SinkOptions::default()
    };
    let (sink, _) = LogSink::open(dir.path(), options).unwrap();
    for i in 0..100 {
        sink.write(
            format!("{{\"level\":30,\"time\":{i},\"msg\":\"tick\",\"i\":{i}}}\n").as_bytes(),
        )
        .unwrap();
        if i % 20 == 0 {
            sink.write(
                format!("{{\"level\":50,\"time\":{i},\"msg\":\"tick\",\"i\":{i}}}\n").as_bytes(),
            )
            .unwrap();
        }
    }
    // A kept trace (its first line is the key "req"'s first) with 60 INFO lines in a row.
    for i in 0..60 {
        sink.write(
            format!("{{\"level\":30,\"traceId\":\"T\",\"msg\":\"req\",\"i\":{i}}}\n").as_bytes(),
        )
        .unwrap();
    }
    sink.flush_sync().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Wake the writer so it writes its summary, then close.
    sink.write(b"{\"level\":50,\"msg\":\"last\"}\n").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let stats = sink.stats();
    sink.close().unwrap();
    assert_eq!(stats.dropped.0[level::INFO as usize], [90, 10], "{stats:?}");
    assert_eq!(stats.dropped.0[level::ERROR as usize], [0, 0]);

    let lines = read_all(real_vfs(), dir.path());
    let info_tick = lines
        .iter()
        .filter(|l| l.starts_with("{\"level\":30,\"time\""))
        .count();
    let errors = lines
        .iter()
        .filter(|l| l.starts_with("{\"level\":50"))
        .count();
    let traced = lines
        .iter()
        .filter(|l| l.contains("\"traceId\":\"T\""))
        .count();
    assert_eq!(info_tick, 10);
    assert_eq!(errors, 6);
    assert_eq!(
        traced, 50,
        "the trace's lines past 50 in a row are silenced"
    );
    let summary: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("uringdb: dropped"))
        .collect();
    assert_eq!(summary.len(), 1, "{lines:#?}");
    assert!(
        summary[0].contains("dropped 90 info lines in the last 0.1 s: sampling"),
        "{}",
        summary[0]
    );
    assert!(
        summary[0].contains("dropped 10 info lines in the last 0.1 s: trace_cap"),
        "{}",
        summary[0]
    );
}
