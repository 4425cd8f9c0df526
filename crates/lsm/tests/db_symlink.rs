//! Issue 8: temporary and new files followed symlinks — a planted `CURRENT.N.tmp` link made
//! the engine truncate and overwrite a file outside the database. For each kind of file the
//! engine creates or rewrites (`CURRENT.N.tmp`, `MANIFEST-N`, tables, log segments and their
//! `.wal.prep`, `LOCK`), links are planted under every name the run could use, pointing at a
//! file (and at missing files) outside the database; then the database is opened, written,
//! flushed and compacted on both backends. The rule: the engine never writes through a link.
//! It either works (the link was never used, or removed as a stale temporary) or fails with
//! an error that says why (ELOOP, or EEXIST for a new table), and the outside file is
//! byte-for-byte unchanged, no file appears outside, and once the links are gone the
//! database opens with every acknowledged write.

#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};

use common::small_db;
use uringdb_lsm::db::{Db, DbOptions};
use uringdb_wal::BackendChoice;

fn options(backend: BackendChoice) -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        l0_compaction_trigger: 2,
        level_base_bytes: 1 << 20,
        target_file_bytes: 64 << 10,
        ..small_db(backend)
    }
}

fn temp(label: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("uringdb-symlink-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The names (relative to the database directory) a kind of file takes in a short run.
fn planted_names(kind: &str) -> Vec<String> {
    match kind {
        "CURRENT.tmp" => (0..40).map(|n| format!("CURRENT.{n}.tmp")).collect(),
        "MANIFEST" => (0..40).map(|n| format!("MANIFEST-{n:06}")).collect(),
        "table" => (0..200).map(|n| format!("{n:06}.sst")).collect(),
        "wal.prep" => (0..12).map(|n| format!("wal/{n:012}.wal.prep")).collect(),
        "wal" => (0..12).map(|n| format!("wal/{n:012}.wal")).collect(),
        "LOCK" => vec!["LOCK".into(), "wal/LOCK".into()],
        _ => unreachable!(),
    }
}

/// Opens, writes ~900 KB in 3 KB puts (about 14 flushes and several compactions), flushes
/// and compacts; returns the acknowledged keys and the first error.
fn workload(dir: &Path, backend: BackendChoice) -> (Vec<Vec<u8>>, Option<String>) {
    let db = match Db::open(dir, options(backend)) {
        Ok(db) => db,
        Err(e) => return (Vec::new(), Some(format!("open: {e}"))),
    };
    let w = db.blocking_writer();
    let mut acked = Vec::new();
    let mut error = None;
    for i in 0..300u32 {
        let key = format!("key{i:05}").into_bytes();
        match w.put(&key, &vec![b'v'; 3000]) {
            Ok(_) => acked.push(key),
            Err(e) => {
                error = Some(format!("put: {e}"));
                break;
            }
        }
    }
    if error.is_none() {
        error = db
            .flush()
            .and_then(|()| db.compact_range(None, None))
            .err()
            .map(|e| format!("flush/compact: {e}"));
    }
    drop(w);
    let _ = db.close();
    (acked, error)
}

#[test]
fn planted_symlinks_are_never_written_through() {
    let mut backends = vec![("portable", BackendChoice::Portable)];
    if uringdb_uring::open_vfs(BackendChoice::IoUring).is_ok() {
        backends.push(("io_uring", BackendChoice::IoUring));
    } else {
        eprintln!("SKIPPING the io_uring backend: refused by this kernel");
    }
    for (label, backend) in backends {
        for (kind, existing) in [
            "CURRENT.tmp",
            "MANIFEST",
            "table",
            "wal.prep",
            "wal",
            "LOCK",
        ]
        .into_iter()
        .flat_map(|k| [(k, false), (k, true)])
        {
            let state = if existing { "existing" } else { "new" };
            let what = format!("{label}, {state} database, {kind} links");
            let root = temp(&format!("{label}-{kind}-{state}"));
            let outside = root.join("outside");
            std::fs::create_dir_all(&outside).unwrap();
            let victim = outside.join("victim");
            std::fs::write(&victim, b"precious").unwrap();
            let dir = root.join("db");
            std::fs::create_dir_all(dir.join("wal")).unwrap();
            let mut acked_before = Vec::new();
            if existing {
                // Links only under the names the database does not use yet.
                let (mut acked, error) = workload(&dir, backend);
                acked.extend(acked_before);
                assert_eq!(error, None, "{what}: preparing the database");
                acked_before = acked;
            }
            let names: Vec<String> = planted_names(kind)
                .into_iter()
                .filter(|n| !dir.join(n).exists())
                .collect();
            for (i, name) in names.iter().enumerate() {
                // Half to the victim, half dangling (creating through one makes a new file).
                let target = if i % 2 == 0 {
                    victim.clone()
                } else {
                    outside.join(format!("new-{i}"))
                };
                std::os::unix::fs::symlink(&target, dir.join(name)).unwrap();
            }

            let (mut acked, error) = workload(&dir, backend);
            acked.extend(acked_before);
            println!("{what}: {} acked, error: {error:?}", acked.len());
            assert_eq!(
                std::fs::read(&victim).unwrap(),
                b"precious",
                "{what}: the file outside was written through a link"
            );
            let mut found: Vec<_> = std::fs::read_dir(&outside)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            found.sort();
            assert_eq!(found, ["victim"], "{what}: files created outside");
            if kind == "CURRENT.tmp" || kind == "MANIFEST" && existing {
                // Stale temporaries and manifests the database is about to create are
                // removed, never opened: a planted link cannot block the database either.
                // (In a directory without CURRENT, a file named like a manifest makes the
                // open refuse to start a new database over what may be an old one.)
                assert_eq!(error, None, "{what}");
            }
            if let Some(e) = &error {
                assert!(
                    e.contains("os error 40") || e.contains("os error 17"),
                    "{what}: the error does not say a link was in the way: {e}"
                );
                assert!(
                    e.contains(dir.to_str().unwrap()),
                    "{what}: the error does not name the file: {e}"
                );
            }

            // With the links gone the database opens, holds every acknowledged write and works.
            for name in &names {
                let p = dir.join(name);
                if p.symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink())
                {
                    std::fs::remove_file(&p).unwrap();
                }
            }
            let db = Db::open(&dir, options(backend))
                .unwrap_or_else(|e| panic!("{what}: reopen without the links: {e}"));
            for k in &acked {
                assert!(
                    db.get(k, None).unwrap().is_some(),
                    "{what}: acknowledged {} lost",
                    String::from_utf8_lossy(k)
                );
            }
            let w = db.blocking_writer();
            w.put(b"after", b"ok").unwrap();
            drop(w);
            db.flush().unwrap();
            db.close().unwrap();
            let _ = std::fs::remove_dir_all(&root);
        }
    }
}
