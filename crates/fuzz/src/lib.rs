//! uringdb's fuzz harness: every decoder of untrusted bytes, fed mutated inputs on the
//! stable toolchain. No libFuzzer, no nightly, no new dependency: a seeded mutation runner
//! over seeds cut from the v1 fixtures (`crates/lsm/tests/fixtures`).
//!
//! # Running it
//!
//! ```text
//! npm run fuzz -- --list                      the targets, one line each
//! npm run fuzz -- <target> [seconds]          one target, 60 s by default, a fresh seed
//! npm run fuzz -- all 6 --seed 1              every target for 6 s (what CI runs)
//! npm run fuzz -- <target> --seed N           the same inputs as an earlier run with seed N
//! npm run fuzz -- <target> --replay FILE...   run saved inputs once (a crash, a regression)
//! ```
//!
//! (`scripts/fuzz.sh` builds `target/debug/uringdb-fuzz` and runs it: debug, so that
//! integer overflow and debug assertions are checked, as in the tests.)
//!
//! # Targets
//!
//! | target               | decoder                                                      |
//! |----------------------|--------------------------------------------------------------|
//! | `wal_frame`          | `wal::format::decode_frame`                                  |
//! | `wal_segment_header` | `wal::format::SegmentHeader::decode`                         |
//! | `wal_recovery`       | segment files (the input cut at each segment magic, up to 4) |
//! |                      | through `Wal::open` (recovery), then read back and reopened  |
//! | `wal_scan`           | the same, through recovery alone (no threads: faster)        |
//! | `table_block`        | data blocks (`table/block.rs`)                               |
//! | `table_index`        | the index block and its handles (`table/index.rs`)           |
//! | `table_filter`       | the bloom filter block (`table/filter.rs`)                   |
//! | `table_footer`       | the footer (`table/footer.rs`)                               |
//! | `table_trailer`      | stored blocks: checksum, lz4, zstd (`table/trailer.rs`)      |
//! | `table_properties`   | the metaindex block (`table/properties.rs`)                  |
//! | `table`              | a whole table file through `Table::open` (`table/reader.rs`) |
//! | `manifest_edit`      | `VersionEdit::decode` and `ManifestState::apply`             |
//! | `manifest_current`   | the contents of `CURRENT`                                    |
//! | `manifest`           | a whole manifest file through `manifest::recover`            |
//! | `db`                 | the v1 database, one file replaced: `Db::open`, scan, get    |
//! | `batch`              | write batches (`db/batch.rs`): `validate` and `ops`          |
//!
//! Targets for a whole file go through the files' real entry points, on a scratch
//! directory on tmpfs (`/dev/shm`) with the portable I/O backend. The decoders inside a
//! table are reached through `uringdb_lsm::table::fuzzing`, a `#[doc(hidden)]` module of
//! thin entry points (the decoders stay `pub(crate)`).
//!
//! # What counts as a failure
//!
//! * **A panic**, on any thread, while the input runs (`catch_unwind` around the target;
//!   a panic hook records panics on other threads too, e.g. the log's committer). Some
//!   targets also assert a property of accepted inputs: re-encoding a frame, a header, a
//!   batch or an edit gives it back; replaying a manifest's snapshot gives the same state;
//!   a recovered log reads back every record and recovers the same way twice.
//! * **A hang**: every walk is bounded (a cursor that needs more than 2^20 moves is a
//!   failure by itself), and a watchdog thread ends the process when one input runs longer
//!   than `--hang-seconds` (30 by default), after writing that input out.
//! * **An allocation beyond the bound.** The binary's global allocator
//!   ([`alloc::Counting`]) records the largest single allocation made on the fuzzing
//!   thread while an input runs. The bound for an input is
//!
//!   ```text
//!   max(declared, input length) × expansion + fixed
//!   ```
//!
//!   - `declared` is the largest size the input itself declares for one thing the decoder
//!     must materialise, computed by the target outside the measurement: a WAL frame's
//!     27-bit payload length; a compressed block's decoded-length varint (which the format
//!     bounds at 128 MiB); for a whole table, the largest decoded length among the blocks a
//!     reader can reach. A decoder may trust those, and nothing else: everything else must
//!     be backed by bytes that exist. For a whole WAL segment nothing is declared: a frame
//!     cannot be longer than the file it is in, so recovery must not allocate beyond it.
//!   - `expansion` is 1 for decoders that produce bytes. Decoders that produce structs
//!     (manifest edits and state, and so `db`) turn a 10-byte encoded file entry into a
//!     96-byte `FileMeta`, and a growing `Vec` may hold twice that: the factor is 32 there
//!     (see `STRUCT_EXPANSION` in `targets/limits.rs`).
//!   - `fixed` is what the code allocates whatever the input: 64 KiB by default (messages,
//!     small vectors); 1 MiB + 64 KiB for `wal_recovery`, `wal_scan` and `db` (the commit
//!     ring that `Wal::open` allocates, 1 MiB at the smallest size, and recovery's 1 MiB
//!     I/O chunk).
//!
//!   What it does not see: allocations on other threads, and those of C code that calls
//!   `malloc` directly (zstd's decoder context and its window). zstd decodes into a buffer
//!   the Rust side sized from the declared length, which is seen.
//!
//!   Why the largest single allocation rather than the total or the peak: an untrusted
//!   length shows up as one allocation of that length, and the largest one does not
//!   depend on allocator reuse or on other threads, so the check is deterministic. The
//!   allocator never refuses (that would abort inside the allocator, unreported); the
//!   runner checks after the input returns, and the formats' own limits keep a bad
//!   allocation survivable until then.
//!
//! # Reproducing and keeping a failure
//!
//! Inputs are deterministic by seed: the run prints its seed, and the same seed and target
//! give the same inputs in the same order. On a failure the runner shrinks the input
//! (greedy chunk removal while it fails the same way, for at most 10 s), writes it to
//! `crates/fuzz/crashes/<target>/<kind>-<hash>.bin` (git-ignored), and prints the
//! message, the path, the replay command and a hex dump. To keep it as a regression: fix
//! the decoder with a test named after the bug in the decoder's crate, and copy the file
//! to `crates/fuzz/regressions/<target>/`; `cargo test -p uringdb-fuzz` replays every file
//! there (and every seed) through the same checks.
//!
//! # Seeds and mutations
//!
//! Seeds: the fixture tables (and tables built here with none, lz4 and zstd compression,
//! with and without a filter, under both comparators), their blocks, the fixture manifests,
//! their records and CURRENT files, the fixture WAL segment (trimmed, and whole), its
//! frames and batches, and a segment built here with atomic batches.
//!
//! Mutations ([`mutate`]): bit flips, random bytes, interesting values (0, 1, width and
//! sign boundaries, the format limits, the input's own length ±8) written as fixed-width
//! integers or varints, truncation, extension (zeros, 0xff, random), splicing with another
//! corpus entry, chunk copies, insertions and deletions, zeroed ranges and zeroed 4 KiB
//! pages (torn writes). After mutation, half the inputs of the checksummed formats have
//! their checksums re-sealed (frames, segment and manifest headers, manifest records, the
//! table footer and every reachable block), so the mutations reach the decoders behind
//! the checksums. Inputs a decoder accepts join the corpus (up to 512 entries).

pub mod alloc;
pub mod mutate;
pub mod runner;
pub mod targets;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;
