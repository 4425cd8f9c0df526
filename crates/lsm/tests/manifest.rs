//! The manifest through its public API: seeded round trips of edits, the rules of
//! `ManifestState::apply`, writer → recover round trips, the CURRENT switch and the removal
//! of old manifests, every corruption case (each bit of a small manifest, truncations, bad
//! CURRENT contents, a missing manifest, records that decode or apply badly), append errors
//! keeping their errno, and the committed v1 fixture. Crash tests live in
//! `manifest_crash.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{TempDir, EIO, ENOSPC};
use uringdb_lsm::internal_key::{self, ValueKind};
use uringdb_lsm::manifest::{
    manifest_file_name, recover, FileMeta, ManifestError, ManifestState, ManifestWriter, Recovered,
    VersionEdit, CURRENT_FILE_NAME, MANIFEST_HEADER_BYTES, NUM_LEVELS, RECORD_HEADER_BYTES,
};
use uringdb_uring::{open_vfs, BackendChoice, FaultConfig, FaultVfs, Vfs};

const CMP: &str = "uringdb.internal_key.v1";

// ---------------------------------------------------------------------------------------
// Helpers

/// xorshift64*: a tiny seeded generator (no dependencies).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, max_len: u64) -> Vec<u8> {
        let n = self.below(max_len + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Mostly small numbers, sometimes huge ones (varint edges).
    fn number(&mut self) -> u64 {
        match self.below(4) {
            0 => self.below(128),
            1 => self.below(1 << 20),
            2 => self.next(),
            _ => u64::MAX - self.below(3),
        }
    }
}

fn portable() -> Arc<dyn Vfs> {
    open_vfs(BackendChoice::Portable).expect("portable vfs").0
}

fn ik(user: &[u8], seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    internal_key::encode(&mut out, user, seq, ValueKind::Put);
    out
}

fn meta(number: u64, lo: &[u8], hi: &[u8], seqs: (u64, u64)) -> FileMeta {
    FileMeta {
        number,
        file_bytes: 1000 + number,
        smallest: ik(lo, seqs.1),
        largest: ik(hi, seqs.0),
        entries: 7 * number,
        smallest_seq: seqs.0,
        largest_seq: seqs.1,
    }
}

fn random_meta(rng: &mut Rng, number: u64) -> FileMeta {
    let a = rng.bytes(12);
    let b = rng.bytes(12);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let s1 = rng.below(1 << 40);
    let s2 = s1 + rng.below(1000);
    FileMeta {
        number,
        file_bytes: rng.number(),
        smallest: ik(&lo, s2),
        largest: ik(&hi, s1),
        entries: rng.number(),
        smallest_seq: s1,
        largest_seq: s2,
    }
}

/// Any edit (it need not apply to anything): for encode/decode round trips.
fn arbitrary_edit(rng: &mut Rng) -> VersionEdit {
    let some = |rng: &mut Rng| (rng.below(2) == 0).then(|| rng.number());
    VersionEdit {
        comparator: (rng.below(2) == 0)
            .then(|| ["", CMP, "uringdb.bytewise", "ünïcødé ✓"][rng.below(4) as usize].to_string()),
        flushed_seq: some(rng),
        next_file_number: some(rng),
        last_seq: some(rng),
        deleted: (0..rng.below(4))
            .map(|_| (rng.next() as u32, rng.number()))
            .collect(),
        added: (0..rng.below(4))
            .map(|_| {
                let n = rng.number();
                (rng.below(NUM_LEVELS as u64 + 2) as u32, random_meta(rng, n))
            })
            .collect(),
        compact_pointers: (0..rng.below(3))
            .map(|_| (rng.below(10) as u32, rng.bytes(20)))
            .collect(),
    }
}

