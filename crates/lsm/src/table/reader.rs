//! Reading a table: [`Table::open`] reads and verifies the footer, the index, the filter
//! and the properties, which the table keeps; [`Table::get`] and [`TableIter`] read data
//! blocks on demand. Every block's checksum is verified whenever it is read from the
//! source, and every damaged byte is reported as [`TableError::Corruption`] with the file
//! and the offset of the block (or footer) that failed: never wrong data, never a panic.
//!
//! A table opened with [`Table::open_cached`] looks data blocks up in a shared
//! [`BlockCache`] first, under its own table id, and caches each block it reads, after the
//! block passed its checksum and its restart-array check: a cached block is not verified
//! again. A block that fails either check is never cached, so it fails the same way on
//! every read.
//!
//! A table whose source is mapped into memory ([`ReadAt::mapped`], a [`super::Mapping`])
//! borrows its uncompressed data blocks from the mapping instead of reading and caching
//! them: a point read then costs no system call, no copy, no allocation and no cache lock.
//! Compressed blocks still go through the cache (decompressing is the cost it saves).
//!
//! A `Table` is immutable after open and `Send + Sync` when its source is: any number of
//! threads may call `get` and iterate at once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::{Block, BlockError, POINT_KEY_BYTES_MAX};
use super::comparator::Comparator;
use super::error::TableError;
use super::filter::Filter;
use super::footer::{Footer, FooterError, FOOTER_BYTES};
use super::index::BlockHandle;
use super::properties::{decode_metaindex, MetaError, TableProperties};
use super::read_at::{read_block, read_exact_at, ReadAt};
use super::trailer;
use crate::cache::BlockCache;

/// A key and its value, copied out of a block.
pub type OwnedEntry = (Vec<u8>, Vec<u8>);

/// What a region of a table file holds (see [`Table::layout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegionKind {
    /// A data block.
    Data,
    /// The bloom filter block.
    Filter,
    /// The index block.
    Index,
    /// The metaindex (properties) block.
    Metaindex,
    /// The footer.
    Footer,
}

/// A region of a table file: a stored block (trailer included) or the footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// What it holds.
    pub kind: RegionKind,
    /// Byte offset in the file.
    pub offset: u64,
    /// Bytes, trailer included.
    pub bytes: u64,
}

/// An open table. See the module documentation.
pub struct Table<R: ReadAt> {
    src: R,
    file: PathBuf,
    pub(super) cmp: Comparator,
    footer: Footer,
    /// Data blocks lie in `[0, data_end)`.
    data_end: u64,
    pub(super) index: Block<'static>,
    /// Per index entry, the first 8 bytes of its user key (zero-padded, big-endian): a
    /// dense array searched before the index block itself (see [`IndexPrefixes`]).
    pub(super) index_prefixes: Option<IndexPrefixes>,
    filter: Option<Filter>,
    props: TableProperties,
    /// The shared cache of data blocks and this table's id in it.
    cache: Option<(Arc<BlockCache>, u64)>,
}

// A table is shared by readers on many threads (through versions held by `Arc`): it is
// `Send + Sync` for every source that is.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn for_every_source<R: ReadAt + Send + Sync>() {
        send_sync::<Table<R>>();
    }
    for_every_source::<File>();
};

impl<R: ReadAt> std::fmt::Debug for Table<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("file", &self.file)
            .field("props", &self.props)
            .finish_non_exhaustive()
    }
}

impl<R: ReadAt> Table<R> {
    /// Opens the table stored in the first `file_size` bytes of `src` (the size recorded
    /// when it was written), expecting keys ordered by `cmp`. `file` names the file in
    /// errors. Reads and verifies the footer, index, filter and metaindex blocks. Data
    /// blocks are read from `src` on every use: [`Table::open_cached`] without a cache.
    pub fn open(
        src: R,
        file_size: u64,
        file: impl Into<PathBuf>,
        cmp: Comparator,
    ) -> Result<Table<R>, TableError> {
        Table::open_cached(src, file_size, file, cmp, None)
    }

