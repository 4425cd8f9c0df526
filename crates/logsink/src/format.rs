//! The on-disk format of a log store, version 1. This module is its home: the layout is
//! drawn here, and the encoder and decoder sit side by side. All integers little-endian.
//!
//! # Files
//!
//! A store is a directory of segment files named `<16 hex digits>.ulog`, the number being
//! the segment's index (increasing, never reused). A `LOCK` file (flock) keeps a second
//! writer out; readers take no lock.
//!
//! # Segment
//!
//! ```text
//! +-----------------------+  offset 0
//! | segment header (32 B) |
//! +-----------------------+  offset 32
//! | block 0 | pad to 8    |
//! | block 1 | pad to 8    |
//! | ...                   |
//! +-----------------------+
//!
//! segment header:
//!   0  magic      [u8; 8]  "URDBLOG1"
//!   8  version    u32      1
//!  12  flags      u32      0 (reserved)
//!  16  index      u64      the segment's number (as in its file name)
//!  24  crc        u32      CRC32C of bytes 0..24
//!  28  reserved   u32      0
//! ```
//!
//! # Block
//!
//! A block is an 80-byte header and its stored payload; the next block starts at the next
//! multiple of 8 (padding bytes are zero). The raw payload is the block's lines, each
//! ending with `\n` (NDJSON as pino wrote it); the stored payload is the raw payload
//! compressed with zstd (flag bit 0) or the raw payload itself (no flag).
//!
//! ```text
//!   0  magic          u32   0x314B4C55 ("ULK1")
//!   4  version        u16   1
//!   6  flags          u16   bit 0: zstd-compressed
//!   8  raw_len        u32   bytes of the raw payload
//!  12  stored_len     u32   bytes of the stored payload that follows the header
//!  16  line_count     u32   lines in the block (>= 1)
//!  20  level_bits     u32   bit i set when a line of level class i is in the block
//!                           (see `level_class`: trace, debug, info, warn, error, fatal,
//!                           other numeric level, no level)
//!  24  first_seq      u64   sequence number of the block's first line (0-based, dense
//!                           across the whole store)
//!  32  min_time       i64   smallest "time" (ms since the epoch) of its lines; i64::MAX
//!                           when no line has one
//!  40  max_time       i64   largest "time"; i64::MIN when no line has one
//!  48  prev_hash      [u8; 16]  reserved for the tamper-evident chain (hash of the
//!                           previous block); all zero in version 1 writers
//!  64  durable_before u64   a segment offset that was covered by a completed fdatasync
//!                           before this block was written (recovery's witness, below)
//!  72  payload_crc    u32   CRC32C of the stored payload
//!  76  header_crc     u32   CRC32C of header bytes 0..76
//! ```
//!
//! # Recovery and corruption
//!
//! A block is *valid* when its magic, version and header CRC check, its payload lies inside
//! the file and the payload CRC checks. At open, every segment is walked block by block:
//!
//! * In a sealed segment (not the newest) every block must be valid, up to the end of
//!   the file: anything else is corruption, reported with the file and the offset.
//! * In the newest segment, the first invalid block ends the walk. If a later valid block
//!   (found by checking every 8-aligned offset after it) says, in `durable_before`, that
//!   the bad offset had been made durable before it was written, the damage is in synced
//!   data: corruption, reported with file and offset. Otherwise it is a torn tail (bytes
//!   that no fdatasync covered when the process died, possibly with later blocks that
//!   reached the disk out of order): the file is cut at the bad offset.
//!
//! Readers of a store that is being written walk the same way but never cut: the newest
//! segment's first invalid block is simply the end for now.

/// Segment file magic.
pub const SEGMENT_MAGIC: [u8; 8] = *b"URDBLOG1";
/// The segment and block format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of a segment header.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Block header magic ("ULK1" little-endian).
pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"ULK1");
/// Bytes of a block header.
pub const BLOCK_HEADER_BYTES: usize = 80;
/// Block flag: the stored payload is zstd-compressed.
pub const FLAG_ZSTD: u16 = 1;
/// The segment file name's extension.
pub const SEGMENT_EXT: &str = "ulog";

