//! The manifest and the flush/compaction install path under I/O failure (issue 8, items 1,
//! 2 and 5a), on [`FaultVfs`] (which loses every byte no completed fdatasync covered) behind
//! a small wrapper, [`TrapVfs`], that fails exactly one kind of operation when armed:
//!
//! - `create_enospc`: while set, writing a new manifest (its header and snapshot, at offset
//!   0) fails with ENOSPC — a disk full during the manifest rewrite that follows a durable
//!   append;
//! - `append_ambiguous`: the next manifest append reaches the disk, then reports EIO — a
//!   failed fdatasync whose bytes persisted anyway (the ambiguous case); while it stays set,
//!   every later manifest write fails with EIO and writes nothing (a failing disk), so that
//!   the background retries fail too until the test crashes the machine;
//! - `log_sync_eio`: the log committer's next fdatasync fails (nothing made durable);
//! - `sync_nth`: the n-th sync of any file or directory (counted from arming) reaches the
//!   disk, then reports EIO — the crash loop runs it for every n a workload reaches.
//!
//! After each failure the machine "crashes" (`FaultVfs::crash`: unsynced bytes lost) and
//! the database is reopened on a healthy disk: it must open, and every acknowledged write
//! must be there.
//!
//! `targeted.rs` injects one failure at a time and checks what the reopened database
//! holds; `crash_loop.rs` fails every sync a workload reaches, one per run; `machine.rs` is
//! the wrapper and the machine it runs on.

#[path = "../common/mod.rs"]
mod common;
mod crash_loop;
mod machine;
mod targeted;
