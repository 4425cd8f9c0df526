//! A database directory written by format version 1 (tables in two levels, a manifest,
//! CURRENT, and a log whose tail holds writes that were never flushed) is kept in
//! `tests/fixtures/db_v1/`. Later versions must keep opening it with exactly this content.
//! Regenerate (only when the format version changes on purpose) with
//! `cargo test -p uringdb-lsm --test db_fixture -- --ignored generate`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::small_db;
use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbOptions, RangeOptions};
use uringdb_wal::BackendChoice;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/db_v1")
}

fn options() -> DbOptions {
    DbOptions {
        memtable_bytes: 1 << 20,
        ..small_db(BackendChoice::Portable)
    }
}

/// The content the fixture must hold.
fn expected() -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..300u32 {
        m.insert(
            format!("key{i:04}").into_bytes(),
            format!("v1-{i}").into_bytes(),
        );
    }
    for i in (0..300u32).step_by(3) {
        m.insert(
            format!("key{i:04}").into_bytes(),
            format!("v2-{i}").into_bytes(),
        );
    }
    for i in (0..300u32).step_by(7) {
        m.remove(format!("key{i:04}").as_bytes());
    }
    m.insert(b"unflushed".to_vec(), b"in the log only".to_vec());
    m
}

#[test]
#[ignore = "writes the fixture; run on purpose only"]
fn generate() {
    let dir = fixture();
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(&dir, options()).unwrap();
    let w = db.blocking_writer();
    let mut b = WriteBatch::new();
    for i in 0..300u32 {
        b.put(
            format!("key{i:04}").as_bytes(),
            format!("v1-{i}").as_bytes(),
        );
    }
    w.write(&b, true).unwrap();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    let mut b = WriteBatch::new();
    for i in (0..300u32).step_by(3) {
        b.put(
            format!("key{i:04}").as_bytes(),
            format!("v2-{i}").as_bytes(),
        );
    }
    w.write(&b, true).unwrap();
    db.flush().unwrap();
    let mut b = WriteBatch::new();
    for i in (0..300u32).step_by(7) {
        b.delete(format!("key{i:04}").as_bytes());
    }
    w.write(&b, true).unwrap();
    db.flush().unwrap();
    w.put(b"unflushed", b"in the log only").unwrap();
    drop(w);
    db.close().unwrap();
}

#[test]
fn fixture_v1_opens_with_its_content() {
    let src = fixture();
    let dir = std::env::temp_dir().join(format!("uringdb-fixture-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&src, &dir);
    let db = Db::open(&dir, options()).expect("the v1 fixture opens");
    assert_eq!(
        db.recovery().replayed_records,
        1,
        "one write is only in the log"
    );
    let st = db.stats();
    assert!(
        st.levels[0].files >= 1 && st.levels[1].files >= 1,
        "two levels: {:?}",
        st.levels
    );
    let mut it = db.iter(RangeOptions::default(), None);
    let mut got = BTreeMap::new();
    loop {
        let b = it.next_batch(1000, 1 << 20).unwrap();
        let mut at = 0;
        for p in b.lens.chunks(2) {
            let (k, v) = (p[0] as usize, p[1] as usize);
            got.insert(
                b.data[at..at + k].to_vec(),
                b.data[at + k..at + k + v].to_vec(),
            );
            at += k + v;
        }
        if b.done {
            break;
        }
    }
    assert_eq!(got, expected());
    for (k, v) in expected() {
        assert_eq!(db.get(&k, None).unwrap(), Some(v));
    }
    assert_eq!(db.get(b"key0007", None).unwrap(), None);
    db.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
