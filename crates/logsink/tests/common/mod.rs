//! Shared helpers for the log sink's integration tests.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use uringdb_logsink::{open_vfs, BackendChoice, FaultConfig, FaultVfs, LogReader, ReadFilter};
use uringdb_uring::Vfs;

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "uringdb-logsink-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The backend under test: `URINGDB_TEST_BACKEND` (io_uring | portable), default auto.
pub fn backend() -> BackendChoice {
    match std::env::var("URINGDB_TEST_BACKEND").as_deref() {
        Ok("io_uring") => BackendChoice::IoUring,
        Ok("portable") => BackendChoice::Portable,
        _ => BackendChoice::Auto,
    }
}

pub fn real_vfs() -> Arc<dyn Vfs> {
    open_vfs(backend()).expect("backend opens").0
}

pub fn fault_vfs(config: FaultConfig) -> Arc<FaultVfs> {
    FaultVfs::new(real_vfs(), config)
}

/// A pino-shaped line: level, time, pid, a trace id, a message with its number.
pub fn line(i: u64, level: u32, time: i64) -> String {
    format!(
        "{{\"level\":{level},\"time\":{time},\"pid\":4242,\"hostname\":\"web-1\",\"traceId\":\"t{}\",\"req\":{{\"method\":\"GET\",\"url\":\"/api/items/{}\"}},\"msg\":\"request {i}\"}}\n",
        i / 10,
        i % 97
    )
}

/// Every line of the store, in order.
pub fn read_all(vfs: Arc<dyn Vfs>, dir: &Path) -> Vec<String> {
    read_filtered(vfs, dir, ReadFilter::default()).0
}

/// The lines a filter returns, and the reader's stats.
pub fn read_filtered(
    vfs: Arc<dyn Vfs>,
    dir: &Path,
    filter: ReadFilter,
) -> (Vec<String>, uringdb_logsink::ReadStats) {
    let mut r = LogReader::open(vfs, dir, filter).expect("reader opens");
    let mut out = Vec::new();
    loop {
        let (bytes, n) = r.next_lines(1 << 20).expect("reads");
        if n == 0 {
            break;
        }
        let text = String::from_utf8(bytes).unwrap();
        out.extend(text.lines().map(|l| format!("{l}\n")));
    }
    (out, r.stats())
}