/// An edit that applies to `state`: deletes some live files (re-adding some one level
/// deeper: trivial moves), adds new ones with fresh numbers, moves the counters.
fn valid_edit(rng: &mut Rng, state: &ManifestState) -> VersionEdit {
    let mut e = VersionEdit::default();
    let mut next = state.next_file_number;
    for (level, files) in state.levels.iter().enumerate() {
        for f in files {
            if rng.below(4) == 0 {
                e.deleted.push((level as u32, f.number));
                if level + 1 < NUM_LEVELS && rng.below(3) == 0 {
                    e.added.push((level as u32 + 1, f.clone()));
                }
            }
        }
    }
    for _ in 0..rng.below(4) {
        let level = rng.below(NUM_LEVELS as u64) as u32;
        e.added.push((level, random_meta(rng, next)));
        next += 1 + rng.below(3);
    }
    if !e.added.is_empty() || rng.below(2) == 0 {
        e.next_file_number = Some(next + rng.below(2));
    }
    if rng.below(2) == 0 {
        e.flushed_seq = Some(state.flushed_seq + rng.below(100));
    }
    if rng.below(2) == 0 {
        e.last_seq = Some(state.last_seq + rng.below(100));
    }
    if rng.below(3) == 0 {
        let level = rng.below(NUM_LEVELS as u64) as u32;
        let key = if rng.below(4) == 0 {
            Vec::new()
        } else {
            ik(&rng.bytes(8), rng.below(1 << 30))
        };
        e.compact_pointers.push((level, key));
    }
    e
}

/// A starting state: a few files in level 0 and level 1, next file number 10.
fn base_state() -> ManifestState {
    let mut s = ManifestState::new(CMP);
    s.apply(&VersionEdit {
        next_file_number: Some(10),
        flushed_seq: Some(50),
        last_seq: Some(60),
        added: vec![
            (0, meta(3, b"a", b"m", (40, 50))),
            (0, meta(4, b"c", b"k", (10, 39))),
            (1, meta(2, b"n", b"z", (1, 9))),
        ],
        ..VersionEdit::default()
    })
    .unwrap();
    s
}

/// Checks the ordering contract of `levels`.
fn assert_ordered(s: &ManifestState) {
    assert_eq!(s.levels.len(), NUM_LEVELS);
    assert_eq!(s.compact_pointers.len(), NUM_LEVELS);
    for w in s.levels[0].windows(2) {
        assert!(
            (w[0].largest_seq, w[0].number) > (w[1].largest_seq, w[1].number),
            "level 0 not newest first: {} then {}",
            w[0].number,
            w[1].number
        );
    }
    for level in &s.levels[1..] {
        for w in level.windows(2) {
            assert!(
                internal_key::compare(&w[0].smallest, &w[1].smallest)
                    .then(w[0].number.cmp(&w[1].number))
                    .is_lt(),
                "level not sorted by smallest key"
            );
        }
    }
}

fn corruption(e: &ManifestError) -> (&Path, u64, &str) {
    match e {
        ManifestError::Corruption {
            file,
            offset,
            reason,
        } => (file, *offset, reason),
        other => panic!("expected Corruption, got {other}"),
    }
}

fn recovered(dir: &Path) -> Recovered {
    recover(&*portable(), dir, CMP)
        .expect("recover")
        .expect("a database")
}

/// A manifest in `dir` (number 1): `base_state()`, then `edits` random valid edits. Returns
/// the state after each record (index 0: the snapshot) and the records' start offsets plus
/// the end of the file.
fn write_manifest(dir: &Path, edits: usize, seed: u64) -> (Vec<ManifestState>, Vec<u64>) {
    let mut rng = Rng::new(seed);
    let mut state = base_state();
    let mut w = ManifestWriter::create(portable(), dir, 1, &state).unwrap();
    let mut states = vec![state.clone()];
    let mut bounds = vec![MANIFEST_HEADER_BYTES as u64, w.file_bytes()];
    for _ in 0..edits {
        let e = valid_edit(&mut rng, &state);
        state.apply(&e).unwrap();
        w.append(&e).unwrap();
        states.push(state.clone());
        bounds.push(w.file_bytes());
    }
    (states, bounds)
}

