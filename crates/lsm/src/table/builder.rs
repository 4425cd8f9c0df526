//! Writing a table: [`TableBuilder`] takes entries in strictly ascending key order and
//! streams data blocks to any [`std::io::Write`]; [`TableBuilder::finish`] appends the
//! filter, index and metaindex blocks and the footer (layout: [`super`]).
//!
//! Memory is bounded: one data block being filled, the index block (one entry per data
//! block), and 8 bytes per distinct filter key for the bloom filter (bounded by
//! [`TABLE_ENTRIES_MAX`]).
//!
//! Failure: after an I/O error every later call returns that error; the partial output is
//! garbage and must be deleted by the caller. The builder never syncs: making the file
//! durable (and renaming it into place) is the caller's job.

use std::cmp::Ordering;
use std::io::{self, Write};

use super::block::BlockBuilder;
use super::comparator::Comparator;
use super::error::TableError;
use super::filter::FilterBuilder;
use super::footer::{Footer, FOOTER_BYTES};
use super::index::BlockHandle;
use super::limits::{
    BLOCK_BYTES_DEFAULT, BLOCK_BYTES_MIN, BLOCK_BYTES_TARGET_MAX, BLOOM_BITS_PER_KEY_DEFAULT,
    BLOOM_BITS_PER_KEY_MAX, KEY_BYTES_MAX, RESTART_INTERVAL_DEFAULT, RESTART_INTERVAL_MAX,
    TABLE_ENTRIES_MAX, VALUE_BYTES_MAX, ZSTD_LEVEL_MAX, ZSTD_LEVEL_MIN,
};
use super::properties::{encode_metaindex, TableProperties};
use super::trailer::{BlockEncoder, Compression};

/// How a table is built. The reader needs none of these: everything it needs is recorded
/// in the file (except the comparator, which it checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// Target size of a data block before compression, in bytes: a block is closed once
    /// it reaches this size (so one large entry makes one large block).
    pub block_bytes: usize,
    /// Entries between restart points in data blocks (a seek scans at most this many).
    pub restart_interval: usize,
    /// Compression of data, index and metaindex blocks (the filter is never compressed).
    pub compression: Compression,
    /// Bloom filter bits per key; 0 builds no filter.
    pub bloom_bits_per_key: u32,
    /// Key order; recorded in the table and checked when it is opened.
    pub comparator: Comparator,
}

impl Default for TableOptions {
    fn default() -> TableOptions {
        TableOptions {
            block_bytes: BLOCK_BYTES_DEFAULT,
            restart_interval: RESTART_INTERVAL_DEFAULT,
            compression: Compression::default(),
            bloom_bits_per_key: BLOOM_BITS_PER_KEY_DEFAULT,
            comparator: Comparator::default(),
        }
    }
}

impl TableOptions {
    /// Checks every option against its bounds; the error names the option.
    pub fn validate(&self) -> Result<(), TableError> {
        let invalid = |field, message: String| Err(TableError::InvalidOption { field, message });
        if !(BLOCK_BYTES_MIN..=BLOCK_BYTES_TARGET_MAX).contains(&self.block_bytes) {
            return invalid(
                "blockBytes",
                format!(
                    "{BLOCK_BYTES_MIN}..={BLOCK_BYTES_TARGET_MAX}, got {}",
                    self.block_bytes
                ),
            );
        }
        if !(1..=RESTART_INTERVAL_MAX).contains(&self.restart_interval) {
            return invalid(
                "restartInterval",
                format!("1..={RESTART_INTERVAL_MAX}, got {}", self.restart_interval),
            );
        }
        if self.bloom_bits_per_key > BLOOM_BITS_PER_KEY_MAX {
            return invalid(
                "bloomBitsPerKey",
                format!(
                    "0..={BLOOM_BITS_PER_KEY_MAX}, got {}",
                    self.bloom_bits_per_key
                ),
            );
        }
        if let Compression::Zstd { level } = self.compression {
            if !(ZSTD_LEVEL_MIN..=ZSTD_LEVEL_MAX).contains(&level) {
                return invalid(
                    "compression",
                    format!("zstd level {ZSTD_LEVEL_MIN}..={ZSTD_LEVEL_MAX}, got {level}"),
                );
            }
        }
        Ok(())
    }
}

/// Writes one table. See the module documentation for its contract.
pub struct TableBuilder<W: Write> {
    out: W,
    opts: TableOptions,
    /// Bytes written so far (the offset of the next block).
    offset: u64,
    data: BlockBuilder,
    index: BlockBuilder,
    filter: Option<FilterBuilder>,
    encoder: BlockEncoder,
    /// Reused buffer for a block's stored form.
    stored: Vec<u8>,
    /// The last data block written, waiting for the next key to pick its separator.
    pending: Option<BlockHandle>,
    props: TableProperties,
    failed: Option<TableError>,
}

