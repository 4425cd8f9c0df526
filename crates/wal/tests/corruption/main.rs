//! Every corruption case of the segment format (`format.rs`) against what recovery
//! (`recovery.rs`) and the reader promise, through the public API: write a log with the real
//! backend, close it, damage the files with `std::fs`, reopen.
//!
//! | damage                                         | promise                                      |
//! |------------------------------------------------|----------------------------------------------|
//! | last record cut at any byte (torn tail)        | cut, earlier records intact, appends go on   |
//! | a bit of a complete last record flipped        | strict: Corruption(file, frame offset) — bit |
//! |                                                | rot is not a torn write; tolerant: cut       |
//! | a length bit flipped so the frame runs into    | cut as a torn tail (indistinguishable from a |
//! |   never-written zeros                          | longer frame whose last sector was lost)     |
//! | a commit group's first page lost, a later one  | a torn tail: cut (its MARK claims nothing    |
//! |   kept (pages persisted out of order)          | durable beyond the records before it)        |
//! | a hole in a group, a later group's MARK        | strict: Corruption at the hole               |
//! |   claiming the hole durable                    |                                              |
//! | the last segment file missing (its             | Corruption naming the missing file           |
//! |   predecessor is sealed)                       |                                              |
//! | a frame damaged, valid frames after it         | strict: Corruption(file, frame offset);      |
//! |   (last segment)                               | tolerant: cut there, appends go on           |
//! | a frame damaged in a sealed segment            | open succeeds; reads across it: Corruption   |
//! |                                                | naming that file and frame; never wrong data |
//! | a middle segment file missing                  | Corruption naming the missing file           |
//! | any header bit of any segment flipped          | Corruption at offset 0                       |
//! | header number / first_seq inconsistent         | Corruption at offset 16 / 24                 |
//! | an atomic batch whose tail frames are missing  | the whole batch is dropped                   |
//! | leftover `N.wal.prep` files                    | removed at open, their records never visible |
//!
//! The cases live by where the damage is: `tail.rs` (the last segment's tail), `mid_log.rs`
//! (the middle of the last segment), `sealed.rs` (sealed and missing segments, headers),
//! `batches.rs` (atomic batches, prepared segments); `damage.rs` builds logs, finds frames
//! and damages files.

mod batches;
#[path = "../common/mod.rs"]
mod common;
mod damage;
mod mid_log;
mod sealed;
mod tail;
