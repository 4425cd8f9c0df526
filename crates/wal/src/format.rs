//! On-disk format of a WAL segment. This module is the one home of the byte layout; the
//! writer (the committer, which patches sequence numbers into frames encoded by producers)
//! and the reader ([`crate::recovery`], [`crate::reader`]) both go through it.
//!
//! All integers are little-endian.
//!
//! ## Segment file `NNNNNNNNNNNN.wal`
//!
//! A segment is preallocated and zero-filled before first use, so that appending to it
//! changes no file-size metadata and fdatasync flushes data only. Segments differ in size
//! (they follow the write rate, up to `segment_bytes`: see `crate::segment`); a segment's
//! size is its file's length, never taken from the options, so this layout needs no size
//! field and files written with fixed-size segments read the same.
//!
//! ```text
//! offset  size  field
//!      0     8  magic  "URDBWAL1"
//!      8     4  format version (2; 1 is read too, see "Versions")
//!     12     4  flags (0)
//!     16     8  segment number (matches the file name)
//!     24     8  first_seq: sequence number of the first record in this segment
//!     32     4  crc32c of bytes 0..32
//!     36     4  reserved (0)
//!     40     .  frames, back to back, each 8-byte aligned; then zeros to the end of the file
//! ```
//!
//! ## Frame
//!
//! ```text
//! offset  size  field
//!      0     4  word0: bits 0..=26 payload length, bit 27 SYNC flag, bits 28..=31 kind
//!      4     4  crc: crc32c(word0 ++ payload) XOR crc32c(seq as 8 LE bytes)
//!      8     8  seq: the record's sequence number
//!     16     n  payload
//!   16+n     .  zero padding to the next multiple of 8
//! ```
//!
//! Record kinds: 1 FULL (a single record), 2 FIRST, 3 MIDDLE, 4 LAST (the records of one
//! `append_many` call: atomic, all or none survive a crash). Sequence numbers are contiguous
//! across record frames and segments.
//!
//! Meta kinds (version 2) carry no record and take no sequence number; their payload is
//! empty and their `seq` field holds a sequence number with the meaning below:
//!
//! - 5 MARK, written first in every commit group: `seq` is the group's durable watermark,
//!   the last record covered by a completed fdatasync when the group was submitted. A
//!   group's pages may reach the disk in any order before its fdatasync completes, so a
//!   crash can leave a hole with valid frames after it. A MARK after the hole that claims a
//!   record at or beyond the hole was durable proves the hole is damage to durable data;
//!   otherwise nothing after the hole was ever acknowledged, and it is a torn tail.
//! - 6 SEAL, written last in a segment once the next segment is durably in place: `seq` is
//!   the first record of the next segment. A sealed last segment means the segment after it
//!   is missing.
//!
//! Every segment keeps [`SEGMENT_RESERVED_BYTES`] free for the MARK of the group that fills
//! it and for its SEAL.
//!
//! Kind 0 never appears in a frame: a zero word0 means "no frame here" (the zero-filled
//! rest of a segment).
//!
//! ## Versions
//!
//! A reader accepts versions 1 and 2 and rejects any other with the file named. Version 1
//! segments (written before MARK and SEAL existed) hold no meta frames; recovery treats a
//! hole in them the old way: any valid record after it makes it corruption.
//!
//! Why the checksum is split: producers encode and checksum their payload on their own
//! thread before the sequence number is known (the committer assigns it in log order), so
//! the committer only has to fold in an 8-byte checksum of the sequence number. Any
//! single-bit (or single-burst) error in either part changes the stored value.
//!
//! The SYNC flag records that the writer asked for durability; recovery ignores it.

/// Magic at the start of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"URDBWAL1";
/// Current segment format version (written by this build).
pub const SEGMENT_VERSION: u32 = 2;
/// The oldest segment format version this build reads.
pub const SEGMENT_VERSION_MIN: u32 = 1;
/// Size of the segment header in bytes (frames start here).
pub const SEGMENT_HEADER_BYTES: usize = 40;
/// Size of a frame header in bytes.
pub const FRAME_HEADER_BYTES: usize = 16;
/// Size of a meta frame (MARK or SEAL): a header and no payload.
pub const META_FRAME_BYTES: usize = FRAME_HEADER_BYTES;
/// Bytes at the end of every segment's room kept for one group's MARK and the SEAL.
pub const SEGMENT_RESERVED_BYTES: usize = 2 * META_FRAME_BYTES;
/// Largest payload a frame can carry (27 bits of length).
pub const FRAME_PAYLOAD_MAX: usize = (1 << 27) - 1;

