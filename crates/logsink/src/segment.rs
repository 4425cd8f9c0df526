//! Walking a segment's blocks (shared by recovery at open and by readers) and listing a
//! store's segments. The rules are in the format's home, [`crate::format`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uringdb_uring::{File, OpenMode, Vfs};

use crate::error::SinkError;
use crate::format::{
    check_segment_header, parse_segment_name, BlockHeader, BLOCK_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};

/// A block found in a segment.
#[derive(Clone, Debug)]
pub struct BlockRef {
    /// Offset of its header in the segment file.
    pub offset: u64,
    /// Its decoded header.
    pub header: BlockHeader,
}

/// How a walk ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WalkEnd {
    /// At the end of the file, after a valid block (or the segment header).
    Clean,
    /// At an invalid block at `offset`.
    Invalid {
        /// Where.
        offset: u64,
        /// Why.
        why: String,
    },
}

/// The segments of `dir`, sorted by index, as (index, path).
pub(crate) fn list_segments(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<(u64, PathBuf)>, SinkError> {
    let names = vfs
        .list_dir(dir)
        .map_err(|e| SinkError::io(format!("listing {}", dir.display()), e))?;
    let mut segs: Vec<(u64, PathBuf)> = names
        .iter()
        .filter_map(|n| parse_segment_name(n).map(|i| (i, dir.join(n))))
        .collect();
    segs.sort_by_key(|s| s.0);
    Ok(segs)
}

pub(crate) fn read_exact_at(file: &dyn File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// Opens a segment and checks its header.
pub(crate) fn open_segment(
    vfs: &dyn Vfs,
    path: &Path,
    index: u64,
    mode: OpenMode,
) -> Result<(Arc<dyn File>, u64), SinkError> {
    let file = vfs
        .open(path, mode)
        .map_err(|e| SinkError::io(format!("opening {}", path.display()), e))?;
    let len = file
        .len()
        .map_err(|e| SinkError::io(format!("reading the length of {}", path.display()), e))?;
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    let n = read_exact_at(&*file, 0, &mut h)
        .map_err(|e| SinkError::io(format!("reading {}", path.display()), e))?;
    check_segment_header(&h[..n], index).map_err(|message| SinkError::Corruption {
        file: path.to_path_buf(),
        offset: 0,
        message,
    })?;
    Ok((file, len))
}

/// Reads and checks the stored payload of `block` (its CRC).
pub(crate) fn read_stored(file: &dyn File, block: &BlockRef) -> Result<Vec<u8>, String> {
    let mut stored = vec![0u8; block.header.stored_len as usize];
    let at = block.offset + BLOCK_HEADER_BYTES as u64;
    let n = read_exact_at(file, at, &mut stored).map_err(|e| format!("read failed: {e}"))?;
    if n < stored.len() {
        return Err("block payload runs past the end of the file".into());
    }
    if crc32c::crc32c(&stored) != block.header.payload_crc {
        return Err("block payload checksum mismatch".into());
    }
    Ok(stored)
}

/// Walks the blocks of a segment of `len` bytes from `from` (an offset a walk reached
/// before, or the first block). `check_payload` also reads and checks every payload.
/// `expect_seq` is the first sequence number the first block must carry, if known.
pub(crate) fn walk(
    file: &dyn File,
    from: u64,
    len: u64,
    check_payload: bool,
    mut expect_seq: Option<u64>,
) -> io::Result<(Vec<BlockRef>, WalkEnd, u64)> {
    let mut blocks = Vec::new();
    let mut offset = from.max(SEGMENT_HEADER_BYTES as u64);
    let mut h = [0u8; BLOCK_HEADER_BYTES];
    while offset < len {
        let invalid = |why: &str| WalkEnd::Invalid {
            offset,
            why: why.to_string(),
        };
        if len - offset < BLOCK_HEADER_BYTES as u64 {
            return Ok((blocks, invalid("truncated block header"), offset));
        }
        read_exact_at(file, offset, &mut h)?;
        let header = match BlockHeader::decode(&h) {
            Ok(header) => header,
            Err(why) => return Ok((blocks, invalid(why), offset)),
        };
        if offset + header.span() > len {
            return Ok((
                blocks,
                invalid("block runs past the end of the file"),
                offset,
            ));
        }
        if let Some(seq) = expect_seq {
            if header.first_seq != seq {
                return Ok((
                    blocks,
                    invalid("block sequence number does not follow"),
                    offset,
                ));
            }
        }
        let block = BlockRef { offset, header };
        if check_payload {
            if let Err(why) = read_stored(file, &block) {
                return Ok((blocks, invalid(&why), offset));
            }
        }
        expect_seq = Some(block.header.first_seq + u64::from(block.header.line_count));
        offset += block.header.span();
        blocks.push(block);
    }
    Ok((blocks, WalkEnd::Clean, offset))
}

/// After an invalid block at `bad`: the largest `durable_before` of any valid block header
/// at an 8-aligned offset past it (the witness that `bad` had been synced), if any.
pub(crate) fn durable_witness(file: &dyn File, bad: u64, len: u64) -> io::Result<Option<u64>> {
    let mut rest = vec![0u8; (len - bad) as usize];
    read_exact_at(file, bad, &mut rest)?;
    let magic = crate::format::BLOCK_MAGIC.to_le_bytes();
    let mut best = None;
    let mut at = 8;
    while at + BLOCK_HEADER_BYTES <= rest.len() {
        if rest[at..at + 4] == magic {
            if let Ok(h) = BlockHeader::decode(&rest[at..at + BLOCK_HEADER_BYTES]) {
                best = best.max(Some(h.durable_before));
            }
        }
        at += 8;
    }
    Ok(best)
}
