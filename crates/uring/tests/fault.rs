//! `FaultVfs`: unsynced bytes are invisible to the disk and lost on a crash (in-process and
//! SIGKILL), torn tails are prefixes, and injected faults carry the configured errno.

mod common;

use std::io;
use std::sync::Arc;

use common::{pattern, real_backends, TempDir};
use uringdb_uring::{open_vfs, BackendChoice, FaultConfig, FaultVfs, OpenMode, Vfs};

fn portable() -> Arc<dyn Vfs> {
    open_vfs(BackendChoice::Portable).unwrap().0
}

fn faulty(config: FaultConfig) -> Arc<FaultVfs> {
    FaultVfs::new(portable(), config)
}

#[test]
fn pending_bytes_reach_the_disk_only_on_sync() {
    // Over both real backends: the flush goes through the inner backend's durable write.
    for (label, inner) in real_backends() {
        let dir = TempDir::new("fault-sync");
        let path = dir.join("f");
        let vfs = FaultVfs::new(Arc::clone(&inner), FaultConfig::default());
        assert_eq!(vfs.kind(), inner.kind(), "{label}: kind is the inner kind");
        let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
        file.write_at(0, &[b"abc", b"def"], false).unwrap();
        file.write_at(3, &[b"XY"], false).unwrap();
        assert_eq!(vfs.pending_bytes(), 8);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"",
            "{label}: nothing on disk yet"
        );
        // The process reads what it wrote, overlaid in write order.
        let mut buf = [0u8; 10];
        assert_eq!(file.read_at(0, &mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"abcXYf");
        assert_eq!(file.len().unwrap(), 6);

        file.sync_data().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcXYf", "{label}");
        assert_eq!(vfs.pending_bytes(), 0);
        assert_eq!(vfs.synced_bytes(), 8);

        // A durable write is on disk when it returns.
        file.write_at(6, &[b"!"], true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcXYf!", "{label}");
        assert_eq!(vfs.synced_bytes(), 9);
    }
}

#[test]
fn reads_overlay_pending_writes_past_the_end_of_file() {
    let dir = TempDir::new("fault-overlay");
    let vfs = faulty(FaultConfig::default());
    let file = vfs.open(&dir.join("f"), OpenMode::CreateNew).unwrap();
    file.write_at(0, &[&[1u8; 10]], true).unwrap();
    file.write_at(20, &[&[2u8; 5]], false).unwrap();
    assert_eq!(file.len().unwrap(), 25);
    let mut buf = [9u8; 30];
    assert_eq!(file.read_at(0, &mut buf).unwrap(), 25);
    assert_eq!(&buf[..10], &[1u8; 10]);
    assert_eq!(
        &buf[10..20],
        &[0u8; 10],
        "the gap before a pending write reads as zeros"
    );
    assert_eq!(&buf[20..25], &[2u8; 5]);
    let mut tail = [0u8; 4];
    assert_eq!(file.read_at(22, &mut tail).unwrap(), 3);
    assert_eq!(&tail[..3], &[2u8; 3]);
    assert_eq!(file.read_at(25, &mut tail).unwrap(), 0);
}

#[test]
fn handles_of_one_path_share_the_page_cache() {
    let dir = TempDir::new("fault-share");
    let vfs = faulty(FaultConfig::default());
    let path = dir.join("f");
    let writer = vfs.open(&path, OpenMode::CreateNew).unwrap();
    let reader = vfs.open(&path, OpenMode::ReadOnly).unwrap();
    writer.write_at(0, &[b"shared"], false).unwrap();
    let mut buf = [0u8; 6];
    assert_eq!(reader.read_at(0, &mut buf).unwrap(), 6);
    assert_eq!(&buf, b"shared");
    // fdatasync through any handle flushes the file's dirty bytes.
    reader.sync_data().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"shared");
    // A read-only handle refuses writes, as a real one does.
    let err = reader.write_at(0, &[b"no"], false).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
}

