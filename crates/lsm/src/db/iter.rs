//! Reading ranges: user-level cursors over each source (memtable, table, level), merged
//! newest-source-first, at one snapshot.
//!
//! Each source yields, per user key in range, the newest version visible at the snapshot
//! (a deletion as `None`). The merge takes the smallest key (largest in reverse) among the
//! sources; on ties the newest source wins (memtable, then immutable memtables, then level-0
//! tables newest first, then levels 1..). A [`DbIter`] pins a [`SuperVersion`] and fetches
//! entries in batches: each batch re-creates the cursors at the last key returned, so no
//! cursor outlives a call (and nothing borrows across the native boundary).

use std::ops::Bound;
use std::sync::Arc;

use super::error::DbError;
use super::read::SnapshotPin;
use super::version::{SuperVersion, TableHandle, TreeId, VfsFile};
use super::Db;
use crate::internal_key::{self, ValueKind, SEQ_MAX};
use crate::memtable::VisibleIter;
use crate::table::TableIter;

type Entry<'a> = (&'a [u8], Option<&'a [u8]>);

/// A cursor over one source, in one direction.
trait Cursor {
    /// The current entry: user key and value (`None`: a deletion).
    fn current(&self) -> Option<Entry<'_>>;
    fn advance(&mut self) -> Result<(), DbError>;
}

struct MemCursor<'a> {
    it: VisibleIter<'a>,
    reverse: bool,
    cur: Option<Entry<'a>>,
}

impl<'a> MemCursor<'a> {
    fn new(it: VisibleIter<'a>, reverse: bool) -> MemCursor<'a> {
        let mut c = MemCursor {
            it,
            reverse,
            cur: None,
        };
        c.step();
        c
    }
    fn step(&mut self) {
        self.cur = if self.reverse {
            self.it.next_back_entry()
        } else {
            self.it.next_entry()
        };
    }
}

impl Cursor for MemCursor<'_> {
    fn current(&self) -> Option<Entry<'_>> {
        self.cur
    }
    fn advance(&mut self) -> Result<(), DbError> {
        self.step();
        Ok(())
    }
}

/// A cursor over the tables of one level (one table for level 0), in key order.
struct LevelCursor<'a> {
    tables: &'a [Arc<TableHandle>],
    /// Index of the table `it` reads.
    idx: usize,
    it: Option<TableIter<'a, VfsFile>>,
    snapshot: u64,
    lower: Bound<&'a [u8]>,
    upper: Bound<&'a [u8]>,
    reverse: bool,
    /// The current entry, copied out of the table cursor (which has moved past its
    /// versions); both buffers are reused from entry to entry (no allocation per key).
    key: Vec<u8>,
    value: Vec<u8>,
    /// Whether the current entry is a put (`value` holds its value) or a deletion.
    is_put: bool,
    /// Whether values are copied out at all (not for a keys-only range: `value` stays empty).
    values: bool,
    valid: bool,
}

fn above(lower: Bound<&[u8]>, k: &[u8]) -> bool {
    match lower {
        Bound::Unbounded => true,
        Bound::Included(l) => k >= l,
        Bound::Excluded(l) => k > l,
    }
}

fn below(upper: Bound<&[u8]>, k: &[u8]) -> bool {
    match upper {
        Bound::Unbounded => true,
        Bound::Included(u) => k <= u,
        Bound::Excluded(u) => k < u,
    }
}