impl<W: Write> TableBuilder<W> {
    /// A builder writing to `out` (which should be positioned at its start: offsets in the
    /// table are counted from the first byte written).
    pub fn new(out: W, opts: TableOptions) -> Result<TableBuilder<W>, TableError> {
        opts.validate()?;
        let encoder = BlockEncoder::new(opts.compression)
            .map_err(|e| TableError::io("creating the block compressor", e))?;
        Ok(TableBuilder {
            out,
            opts,
            offset: 0,
            data: BlockBuilder::new(opts.restart_interval),
            index: BlockBuilder::new(1),
            filter: (opts.bloom_bits_per_key > 0)
                .then(|| FilterBuilder::new(opts.bloom_bits_per_key)),
            encoder,
            stored: Vec::new(),
            pending: None,
            props: TableProperties {
                comparator: opts.comparator,
                ..TableProperties::default()
            },
            failed: None,
        })
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.props.entries
    }

    /// Bytes the finished table would take if finished now, roughly (data written plus
    /// the block being filled): lets the caller cut tables at a target size.
    pub fn estimated_bytes(&self) -> u64 {
        self.offset + self.data.estimated_bytes() as u64
    }

    /// Adds an entry. `key` must sort strictly after the previous key in the comparator's
    /// order; a key out of order, a key the comparator cannot order, or a key or value
    /// beyond the limits is refused with an error and leaves the builder usable.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<(), TableError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let entry = self.props.entries;
        if key.len() > KEY_BYTES_MAX {
            return Err(too_large("key", key.len() as u64, KEY_BYTES_MAX as u64));
        }
        if value.len() > VALUE_BYTES_MAX {
            return Err(too_large(
                "value",
                value.len() as u64,
                VALUE_BYTES_MAX as u64,
            ));
        }
        if entry >= TABLE_ENTRIES_MAX {
            return Err(too_large("entries", entry + 1, TABLE_ENTRIES_MAX));
        }
        let cmp = self.opts.comparator;
        cmp.check_key(key)
            .map_err(|reason| TableError::InvalidKey { entry, reason })?;
        if entry > 0 && cmp.compare(key, &self.props.largest_key) != Ordering::Greater {
            return Err(TableError::OutOfOrder { entry });
        }

        if let Some(h) = self.pending.take() {
            let sep = cmp.separator(&self.props.largest_key, key);
            let mut v = Vec::new();
            h.encode_to(&mut v);
            self.index.add(&sep, &v);
        }
        if let Some(f) = &mut self.filter {
            f.add(cmp.filter_key(key));
        }
        self.data.add(key, value);
        if entry == 0 {
            self.props.smallest_key = key.to_vec();
        }
        self.props.largest_key.clear();
        self.props.largest_key.extend_from_slice(key);
        self.props.entries += 1;
        self.props.raw_key_bytes += key.len() as u64;
        self.props.raw_value_bytes += value.len() as u64;

        if self.data.estimated_bytes() >= self.opts.block_bytes {
            self.flush_data()?;
        }
        Ok(())
    }

    /// Writes the data block being filled, if it has entries.
    fn flush_data(&mut self) -> Result<(), TableError> {
        if self.data.entries() == 0 {
            return Ok(());
        }
        debug_assert!(self.pending.is_none());
        let h = write_block(
            &mut self.out,
            &mut self.offset,
            &mut self.encoder,
            &mut self.stored,
            self.data.finish(),
            true,
        );
        self.data.reset();
        let h = self.latch(h)?;
        self.props.data_blocks += 1;
        self.props.data_bytes += h.stored_bytes();
        self.pending = Some(h);
        Ok(())
    }

    fn latch<T>(&mut self, r: Result<T, TableError>) -> Result<T, TableError> {
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Writes the rest of the table (last data block, filter, index, metaindex, footer),
    /// flushes `out`, and returns the table's properties. Does not sync.
    pub fn finish(mut self) -> Result<TableProperties, TableError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.flush_data()?;
        if let Some(h) = self.pending.take() {
            let sep = self.opts.comparator.successor(&self.props.largest_key);
            let mut v = Vec::new();
            h.encode_to(&mut v);
            self.index.add(&sep, &v);
        }
        let filter = match &self.filter {
            Some(f) => {
                let block = f.finish();
                let h = write_block(
                    &mut self.out,
                    &mut self.offset,
                    &mut self.encoder,
                    &mut self.stored,
                    &block,
                    false,
                )?;
                self.props.filter_bytes = h.stored_bytes();
                Some(h)
            }
            None => None,
        };
        let index = write_block(
            &mut self.out,
            &mut self.offset,
            &mut self.encoder,
            &mut self.stored,
            self.index.finish(),
            true,
        )?;
        self.props.index_bytes = index.stored_bytes();
        let meta = encode_metaindex(&self.props);
        let metaindex = write_block(
            &mut self.out,
            &mut self.offset,
            &mut self.encoder,
            &mut self.stored,
            &meta,
            true,
        )?;
        let footer = Footer {
            metaindex,
            index,
            filter,
        };
        self.out
            .write_all(&footer.encode())
            .map_err(|e| TableError::io("writing the table footer", e))?;
        self.offset += FOOTER_BYTES as u64;
        self.out
            .flush()
            .map_err(|e| TableError::io("flushing the table", e))?;
        self.props.file_bytes = self.offset;
        Ok(self.props)
    }
}