/// Rounds up to a multiple of 8.
pub const fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

/// The file name of segment `index`.
pub fn segment_name(index: u64) -> String {
    format!("{index:016x}.{SEGMENT_EXT}")
}

/// The index of a segment file name, `None` for other names.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".ulog")?;
    if stem.len() != 16 {
        return None;
    }
    u64::from_str_radix(stem, 16).ok()
}

/// Encodes a segment header.
pub fn encode_segment_header(index: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&index.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a segment header is not valid.
pub fn check_segment_header(h: &[u8], index: u64) -> Result<(), String> {
    if h.len() < SEGMENT_HEADER_BYTES {
        return Err("segment header is truncated".into());
    }
    if h[0..8] != SEGMENT_MAGIC {
        return Err("bad segment magic".into());
    }
    let crc = u32::from_le_bytes(h[24..28].try_into().expect("4 bytes"));
    if crc != crc32c::crc32c(&h[0..24]) {
        return Err("segment header checksum mismatch".into());
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(format!("unsupported segment version {version}"));
    }
    let stored = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
    if stored != index {
        return Err(format!("segment header names index {stored}"));
    }
    Ok(())
}

/// Level classes, the bit positions of `level_bits`.
pub mod level {
    /// pino `trace` (10).
    pub const TRACE: u32 = 0;
    /// pino `debug` (20).
    pub const DEBUG: u32 = 1;
    /// pino `info` (30).
    pub const INFO: u32 = 2;
    /// pino `warn` (40).
    pub const WARN: u32 = 3;
    /// pino `error` (50).
    pub const ERROR: u32 = 4;
    /// pino `fatal` (60).
    pub const FATAL: u32 = 5;
    /// A numeric level that is not one of pino's six.
    pub const OTHER: u32 = 6;
    /// No numeric `"level"` field found.
    pub const NONE: u32 = 7;
}

/// The level class (bit position in `level_bits`) of a numeric pino level, `None` input
/// meaning "no level".
pub fn level_class(level: Option<u32>) -> u32 {
    match level {
        Some(10) => level::TRACE,
        Some(20) => level::DEBUG,
        Some(30) => level::INFO,
        Some(40) => level::WARN,
        Some(50) => level::ERROR,
        Some(60) => level::FATAL,
        Some(_) => level::OTHER,
        None => level::NONE,
    }
}

/// A decoded block header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// [`FLAG_ZSTD`] or 0.
    pub flags: u16,
    /// Raw payload bytes.
    pub raw_len: u32,
    /// Stored payload bytes.
    pub stored_len: u32,
    /// Lines in the block.
    pub line_count: u32,
    /// Level classes present.
    pub level_bits: u32,
    /// Sequence number of the first line.
    pub first_seq: u64,
    /// Smallest time, ms (i64::MAX if none).
    pub min_time: i64,
    /// Largest time, ms (i64::MIN if none).
    pub max_time: i64,
    /// Reserved for the hash chain; zero in version 1.
    pub prev_hash: [u8; 16],
    /// An offset of this segment durable before the block was written.
    pub durable_before: u64,
    /// CRC32C of the stored payload.
    pub payload_crc: u32,
}

impl BlockHeader {
    /// Bytes the block occupies in the segment, padding included.
    pub fn span(&self) -> u64 {
        align8(BLOCK_HEADER_BYTES as u64 + u64::from(self.stored_len))
    }

