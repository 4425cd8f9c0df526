//! One writer inserting while three readers scan the same memtable without locks.
//!
//! The writer applies operation `seq` (1, 2, ...) and then publishes `seq`, as the committer
//! publishes the visible sequence number after applying a group. Every 7th operation deletes
//! the key put 3 operations earlier; every other operation puts a fresh key whose value is a
//! checksum of key and sequence number followed by a variable-length filler.
//!
//! Readers check, over and over while the writer runs:
//! * every scan of internal entries is strictly sorted, and every entry it meets — published
//!   or not yet — is fully formed (its value matches the checksum of its key and sequence
//!   number; deletions have empty values);
//! * the visible view at the published sequence number `s` holds exactly the
//!   `s - 2 * (s / 7)` live keys, sorted, in both directions;
//! * point reads of the newest published key find it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use uringdb_lsm::internal_key::ValueKind;
use uringdb_lsm::memtable::{Lookup, MemTable, MemTableOptions};

/// Operations the writer applies.
const OPS: u64 = 30_000;
const READERS: usize = 3;

/// A bijection on u64 (so that keys are distinct and arrive in random order).
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn key(seq: u64) -> [u8; 8] {
    mix(seq).to_be_bytes()
}

fn is_delete(seq: u64) -> bool {
    seq.is_multiple_of(7)
}

fn value(key: &[u8], seq: u64) -> Vec<u8> {
    let mut v = checksum(key, seq).to_le_bytes().to_vec();
    v.resize(4 + (seq % 61) as usize, seq as u8);
    v
}

fn checksum(key: &[u8], seq: u64) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(key), &seq.to_le_bytes())
}

fn check_value(key: &[u8], seq: u64, value: &[u8]) {
    assert_eq!(
        value.len(),
        4 + (seq % 61) as usize,
        "value length of {key:?}@{seq}"
    );
    assert_eq!(
        value[..4],
        checksum(key, seq).to_le_bytes(),
        "checksum of {key:?}@{seq}"
    );
    assert!(
        value[4..].iter().all(|&b| b == seq as u8),
        "filler of {key:?}@{seq}"
    );
}

/// Live keys after operations `1..=s`: puts minus deletes, each delete removing a put.
fn live_keys(s: u64) -> usize {
    (s - 2 * (s / 7)) as usize
}

/// Checks one short scan of internal entries from `start` (sorted, fully formed entries).
fn short_scan(m: &MemTable, start: &[u8]) -> u64 {
    let mut it = m.iter();
    it.seek(start);
    let mut prev: Option<(&[u8], u64)> = None;
    let mut n = 0;
    for e in it.take(50) {
        let (k, seq) = (e.key.user_key(), e.key.seq());
        assert!(k >= start);
        if let Some((pk, pseq)) = prev {
            assert!((pk, std::cmp::Reverse(pseq)) < (k, std::cmp::Reverse(seq)));
        }
        if e.key.kind() == ValueKind::Put {
            check_value(k, seq, e.value);
        }
        prev = Some((k, seq));
        n += 1;
    }
    n
}

/// Returns (full scans, short scans made while the writer was still writing, entries checked).
fn reader(m: &MemTable, published: &AtomicU64, done: &AtomicBool) -> (u64, u64, u64) {
    let mut scans = 0;
    let mut short_scans_while_writing = 0;
    let mut entries_seen = 0;
    let mut probe = 0u64;
    loop {
        // Short scans from random places: many of them overlap the writer's inserts.
        for _ in 0..20 {
            probe += 1;
            entries_seen += short_scan(m, &mix(probe ^ 0x5555).to_be_bytes());
            if !done.load(Ordering::Relaxed) {
                short_scans_while_writing += 1;
            }
        }
        let finished = done.load(Ordering::Acquire);
        let s = published.load(Ordering::Acquire);

        let mut prev: Option<(Vec<u8>, u64)> = None;
        let mut n = 0u64;
        for e in m.iter() {
            let k = e.key.user_key();
            let seq = e.key.seq();
            if let Some((pk, pseq)) = &prev {
                assert!(
                    (&pk[..], std::cmp::Reverse(*pseq)) < (k, std::cmp::Reverse(seq)),
                    "unsorted: {pk:?}@{pseq} then {k:?}@{seq}"
                );
            }
            match e.key.kind() {
                ValueKind::Put => check_value(k, seq, e.value),
                ValueKind::Delete => {
                    assert!(is_delete(seq) && e.value.is_empty());
                    assert_eq!(k, key(seq - 3));
                }
                other => panic!("unexpected kind {other:?}"),
            }
            prev = Some((k.to_vec(), seq));
            n += 1;
        }
        assert!(n >= s, "scan saw {n} entries, {s} published");
        entries_seen += n;

        let forward: Vec<_> = m
            .visible(s, (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded))
            .collect();
        assert_eq!(forward.len(), live_keys(s), "visible keys at {s}");
        assert!(forward.windows(2).all(|w| w[0].0 < w[1].0));
        if scans % 4 == 0 {
            let backward = m
                .visible(s, (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded))
                .rev()
                .count();
            assert_eq!(backward, live_keys(s), "visible keys at {s}, reversed");
        }
        if s > 0 && !is_delete(s) {
            let k = key(s);
            match m.get(&k, s) {
                Lookup::Found(v) => check_value(&k, s, v),
                other => panic!("get of the newest key {k:?}@{s}: {other:?}"),
            }
        }
        scans += 1;
        if finished {
            return (scans, short_scans_while_writing, entries_seen);
        }
    }
}

#[test]
fn one_writer_three_scanning_readers() {
    let m = Arc::new(MemTable::with_options(MemTableOptions {
        capacity_bytes: 64 << 20,
        // Small chunks: many chunk switches while readers traverse.
        chunk_bytes: 16 << 10,
        seed: 99,
    }));
    let published = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (m, published, done) = (m.clone(), published.clone(), done.clone());
            std::thread::spawn(move || reader(&m, &published, &done))
        })
        .collect();
    for seq in 1..=OPS {
        if is_delete(seq) {
            m.delete(&key(seq - 3), seq).expect("capacity is ample");
        } else {
            let k = key(seq);
            m.put(&k, seq, &value(&k, seq)).expect("capacity is ample");
        }
        published.store(seq, Ordering::Release);
        if seq % 1000 == 0 {
            // Let readers in on a busy two-core machine.
            std::thread::yield_now();
        }
    }
    done.store(true, Ordering::Release);
    for r in readers {
        let (scans, short_while_writing, entries) = r.join().expect("reader");
        eprintln!(
            "reader: {scans} full scans, {short_while_writing} short scans during writes, \
             {entries} entries checked"
        );
        assert!(scans >= 2, "a reader scanned only {scans} times");
    }
    assert_eq!(m.len() as u64, OPS);
    assert_eq!(
        m.visible(
            OPS,
            (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        )
        .count(),
        live_keys(OPS)
    );
}
