//! The footer: a fixed-size record at the very end of a table that locates everything
//! else. Fixed-width integers are little-endian.
//!
//! ```text
//! offset  size  field
//!      0     8  metaindex block offset
//!      8     8  metaindex block payload size
//!     16     8  index block offset
//!     24     8  index block payload size
//!     32     8  filter block offset       (0 with size 0: the table has no filter)
//!     40     8  filter block payload size
//!     48     4  format version (1)
//!     52     4  crc32c of bytes 0..52
//!     56     8  magic "URDBSST1"
//! ```
//!
//! The reader checks the magic first (is this a table at all, or a truncated one?), then
//! the checksum, then the version: so a future version is reported as such only when the
//! footer is intact. Fixed-width handles (not varints) keep the footer's size constant
//! without padding rules.

use super::coding::{get_u32_le, get_u64_le};
use super::index::BlockHandle;

/// Bytes of the footer.
pub const FOOTER_BYTES: usize = 64;
/// Magic at the end of every table.
pub const TABLE_MAGIC: [u8; 8] = *b"URDBSST1";
/// The format version this code writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 1;

/// The decoded footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footer {
    pub metaindex: BlockHandle,
    pub index: BlockHandle,
    /// `None` when the table was built without a filter.
    pub filter: Option<BlockHandle>,
}

/// Why the last [`FOOTER_BYTES`] of a file are not a valid footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FooterError {
    /// Wrong magic: not a table, or a truncated one.
    BadMagic,
    /// Checksum mismatch.
    BadCrc,
    /// Intact, but written by a newer format.
    UnsupportedVersion(u32),
}

impl Footer {
    /// Encodes the footer.
    pub(crate) fn encode(&self) -> [u8; FOOTER_BYTES] {
        let mut f = [0u8; FOOTER_BYTES];
        let filter = self.filter.unwrap_or_default();
        let fields = [
            self.metaindex.offset,
            self.metaindex.size,
            self.index.offset,
            self.index.size,
            filter.offset,
            filter.size,
        ];
        for (i, v) in fields.into_iter().enumerate() {
            f[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
        }
        f[48..52].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32c::crc32c(&f[..52]);
        f[52..56].copy_from_slice(&crc.to_le_bytes());
        f[56..64].copy_from_slice(&TABLE_MAGIC);
        f
    }

    /// Decodes and verifies a footer (exactly [`FOOTER_BYTES`] bytes).
    pub(crate) fn decode(f: &[u8; FOOTER_BYTES]) -> Result<Footer, FooterError> {
        if f[56..64] != TABLE_MAGIC {
            return Err(FooterError::BadMagic);
        }
        let crc = get_u32_le(f, 52).unwrap_or(0);
        if crc32c::crc32c(&f[..52]) != crc {
            return Err(FooterError::BadCrc);
        }
        let version = get_u32_le(f, 48).unwrap_or(0);
        if version != FORMAT_VERSION {
            return Err(FooterError::UnsupportedVersion(version));
        }
        let field = |i: usize| get_u64_le(f, 8 * i).unwrap_or(0);
        let handle = |i: usize| BlockHandle {
            offset: field(i),
            size: field(i + 1),
        };
        let filter = handle(4);
        Ok(Footer {
            metaindex: handle(0),
            index: handle(2),
            filter: (filter != BlockHandle::default()).then_some(filter),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Footer {
        Footer {
            metaindex: BlockHandle {
                offset: 900,
                size: 80,
            },
            index: BlockHandle {
                offset: 700,
                size: 195,
            },
            filter: Some(BlockHandle {
                offset: 600,
                size: 95,
            }),
        }
    }

    #[test]
    fn round_trip() {
        let f = sample();
        assert_eq!(Footer::decode(&f.encode()), Ok(f));
        let no_filter = Footer { filter: None, ..f };
        assert_eq!(Footer::decode(&no_filter.encode()), Ok(no_filter));
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let good = sample().encode();
        for bit in 0..FOOTER_BYTES * 8 {
            let mut b = good;
            b[bit / 8] ^= 1 << (bit % 8);
            let want = if bit / 8 >= 56 {
                FooterError::BadMagic
            } else {
                FooterError::BadCrc
            };
            assert_eq!(Footer::decode(&b), Err(want), "bit {bit}");
        }
    }

    #[test]
    fn a_newer_version_is_reported_as_such() {
        let mut b = sample().encode();
        b[48..52].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32c::crc32c(&b[..52]);
        b[52..56].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Footer::decode(&b), Err(FooterError::UnsupportedVersion(2)));
    }
}
