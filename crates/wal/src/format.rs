//! On-disk format of a WAL segment. This module is the one home of the byte layout; the
//! writer (the committer, which patches sequence numbers into frames encoded by producers)
//! and the reader ([`crate::recovery`], [`crate::reader`]) both go through it.
//!
//! All integers are little-endian.
//!
//! ## Segment file `NNNNNNNNNNNN.wal`
//!
//! A segment is preallocated before first use, so that appending to it changes no
//! file-size metadata and fdatasync flushes data only: either a new file zero-filled, or
//! (version 3) a recycled one — a segment the log no longer needed, renamed into reuse with
//! its old bytes still in it (see "Recycled segments" below). Segments differ in size
//! (they follow the write rate, up to `segment_bytes`: see `crate::segment`); a segment's
//! size is its file's length, never taken from the options, so this layout needs no size
//! field and files written with fixed-size segments read the same.
//!
//! ```text
//! offset  size  field
//!      0     8  magic  "URDBWAL1"
//!      8     4  format version (3; 1 and 2 are read too, see "Versions")
//!     12     4  flags: bit 0 RECYCLED (version 3; every other bit 0, and all 0 before)
//!     16     8  segment number (matches the file name)
//!     24     8  first_seq: sequence number of the first record in this segment
//!     32     4  crc32c of bytes 0..32
//!     36     4  reserved (0)
//!     40     .  frames, back to back, each 8-byte aligned; then zeros to the end of the file
//!               (a RECYCLED segment: zeros or the bytes of the file's earlier lives)
//! ```
//!
//! ## Frame
//!
//! ```text
//! offset  size  field
//!      0     4  word0: bits 0..=26 payload length, bit 27 SYNC flag, bits 28..=31 kind
//!      4     4  crc: crc32c(word0 ++ payload) XOR crc32c(seq as 8 LE bytes) XOR salt
//!      8     8  seq: the record's sequence number
//!     16     n  payload
//!   16+n     .  zero padding to the next multiple of 8
//! ```
//!
//! The salt ([`segment_salt`]) is 0 in versions 1 and 2 and `crc32c(segment number as 8 LE
//! bytes)` in version 3: every frame's checksum is bound to the segment it was written in.
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
//! ## Recycled segments (version 3)
//!
//! When the log is truncated, up to `recycle_segments` of the freed segment files are kept
//! (renamed `M.wal.free`, M their last segment number) and later reused for a new segment N
//! instead of zero-filling a new file: the file keeps its size and its old bytes, and only
//! the header and the frames written from then on are new. Its header has the RECYCLED
//! flag. Two facts keep the old bytes harmless:
//!
//! * **No old frame validates.** Each life of a file has a distinct segment number (N is
//!   larger than every number the file had before: numbers only grow, and a pool file is
//!   kept only while its number is below every live segment's), and the salt binds a frame
//!   to its number. Two salts `crc32c(a)`, `crc32c(b)` of 8-byte values are equal only if
//!   the CRC polynomial divides `a XOR b` as a polynomial, which needs a degree of at least
//!   32: for segment numbers below 2^32 they always differ, so a frame of an earlier life
//!   fails its checksum deterministically, not just with probability 2^-32. (A frame of
//!   the *same* number from an attempt that never became a live segment — a
//!   `N.wal.prep` written before a crash — cannot be met: recovery deletes `.prep` files,
//!   and a pool file is reused only after the rename that took it out of the pool is
//!   durable, so a pool file never holds frames of a number not yet live.)
//! * **The tail is told without zeros.** In a zero-filled segment a torn write leaves a
//!   sector of zeros, and a frame with data in every sector and a bad checksum is damage.
//!   In a recycled one a torn sector holds old bytes, so that test is not available: any
//!   stop (bad checksum, bad kind, bad padding, truncation) is a candidate torn tail, and
//!   only the MARK rule decides. A valid MARK (or SEAL) of this segment after the stop
//!   that claims a record at or after it durable makes the stop damage (reported with
//!   file and offset, as before); with no such claim the stop is a torn tail and is cut.
//!   At most `syncs_in_flight` + 1 groups are unsynced at a crash, and every group after
//!   a durable one carries a MARK claiming it, so the only acknowledged records this can
//!   cut silently are those after the last MARK claim in the file: the last acknowledged
//!   groups before a crash (a clean close writes a MARK claiming everything). There a
//!   zero-filled segment would report bit rot in a frame written whole as damage; a
//!   recycled one cuts it as a torn tail. Recovery also zeroes, after the cut, every
//!   frame of this segment's own life that follows it, so that no unacknowledged frame of
//!   a torn group can be met again after new appends.
//!
//! ## Versions
//!
//! A reader accepts versions 1 to 3 and rejects any other with the file named. Version 1
//! segments (written before MARK and SEAL existed) hold no meta frames; recovery treats a
//! hole in them the old way: any valid record after it makes it corruption. Version 2
//! segments have MARK and SEAL frames and an unsalted checksum (salt 0). Version 3 adds
//! the salt and the RECYCLED flag; a version 3 segment without the flag is zero-filled and
//! its tail is judged as in version 2.
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
pub const SEGMENT_VERSION: u32 = 3;
/// Header flag (version 3): the segment is a recycled file; past its frames lie old bytes,
/// not zeros.
pub const FLAG_RECYCLED: u32 = 1;
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

