//! The manifest through its public API: seeded round trips of edits, the rules of
//! `ManifestState::apply`, writer → recover round trips, the CURRENT switch and the removal
//! of old manifests, every corruption case (each bit of a small manifest, truncations, bad
//! CURRENT contents, a missing manifest, records that decode or apply badly), append errors
//! keeping their errno, and the committed v1 fixture. Crash tests live in
//! `manifest_crash.rs`.
//!
//! By subject: `edits.rs` (edits and state), `writer.rs` (writer and recovery, CURRENT),
//! `corruption.rs` (corruption of the manifest file), `io_errors.rs`, `fixture.rs` (the v1
//! format as committed); `helpers.rs` holds the generators and shared checks.

#[path = "../common/mod.rs"]
mod common;
mod corruption;
mod edits;
mod fixture;
mod helpers;
mod io_errors;
mod writer;
