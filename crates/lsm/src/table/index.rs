//! Block handles and the index block.
//!
//! The index block has the data-block format ([`super::block`]) with a restart point at
//! every entry (so a seek is a pure binary search). It holds one entry per data block, in
//! order:
//!
//! ```text
//! key    a separator: >= every key of its data block and < every key of the next one
//!        (a shortened key where the comparator finds one, see Comparator::separator)
//! value  the data block's handle
//! ```
//!
//! A block handle locates a stored block: two varints (LEB128).
//!
//! ```text
//! offset  varint  byte offset of the block within the file
//! size    varint  bytes of its payload; the 5-byte trailer follows (super::trailer)
//! ```

use super::coding::{get_varint, put_varint};
use super::limits::BLOCK_BYTES_MAX;
use super::trailer::TRAILER_BYTES;

/// Where a stored block is: its offset and its payload size (the trailer follows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BlockHandle {
    /// Byte offset of the block in the file.
    pub offset: u64,
    /// Bytes of the payload, not counting the trailer.
    pub size: u64,
}

impl BlockHandle {
    /// Bytes the block occupies in the file, trailer included.
    pub(crate) fn stored_bytes(&self) -> u64 {
        self.size + TRAILER_BYTES as u64
    }

    /// Appends the varint encoding.
    pub(crate) fn encode_to(&self, out: &mut Vec<u8>) {
        put_varint(out, self.offset);
        put_varint(out, self.size);
    }

    /// Decodes a handle that must be the whole of `buf`.
    pub(crate) fn decode_exact(buf: &[u8]) -> Option<BlockHandle> {
        let (offset, a) = get_varint(buf)?;
        let (size, b) = get_varint(&buf[a..])?;
        (a + b == buf.len()).then_some(BlockHandle { offset, size })
    }

    /// Whether the block lies within `[0, end)` and its payload within the size bound.
    pub(crate) fn fits_before(&self, end: u64) -> bool {
        self.size <= BLOCK_BYTES_MAX as u64
            && self
                .offset
                .checked_add(self.stored_bytes())
                .is_some_and(|e| e <= end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_reject_trailing_bytes() {
        for h in [
            BlockHandle { offset: 0, size: 0 },
            BlockHandle {
                offset: 4096,
                size: 4091,
            },
            BlockHandle {
                offset: u64::MAX,
                size: u64::MAX,
            },
        ] {
            let mut b = Vec::new();
            h.encode_to(&mut b);
            assert_eq!(BlockHandle::decode_exact(&b), Some(h));
            b.push(0);
            assert_eq!(BlockHandle::decode_exact(&b), None);
            b.pop();
            b.pop();
            assert_eq!(BlockHandle::decode_exact(&b), None);
        }
    }

    #[test]
    fn bounds() {
        let h = BlockHandle {
            offset: 10,
            size: 20,
        };
        assert!(h.fits_before(35));
        assert!(!h.fits_before(34));
        assert!(!BlockHandle {
            offset: u64::MAX,
            size: 1
        }
        .fits_before(u64::MAX));
        assert!(!BlockHandle {
            offset: 0,
            size: BLOCK_BYTES_MAX as u64 + 1
        }
        .fits_before(u64::MAX));
    }
}
