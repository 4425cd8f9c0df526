//! Edits and state.

use super::helpers::*;
use uringdb_lsm::manifest::{FileMeta, ManifestState, VersionEdit, NUM_LEVELS};

#[test]
fn random_edits_round_trip_through_their_encoding() {
    let mut rng = Rng::new(1);
    for i in 0..3000 {
        let e = arbitrary_edit(&mut rng);
        let mut out = Vec::new();
        e.encode(&mut out);
        assert_eq!(VersionEdit::decode(&out).as_ref(), Ok(&e), "edit {i}");
        // Appending to a buffer that already holds bytes leaves them alone.
        let mut prefixed = vec![0xAA];
        e.encode(&mut prefixed);
        assert_eq!(&prefixed[1..], &out[..]);
        // Every strict prefix either fails or decodes to a different (shorter) edit.
        for n in 0..out.len() {
            if let Ok(d) = VersionEdit::decode(&out[..n]) {
                assert_ne!(d, e, "edit {i} prefix {n}");
            }
        }
    }
}

#[test]
fn random_bytes_never_panic_the_decoder() {
    let mut rng = Rng::new(2);
    for _ in 0..20_000 {
        let b = rng.bytes(40);
        let _ = VersionEdit::decode(&b);
    }
    // Mutations of valid encodings: the interesting neighbourhood.
    for _ in 0..2000 {
        let mut out = Vec::new();
        arbitrary_edit(&mut rng).encode(&mut out);
        if out.is_empty() {
            continue;
        }
        let i = rng.below(out.len() as u64) as usize;
        out[i] = rng.next() as u8;
        if let Ok(e) = VersionEdit::decode(&out) {
            // Whatever decodes re-encodes to something that decodes to the same edit.
            let mut again = Vec::new();
            e.encode(&mut again);
            assert_eq!(VersionEdit::decode(&again), Ok(e));
        }
    }
}

#[test]
fn random_valid_edits_apply_and_the_snapshot_reproduces_the_state() {
    for seed in 0..20 {
        let mut rng = Rng::new(100 + seed);
        let mut s = base_state();
        // Model: number -> (level, meta).
        let mut model: std::collections::BTreeMap<u64, (usize, FileMeta)> = s
            .levels
            .iter()
            .enumerate()
            .flat_map(|(l, fs)| fs.iter().map(move |f| (f.number, (l, f.clone()))))
            .collect();
        for step in 0..60 {
            let e = valid_edit(&mut rng, &s);
            s.apply(&e)
                .unwrap_or_else(|r| panic!("seed {seed} step {step}: {r}"));
            for (_, n) in &e.deleted {
                model.remove(n);
            }
            for (l, f) in &e.added {
                model.insert(f.number, (*l as usize, f.clone()));
            }
            assert_ordered(&s);
            let mut live: Vec<u64> = s.live_files();
            live.sort_unstable();
            assert_eq!(live, model.keys().copied().collect::<Vec<_>>());
            for (l, files) in s.levels.iter().enumerate() {
                for f in files {
                    assert_eq!(model[&f.number], (l, f.clone()));
                }
            }
            assert!(live.iter().all(|&n| n < s.next_file_number));
            let mut t = ManifestState::new(CMP);
            t.apply(&s.snapshot_edit()).unwrap();
            assert_eq!(t, s, "seed {seed} step {step}");
        }
    }
}

#[test]
fn apply_rules() {
    let s = base_state();
    let reject = |e: VersionEdit, needle: &str| {
        let mut t = s.clone();
        let err = t.apply(&e).unwrap_err();
        assert!(err.contains(needle), "{e:?}: {err}");
        assert_eq!(t, s, "a rejected edit changed the state");
    };
    reject(
        VersionEdit {
            deleted: vec![(1, 3)],
            ..Default::default()
        },
        "does not hold it",
    );
    reject(
        VersionEdit {
            deleted: vec![(0, 99)],
            ..Default::default()
        },
        "does not hold it",
    );
    reject(
        VersionEdit {
            added: vec![(2, meta(3, b"a", b"b", (1, 1)))],
            ..Default::default()
        },
        "already live",
    );
    reject(
        VersionEdit {
            added: vec![(NUM_LEVELS as u32, meta(5, b"a", b"b", (1, 1)))],
            ..Default::default()
        },
        "levels",
    );
    reject(
        VersionEdit {
            deleted: vec![(NUM_LEVELS as u32, 3)],
            ..Default::default()
        },
        "levels",
    );
    reject(
        VersionEdit {
            comparator: Some("uringdb.bytewise".into()),
            ..Default::default()
        },
        "comparator mismatch",
    );
    reject(
        VersionEdit {
            added: vec![(2, meta(10, b"a", b"b", (1, 1)))],
            ..Default::default()
        },
        "next_file_number is 10",
    );
    reject(
        VersionEdit {
            next_file_number: Some(9),
            ..Default::default()
        },
        "go back",
    );
    // Accepted: the same comparator, a trivial move, counters.
    let mut t = s.clone();
    t.apply(&VersionEdit {
        comparator: Some(CMP.into()),
        deleted: vec![(0, 3)],
        added: vec![(1, meta(3, b"a", b"m", (40, 50)))],
        flushed_seq: Some(51),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        t.levels[1].iter().map(|f| f.number).collect::<Vec<_>>(),
        vec![3, 2]
    );
    assert_eq!(t.flushed_seq, 51);
}
