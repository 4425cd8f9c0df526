//! Data blocks (and the index and metaindex blocks, which share the format): sorted
//! key/value entries with prefix-compressed keys and restart points.
//!
//! This is the decoded block, as it is before compression and after decompression; what
//! wraps it on disk (compression type and checksum) lives in [`super::trailer`]. Fixed-width
//! integers are little-endian; varints are LEB128 ([`super::coding`]).
//!
//! ```text
//! entry (repeated, keys strictly ascending in the table's comparator order):
//!   shared     varint  bytes this key shares with the previous key (0 at a restart point)
//!   unshared   varint  bytes of the key that follow
//!   value_len  varint
//!   key_delta  [unshared]  key[shared..]
//!   value      [value_len]
//! restart array:
//!   restart    u32 × n  offset of every restart entry; the first is 0, strictly ascending
//!   n          u32      number of restart points (0 only in a block with no entries)
//! ```
//!
//! Every `restart_interval`-th entry is a restart point: its key is stored whole, so a seek
//! binary-searches the restart keys and then scans at most one interval linearly, and
//! reverse iteration re-scans forward from the restart point before the current entry.
//!
//! The decoder never trusts the bytes: a block that passed its checksum can still have
//! been written by a buggy writer, so every length and offset is bounds-checked and a bad
//! one is a [`BlockError`] naming the offset within the decoded block.

use std::cmp::Ordering;
use std::sync::Arc;

use super::coding::{get_u32_le, get_varint_bounded, put_varint};
use super::comparator::Comparator;
use super::limits::BLOCK_BYTES_MAX;

/// Bytes of the restart count at the end of a block.
const COUNT_BYTES: usize = 4;
/// Initial capacity of a cursor's key buffer: an internal key of a 16-byte user key is 24
/// bytes; larger keys grow it once.
const KEY_CAPACITY_BYTES: usize = 64;

/// Why a decoded block is malformed: where (offset within the decoded block) and what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockError {
    /// Offset within the decoded block.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

fn bad(offset: usize, reason: &'static str) -> BlockError {
    BlockError { offset, reason }
}

/// Builds one block. Keys must be added in strictly ascending order (the table builder
/// checks this with the comparator; the block itself is order-agnostic).
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    /// A builder that makes every `restart_interval`-th entry a restart point.
    pub(crate) fn new(restart_interval: usize) -> BlockBuilder {
        assert!(restart_interval >= 1, "restart interval must be at least 1");
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval,
            since_restart: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry. The caller keeps the block under [`BLOCK_BYTES_MAX`] (the table
    /// builder bounds keys and values and flushes blocks at the target size).
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.since_restart.is_multiple_of(self.restart_interval) {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.since_restart += 1;
        self.entries += 1;
        debug_assert!(self.buf.len() <= BLOCK_BYTES_MAX);
    }

    /// Entries added since the last reset.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Size of the block if it were finished now.
    pub(crate) fn estimated_bytes(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + COUNT_BYTES
    }

    /// Appends the restart array and returns the finished block. Call [`Self::reset`]
    /// before adding again.
    pub(crate) fn finish(&mut self) -> &[u8] {
        for r in &self.restarts {
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.buf
            .extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        &self.buf
    }

    /// Empties the builder for the next block (keeps its allocations).
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
    }
}

/// A decoded block's bytes: shared (decoded into memory: a block read with `pread`,
/// decompressed, or held by the block cache) or borrowed (straight from a table file mapped
/// into memory, for as long as the table lives).
#[derive(Clone, Debug)]
enum Bytes<'a> {
    Shared(Arc<[u8]>),
    Borrowed(&'a [u8]),
}

impl Bytes<'_> {
    #[inline]
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Shared(b) => b,
            Bytes::Borrowed(b) => b,
        }
    }
}

