//! Tables are read through read-only mappings of their files (on both real backends): a
//! table holds no file descriptor, its uncompressed blocks are read where they lie, and a
//! mapping stays readable after its file is compacted away and unlinked while a reader
//! still pins the table. (The mapped reader against the `pread` one: every read in
//! `table/mapping.rs`'s tests, every corruption case in `table_corruption.rs`.)

mod common;

use std::path::{Path, PathBuf};

use common::small_db;
use uringdb_lsm::db::{Db, DbOptions, RangeOptions};
use uringdb_wal::BackendChoice;

fn backends() -> Vec<BackendChoice> {
    let mut b = vec![BackendChoice::Portable];
    if uringdb_uring::open_vfs(BackendChoice::IoUring).is_ok() {
        b.push(BackendChoice::IoUring);
    }
    b
}

fn temp(label: &str, backend: BackendChoice) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "uringdb-mapped-{label}-{backend:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn options(backend: BackendChoice) -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        // Tables stay in level 0 until the test compacts them.
        l0_compaction_trigger: 1000,
        l0_slowdown_trigger: 1000,
        l0_stop_trigger: 1000,
        ..small_db(backend)
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u32, version: u32) -> Vec<u8> {
    format!("value-{i}-{version}-").repeat(6).into_bytes()
}

/// The table files of `dir` that this process has mapped (from `/proc/self/maps`), and
/// the descriptors it holds open on them (from `/proc/self/fd`).
fn mapped_and_open(dir: &Path) -> (Vec<PathBuf>, usize) {
    let dir = std::fs::canonicalize(dir).unwrap();
    let is_table = |p: &Path| p.parent() == Some(&dir) && p.extension().is_some_and(|x| x == "sst");
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut mapped: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5).map(PathBuf::from))
        .filter(|p| is_table(p))
        .collect();
    mapped.sort();
    mapped.dedup();
    let open = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| is_table(t))
        .count();
    (mapped, open)
}

fn tables_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    v.sort();
    v
}

/// Writes `n` keys at `version` in `tables` flushes.
fn fill(db: &Db, n: u32, tables: u32, version: u32) {
    let w = db.blocking_writer();
    for t in 0..tables {
        for i in (t..n).step_by(tables as usize) {
            w.put(&key(i), &value(i, version)).expect("put");
        }
        db.flush().expect("flush");
    }
}

fn scan(it: &mut uringdb_lsm::db::DbIter) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let b = it.next_batch(97, 1 << 16).expect("batch");
        let mut at = 0;
        for kv in b.lens.chunks_exact(2) {
            let (k, v) = (kv[0] as usize, kv[1] as usize);
            out.push((
                b.data[at..at + k].to_vec(),
                b.data[at + k..at + k + v].to_vec(),
            ));
            at += k + v;
        }
        if b.done {
            return out;
        }
    }
}

#[test]
fn tables_are_mapped_and_hold_no_descriptor() {
    for backend in backends() {
        let dir = temp("mapped", backend);
        let db = Db::open(&dir, options(backend)).expect("open");
        fill(&db, 2000, 4, 0);
        let tables = tables_in(&dir);
        assert_eq!(tables.len(), 4, "{backend:?}: one table per flush");
        for i in 0..2000 {
            assert_eq!(db.get(&key(i), None).expect("get"), Some(value(i, 0)));
        }
        let (mapped, open) = mapped_and_open(&dir);
        assert_eq!(mapped, tables, "{backend:?}: every table is mapped");
        assert_eq!(open, 0, "{backend:?}: no table keeps a descriptor");
        // Uncompressed blocks (levels 0 and 1 by default) are read from the mapping, not
        // through the block cache.
        let c = db.stats().cache;
        assert_eq!(
            (c.hits, c.misses, c.inserts),
            (0, 0, 0),
            "{backend:?}: {c:?}"
        );
        db.close().expect("close");
        drop(db);
        assert_eq!(
            mapped_and_open(&dir).0,
            Vec::<PathBuf>::new(),
            "unmapped at close"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn an_iterator_reads_tables_compacted_away_and_unlinked_while_it_was_open() {
    for backend in backends() {
        let dir = temp("unlinked", backend);
        let db = Db::open(&dir, options(backend)).expect("open");
        fill(&db, 3000, 3, 0);
        let before = tables_in(&dir);
        let mut it = db.iter(RangeOptions::default(), None);
        // A first batch positions the iterator on the old tables.
        let first = it.next_batch(10, 1 << 16).expect("first batch");
        assert_eq!(first.lens.len(), 20);
        // Overwrite everything and compact: the old tables leave the current version; the
        // iterator still pins them (their files stay until it is dropped) ...
        fill(&db, 3000, 3, 1);
        db.compact_range(None, None).expect("compact");
        for p in &before {
            assert!(p.exists(), "{backend:?}: {} is pinned", p.display());
        }
        // ... and even with the files unlinked under it, the mappings read on.
        for p in &before {
            std::fs::remove_file(p).expect("unlink a pinned table");
        }
        let rest = scan(&mut it);
        assert_eq!(rest.len(), 3000 - 10, "{backend:?}");
        for (n, (k, v)) in rest.iter().enumerate() {
            let i = n as u32 + 10;
            assert_eq!(
                (k, v),
                (&key(i), &value(i, 0)),
                "{backend:?}: old version of {i}"
            );
        }
        drop(it);
        for i in (0..3000).step_by(7) {
            assert_eq!(db.get(&key(i), None).expect("get"), Some(value(i, 1)));
        }
        db.close().expect("close");
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
