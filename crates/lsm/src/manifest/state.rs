//! [`ManifestState`]: what replaying a manifest's edits gives — the tables of each level and
//! the counters — and the rules an edit must obey to apply.

use std::cmp::Ordering;
use std::collections::HashSet;

use super::edit::{FileMeta, TreeEdit, VersionEdit};
use super::NUM_LEVELS;
use crate::table::Comparator;

/// The database's table set and counters as recorded in the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestState {
    /// [`NUM_LEVELS`] levels. Level 0 is ordered newest first (`largest_seq` descending, then
    /// file number descending); levels >= 1 by smallest key under the comparator (then file
    /// number).
    pub levels: Vec<Vec<FileMeta>>,
    /// The next file number to allocate; starts at 1. Tables and manifests share it, and
    /// every live file's number is below it.
    pub next_file_number: u64,
    /// Every WAL record with a sequence number `<=` this is in tables.
    pub flushed_seq: u64,
    /// The last sequence number made visible.
    pub last_seq: u64,
    /// The comparator's name (e.g. `uringdb.internal_key.v1`); fixed for the database's
    /// lifetime.
    pub comparator: String,
    /// [`NUM_LEVELS`] entries: where the next compaction of each level starts (an internal
    /// key), empty for none.
    pub compact_pointers: Vec<Vec<u8>>,
    /// The stream tree's tables and compaction pointers (tree 1; `levels` and
    /// `compact_pointers` above are the key-value tree's). File numbers are unique across
    /// both trees.
    pub streams: TreeFiles,
}

/// One tree's tables and compaction pointers, ordered as [`ManifestState::levels`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeFiles {
    /// [`NUM_LEVELS`] levels.
    pub levels: Vec<Vec<FileMeta>>,
    /// [`NUM_LEVELS`] compaction pointers, empty for none.
    pub compact_pointers: Vec<Vec<u8>>,
}

impl TreeFiles {
    fn new() -> TreeFiles {
        TreeFiles {
            levels: vec![Vec::new(); NUM_LEVELS],
            compact_pointers: vec![Vec::new(); NUM_LEVELS],
        }
    }
}

impl ManifestState {
    /// The state of a new, empty database using `comparator`.
    pub fn new(comparator: &str) -> ManifestState {
        ManifestState {
            levels: vec![Vec::new(); NUM_LEVELS],
            next_file_number: 1,
            flushed_seq: 0,
            last_seq: 0,
            comparator: comparator.to_string(),
            compact_pointers: vec![Vec::new(); NUM_LEVELS],
            streams: TreeFiles::new(),
        }
    }

    /// The manifest format version a manifest holding this state must have: 2 when the
    /// stream tree has a table (its snapshot uses tags 8–10), else 1.
    pub fn format_version(&self) -> u32 {
        if self.streams.levels.iter().any(|l| !l.is_empty()) {
            super::MANIFEST_VERSION
        } else {
            super::MANIFEST_VERSION_MIN
        }
    }