impl<'a> LevelCursor<'a> {
    fn new(
        tables: &'a [Arc<TableHandle>],
        snapshot: u64,
        lower: Bound<&'a [u8]>,
        upper: Bound<&'a [u8]>,
        reverse: bool,
        values: bool,
    ) -> Result<LevelCursor<'a>, DbError> {
        let idx = if reverse {
            // The last table whose smallest key is within the upper bound.
            let n = tables.partition_point(|t| below(upper, t.smallest_user_key()));
            if n == 0 {
                tables.len()
            } else {
                n - 1
            }
        } else {
            tables.partition_point(|t| !above(lower, t.largest_user_key()))
        };
        let mut c = LevelCursor {
            tables,
            idx,
            it: None,
            snapshot,
            lower,
            upper,
            reverse,
            key: Vec::new(),
            value: Vec::new(),
            is_put: false,
            values,
            valid: false,
        };
        c.open_table(true)?;
        c.find()?;
        Ok(c)
    }

    /// Opens the table at `idx` and positions at the bound (`first`) or at its end.
    fn open_table(&mut self, first: bool) -> Result<(), DbError> {
        self.it = None;
        let Some(t) = self.tables.get(self.idx) else {
            return Ok(());
        };
        let mut it = t.table.iter();
        let mut k = Vec::new();
        if self.reverse {
            match (first, self.upper) {
                (true, Bound::Included(u)) => {
                    internal_key::encode_lookup(&mut k, u, 0);
                    it.seek(&k)?;
                    if it.valid() {
                        it.prev()?;
                    } else {
                        it.seek_to_last()?;
                    }
                }
                (true, Bound::Excluded(u)) => {
                    internal_key::encode_lookup(&mut k, u, SEQ_MAX);
                    it.seek(&k)?;
                    if it.valid() {
                        it.prev()?;
                    } else {
                        it.seek_to_last()?;
                    }
                }
                _ => it.seek_to_last()?,
            }
        } else {
            match (first, self.lower) {
                (true, Bound::Included(l)) => {
                    internal_key::encode_lookup(&mut k, l, SEQ_MAX);
                    it.seek(&k)?;
                }
                (true, Bound::Excluded(l)) => {
                    internal_key::encode_lookup(&mut k, l, 0);
                    it.seek(&k)?;
                }
                _ => it.seek_to_first()?,
            }
        }
        self.it = Some(it);
        Ok(())
    }

    /// From the current raw position, finds the next visible entry in the direction.
    fn find(&mut self) -> Result<(), DbError> {
        loop {
            let Some(it) = self.it.as_mut() else {
                self.valid = false;
                return Ok(());
            };
            if !it.valid() {
                // Next table of the level.
                if self.reverse {
                    if self.idx == 0 {
                        self.it = None;
                        continue;
                    }
                    self.idx -= 1;
                } else {
                    self.idx += 1;
                }
                self.open_table(false)?;
                continue;
            }
            let found = if self.reverse {
                reverse_visible(
                    it,
                    self.snapshot,
                    &mut self.key,
                    self.values.then_some(&mut self.value),
                    &mut self.is_put,
                )?
            } else {
                forward_visible(
                    it,
                    self.snapshot,
                    &mut self.key,
                    self.values.then_some(&mut self.value),
                    &mut self.is_put,
                )?
            };
            if !found {
                continue;
            }
            let in_range = if self.reverse {
                above(self.lower, &self.key)
            } else {
                below(self.upper, &self.key)
            };
            if !in_range {
                self.it = None;
                self.valid = false;
                return Ok(());
            }
            if self.reverse && !below(self.upper, &self.key) {
                continue;
            }
            if !self.reverse && !above(self.lower, &self.key) {
                continue;
            }
            self.valid = true;
            return Ok(());
        }
    }
}

/// At a user key's first (newest) version: finds its version visible at `snapshot` and
/// moves past all its versions. Returns whether one was visible (its value in `value` and
/// `is_put`; the buffers are reused).
fn forward_visible(
    it: &mut TableIter<'_, VfsFile>,
    snapshot: u64,
    key: &mut Vec<u8>,
    mut value: Option<&mut Vec<u8>>,
    is_put: &mut bool,
) -> Result<bool, DbError> {
    let p = internal_key::decode(it.key()).ok_or_else(|| corrupt_key(it))?;
    key.clear();
    key.extend_from_slice(p.user_key);
    // The newest version comes first: it is the one if the snapshot sees it (the usual case).
    let mut found = p.seq <= snapshot;
    if found {
        set_value(value.as_deref_mut(), is_put, p.kind, it.value());
    }
    loop {
        it.next()?;
        if !it.valid() {
            break;
        }
        let p = internal_key::decode(it.key()).ok_or_else(|| corrupt_key(it))?;
        if p.user_key != &key[..] {
            break;
        }
        if !found && p.seq <= snapshot {
            found = true;
            set_value(value.as_deref_mut(), is_put, p.kind, it.value());
        }
    }
    Ok(found)
}