// ---------------------------------------------------------------------------------------
// Edits and state

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

// ---------------------------------------------------------------------------------------
// Writer and recovery

#[test]
fn writer_then_recover_round_trips() {
    let dir = TempDir::new("roundtrip");
    let (states, bounds) = write_manifest(dir.path(), 40, 7);
    let r = recovered(dir.path());
    assert_eq!(&r.state, states.last().unwrap());
    assert_eq!(r.edits, states.len() as u64);
    assert_eq!(r.torn_tail_bytes, 0);
    assert_eq!(r.manifest_number, 1);
    assert_eq!(r.manifest_path, dir.path().join("MANIFEST-000001"));
    let len = std::fs::metadata(&r.manifest_path).unwrap().len();
    assert_eq!(len, *bounds.last().unwrap());
    assert_eq!(
        std::fs::read(dir.path().join(CURRENT_FILE_NAME)).unwrap(),
        b"MANIFEST-000001\n"
    );
}

#[test]
fn an_empty_state_and_empty_edits_round_trip() {
    let dir = TempDir::new("empty");
    let mut s = ManifestState::new(CMP);
    s.next_file_number = 2;
    let mut w = ManifestWriter::create(portable(), dir.path(), 1, &s).unwrap();
    w.append(&VersionEdit::default()).unwrap();
    w.append(&VersionEdit::default()).unwrap();
    let r = recovered(dir.path());
    assert_eq!(r.state, s);
    assert_eq!(r.edits, 3);
}

#[test]
fn reopen_switches_current_to_a_new_manifest_and_removes_the_old() {
    let dir = TempDir::new("reopen");
    let vfs = portable();
    let (states, _) = write_manifest(dir.path(), 5, 8);
    // Debris a crash could leave: a temporary CURRENT and an unfinished newer manifest.
    std::fs::write(dir.path().join("CURRENT.77.tmp"), b"MANIFEST-000077\n").unwrap();
    std::fs::write(dir.path().join("MANIFEST-000077"), b"half").unwrap();
    std::fs::write(dir.path().join("000003.sst"), b"a table").unwrap();

    let mut state = recovered(dir.path()).state;
    assert_eq!(&state, states.last().unwrap());
    let number = state.next_file_number;
    state.next_file_number += 1;
    let mut w = ManifestWriter::create(vfs.clone(), dir.path(), number, &state).unwrap();
    assert_eq!(w.number(), number);
    let e = VersionEdit {
        flushed_seq: Some(state.flushed_seq + 1),
        ..Default::default()
    };
    w.append(&e).unwrap();
    state.apply(&e).unwrap();

    let mut names = vfs.list_dir(dir.path()).unwrap();
    names.sort();
    assert_eq!(
        names,
        vec![
            "000003.sst".to_string(),
            "CURRENT".into(),
            manifest_file_name(number)
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("CURRENT")).unwrap(),
        format!("{}\n", manifest_file_name(number))
    );
    let r = recovered(dir.path());
    assert_eq!(r.state, state);
    assert_eq!(r.manifest_number, number);
    assert_eq!(r.edits, 2);
}

#[test]
fn create_overwrites_a_stale_file_of_its_number() {
    // A create interrupted before the CURRENT switch leaves MANIFEST-<n>; the retry after
    // recovery allocates the same number again.
    let dir = TempDir::new("stale");
    let (states, _) = write_manifest(dir.path(), 2, 9);
    let mut state = states.last().unwrap().clone();
    let number = state.next_file_number;
    std::fs::write(dir.path().join(manifest_file_name(number)), vec![0x5a; 300]).unwrap();
    state.next_file_number += 1;
    ManifestWriter::create(portable(), dir.path(), number, &state).unwrap();
    assert_eq!(recovered(dir.path()).state, state);
}

