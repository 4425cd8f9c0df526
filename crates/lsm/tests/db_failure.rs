//! Disk full and I/O errors, injected by [`FaultVfs`] at every point of a sweep (after N
//! bytes written, or at the n-th fdatasync), so that they land in log writes, flushes,
//! compactions and manifest updates: a refused write says ENOSPC (or EIO) — directly, or as
//! the background error that stops writes — reads keep working and return every
//! acknowledged write, and after reopening on a healthy disk every acknowledged write is
//! there and the database accepts writes again.

mod common;

use std::collections::BTreeMap;

use common::{small_db, EIO, ENOSPC};
use uringdb_lsm::db::batch::WriteBatch;
use uringdb_lsm::db::{Db, DbError, DbOptions};
use uringdb_wal::{BackendChoice, FaultConfig, FaultVfs};

fn options() -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        l0_compaction_trigger: 2,
        level_base_bytes: 1 << 20,
        target_file_bytes: 64 << 10,
        ..small_db(BackendChoice::Portable)
    }
}

#[derive(Default, Debug)]
struct Seen {
    refused_direct: u64,
    refused_background: u64,
    open_refused: u64,
}

fn run(config: FaultConfig, errno: i32, label: &str, seen: &mut Seen) {
    let dir = std::env::temp_dir().join(format!("uringdb-dbfail-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
    let vfs = FaultVfs::new(inner, config);
    let db = match Db::open_on(&dir, options(), vfs.clone()) {
        Ok(db) => db,
        Err(e) => {
            // The fault hit the open itself: it must still say what happened.
            assert_eq!(
                e.raw_os_error(),
                Some(errno),
                "{label}: open failed with {e}"
            );
            println!("{label}: open refused with {e}");
            seen.open_refused += 1;
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    };
    let w = db.blocking_writer();
    let mut acked: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut refused = None;
    for i in 0..4000u32 {
        let mut b = WriteBatch::new();
        let mut ops = Vec::new();
        for j in 0..8u32 {
            let k = format!("k{:05}", (i * 8 + j) % 3000).into_bytes();
            let v = format!("{label}-{i}-{j}-{}", "x".repeat(40)).into_bytes();
            b.put(&k, &v);
            ops.push((k, v));
        }
        match w.write(&b, true) {
            Ok(_) => acked.extend(ops),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let Some(e) = refused else {
        panic!("{label}: the injected fault never refused a write");
    };
    assert_eq!(e.raw_os_error(), Some(errno), "{label}: refused with {e}");
    println!("{label}: {} acked, refused with {e}", acked.len());
    match &e {
        DbError::Background(_) => seen.refused_background += 1,
        _ => seen.refused_direct += 1,
    }
    // Reads still work and see every acknowledged write.
    for (k, v) in &acked {
        assert_eq!(
            db.get(k, None).unwrap().as_ref(),
            Some(v),
            "{label}: read after the fault"
        );
    }
    drop(w);
    let _ = db.close();
    drop(db);
    // A healthy disk: reopen (the fault layer's unsynced bytes are gone, as after a crash).
    vfs.crash();
    let db = Db::open(&dir, options()).unwrap_or_else(|e| panic!("{label}: reopen: {e}"));
    for (k, v) in &acked {
        assert_eq!(
            db.get(k, None).unwrap().as_ref(),
            Some(v),
            "{label}: after reopen"
        );
    }
    let w = db.blocking_writer();
    w.put(b"after", b"ok").unwrap();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    assert_eq!(db.get(b"after", None).unwrap().as_deref(), Some(&b"ok"[..]));
    drop(w);
    db.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn enospc_anywhere() {
    let mut seen = Seen::default();
    // The first 256 KiB go to preparing the first log segment (segments then grow with the
    // write rate); past that the fault lands in log writes, the preparation of later
    // segments, table writes of flushes and compactions, and manifest updates. 100 kB fails
    // inside the first segment's preparation, which open waits for: the one point sure to
    // refuse the open.
    for (i, bytes) in [
        100_000u64, 1_500_000, 2_150_000, 2_200_000, 2_260_000, 2_330_000, 2_400_000, 2_500_000,
        2_650_000, 2_800_000, 3_000_000, 3_300_000,
    ]
    .into_iter()
    .enumerate()
    {
        let config = FaultConfig {
            fail_write_after_bytes: Some(bytes),
            errno: ENOSPC,
            ..FaultConfig::default()
        };
        run(config, ENOSPC, &format!("enospc{i}"), &mut seen);
    }
    // Whether the fault lands in a log write or in a flush's table write depends on how far
    // the background flush has got, which a loaded machine changes: if no point of the sweep
    // hit background work, more points (each checked the same way) until one does.
    for k in 0..40u64 {
        if seen.refused_background > 0 {
            break;
        }
        let config = FaultConfig {
            fail_write_after_bytes: Some(2_170_000 + k * 29_000),
            errno: ENOSPC,
            ..FaultConfig::default()
        };
        run(config, ENOSPC, &format!("enospc-extra{k}"), &mut seen);
    }
    println!("{seen:?}");
    assert!(
        seen.refused_direct > 0 && seen.refused_background > 0 && seen.open_refused > 0,
        "the sweep must hit opens, log writes and background work: {seen:?}"
    );
}

#[test]
fn eio_on_fsync_anywhere() {
    let mut seen = Seen::default();
    for (i, nth) in [3u64, 10, 25, 60, 120, 250].into_iter().enumerate() {
        let config = FaultConfig {
            fail_sync_nth: Some(nth),
            errno: EIO,
            ..FaultConfig::default()
        };
        run(config, EIO, &format!("eio{i}"), &mut seen);
    }
    println!("{seen:?}");
    assert!(seen.refused_direct > 0, "{seen:?}");
}