/// At a user key's last (oldest) version: walks back over its versions, keeping the newest
/// visible at `snapshot`, and stops on the previous key's last version.
fn reverse_visible(
    it: &mut TableIter<'_, VfsFile>,
    snapshot: u64,
    key: &mut Vec<u8>,
    mut value: Option<&mut Vec<u8>>,
    is_put: &mut bool,
) -> Result<bool, DbError> {
    let mut found = false;
    let p = internal_key::decode(it.key()).ok_or_else(|| corrupt_key(it))?;
    key.clear();
    key.extend_from_slice(p.user_key);
    loop {
        let p = internal_key::decode(it.key()).ok_or_else(|| corrupt_key(it))?;
        if p.user_key != &key[..] {
            break;
        }
        if p.seq <= snapshot {
            found = true;
            set_value(value.as_deref_mut(), is_put, p.kind, it.value());
        }
        it.prev()?;
        if !it.valid() {
            break;
        }
    }
    Ok(found)
}

/// Keeps a visible version: its value copied into the reused buffer (unless values are not
/// wanted: `None`), or a deletion.
fn set_value(value: Option<&mut Vec<u8>>, is_put: &mut bool, kind: ValueKind, v: &[u8]) {
    *is_put = kind == ValueKind::Put;
    if let Some(value) = value {
        value.clear();
        if *is_put {
            value.extend_from_slice(v);
        }
    }
}

fn corrupt_key(it: &TableIter<'_, VfsFile>) -> DbError {
    DbError::InvalidArgument(format!(
        "malformed internal key of {} bytes in a table",
        it.key().len()
    ))
}

impl Cursor for LevelCursor<'_> {
    fn current(&self) -> Option<Entry<'_>> {
        self.valid
            .then(|| (&self.key[..], self.is_put.then_some(&self.value[..])))
    }
    fn advance(&mut self) -> Result<(), DbError> {
        self.find()
    }
}

/// Range options of an iterator.
#[derive(Clone, Debug)]
pub struct RangeOptions {
    /// Lower bound of user keys.
    pub lower: Bound<Vec<u8>>,
    /// Upper bound of user keys.
    pub upper: Bound<Vec<u8>>,
    /// Descending order.
    pub reverse: bool,
    /// Most entries to return (`None`: all).
    pub limit: Option<u64>,
    /// Copy values out (`false`: batches carry keys only, value lengths 0).
    pub values: bool,
}

impl Default for RangeOptions {
    fn default() -> Self {
        RangeOptions {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse: false,
            limit: None,
            values: true,
        }
    }
}

/// A batch of entries: keys and values back to back in `data`, and per entry its key
/// length and value length in `lens` (two words per entry).
#[derive(Debug, Default, Clone)]
pub struct IterBatch {
    /// Keys and values, concatenated in entry order (key then value).
    pub data: Vec<u8>,
    /// `[klen0, vlen0, klen1, vlen1, ...]`.
    pub lens: Vec<u32>,
    /// Whether the iterator is exhausted (no entry follows this batch).
    pub done: bool,
}

/// An iterator over a consistent snapshot of the database (see the module doc).
pub struct DbIter {
    /// The tree read (the key-value state, but for stream reads).
    tree: TreeId,
    sv: Arc<SuperVersion>,
    snapshot: u64,
    opts: RangeOptions,
    /// Last key returned: the next batch starts after it.
    position: Option<Vec<u8>>,
    /// A seek target: the next batch starts at it (inclusive).
    seek: Option<Vec<u8>>,
    returned: u64,
    done: bool,
    _pin: Option<SnapshotPin>,
}

impl std::fmt::Debug for DbIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbIter")
            .field("snapshot", &self.snapshot)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn tighter_lower<'a>(a: Bound<&'a [u8]>, b: Bound<&'a [u8]>) -> Bound<&'a [u8]> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.max(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.max(y)),
        (Bound::Included(i), Bound::Excluded(e)) | (Bound::Excluded(e), Bound::Included(i)) => {
            if i > e {
                Bound::Included(i)
            } else {
                Bound::Excluded(e)
            }
        }
    }
}