    /// Applies `edit`: deletes its files, adds its files, sets the counters and compaction
    /// pointers it carries. Errors (and leaves `self` unchanged) when:
    ///
    /// - its comparator differs from the state's;
    /// - a level is `>= NUM_LEVELS`;
    /// - it deletes a file that is not in that level, or the same file twice;
    /// - it adds a file number that is live after its deletions (a file may be deleted and
    ///   re-added at another level in one edit: a trivial move), or adds one number twice;
    /// - it moves `next_file_number` backwards, or adds a file whose number is not below the
    ///   resulting `next_file_number` (a later allocation could reuse it).
    ///
    /// `flushed_seq` and `last_seq` are taken as given.
    pub fn apply(&mut self, edit: &VersionEdit) -> Result<(), String> {
        if let Some(c) = &edit.comparator {
            if *c != self.comparator {
                return Err(format!(
                    "comparator mismatch: the edit names {c:?}, the database uses {:?}",
                    self.comparator
                ));
            }
        }
        let next = edit.next_file_number.unwrap_or(self.next_file_number);
        if next < self.next_file_number {
            return Err(format!(
                "next_file_number would go back from {} to {next}",
                self.next_file_number
            ));
        }
        let tree1 = &edit.streams;
        let mut deleted: HashSet<u64> = HashSet::new();
        for (tree, levels, dels) in [
            ("", &self.levels, &edit.deleted),
            ("stream tree ", &self.streams.levels, &tree1.deleted),
        ] {
            for &(level, number) in dels {
                let files = level_of(levels, level, "deletes")?;
                if !files.iter().any(|f| f.number == number) {
                    return Err(format!(
                        "deletes file {number} from {tree}level {level}, which does not hold it"
                    ));
                }
                if !deleted.insert(number) {
                    return Err(format!("deletes file {number} twice"));
                }
            }
        }
        let mut live: HashSet<u64> = self
            .levels
            .iter()
            .chain(&self.streams.levels)
            .flatten()
            .map(|f| f.number)
            .filter(|n| !deleted.contains(n))
            .collect();
        for (tree, adds) in [("", &edit.added), ("stream tree ", &tree1.added)] {
            for (level, f) in adds {
                level_of(&self.levels, *level, "adds")?;
                if !live.insert(f.number) {
                    return Err(format!(
                        "adds file {} to {tree}level {level}, but that number is already live",
                        f.number
                    ));
                }
                if f.number >= next {
                    return Err(format!(
                        "adds file {} to {tree}level {level}, but next_file_number is {next}",
                        f.number
                    ));
                }
            }
        }
        for (level, _) in edit.compact_pointers.iter().chain(&tree1.compact_pointers) {
            level_of(&self.levels, *level, "sets a compaction pointer of")?;
        }

        // Validated: now mutate.
        let cmp = Comparator::from_name(self.comparator.as_bytes());
        apply_tree(
            &mut self.levels,
            &mut self.compact_pointers,
            &edit.deleted,
            &edit.added,
            &edit.compact_pointers,
            cmp,
        );
        apply_tree(
            &mut self.streams.levels,
            &mut self.streams.compact_pointers,
            &tree1.deleted,
            &tree1.added,
            &tree1.compact_pointers,
            cmp,
        );
        self.next_file_number = next;
        if let Some(s) = edit.flushed_seq {
            self.flushed_seq = s;
        }
        if let Some(s) = edit.last_seq {
            self.last_seq = s;
        }
        Ok(())
    }

    /// One edit that, applied to `ManifestState::new(&self.comparator)`, recreates this
    /// state exactly (the first record of every manifest).
    pub fn snapshot_edit(&self) -> VersionEdit {
        VersionEdit {
            comparator: Some(self.comparator.clone()),
            flushed_seq: Some(self.flushed_seq),
            next_file_number: Some(self.next_file_number),
            last_seq: Some(self.last_seq),
            deleted: Vec::new(),
            added: snapshot_files(&self.levels),
            compact_pointers: snapshot_pointers(&self.compact_pointers),
            streams: TreeEdit {
                deleted: Vec::new(),
                added: snapshot_files(&self.streams.levels),
                compact_pointers: snapshot_pointers(&self.streams.compact_pointers),
            },
        }
    }

    /// The numbers of every table in every level of both trees (the key-value tree's
    /// first, each level 0 first, in level order).
    pub fn live_files(&self) -> Vec<u64> {
        self.levels
            .iter()
            .chain(&self.streams.levels)
            .flatten()
            .map(|f| f.number)
            .collect()
    }

    /// Number of tables in all levels of both trees.
    pub fn file_count(&self) -> usize {
        self.levels
            .iter()
            .chain(&self.streams.levels)
            .map(Vec::len)
            .sum()
    }
}

fn level_of<'a>(
    levels: &'a [Vec<FileMeta>],
    level: u32,
    what: &str,
) -> Result<&'a [FileMeta], String> {
    levels
        .get(level as usize)
        .map(Vec::as_slice)
        .ok_or_else(|| format!("{what} level {level}, but there are only {NUM_LEVELS} levels"))
}

/// Applies one tree's validated changes.
fn apply_tree(
    levels: &mut [Vec<FileMeta>],
    pointers: &mut [Vec<u8>],
    deleted: &[(u32, u64)],
    added: &[(u32, FileMeta)],
    compact_pointers: &[(u32, Vec<u8>)],
    cmp: Option<Comparator>,
) {
    for &(level, number) in deleted {
        levels[level as usize].retain(|f| f.number != number);
    }
    let mut touched = [false; NUM_LEVELS];
    for (level, f) in added {
        levels[*level as usize].push(f.clone());
        touched[*level as usize] = true;
    }
    for (level, files) in levels.iter_mut().enumerate() {
        if touched[level] {
            sort_level(level, files, cmp);
        }
    }
    for (level, key) in compact_pointers {
        pointers[*level as usize] = key.clone();
    }
}

