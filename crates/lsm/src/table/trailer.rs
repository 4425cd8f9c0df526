//! A block as stored in the file: its payload (compressed or not), the compression type
//! and a checksum. Every block of a table — data, filter, index, metaindex — is stored
//! this way, and verified on every read.
//!
//! Fixed-width integers are little-endian.
//!
//! ```text
//! offset  size  field
//!      0     n  payload: the decoded block itself (type 0), or
//!               varint decoded_len ++ compressed bytes (types 1 and 2)
//!      n     1  compression type: 0 none, 1 lz4 (block format), 2 zstd (one frame)
//!    n+1     4  crc32c over payload ++ type
//! ```
//!
//! A block handle's `size` is `n`: the trailer's 5 bytes follow it. The decoded length is
//! stored in front of compressed payloads so that the reader allocates exactly once and
//! refuses, before decompressing anything, a length beyond [`BLOCK_BYTES_MAX`].
//!
//! Why a block is stored uncompressed unless compression saves at least 12.5%: decoding a
//! compressed block costs CPU on every cache miss, which only pays for itself when it
//! saves real space (LevelDB makes the same trade).

use std::cell::RefCell;
use std::io;

use super::coding::{get_u32_le, get_varint_bounded, put_varint, VARINT64_BYTES_MAX};
use super::limits::{BLOCK_BYTES_MAX, ZSTD_LEVEL_DEFAULT};

/// Bytes that follow every stored payload: the type and the checksum.
pub(crate) const TRAILER_BYTES: usize = 5;

const TYPE_NONE: u8 = 0;
const TYPE_LZ4: u8 = 1;
const TYPE_ZSTD: u8 = 2;

/// How data and index blocks are compressed (chosen per table; recorded per block).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Stored as is.
    None,
    /// LZ4 block format: fast to compress and very fast to decode (the default).
    #[default]
    Lz4,
    /// Zstandard at the given level (1..=22): smaller, slower to write.
    Zstd {
        /// Compression level ([`super::limits::ZSTD_LEVEL_MIN`]..=
        /// [`super::limits::ZSTD_LEVEL_MAX`]).
        level: i32,
    },
}

impl Compression {
    /// Zstandard at the default level.
    pub const ZSTD_DEFAULT: Compression = Compression::Zstd {
        level: ZSTD_LEVEL_DEFAULT,
    };
}

/// Encodes blocks into their stored form; owns the reusable compression state.
pub(crate) struct BlockEncoder {
    compression: Compression,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
}

impl BlockEncoder {
    /// An encoder for `compression` (the level is validated by the caller).
    pub(crate) fn new(compression: Compression) -> io::Result<BlockEncoder> {
        let zstd = match compression {
            Compression::Zstd { level } => Some(zstd::bulk::Compressor::new(level)?),
            _ => None,
        };
        Ok(BlockEncoder {
            compression,
            zstd,
            scratch: Vec::new(),
        })
    }