#[test]
fn crash_drops_unsynced_bytes_and_kills_old_handles() {
    let dir = TempDir::new("fault-crash");
    let vfs = faulty(FaultConfig::default());
    let path = dir.join("log");
    let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
    file.write_at(0, &[b"AAAA"], true).unwrap();
    file.write_at(4, &[b"BBBB"], false).unwrap();
    let other = vfs.open(&dir.join("other"), OpenMode::CreateNew).unwrap();
    other.write_at(0, &[b"never synced"], false).unwrap();

    vfs.crash();
    assert_eq!(vfs.pending_bytes(), 0);
    let mut buf = [0u8; 8];
    for result in [
        file.read_at(0, &mut buf).map(drop),
        file.write_at(0, &[b"x"], true).map(drop),
        file.sync_data(),
        file.len().map(drop),
        other.sync_data(),
    ] {
        let err = result.unwrap_err();
        assert!(err.to_string().contains("simulated crash"), "{err}");
    }
    // The "reboot": new handles see exactly what was synced.
    let file = vfs.open(&path, OpenMode::ReadWrite).unwrap();
    assert_eq!(file.len().unwrap(), 4);
    assert_eq!(std::fs::read(&path).unwrap(), b"AAAA");
    assert_eq!(std::fs::read(dir.join("other")).unwrap(), b"");
    file.write_at(4, &[b"CC"], true).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"AAAACC");
}

/// Writes 40 pending chunks of 25 bytes to `name` in a fresh directory, crashes torn with
/// `seed`, and returns what reached the disk and the full pending data.
fn torn(seed: u64, name: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = TempDir::new("fault-torn");
    let vfs = faulty(FaultConfig::default());
    let path = dir.join(name);
    let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
    file.write_at(0, &[b"synced-"], true).unwrap();
    let data = pattern(1000, 1);
    for (i, chunk) in data.chunks(25).enumerate() {
        file.write_at(7 + 25 * i as u64, &[chunk], false).unwrap();
    }
    vfs.crash_torn(seed);
    (std::fs::read(&path).unwrap(), data)
}

#[test]
fn crash_torn_keeps_a_deterministic_prefix() {
    let mut lengths = Vec::new();
    for seed in 0..8 {
        let (disk, data) = torn(seed, "000001.log");
        assert_eq!(&disk[..7], b"synced-", "synced bytes survive");
        let kept = &disk[7..];
        assert_eq!(
            kept,
            &data[..kept.len()],
            "seed {seed}: a prefix, in write order"
        );
        let (again, _) = torn(seed, "000001.log");
        assert_eq!(disk, again, "seed {seed}: deterministic");
        lengths.push(kept.len());
    }
    assert!(
        lengths.iter().any(|&n| n > 0 && n < 1000),
        "some seed must tear mid-way: {lengths:?}"
    );
    assert!(
        lengths.windows(2).any(|w| w[0] != w[1]),
        "seeds must differ: {lengths:?}"
    );
}

#[test]
fn fail_sync_nth_fails_exactly_that_sync_and_loses_its_bytes() {
    let dir = TempDir::new("fault-syncnth");
    let vfs = faulty(FaultConfig::from_env_str("drop-unsynced,fail_sync_nth=2,errno=EIO").unwrap());
    let path = dir.join("f");
    let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
    file.write_at(0, &[b"one"], true).unwrap(); // sync 1
    let err = file.write_at(3, &[b"two"], true).unwrap_err(); // sync 2
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"one");
    // The failed sync's bytes are gone: a retry does not make them durable.
    file.sync_data().unwrap(); // sync 3
    assert_eq!(std::fs::read(&path).unwrap(), b"one");
    assert_eq!(file.len().unwrap(), 3);
    file.write_at(3, &[b"three"], false).unwrap();
    file.sync_data().unwrap(); // sync 4
    assert_eq!(std::fs::read(&path).unwrap(), b"onethree");

    // Plain sync_data counts too, with the configured errno.
    let vfs = faulty(FaultConfig {
        fail_sync_nth: Some(1),
        errno: libc::ENOSPC,
        ..FaultConfig::default()
    });
    let file = vfs.open(&dir.join("g"), OpenMode::CreateNew).unwrap();
    file.write_at(0, &[b"x"], false).unwrap();
    let err = file.sync_data().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
}

