//! Table properties, stored in the metaindex block.
//!
//! The metaindex block has the data-block format ([`super::block`]), keys compared
//! bytewise, and holds named entries. Format version 1 stores the properties inline:
//!
//! ```text
//! name               value
//! comparator         the comparator's name (Comparator::name)
//! data.blocks        varint: number of data blocks
//! data.bytes         varint: bytes of all data blocks as stored (trailers included)
//! entries            varint: number of entries
//! key.largest        the largest key (empty in an empty table)
//! key.smallest       the smallest key
//! raw.key.bytes      varint: sum of key lengths before prefix compression
//! raw.value.bytes    varint: sum of value lengths before compression
//! ```
//!
//! Readers ignore names they do not know, so later versions can add meta blocks (for
//! example range tombstones) as `name → block handle` entries without breaking old readers
//! of compatible files; a missing known name is corruption.

use super::block::{Block, BlockBuilder};
use super::coding::get_varint;
use super::comparator::Comparator;

/// What a table holds, as returned by [`super::TableBuilder::finish`] and
/// [`super::Table::properties`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableProperties {
    /// Total bytes of the file.
    pub file_bytes: u64,
    /// Number of entries.
    pub entries: u64,
    /// Number of data blocks.
    pub data_blocks: u64,
    /// Bytes of all data blocks as stored (compressed, trailers included).
    pub data_bytes: u64,
    /// Bytes of the index block as stored.
    pub index_bytes: u64,
    /// Bytes of the filter block as stored (0 without a filter).
    pub filter_bytes: u64,
    /// Sum of the key lengths added.
    pub raw_key_bytes: u64,
    /// Sum of the value lengths added.
    pub raw_value_bytes: u64,
    /// The smallest key (empty in an empty table).
    pub smallest_key: Vec<u8>,
    /// The largest key (empty in an empty table).
    pub largest_key: Vec<u8>,
    /// The key order of the table.
    pub comparator: Comparator,
}

const COMPARATOR: &[u8] = b"comparator";
const DATA_BLOCKS: &[u8] = b"data.blocks";
const DATA_BYTES: &[u8] = b"data.bytes";
const ENTRIES: &[u8] = b"entries";
const KEY_LARGEST: &[u8] = b"key.largest";
const KEY_SMALLEST: &[u8] = b"key.smallest";
const RAW_KEY_BYTES: &[u8] = b"raw.key.bytes";
const RAW_VALUE_BYTES: &[u8] = b"raw.value.bytes";

fn varint(v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    super::coding::put_varint(&mut b, v);
    b
}

/// Encodes the metaindex block (undecorated) for `p`.
pub(crate) fn encode_metaindex(p: &TableProperties) -> Vec<u8> {
    let entries: [(&[u8], Vec<u8>); 8] = [
        (COMPARATOR, p.comparator.name().as_bytes().to_vec()),
        (DATA_BLOCKS, varint(p.data_blocks)),
        (DATA_BYTES, varint(p.data_bytes)),
        (ENTRIES, varint(p.entries)),
        (KEY_LARGEST, p.largest_key.clone()),
        (KEY_SMALLEST, p.smallest_key.clone()),
        (RAW_KEY_BYTES, varint(p.raw_key_bytes)),
        (RAW_VALUE_BYTES, varint(p.raw_value_bytes)),
    ];
    debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "names sorted");
    let mut b = BlockBuilder::new(1);
    for (k, v) in &entries {
        b.add(k, v);
    }
    b.finish().to_vec()
}

/// Why a metaindex block cannot be read: a reason for a corruption error, or the name of
/// an unknown comparator.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MetaError {
    Malformed(String),
    UnknownComparator(String),
}

/// Decodes the metaindex block into properties. The sizes that the footer knows
/// (`file_bytes`, `index_bytes`, `filter_bytes`) are left at 0 for the caller to fill.
pub(crate) fn decode_metaindex(block: Vec<u8>) -> Result<TableProperties, MetaError> {
    let malformed = |what: &str| MetaError::Malformed(format!("metaindex block: {what}"));
    let block = Block::new(block).map_err(|e| malformed(e.reason))?;
    let mut it = block.iter(Comparator::Bytewise);
    it.seek_to_first().map_err(|e| malformed(e.reason))?;
    let mut p = TableProperties::default();
    let mut seen = 0u32;
    let mut comparator: Option<Vec<u8>> = None;
    while it.valid() {
        let (k, v) = (it.key(), it.value());
        let num = || match get_varint(v) {
            Some((n, len)) if len == v.len() => Ok(n),
            _ => Err(malformed("bad number")),
        };
        let bit = match k {
            COMPARATOR => {
                comparator = Some(v.to_vec());
                1
            }
            DATA_BLOCKS => {
                p.data_blocks = num()?;
                2
            }
            DATA_BYTES => {
                p.data_bytes = num()?;
                4
            }
            ENTRIES => {
                p.entries = num()?;
                8
            }
            KEY_LARGEST => {
                p.largest_key = v.to_vec();
                16
            }
            KEY_SMALLEST => {
                p.smallest_key = v.to_vec();
                32
            }
            RAW_KEY_BYTES => {
                p.raw_key_bytes = num()?;
                64
            }
            RAW_VALUE_BYTES => {
                p.raw_value_bytes = num()?;
                128
            }
            _ => 0,
        };
        seen |= bit;
        it.next().map_err(|e| malformed(e.reason))?;
    }
    if seen != 255 {
        return Err(malformed("a property is missing"));
    }
    let name = comparator.unwrap_or_default();
    p.comparator = Comparator::from_name(&name)
        .ok_or_else(|| MetaError::UnknownComparator(String::from_utf8_lossy(&name).into_owned()))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = TableProperties {
            entries: 1234,
            data_blocks: 17,
            data_bytes: 70_000,
            raw_key_bytes: 20_000,
            raw_value_bytes: 1 << 40,
            smallest_key: b"aaa".to_vec(),
            largest_key: b"zzz".to_vec(),
            comparator: Comparator::InternalKey,
            ..TableProperties::default()
        };
        assert_eq!(decode_metaindex(encode_metaindex(&p)), Ok(p));
    }

    #[test]
    fn unknown_names_are_ignored_and_missing_ones_are_errors() {
        let p = TableProperties::default();
        let good = encode_metaindex(&p);
        // Rebuild with an extra name in sorted position, and without `entries`.
        let block = Block::new(good).expect("block");
        let mut it = block.iter(Comparator::Bytewise);
        it.seek_to_first().expect("first");
        let mut with_extra = BlockBuilder::new(1);
        let mut without_entries = BlockBuilder::new(1);
        while it.valid() {
            if it.key() == b"key.smallest" {
                with_extra.add(b"range.tombstones", b"\x01\x02");
            }
            with_extra.add(it.key(), it.value());
            if it.key() != ENTRIES {
                without_entries.add(it.key(), it.value());
            }
            it.next().expect("next");
        }
        assert_eq!(decode_metaindex(with_extra.finish().to_vec()), Ok(p));
        assert!(matches!(
            decode_metaindex(without_entries.finish().to_vec()),
            Err(MetaError::Malformed(_))
        ));
    }
}