    /// Replaces `out` with the stored form of `raw` (payload and trailer), compressed with
    /// the configured compression if that saves at least 12.5%, or with none if
    /// `compress` is false. Returns the payload size (the handle's size).
    pub(crate) fn encode(
        &mut self,
        raw: &[u8],
        compress: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<usize> {
        debug_assert!(raw.len() <= BLOCK_BYTES_MAX);
        out.clear();
        let compression = if compress {
            self.compression
        } else {
            Compression::None
        };
        let ty = match compression {
            Compression::None => TYPE_NONE,
            Compression::Lz4 => {
                put_varint(out, raw.len() as u64);
                let start = out.len();
                out.resize(
                    start + lz4_flex::block::get_maximum_output_size(raw.len()),
                    0,
                );
                let n = lz4_flex::block::compress_into(raw, &mut out[start..])
                    .map_err(|e| io::Error::other(format!("lz4: {e}")))?;
                out.truncate(start + n);
                TYPE_LZ4
            }
            Compression::Zstd { .. } => {
                let Some(z) = self.zstd.as_mut() else {
                    return Err(io::Error::other("zstd compressor missing"));
                };
                self.scratch.clear();
                self.scratch
                    .reserve(zstd::zstd_safe::compress_bound(raw.len()));
                z.compress_to_buffer(raw, &mut self.scratch)?;
                put_varint(out, raw.len() as u64);
                out.extend_from_slice(&self.scratch);
                TYPE_ZSTD
            }
        };
        let ty = if ty != TYPE_NONE && out.len() > raw.len() - raw.len() / 8 {
            TYPE_NONE
        } else {
            ty
        };
        if ty == TYPE_NONE {
            out.clear();
            out.extend_from_slice(raw);
        }
        let payload = out.len();
        out.push(ty);
        let crc = crc32c::crc32c(out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(payload)
    }
}

thread_local! {
    /// One zstd decompression context per reading thread: creating one per block would
    /// cost an allocation of tens of KiB on every cache miss.
    static ZSTD_DECODER: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// [`decode`] of a block the caller owns: an uncompressed one is its own payload (the
/// trailer cut off in place), not a copy; a compressed one is decoded as by [`decode`].
pub(crate) fn decode_owned(mut stored: Vec<u8>) -> Result<Vec<u8>, String> {
    match stored.len().checked_sub(TRAILER_BYTES) {
        Some(payload_len) if stored[payload_len] == TYPE_NONE => {
            verify(&stored, payload_len)?;
            stored.truncate(payload_len);
            Ok(stored)
        }
        _ => decode(&stored),
    }
}

/// Whether `stored` (a stored block, payload and trailer) says its payload is not
/// compressed (false for one too short to have a trailer: [`decode`] reports it).
pub(crate) fn is_uncompressed(stored: &[u8]) -> bool {
    stored
        .len()
        .checked_sub(TRAILER_BYTES)
        .is_some_and(|n| stored[n] == TYPE_NONE)
}

/// The payload of an uncompressed stored block (see [`is_uncompressed`]), borrowed, once
/// its checksum is verified.
pub(crate) fn verify_uncompressed(stored: &[u8]) -> Result<&[u8], String> {
    let Some(payload_len) = stored.len().checked_sub(TRAILER_BYTES) else {
        return Err("block shorter than its trailer".into());
    };
    debug_assert_eq!(stored[payload_len], TYPE_NONE);
    verify(stored, payload_len)?;
    Ok(&stored[..payload_len])
}

/// Checks the checksum of the stored block whose trailer starts at `payload_len`.
fn verify(stored: &[u8], payload_len: usize) -> Result<(), String> {
    let want = get_u32_le(stored, payload_len + 1).unwrap_or(0);
    let got = crc32c::crc32c(&stored[..=payload_len]);
    if want != got {
        return Err(format!(
            "block checksum mismatch (stored {want:#010x}, computed {got:#010x})"
        ));
    }
    Ok(())
}

/// Verifies and decodes a stored block (payload and trailer, exactly). The error is a
/// reason; the caller names the file and the block's offset.
pub(crate) fn decode(stored: &[u8]) -> Result<Vec<u8>, String> {
    let Some(payload_len) = stored.len().checked_sub(TRAILER_BYTES) else {
        return Err("block shorter than its trailer".into());
    };
    let ty = stored[payload_len];
    verify(stored, payload_len)?;
    let payload = &stored[..payload_len];
    if ty == TYPE_NONE {
        return Ok(payload.to_vec());
    }
    let Some((decoded_len, n)) =
        get_varint_bounded(payload, BLOCK_BYTES_MAX).filter(|&(_, n)| n <= VARINT64_BYTES_MAX)
    else {
        return Err("bad decoded length of a compressed block".into());
    };
    let src = &payload[n..];
    match ty {
        TYPE_LZ4 => {
            let mut out = vec![0u8; decoded_len];
            match lz4_flex::block::decompress_into(src, &mut out) {
                Ok(m) if m == decoded_len => Ok(out),
                Ok(m) => Err(format!(
                    "lz4 block decoded to {m} bytes, expected {decoded_len}"
                )),
                Err(e) => Err(format!("lz4: {e}")),
            }
        }
        TYPE_ZSTD => ZSTD_DECODER.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?);
            }
            let Some(d) = slot.as_mut() else {
                return Err("zstd decoder missing".to_string());
            };
            let mut out = Vec::with_capacity(decoded_len);
            match d.decompress_to_buffer(src, &mut out) {
                Ok(m) if m == decoded_len => Ok(out),
                Ok(m) => Err(format!(
                    "zstd block decoded to {m} bytes, expected {decoded_len}"
                )),
                Err(e) => Err(format!("zstd: {e}")),
            }
        }),
        other => Err(format!("unknown compression type {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 3] = [
        Compression::None,
        Compression::Lz4,
        Compression::ZSTD_DEFAULT,
    ];

    fn compressible(n: usize) -> Vec<u8> {
        (0..n).map(|i| b"abcabcabd"[i % 9]).collect()
    }

    fn noise(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn round_trip_each_compression() {
        for c in ALL {
            let mut enc = BlockEncoder::new(c).expect("encoder");
            for raw in [
                Vec::new(),
                vec![7u8],
                compressible(4096),
                noise(4096),
                compressible(1 << 20),
            ] {
                let mut out = Vec::new();
                let n = enc.encode(&raw, true, &mut out).expect("encode");
                assert_eq!(out.len(), n + TRAILER_BYTES);
                assert_eq!(
                    decode(&out).expect("decode"),
                    raw,
                    "{c:?} len {}",
                    raw.len()
                );
                assert_eq!(
                    decode_owned(out).expect("decode_owned"),
                    raw,
                    "{c:?} len {} (owned)",
                    raw.len()
                );
            }
        }
    }

    #[test]
    fn compression_is_kept_only_when_it_saves_an_eighth() {
        for c in [Compression::Lz4, Compression::ZSTD_DEFAULT] {
            let mut enc = BlockEncoder::new(c).expect("encoder");
            let mut out = Vec::new();
            let raw = compressible(4096);
            let n = enc.encode(&raw, true, &mut out).expect("encode");
            assert_ne!(out[n], TYPE_NONE, "{c:?}");
            assert!(n <= raw.len() - raw.len() / 8);
            let raw = noise(4096);
            let n = enc.encode(&raw, true, &mut out).expect("encode");
            assert_eq!(
                out[n], TYPE_NONE,
                "{c:?}: incompressible data is stored raw"
            );
            assert_eq!(n, raw.len());
            let raw = compressible(4096);
            let n = enc.encode(&raw, false, &mut out).expect("encode");
            assert_eq!(out[n], TYPE_NONE, "{c:?}: compression not asked for");
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        for c in ALL {
            let mut enc = BlockEncoder::new(c).expect("encoder");
            let mut good = Vec::new();
            enc.encode(&compressible(300), true, &mut good)
                .expect("encode");
            for bit in 0..good.len() * 8 {
                let mut b = good.clone();
                b[bit / 8] ^= 1 << (bit % 8);
                assert!(decode(&b).is_err(), "{c:?} bit {bit}");
                assert!(decode_owned(b).is_err(), "{c:?} bit {bit} (owned)");
            }
            for cut in 0..good.len() {
                assert!(decode(&good[..cut]).is_err(), "{c:?} cut {cut}");
                assert!(
                    decode_owned(good[..cut].to_vec()).is_err(),
                    "{c:?} cut {cut} (owned)"
                );
            }
        }
    }

    /// A payload that passes its checksum but lies about its contents (a writer bug) is an
    /// error, never a panic or an unbounded allocation.
    #[test]
    fn lying_payloads_with_valid_checksums_are_errors() {
        fn seal(mut payload: Vec<u8>, ty: u8) -> Vec<u8> {
            payload.push(ty);
            let crc = crc32c::crc32c(&payload);
            payload.extend_from_slice(&crc.to_le_bytes());
            payload
        }
        // Unknown type.
        assert!(decode(&seal(b"abc".to_vec(), 3)).is_err());
        // Decoded length beyond the bound.
        let mut p = Vec::new();
        put_varint(&mut p, BLOCK_BYTES_MAX as u64 + 1);
        assert!(decode(&seal(p, TYPE_LZ4)).is_err());
        // Wrong decoded length, for each codec.
        for c in [Compression::Lz4, Compression::ZSTD_DEFAULT] {
            let mut enc = BlockEncoder::new(c).expect("encoder");
            let mut out = Vec::new();
            let n = enc
                .encode(&compressible(1000), true, &mut out)
                .expect("encode");
            let ty = out[n];
            let (_, vn) = super::super::coding::get_varint(&out).expect("varint");
            for claimed in [999u64, 1001, 10] {
                let mut p = Vec::new();
                put_varint(&mut p, claimed);
                p.extend_from_slice(&out[vn..n]);
                assert!(decode(&seal(p, ty)).is_err(), "{c:?} claimed {claimed}");
            }
            // Garbage compressed bytes.
            let mut p = Vec::new();
            put_varint(&mut p, 1000);
            p.extend_from_slice(&noise(50));
            assert!(decode(&seal(p, ty)).is_err(), "{c:?} garbage");
        }
    }
}