const LEN_MASK: u32 = (1 << 27) - 1;
const SYNC_BIT: u32 = 1 << 27;

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole record.
    Full = 1,
    /// First record of an atomic batch.
    First = 2,
    /// Inner record of an atomic batch.
    Middle = 3,
    /// Last record of an atomic batch.
    Last = 4,
    /// Meta: a commit group's durable watermark (version 2).
    Mark = 5,
    /// Meta: the segment is complete; the log continues in the next one (version 2).
    Seal = 6,
    /// Ring-only: skip to the end of the ring buffer (never written to disk).
    Pad = 14,
    /// Ring-only: a request to make everything before it durable (never written to disk).
    SyncMarker = 15,
}

impl Kind {
    fn from_bits(bits: u32) -> Option<Kind> {
        Some(match bits {
            1 => Kind::Full,
            2 => Kind::First,
            3 => Kind::Middle,
            4 => Kind::Last,
            5 => Kind::Mark,
            6 => Kind::Seal,
            14 => Kind::Pad,
            15 => Kind::SyncMarker,
            _ => return None,
        })
    }

    /// Whether this kind is a record (takes a sequence number; the ring carries it to disk).
    pub fn is_on_disk(self) -> bool {
        matches!(self, Kind::Full | Kind::First | Kind::Middle | Kind::Last)
    }

    /// Whether this kind is a meta frame (MARK or SEAL: written by the committer, no record).
    pub fn is_meta(self) -> bool {
        matches!(self, Kind::Mark | Kind::Seal)
    }
}

/// Room for records (framed) in a segment of `segment_bytes`: what is left after the header
/// and the reserve for a MARK and the SEAL.
pub const fn segment_record_room(segment_bytes: usize) -> usize {
    segment_bytes - SEGMENT_HEADER_BYTES - SEGMENT_RESERVED_BYTES
}

/// Encodes a meta frame (MARK or SEAL) whose `seq` field is `value`.
pub fn encode_meta(kind: Kind, value: u64) -> [u8; META_FRAME_BYTES] {
    debug_assert!(kind.is_meta());
    let w = word0(kind, 0, false);
    let crc = seal_crc(partial_crc(w, &[]), value);
    let mut out = [0u8; META_FRAME_BYTES];
    out[0..4].copy_from_slice(&w.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out[8..16].copy_from_slice(&value.to_le_bytes());
    out
}

/// Rounds `n` up to a multiple of 8.
pub const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Total bytes a frame with `payload_len` bytes occupies (header, payload, padding).
pub const fn frame_bytes(payload_len: usize) -> usize {
    FRAME_HEADER_BYTES + align8(payload_len)
}

/// Packs word0.
pub fn word0(kind: Kind, payload_len: usize, sync: bool) -> u32 {
    debug_assert!(payload_len <= FRAME_PAYLOAD_MAX);
    (payload_len as u32) | if sync { SYNC_BIT } else { 0 } | ((kind as u32) << 28)
}

/// The fields packed into word0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word0 {
    /// Frame kind.
    pub kind: Kind,
    /// Payload length in bytes.
    pub len: usize,
    /// The writer asked for durability.
    pub sync: bool,
}

/// Unpacks word0; `None` for zero or an unknown kind.
pub fn parse_word0(w: u32) -> Option<Word0> {
    let kind = Kind::from_bits(w >> 28)?;
    Some(Word0 {
        kind,
        len: (w & LEN_MASK) as usize,
        sync: w & SYNC_BIT != 0,
    })
}

/// The producer's part of the checksum: covers word0 and the payload.
pub fn partial_crc(word0: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&word0.to_le_bytes()), payload)
}

/// The committer's part: folds the sequence number into a producer's partial checksum.
pub fn seal_crc(partial: u32, seq: u64) -> u32 {
    partial ^ crc32c::crc32c(&seq.to_le_bytes())
}

/// Encodes a whole frame (header, payload, padding) into `out` — used by tests and by
/// tools; the hot path encodes straight into the ring buffer instead.
pub fn encode_frame(out: &mut Vec<u8>, kind: Kind, seq: u64, payload: &[u8], sync: bool) {
    let w = word0(kind, payload.len(), sync);
    let crc = seal_crc(partial_crc(w, payload), seq);
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + (align8(payload.len()) - payload.len()), 0);
}