#[test]
fn create_refuses_the_live_manifest_and_numbers_not_below_next() {
    let dir = TempDir::new("refuse");
    let (states, _) = write_manifest(dir.path(), 2, 10);
    let mut state = states.last().unwrap().clone();
    state.next_file_number = 50;
    let err = ManifestWriter::create(portable(), dir.path(), 1, &state).unwrap_err();
    assert!(err.to_string().contains("live manifest"), "{err}");
    let n = state.next_file_number;
    let err = ManifestWriter::create(portable(), dir.path(), n, &state).unwrap_err();
    assert!(err.to_string().contains("must exceed"), "{err}");
    // A state that would not survive its own replay (level out of range) is refused too.
    let mut bad = state.clone();
    bad.levels.push(vec![meta(40, b"a", b"b", (1, 1))]);
    let err = ManifestWriter::create(portable(), dir.path(), 20, &bad).unwrap_err();
    assert!(err.to_string().contains("own snapshot"), "{err}");
    // Nothing changed.
    assert_eq!(&recovered(dir.path()).state, states.last().unwrap());
    assert!(!dir.path().join(manifest_file_name(20)).exists());
}

#[test]
fn no_current_is_a_new_database_unless_a_manifest_records_data() {
    let vfs = portable();
    let dir = TempDir::new("nocurrent");
    assert_eq!(recover(&*vfs, dir.path(), CMP).unwrap(), None);
    assert_eq!(
        recover(&*vfs, &dir.path().join("missing"), CMP).unwrap(),
        None
    );

    // What a crash during the very first create can leave: an empty or torn file, or a
    // complete manifest of an empty state. Nothing is lost by starting afresh.
    let mut fresh = ManifestState::new(CMP);
    fresh.next_file_number = 4;
    fresh.last_seq = 99;
    ManifestWriter::create(vfs.clone(), dir.path(), 3, &fresh).unwrap();
    std::fs::remove_file(dir.path().join("CURRENT")).unwrap();
    std::fs::write(dir.path().join("MANIFEST-000001"), b"").unwrap();
    std::fs::write(dir.path().join("MANIFEST-000002"), b"URDBMA").unwrap();
    std::fs::write(dir.path().join("CURRENT.3.tmp"), b"MANIFEST-000003\n").unwrap();
    assert_eq!(recover(&*vfs, dir.path(), CMP).unwrap(), None);

    // A manifest that records tables: CURRENT was lost, and that is corruption.
    let (_, _) = write_manifest(dir.path(), 1, 11);
    std::fs::remove_file(dir.path().join("CURRENT")).unwrap();
    let err = recover(&*vfs, dir.path(), CMP).unwrap_err();
    let (file, offset, reason) = corruption(&err);
    assert_eq!(file, dir.path().join("CURRENT"));
    assert_eq!(offset, 0);
    assert!(reason.contains("MANIFEST-000001"), "{reason}");
    assert!(reason.contains("tables"), "{reason}");

    // A damaged manifest without CURRENT: cannot tell, so corruption naming CURRENT.
    let dir2 = TempDir::new("nocurrent2");
    write_manifest(dir2.path(), 1, 12);
    std::fs::remove_file(dir2.path().join("CURRENT")).unwrap();
    let p = dir2.path().join("MANIFEST-000001");
    let mut b = std::fs::read(&p).unwrap();
    b[0] ^= 1;
    std::fs::write(&p, b).unwrap();
    let err = recover(&*vfs, dir2.path(), CMP).unwrap_err();
    assert_eq!(corruption(&err).0, dir2.path().join("CURRENT"));
}