fn tighter_upper<'a>(a: Bound<&'a [u8]>, b: Bound<&'a [u8]>) -> Bound<&'a [u8]> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.min(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.min(y)),
        (Bound::Included(i), Bound::Excluded(e)) | (Bound::Excluded(e), Bound::Included(i)) => {
            if i < e {
                Bound::Included(i)
            } else {
                Bound::Excluded(e)
            }
        }
    }
}

impl DbIter {
    pub(crate) fn new(
        sv: Arc<SuperVersion>,
        snapshot: u64,
        opts: RangeOptions,
        pin: Option<SnapshotPin>,
    ) -> DbIter {
        DbIter::new_in(TreeId::State, sv, snapshot, opts, pin)
    }

    /// An iterator over `tree`.
    pub(crate) fn new_in(
        tree: TreeId,
        sv: Arc<SuperVersion>,
        snapshot: u64,
        opts: RangeOptions,
        pin: Option<SnapshotPin>,
    ) -> DbIter {
        let done = opts.limit == Some(0);
        DbIter {
            tree,
            sv,
            snapshot,
            opts,
            position: None,
            seek: None,
            returned: 0,
            done,
            _pin: pin,
        }
    }

    /// The snapshot sequence number this iterator reads at.
    pub fn snapshot_seq(&self) -> u64 {
        self.snapshot
    }

    /// Repositions: the next entry is the first at or after `target` (at or before, in
    /// reverse), still within the range. The limit keeps counting.
    pub fn seek(&mut self, target: &[u8]) {
        self.seek = Some(target.to_vec());
        self.position = None;
        self.done = self.opts.limit.is_some_and(|l| self.returned >= l);
    }