fn snapshot_files(levels: &[Vec<FileMeta>]) -> Vec<(u32, FileMeta)> {
    levels
        .iter()
        .enumerate()
        .flat_map(|(level, files)| files.iter().map(move |f| (level as u32, f.clone())))
        .collect()
}

fn snapshot_pointers(pointers: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
    pointers
        .iter()
        .enumerate()
        .filter(|(_, key)| !key.is_empty())
        .map(|(level, key)| (level as u32, key.clone()))
        .collect()
}

/// Orders one level: level 0 newest first, the others by smallest key (`cmp`; bytewise when
/// the comparator is unknown), ties by file number so that the order is total.
fn sort_level(level: usize, files: &mut [FileMeta], cmp: Option<Comparator>) {
    if level == 0 {
        files.sort_by(|a, b| {
            b.largest_seq
                .cmp(&a.largest_seq)
                .then(b.number.cmp(&a.number))
        });
    } else {
        let compare = |a: &[u8], b: &[u8]| -> Ordering {
            match cmp {
                Some(c) => c.compare(a, b),
                None => a.cmp(b),
            }
        };
        files.sort_by(|a, b| compare(&a.smallest, &b.smallest).then(a.number.cmp(&b.number)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal_key::{self, ValueKind};

    const CMP: &str = "uringdb.internal_key.v1";

    fn ik(user: &[u8], seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        internal_key::encode(&mut out, user, seq, ValueKind::Put);
        out
    }

    fn meta(number: u64, lo: &[u8], hi: &[u8], largest_seq: u64) -> FileMeta {
        FileMeta {
            number,
            file_bytes: 1000,
            smallest: ik(lo, largest_seq),
            largest: ik(hi, 1),
            entries: 2,
            smallest_seq: 1,
            largest_seq,
        }
    }

    fn add(next: u64, files: Vec<(u32, FileMeta)>) -> VersionEdit {
        VersionEdit {
            next_file_number: Some(next),
            added: files,
            ..VersionEdit::default()
        }
    }

    #[test]
    fn new_state() {
        let s = ManifestState::new(CMP);
        assert_eq!(s.levels.len(), NUM_LEVELS);
        assert_eq!(s.compact_pointers.len(), NUM_LEVELS);
        assert_eq!(s.next_file_number, 1);
        assert!(s.live_files().is_empty());
        assert_eq!(s.snapshot_edit().added, vec![]);
    }

    #[test]
    fn orders_level0_newest_first_and_deeper_levels_by_internal_key() {
        let mut s = ManifestState::new(CMP);
        s.apply(&add(
            20,
            vec![
                (0, meta(1, b"a", b"z", 10)),
                (0, meta(2, b"a", b"z", 30)),
                (0, meta(3, b"a", b"z", 30)),
                // Bytewise over the whole internal key, "a"+trailer > "a\0"+trailer; by
                // internal key "a" < "a\0".
                (1, meta(4, b"a\0", b"a\0", 5)),
                (1, meta(5, b"a", b"a", 5)),
                (1, meta(6, b"0", b"0", 5)),
            ],
        ))
        .unwrap();
        let nums = |l: usize| s.levels[l].iter().map(|f| f.number).collect::<Vec<_>>();
        assert_eq!(nums(0), vec![3, 2, 1]);
        assert_eq!(nums(1), vec![6, 5, 4]);
        assert_eq!(s.live_files(), vec![3, 2, 1, 6, 5, 4]);
        assert_eq!(s.file_count(), 6);
    }

    #[test]
    fn applies_deletes_then_adds_and_counters() {
        let mut s = ManifestState::new(CMP);
        s.apply(&add(
            3,
            vec![(0, meta(1, b"a", b"c", 9)), (0, meta(2, b"d", b"f", 8))],
        ))
        .unwrap();
        // A trivial move: delete from level 0, add the same number to level 1.
        let e = VersionEdit {
            flushed_seq: Some(9),
            last_seq: Some(12),
            deleted: vec![(0, 1)],
            added: vec![(1, meta(1, b"a", b"c", 9))],
            compact_pointers: vec![(0, ik(b"c", 1))],
            ..VersionEdit::default()
        };
        s.apply(&e).unwrap();
        assert_eq!(s.levels[0].len(), 1);
        assert_eq!(s.levels[1][0].number, 1);
        assert_eq!((s.flushed_seq, s.last_seq, s.next_file_number), (9, 12, 3));
        assert_eq!(s.compact_pointers[0], ik(b"c", 1));
        // An empty key clears the pointer.
        s.apply(&VersionEdit {
            compact_pointers: vec![(0, Vec::new())],
            ..VersionEdit::default()
        })
        .unwrap();
        assert!(s.compact_pointers[0].is_empty());
    }

    #[test]
    fn rejects_bad_edits_and_leaves_the_state_unchanged() {
        let mut s = ManifestState::new(CMP);
        s.apply(&add(
            10,
            vec![(0, meta(1, b"a", b"c", 9)), (2, meta(2, b"d", b"f", 8))],
        ))
        .unwrap();
        let cases: Vec<(VersionEdit, &str)> = vec![
            (
                VersionEdit {
                    comparator: Some("uringdb.bytewise".into()),
                    ..VersionEdit::default()
                },
                "comparator mismatch",
            ),
            (
                VersionEdit {
                    deleted: vec![(1, 1)],
                    ..VersionEdit::default()
                },
                "does not hold it",
            ),
            (
                VersionEdit {
                    deleted: vec![(0, 1), (0, 1)],
                    ..VersionEdit::default()
                },
                "deletes file 1 twice",
            ),
            (
                VersionEdit {
                    deleted: vec![(7, 1)],
                    ..VersionEdit::default()
                },
                "only 7 levels",
            ),
            (add(10, vec![(3, meta(2, b"x", b"y", 1))]), "already live"),
            (
                add(
                    10,
                    vec![(3, meta(5, b"x", b"y", 1)), (4, meta(5, b"x", b"y", 1))],
                ),
                "already live",
            ),
            (add(10, vec![(7, meta(5, b"x", b"y", 1))]), "only 7 levels"),
            (
                add(10, vec![(1, meta(10, b"x", b"y", 1))]),
                "next_file_number is 10",
            ),
            (add(9, vec![]), "go back from 10 to 9"),
            (
                VersionEdit {
                    compact_pointers: vec![(u32::MAX, b"k".to_vec())],
                    ..VersionEdit::default()
                },
                "only 7 levels",
            ),
            (
                // Valid deletes followed by an invalid add: nothing may be applied.
                VersionEdit {
                    deleted: vec![(0, 1)],
                    added: vec![(1, meta(2, b"x", b"y", 1))],
                    ..VersionEdit::default()
                },
                "already live",
            ),
        ];
        for (e, needle) in cases {
            let before = s.clone();
            let err = s.apply(&e).unwrap_err();
            assert!(err.contains(needle), "{e:?}: {err}");
            assert_eq!(s, before, "a failed apply changed the state");
        }
    }

    #[test]
    fn snapshot_edit_recreates_the_state() {
        let mut s = ManifestState::new(CMP);
        s.apply(&add(
            40,
            vec![
                (0, meta(31, b"a", b"c", 9)),
                (0, meta(32, b"b", b"d", 19)),
                (3, meta(7, b"m", b"p", 4)),
                (3, meta(8, b"a", b"b", 4)),
                (6, meta(9, b"a", b"b", 4)),
            ],
        ))
        .unwrap();
        s.apply(&VersionEdit {
            flushed_seq: Some(19),
            last_seq: Some(25),
            compact_pointers: vec![(3, ik(b"b", 4))],
            ..VersionEdit::default()
        })
        .unwrap();
        let mut t = ManifestState::new(CMP);
        t.apply(&s.snapshot_edit()).unwrap();
        assert_eq!(t, s);
    }

    #[test]
    fn unknown_comparators_order_bytewise() {
        let mut s = ManifestState::new("someone.else");
        s.apply(&add(
            9,
            vec![(1, meta(1, b"b", b"b", 1)), (1, meta(2, b"a", b"a", 1))],
        ))
        .unwrap();
        assert_eq!(s.levels[1][0].number, 2);
    }
}