/// A decoded, validated block, cheap to clone (shared or borrowed bytes): the unit a block
/// cache holds (`Block<'static>`, shared bytes). Validation checks the restart array;
/// entries are checked as they are decoded.
#[derive(Clone, Debug)]
pub(crate) struct Block<'a> {
    data: Bytes<'a>,
    /// End of the entries (start of the restart array).
    entries_end: usize,
    restarts: usize,
}

/// Checks the restart array of a decoded block: `(entries_end, restart count)`.
fn validate(data: &[u8]) -> Result<(usize, usize), BlockError> {
    if data.len() < COUNT_BYTES {
        return Err(bad(0, "block shorter than its restart count"));
    }
    let count_at = data.len() - COUNT_BYTES;
    let restarts = get_u32_le(data, count_at).unwrap_or(u32::MAX) as usize;
    let array_bytes = restarts
        .checked_mul(4)
        .filter(|&b| b <= count_at)
        .ok_or(bad(count_at, "restart count larger than the block"))?;
    let entries_end = count_at - array_bytes;
    if restarts == 0 && entries_end != 0 {
        return Err(bad(count_at, "entries without a restart point"));
    }
    let mut prev: Option<u32> = None;
    for i in 0..restarts {
        let at = entries_end + 4 * i;
        let r = get_u32_le(data, at).unwrap_or(u32::MAX);
        let ok = match prev {
            None => r == 0,
            Some(p) => r > p && (r as usize) < entries_end,
        };
        if !ok {
            return Err(bad(
                at,
                "restart offsets not ascending from 0 within the entries",
            ));
        }
        prev = Some(r);
    }
    Ok((entries_end, restarts))
}

impl Block<'static> {
    /// Validates the restart array of a decoded block.
    pub(crate) fn new(data: Vec<u8>) -> Result<Block<'static>, BlockError> {
        let (entries_end, restarts) = validate(&data)?;
        Ok(Block {
            data: Bytes::Shared(data.into()),
            entries_end,
            restarts,
        })
    }
}

impl<'a> Block<'a> {
    /// A block over bytes it borrows (a table file mapped into memory), validated as by
    /// [`Block::new`].
    pub(crate) fn borrowed(data: &'a [u8]) -> Result<Block<'a>, BlockError> {
        let (entries_end, restarts) = validate(data)?;
        Ok(Block {
            data: Bytes::Borrowed(data),
            entries_end,
            restarts,
        })
    }

    /// An iterator positioned nowhere (not valid) until a seek.
    pub(crate) fn iter(&self, cmp: Comparator) -> BlockIter<'a> {
        BlockIter {
            block: self.clone(),
            cmp,
            pos: self.entries_end,
            next_pos: self.entries_end,
            restart: 0,
            // Room for a typical internal key, so that decoding does not grow it piecemeal.
            key: Vec::with_capacity(KEY_CAPACITY_BYTES),
            value: (0, 0),
        }
    }

    /// The key of the first entry of restart run `i`, borrowed from the block (a restart
    /// entry shares no prefix, so its key is contiguous). `None` if the entry is malformed:
    /// the caller decodes it the slow way to report where.
    pub(crate) fn restart_key(&self, i: usize) -> Option<&[u8]> {
        let d = &self.data.get()[..self.entries_end];
        let mut p = self.restart_offset(i);
        let (shared, n) = get_varint_bounded(d.get(p..)?, BLOCK_BYTES_MAX)?;
        p += n;
        let (unshared, n) = get_varint_bounded(d.get(p..)?, BLOCK_BYTES_MAX)?;
        p += n;
        let (_value_len, n) = get_varint_bounded(d.get(p..)?, BLOCK_BYTES_MAX)?;
        p += n;
        if shared != 0 {
            return None;
        }
        d.get(p..p.checked_add(unshared)?)
    }

    /// Restart points of the block (every entry, for an index block).
    pub(crate) fn restart_count(&self) -> usize {
        self.restarts
    }

