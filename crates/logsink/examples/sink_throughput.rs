//! The sink alone, without JavaScript: one producer thread writes pino-shaped HTTP request
//! lines as fast as it can, then flushes; prints lines/s and MB/s of raw NDJSON.
//!
//!   cargo run --release -p uringdb-logsink --example sink_throughput -- [lines] [dir]

use std::time::Instant;

use uringdb_logsink::{LogSink, SinkOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("a line count"));
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join(format!("uringdb-sink-throughput-{}", std::process::id())),
        Into::into,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{{\"level\":30,\"time\":{},\"pid\":4242,\"hostname\":\"web-1\",\"reqId\":\"req-{i:08x}\",\"traceId\":\"t-{:x}\",\"req\":{{\"method\":\"GET\",\"url\":\"/api/orders/{}\",\"headers\":{{\"host\":\"api.example.com\",\"user-agent\":\"curl/8.5.0\"}}}},\"res\":{{\"statusCode\":200}},\"userId\":{},\"responseTime\":{}.5,\"msg\":\"request completed\"}}\n",
                1_733_600_000_000u64 + i as u64 / 50,
                i / 5,
                i % 100_000,
                i % 10_000,
                i % 97
            )
        })
        .collect();
    let raw: usize = lines.iter().map(String::len).sum();
    let (sink, _) = LogSink::open(&dir, SinkOptions::default()).expect("open");
    let t0 = Instant::now();
    for l in &lines {
        sink.write(l.as_bytes()).expect("write");
    }
    let written = t0.elapsed();
    sink.flush_sync().expect("flush");
    let total = t0.elapsed();
    let st = sink.stats();
    sink.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{n} lines, {:.1} MB NDJSON: writes {:.0} ns/line; with the final flush {:.0} lines/s, {:.0} MB/s; stored {:.1}x smaller; ring-full waits {}",
        raw as f64 / 1e6,
        written.as_nanos() as f64 / n as f64,
        n as f64 / total.as_secs_f64(),
        raw as f64 / total.as_secs_f64() / 1e6,
        st.raw_bytes as f64 / st.stored_bytes as f64,
        st.full_waits
    );
}
