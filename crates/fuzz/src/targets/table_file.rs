//! A table file seen from outside: where its stored blocks are (the footer's, and the data
//! blocks its index names), the sizes they declare, and re-sealing their checksums.

use uringdb_lsm::table::fuzzing as tf;
use uringdb_lsm::table::Comparator;

use super::limits::STEPS_MAX;

pub(super) fn tf_footer_bytes() -> usize {
    uringdb_lsm::table::FOOTER_BYTES
}

pub(super) fn footer_array(input: &[u8]) -> [u8; uringdb_lsm::table::FOOTER_BYTES] {
    let mut f = [0u8; uringdb_lsm::table::FOOTER_BYTES];
    let n = input.len().min(f.len());
    f[..n].copy_from_slice(&input[..n]);
    f
}

pub(super) fn reseal_footer(b: &mut [u8]) {
    let n = tf_footer_bytes();
    if b.len() >= n {
        let at = b.len() - n;
        let crc = crc32c::crc32c(&b[at..at + 52]);
        b[at + 52..at + 56].copy_from_slice(&crc.to_le_bytes());
    }
}

pub(super) fn reseal_stored_block(b: &mut [u8]) {
    if let Some(payload) = b.len().checked_sub(tf::TRAILER_BYTES) {
        let crc = crc32c::crc32c(&b[..=payload]);
        b[payload + 1..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The stored block `(offset, size)` of `file`, if it lies inside it.
pub(super) fn stored(file: &[u8], (offset, size): (u64, u64)) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start
        .checked_add(usize::try_from(size).ok()?)?
        .checked_add(tf::TRAILER_BYTES)?;
    (end <= file.len()).then_some(start..end)
}

/// Every stored block a reader of `file` can reach: the footer's, then the data blocks
/// the index names (when the index decodes).
pub(super) fn reachable_blocks(file: &[u8]) -> Vec<std::ops::Range<usize>> {
    let n = tf_footer_bytes();
    let Some(footer_at) = file.len().checked_sub(n) else {
        return Vec::new();
    };
    let Ok((meta, index, filter)) = tf::decode_footer(&footer_array(&file[footer_at..])) else {
        return Vec::new();
    };
    let mut out: Vec<_> = [Some(meta), Some(index), filter]
        .into_iter()
        .flatten()
        .filter_map(|h| stored(file, h))
        .collect();
    // The target also seeks to the smallest and largest keys of the properties.
    let mut seeks: Vec<Vec<u8>> = TABLE_SEEKS.iter().map(|k| k.to_vec()).collect();
    if let Some(r) = stored(file, meta) {
        if let Ok(p) = tf::decode_stored_block(&file[r]).and_then(tf::decode_properties) {
            seeks.push(p.smallest_key);
            seeks.push(p.largest_key);
        }
    }
    let seeks: Vec<&[u8]> = seeks.iter().map(Vec::as_slice).collect();
    if let Some(r) = stored(file, index) {
        if let Ok(decoded) = tf::decode_stored_block(&file[r]) {
            for cmp in [Comparator::Bytewise, Comparator::InternalKey] {
                let handles = tf::reachable_index_handles(
                    decoded.clone(),
                    cmp,
                    footer_at as u64,
                    &seeks,
                    STEPS_MAX,
                );
                out.extend(handles.into_iter().filter_map(|h| stored(file, h)));
            }
        }
    }
    out
}

/// The largest decoded size any reachable compressed block declares.
pub(super) fn declared_table(file: &[u8]) -> u64 {
    reachable_blocks(file)
        .into_iter()
        .filter_map(|r| tf::declared_decoded_bytes(&file[r]))
        .max()
        .unwrap_or(0)
}

pub(super) fn reseal_table(b: &mut [u8]) {
    reseal_footer(b);
    // The index first (the data handles are read from it), then everything reachable.
    if let Some(footer_at) = b.len().checked_sub(tf_footer_bytes()) {
        if let Ok((_, index, _)) = tf::decode_footer(&footer_array(&b[footer_at..])) {
            if let Some(r) = stored(b, index) {
                let mut blk = b[r.clone()].to_vec();
                reseal_stored_block(&mut blk);
                b[r].copy_from_slice(&blk);
            }
        }
    }
    for r in reachable_blocks(b) {
        let mut blk = b[r.clone()].to_vec();
        reseal_stored_block(&mut blk);
        b[r].copy_from_slice(&blk);
    }
}

/// Keys the table target seeks to and looks up (besides the table's smallest and largest
/// keys, which come from its properties).
pub(super) const TABLE_SEEKS: [&[u8]; 3] = [b"", b"key00042\0\0\0\0\0\0\0\x01", &[0xff; 12]];
