//! What a reader pins: the memtables and the set of tables (a [`Version`]) at one moment.
//! A [`SuperVersion`] is immutable and shared by `Arc`; flush, compaction and memtable
//! rotation publish a new one. A table file that a compaction made obsolete is deleted when
//! the last version (and so the last reader) holding it is dropped.
//!
//! Two trees share the log, the memtable generation and the flushed sequence number (issue
//! 11): the key-value state ([`TreeId::State`]: `Version::levels`, `Mem::table`) and the
//! streams ([`TreeId::Streams`]: `Version::streams`, `Mem::streams`), whose user keys are
//! private (`stream_keys`). Each is an ordinary LSM tree under the same comparator; state
//! reads never look at the stream tree. A flush writes both trees of one memtable
//! generation with one manifest edit (atomic flush), so one flushed sequence number covers
//! both and replay stays "apply the records above it".

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use uringdb_uring::{File, Vfs};

use crate::internal_key;
use crate::manifest::{FileMeta, NUM_LEVELS};
use crate::memtable::MemTable;
use crate::table::Table;

use super::rate_limiter::RateLimiter;
pub(crate) use super::table_files::VfsFile;

/// Buffered sequential writes of a new table through the I/O layer (not durable until
/// [`TableWriter::sync`]). Counts the bytes written.
pub(crate) struct TableWriter {
    file: Arc<dyn File>,
    buf: Vec<u8>,
    offset: u64,
    limiter: Option<Arc<RateLimiter>>,
}

const TABLE_WRITE_CHUNK: usize = 1 << 20;

impl TableWriter {
    pub fn new(file: Arc<dyn File>, limiter: Option<Arc<RateLimiter>>) -> TableWriter {
        TableWriter {
            file,
            buf: Vec::with_capacity(TABLE_WRITE_CHUNK),
            offset: 0,
            limiter,
        }
    }

    fn write_out(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Some(l) = &self.limiter {
            l.request(self.buf.len() as u64);
        }
        self.file.write_at(self.offset, &[&self.buf], false)?;
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl Write for TableWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= TABLE_WRITE_CHUNK {
            self.write_out()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()
    }
}

/// One live table file.
pub(crate) struct TableHandle {
    pub meta: FileMeta,
    pub table: Table<VfsFile>,
    pub path: PathBuf,
    /// Set when a compaction replaced the table: the file is removed on drop.
    pub obsolete: AtomicBool,
    pub vfs: Arc<dyn Vfs>,
    /// Set while a compaction is reading this table.
    pub compacting: AtomicBool,
}

impl TableHandle {
    pub fn smallest_user_key(&self) -> &[u8] {
        internal_key::user_key(&self.meta.smallest)
    }

    pub fn largest_user_key(&self) -> &[u8] {
        internal_key::user_key(&self.meta.largest)
    }

    /// Whether the table's user-key range overlaps `[lo, hi]` (unbounded where `None`).
    pub fn overlaps(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> bool {
        lo.is_none_or(|lo| self.largest_user_key() >= lo)
            && hi.is_none_or(|hi| self.smallest_user_key() <= hi)
    }
}

impl Drop for TableHandle {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // Best effort: a file left behind is removed as an orphan at the next open.
            let _ = self.vfs.remove_file(&self.path);
        }
    }
}

impl std::fmt::Debug for TableHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableHandle")
            .field("number", &self.meta.number)
            .finish()
    }
}

/// One of the two trees (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TreeId {
    /// The key-value state (tree 0).
    State = 0,
    /// The streams (tree 1).
    Streams = 1,
}

impl TreeId {
    /// Both trees, the state first (the order of a flush's outputs).
    pub const ALL: [TreeId; 2] = [TreeId::State, TreeId::Streams];
}

/// The tables of each tree, per level. Level 0 newest first (their ranges overlap); levels
/// below sorted by key, ranges disjoint.
#[derive(Clone, Debug, Default)]
pub(crate) struct Version {
    /// The key-value state's levels.
    pub levels: Vec<Vec<Arc<TableHandle>>>,
    /// The stream tree's levels.
    pub streams: Vec<Vec<Arc<TableHandle>>>,
}

