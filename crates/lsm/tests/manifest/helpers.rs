//! Helpers: a seeded generator, edits and states, shared checks.

use std::path::Path;
use std::sync::Arc;

use uringdb_lsm::internal_key::{self, ValueKind};
use uringdb_lsm::manifest::{
    recover, FileMeta, ManifestError, ManifestState, ManifestWriter, Recovered, TreeEdit,
    VersionEdit, MANIFEST_HEADER_BYTES, NUM_LEVELS,
};
use uringdb_uring::{open_vfs, BackendChoice, Vfs};

pub(crate) const CMP: &str = "uringdb.internal_key.v1";

/// xorshift64*: a tiny seeded generator (no dependencies).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn bytes(&mut self, max_len: u64) -> Vec<u8> {
        let n = self.below(max_len + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Mostly small numbers, sometimes huge ones (varint edges).
    pub(crate) fn number(&mut self) -> u64 {
        match self.below(4) {
            0 => self.below(128),
            1 => self.below(1 << 20),
            2 => self.next(),
            _ => u64::MAX - self.below(3),
        }
    }
}

pub(crate) fn portable() -> Arc<dyn Vfs> {
    open_vfs(BackendChoice::Portable).expect("portable vfs").0
}

pub(crate) fn ik(user: &[u8], seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    internal_key::encode(&mut out, user, seq, ValueKind::Put);
    out
}

pub(crate) fn meta(number: u64, lo: &[u8], hi: &[u8], seqs: (u64, u64)) -> FileMeta {
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

pub(crate) fn random_meta(rng: &mut Rng, number: u64) -> FileMeta {
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
pub(crate) fn arbitrary_edit(rng: &mut Rng) -> VersionEdit {
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
        streams: TreeEdit {
            deleted: (0..rng.below(3))
                .map(|_| (rng.next() as u32, rng.number()))
                .collect(),
            added: (0..rng.below(3))
                .map(|_| {
                    let n = rng.number();
                    (rng.below(NUM_LEVELS as u64 + 2) as u32, random_meta(rng, n))
                })
                .collect(),
            compact_pointers: (0..rng.below(2))
                .map(|_| (rng.below(10) as u32, rng.bytes(20)))
                .collect(),
        },
    }
}

/// An edit that applies to `state`: deletes some live files (re-adding some one level
/// deeper: trivial moves), adds new ones with fresh numbers, moves the counters.
pub(crate) fn valid_edit(rng: &mut Rng, state: &ManifestState) -> VersionEdit {
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
pub(crate) fn base_state() -> ManifestState {
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
pub(crate) fn assert_ordered(s: &ManifestState) {
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

pub(crate) fn corruption(e: &ManifestError) -> (&Path, u64, &str) {
    match e {
        ManifestError::Corruption {
            file,
            offset,
            reason,
        } => (file, *offset, reason),
        other => panic!("expected Corruption, got {other}"),
    }
}

pub(crate) fn recovered(dir: &Path) -> Recovered {
    recover(&*portable(), dir, CMP)
        .expect("recover")
        .expect("a database")
}

/// A manifest in `dir` (number 1): `base_state()`, then `edits` random valid edits. Returns
/// the state after each record (index 0: the snapshot) and the records' start offsets plus
/// the end of the file.
pub(crate) fn write_manifest(
    dir: &Path,
    edits: usize,
    seed: u64,
) -> (Vec<ManifestState>, Vec<u64>) {
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
