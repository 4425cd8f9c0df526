//! Helpers shared by the integration tests: temporary directories, backends, child processes.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use uringdb_uring::{open_vfs, BackendChoice, Vfs};

/// A directory removed (with its contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "uringdb-uring-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Both real backends (io_uring only when this kernel allows it; the reason is printed
/// otherwise), with a label for assertion messages.
pub fn real_backends() -> Vec<(&'static str, Arc<dyn Vfs>)> {
    let mut out: Vec<(&'static str, Arc<dyn Vfs>)> = Vec::new();
    match open_vfs(BackendChoice::IoUring) {
        Ok((vfs, _)) => out.push(("io_uring", vfs)),
        Err(e) => eprintln!("SKIPPING the io_uring backend: {e}"),
    }
    out.push(("portable", open_vfs(BackendChoice::Portable).unwrap().0));
    out
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(seed as u64) as u8 ^ (i >> 8) as u8)
        .collect()
}

/// Re-runs the current test binary, running only the test `name`, with `env` set (the child
/// test does its work only when it sees its env var). Returns the child's output.
pub fn run_child_test(name: &str, env: &[(&str, &str)]) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Asserts a child run succeeded, showing its output otherwise.
pub fn assert_child_ok(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what}: child failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints "running 0 tests" when the name did not match: catch typos.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("running 1 test"),
        "{what}: the child test did not run:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