/// A frame decoded from bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Kind (never Pad or SyncMarker when read from disk).
    pub kind: Kind,
    /// Sequence number (of a meta frame: its value, see the module docs).
    pub seq: u64,
    /// Payload bytes.
    pub payload: &'a [u8],
    /// Writer asked for durability.
    pub sync: bool,
    /// Total size including header and padding.
    pub total: usize,
}

/// Why bytes at some position are not a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// All-zero header: no frame was ever written here.
    Zero,
    /// Fewer bytes remain than the frame claims (or than a header).
    Truncated,
    /// Unknown kind or a ring-only kind.
    BadKind,
    /// Checksum mismatch.
    BadCrc,
    /// Non-zero padding bytes.
    BadPadding,
}

/// Decodes the frame at the start of `buf` and verifies its checksum.
pub fn decode_frame(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    if buf.len() < FRAME_HEADER_BYTES {
        if buf.iter().all(|&b| b == 0) {
            return Err(FrameError::Zero);
        }
        return Err(FrameError::Truncated);
    }
    let w = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&buf[8..16]);
    let seq = u64::from_le_bytes(seq_bytes);
    if w == 0 {
        return if crc == 0 && seq == 0 {
            Err(FrameError::Zero)
        } else {
            Err(FrameError::BadKind)
        };
    }
    let Some(w0) = parse_word0(w) else {
        return Err(FrameError::BadKind);
    };
    if !(w0.kind.is_on_disk() || w0.kind.is_meta() && w0.len == 0 && !w0.sync) {
        return Err(FrameError::BadKind);
    }
    let total = frame_bytes(w0.len);
    if buf.len() < total {
        return Err(FrameError::Truncated);
    }
    let payload = &buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + w0.len];
    if seal_crc(partial_crc(w, payload), seq) != crc {
        return Err(FrameError::BadCrc);
    }
    if buf[FRAME_HEADER_BYTES + w0.len..total]
        .iter()
        .any(|&b| b != 0)
    {
        return Err(FrameError::BadPadding);
    }
    Ok(Frame {
        kind: w0.kind,
        seq,
        payload,
        sync: w0.sync,
        total,
    })
}

/// The decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Segment number (as in the file name).
    pub number: u64,
    /// Sequence number of the first record in the segment.
    pub first_seq: u64,
}

/// Why a segment header is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Never written (all zero).
    Zero,
    /// Wrong magic.
    BadMagic,
    /// Unknown version.
    BadVersion(u32),
    /// Flags this version does not define (all must be 0): a feature it cannot honour.
    UnknownFlags(u32),
    /// Checksum mismatch.
    BadCrc,
    /// File shorter than a header.
    Truncated,
}

impl SegmentHeader {
    /// Encodes the 40-byte header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut h = [0u8; SEGMENT_HEADER_BYTES];
        h[0..8].copy_from_slice(&SEGMENT_MAGIC);
        h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        h[16..24].copy_from_slice(&self.number.to_le_bytes());
        h[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        let crc = crc32c::crc32c(&h[0..32]);
        h[32..36].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes and verifies a header.
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, HeaderError> {
        if buf.len() < SEGMENT_HEADER_BYTES {
            return Err(HeaderError::Truncated);
        }
        let h = &buf[..SEGMENT_HEADER_BYTES];
        if h.iter().all(|&b| b == 0) {
            return Err(HeaderError::Zero);
        }
        if h[0..8] != SEGMENT_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if !(SEGMENT_VERSION_MIN..=SEGMENT_VERSION).contains(&version) {
            return Err(HeaderError::BadVersion(version));
        }
        let crc = u32::from_le_bytes([h[32], h[33], h[34], h[35]]);
        // The checksum covers bytes 0..32; the reserved bytes after it must be zero.
        if crc32c::crc32c(&h[0..32]) != crc || h[36..40] != [0, 0, 0, 0] {
            return Err(HeaderError::BadCrc);
        }
        // Checked after the checksum, so that only an intact header is called "unknown".
        let flags = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        if flags != 0 {
            return Err(HeaderError::UnknownFlags(flags));
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&h[16..24]);
        let mut s = [0u8; 8];
        s.copy_from_slice(&h[24..32]);
        Ok(SegmentHeader {
            number: u64::from_le_bytes(n),
            first_seq: u64::from_le_bytes(s),
        })
    }

    /// The format version of a header that [`SegmentHeader::decode`] accepted.
    pub fn version_of(buf: &[u8]) -> u32 {
        u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]])
    }
}