    /// [`Table::open`], with data blocks looked up in (and, once read and verified, added
    /// to) `cache` if one is given. The table takes a new id from the cache, so its blocks
    /// are never confused with those of another table or of another open of this file.
    /// The index, filter and metaindex blocks are held by the table itself, not cached.
    pub fn open_cached(
        src: R,
        file_size: u64,
        file: impl Into<PathBuf>,
        cmp: Comparator,
        cache: Option<Arc<BlockCache>>,
    ) -> Result<Table<R>, TableError> {
        let file = file.into();
        let corrupt = |offset: u64, reason: String| TableError::Corruption {
            file: file.clone(),
            offset,
            reason,
        };
        let Some(footer_at) = file_size.checked_sub(FOOTER_BYTES as u64) else {
            return Err(corrupt(
                0,
                format!("file of {file_size} bytes is shorter than a table footer"),
            ));
        };
        let mut raw = [0u8; FOOTER_BYTES];
        read_exact_at(&src, footer_at, &mut raw, &file)?;
        let footer = Footer::decode(&raw).map_err(|e| match e {
            FooterError::BadMagic => corrupt(
                footer_at,
                "bad table magic (not a table, or truncated)".into(),
            ),
            FooterError::BadCrc => corrupt(footer_at, "footer checksum mismatch".into()),
            FooterError::UnsupportedVersion(version) => TableError::UnsupportedVersion {
                file: file.clone(),
                version,
            },
        })?;
        // Meta blocks follow the data blocks; each must lie before the footer, in order.
        let mut data_end = footer.index.offset.min(footer.metaindex.offset);
        for (what, h) in [
            ("metaindex", Some(footer.metaindex)),
            ("index", Some(footer.index)),
            ("filter", footer.filter),
        ] {
            let Some(h) = h else { continue };
            if !h.fits_before(footer_at) {
                return Err(corrupt(
                    footer_at,
                    format!("footer's {what} handle points outside the file"),
                ));
            }
            data_end = data_end.min(h.offset);
        }
        let meta = read_block(&src, &file, footer.metaindex, "metaindex")?;
        let mut props = decode_metaindex(meta).map_err(|e| match e {
            MetaError::Malformed(reason) => corrupt(footer.metaindex.offset, reason),
            MetaError::UnknownComparator(found) => TableError::ComparatorMismatch {
                file: file.clone(),
                expected: cmp.name(),
                found,
            },
        })?;
        if props.comparator != cmp {
            return Err(TableError::ComparatorMismatch {
                file,
                expected: cmp.name(),
                found: props.comparator.name().into(),
            });
        }
        let index = read_block(&src, &file, footer.index, "index")?;
        let index = Block::new(index).map_err(|e| {
            corrupt(
                footer.index.offset,
                format!(
                    "index block: {} at byte {} of the decoded block",
                    e.reason, e.offset
                ),
            )
        })?;
        let filter = match footer.filter {
            Some(h) => {
                let f = read_block(&src, &file, h, "filter")?;
                let f =
                    Filter::new(f).map_err(|r| corrupt(h.offset, format!("filter block: {r}")))?;
                Some(f)
            }
            None => None,
        };
        props.file_bytes = file_size;
        props.index_bytes = footer.index.stored_bytes();
        props.filter_bytes = footer.filter.map_or(0, |h| h.stored_bytes());
        let cache = cache.map(|c| {
            let id = c.new_table_id();
            (c, id)
        });
        let index_prefixes = IndexPrefixes::build(&index, cmp);
        Ok(Table {
            src,
            file,
            cmp,
            footer,
            data_end,
            index,
            index_prefixes,
            filter,
            props,
            cache,
        })
    }

    /// This table's id in its block cache, if it was opened with one (for
    /// [`BlockCache::erase_table`] when its file is deleted).
    pub fn cache_id(&self) -> Option<u64> {
        self.cache.as_ref().map(|(_, id)| *id)
    }

    /// The table's properties.
    pub fn properties(&self) -> &TableProperties {
        &self.props
    }