    fn restart_offset(&self, i: usize) -> usize {
        // Validated in `new`.
        get_u32_le(self.data.get(), self.entries_end + 4 * i).unwrap_or(0) as usize
    }

    /// Bytes of the decoded block.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.data.get().len()
    }
}

/// Longest key [`Block::seek_point`] rebuilds on the stack; a longer one takes the cursor.
pub(crate) const POINT_KEY_BYTES_MAX: usize = 256;

impl<'a> Block<'a> {
    /// The key and value of the first entry of restart run `i` (an index entry, in an index
    /// of one entry per restart point), borrowed; `None` if `i` is past the last run or the
    /// entry is malformed (the cursor then reports where).
    pub(crate) fn restart_kv(&self, i: usize) -> Option<(&[u8], &[u8])> {
        if i >= self.restarts {
            return None;
        }
        let d = &self.data.get()[..self.entries_end];
        let mut p = self.restart_offset(i);
        let mut field = || {
            let (v, n) = get_varint_bounded(d.get(p..)?, BLOCK_BYTES_MAX)?;
            p += n;
            Some(v)
        };
        let (shared, unshared, value_len) = (field()?, field()?, field()?);
        if shared != 0 {
            return None;
        }
        let key_end = p.checked_add(unshared)?;
        Some((
            d.get(p..key_end)?,
            d.get(key_end..key_end.checked_add(value_len)?)?,
        ))
    }

    /// A point lookup without a cursor: the first entry whose key is `>= target`, its key
    /// rebuilt into `key` (its length returned) and its value borrowed. `None` whenever the
    /// answer is not that simple — no such entry in this block (it may start the next
    /// one), a key longer than `key`, or any malformed byte — and then the caller seeks
    /// with a cursor, which finds the entry in the next block or reports the damage. So
    /// this never decides differently from [`BlockIter::seek`]; it only skips the cursor's
    /// allocation and copies on the common path.
    pub(crate) fn seek_point(
        &self,
        cmp: Comparator,
        target: &[u8],
        key: &mut [u8; POINT_KEY_BYTES_MAX],
    ) -> Option<(usize, &[u8])> {
        if self.restarts == 0 {
            return None;
        }
        // The last restart point whose key is < target (as `BlockIter::seek`).
        let (mut lo, mut hi) = (0usize, self.restarts - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if cmp.compare(self.restart_key(mid)?, target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let d = &self.data.get()[..self.entries_end];
        let mut run = lo;
        let mut at = self.restart_offset(run);
        let mut len = 0usize;
        loop {
            let is_restart = at == self.restart_offset(run);
            let mut p = at;
            let mut field = || {
                let (v, n) = get_varint_bounded(d.get(p..)?, BLOCK_BYTES_MAX)?;
                p += n;
                Some(v)
            };
            let (shared, unshared, value_len) = (field()?, field()?, field()?);
            if shared > len || (is_restart && shared != 0) {
                return None;
            }
            let key_end = p.checked_add(unshared)?;
            let value_end = key_end.checked_add(value_len)?;
            let delta = d.get(p..key_end)?;
            let value = d.get(key_end..value_end)?;
            len = shared.checked_add(unshared)?;
            key.get_mut(shared..len)?.copy_from_slice(delta);
            if cmp.compare(&key[..len], target) != Ordering::Less {
                return Some((len, value));
            }
            if value_end >= self.entries_end {
                return None; // past this block: the next one's first entry, via the cursor
            }
            at = value_end;
            if run + 1 < self.restarts && self.restart_offset(run + 1) == at {
                run += 1;
            }
        }
    }
}

/// A cursor over a block's entries: seek, next, prev. Each move returns an error if the
/// entries it decodes are malformed; after an error the cursor is not valid.
pub(crate) struct BlockIter<'a> {
    block: Block<'a>,
    cmp: Comparator,
    /// Offset of the current entry (`entries_end` when not valid).
    pos: usize,
    /// Offset just past the current entry.
    next_pos: usize,
    /// Index of the restart run that contains `pos`.
    restart: usize,
    key: Vec<u8>,
    /// Value range within the block.
    value: (usize, usize),
}

impl BlockIter<'_> {
    /// Whether the cursor is on an entry.
    pub(crate) fn valid(&self) -> bool {
        self.pos < self.block.entries_end
    }