#[test]
fn bad_current_contents_are_corruption_naming_current() {
    let dir = TempDir::new("badcurrent");
    write_manifest(dir.path(), 1, 13);
    let current = dir.path().join("CURRENT");
    for (contents, offset) in [
        (&b"MANIFEST-000001"[..], 15),
        (b"", 0),
        (b"MANIFEST-000001\nMANIFEST-000001\n", 16),
        (b"MANIFEST-1\n", 9),
        (b"manifest-000001\n", 0),
        (b"MANIFEST-0000x1\n", 13),
        (b"MANIFEST-000001 \n", 15),
        (&[0xffu8; 64][..], 64),
    ] {
        std::fs::write(&current, contents).unwrap();
        let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
        let (file, at, reason) = corruption(&err);
        assert_eq!(file, current, "{contents:?}");
        assert_eq!(at, offset, "{contents:?}: {reason}");
    }
    // Too long to be a CURRENT at all.
    std::fs::write(&current, vec![b'M'; 65]).unwrap();
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    assert_eq!(corruption(&err).0, current);
    // Names a manifest that does not exist.
    std::fs::write(&current, b"MANIFEST-000002\n").unwrap();
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (file, at, reason) = corruption(&err);
    assert_eq!((file, at), (current.as_path(), 0));
    assert!(reason.contains("MANIFEST-000002"), "{reason}");
    assert!(reason.contains("does not exist"), "{reason}");
    // The display names the file and the offset.
    let text = err.to_string();
    assert!(
        text.contains("CURRENT") && text.contains("byte 0"),
        "{text}"
    );
}

#[test]
fn comparator_mismatch_is_corruption_at_the_snapshot() {
    let dir = TempDir::new("cmp");
    write_manifest(dir.path(), 1, 14);
    let err = recover(&*portable(), dir.path(), "uringdb.bytewise").unwrap_err();
    let (file, at, reason) = corruption(&err);
    assert_eq!(file, dir.path().join("MANIFEST-000001"));
    assert_eq!(at, MANIFEST_HEADER_BYTES as u64);
    assert!(reason.contains("comparator"), "{reason}");
}

// ---------------------------------------------------------------------------------------
// Corruption of the manifest file

/// Appends a raw record (valid length and checksum) holding `payload`.
fn append_raw_record(path: &Path, payload: &[u8]) -> u64 {
    let mut b = std::fs::read(path).unwrap();
    let at = b.len() as u64;
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    b.extend_from_slice(&len);
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(payload);
    std::fs::write(path, b).unwrap();
    at
}

#[test]
fn every_flipped_bit_is_corruption_at_the_damage_or_a_cut_final_record() {
    let dir = TempDir::new("bits");
    let (states, bounds) = write_manifest(dir.path(), 3, 15);
    let path = dir.path().join("MANIFEST-000001");
    let good = std::fs::read(&path).unwrap();
    assert_eq!(good.len() as u64, *bounds.last().unwrap());
    let last = bounds.len() - 2; // index of the last record
    let (mut corrupt, mut cut) = (0, 0);
    for byte in 0..good.len() {
        // The region holding this byte: the header, or record r in [bounds[r], bounds[r+1]).
        let (lo, hi, record) = if byte < MANIFEST_HEADER_BYTES {
            (0, MANIFEST_HEADER_BYTES as u64, None)
        } else {
            let r = bounds
                .windows(2)
                .position(|w| (byte as u64) < w[1])
                .unwrap();
            (bounds[r], bounds[r + 1], Some(r))
        };
        for bit in 0..8 {
            let mut b = good.clone();
            b[byte] ^= 1 << bit;
            std::fs::write(&path, &b).unwrap();
            match recover(&*portable(), dir.path(), CMP) {
                Err(e) => {
                    let (file, at, reason) = corruption(&e);
                    assert_eq!(file, path, "byte {byte} bit {bit}");
                    assert!(
                        (lo..hi).contains(&at),
                        "byte {byte} bit {bit}: offset {at} outside [{lo}, {hi}): {reason}"
                    );
                    corrupt += 1;
                }
                Ok(r) => {
                    let r = r.expect("a database");
                    assert_eq!(
                        record,
                        Some(last),
                        "byte {byte} bit {bit}: damage silently accepted"
                    );
                    assert_eq!(r.state, states[last - 1], "byte {byte} bit {bit}");
                    assert_eq!(r.edits, last as u64);
                    assert_eq!(r.torn_tail_bytes, hi - lo);
                    cut += 1;
                }
            }
        }
    }
    assert_eq!(corrupt + cut, good.len() * 8);
    assert!(cut > 0 && corrupt > cut, "corrupt {corrupt}, cut {cut}");
}