    /// The file name given at open.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// False if no key with `key`'s filter key (the user key, for internal keys) is in the
    /// table; true if one may be. Always true for a table without a filter.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.may_contain(self.cmp.filter_key(key)))
    }

    /// The value stored under exactly `key`, if any. Consults the filter first, then reads
    /// at most one data block.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TableError> {
        Ok(self
            .get_entry(key)?
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v))
    }

    /// The first entry at or after `key` whose filter key equals `key`'s, if any. For an
    /// internal-key table and a lookup key ([`crate::internal_key::encode_lookup`]) this
    /// is the newest version of the user key visible at the lookup's sequence number (the
    /// caller checks its kind: it may be a tombstone).
    pub fn get_entry(&self, key: &[u8]) -> Result<Option<OwnedEntry>, TableError> {
        if !self.may_contain(key) {
            return Ok(None);
        }
        self.find_with(key, |k, v| (k.to_vec(), v.to_vec()))
    }

    /// As [`Table::get_entry`] without consulting the filter (the caller did) and without
    /// copying: the entry's key and value, borrowed from the cached block, go to `f`.
    pub fn find_with<T>(
        &self,
        key: &[u8],
        f: impl FnOnce(&[u8], &[u8]) -> T,
    ) -> Result<Option<T>, TableError> {
        // The common case without a cursor (see `Block::seek_point`): the index entry from
        // the prefix array, the data block, the entry; anything unusual takes the cursor,
        // which reads the same bytes through the same checks and reports any damage.
        if let Some(i) = self
            .index_prefixes
            .as_ref()
            .and_then(|p| p.seek(&self.index, self.cmp, key))
        {
            if i >= self.index.restart_count() {
                return Ok(None); // every key of the table is smaller
            }
            if let Some((_, v)) = self.index.restart_kv(i) {
                let h = self.decode_index_value(v)?;
                let block = self.data_block(h)?;
                let mut buf = [0u8; POINT_KEY_BYTES_MAX];
                if let Some((n, value)) = block.seek_point(self.cmp, key, &mut buf) {
                    let k = &buf[..n];
                    return Ok(
                        (self.cmp.filter_key(k) == self.cmp.filter_key(key)).then(|| f(k, value))
                    );
                }
            }
        }
        let mut it = self.iter();
        it.seek(key)?;
        if it.valid() && self.cmp.filter_key(it.key()) == self.cmp.filter_key(key) {
            return Ok(Some(f(it.key(), it.value())));
        }
        Ok(None)
    }
    /// Every region of the file in offset order: data blocks (from the index), filter,
    /// index, metaindex, footer. For tools and tests (e.g. to damage one block on purpose).
    pub fn layout(&self) -> Result<Vec<Region>, TableError> {
        let mut out = Vec::new();
        let mut it = self.index.iter(self.cmp);
        it.seek_to_first().map_err(|e| self.index_error(e))?;
        while it.valid() {
            let h = self.decode_index_value(it.value())?;
            out.push(Region {
                kind: RegionKind::Data,
                offset: h.offset,
                bytes: h.stored_bytes(),
            });
            it.next().map_err(|e| self.index_error(e))?;
        }
        let f = &self.footer;
        let mut meta = vec![
            (RegionKind::Index, f.index),
            (RegionKind::Metaindex, f.metaindex),
        ];
        if let Some(h) = f.filter {
            meta.push((RegionKind::Filter, h));
        }
        meta.sort_by_key(|(_, h)| h.offset);
        for (kind, h) in meta {
            out.push(Region {
                kind,
                offset: h.offset,
                bytes: h.stored_bytes(),
            });
        }
        out.push(Region {
            kind: RegionKind::Footer,
            offset: self.props.file_bytes - FOOTER_BYTES as u64,
            bytes: FOOTER_BYTES as u64,
        });
        Ok(out)
    }

    /// The data block at `h`. From a source mapped into memory (see [`ReadAt::mapped`]), an
    /// uncompressed block is verified and borrowed where it lies, without the cache (the
    /// page cache is its cache: no copy, no lock); a compressed block is looked up in the
    /// cache, else verified and decoded from the mapping and cached. From any other source:
    /// the cache, else read, verified, decoded and cached.
    pub(super) fn data_block(&self, h: BlockHandle) -> Result<Block<'_>, TableError> {
        let mapped = match self.src.mapped() {
            Some(bytes) => {
                let stored = usize::try_from(h.offset)
                    .ok()
                    .and_then(|at| bytes.get(at..at.checked_add(h.stored_bytes() as usize)?))
                    .ok_or_else(|| {
                        self.corrupt(
                            h.offset,
                            format!(
                                "file of {} bytes ends inside a {}-byte data block",
                                bytes.len(),
                                h.stored_bytes()
                            ),
                        )
                    })?;
                if trailer::is_uncompressed(stored) {
                    let payload = trailer::verify_uncompressed(stored).map_err(|reason| {
                        self.corrupt(h.offset, format!("data block: {reason}"))
                    })?;
                    return Block::borrowed(payload).map_err(|e| data_error(self, h, e));
                }
                Some(stored)
            }
            None => None,
        };
        if let Some((cache, id)) = &self.cache {
            if let Some(block) = cache.get(*id, h.offset) {
                return Ok(block);
            }
        }
        let raw = match mapped {
            Some(stored) => trailer::decode(stored)
                .map_err(|reason| self.corrupt(h.offset, format!("data block: {reason}")))?,
            None => read_block(&self.src, &self.file, h, "data")?,
        };
        let block_bytes = raw.len();
        let block = Block::new(raw).map_err(|e| data_error(self, h, e))?;
        if let Some((cache, id)) = &self.cache {
            cache.insert(*id, h.offset, block.clone(), block_bytes);
        }
        Ok(block)
    }

    fn corrupt(&self, offset: u64, reason: String) -> TableError {
        TableError::Corruption {
            file: self.file.clone(),
            offset,
            reason,
        }
    }

    pub(super) fn index_error(&self, e: BlockError) -> TableError {
        self.corrupt(
            self.footer.index.offset,
            format!(
                "index block: {} at byte {} of the decoded block",
                e.reason, e.offset
            ),
        )
    }

    pub(super) fn decode_index_value(&self, v: &[u8]) -> Result<BlockHandle, TableError> {
        match BlockHandle::decode_exact(v) {
            Some(h) if h.fits_before(self.data_end) => Ok(h),
            _ => Err(self.corrupt(
                self.footer.index.offset,
                "index block: bad data block handle".into(),
            )),
        }
    }
}