#[test]
fn sync_fail_persists_reports_the_error_but_keeps_the_bytes() {
    let dir = TempDir::new("fault-sync-persists");
    let path = dir.join("f");
    let vfs = faulty(FaultConfig::from_env_str("sync_fail_persists,fail_sync_nth=2").unwrap());
    assert!(
        FaultConfig::from_env_str("sync_fail_persists")
            .unwrap()
            .sync_fail_persists
    );
    let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
    file.write_at(0, &[b"one"], true).unwrap(); // sync 1
    file.write_at(3, &[b"two"], false).unwrap();
    let err = file.sync_data().unwrap_err(); // sync 2: fails...
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    // ...yet the bytes are durable: a crash keeps them.
    vfs.crash();
    assert_eq!(std::fs::read(&path).unwrap(), b"onetwo");
    assert_eq!(vfs.pending_bytes(), 0);
}

/// Writes 4 pages' worth of distinct bytes over one synced page, crashes with
/// `crash_pages(seed)` and returns the file afterwards.
fn crash_pages(seed: u64) -> Vec<u8> {
    let page = uringdb_uring::FAULT_PAGE_BYTES as usize;
    let dir = TempDir::new("fault-pages");
    let path = dir.join("f");
    let vfs = faulty(FaultConfig::default());
    let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
    file.write_at(0, &[&vec![0xEE; page]], true).unwrap();
    // Page 0 is partly rewritten (from byte 100); pages 1..=3 are new.
    let data = pattern(4 * page - 100, seed as u8);
    file.write_at(100, &[&data], false).unwrap();
    vfs.crash_pages(seed);
    std::fs::read(&path).unwrap()
}

#[test]
fn crash_pages_keeps_whole_pages_in_any_subset() {
    let page = uringdb_uring::FAULT_PAGE_BYTES as usize;
    let mut kept_patterns = std::collections::BTreeSet::new();
    for seed in 0..64u64 {
        let got = crash_pages(seed);
        assert_eq!(got, crash_pages(seed), "seed {seed}: deterministic");
        let want = {
            let mut w = vec![0xEE; 100];
            w.extend(pattern(4 * page - 100, seed as u8));
            w
        };
        let mut kept = Vec::new();
        for p in 0..4 {
            let lo = p * page;
            let on_disk = got.get(lo..(lo + page).min(got.len())).unwrap_or(&[]);
            if on_disk == &want[lo..lo + page] {
                kept.push(p);
            } else if p == 0 {
                // Lost: the synced page as it was.
                assert_eq!(on_disk, &vec![0xEE; page][..], "seed {seed} page 0");
            } else {
                // Lost: never written (a hole reads as zeros, or past the end of file).
                assert!(on_disk.iter().all(|&b| b == 0), "seed {seed} page {p}");
            }
        }
        kept_patterns.insert(kept);
    }
    // Later pages survive without earlier ones, and the other way round.
    assert!(kept_patterns.contains(&vec![3]), "{kept_patterns:?}");
    assert!(kept_patterns.contains(&vec![0]), "{kept_patterns:?}");
    assert!(kept_patterns.len() > 8, "{kept_patterns:?}");
}

#[test]
fn fail_write_after_bytes_latches() {
    let dir = TempDir::new("fault-write");
    let vfs = faulty(FaultConfig::from_env_str("fail_write_after_bytes=10,errno=ENOSPC").unwrap());
    let a = vfs.open(&dir.join("a"), OpenMode::CreateNew).unwrap();
    let b = vfs.open(&dir.join("b"), OpenMode::CreateNew).unwrap();
    a.write_at(0, &[b"123456"], false).unwrap();
    b.write_at(0, &[b"7890"], true).unwrap(); // exactly 10: accepted
    let err = a.write_at(6, &[b"x"], false).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    let err = b.write_at(4, &[], false).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "latched: {err}");
    assert_eq!(a.len().unwrap(), 6, "the refused write accepted nothing");
}

