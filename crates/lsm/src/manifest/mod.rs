//! The MANIFEST and CURRENT files: the durable record of which tables make up the database,
//! per level, and of the counters that must survive a restart (next file number, flushed
//! and last sequence numbers). This module is the one home of their format; each concept has
//! its own file:
//!
//! - `format.rs`: the manifest header and the record framing (magic, checksums, limits);
//! - `edit.rs`: [`VersionEdit`], the payload of one record, and [`FileMeta`];
//! - `state.rs`: [`ManifestState`], what replaying the edits gives, and the rules an edit
//!   must obey to apply;
//! - `current.rs`: the `CURRENT` pointer and its atomic replacement;
//! - `writer.rs`: [`ManifestWriter`] (create a manifest, append edits);
//! - `recover.rs`: [`recover`] (read CURRENT, replay the manifest it names);
//! - `error.rs`: [`ManifestError`].
//!
//! All fixed-width integers are little-endian; varints are LEB128 (7 bits per byte, least
//! significant group first, high bit set on every byte but the last).
//!
//! # Files in the database directory
//!
//! - `CURRENT`: the name of the live manifest followed by one newline, e.g.
//!   `MANIFEST-000007\n` (nothing else; at most 64 bytes).
//! - `MANIFEST-NNNNNN` ([`manifest_file_name`]): a header, then records. The first record is
//!   a snapshot of the whole state ([`ManifestState::snapshot_edit`]); every later record is
//!   one change.
//! - `CURRENT.<n>.tmp`: a CURRENT being replaced; recovery ignores it, the next
//!   [`ManifestWriter::create`] removes it.
//! - `NNNNNN.sst` ([`table_file_name`]): tables. Tables and manifests draw their numbers from
//!   the one counter [`ManifestState::next_file_number`].
//!
//! ## Manifest header (32 bytes)
//!
//! ```text
//! offset  size  field
//!      0     8  magic "URDBMAN1"
//!      8     4  format version (1, or 2: may hold the stream tree's tags 8–10)
//!     12     4  flags (0)
//!     16     8  manifest number (matches the file name)
//!     24     4  crc32c of bytes 0..24
//!     28     4  reserved (0)
//!     32     .  records, back to back, up to the end of the file
//! ```
//!
//! ## Record
//!
//! ```text
//! offset  size  field
//!      0     4  payload length n (at most 64 MiB)
//!      4     4  crc32c(bytes 0..4 ++ payload)
//!      8     n  payload: one encoded VersionEdit
//! ```
//!
//! The checksum covers the length, so a damaged length is detected like damaged data. Eight
//! zero bytes are never a valid record (the crc32c of four zero bytes is not zero), so a
//! zero-filled tail is recognised as "nothing here".
//!
//! ## Edit payload
//!
//! A sequence of fields, each a varint tag followed by its value; `bytes` is a varint length
//! then that many bytes.
//!
//! ```text
//! tag  field             value                                              occurs
//!   1  comparator        bytes (UTF-8)                                      at most once
//!   2  flushed_seq       varint                                             at most once
//!   3  next_file_number  varint                                             at most once
//!   4  last_seq          varint                                             at most once
//!   5  deleted file      varint level, varint number                        repeated
//!   6  added file        varint level, varint number, varint file_bytes,    repeated
//!                        bytes smallest, bytes largest, varint entries,
//!                        varint smallest_seq, varint largest_seq
//!   7  compact pointer   varint level, bytes key (empty: none)              repeated
//!   8  added file in tree     varint tree (1), then tag 6's fields          repeated
//!   9  deleted file in tree   varint tree (1), then tag 5's fields          repeated
//!  10  compact pointer in tree varint tree (1), then tag 7's fields         repeated
//! ```
//!
//! Tags 5–7 are the key-value tree's (tree 0); tags 8–10 (version 2, issue 11) the stream
//! tree's (tree 1), the only tree they may name: any other tree id is corruption. A
//! manifest holds tags 8–10 only at version 2, and is written at version 2 exactly when it
//! may hold them: its snapshot has a stream-tree table, or it was started (as a fresh
//! manifest) for an edit that adds one. So a database that never stored a stream entry
//! keeps writing version 1, which a build before streams reads; one that did is refused by
//! such a build as "unsupported format version 2", never misread.
//!
//! Fields are written in tag order (repeated ones in their list order). An unknown tag is
//! corruption, not something to skip: a reader that ignored a field it does not understand
//! would rebuild the wrong set of tables. New fields come with a new format version.
//!
//! # Writing ([`ManifestWriter`])
//!
//! `create` writes `MANIFEST-N` (header + snapshot record) and fdatasyncs it, writes
//! `CURRENT.N.tmp` and fdatasyncs it, fsyncs the directory (both new entries are durable),
//! renames the temporary file over `CURRENT`, fsyncs the directory again, and only then
//! removes the other manifests. A crash at any point leaves `CURRENT` naming either the old
//! manifest (complete and synced) or the new one (complete and synced). `append` writes one
//! record and fdatasyncs before returning `Ok`; after a failed write or sync the writer stays
//! failed (the bytes on disk are unknown): the caller continues in a fresh manifest
//! (`create`) or reopens.
//!
//! # Recovery ([`recover`])
//!
//! `recover` reads `CURRENT`, then replays the manifest it names from a fresh
//! [`ManifestState`]. It never writes: a torn tail is skipped in memory and the caller's next
//! `create` supersedes the file. Rules, in order:
//!
//! - no `CURRENT` and no manifest: a new database (`Ok(None)`). No `CURRENT` but a manifest
//!   that records tables or flushed data: [`ManifestError::Corruption`] naming `CURRENT`.
//!   (Manifests that record neither are what a crash during the very first `create` leaves;
//!   treating the directory as new loses nothing, so they are ignored.)
//! - `CURRENT` that is not exactly `MANIFEST-<number>\n`, or names a missing file:
//!   corruption naming `CURRENT` and the offset of the first bad byte.
//! - a bad header (short, magic, checksum, version, flags, number, reserved): corruption at
//!   the offset of the bad field.
//! - a record that is intact (length in range, inside the file, checksum good) but does not
//!   decode or does not apply (see [`ManifestState::apply`]): corruption at the record.
//! - a record that is not intact: if an intact record starts anywhere after it, that is
//!   damage followed by acknowledged data — corruption at the damaged record. Otherwise it is
//!   a torn tail (a record whose `append` never returned, as each append syncs before it
//!   returns; or zeros): cut and counted in [`Recovered::torn_tail_bytes`]. The snapshot
//!   record (the first) is never cut: `create` synced it before `CURRENT` named the file.
//! - the replayed state must use the comparator the caller expects, and its next file
//!   number must exceed the manifest's own number.
//!
//! Limitation: the search for an intact record after damage is by content, so a torn final
//! record whose payload happens to contain the bytes of a whole valid record (e.g. a key
//! crafted to look like one) is reported as corruption rather than cut.

mod current;
mod edit;
mod error;
mod format;
mod names;
mod recover;
mod state;
mod writer;

pub use current::CURRENT_FILE_NAME;
pub use edit::{FileMeta, TreeEdit, VersionEdit};
pub use error::ManifestError;
pub use format::{
    MANIFEST_HEADER_BYTES, MANIFEST_MAGIC, MANIFEST_VERSION, MANIFEST_VERSION_MIN,
    RECORD_HEADER_BYTES,
};
pub use names::{manifest_file_name, table_file_name};
pub use recover::{recover, Recovered};
pub use state::{ManifestState, TreeFiles};
pub use writer::ManifestWriter;

/// Entry points for the fuzz harness (`crates/fuzz`); not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses the contents of `CURRENT`: the manifest number, or the offset of the first
    /// bad byte and what is wrong.
    pub fn parse_current(bytes: &[u8]) -> Result<u64, (u64, String)> {
        super::current::parse_current(bytes)
    }
}

/// Number of levels of the tree (level 0 holds flushed memtables, whose ranges overlap).
pub const NUM_LEVELS: usize = 7;