    /// The current key.
    ///
    /// # Panics
    /// If the cursor is not valid (a programmer error).
    pub(crate) fn key(&self) -> &[u8] {
        assert!(self.valid(), "key() on an invalid block cursor");
        &self.key
    }

    /// The current value.
    ///
    /// # Panics
    /// If the cursor is not valid.
    pub(crate) fn value(&self) -> &[u8] {
        assert!(self.valid(), "value() on an invalid block cursor");
        &self.block.data.get()[self.value.0..self.value.1]
    }

    fn invalidate(&mut self) {
        self.pos = self.block.entries_end;
        self.next_pos = self.block.entries_end;
        self.key.clear();
    }

    /// Decodes the entry at `at` on top of `self.key` (the previous key in the run).
    fn decode_at(&mut self, at: usize) -> Result<(), BlockError> {
        let end = self.block.entries_end;
        let d = &self.block.data.get()[..end];
        let mut p = at;
        let mut field = |what: &'static str| -> Result<usize, BlockError> {
            let (v, n) = get_varint_bounded(d.get(p..).unwrap_or(&[]), BLOCK_BYTES_MAX)
                .ok_or(bad(p, what))?;
            p += n;
            Ok(v)
        };
        let shared = field("bad shared-prefix length")?;
        let unshared = field("bad key length")?;
        let value_len = field("bad value length")?;
        let is_restart = self.block.restart_offset(self.restart) == at;
        if shared > self.key.len() || (is_restart && shared != 0) {
            self.invalidate();
            return Err(bad(at, "shared prefix longer than the previous key"));
        }
        let key_end = p.checked_add(unshared).filter(|&e| e <= end);
        let value_end = key_end
            .and_then(|k| k.checked_add(value_len))
            .filter(|&e| e <= end);
        let (Some(key_end), Some(value_end)) = (key_end, value_end) else {
            self.invalidate();
            return Err(bad(at, "entry runs past the end of the entries"));
        };
        self.key.truncate(shared);
        self.key.extend_from_slice(&d[p..key_end]);
        self.value = (key_end, value_end);
        self.pos = at;
        self.next_pos = value_end;
        Ok(())
    }

    /// Positions on the first entry of restart run `i` (the entry an index lookup picked);
    /// not valid if `i` is past the last run.
    pub(crate) fn seek_to_restart_run(&mut self, i: usize) -> Result<(), BlockError> {
        if i >= self.block.restarts {
            self.invalidate();
            return Ok(());
        }
        self.seek_to_restart(i)
    }

    /// Positions on the first entry of restart run `i`.
    fn seek_to_restart(&mut self, i: usize) -> Result<(), BlockError> {
        self.restart = i;
        self.key.clear();
        let at = self.block.restart_offset(i);
        self.decode_at(at)
    }

    /// Moves to the first entry (not valid if the block is empty).
    pub(crate) fn seek_to_first(&mut self) -> Result<(), BlockError> {
        if self.block.restarts == 0 {
            self.invalidate();
            return Ok(());
        }
        self.seek_to_restart(0)
    }

    /// Moves to the last entry (not valid if the block is empty).
    pub(crate) fn seek_to_last(&mut self) -> Result<(), BlockError> {
        if self.block.restarts == 0 {
            self.invalidate();
            return Ok(());
        }
        self.seek_to_restart(self.block.restarts - 1)?;
        while self.next_pos < self.block.entries_end {
            self.step_forward()?;
        }
        Ok(())
    }

    /// Decodes the entry after the current one, keeping track of the restart run.
    fn step_forward(&mut self) -> Result<(), BlockError> {
        let at = self.next_pos;
        if self.restart + 1 < self.block.restarts
            && self.block.restart_offset(self.restart + 1) == at
        {
            return self.seek_to_restart(self.restart + 1);
        }
        self.decode_at(at)
    }

    /// Moves to the next entry; not valid after the last one.
    pub(crate) fn next(&mut self) -> Result<(), BlockError> {
        assert!(self.valid(), "next() on an invalid block cursor");
        if self.next_pos >= self.block.entries_end {
            self.invalidate();
            return Ok(());
        }
        self.step_forward()
    }

    /// Moves to the previous entry; not valid before the first one. Costs a scan of at
    /// most one restart interval.
    pub(crate) fn prev(&mut self) -> Result<(), BlockError> {
        assert!(self.valid(), "prev() on an invalid block cursor");
        let original = self.pos;
        let mut run = self.restart;
        if self.block.restart_offset(run) == original {
            if run == 0 {
                self.invalidate();
                return Ok(());
            }
            run -= 1;
        }
        self.seek_to_restart(run)?;
        while self.next_pos < original {
            self.step_forward()?;
        }
        if self.next_pos != original {
            self.invalidate();
            return Err(bad(original, "entries do not chain to the current entry"));
        }
        Ok(())
    }

    /// Moves to the first entry whose key is `>= target`; not valid if there is none.
    pub(crate) fn seek(&mut self, target: &[u8]) -> Result<(), BlockError> {
        if self.block.restarts == 0 {
            self.invalidate();
            return Ok(());
        }
        // Binary search for the last restart point whose key is < target, comparing restart
        // keys where they lie in the block (no copy); a malformed one is decoded the slow
        // way, which reports it.
        let (mut lo, mut hi) = (0usize, self.block.restarts - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let less = match self.block.restart_key(mid) {
                Some(k) => self.cmp.compare(k, target) == Ordering::Less,
                None => {
                    self.seek_to_restart(mid)?;
                    self.cmp.compare(&self.key, target) == Ordering::Less
                }
            };
            if less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.seek_to_restart(lo)?;
        while self.cmp.compare(&self.key, target) == Ordering::Less {
            if self.next_pos >= self.block.entries_end {
                self.invalidate();
                return Ok(());
            }
            self.step_forward()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[(Vec<u8>, Vec<u8>)], interval: usize) -> Block<'static> {
        let mut b = BlockBuilder::new(interval);
        for (k, v) in entries {
            b.add(k, v);
        }
        let est = b.estimated_bytes();
        let bytes = b.finish().to_vec();
        assert_eq!(bytes.len(), est);
        Block::new(bytes).expect("valid block")
    }

    fn sample(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                (
                    format!("key{:05}", i * 2).into_bytes(),
                    format!("value-{i}").repeat(i % 4).into_bytes(),
                )
            })
            .collect()
    }

    fn collect_forward(it: &mut BlockIter<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        it.seek_to_first().expect("seek");
        while it.valid() {
            out.push((it.key().to_vec(), it.value().to_vec()));
            it.next().expect("next");
        }
        out
    }

    #[test]
    fn forward_and_reverse_for_every_interval() {
        for n in [0usize, 1, 2, 15, 16, 17, 100] {
            let entries = sample(n);
            for interval in [1usize, 2, 3, 16, 1000] {
                let block = build(&entries, interval);
                let mut it = block.iter(Comparator::Bytewise);
                assert_eq!(
                    collect_forward(&mut it),
                    entries,
                    "n={n} interval={interval}"
                );
                let mut back = Vec::new();
                it.seek_to_last().expect("seek_to_last");
                while it.valid() {
                    back.push((it.key().to_vec(), it.value().to_vec()));
                    it.prev().expect("prev");
                }
                back.reverse();
                assert_eq!(back, entries, "reverse n={n} interval={interval}");
            }
        }
    }

    #[test]
    fn prefix_compression_shrinks_shared_keys() {
        let entries = sample(64);
        let raw: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        let every = build(&entries, 1);
        let sixteen = build(&entries, 16);
        assert!(sixteen.len() < every.len());
        assert!(sixteen.len() < raw + 64 * 3 + 4 * 4 + 4);
    }

    #[test]
    fn seek_semantics() {
        let entries = sample(50); // keys key00000, key00002, ..., key00098
        for interval in [1usize, 4, 16] {
            let block = build(&entries, interval);
            let mut it = block.iter(Comparator::Bytewise);
            // Exact.
            it.seek(b"key00042").expect("seek");
            assert_eq!(it.key(), b"key00042");
            // Between keys: the next larger one.
            it.seek(b"key00043").expect("seek");
            assert_eq!(it.key(), b"key00044");
            // Before the first.
            it.seek(b"a").expect("seek");
            assert_eq!(it.key(), b"key00000");
            it.seek(b"").expect("seek");
            assert_eq!(it.key(), b"key00000");
            // After the last.
            it.seek(b"key00099").expect("seek");
            assert!(!it.valid());
            it.seek(b"zzz").expect("seek");
            assert!(!it.valid());
            // Seek then walk both ways across restart points.
            it.seek(b"key00031").expect("seek");
            assert_eq!(it.key(), b"key00032");
            it.prev().expect("prev");
            assert_eq!(it.key(), b"key00030");
            it.next().expect("next");
            it.next().expect("next");
            assert_eq!(it.key(), b"key00034");
        }
    }

    #[test]
    fn seek_on_empty_block() {
        let block = build(&[], 16);
        assert_eq!(block.len(), 4);
        let mut it = block.iter(Comparator::Bytewise);
        it.seek(b"x").expect("seek");
        assert!(!it.valid());
        it.seek_to_last().expect("seek");
        assert!(!it.valid());
    }

    #[test]
    fn malformed_restart_arrays_are_rejected() {
        let good = {
            let mut b = BlockBuilder::new(2);
            for (k, v) in sample(6) {
                b.add(&k, &v);
            }
            b.finish().to_vec()
        };
        assert!(Block::new(good.clone()).is_ok());
        assert_eq!(
            Block::new(vec![1, 2]).map(|_| ()),
            Err(bad(0, "block shorter than its restart count"))
        );
        // Count too large.
        let mut b = good.clone();
        let n = b.len();
        b[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Block::new(b).is_err());
        // Zero restarts with entries.
        let mut b = good.clone();
        b[n - 4..].copy_from_slice(&0u32.to_le_bytes());
        assert!(Block::new(b).is_err());
        // First restart not 0.
        let mut b = good.clone();
        let first = n - 4 - 3 * 4;
        b[first] = 1;
        assert!(Block::new(b).is_err());
    }

    /// Any byte flipped anywhere in a block yields either an error or some entries, never
    /// a panic or an endless loop (the checksum normally catches this first).
    #[test]
    fn damaged_blocks_never_panic() {
        let entries = sample(40);
        let mut bb = BlockBuilder::new(4);
        for (k, v) in &entries {
            bb.add(k, v);
        }
        let good = bb.finish().to_vec();
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] ^= flip;
                let Ok(block) = Block::new(b) else { continue };
                let mut it = block.iter(Comparator::Bytewise);
                let mut steps = 0;
                let mut r = it.seek_to_first();
                while r.is_ok() && it.valid() && steps < 1000 {
                    r = it.next();
                    steps += 1;
                }
                let _ = it.seek(b"key00040");
                let mut r = it.seek_to_last();
                steps = 0;
                while r.is_ok() && it.valid() && steps < 1000 {
                    r = it.prev();
                    steps += 1;
                }
                assert!(steps < 1000);
            }
        }
    }
}