/// An in-memory aid to the index block, built when a table is opened (8 bytes per data
/// block): the first 8 bytes of each index entry's user key, zero-padded, as a big-endian
/// number. Index entries are in key order and the user key comes first in that order, so
/// these numbers never decrease; a seek narrows the index to the entries whose number
/// equals its target's by binary search over this dense array (a few cache lines) and
/// compares whole keys only there (usually none or one), instead of a binary search over
/// the index block, which costs a cache miss or two per probe on a large table.
pub(crate) struct IndexPrefixes(Box<[u64]>);

impl IndexPrefixes {
    /// `None` for an index that is not one entry per restart point or has a malformed
    /// entry: the cursor then searches the block itself (which reports the damage).
    fn build(index: &Block<'_>, cmp: Comparator) -> Option<IndexPrefixes> {
        let n = index.restart_count();
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let k = index.restart_key(i)?;
            let p = prefix(cmp.filter_key(k));
            if v.last().is_some_and(|&last| last > p) {
                return None;
            }
            v.push(p);
        }
        Some(IndexPrefixes(v.into()))
    }

    /// The index entry a seek for `target` lands on (the first whose key is `>= target`;
    /// the entry count if none), or `None` if an entry it compares is malformed.
    pub(crate) fn seek(&self, index: &Block<'_>, cmp: Comparator, target: &[u8]) -> Option<usize> {
        let p = prefix(cmp.filter_key(target));
        let lo = self.0.partition_point(|&x| x < p);
        let hi = lo + self.0[lo..].partition_point(|&x| x == p);
        // Entries below `lo` are smaller than the target, entries from `hi` on larger; in
        // between the prefixes tie and whole keys decide.
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            if cmp.compare(index.restart_key(mid)?, target) == std::cmp::Ordering::Less {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        Some(a)
    }
}

/// The first 8 bytes of `key`, zero-padded, big-endian: `a <= b` bytewise implies
/// `prefix(a) <= prefix(b)`.
fn prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

pub(super) fn data_error<R: ReadAt>(t: &Table<R>, h: BlockHandle, e: BlockError) -> TableError {
    t.corrupt(
        h.offset,
        format!(
            "data block: {} at byte {} of the decoded block",
            e.reason, e.offset
        ),
    )
}

impl<R: ReadAt> Table<R> {
    #[cfg(test)]
    pub(crate) fn comparator(&self) -> Comparator {
        self.cmp
    }
}