#[test]
fn truncation_cuts_a_torn_final_record_but_never_the_snapshot() {
    let dir = TempDir::new("truncate");
    let (states, bounds) = write_manifest(dir.path(), 4, 16);
    let path = dir.path().join("MANIFEST-000001");
    let good = std::fs::read(&path).unwrap();
    for len in 0..good.len() {
        std::fs::write(&path, &good[..len]).unwrap();
        let result = recover(&*portable(), dir.path(), CMP);
        if (len as u64) < bounds[1] {
            let e = result.unwrap_err();
            let (file, at, reason) = corruption(&e);
            assert_eq!(file, path);
            assert!(at <= bounds[0], "len {len}: offset {at}: {reason}");
            continue;
        }
        let r = result.unwrap().unwrap();
        // The records that fit whole.
        let whole = bounds.iter().filter(|&&b| b <= len as u64).count() - 1;
        assert_eq!(r.state, states[whole - 1], "len {len}");
        assert_eq!(r.edits, whole as u64);
        assert_eq!(r.torn_tail_bytes, len as u64 - bounds[whole]);
    }
}

#[test]
fn trailing_zeros_and_garbage_are_a_torn_tail_unless_data_follows() {
    let dir = TempDir::new("tail");
    let (states, bounds) = write_manifest(dir.path(), 2, 17);
    let path = dir.path().join("MANIFEST-000001");
    let good = std::fs::read(&path).unwrap();
    let end = *bounds.last().unwrap();
    for tail in [vec![0u8; 1], vec![0u8; 7], vec![0u8; 8], vec![0u8; 4096], {
        let mut rng = Rng::new(5);
        rng.bytes(300).into_iter().chain([1]).collect()
    }] {
        let mut b = good.clone();
        b.extend_from_slice(&tail);
        std::fs::write(&path, &b).unwrap();
        let r = recovered(dir.path());
        assert_eq!(&r.state, states.last().unwrap());
        assert_eq!(r.torn_tail_bytes, tail.len() as u64);
    }
    // Zeros, then an intact record: that record was acknowledged, so the zeros are damage.
    let mut b = good.clone();
    b.extend_from_slice(&[0u8; 16]);
    std::fs::write(&path, &b).unwrap();
    let mut payload = Vec::new();
    VersionEdit::default().encode(&mut payload);
    append_raw_record(&path, &payload);
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (_, at, reason) = corruption(&err);
    assert_eq!(at, end);
    assert!(reason.contains("followed by an intact record"), "{reason}");
}

#[test]
fn intact_records_that_do_not_decode_or_apply_are_corruption_at_the_record() {
    let dir = TempDir::new("badedit");
    let (_, _) = write_manifest(dir.path(), 1, 18);
    let path = dir.path().join("MANIFEST-000001");
    let good = std::fs::read(&path).unwrap();

    let at = append_raw_record(&path, &[42, 0]);
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (_, off, reason) = corruption(&err);
    assert_eq!(off, at);
    assert!(
        reason.contains("does not decode") && reason.contains("tag 42"),
        "{reason}"
    );

    std::fs::write(&path, &good).unwrap();
    let mut payload = Vec::new();
    VersionEdit {
        deleted: vec![(5, 12345)],
        ..Default::default()
    }
    .encode(&mut payload);
    let at = append_raw_record(&path, &payload);
    // Followed by a valid edit: still reported at the bad one.
    append_raw_record(&path, &[]);
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (_, off, reason) = corruption(&err);
    assert_eq!(off, at);
    assert!(reason.contains("does not apply"), "{reason}");
}