fn too_large(what: &'static str, size: u64, limit: u64) -> TableError {
    TableError::TooLarge { what, size, limit }
}

/// Encodes `raw` with its trailer, writes it at `*offset`, advances the offset.
fn write_block<W: Write>(
    out: &mut W,
    offset: &mut u64,
    encoder: &mut BlockEncoder,
    stored: &mut Vec<u8>,
    raw: &[u8],
    compress: bool,
) -> Result<BlockHandle, TableError> {
    let size = encoder
        .encode(raw, compress, stored)
        .map_err(|e| TableError::io("compressing a block", e))?;
    out.write_all(stored)
        .map_err(|e: io::Error| TableError::io("writing a table block", e))?;
    let h = BlockHandle {
        offset: *offset,
        size: size as u64,
    };
    *offset += stored.len() as u64;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated_with_their_names() {
        let bad = [
            (
                TableOptions {
                    block_bytes: 1,
                    ..Default::default()
                },
                "blockBytes",
            ),
            (
                TableOptions {
                    restart_interval: 0,
                    ..Default::default()
                },
                "restartInterval",
            ),
            (
                TableOptions {
                    bloom_bits_per_key: 33,
                    ..Default::default()
                },
                "bloomBitsPerKey",
            ),
            (
                TableOptions {
                    compression: Compression::Zstd { level: 0 },
                    ..Default::default()
                },
                "compression",
            ),
        ];
        for (opts, name) in bad {
            match TableBuilder::new(Vec::new(), opts) {
                Err(TableError::InvalidOption { field, .. }) => assert_eq!(field, name),
                Err(e) => panic!("{name}: {e}"),
                Ok(_) => panic!("{name}: accepted"),
            }
        }
        assert!(TableOptions::default().validate().is_ok());
    }

    #[test]
    fn out_of_order_and_duplicate_keys_are_refused_and_the_builder_stays_usable() {
        let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).expect("builder");
        b.add(b"b", b"1").expect("first");
        assert!(matches!(
            b.add(b"a", b"x"),
            Err(TableError::OutOfOrder { entry: 1 })
        ));
        assert!(matches!(
            b.add(b"b", b"x"),
            Err(TableError::OutOfOrder { entry: 1 })
        ));
        b.add(b"c", b"2").expect("in order");
        let p = b.finish().expect("finish");
        assert_eq!(p.entries, 2);
        assert_eq!(
            (p.smallest_key.as_slice(), p.largest_key.as_slice()),
            (&b"b"[..], &b"c"[..])
        );
    }

    #[test]
    fn internal_key_tables_refuse_keys_without_trailers() {
        let opts = TableOptions {
            comparator: Comparator::InternalKey,
            ..Default::default()
        };
        let mut b = TableBuilder::new(Vec::new(), opts).expect("builder");
        assert!(matches!(
            b.add(b"short", b""),
            Err(TableError::InvalidKey { entry: 0, .. })
        ));
    }

    #[test]
    fn oversized_keys_and_values_are_refused() {
        let mut b = TableBuilder::new(Vec::new(), TableOptions::default()).expect("builder");
        let big = vec![0u8; KEY_BYTES_MAX + 1];
        assert!(matches!(
            b.add(&big, b""),
            Err(TableError::TooLarge { what: "key", .. })
        ));
    }

    struct FailingWriter {
        budget: usize,
    }

    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.budget {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.budget -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_latches_the_builder() {
        let opts = TableOptions {
            block_bytes: 256,
            compression: Compression::None,
            ..Default::default()
        };
        let mut b = TableBuilder::new(FailingWriter { budget: 1000 }, opts).expect("builder");
        let mut first_err = None;
        for i in 0..1000u32 {
            if let Err(e) = b.add(format!("{i:08}").as_bytes(), &[7u8; 50]) {
                first_err = Some(e);
                break;
            }
        }
        let Some(TableError::Io { source, .. }) = first_err else {
            panic!("expected an I/O error")
        };
        assert_eq!(source.raw_os_error(), Some(28));
        assert!(matches!(b.add(b"zzzz", b""), Err(TableError::Io { .. })));
        assert!(matches!(b.finish(), Err(TableError::Io { .. })));
    }
}
