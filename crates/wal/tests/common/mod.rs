//! Shared helpers for the WAL's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use uringdb_wal::{CompletionSink, GroupInfo, Producer, Wal, WalError, WalOptions};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "uringdb-wal-{tag}-{}-{}",
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

/// Outcome of one append as seen by a sink.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Ok(u64),
    Err(String, Option<i32>),
}

/// Collects completions in order.
#[derive(Default)]
pub struct Sink {
    pub outcomes: Mutex<Vec<Outcome>>,
    cv: Condvar,
}

impl CompletionSink for Sink {
    fn completed(&self, seqs: &[u64], _group: &GroupInfo) {
        let mut o = self.outcomes.lock().unwrap();
        o.extend(seqs.iter().map(|&s| Outcome::Ok(s)));
        self.cv.notify_all();
    }
    fn failed(&self, count: usize, error: &WalError) {
        let mut o = self.outcomes.lock().unwrap();
        for _ in 0..count {
            o.push(Outcome::Err(error.to_string(), error.raw_os_error()));
        }
        self.cv.notify_all();
    }
}

impl Sink {
    /// Waits until at least `n` outcomes arrived; returns them all.
    pub fn wait(&self, n: usize) -> Vec<Outcome> {
        let mut o = self.outcomes.lock().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while o.len() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {n} completions, have {}",
                o.len()
            );
            o = self.cv.wait_timeout(o, left).unwrap().0;
        }
        o.clone()
    }
}

pub fn producer(wal: &Wal) -> (Producer, Arc<Sink>) {
    let sink = Arc::new(Sink::default());
    (wal.producer(sink.clone()), sink)
}

/// Reads every record from the start.
pub fn read_all(wal: &Wal) -> Result<Vec<(u64, Vec<u8>)>, WalError> {
    read_from(wal, 0)
}

pub fn read_from(wal: &Wal, from: u64) -> Result<Vec<(u64, Vec<u8>)>, WalError> {
    let mut cur = wal.cursor(from)?;
    let mut out = Vec::new();
    loop {
        let b = wal.read(&mut cur, u64::MAX, 1000, 1 << 20)?;
        if b.records.is_empty() {
            return Ok(out);
        }
        for (seq, start, len) in b.records {
            out.push((seq, b.data[start..start + len].to_vec()));
        }
    }
}

pub fn small_options() -> WalOptions {
    WalOptions {
        segment_bytes: 1 << 20,
        ring_bytes: 1 << 20,
        ..WalOptions::default()
    }
}

/// Deterministic record contents for record number `i`.
pub fn record(i: u64) -> Vec<u8> {
    let len = (i * 7919 % 300) as usize;
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

/// A tiny deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