    /// Up to `max_entries` entries (and about `max_bytes`), at least one if any remains.
    pub fn next_batch(
        &mut self,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<IterBatch, DbError> {
        let mut out = IterBatch::default();
        self.next_batch_into(max_entries, max_bytes, &mut out)?;
        Ok(out)
    }

    /// As [`DbIter::next_batch`], into `out` (cleared first, its buffers reused: a scan
    /// that reuses one batch allocates nothing per entry and nothing per batch once the
    /// buffers have grown).
    pub fn next_batch_into(
        &mut self,
        max_entries: usize,
        max_bytes: usize,
        out: &mut IterBatch,
    ) -> Result<(), DbError> {
        out.data.clear();
        out.lens.clear();
        out.done = false;
        if self.done {
            out.done = true;
            return Ok(());
        }
        let sv = self.sv.clone();
        let reverse = self.opts.reverse;
        let mut lower = self.opts.lower.as_ref().map(|v| &v[..]);
        let mut upper = self.opts.upper.as_ref().map(|v| &v[..]);
        let seek = self.seek.clone();
        let position = self.position.take();
        if let Some(t) = seek.as_deref() {
            if reverse {
                upper = tighter_upper(upper, Bound::Included(t));
            } else {
                lower = tighter_lower(lower, Bound::Included(t));
            }
        }
        if let Some(p) = position.as_deref() {
            if reverse {
                upper = tighter_upper(upper, Bound::Excluded(p));
            } else {
                lower = tighter_lower(lower, Bound::Excluded(p));
            }
        }
        let mut cursors = make_cursors(
            &sv,
            self.tree,
            self.snapshot,
            lower,
            upper,
            reverse,
            self.opts.values,
        )?;
        let mut count = 0usize;
        let limit_left = self.opts.limit.map(|l| l - self.returned);
        // The last user key taken: the next batch starts after it. A put's key is where it
        // was copied into `out.data` (`last_put`: offset and length), so only a deletion's key
        // is copied aside (into `last`); nothing is allocated per key.
        let mut last: Vec<u8> = Vec::new();
        let mut last_put: Option<(usize, usize)> = None;
        let mut moved = false;
        // One source (a compacted database, or a lone memtable) needs no merge.
        let single = cursors.len() == 1;
        let result = loop {
            if count >= max_entries
                || out.data.len() >= max_bytes
                || limit_left.is_some_and(|l| count as u64 >= l)
            {
                break Ok(());
            }
            // The winning key: smallest (largest in reverse); ties go to the newest source.
            let mut best: Option<(usize, &[u8])> = None;
            for (i, c) in cursors.iter().enumerate() {
                let Some((k, _)) = c.current() else { continue };
                let better = match best {
                    None => true,
                    Some((_, bk)) if reverse => k > bk,
                    Some((_, bk)) => k < bk,
                };
                if better {
                    best = Some((i, k));
                }
            }
            let Some((b, _)) = best else {
                self.done = true;
                break Ok(());
            };
            {
                let (k, v) = cursors[b].current().expect("best is valid");
                if let Some(v) = v {
                    last_put = Some((out.data.len(), k.len()));
                    out.data.extend_from_slice(k);
                    out.lens.push(k.len() as u32);
                    if self.opts.values {
                        out.data.extend_from_slice(v);
                        out.lens.push(v.len() as u32);
                    } else {
                        out.lens.push(0);
                    }
                    count += 1;
                } else {
                    last_put = None;
                    last.clear();
                    last.extend_from_slice(k);
                }
            }
            moved = true;
            let advanced = if single {
                cursors[0].advance()
            } else {
                // Every source at the winning key moves past it (older versions lose).
                let key = match last_put {
                    Some((at, len)) => &out.data[at..at + len],
                    None => &last[..],
                };
                cursors
                    .iter_mut()
                    .filter(|c| c.current().is_some_and(|(k, _)| k == key))
                    .try_for_each(|c| c.advance())
            };
            if let Err(e) = advanced {
                break Err(e);
            }
        };
        if let Some((at, len)) = last_put {
            last.clear();
            last.extend_from_slice(&out.data[at..at + len]);
        }
        drop(cursors);
        // Where the next batch starts: after the last key taken, else (nothing taken, or a
        // failure: the batch is not delivered) where this one did.
        self.position = if moved && result.is_ok() {
            Some(last)
        } else {
            position
        };
        result?;
        self.returned += count as u64;
        if self.opts.limit.is_some_and(|l| self.returned >= l) {
            self.done = true;
        }
        out.done = self.done;
        Ok(())
    }
}

fn make_cursors<'a>(
    sv: &'a SuperVersion,
    tree: TreeId,
    snapshot: u64,
    lower: Bound<&'a [u8]>,
    upper: Bound<&'a [u8]>,
    reverse: bool,
    values: bool,
) -> Result<Vec<Box<dyn Cursor + 'a>>, DbError> {
    let mut cursors: Vec<Box<dyn Cursor + 'a>> = Vec::new();
    for m in std::iter::once(&sv.mem).chain(sv.imm.iter()) {
        let table = m.tree(tree);
        if table.is_empty() {
            continue;
        }
        cursors.push(Box::new(MemCursor::new(
            table.visible(snapshot, (lower, upper)),
            reverse,
        )));
    }
    let lo = match lower {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    };
    let hi = match upper {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    };
    let levels = sv.version.tree(tree);
    for t in &levels[0] {
        if t.overlaps(lo, hi) {
            cursors.push(Box::new(LevelCursor::new(
                std::slice::from_ref(t),
                snapshot,
                lower,
                upper,
                reverse,
                values,
            )?));
        }
    }
    for level in &levels[1..] {
        if level.is_empty() {
            continue;
        }
        cursors.push(Box::new(LevelCursor::new(
            level, snapshot, lower, upper, reverse, values,
        )?));
    }
    Ok(cursors)
}

impl Db {
    /// An iterator over `range` at `snapshot` (or at a new implicit snapshot).
    pub fn iter(&self, opts: RangeOptions, snapshot: Option<&SnapshotPin>) -> DbIter {
        let (seq, pin) = match snapshot {
            Some(s) => (s.seq, None),
            None => {
                let p = self.snapshot();
                (p.seq, Some(p))
            }
        };
        let sv = self.inner.super_version();
        DbIter::new(sv, seq, opts, pin)
    }
}