/// The checksum salt of segment `number` written in format `version`: 0 before version 3,
/// `crc32c(number as 8 LE bytes)` from it (see the module docs).
pub fn segment_salt(version: u32, number: u64) -> u32 {
    if version >= 3 {
        crc32c::crc32c(&number.to_le_bytes())
    } else {
        0
    }
}

/// Encodes a meta frame (MARK or SEAL) whose `seq` field is `value`, for a segment with
/// checksum salt `salt`.
pub fn encode_meta(kind: Kind, value: u64, salt: u32) -> [u8; META_FRAME_BYTES] {
    debug_assert!(kind.is_meta());
    let w = word0(kind, 0, false);
    let crc = seal_crc(partial_crc(w, &[]), value) ^ salt;
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

/// Encodes a whole frame (header, payload, padding) into `out` with salt 0 (a version 1
/// or 2 segment) — used by tests and by tools; the hot path encodes straight into the
/// ring buffer instead.
pub fn encode_frame(out: &mut Vec<u8>, kind: Kind, seq: u64, payload: &[u8], sync: bool) {
    encode_frame_salted(out, 0, kind, seq, payload, sync);
}

/// [`encode_frame`] for a segment with checksum salt `salt` (see [`segment_salt`]).
pub fn encode_frame_salted(
    out: &mut Vec<u8>,
    salt: u32,
    kind: Kind,
    seq: u64,
    payload: &[u8],
    sync: bool,
) {
    let w = word0(kind, payload.len(), sync);
    let crc = seal_crc(partial_crc(w, payload), seq) ^ salt;
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

/// Decodes the frame at the start of `buf` and verifies its checksum with salt 0 (a
/// version 1 or 2 segment).
pub fn decode_frame(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    decode_frame_salted(buf, 0)
}

/// Decodes the frame at the start of `buf` and verifies its checksum with `salt` (the
/// segment's, see [`segment_salt`]).
pub fn decode_frame_salted(buf: &[u8], salt: u32) -> Result<Frame<'_>, FrameError> {
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
    if seal_crc(partial_crc(w, payload), seq) ^ salt != crc {
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
    /// Encodes the 40-byte header of a zero-filled segment in the current version.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        self.encode_as(SEGMENT_VERSION, 0)
    }

    /// Encodes the header in format `version` with `flags` (tests and tools write older
    /// versions with it; the log writes [`SEGMENT_VERSION`], with [`FLAG_RECYCLED`] for a
    /// recycled file).
    pub fn encode_as(&self, version: u32, flags: u32) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut h = [0u8; SEGMENT_HEADER_BYTES];
        h[0..8].copy_from_slice(&SEGMENT_MAGIC);
        h[8..12].copy_from_slice(&version.to_le_bytes());
        h[12..16].copy_from_slice(&flags.to_le_bytes());
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
        let known = if version >= 3 { FLAG_RECYCLED } else { 0 };
        if flags & !known != 0 {
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

    /// The flags of a header that [`SegmentHeader::decode`] accepted.
    pub fn flags_of(buf: &[u8]) -> u32 {
        u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]])
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

/// File name of a recycled segment file waiting in the pool for reuse: `number` is the
/// last segment number it had (its frames carry that salt or an older one).
pub fn free_file_name(number: u64) -> String {
    format!("{number:012}.wal.free")
}

/// Parses a pool file name ([`free_file_name`]).
pub fn parse_free_file_name(name: &str) -> Option<u64> {
    parse_segment_file_name(name.strip_suffix(".free")?)
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
            let bytes = encode_meta(kind, 0xDEAD_BEEF_0042, 0);
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
        // Versions 1 and 2 are still read; versions outside [1, current] are refused.
        for (v, ok) in [(0u32, false), (1, true), (2, true), (3, true), (4, false)] {
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
        assert_eq!(free_file_name(7), "000000000007.wal.free");
        assert_eq!(parse_free_file_name("000000000007.wal.free"), Some(7));
        assert_eq!(parse_segment_file_name("000000000007.wal.free"), None);
        assert_eq!(parse_free_file_name("000000000007.wal"), None);
    }

    #[test]
    fn recycled_flag_is_version_3_only() {
        let h = SegmentHeader {
            number: 3,
            first_seq: 10,
        };
        let b = h.encode_as(3, FLAG_RECYCLED);
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        assert_eq!(SegmentHeader::flags_of(&b), FLAG_RECYCLED);
        assert_eq!(
            SegmentHeader::decode(&h.encode_as(2, FLAG_RECYCLED)),
            Err(HeaderError::UnknownFlags(FLAG_RECYCLED))
        );
        assert_eq!(
            SegmentHeader::decode(&h.encode_as(3, 2)),
            Err(HeaderError::UnknownFlags(2))
        );
    }

    /// A frame written in one life of a file never validates in a later one: the salts of
    /// segment numbers below 2^32 are pairwise distinct (see the module docs), checked here
    /// over a window of neighbours and a spread of far-apart numbers.
    #[test]
    fn a_frame_of_another_segment_never_validates() {
        let mut seen = std::collections::HashMap::new();
        for n in (1..=20_000u64).chain((0..2000u64).map(|i| i * 2_147_483 + 7)) {
            if let Some(m) = seen.insert(segment_salt(3, n), n) {
                assert_eq!(m, n, "salts of {m} and {n} collide");
            }
        }
        for (old, new) in [
            (1u64, 2u64),
            (5, 6),
            (41, 1_000),
            (u32::MAX as u64 - 1, u32::MAX as u64),
        ] {
            let mut buf = Vec::new();
            encode_frame_salted(
                &mut buf,
                segment_salt(3, old),
                Kind::Full,
                9,
                b"old life",
                true,
            );
            assert!(decode_frame_salted(&buf, segment_salt(3, old)).is_ok());
            assert_eq!(
                decode_frame_salted(&buf, segment_salt(3, new)),
                Err(FrameError::BadCrc)
            );
            let mark = encode_meta(Kind::Mark, 8, segment_salt(3, old));
            assert_eq!(
                decode_frame_salted(&mark, segment_salt(3, new)),
                Err(FrameError::BadCrc)
            );
        }
        assert_eq!(segment_salt(2, 5), 0);
    }
}
