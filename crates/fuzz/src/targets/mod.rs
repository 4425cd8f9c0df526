//! The fuzz targets: one per decoder of untrusted bytes, each with its seeds (cut from the
//! v1 fixtures, plus tables and segments built here with every compression), its checks,
//! the size it may allocate, and an optional fix-up that re-seals checksums so that
//! mutated inputs get past the checksum to the decoder behind it.
//!
//! A target's `run` returns whether the decoder accepted the input (accepted inputs join
//! the corpus, so later mutations start from valid-but-odd inputs). A rejection is fine;
//! a panic, a hang or an allocation over the bound is a failure. Some targets also check
//! a property that must hold whenever the input is accepted (a round trip, idempotent
//! recovery) with `assert!`: its failure is a panic, reported like any other.
//!
//! The targets live by the crate and format they exercise: `wal` (frames, segment
//! headers, recovery), `table` (blocks, index, filter, footer, trailer, properties, whole
//! tables), `manifest` (edits, CURRENT, whole manifests) and `db` (the database
//! directory, write batches), `logsink` (a log sink segment through its reader and
//! recovery). What they share: the [`Target`] descriptor, the bounds in
//! `limits`, the scratch [`Env`], the seed material in `fixtures`, and the table-file
//! walking and re-sealing in `table_file`.

mod db;
mod env;
mod fixtures;
mod limits;
mod logsink;
mod manifest;
mod table;
mod table_file;
mod target;
mod wal;

pub use env::Env;
pub use fixtures::{fixtures_dir, BlockKind, Fixtures};
pub use target::Target;

/// Every target, in the order `--list` shows them.
pub fn all() -> Vec<Target> {
    let mut all = wal::targets();
    all.extend(table::targets());
    all.extend(manifest::targets());
    all.extend(db::targets());
    all.extend(logsink::targets());
    all
}