impl Version {
    pub fn empty() -> Version {
        Version {
            levels: vec![Vec::new(); NUM_LEVELS],
            streams: vec![Vec::new(); NUM_LEVELS],
        }
    }

    /// The levels of `tree`.
    pub fn tree(&self, tree: TreeId) -> &[Vec<Arc<TableHandle>>] {
        match tree {
            TreeId::State => &self.levels,
            TreeId::Streams => &self.streams,
        }
    }

    /// The levels of `tree`, to change.
    pub fn tree_mut(&mut self, tree: TreeId) -> &mut [Vec<Arc<TableHandle>>] {
        match tree {
            TreeId::State => &mut self.levels,
            TreeId::Streams => &mut self.streams,
        }
    }

    pub fn level_bytes(&self, tree: TreeId, level: usize) -> u64 {
        self.tree(tree)[level]
            .iter()
            .map(|t| t.meta.file_bytes)
            .sum()
    }

    /// Index of the first table in sorted `level` (>= 1) whose largest user key is `>= key`.
    pub fn find_file(&self, level: usize, key: &[u8]) -> usize {
        self.levels[level].partition_point(|t| t.largest_user_key() < key)
    }

    /// Tables of `level` overlapping the user-key range `[lo, hi]`.
    pub fn overlapping(
        &self,
        tree: TreeId,
        level: usize,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
    ) -> Vec<Arc<TableHandle>> {
        self.tree(tree)[level]
            .iter()
            .filter(|t| t.overlaps(lo, hi))
            .cloned()
            .collect()
    }

    /// Sorts each tree's level 0 newest first and its other levels by smallest key.
    pub fn sort(&mut self) {
        for levels in [&mut self.levels, &mut self.streams] {
            levels[0].sort_by(|a, b| {
                b.meta
                    .largest_seq
                    .cmp(&a.meta.largest_seq)
                    .then(b.meta.number.cmp(&a.meta.number))
            });
            for level in levels.iter_mut().skip(1) {
                level.sort_by(|a, b| internal_key::compare(&a.meta.smallest, &b.meta.smallest));
            }
        }
    }
}

/// One memtable generation: a memtable per tree, and the range of sequence numbers applied
/// to them (a record's state and stream entries always land in the same generation).
pub(crate) struct Mem {
    /// The key-value state's memtable.
    pub table: MemTable,
    /// The stream tree's memtable (its arena takes no memory until the first entry).
    pub streams: MemTable,
    /// Last sequence number applied (0 if none).
    pub last_seq: AtomicU64,
}

impl Mem {
    pub fn new(capacity_bytes: usize) -> Mem {
        Mem {
            table: MemTable::new(capacity_bytes),
            streams: MemTable::new(capacity_bytes),
            last_seq: AtomicU64::new(0),
        }
    }

    /// The memtable of `tree`.
    pub fn tree(&self, tree: TreeId) -> &MemTable {
        match tree {
            TreeId::State => &self.table,
            TreeId::Streams => &self.streams,
        }
    }

    /// Whether neither tree has an entry.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty() && self.streams.is_empty()
    }

    /// Whether the generation has reached the flush trigger `limit_bytes` (both trees'
    /// entries counted together), or either arena cannot take another chunk.
    pub fn is_full(&self, limit_bytes: usize) -> bool {
        self.table.approximate_bytes() + self.streams.approximate_bytes() >= limit_bytes
            || self.table.is_full(usize::MAX)
            || self.streams.is_full(usize::MAX)
    }

    /// Bytes of memory both trees' arenas hold.
    pub fn reserved_bytes(&self) -> usize {
        self.table.reserved_bytes() + self.streams.reserved_bytes()
    }

    /// Bytes both trees' entries occupy.
    pub fn approximate_bytes(&self) -> usize {
        self.table.approximate_bytes() + self.streams.approximate_bytes()
    }
}

/// Everything a reader needs, pinned together.
pub(crate) struct SuperVersion {
    pub mem: Arc<Mem>,
    /// Immutable memtables waiting for flush, newest first.
    pub imm: Vec<Arc<Mem>>,
    pub version: Arc<Version>,
}
