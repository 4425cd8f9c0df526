//! Streams in the database (issue 11): the per-stream state the applier keeps, how it
//! assigns stream seqs, how recovery restores it, and the reads of the stream tree.
//!
//! # Stream seqs are assigned at apply, in log order
//! An append op carries no number. The applier, which applies records one at a time in log
//! order (under the apply lock), gives each append of a record at log seq `s` the stream's
//! `last + 1`, inserts the entry (`stream_keys::entry_key(name, n)`) into the active
//! memtable's stream tree at internal seq `s`, and after the record one meta key per
//! stream the record touched (at `s`). Numbers are gapless because only applied records get
//! them, and ordered because apply order is log order — whatever order the writers (threads,
//! worker threads) called in.
//!
//! # Recovery assigns the same numbers
//! A flush writes both trees of a memtable generation with one edit and one flushed seq F,
//! so the meta keys in the tables are exactly the state after record F. Open scans them
//! ([`Inner::load_streams`]) before replaying the records above F, which then assign the
//! numbers they were given before the crash (the records are the same, in the same order).
//! Records at or below F assign nothing: their entries are in the tables.
//!
//! # What readers see
//! `firstSeq`/`lastSeq` come from a published copy that the applier updates after it
//! stored the visible sequence number V, so `lastSeq` never exceeds what a read at V shows.

use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

use super::batch::{check_name, Op};
use super::error::DbError;
use super::iter::{DbIter, IterBatch, RangeOptions};
use super::read::SnapshotPin;
use super::state::Inner;
use super::stream_keys::{self, StreamMeta};

use super::version::{Mem, TreeId};
use super::Db;
use crate::internal_key::SEQ_MAX;

/// A stream's first and last seq (see [`Db::stream_info`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// The first entry still held (1 for a stream never truncated).
    pub first_seq: u64,
    /// The last entry appended (0 for a stream never written).
    pub last_seq: u64,
}

impl Inner {
    /// Inserts the appends of one record applied at log seq `seq` into the stream tree,
    /// assigning their stream seqs, then one meta key per stream the record touched (apply
    /// lock held). Returns the bytes of data appended.
    pub(super) fn insert_appends(&self, mem: &mut Arc<Mem>, seq: u64, ops: &[Op<'_>]) -> u64 {
        let mut touched: Vec<&[u8]> = Vec::new();
        let mut bytes = 0u64;
        for op in ops {
            let Op::Append {
                stream,
                appended_at_ms,
                data,
            } = *op
            else {
                continue;
            };
            let n = self.streams.working().assign(stream, data.len());
            let key = stream_keys::entry_key(stream, n);
            let value = stream_keys::entry_value(appended_at_ms, data);
            self.insert_retry(mem, TreeId::Streams, &key, seq, Some(&value));
            bytes += data.len() as u64;
            if !touched.contains(&stream) {
                touched.push(stream);
            }
        }
        for name in touched {
            let meta = self.streams.working().meta(name);
            let key = stream_keys::meta_key(name);
            self.insert_retry(mem, TreeId::Streams, &key, seq, Some(&meta.encode()));
        }
        bytes
    }

    /// Restores every stream's state from the stream tree's meta keys (at open, before
    /// replay: the tables hold the state after the flushed sequence number).
    pub(super) fn load_streams(&self) -> Result<(), DbError> {
        let sv = self.super_version();
        let opts = RangeOptions {
            lower: Bound::Included(vec![stream_keys::KIND_META]),
            upper: Bound::Excluded(vec![stream_keys::KIND_META + 1]),
            ..RangeOptions::default()
        };
        let mut it = DbIter::new_in(TreeId::Streams, sv, SEQ_MAX, opts, None);
        let mut w = self.streams.working();
        loop {
            let b = it.next_batch(1024, 1 << 20)?;
            let mut at = 0;
            for pair in b.lens.chunks_exact(2) {
                let (k, v) = (pair[0] as usize, pair[1] as usize);
                let (key, value) = (&b.data[at..at + k], &b.data[at + k..at + k + v]);
                at += k + v;
                let name = stream_keys::decode_meta_key(key);
                let meta = StreamMeta::decode(value);
                let (Some(name), Some(meta)) = (name, meta) else {
                    return Err(DbError::Corruption {
                        file: self.dir.clone(),
                        offset: 0,
                        reason: format!(
                            "a stream's meta record is malformed (key {:?}, {} bytes of value)",
                            String::from_utf8_lossy(key),
                            value.len()
                        ),
                    });
                };
                w.by_name.insert(name.into(), meta);
                w.dirty.push(name.into());
            }
            if b.done {
                break;
            }
        }
        drop(w);
        self.streams.publish();
        Ok(())
    }
}

impl Db {
    /// The first and last seq of stream `name` as of the visible sequence number (a
    /// never-written stream: first 1, last 0). An invalid name is an error naming `stream`.
    pub fn stream_info(&self, name: &[u8]) -> Result<StreamInfo, DbError> {
        check_name("stream", name).map_err(DbError::InvalidArgument)?;
        let m = self.inner.streams.published(name);
        Ok(StreamInfo {
            first_seq: m.first,
            last_seq: m.last,
        })
    }

