//! [`LogReader`]: reads a store (possibly being written) in order, block by block, reading
//! only the payloads of blocks whose header (time range, level bits) can match the filter.
//!
//! Read-only and lock-free with respect to the writer: it walks the same format rules as
//! recovery (see [`crate::format`]) but never cuts. In the newest segment an invalid or
//! incomplete block is "the end for now" (the writer may be mid-write; a later call
//! continues from there, which is how `--follow` works); in a segment that has a successor
//! it is corruption, named by file and offset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use uringdb_uring::{File, OpenMode, Vfs};

use crate::error::SinkError;
use crate::format::{level_class, BlockHeader, BLOCK_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use crate::line::scan;
use crate::segment::{list_segments, open_segment, read_exact_at, read_stored, BlockRef};

/// Which lines a reader returns. Bounds are inclusive; `None` is unbounded.
#[derive(Clone, Debug, Default)]
pub struct ReadFilter {
    /// Lines with `"time"` >= this (ms since the epoch).
    pub since: Option<i64>,
    /// Lines with `"time"` <= this.
    pub until: Option<i64>,
    /// Lines with a numeric `"level"` >= this.
    pub min_level: Option<u32>,
    /// Lines containing these bytes.
    pub contains: Option<Vec<u8>>,
}

impl ReadFilter {
    fn block_can_match(&self, h: &BlockHeader) -> bool {
        if self.since.is_some_and(|s| h.max_time < s) || self.until.is_some_and(|u| h.min_time > u)
        {
            return false;
        }
        if let Some(min) = self.min_level {
            // Classes whose levels can be >= min: pino's six by value, OTHER always
            // (any number), NONE never.
            let mut mask = 1u32 << crate::format::level::OTHER;
            for (class, value) in [(0u32, 10u32), (1, 20), (2, 30), (3, 40), (4, 50), (5, 60)] {
                if value >= min {
                    mask |= 1 << class;
                }
            }
            if h.level_bits & mask == 0 {
                return false;
            }
        }
        true
    }

    fn line_matches(&self, line: &[u8]) -> bool {
        if self.since.is_some() || self.until.is_some() || self.min_level.is_some() {
            let m = scan(line, b"");
            if let Some(min) = self.min_level {
                if m.level.is_none_or(|l| l < min) {
                    return false;
                }
            }
            if self.since.is_some() || self.until.is_some() {
                let Some(t) = m.time else { return false };
                if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
                    return false;
                }
            }
        }
        if let Some(c) = &self.contains {
            if !c.is_empty() && !line.windows(c.len()).any(|w| w == &c[..]) {
                return false;
            }
        }
        true
    }
}

/// Counters of one reader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Blocks whose header was read.
    pub blocks_seen: u64,
    /// Of those, blocks whose payload was read and decompressed.
    pub blocks_read: u64,
    /// Lines returned.
    pub lines: u64,
}

struct Current {
    index: u64,
    path: PathBuf,
    file: Arc<dyn File>,
    offset: u64,
}

/// A reader of a store. Not shared between threads.
pub struct LogReader {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    filter: ReadFilter,
    cur: Option<Current>,
    /// Index of the last segment finished, to find the next one.
    done_index: Option<u64>,
    stats: ReadStats,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("dir", &self.dir)
            .field("stats", &self.stats)
            .finish()
    }
}

enum Step {
    Block(BlockRef),
    EndForNow,
}

