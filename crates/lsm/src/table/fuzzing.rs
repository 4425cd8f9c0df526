//! Entry points for the fuzz harness (`crates/fuzz`): each function runs one of the table's
//! decoders over untrusted bytes, the way the reader does, and walks whatever it accepts.
//! Not part of the API (hidden from the docs); the decoders themselves stay `pub(crate)`.
//!
//! Every walk is bounded by `steps_max` cursor moves, so that a decoder bug that loops
//! (a cursor that never advances) shows up as an error the harness reports, not a hang of
//! this function. None of these functions may panic: a panic is the bug the harness looks
//! for.

use super::block::{Block, BlockIter};
use super::comparator::Comparator;
use super::filter::Filter;
use super::footer::{Footer, FOOTER_BYTES};
use super::index::BlockHandle;
use super::properties::decode_metaindex;
use super::trailer;

/// The decoded length a stored block (payload and trailer) declares, if it is compressed
/// and its varint parses: the size [`decode_stored_block`] may allocate for it. `None` for
/// an uncompressed block (whose size is its payload) or an unparsable one.
pub fn declared_decoded_bytes(stored: &[u8]) -> Option<u64> {
    let payload_len = stored.len().checked_sub(trailer::TRAILER_BYTES)?;
    if stored[payload_len] == 0 {
        return None;
    }
    super::coding::get_varint(&stored[..payload_len]).map(|(v, _)| v)
}

/// Verifies and decodes a stored block (payload, type byte, crc32c).
pub fn decode_stored_block(stored: &[u8]) -> Result<Vec<u8>, String> {
    trailer::decode(stored)
}

/// Bytes of a block trailer (type byte and crc32c).
pub const TRAILER_BYTES: usize = trailer::TRAILER_BYTES;

/// The footer's (metaindex, index, filter) handles as (offset, payload size), filter
/// `None` when absent.
pub type FooterHandles = ((u64, u64), (u64, u64), Option<(u64, u64)>);

/// Decodes a footer (the last [`FOOTER_BYTES`] of a table).
pub fn decode_footer(f: &[u8; FOOTER_BYTES]) -> Result<FooterHandles, String> {
    let f = Footer::decode(f).map_err(|e| format!("{e:?}"))?;
    let h = |h: BlockHandle| (h.offset, h.size);
    Ok((h(f.metaindex), h(f.index), f.filter.map(h)))
}

/// Walks a decoded block (data, index or metaindex format) under `cmp`: forward, backward,
/// and a seek to each of `targets`. Returns the number of entries seen going forward.
pub fn walk_block(
    decoded: Vec<u8>,
    cmp: Comparator,
    targets: &[&[u8]],
    steps_max: usize,
) -> Result<usize, String> {
    let block = Block::new(decoded).map_err(|e| format!("{e:?}"))?;
    let mut it = block.iter(cmp);
    let forward = walk(&mut it, steps_max)?;
    it.seek_to_last().map_err(|e| format!("{e:?}"))?;
    let mut steps = 0;
    while it.valid() {
        steps += 1;
        if steps > steps_max {
            return Err(format!("backward walk did not end in {steps_max} steps"));
        }
        let _ = (it.key(), it.value());
        it.prev().map_err(|e| format!("{e:?}"))?;
    }
    for t in targets {
        it.seek(t).map_err(|e| format!("{e:?}"))?;
        if it.valid() && cmp.compare(it.key(), t).is_lt() {
            // Only a block whose keys are out of order can do this (the checksum normally
            // rules that out); it must not panic, and it is not an error of the decoder.
            continue;
        }
    }
    Ok(forward)
}

fn walk(it: &mut BlockIter<'_>, steps_max: usize) -> Result<usize, String> {
    it.seek_to_first().map_err(|e| format!("{e:?}"))?;
    let mut n = 0;
    while it.valid() {
        n += 1;
        if n > steps_max {
            return Err(format!("forward walk did not end in {steps_max} steps"));
        }
        let _ = (it.key(), it.value());
        it.next().map_err(|e| format!("{e:?}"))?;
    }
    Ok(n)
}

/// Walks a decoded index block and decodes every handle in it, checking each against a
/// file of `file_bytes`, as the reader does. Returns the handles that decode and fit, as
/// (offset, payload size), in index order up to where the walk stopped, and why it stopped
/// early (a malformed entry, a bad handle), if it did: a reader reaches every block before
/// that point.
pub fn walk_index_block(
    decoded: Vec<u8>,
    cmp: Comparator,
    file_bytes: u64,
    steps_max: usize,
) -> (Vec<(u64, u64)>, Option<String>) {
    let mut out = Vec::new();
    let block = match Block::new(decoded) {
        Ok(b) => b,
        Err(e) => return (out, Some(format!("{e:?}"))),
    };
    let mut it = block.iter(cmp);
    if let Err(e) = it.seek_to_first() {
        return (out, Some(format!("{e:?}")));
    }
    let mut n = 0;
    while it.valid() {
        n += 1;
        if n > steps_max {
            return (
                out,
                Some(format!("index walk did not end in {steps_max} steps")),
            );
        }
        match BlockHandle::decode_exact(it.value()) {
            Some(h) if h.fits_before(file_bytes) => out.push((h.offset, h.size)),
            Some(_) => return (out, Some("handle outside the file".into())),
            None => return (out, Some("bad handle".into())),
        }
        if let Err(e) = it.next() {
            return (out, Some(format!("{e:?}")));
        }
    }
    (out, None)
}

/// Every block handle a reader walking the index block can reach: the entries a forward
/// walk from the first entry visits, those a backward walk from the last visits, and those
/// a forward walk from a seek to each of `targets` visits (each walk up to its first
/// error; a damaged index can hide entries from one direction but not the other). Handles
/// that do not decode or do not fit in `file_bytes` are left out.
pub fn reachable_index_handles(
    decoded: Vec<u8>,
    cmp: Comparator,
    file_bytes: u64,
    targets: &[&[u8]],
    steps_max: usize,
) -> Vec<(u64, u64)> {
    let Ok(block) = Block::new(decoded) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut note = |it: &BlockIter<'_>| {
        if let Some(h) = BlockHandle::decode_exact(it.value()) {
            if h.fits_before(file_bytes) {
                out.push((h.offset, h.size));
            }
        }
    };
    let mut it = block.iter(cmp);
    let mut starts: Vec<Option<&[u8]>> = vec![None];
    starts.extend(targets.iter().map(|t| Some(*t)));
    for start in starts {
        let r = match start {
            None => it.seek_to_first(),
            Some(t) => it.seek(t),
        };
        let mut steps = 0;
        let mut r = r;
        while r.is_ok() && it.valid() && steps < steps_max {
            note(&it);
            r = it.next();
            steps += 1;
        }
    }
    let mut steps = 0;
    let mut r = it.seek_to_last();
    while r.is_ok() && it.valid() && steps < steps_max {
        note(&it);
        r = it.prev();
        steps += 1;
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Decodes a filter block and probes it with each key; returns how many may be present.
pub fn probe_filter(decoded: Vec<u8>, keys: &[&[u8]]) -> Result<usize, String> {
    let f = Filter::new(decoded)?;
    Ok(keys.iter().filter(|k| f.may_contain(k)).count())
}

/// Decodes a metaindex block into properties.
pub fn decode_properties(decoded: Vec<u8>) -> Result<super::TableProperties, String> {
    decode_metaindex(decoded).map_err(|e| format!("{e:?}"))
}
