//! The table targets (`uringdb-lsm`'s `table/`): each decoder inside a table file, through
//! `uringdb_lsm::table::fuzzing`, and a whole table file through `Table::open`.

use uringdb_lsm::table::fuzzing as tf;
use uringdb_lsm::table::{Comparator, Table};

use super::env::Env;
use super::fixtures::BlockKind;
use super::limits::{FIXED_BYTES_DEFAULT, STEPS_MAX};
use super::table_file::{
    declared_table, footer_array, reseal_footer, reseal_stored_block, reseal_table,
    tf_footer_bytes, TABLE_SEEKS,
};
use super::target::{assert_no_runaway, nothing_declared, Target};

/// The table targets, in `--list` order.
pub(super) fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "table_block",
            about: "a decoded data block: restart array, entries, forward/backward/seek \
                    under both comparators",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.blocks(BlockKind::Data),
            run: |_, input| {
                let targets: [&[u8]; 4] = [b"", b"key", &[0xff; 9], b"m\0\0\0\0\0\0\0\x01"];
                let a = tf::walk_block(input.to_vec(), Comparator::Bytewise, &targets, STEPS_MAX);
                let b =
                    tf::walk_block(input.to_vec(), Comparator::InternalKey, &targets, STEPS_MAX);
                assert_no_runaway(&a);
                assert_no_runaway(&b);
                a.is_ok() || b.is_ok()
            },
            fixup: None,
        },
        Target {
            name: "table_index",
            about: "a decoded index block: entries and every block handle in them",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.blocks(BlockKind::Index),
            run: |_, input| {
                let (_, stopped) = tf::walk_index_block(
                    input.to_vec(),
                    Comparator::InternalKey,
                    1 << 40,
                    STEPS_MAX,
                );
                let r = stopped.map_or(Ok(()), Err);
                assert_no_runaway(&r);
                r.is_ok()
            },
            fixup: None,
        },
        Target {
            name: "table_filter",
            about: "a decoded bloom filter block: validation and probes",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.blocks(BlockKind::Filter),
            run: |_, input| {
                let keys: [&[u8]; 4] = [b"", b"a", b"key00042", &[0xff; 40]];
                tf::probe_filter(input.to_vec(), &keys).is_ok()
            },
            fixup: None,
        },
        Target {
            name: "table_footer",
            about: "a table footer (64 bytes, zero-padded or cut): magic, checksum, version",
            max_len: 128,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| {
                f.tables
                    .iter()
                    .map(|t| t[t.len() - tf_footer_bytes()..].to_vec())
                    .collect()
            },
            run: |_, input| tf::decode_footer(&footer_array(input)).is_ok(),
            fixup: Some(|b| {
                b.resize(tf_footer_bytes(), 0);
                reseal_footer(b);
            }),
        },
        Target {
            name: "table_trailer",
            about: "a stored block (payload, compression type, crc32c): checksum and \
                    none/lz4/zstd decoding",
            max_len: 64 << 10,
            declared: |input| tf::declared_decoded_bytes(input).unwrap_or(0),
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.stored_blocks(),
            run: |_, input| match tf::decode_stored_block(input) {
                Ok(out) => {
                    let payload = &input[..input.len() - tf::TRAILER_BYTES];
                    if input[payload.len()] == 0 {
                        assert_eq!(out, payload, "an uncompressed block decodes to its payload");
                    }
                    true
                }
                Err(_) => false,
            },
            fixup: Some(|b| reseal_stored_block(b)),
        },
        Target {
            name: "table_properties",
            about: "a decoded metaindex block: table properties",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.blocks(BlockKind::Metaindex),
            run: |_, input| tf::decode_properties(input.to_vec()).is_ok(),
            fixup: None,
        },
        Target {
            name: "table",
            about: "a whole table file: Table::open under both comparators, walk, seek, get, \
                    layout",
            max_len: 256 << 10,
            declared: declared_table,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.tables.clone(),
            run: run_table,
            fixup: Some(|b| reseal_table(b)),
        },
    ]
}

fn run_table(_: &Env, input: &[u8]) -> bool {
    let mut accepted = false;
    for cmp in [Comparator::Bytewise, Comparator::InternalKey] {
        let Ok(t) = Table::open(input.to_vec(), input.len() as u64, "fuzz.sst", cmp) else {
            continue;
        };
        accepted = true;
        let _ = t.layout();
        let props = t.properties().clone();
        let mut it = t.iter();
        let mut steps = 0;
        let mut r = it.seek_to_first();
        while r.is_ok() && it.valid() {
            steps += 1;
            assert!(steps <= STEPS_MAX, "forward table walk does not end");
            let _ = (it.key(), it.value());
            r = it.next();
        }
        steps = 0;
        let mut r = it.seek_to_last();
        while r.is_ok() && it.valid() {
            steps += 1;
            assert!(steps <= STEPS_MAX, "backward table walk does not end");
            r = it.prev();
        }
        let keys = [&props.smallest_key[..], &props.largest_key[..]];
        for key in TABLE_SEEKS.iter().chain(&keys) {
            let _ = it.seek(key);
            let _ = t.get(key);
            let _ = t.may_contain(key);
        }
    }
    accepted
}
