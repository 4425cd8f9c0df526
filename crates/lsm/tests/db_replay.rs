//! Issue 8 (noticed by the fuzzing work): replaying the log at open applied each record's
//! operations with an iterator that stops quietly at the first malformed one, so a record
//! whose checksum is intact but whose batch is not (a bug in an older writer, or damage
//! that a checksum collision let through) was skipped, in whole or in part, and the open
//! succeeded without the writes it held. It must be an error that names the log and the
//! record.

mod common;

use std::sync::Arc;

use common::small_db;
use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbError, DbOptions};
use uringdb_wal::{BackendChoice, CompletionSink, GroupInfo, Wal, WalError};

fn options() -> DbOptions {
    small_db(BackendChoice::Portable)
}

struct Quiet;
impl CompletionSink for Quiet {
    fn completed(&self, _: &[u64], _: &GroupInfo) {}
    fn failed(&self, _: usize, e: &WalError) {
        panic!("{e}");
    }
}

/// Appends `payload` as one record (valid frame and checksum) to the database's log.
fn append_raw(dir: &std::path::Path, payload: &[u8]) {
    let (wal, _) = Wal::open(&dir.join("wal"), &options().wal).unwrap();
    let p = wal.producer(Arc::new(Quiet));
    p.append(payload, true).unwrap();
    drop(p);
    wal.close().unwrap();
}

#[test]
fn a_log_record_that_is_not_a_valid_batch_fails_the_open_naming_it() {
    let mut good = WriteBatch::new();
    good.put(b"k1", b"v1").put(b"k2", b"v2");
    let good = good.as_bytes().to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no batch tag", b"\x00garbage".to_vec()),
        ("a truncated operation", good[..good.len() - 1].to_vec()),
        ("an unknown operation kind", {
            let mut b = good.clone();
            b.push(0x7F);
            b.extend_from_slice(&[0, 0, 0, 0]);
            b
        }),
    ];
    for (what, payload) in cases {
        let dir = std::env::temp_dir().join(format!(
            "uringdb-replay-{}-{}",
            what.replace(' ', "-"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let db = Db::open(&dir, options()).unwrap();
            db.blocking_writer().put(b"before", b"ok").unwrap();
            db.close().unwrap();
        }
        append_raw(&dir, &payload);
        match Db::open(&dir, options()) {
            Err(DbError::Corruption { file, reason, .. }) => {
                assert!(file.starts_with(dir.join("wal")), "{what}: {file:?}");
                assert!(reason.contains("record 2"), "{what}: {reason}");
            }
            Err(e) => panic!("{what}: expected Corruption, got {e}"),
            Ok(_) => panic!("{what}: the open succeeded and skipped the malformed record"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