#[test]
fn the_first_record_must_be_a_snapshot() {
    let dir = TempDir::new("nosnapshot");
    write_manifest(dir.path(), 0, 19);
    let path = dir.path().join("MANIFEST-000001");
    let mut b = std::fs::read(&path).unwrap();
    b.truncate(MANIFEST_HEADER_BYTES);
    std::fs::write(&path, &b).unwrap();
    // Header only: the snapshot is missing.
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    assert_eq!(corruption(&err).1, MANIFEST_HEADER_BYTES as u64);
    // A first record without the comparator is not a snapshot.
    let mut payload = Vec::new();
    VersionEdit {
        next_file_number: Some(5),
        ..Default::default()
    }
    .encode(&mut payload);
    append_raw_record(&path, &payload);
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (_, at, reason) = corruption(&err);
    assert_eq!(at, MANIFEST_HEADER_BYTES as u64);
    assert!(reason.contains("snapshot"), "{reason}");
}

#[test]
fn a_manifest_named_by_current_must_have_the_number_of_its_name() {
    let dir = TempDir::new("renamed");
    write_manifest(dir.path(), 1, 20);
    std::fs::rename(
        dir.path().join("MANIFEST-000001"),
        dir.path().join("MANIFEST-000009"),
    )
    .unwrap();
    std::fs::write(dir.path().join("CURRENT"), b"MANIFEST-000009\n").unwrap();
    let err = recover(&*portable(), dir.path(), CMP).unwrap_err();
    let (file, at, _) = corruption(&err);
    assert_eq!(file, dir.path().join("MANIFEST-000009"));
    assert_eq!(at, 16);
}

// ---------------------------------------------------------------------------------------
// I/O errors

#[test]
fn a_failed_append_keeps_its_errno_and_latches() {
    for errno in [EIO, ENOSPC] {
        let dir = TempDir::new("latch");
        let fault = FaultVfs::new(
            portable(),
            FaultConfig {
                // create syncs the manifest and the temporary CURRENT; the first append
                // syncs third.
                fail_sync_nth: Some(3),
                errno,
                ..FaultConfig::default()
            },
        );
        let mut state = base_state();
        let mut w = ManifestWriter::create(fault.clone(), dir.path(), 1, &state).unwrap();
        let e = valid_edit(&mut Rng::new(3), &state);
        let err = w.append(&e).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(errno), "{err}");
        assert!(w.failed());
        let size = w.file_bytes();
        let again = w.append(&VersionEdit::default()).unwrap_err();
        assert_eq!(again.raw_os_error(), Some(errno), "{again}");
        assert!(again.to_string().contains("earlier"), "{again}");
        assert_eq!(w.file_bytes(), size);
        // std::error::Error::source reaches the io::Error.
        let source = std::error::Error::source(&again).expect("source");
        assert!(source.to_string().contains(if errno == EIO {
            "Input/output"
        } else {
            "space"
        }));
        drop(w);
        // The failed edit is not in the manifest; a new manifest continues.
        fault.crash();
        let r = recover(&*fault, dir.path(), CMP).unwrap().unwrap();
        assert_eq!(r.state, state);
        state.next_file_number += 1;
        ManifestWriter::create(fault.clone(), dir.path(), 10, &state).unwrap();
        assert_eq!(recovered(dir.path()).state, state);
    }
}

#[test]
fn a_failed_create_keeps_its_errno_and_the_old_manifest() {
    let dir = TempDir::new("failcreate");
    let (states, _) = write_manifest(dir.path(), 1, 21);
    let fault = FaultVfs::new(
        portable(),
        FaultConfig {
            fail_write_after_bytes: Some(10),
            errno: ENOSPC,
            ..FaultConfig::default()
        },
    );
    let mut state = states.last().unwrap().clone();
    let n = state.next_file_number;
    state.next_file_number += 1;
    let err = ManifestWriter::create(fault.clone(), dir.path(), n, &state).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(ENOSPC), "{err}");
    assert!(!dir.path().join(manifest_file_name(n)).exists());
    let r = recovered(dir.path());
    assert_eq!((r.manifest_number, &r.state), (1, states.last().unwrap()));
}