    /// An iterator over the entries of stream `name` from seq `from` on (at most `limit`),
    /// at `snapshot` (or at a new implicit one). An invalid name is an error naming
    /// `stream`.
    pub fn stream_iter(
        &self,
        name: &[u8],
        from: u64,
        limit: Option<u64>,
        snapshot: Option<&SnapshotPin>,
    ) -> Result<StreamIter, DbError> {
        check_name("stream", name).map_err(DbError::InvalidArgument)?;
        let (seq, pin) = match snapshot {
            Some(s) => (s.seq, None),
            None => {
                let p = self.snapshot();
                (p.seq, Some(p))
            }
        };
        let opts = RangeOptions {
            lower: Bound::Included(stream_keys::entry_key(name, from)),
            upper: Bound::Included(stream_keys::entry_key(name, u64::MAX)),
            limit,
            ..RangeOptions::default()
        };
        let sv = self.inner.super_version();
        Ok(StreamIter {
            it: DbIter::new_in(TreeId::Streams, sv, seq, opts, pin),
            raw: IterBatch::default(),
        })
    }
}

/// Entries of one stream, in seq order (see [`Db::stream_iter`]).
pub struct StreamIter {
    it: DbIter,
    /// The tree's batch, reused.
    raw: IterBatch,
}

/// A batch of stream entries: per entry its seq, its time and its data's length, the data
/// back to back.
#[derive(Debug, Default, Clone)]
pub struct StreamBatch {
    /// The entries' stream seqs, ascending.
    pub seqs: Vec<u64>,
    /// When each entry was appended (the writer's clock, ms since the epoch).
    pub appended_at_ms: Vec<u64>,
    /// Each entry's data length.
    pub lens: Vec<u32>,
    /// The entries' data, concatenated.
    pub data: Vec<u8>,
    /// Whether the stream has no entry after this batch (at the iterator's snapshot).
    pub done: bool,
}

impl StreamIter {
    /// Up to `max_entries` entries (and about `max_bytes`), at least one if any remains.
    pub fn next_batch(
        &mut self,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<StreamBatch, DbError> {
        self.it
            .next_batch_into(max_entries, max_bytes, &mut self.raw)?;
        let mut out = StreamBatch {
            done: self.raw.done,
            ..StreamBatch::default()
        };
        let mut at = 0;
        for pair in self.raw.lens.chunks_exact(2) {
            let (k, v) = (pair[0] as usize, pair[1] as usize);
            let (key, value) = (
                &self.raw.data[at..at + k],
                &self.raw.data[at + k..at + k + v],
            );
            at += k + v;
            let entry =
                stream_keys::decode_entry_key(key).zip(stream_keys::decode_entry_value(value));
            let Some(((_, seq), (appended_at, data))) = entry else {
                return Err(DbError::Corruption {
                    file: PathBuf::new(),
                    offset: 0,
                    reason: format!(
                        "a stream entry is malformed (key of {k} bytes, value of {v} bytes)"
                    ),
                });
            };
            out.seqs.push(seq);
            out.appended_at_ms.push(appended_at);
            out.lens.push(data.len() as u32);
            out.data.extend_from_slice(data);
        }
        Ok(out)
    }
}
