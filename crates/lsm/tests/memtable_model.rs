//! Seeded random model test of the memtable against a `BTreeMap` of
//! `(user key, Reverse(seq)) -> Option<value>` (`None`: a deletion): random puts and deletes
//! with increasing sequence numbers, gets at random snapshots, seeks of the internal
//! iterator, and visible-at-snapshot scans with random bounds in both directions (and both
//! ends at once). Every result must be identical.
//!
//! Reproduce a failure with `MEMTABLE_MODEL_SEED=<seed> cargo test -p uringdb-lsm --test
//! memtable_model`.

mod common;

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use common::SplitMix as Rng;
use uringdb_lsm::internal_key::ValueKind;
use uringdb_lsm::memtable::{Lookup, MemTable, MemTableOptions};

type Model = BTreeMap<(Vec<u8>, Reverse<u64>), Option<Vec<u8>>>;

/// Operations per seed.
const OPS: usize = 5000;

/// The shared splitmix64, with a picker for this test.
impl Rng {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Short keys over a tiny alphabet, so that keys prefix each other ("", "a", "a\0", "a\xff").
fn key_pool(rng: &mut Rng) -> Vec<Vec<u8>> {
    let alphabet = [0u8, 1, b'a', b'b', 0xfe, 0xff];
    let mut keys: Vec<Vec<u8>> = (0..120)
        .map(|_| {
            let len = rng.below(5) as usize;
            (0..len).map(|_| *rng.pick(&alphabet)).collect()
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn model_get(model: &Model, key: &[u8], snap: u64) -> Lookup<'static> {
    match model.range((key.to_vec(), Reverse(snap))..).next() {
        Some(((k, _), v)) if k == key => match v {
            Some(_) => Lookup::Found(b"<model>"),
            None => Lookup::Deleted,
        },
        _ => Lookup::NotFound,
    }
}

fn in_bounds(key: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    (match lo {
        Unbounded => true,
        Included(l) => key >= &l[..],
        Excluded(l) => key > &l[..],
    }) && (match hi {
        Unbounded => true,
        Included(h) => key <= &h[..],
        Excluded(h) => key < &h[..],
    })
}

/// The model's visible view: per user key, the newest version `<= snap`, if a put.
fn model_visible(
    model: &Model,
    snap: u64,
    lo: &Bound<Vec<u8>>,
    hi: &Bound<Vec<u8>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut last: Option<&Vec<u8>> = None;
    for ((k, Reverse(seq)), v) in model {
        if *seq > snap || last == Some(k) || !in_bounds(k, lo, hi) {
            continue;
        }
        last = Some(k);
        if let Some(v) = v {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

fn random_bound(rng: &mut Rng, pool: &[Vec<u8>]) -> Bound<Vec<u8>> {
    match rng.below(3) {
        0 => Unbounded,
        1 => Included(rng.pick(pool).clone()),
        _ => Excluded(rng.pick(pool).clone()),
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Unbounded => Unbounded,
        Included(k) => Included(&k[..]),
        Excluded(k) => Excluded(&k[..]),
    }
}

fn all_entries(m: &MemTable) -> Vec<(Vec<u8>, u64, Option<Vec<u8>>)> {
    m.iter()
        .map(|e| {
            let v = (e.key.kind() == ValueKind::Put).then(|| e.value.to_vec());
            (e.key.user_key().to_vec(), e.key.seq(), v)
        })
        .collect()
}

fn model_entries(model: &Model) -> Vec<(Vec<u8>, u64, Option<Vec<u8>>)> {
    model
        .iter()
        .map(|((k, Reverse(s)), v)| (k.clone(), *s, v.clone()))
        .collect()
}

fn run(seed: u64) {
    let mut rng = Rng(seed);
    let pool = key_pool(&mut rng);
    let m = MemTable::with_options(MemTableOptions {
        capacity_bytes: 64 << 20,
        // Small chunks: many chunk switches and some dedicated chunks for large values.
        chunk_bytes: 4096,
        seed,
    });
    let mut model = Model::new();
    let mut seq = 0u64;
    for op in 0..OPS {
        let ctx = format!("seed {seed}, op {op}, seq {seq}");
        let snap = match rng.below(10) {
            0 => u64::MAX,
            1 => seq,
            _ => rng.below(seq + 2),
        };
        match rng.below(100) {
            0..45 => {
                seq += 1;
                let key = rng.pick(&pool).clone();
                let len = match rng.below(50) {
                    0 => 2000 + rng.below(3000) as usize,
                    _ => rng.below(40) as usize,
                };
                let value: Vec<u8> = (0..len).map(|i| (seq as usize + i) as u8).collect();
                m.put(&key, seq, &value).expect("capacity is ample");
                model.insert((key, Reverse(seq)), Some(value));
            }
            45..60 => {
                seq += 1;
                let key = rng.pick(&pool).clone();
                m.delete(&key, seq).expect("capacity is ample");
                model.insert((key, Reverse(seq)), None);
            }
            60..72 => {
                let key = rng.pick(&pool);
                let want = model_get(&model, key, snap);
                let got = m.get(key, snap);
                match (got, want) {
                    (Lookup::Found(v), Lookup::Found(_)) => {
                        let ((_, _), mv) = model
                            .range((key.clone(), Reverse(snap))..)
                            .next()
                            .expect("found in the model");
                        assert_eq!(Some(v), mv.as_deref(), "{ctx}: get {key:?}@{snap}");
                    }
                    (got, want) => assert_eq!(got, want, "{ctx}: get {key:?}@{snap}"),
                }
            }
            72..82 => {
                let key = rng.pick(&pool);
                let n = rng.below(12) as usize;
                let mut it = m.iter();
                it.seek(key);
                let got: Vec<_> = it
                    .take(n)
                    .map(|e| {
                        let v = (e.key.kind() == ValueKind::Put).then(|| e.value.to_vec());
                        (e.key.user_key().to_vec(), e.key.seq(), v)
                    })
                    .collect();
                let want: Vec<_> = model
                    .range((key.clone(), Reverse(u64::MAX))..)
                    .take(n)
                    .map(|((k, Reverse(s)), v)| (k.clone(), *s, v.clone()))
                    .collect();
                assert_eq!(got, want, "{ctx}: seek {key:?}");
            }
            82..99 => {
                let lo = random_bound(&mut rng, &pool);
                let hi = random_bound(&mut rng, &pool);
                let want = model_visible(&model, snap, &lo, &hi);
                let mut it = m.visible(snap, (as_ref(&lo), as_ref(&hi)));
                let ctx = format!("{ctx}: visible@{snap} {lo:?}..{hi:?}");
                match rng.below(3) {
                    0 => {
                        let got: Vec<_> = it.map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                        assert_eq!(got, want, "{ctx} forward");
                    }
                    1 => {
                        let mut got: Vec<_> =
                            it.rev().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                        got.reverse();
                        assert_eq!(got, want, "{ctx} reverse");
                    }
                    _ => {
                        // Both ends at once, in a random order, until both are exhausted.
                        let mut want = std::collections::VecDeque::from(want);
                        loop {
                            let (got, expect) = if rng.below(2) == 0 {
                                (it.next(), want.pop_front())
                            } else {
                                (it.next_back(), want.pop_back())
                            };
                            let got = got.map(|(k, v)| (k.to_vec(), v.to_vec()));
                            assert_eq!(got, expect, "{ctx} both ends");
                            if got.is_none() {
                                assert!(it.next().is_none() && it.next_back().is_none());
                                break;
                            }
                        }
                    }
                }
            }
            _ => {
                assert_eq!(all_entries(&m), model_entries(&model), "{ctx}: full scan");
                assert_eq!(m.len(), model.len(), "{ctx}");
            }
        }
    }
    assert_eq!(
        all_entries(&m),
        model_entries(&model),
        "seed {seed}: final scan"
    );
    assert!(m.approximate_bytes() <= m.reserved_bytes());
}

#[test]
fn memtable_matches_a_btreemap() {
    if let Some(seed) = std::env::var("MEMTABLE_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed);
        return;
    }
    for seed in [1, 2, 3, 0xdead_beef, 20_240_611] {
        run(seed);
    }
}