/// The typed face of the cache. It lives here because the decoded block type is private to
/// the table module; the cache itself stores values type-erased (see [`crate::cache`]).
impl BlockCache {
    /// The data block cached under `(table_id, offset)`, counting a hit or a miss.
    pub(crate) fn get(&self, table_id: u64, offset: u64) -> Option<Block<'static>> {
        // Only `insert` below stores values, and only blocks.
        self.get_value_with(table_id, offset, |value| {
            let block = value.downcast_ref::<Block<'static>>();
            debug_assert!(block.is_some(), "a block cache holds only blocks");
            block.cloned()
        })?
    }

    /// Caches the data block at `offset` of table `table_id`, verified and decoded into
    /// `block_bytes` bytes (its charge, with the per-entry overhead).
    pub(crate) fn insert(
        &self,
        table_id: u64,
        offset: u64,
        block: Block<'static>,
        block_bytes: usize,
    ) {
        self.insert_value(table_id, offset, Arc::new(block), block_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Compression, TableBuilder, TableOptions};
    use std::cmp::Ordering;

    fn build(n: u32, opts: TableOptions) -> Vec<u8> {
        let mut out = Vec::new();
        let mut b = TableBuilder::new(&mut out, opts).expect("builder");
        for i in 0..n {
            b.add(format!("k{i:06}").as_bytes(), format!("v{i}").as_bytes())
                .expect("add");
        }
        let p = b.finish().expect("finish");
        assert_eq!(p.file_bytes, out.len() as u64);
        out
    }

    #[test]
    fn get_and_iterate_small_table() {
        let bytes = build(
            500,
            TableOptions {
                block_bytes: 256,
                compression: Compression::None,
                ..Default::default()
            },
        );
        let t =
            Table::open(&bytes, bytes.len() as u64, "t.sst", Comparator::Bytewise).expect("open");
        assert_eq!(t.comparator(), Comparator::Bytewise);
        assert_eq!(t.get(b"k000123").expect("get"), Some(b"v123".to_vec()));
        assert_eq!(t.get(b"k000123x").expect("get"), None);
        assert_eq!(t.get(b"a").expect("get"), None);
        let mut it = t.iter();
        it.seek_to_first().expect("first");
        let mut n = 0;
        let mut prev: Option<Vec<u8>> = None;
        while it.valid() {
            if let Some(p) = &prev {
                assert_eq!(p.as_slice().cmp(it.key()), Ordering::Less);
            }
            prev = Some(it.key().to_vec());
            n += 1;
            it.next().expect("next");
        }
        assert_eq!(n, 500);
        let layout = t.layout().expect("layout");
        assert!(layout.iter().filter(|r| r.kind == RegionKind::Data).count() > 10);
        let total: u64 = layout.iter().map(|r| r.bytes).sum();
        assert_eq!(total, bytes.len() as u64, "regions tile the file");
    }

    /// The index prefix array only narrows a seek: with keys that tie on their first 8
    /// bytes (long shared prefixes), keys shorter than 8 bytes, internal keys, and targets
    /// between, before and after every key, a seek lands where a search of the index block
    /// itself lands (checked against the sorted key list).
    #[test]
    fn seeks_through_the_index_prefixes_land_where_the_index_block_search_does() {
        use crate::internal_key::{encode, encode_lookup, ValueKind};
        let mut users: Vec<Vec<u8>> = Vec::new();
        for i in 0..600u32 {
            users.push(format!("user:000{i:05}").into_bytes()); // 8-byte prefix ties
            users.push(i.to_be_bytes()[2..].to_vec()); // short keys
            users.push(format!("{i:04}").into_bytes());
        }
        users.sort();
        users.dedup();
        for cmp in [Comparator::Bytewise, Comparator::InternalKey] {
            let keys: Vec<Vec<u8>> = match cmp {
                Comparator::Bytewise => users.clone(),
                Comparator::InternalKey => users
                    .iter()
                    .map(|u| {
                        let mut k = Vec::new();
                        encode(&mut k, u, 7, ValueKind::Put);
                        k
                    })
                    .collect(),
            };
            let mut out = Vec::new();
            let mut b = TableBuilder::new(
                &mut out,
                TableOptions {
                    block_bytes: 256,
                    compression: Compression::None,
                    comparator: cmp,
                    ..Default::default()
                },
            )
            .expect("builder");
            for k in &keys {
                b.add(k, b"v").expect("add");
            }
            b.finish().expect("finish");
            let t = Table::open(out.as_slice(), out.len() as u64, "p.sst", cmp).expect("open");
            assert!(t.index_prefixes.is_some(), "prefixes built");
            let mut targets: Vec<Vec<u8>> = keys.clone();
            for u in &users {
                let mut longer = u.clone();
                longer.push(0);
                for x in [longer, u[..u.len() - 1].to_vec()] {
                    targets.push(match cmp {
                        Comparator::Bytewise => x,
                        Comparator::InternalKey => {
                            let mut k = Vec::new();
                            encode_lookup(&mut k, &x, 3);
                            k
                        }
                    });
                }
            }
            targets.push(vec![0xff; 20]);
            targets.push(Vec::new());
            for target in &targets {
                let want = keys
                    .iter()
                    .find(|k| cmp.compare(k, target) != Ordering::Less);
                let mut it = t.iter();
                it.seek(target).expect("seek");
                assert_eq!(
                    it.valid().then(|| it.key().to_vec()).as_ref(),
                    want,
                    "{cmp:?}: seek {target:?}"
                );
            }
        }
    }

    /// The cursor-free point lookup (`find_with`) finds what a cursor seek finds, for
    /// internal keys with many versions (runs of one user key straddling block and restart
    /// boundaries), user keys long enough to take the cursor (beyond
    /// `POINT_KEY_BYTES_MAX`), and lookups between, before and after every key.
    #[test]
    fn point_lookups_find_what_a_cursor_seek_finds() {
        use crate::internal_key::{encode, encode_lookup, ValueKind};
        let mut users: Vec<Vec<u8>> = (0..300u32)
            .map(|i| format!("user{:05}", i * 2).into_bytes())
            .collect();
        users.push(vec![b'u'; 300]); // longer than the stack buffer
        users.push([b"user00100".as_slice(), &[b'x'; 290]].concat());
        users.sort();
        let mut keys = Vec::new();
        for (n, u) in users.iter().enumerate() {
            for seq in (1..=1 + (n as u64 % 9)).rev() {
                let mut k = Vec::new();
                encode(&mut k, u, seq * 10, ValueKind::Put);
                keys.push(k);
            }
        }
        for restart_interval in [1, 4, 16] {
            let mut out = Vec::new();
            let mut b = TableBuilder::new(
                &mut out,
                TableOptions {
                    block_bytes: 256,
                    restart_interval,
                    compression: Compression::None,
                    comparator: Comparator::InternalKey,
                    ..Default::default()
                },
            )
            .expect("builder");
            for (i, k) in keys.iter().enumerate() {
                b.add(k, format!("v{i}").as_bytes()).expect("add");
            }
            b.finish().expect("finish");
            let t = Table::open(
                out.as_slice(),
                out.len() as u64,
                "p.sst",
                Comparator::InternalKey,
            )
            .expect("open");
            assert!(t.index_prefixes.is_some());
            let mut probes: Vec<Vec<u8>> = users.clone();
            for u in &users {
                probes.push([u.as_slice(), b"0"].concat());
                probes.push(u[..u.len() - 1].to_vec());
            }
            probes.push(Vec::new());
            probes.push(vec![0xff; 12]);
            for u in &probes {
                for seq in [0u64, 5, 10, 15, 35, 90, 1000] {
                    let mut target = Vec::new();
                    encode_lookup(&mut target, u, seq);
                    let mut it = t.iter();
                    it.seek(&target).expect("seek");
                    let want = (it.valid()
                        && t.cmp.filter_key(it.key()) == t.cmp.filter_key(&target))
                    .then(|| (it.key().to_vec(), it.value().to_vec()));
                    let got = t
                        .find_with(&target, |k, v| (k.to_vec(), v.to_vec()))
                        .expect("find");
                    assert_eq!(got, want, "interval {restart_interval}: {u:?} @ {seq}");
                }
            }
        }
    }

    #[test]
    fn empty_table() {
        let bytes = build(0, TableOptions::default());
        let t = Table::open(
            bytes.as_slice(),
            bytes.len() as u64,
            "e.sst",
            Comparator::Bytewise,
        )
        .expect("open");
        assert_eq!(t.properties().entries, 0);
        assert_eq!(t.get(b"x").expect("get"), None);
        let mut it = t.iter();
        it.seek_to_first().expect("first");
        assert!(!it.valid());
        it.seek_to_last().expect("last");
        assert!(!it.valid());
        it.seek(b"").expect("seek");
        assert!(!it.valid());
    }

    #[test]
    fn comparator_mismatch_is_reported() {
        let bytes = build(3, TableOptions::default());
        let e = Table::open(&bytes, bytes.len() as u64, "c.sst", Comparator::InternalKey)
            .expect_err("mismatch");
        assert!(matches!(e, TableError::ComparatorMismatch { .. }), "{e}");
    }
}
