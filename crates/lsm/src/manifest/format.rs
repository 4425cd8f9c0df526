//! The manifest's framing: the file header, records (length, checksum, payload) and varints.
//! The byte layout is drawn in the module documentation of [`super`].

/// Magic at the start of every manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"URDBMAN1";
/// Newest manifest format version (written when the manifest may hold the stream tree's
/// fields; see the module docs of [`super`]).
pub const MANIFEST_VERSION: u32 = 2;
/// Oldest manifest format version this build reads (and writes for a database without
/// stream-tree tables).
pub const MANIFEST_VERSION_MIN: u32 = 1;
/// Size of the manifest header in bytes (the first record starts here).
pub const MANIFEST_HEADER_BYTES: usize = 32;
/// Size of a record's header (length + checksum) in bytes.
pub const RECORD_HEADER_BYTES: usize = 8;

/// Largest record payload. A snapshot of a large database (hundreds of thousands of tables,
/// each ~100 bytes of metadata) stays well below it; a length above it is damage.
pub(crate) const RECORD_PAYLOAD_BYTES_MAX: usize = 64 << 20;
/// Largest manifest recovery reads. The database rewrites its manifest as one snapshot once
/// it passes a few MiB, so a bigger file is damage (or not a manifest), not a reason to
/// allocate without bound.
pub(crate) const MANIFEST_FILE_BYTES_MAX: u64 = 1 << 30;

/// Most bytes a varint-encoded `u64` takes.
const VARINT64_BYTES_MAX: usize = 10;