// ---------------------------------------------------------------------------------------
// Fixture: the v1 format as committed

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifest_v1")
}

/// The fixture's history: a snapshot of two level-0 tables, then a flush, a compaction into
/// level 1 (with a compaction pointer) and a trivial move to level 2.
fn fixture_history() -> (ManifestState, Vec<VersionEdit>) {
    let mut s = ManifestState::new(CMP);
    s.apply(&VersionEdit {
        next_file_number: Some(5),
        flushed_seq: Some(100),
        last_seq: Some(100),
        added: vec![
            (0, meta(2, b"apple", b"melon", (1, 60))),
            (0, meta(3, b"banana", b"zucchini", (61, 100))),
        ],
        ..Default::default()
    })
    .unwrap();
    let edits = vec![
        VersionEdit {
            next_file_number: Some(6),
            flushed_seq: Some(120),
            last_seq: Some(130),
            added: vec![(0, meta(5, b"cherry", b"kiwi", (101, 120)))],
            ..Default::default()
        },
        VersionEdit {
            next_file_number: Some(8),
            last_seq: Some(140),
            deleted: vec![(0, 2), (0, 3), (0, 5)],
            added: vec![
                (1, meta(6, b"apple", b"kiwi", (1, 120))),
                (1, meta(7, b"lemon", b"zucchini", (2, 119))),
            ],
            compact_pointers: vec![(0, ik(b"zucchini", 61))],
            ..Default::default()
        },
        VersionEdit {
            next_file_number: Some(8),
            deleted: vec![(1, 7)],
            added: vec![(2, meta(7, b"lemon", b"zucchini", (2, 119)))],
            ..Default::default()
        },
    ];
    (s, edits)
}

fn write_fixture(dir: &Path) {
    let (s, edits) = fixture_history();
    let mut w = ManifestWriter::create(portable(), dir, 1, &s).unwrap();
    for e in &edits {
        w.append(e).unwrap();
    }
}

/// Regenerates the committed fixture. Run only when the format version changes (and then
/// add a new fixture directory instead of replacing this one).
#[test]
#[ignore = "writes the committed fixture; run by hand"]
fn generate_fixture_v1() {
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    write_fixture(&dir);
}

#[test]
fn fixture_v1_recovers_to_the_exact_expected_state() {
    let r = recover(&*portable(), &fixture_dir(), CMP).unwrap().unwrap();
    // Written out by hand, not recomputed through the code under test.
    let mut expected = ManifestState::new(CMP);
    expected.levels[1] = vec![meta(6, b"apple", b"kiwi", (1, 120))];
    expected.levels[2] = vec![meta(7, b"lemon", b"zucchini", (2, 119))];
    expected.next_file_number = 8;
    expected.flushed_seq = 120;
    expected.last_seq = 140;
    expected.compact_pointers[0] = ik(b"zucchini", 61);
    assert_eq!(r.state, expected);
    assert_eq!(r.manifest_number, 1);
    assert_eq!(r.edits, 4);
    assert_eq!(r.torn_tail_bytes, 0);
    let m = std::fs::read(fixture_dir().join("MANIFEST-000001")).unwrap();
    assert_eq!(&m[..8], b"URDBMAN1");
    assert_eq!(m[8..12], 1u32.to_le_bytes());
    assert_eq!(
        std::fs::read(fixture_dir().join("CURRENT")).unwrap(),
        b"MANIFEST-000001\n"
    );
    assert!(m.len() > MANIFEST_HEADER_BYTES + 4 * RECORD_HEADER_BYTES);
}

#[test]
fn this_build_writes_the_fixture_byte_for_byte() {
    let dir = TempDir::new("fixture");
    write_fixture(dir.path());
    for name in ["CURRENT", "MANIFEST-000001"] {
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            std::fs::read(fixture_dir().join(name)).unwrap(),
            "{name} differs from the committed v1 fixture: the format changed"
        );
    }
}
