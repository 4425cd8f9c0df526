//! Variable-length and fixed-width integer coding shared by the table's blocks.
//!
//! Varints are LEB128 (7 bits per byte, least significant group first, high bit set on
//! every byte but the last); fixed-width integers are little-endian. Decoders return `None`
//! on truncated or over-long input instead of panicking: their callers turn that into a
//! corruption error naming the offset.

/// Most bytes a varint-encoded `u64` takes.
pub(crate) const VARINT64_BYTES_MAX: usize = 10;

/// Appends `v` as a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes a varint at the start of `buf`: the value and the bytes it took. `None` if
/// `buf` ends inside it or it is longer than a `u64` allows.
#[inline]
pub(crate) fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    // The common case in a block (lengths below 128): one byte, no loop.
    if let Some(&b) = buf.first() {
        if b < 0x80 {
            return Some((u64::from(b), 1));
        }
    }
    get_varint_long(buf)
}

#[cold]
fn get_varint_long(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(VARINT64_BYTES_MAX) {
        let bits = u64::from(b & 0x7f);
        // The tenth byte may carry only the top bit of a u64.
        if i == VARINT64_BYTES_MAX - 1 && b > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Decodes a varint that must fit in a `usize` no larger than `max`.
#[inline]
pub(crate) fn get_varint_bounded(buf: &[u8], max: usize) -> Option<(usize, usize)> {
    let (v, n) = get_varint(buf)?;
    let v = usize::try_from(v).ok()?;
    (v <= max).then_some((v, n))
}

/// Reads a little-endian `u32` at `at`, `None` if out of bounds.
pub(crate) fn get_u32_le(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Reads a little-endian `u64` at `at`, `None` if out of bounds.
pub(crate) fn get_u64_le(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(bytes);
    Some(u64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_edges() {
        for v in [
            0u64,
            1,
            127,
            128,
            255,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert!(b.len() <= VARINT64_BYTES_MAX);
            assert_eq!(get_varint(&b), Some((v, b.len())), "{v}");
            for cut in 0..b.len() {
                assert_eq!(get_varint(&b[..cut]), None, "{v} cut at {cut}");
            }
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        assert_eq!(get_varint(&[0xff; 11]), None);
        // Ten bytes whose last one would overflow 64 bits.
        let mut b = vec![0xff; 9];
        b.push(0x02);
        assert_eq!(get_varint(&b), None);
        assert_eq!(get_varint_bounded(&[0x80, 0x01], 127), None);
        assert_eq!(get_varint_bounded(&[0x80, 0x01], 128), Some((128, 2)));
    }

    #[test]
    fn fixed_reads_are_bounds_checked() {
        let b = [1u8, 0, 0, 0, 2, 0, 0, 0, 9];
        assert_eq!(get_u32_le(&b, 0), Some(1));
        assert_eq!(get_u32_le(&b, 4), Some(2));
        assert_eq!(get_u32_le(&b, 6), None);
        assert_eq!(get_u64_le(&b, 0), Some(0x2_0000_0001));
        assert_eq!(get_u64_le(&b, 2), None);
        assert_eq!(get_u32_le(&b, usize::MAX - 1), None);
    }
}