/// The header of manifest `number`.
pub(crate) fn encode_header(number: u64, version: u32) -> [u8; MANIFEST_HEADER_BYTES] {
    debug_assert!((MANIFEST_VERSION_MIN..=MANIFEST_VERSION).contains(&version));
    let mut h = [0u8; MANIFEST_HEADER_BYTES];
    h[0..8].copy_from_slice(&MANIFEST_MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    // 12..16 flags, 28..32 reserved: zero.
    h[16..24].copy_from_slice(&number.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Checks the header at the start of `file` (the whole file) for manifest `number`: its
/// format version, or on failure the offset of the bad field and what is wrong.
pub(crate) fn check_header(file: &[u8], number: u64) -> Result<u32, (u64, String)> {
    if file.len() < MANIFEST_HEADER_BYTES {
        return Err((
            file.len() as u64,
            format!(
                "the file is {} bytes, shorter than the {MANIFEST_HEADER_BYTES}-byte header",
                file.len()
            ),
        ));
    }
    let h = &file[..MANIFEST_HEADER_BYTES];
    if h[0..8] != MANIFEST_MAGIC {
        return Err((0, format!("bad magic {:02x?} (not a manifest)", &h[0..8])));
    }
    let stored = le_u32(h, 24);
    let actual = crc32c::crc32c(&h[0..24]);
    if stored != actual {
        return Err((
            24,
            format!("header checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"),
        ));
    }
    let version = le_u32(h, 8);
    if !(MANIFEST_VERSION_MIN..=MANIFEST_VERSION).contains(&version) {
        return Err((
            8,
            format!(
                "unsupported format version {version} (this build reads \
                 {MANIFEST_VERSION_MIN} to {MANIFEST_VERSION})"
            ),
        ));
    }
    let flags = le_u32(h, 12);
    if flags != 0 {
        return Err((12, format!("unknown header flags {flags:#x}")));
    }
    let in_header = le_u64(h, 16);
    if in_header != number {
        return Err((
            16,
            format!("the header says manifest {in_header}, the file name says {number}"),
        ));
    }
    let reserved = le_u32(h, 28);
    if reserved != 0 {
        return Err((28, format!("reserved header word is {reserved:#x}, not 0")));
    }
    Ok(version)
}

/// The checksum of a record: crc32c over its length field and payload.
fn record_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// The record header (length, checksum) for `payload`.
///
/// # Panics
/// If `payload` exceeds [`RECORD_PAYLOAD_BYTES_MAX`] (callers check first).
pub(crate) fn encode_record_header(payload: &[u8]) -> [u8; RECORD_HEADER_BYTES] {
    assert!(
        payload.len() <= RECORD_PAYLOAD_BYTES_MAX,
        "record payload of {} bytes exceeds the {RECORD_PAYLOAD_BYTES_MAX}-byte limit",
        payload.len()
    );
    let len_bytes = (payload.len() as u32).to_le_bytes();
    let mut h = [0u8; RECORD_HEADER_BYTES];
    h[0..4].copy_from_slice(&len_bytes);
    h[4..8].copy_from_slice(&record_crc(len_bytes, payload).to_le_bytes());
    h
}

/// The payload of the record at `at` in `file` if that record is intact: its header fits,
/// its length is within limits, its payload ends inside the file and its checksum matches.
pub(crate) fn intact_record_at(file: &[u8], at: usize) -> Option<&[u8]> {
    let header = file.get(at..at.checked_add(RECORD_HEADER_BYTES)?)?;
    let len = le_u32(header, 0) as usize;
    if len > RECORD_PAYLOAD_BYTES_MAX {
        return None;
    }
    let start = at + RECORD_HEADER_BYTES;
    let payload = file.get(start..start.checked_add(len)?)?;
    let len_bytes = [header[0], header[1], header[2], header[3]];
    (record_crc(len_bytes, payload) == le_u32(header, 4)).then_some(payload)
}

/// The offset of the first intact record starting after `at`, if any.
pub(crate) fn intact_record_after(file: &[u8], at: usize) -> Option<usize> {
    (at + 1..file.len().saturating_sub(RECORD_HEADER_BYTES - 1))
        .find(|&q| intact_record_at(file, q).is_some())
}

/// Appends `v` as a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `bytes` with a varint length prefix.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Decodes a varint at the start of `buf`: the value and the bytes it took. `None` if `buf`
/// ends inside it or it is longer than a `u64` allows.
pub(crate) fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(VARINT64_BYTES_MAX) {
        // The tenth byte may carry only the top bit of a u64.
        if i == VARINT64_BYTES_MAX - 1 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_each_field_checked() {
        for v in [1, 2] {
            assert_eq!(check_header(&encode_header(42, v), 42), Ok(v));
        }
        // Versions around the ones read (0, 3) are refused at the version field.
        for v in [0u32, 3] {
            let mut d = encode_header(42, 1);
            d[8..12].copy_from_slice(&v.to_le_bytes());
            let crc = crc32c::crc32c(&d[0..24]);
            d[24..28].copy_from_slice(&crc.to_le_bytes());
            let (offset, reason) = check_header(&d, 42).unwrap_err();
            assert_eq!(offset, 8);
            assert!(
                reason.contains(&format!("unsupported format version {v}")),
                "{reason}"
            );
        }
        let h = encode_header(42, 1);
        assert_eq!(check_header(&h, 43).unwrap_err().0, 16);
        assert_eq!(check_header(&h[..31], 42).unwrap_err().0, 31);
        for byte in 0..MANIFEST_HEADER_BYTES {
            for bit in 0..8 {
                let mut d = h;
                d[byte] ^= 1 << bit;
                let (offset, reason) = check_header(&d, 42).unwrap_err();
                assert!(
                    offset < MANIFEST_HEADER_BYTES as u64,
                    "{byte}.{bit}: {reason}"
                );
            }
        }
        // A header with a valid checksum but a bad field reports that field.
        let mut d = h;
        d[12] = 1;
        let crc = crc32c::crc32c(&d[0..24]);
        d[24..28].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_header(&d, 42).unwrap_err().0, 12);
        let mut d = h;
        d[28] = 1;
        assert_eq!(check_header(&d, 42).unwrap_err().0, 28);
    }

    #[test]
    fn records_are_intact_only_when_whole_and_checksummed() {
        let payload = b"hello manifest";
        let mut file = vec![0u8; 3];
        file.extend_from_slice(&encode_record_header(payload));
        file.extend_from_slice(payload);
        assert_eq!(intact_record_at(&file, 3), Some(&payload[..]));
        assert_eq!(intact_record_after(&file, 0), Some(3));
        assert_eq!(intact_record_after(&file, 3), None);
        assert_eq!(intact_record_at(&file[..file.len() - 1], 3), None);
        assert_eq!(intact_record_at(&file, 2), None);
        assert_eq!(intact_record_at(&file, usize::MAX - 2), None);
        for i in 3..file.len() {
            let mut d = file.clone();
            d[i] ^= 0x10;
            assert_eq!(intact_record_at(&d, 3), None, "byte {i}");
        }
        // Zeros are never a record, not even an empty one.
        assert_eq!(intact_record_at(&[0u8; 8], 0), None);
        let mut empty = encode_record_header(b"").to_vec();
        assert_eq!(intact_record_at(&empty, 0), Some(&b""[..]));
        empty.push(0);
        assert_eq!(intact_record_at(&empty, 0), Some(&b""[..]));
    }

    #[test]
    fn varints() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint(&out), Some((v, out.len())));
            assert_eq!(get_varint(&out[..out.len() - 1]), None);
        }
        assert_eq!(get_varint(&[0xff; 10]), None);
        assert_eq!(
            get_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 2]),
            None
        );
    }
}
