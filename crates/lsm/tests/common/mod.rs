//! Shared helpers for the LSM's integration tests: a temporary directory, the two tiny
//! seeded generators, the small-database option base and the errno values the failure
//! tests inject and expect.
// Every test binary compiles this module on its own and uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use uringdb_lsm::db::DbOptions;
use uringdb_wal::{BackendChoice, WalOptions};

/// `ENOSPC` on Linux: a full disk.
pub const ENOSPC: i32 = 28;
/// `EIO` on Linux: a failing disk.
pub const EIO: i32 = 5;

/// A temporary directory removed on drop, named after the test binary and a tag.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "uringdb-{}-{tag}-{}-{}",
            env!("CARGO_CRATE_NAME"),
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

/// xorshift64 (13, 7, 17): a tiny seeded generator (no dependencies). The seed must not
/// be zero.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// splitmix64: a tiny deterministic generator; any seed will do.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The base of every small test database: 1 MiB WAL segments and ring on `backend`, the
/// rest default. Each test sets its own sizes and triggers on top with `..small_db(…)`.
pub fn small_db(backend: BackendChoice) -> DbOptions {
    DbOptions {
        wal: WalOptions {
            segment_bytes: 1 << 20,
            ring_bytes: 1 << 20,
            backend,
            ..WalOptions::default()
        },
        ..DbOptions::default()
    }
}