impl LogReader {
    /// A reader of the store in `dir` (which must exist).
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, filter: ReadFilter) -> Result<LogReader, SinkError> {
        // ENOENT / ENOTDIR as the OS says them.
        std::fs::read_dir(dir)
            .map_err(|e| SinkError::io(format!("opening the log store {}", dir.display()), e))?;
        Ok(LogReader {
            vfs,
            dir: dir.to_path_buf(),
            filter,
            cur: None,
            done_index: None,
            stats: ReadStats::default(),
        })
    }

    /// This reader's counters.
    pub fn stats(&self) -> ReadStats {
        self.stats.clone()
    }

    fn next_segment(&self) -> Result<Option<(u64, PathBuf)>, SinkError> {
        let segs = list_segments(&*self.vfs, &self.dir)?;
        Ok(segs
            .into_iter()
            .find(|(i, _)| self.done_index.is_none_or(|d| *i > d)))
    }

    fn corruption(path: &Path, offset: u64, message: impl Into<String>) -> SinkError {
        SinkError::Corruption {
            file: path.to_path_buf(),
            offset,
            message: message.into(),
        }
    }

    /// The next block header, opening later segments as needed.
    fn step(&mut self) -> Result<Step, SinkError> {
        loop {
            if self.cur.is_none() {
                let Some((index, path)) = self.next_segment()? else {
                    return Ok(Step::EndForNow);
                };
                let file = match open_segment(&*self.vfs, &path, index, OpenMode::ReadOnly) {
                    Ok((file, _)) => file,
                    // A segment the writer is creating right now has no header yet.
                    Err(SinkError::Corruption { .. }) if self.is_newest(index)? => {
                        return Ok(Step::EndForNow)
                    }
                    Err(e) => return Err(e),
                };
                self.cur = Some(Current {
                    index,
                    path,
                    file,
                    offset: SEGMENT_HEADER_BYTES as u64,
                });
            }
            let cur = self.cur.as_ref().expect("set above");
            let (index, offset) = (cur.index, cur.offset);
            match Self::try_block(cur)? {
                Ok(block) => return Ok(Step::Block(block)),
                Err(why) => {
                    // End of this segment, or a block not (yet) valid. A successor means
                    // the writer has finished here: look once more with a fresh length.
                    if self.is_newest(index)? {
                        return Ok(Step::EndForNow);
                    }
                    let cur = self.cur.as_ref().expect("set above");
                    match Self::try_block(cur)? {
                        Ok(block) => return Ok(Step::Block(block)),
                        Err(None) => {
                            self.done_index = Some(index);
                            self.cur = None;
                        }
                        Err(Some(why2)) => {
                            let _ = why;
                            return Err(Self::corruption(&cur.path, offset, why2));
                        }
                    }
                }
            }
        }
    }

    fn is_newest(&self, index: u64) -> Result<bool, SinkError> {
        Ok(list_segments(&*self.vfs, &self.dir)?
            .last()
            .is_none_or(|(i, _)| *i <= index))
    }

    /// The block at the current offset: `Err(None)` at the clean end of the file,
    /// `Err(Some(why))` when what is there is not a valid block.
    fn try_block(cur: &Current) -> Result<Result<BlockRef, Option<String>>, SinkError> {
        let io = |e| SinkError::io(format!("reading {}", cur.path.display()), e);
        let len = cur.file.len().map_err(io)?;
        if cur.offset >= len {
            return Ok(Err(None));
        }
        if len - cur.offset < BLOCK_HEADER_BYTES as u64 {
            return Ok(Err(Some("truncated block header".into())));
        }
        let mut h = [0u8; BLOCK_HEADER_BYTES];
        read_exact_at(&*cur.file, cur.offset, &mut h).map_err(io)?;
        let header = match BlockHeader::decode(&h) {
            Ok(h) => h,
            Err(why) => return Ok(Err(Some(why.into()))),
        };
        if cur.offset + header.span() > len {
            return Ok(Err(Some("block runs past the end of the file".into())));
        }
        Ok(Ok(BlockRef {
            offset: cur.offset,
            header,
        }))
    }

    /// The next lines that match, as NDJSON, up to about `max_bytes` (whole blocks' worth:
    /// at least one block is processed per call). Empty when the store has nothing more
    /// for now; a later call continues (a store being written grows).
    pub fn next_lines(&mut self, max_bytes: usize) -> Result<(Vec<u8>, u32), SinkError> {
        let mut out = Vec::new();
        let mut count = 0u32;
        while out.len() < max_bytes {
            let block = match self.step()? {
                Step::EndForNow => break,
                Step::Block(b) => b,
            };
            self.stats.blocks_seen += 1;
            let cur = self
                .cur
                .as_mut()
                .expect("a block comes from the current segment");
            cur.offset += block.header.span();
            if !self.filter.block_can_match(&block.header) {
                continue;
            }
            self.stats.blocks_read += 1;
            let stored = read_stored(&*cur.file, &block)
                .map_err(|why| Self::corruption(&cur.path, block.offset, why))?;
            let raw = block
                .header
                .raw_payload(&stored)
                .map_err(|why| Self::corruption(&cur.path, block.offset, why))?;
            for line in raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                if self.filter.line_matches(line) {
                    out.extend_from_slice(line);
                    out.push(b'\n');
                    count += 1;
                }
            }
        }
        self.stats.lines += u64::from(count);
        Ok((out, count))
    }
}

/// Totals over a store's block headers (`uringdb logs stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreSummary {
    /// Segment files.
    pub segments: u64,
    /// Blocks.
    pub blocks: u64,
    /// Lines.
    pub lines: u64,
    /// Raw NDJSON bytes.
    pub raw_bytes: u64,
    /// Bytes of the segment files.
    pub file_bytes: u64,
    /// Smallest line time (ms), if any line has one.
    pub min_time: Option<i64>,
    /// Largest line time.
    pub max_time: Option<i64>,
    /// Lines per level class (see [`crate::format::level`]) cannot be known from headers;
    /// blocks per level class can.
    pub blocks_by_level: [u64; 8],
}

/// Walks every block header of the store in `dir` (payloads are not read).
pub fn summarize(vfs: Arc<dyn Vfs>, dir: &Path) -> Result<StoreSummary, SinkError> {
    let mut r = LogReader::open(vfs.clone(), dir, ReadFilter::default())?;
    let mut s = StoreSummary {
        segments: list_segments(&*vfs, dir)?.len() as u64,
        ..Default::default()
    };
    for (_, path) in list_segments(&*vfs, dir)? {
        s.file_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    }
    while let Step::Block(b) = r.step()? {
        let cur = r
            .cur
            .as_mut()
            .expect("a block comes from the current segment");
        cur.offset += b.header.span();
        let h = b.header;
        s.blocks += 1;
        s.lines += u64::from(h.line_count);
        s.raw_bytes += u64::from(h.raw_len);
        if h.min_time <= h.max_time {
            s.min_time = Some(s.min_time.map_or(h.min_time, |m| m.min(h.min_time)));
            s.max_time = Some(s.max_time.map_or(h.max_time, |m| m.max(h.max_time)));
        }
        for (class, n) in s.blocks_by_level.iter_mut().enumerate() {
            if h.level_bits & (1 << class) != 0 {
                *n += 1;
            }
        }
    }
    let _ = level_class;
    Ok(s)
}