    /// Encodes the header (computing its CRC).
    pub fn encode(&self) -> [u8; BLOCK_HEADER_BYTES] {
        let mut h = [0u8; BLOCK_HEADER_BYTES];
        h[0..4].copy_from_slice(&BLOCK_MAGIC.to_le_bytes());
        h[4..6].copy_from_slice(&(FORMAT_VERSION as u16).to_le_bytes());
        h[6..8].copy_from_slice(&self.flags.to_le_bytes());
        h[8..12].copy_from_slice(&self.raw_len.to_le_bytes());
        h[12..16].copy_from_slice(&self.stored_len.to_le_bytes());
        h[16..20].copy_from_slice(&self.line_count.to_le_bytes());
        h[20..24].copy_from_slice(&self.level_bits.to_le_bytes());
        h[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        h[32..40].copy_from_slice(&self.min_time.to_le_bytes());
        h[40..48].copy_from_slice(&self.max_time.to_le_bytes());
        h[48..64].copy_from_slice(&self.prev_hash);
        h[64..72].copy_from_slice(&self.durable_before.to_le_bytes());
        h[72..76].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&h[0..76]);
        h[76..80].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes a header; `Err` names what does not check.
    pub fn decode(h: &[u8]) -> Result<BlockHeader, &'static str> {
        if h.len() < BLOCK_HEADER_BYTES {
            return Err("block header is truncated");
        }
        let u16_at = |o: usize| u16::from_le_bytes(h[o..o + 2].try_into().expect("2 bytes"));
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        if u32_at(0) != BLOCK_MAGIC {
            return Err("bad block magic");
        }
        if u32_at(76) != crc32c::crc32c(&h[0..76]) {
            return Err("block header checksum mismatch");
        }
        if u32::from(u16_at(4)) != FORMAT_VERSION {
            return Err("unsupported block version");
        }
        let header = BlockHeader {
            flags: u16_at(6),
            raw_len: u32_at(8),
            stored_len: u32_at(12),
            line_count: u32_at(16),
            level_bits: u32_at(20),
            first_seq: u64_at(24),
            min_time: u64_at(32) as i64,
            max_time: u64_at(40) as i64,
            prev_hash: h[48..64].try_into().expect("16 bytes"),
            durable_before: u64_at(64),
            payload_crc: u32_at(72),
        };
        if header.flags & !FLAG_ZSTD != 0 {
            return Err("unknown block flags");
        }
        if header.line_count == 0 {
            return Err("block with no lines");
        }
        Ok(header)
    }

    /// Decompresses (or copies) a stored payload whose CRC the caller checked.
    pub fn raw_payload(&self, stored: &[u8]) -> Result<Vec<u8>, String> {
        if self.flags & FLAG_ZSTD == 0 {
            return Ok(stored.to_vec());
        }
        let raw = zstd::bulk::decompress(stored, self.raw_len as usize)
            .map_err(|e| format!("block payload does not decompress: {e}"))?;
        if raw.len() != self.raw_len as usize {
            return Err(format!(
                "block payload decompresses to {} bytes, header says {}",
                raw.len(),
                self.raw_len
            ));
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BlockHeader {
        BlockHeader {
            flags: FLAG_ZSTD,
            raw_len: 1000,
            stored_len: 123,
            line_count: 7,
            level_bits: 0b1100,
            first_seq: 42,
            min_time: 1_700_000_000_000,
            max_time: 1_700_000_000_999,
            prev_hash: [0; 16],
            durable_before: 4096,
            payload_crc: 0xdead_beef,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        assert_eq!(BlockHeader::decode(&h.encode()).unwrap(), h);
        assert_eq!(h.span(), align8(80 + 123));
    }

    #[test]
    fn every_flipped_header_byte_is_caught() {
        let bytes = sample().encode();
        for i in 0..BLOCK_HEADER_BYTES {
            let mut b = bytes;
            b[i] ^= 0x10;
            assert!(BlockHeader::decode(&b).is_err(), "flip at {i} not caught");
        }
    }

    #[test]
    fn segment_names_and_headers() {
        assert_eq!(segment_name(10), "000000000000000a.ulog");
        assert_eq!(parse_segment_name("000000000000000a.ulog"), Some(10));
        assert_eq!(parse_segment_name("LOCK"), None);
        let h = encode_segment_header(3);
        assert!(check_segment_header(&h, 3).is_ok());
        assert!(check_segment_header(&h, 4).is_err());
        let mut bad = h;
        bad[2] ^= 1;
        assert!(check_segment_header(&bad, 3).is_err());
    }
}