#[test]
fn enospc_allocate_after_bytes() {
    let dir = TempDir::new("fault-alloc");
    let vfs = faulty(FaultConfig::from_env_str("enospc_allocate_after_bytes=8192").unwrap());
    let file = vfs.open(&dir.join("seg"), OpenMode::CreateNew).unwrap();
    file.allocate(4096).unwrap();
    file.allocate(4096).unwrap(); // no growth, no charge
    file.allocate(8192).unwrap(); // grows 4096: total 8192
    let err = file.allocate(8193).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    assert_eq!(file.len().unwrap(), 8192);
    let other = vfs.open(&dir.join("seg2"), OpenMode::CreateNew).unwrap();
    let err = other.allocate(1).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOSPC),
        "the budget is per Vfs"
    );
}

#[test]
fn metadata_passes_through_and_pending_bytes_follow_renames() {
    let dir = TempDir::new("fault-meta");
    let vfs = faulty(FaultConfig::default());
    let (from, to) = (dir.join("tmp"), dir.join("CURRENT"));
    let file = vfs.open(&from, OpenMode::CreateNew).unwrap();
    file.write_at(0, &[b"MANIFEST-1"], false).unwrap();
    vfs.rename(&from, &to).unwrap();
    assert_eq!(vfs.list_dir(dir.path()).unwrap(), ["CURRENT"]);
    let reopened = vfs.open(&to, OpenMode::ReadOnly).unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(reopened.read_at(0, &mut buf).unwrap(), 10);
    assert_eq!(&buf, b"MANIFEST-1");
    file.sync_data().unwrap();
    vfs.sync_dir(dir.path()).unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"MANIFEST-1");

    // set_len trims pending bytes past the new end.
    file.write_at(10, &[b"tail"], false).unwrap();
    file.set_len(12).unwrap();
    assert_eq!(file.len().unwrap(), 12);
    assert_eq!(vfs.pending_bytes(), 2);
    file.sync_data().unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"MANIFEST-1ta");

    vfs.remove_file(&to).unwrap();
    assert!(vfs.list_dir(dir.path()).unwrap().is_empty());
    let guard = vfs.lock(&dir.join("LOCK")).unwrap();
    let err = portable().lock(&dir.join("LOCK")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    drop(guard);
}

// ---- SIGKILL: bytes not covered by a completed fdatasync are lost across processes ----

const KILL_CHILD_ENV: &str = "URINGDB_TEST_FAULT_KILL_CHILD";

/// Child side: writes through FaultVfs (configured from the env string, as the binding
/// does), then waits to be killed.
#[test]
fn killed_child() {
    let Ok(path) = std::env::var(KILL_CHILD_ENV) else {
        return; // Not a child run.
    };
    let config = FaultConfig::from_env_str("drop-unsynced").unwrap();
    let (inner, _) = open_vfs(BackendChoice::Auto).unwrap();
    let vfs = FaultVfs::new(inner, config);
    let file = vfs
        .open(std::path::Path::new(&path), OpenMode::CreateNew)
        .unwrap();
    file.write_at(0, &[b"durable;"], true).unwrap();
    file.write_at(8, &[b"acknowledged-without-sync"], false)
        .unwrap();
    println!("READY");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(60));
    panic!("not killed");
}

#[test]
fn sigkill_loses_exactly_the_unsynced_bytes() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("fault-kill");
    let path = dir.join("log");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "killed_child", "--nocapture", "--test-threads=1"])
        .env(KILL_CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("READY"));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(ready, "the child never got ready ({status})");
    assert_eq!(std::fs::read(&path).unwrap(), b"durable;");
}