/// File name of segment `number`.
pub fn segment_file_name(number: u64) -> String {
    format!("{number:012}.wal")
}

/// File name of a segment being prepared (zero-filled) before it is renamed into use.
pub fn prepared_file_name(number: u64) -> String {
    format!("{number:012}.wal.prep")
}

/// Parses a segment file name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_all_kinds_and_lengths() {
        for kind in [Kind::Full, Kind::First, Kind::Middle, Kind::Last] {
            for len in [0usize, 1, 7, 8, 9, 100, 4096, 70_000] {
                let payload: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
                let mut buf = Vec::new();
                encode_frame(&mut buf, kind, 12345 + len as u64, &payload, len % 2 == 0);
                assert_eq!(buf.len(), frame_bytes(len));
                assert_eq!(buf.len() % 8, 0);
                let f = decode_frame(&buf).unwrap();
                assert_eq!(f.kind, kind);
                assert_eq!(f.seq, 12345 + len as u64);
                assert_eq!(f.payload, &payload[..]);
                assert_eq!(f.sync, len % 2 == 0);
                assert_eq!(f.total, buf.len());
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, Kind::Full, 77, b"hello, durable world", true);
        for bit in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            match decode_frame(&b) {
                Ok(f) => panic!("bit {bit} flip decoded as {f:?}"),
                Err(e) => assert_ne!(e, FrameError::Zero, "bit {bit}"),
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, Kind::Full, 1, &[0xAB; 50], false);
        for cut in 0..buf.len() {
            let r = decode_frame(&buf[..cut]);
            assert!(r.is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn zero_bytes_mean_no_frame() {
        assert_eq!(decode_frame(&[0u8; 64]), Err(FrameError::Zero));
        assert_eq!(decode_frame(&[0u8; 5]), Err(FrameError::Zero));
    }

    #[test]
    fn meta_frames_round_trip_and_reject_a_payload() {
        for kind in [Kind::Mark, Kind::Seal] {
            let bytes = encode_meta(kind, 0xDEAD_BEEF_0042);
            let f = decode_frame(&bytes).unwrap();
            assert_eq!((f.kind, f.seq, f.total), (kind, 0xDEAD_BEEF_0042, 16));
            assert!(f.payload.is_empty());
            // A meta kind with a payload is not a frame this format writes.
            let mut buf = Vec::new();
            encode_frame(&mut buf, kind, 1, b"x", false);
            assert_eq!(decode_frame(&buf), Err(FrameError::BadKind));
        }
    }

    #[test]
    fn ring_only_kinds_are_rejected_on_disk() {
        for kind in [Kind::Pad, Kind::SyncMarker] {
            let mut buf = Vec::new();
            encode_frame(&mut buf, kind, 1, b"x", false);
            assert_eq!(decode_frame(&buf), Err(FrameError::BadKind));
        }
    }

    #[test]
    fn header_round_trip_and_corruption() {
        let h = SegmentHeader {
            number: 42,
            first_seq: 9_000_000_001,
        };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        assert_eq!(SegmentHeader::version_of(&bytes), SEGMENT_VERSION);
        // Version 1 is still read; versions outside [1, current] are refused.
        for (v, ok) in [(0u32, false), (1, true), (2, true), (3, false)] {
            let mut b = bytes;
            b[8..12].copy_from_slice(&v.to_le_bytes());
            let crc = crc32c::crc32c(&b[0..32]);
            b[32..36].copy_from_slice(&crc.to_le_bytes());
            assert_eq!(SegmentHeader::decode(&b).is_ok(), ok, "version {v}");
        }
        assert_eq!(SegmentHeader::decode(&[0u8; 40]), Err(HeaderError::Zero));
        assert_eq!(
            SegmentHeader::decode(&bytes[..39]),
            Err(HeaderError::Truncated)
        );
        for bit in 0..40 * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&b).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(7), "000000000007.wal");
        assert_eq!(parse_segment_file_name("000000000007.wal"), Some(7));
        assert_eq!(parse_segment_file_name("000000000007.wal.prep"), None);
        assert_eq!(parse_segment_file_name("7.wal"), None);
        assert_eq!(parse_segment_file_name("LOCK"), None);
    }
}
