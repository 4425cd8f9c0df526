//! The skiplist's unit tests (the loom model is in `loom_model.rs`).

use super::*;
use crate::internal_key::{encode_trailer, ValueKind};

fn list() -> SkipList {
    SkipList::new(Arena::new(4096, 16 << 20), 7)
}

fn collect(list: &SkipList) -> Vec<(Vec<u8>, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut n = list.first();
    while let Some(node) = n {
        let k = node.key();
        out.push((k.user_key().to_vec(), k.seq(), node.value().to_vec()));
        n = node.next(0);
    }
    out
}

#[test]
fn empty() {
    let l = list();
    assert!(l.first().is_none());
    assert!(l.seek(b"a", 0).is_none());
    let (last, next) = l.search(|_| true);
    assert!(last.is_none() && next.is_none());
    assert_eq!(l.len(), 0);
}

#[test]
fn inserts_come_out_sorted_with_their_values() {
    let l = list();
    let mut expected = Vec::new();
    let mut x = 12345u64;
    for seq in 1..=3000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("k{}", x % 500).into_bytes();
        let value = format!("v{seq}-{}", "x".repeat((x % 40) as usize)).into_bytes();
        l.insert(&key, encode_trailer(seq, ValueKind::Put), &value)
            .expect("ample capacity");
        expected.push((key, seq, value));
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    assert_eq!(collect(&l), expected);
    assert_eq!(l.len(), 3000);
    for (key, seq, value) in expected.iter().step_by(7) {
        let n = l
            .seek(key, encode_trailer(*seq, ValueKind::Put))
            .expect("present");
        assert_eq!((n.key().user_key(), n.key().seq()), (&key[..], *seq));
        assert_eq!(n.value(), &value[..]);
    }
}

#[test]
fn search_finds_both_sides_of_the_boundary() {
    let l = list();
    for (i, k) in [b"a", b"c", b"e"].iter().enumerate() {
        l.insert(*k, encode_trailer(i as u64 + 1, ValueKind::Put), b"")
            .expect("ample capacity");
    }
    let (last, next) = l.search(|n| n.key().user_key() < &b"d"[..]);
    assert_eq!(last.map(|n| n.key().user_key()), Some(&b"c"[..]));
    assert_eq!(next.map(|n| n.key().user_key()), Some(&b"e"[..]));
    assert!(l.search(|_| false).0.is_none());
    assert_eq!(
        l.search(|_| true).0.map(|n| n.key().user_key()),
        Some(&b"e"[..])
    );
    assert!(l.search(|_| true).1.is_none());
}

#[test]
fn tall_and_short_towers_interleave() {
    let l = list();
    for (i, h) in [MAX_HEIGHT, 1, 3, MAX_HEIGHT, 2, 1].into_iter().enumerate() {
        let key = [b'a' + (5 - i as u8)];
        l.insert_with_height(&key, encode_trailer(1, ValueKind::Put), &key, h)
            .expect("ample capacity");
    }
    let keys: Vec<_> = collect(&l).into_iter().map(|e| e.0[0]).collect();
    assert_eq!(keys, b"abcdef");
    for k in b"abcdef" {
        assert_eq!(l.seek(&[*k], 0).map(|n| n.value()), Some(&[*k][..]));
    }
}

#[test]
fn full_and_too_large_leave_the_list_unchanged() {
    let l = SkipList::new(Arena::new(1024, 2048), 1);
    let mut n = 0;
    let err = loop {
        match l.insert(&[n as u8], encode_trailer(n, ValueKind::Put), &[0; 100]) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, WriteError::Full(_)), "{err:?}");
    assert_eq!(l.len() as u64, n);
    assert_eq!(collect(&l).len() as u64, n);
    // Not even a key alone fits now; the list still reads fine.
    assert!(l.seek(&[0], 0).is_some());
}
