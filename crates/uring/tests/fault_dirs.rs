//! `FaultConfig::lose_unsynced_dir_ops`: a crash undoes the creations, removals and renames
//! that no `sync_dir` of their directory followed, newest first; synced ones stay.

mod common;

use std::sync::Arc;

use common::TempDir;
use uringdb_uring::{open_vfs, BackendChoice, FaultConfig, FaultVfs, OpenMode, Vfs};

fn volatile_dirs() -> Arc<FaultVfs> {
    let inner = open_vfs(BackendChoice::Portable).unwrap().0;
    FaultVfs::new(
        inner,
        FaultConfig {
            lose_unsynced_dir_ops: true,
            ..FaultConfig::default()
        },
    )
}

fn write_synced(vfs: &FaultVfs, path: &std::path::Path, bytes: &[u8]) {
    let f = vfs.open(path, OpenMode::CreateReadWrite).unwrap();
    f.write_at(0, &[bytes], true).unwrap();
}

fn names(vfs: &FaultVfs, dir: &std::path::Path) -> Vec<String> {
    let mut n = vfs.list_dir(dir).unwrap();
    n.sort();
    n
}

#[test]
fn a_created_file_without_a_directory_sync_is_gone_after_a_crash_even_with_its_data_synced() {
    let tmp = TempDir::new("fault-dirs-create");
    let dir = tmp.join("");
    let vfs = volatile_dirs();
    write_synced(&vfs, &dir.join("a"), b"data");
    vfs.crash();
    assert!(!dir.join("a").exists(), "the unsynced creation was undone");

    write_synced(&vfs, &dir.join("b"), b"data");
    vfs.sync_dir(&dir).unwrap();
    vfs.crash();
    assert_eq!(
        std::fs::read(dir.join("b")).unwrap(),
        b"data",
        "a synced creation stays"
    );
}

#[test]
fn a_rename_over_a_file_is_undone_and_the_replaced_file_comes_back() {
    let tmp = TempDir::new("fault-dirs-rename");
    let dir = tmp.join("");
    let vfs = volatile_dirs();
    write_synced(&vfs, &dir.join("CURRENT"), b"old");
    write_synced(&vfs, &dir.join("tmp"), b"new");
    vfs.sync_dir(&dir).unwrap();
    vfs.rename(&dir.join("tmp"), &dir.join("CURRENT")).unwrap();
    assert_eq!(
        names(&vfs, &dir),
        ["CURRENT"],
        "the keeper of the old file is hidden"
    );
    assert_eq!(std::fs::read(dir.join("CURRENT")).unwrap(), b"new");
    vfs.crash();
    assert_eq!(std::fs::read(dir.join("CURRENT")).unwrap(), b"old");
    assert_eq!(std::fs::read(dir.join("tmp")).unwrap(), b"new");
    assert_eq!(names(&vfs, &dir), ["CURRENT", "tmp"]);
    let all = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(all, 2, "no keeper left behind");

    // Synced, the rename survives and its keeper goes.
    vfs.rename(&dir.join("tmp"), &dir.join("CURRENT")).unwrap();
    vfs.sync_dir(&dir).unwrap();
    vfs.crash();
    assert_eq!(std::fs::read(dir.join("CURRENT")).unwrap(), b"new");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn removals_and_chains_of_operations_are_undone_newest_first() {
    let tmp = TempDir::new("fault-dirs-chain");
    let dir = tmp.join("");
    let vfs = volatile_dirs();
    write_synced(&vfs, &dir.join("seg1"), b"one");
    vfs.sync_dir(&dir).unwrap();
    // Recycling: seg1 becomes a pooled free file, a new segment is created from it, and a
    // fresh file is created and removed again, none of it synced.
    vfs.rename(&dir.join("seg1"), &dir.join("seg1.free"))
        .unwrap();
    vfs.rename(&dir.join("seg1.free"), &dir.join("seg2"))
        .unwrap();
    write_synced(&vfs, &dir.join("scratch"), b"x");
    vfs.remove_file(&dir.join("scratch")).unwrap();
    vfs.remove_file(&dir.join("seg2")).unwrap();
    assert_eq!(names(&vfs, &dir), Vec::<String>::new());
    vfs.crash();
    assert_eq!(names(&vfs, &dir), ["seg1"]);
    assert_eq!(std::fs::read(dir.join("seg1")).unwrap(), b"one");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no keeper left behind"
    );
}

#[test]
fn off_by_default_directory_operations_pass_straight_through() {
    let tmp = TempDir::new("fault-dirs-off");
    let dir = tmp.join("");
    let vfs = FaultVfs::new(
        open_vfs(BackendChoice::Portable).unwrap().0,
        FaultConfig::default(),
    );
    write_synced(&vfs, &dir.join("a"), b"data");
    vfs.crash();
    assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"data");
}
