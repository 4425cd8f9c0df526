//! The same file tests against both real backends (io_uring and portable): one generic body
//! per scenario, called for each backend.

#![cfg(unix)]

mod common;

use std::io;
use std::path::Path;
use std::sync::Arc;

use common::{assert_child_ok, pattern, real_backends, run_child_test, TempDir};
use uringdb_uring::{open_vfs, BackendChoice, BackendKind, OpenMode, Vfs};

fn for_each_backend(test: impl Fn(&str, &dyn Vfs, &TempDir)) {
    for (label, vfs) in real_backends() {
        let dir = TempDir::new(label);
        test(label, &*vfs, &dir);
    }
}

fn read_all(file: &dyn uringdb_uring::File) -> Vec<u8> {
    let len = file.len().unwrap() as usize;
    let mut buf = vec![0u8; len + 16];
    let n = file.read_at(0, &mut buf).unwrap();
    assert_eq!(n, len, "read_at must fill up to end of file");
    buf.truncate(n);
    buf
}

#[test]
fn io_uring_is_used_when_requested() {
    for (label, vfs) in real_backends() {
        let expected = match label {
            "io_uring" => BackendKind::IoUring,
            _ => BackendKind::Portable,
        };
        assert_eq!(vfs.kind(), expected);
    }
}

#[test]
fn write_read_round_trip() {
    for_each_backend(|label, vfs, dir| {
        let path = dir.join("f");
        let file = vfs.open(&path, OpenMode::CreateReadWrite).unwrap();
        let t = file.write_at(0, &[b"hello"], false).unwrap();
        assert_eq!(t.sync_ns, 0, "{label}: no sync for a non-durable write");
        file.write_at(100, &[b"world"], true).unwrap();
        assert_eq!(file.len().unwrap(), 105, "{label}");
        let mut buf = [0xffu8; 120];
        assert_eq!(
            file.read_at(0, &mut buf).unwrap(),
            105,
            "{label}: short only at EOF"
        );
        assert_eq!(&buf[..5], b"hello");
        assert!(
            buf[5..100].iter().all(|&b| b == 0),
            "{label}: the gap reads as zeros"
        );
        assert_eq!(&buf[100..105], b"world");
        assert_eq!(file.read_at(105, &mut buf).unwrap(), 0, "{label}: at EOF");
        assert_eq!(
            file.read_at(1000, &mut buf).unwrap(),
            0,
            "{label}: past EOF"
        );
        // Overwrite in the middle, durable, from several buffers.
        file.write_at(2, &[b"L", b"", b"LO"], true).unwrap();
        let mut five = [0u8; 5];
        file.read_at(0, &mut five).unwrap();
        assert_eq!(&five, b"heLLO", "{label}");
        // Durable empty write: just a sync.
        file.write_at(0, &[], true).unwrap();
        file.write_at(0, &[b"", b""], true).unwrap();
        file.sync_data().unwrap();
        drop(file);
        // What std sees is what we wrote.
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), 105);
        assert_eq!(&on_disk[..5], b"heLLO");
    });
}

#[test]
fn gathered_writes_beyond_iov_max() {
    for_each_backend(|label, vfs, dir| {
        let file = vfs
            .open(&dir.join("gathered"), OpenMode::CreateNew)
            .unwrap();
        // 3000 buffers (> 2 * IOV_MAX), sizes 0..=6 so some are empty.
        let chunks: Vec<Vec<u8>> = (0..3000).map(|i| pattern(i % 7, i as u8)).collect();
        let bufs: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        let expected: Vec<u8> = chunks.concat();
        for durable in [false, true] {
            let offset = if durable { expected.len() as u64 } else { 0 };
            let t = file.write_at(offset, &bufs, durable).unwrap();
            if !durable {
                assert_eq!(t.sync_ns, 0);
            }
        }
        let all = read_all(&*file);
        assert_eq!(all.len(), 2 * expected.len(), "{label}");
        assert_eq!(&all[..expected.len()], &expected[..], "{label}");
        assert_eq!(&all[expected.len()..], &expected[..], "{label}");
    });
}

#[test]
fn large_durable_write() {
    for_each_backend(|label, vfs, dir| {
        let file = vfs.open(&dir.join("large"), OpenMode::CreateNew).unwrap();
        let data = pattern(8 << 20, 3);
        // One big buffer, then the same data as 64 KiB pieces at an unaligned offset.
        let t = file.write_at(0, &[&data], true).unwrap();
        assert!(t.write_ns > 0, "{label}: write timing measured");
        let pieces: Vec<&[u8]> = data.chunks(64 << 10).collect();
        file.write_at(data.len() as u64 + 7, &pieces, true).unwrap();
        let all = read_all(&*file);
        assert_eq!(all.len(), 2 * data.len() + 7, "{label}");
        assert!(all[..data.len()] == data[..], "{label}: first copy");
        assert!(all[data.len() + 7..] == data[..], "{label}: second copy");
    });
}

#[test]
fn allocate_len_set_len() {
    for_each_backend(|label, vfs, dir| {
        let file = vfs.open(&dir.join("alloc"), OpenMode::CreateNew).unwrap();
        assert_eq!(file.len().unwrap(), 0);
        file.allocate(1 << 20).unwrap();
        assert_eq!(file.len().unwrap(), 1 << 20, "{label}: allocate extends");
        file.allocate(4096).unwrap();
        assert_eq!(
            file.len().unwrap(),
            1 << 20,
            "{label}: allocate never shrinks"
        );
        file.allocate(0).unwrap();
        let mut buf = [1u8; 16];
        assert_eq!(file.read_at((1 << 20) - 16, &mut buf).unwrap(), 16);
        assert_eq!(buf, [0u8; 16], "{label}: allocated space reads as zeros");
        file.write_at(0, &[b"abc"], true).unwrap();
        file.set_len(10).unwrap();
        assert_eq!(file.len().unwrap(), 10, "{label}");
        file.set_len(20_000).unwrap();
        assert_eq!(file.len().unwrap(), 20_000, "{label}");
        let mut three = [0u8; 3];
        file.read_at(0, &mut three).unwrap();
        assert_eq!(&three, b"abc");
    });
}

#[test]
fn namespace_operations() {
    for_each_backend(|label, vfs, dir| {
        let sub = dir.path().join("a/b/c");
        vfs.create_dir_all(&sub).unwrap();
        vfs.create_dir_all(&sub).unwrap(); // idempotent
        let one = sub.join("one");
        vfs.open(&one, OpenMode::CreateNew).unwrap();
        let err = vfs.open(&one, OpenMode::CreateNew).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{label}");
        let err = vfs
            .open(&sub.join("missing"), OpenMode::ReadWrite)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{label}");
        let err = vfs
            .open(&sub.join("missing"), OpenMode::ReadOnly)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{label}");
        vfs.open(&one, OpenMode::CreateReadWrite).unwrap();
        vfs.open(&sub.join("two"), OpenMode::CreateReadWrite)
            .unwrap();

        let mut names = vfs.list_dir(&sub).unwrap();
        names.sort();
        assert_eq!(names, ["one", "two"], "{label}");
        vfs.rename(&one, &sub.join("three")).unwrap();
        vfs.remove_file(&sub.join("two")).unwrap();
        vfs.sync_dir(&sub).unwrap();
        assert_eq!(vfs.list_dir(&sub).unwrap(), ["three"], "{label}");
        let err = vfs.remove_file(&sub.join("two")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{label}");

        // A read-only file refuses writes (EBADF), and says so with the errno.
        let ro = vfs.open(&sub.join("three"), OpenMode::ReadOnly).unwrap();
        let err = ro.write_at(0, &[b"x"], true).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{label}: {err}");
        let rw = vfs.open(&sub.join("three"), OpenMode::ReadWrite).unwrap();
        rw.write_at(0, &[b"ok"], true).unwrap();
    });
}

#[test]
fn concurrent_readers_and_writers_share_one_ring() {
    for (label, vfs) in real_backends() {
        let dir = TempDir::new(label);
        // Two files written durably from two threads (one ring, one mutex on io_uring), while
        // two more threads read what is already written.
        let threads: Vec<_> = (0..2u8)
            .map(|t| {
                let vfs = Arc::clone(&vfs);
                let path = dir.join(&format!("f{t}"));
                std::thread::spawn(move || {
                    let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
                    let block = pattern(4096, t);
                    let reader_file = Arc::clone(&file);
                    let reader = std::thread::spawn(move || {
                        let mut buf = vec![0u8; 4096];
                        for _ in 0..200 {
                            let n = reader_file.read_at(0, &mut buf).unwrap();
                            assert!(n == 0 || buf[..n] == pattern(4096, t)[..n]);
                        }
                    });
                    for i in 0..64u64 {
                        file.write_at(i * 4096, &[&block], i % 4 == 0).unwrap();
                    }
                    file.sync_data().unwrap();
                    reader.join().unwrap();
                    file.len().unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 64 * 4096, "{label}");
        }
    }
}

// ---- lock exclusivity across processes ----

const LOCK_CHILD_ENV: &str = "URINGDB_TEST_LOCK_CHILD";

/// Child side: tries to take the lock named by the env var ("<expect>:<path>").
#[test]
fn lock_child() {
    let Ok(spec) = std::env::var(LOCK_CHILD_ENV) else {
        return; // Not a child run.
    };
    let (expect, path) = spec.split_once(':').unwrap();
    let (vfs, _) = open_vfs(BackendChoice::Auto).unwrap();
    match (expect, vfs.lock(Path::new(path))) {
        ("busy", Err(e)) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}"),
        ("busy", Ok(guard)) => panic!("took a lock another process holds: {guard:?}"),
        ("free", Ok(_)) => {}
        (_, result) => panic!("unexpected {expect}: {result:?}"),
    }
}

#[test]
fn lock_is_exclusive_across_processes() {
    for_each_backend(|label, vfs, dir| {
        let path = dir.join("LOCK");
        let guard = vfs.lock(&path).unwrap();
        let busy = format!("busy:{}", path.display());
        assert_child_ok(
            label,
            &run_child_test("lock_child", &[(LOCK_CHILD_ENV, &busy)]),
        );
        drop(guard);
        let free = format!("free:{}", path.display());
        assert_child_ok(
            label,
            &run_child_test("lock_child", &[(LOCK_CHILD_ENV, &free)]),
        );
        // Re-taking it in this process works once released.
        let _again = vfs.lock(&path).unwrap();
    });
}

// ---- short writes (RLIMIT_FSIZE) ----

const FSIZE_CHILD_ENV: &str = "URINGDB_TEST_FSIZE_CHILD";
const FSIZE_LIMIT_BYTES: u64 = 1 << 20;

/// Child side: with RLIMIT_FSIZE = 1 MiB, a 2 MiB write is cut short by the kernel. The
/// backend must continue with the remainder (which then fails with EFBIG) and must never
/// report success; what the kernel did write is in the file.
#[test]
fn short_write_child() {
    let Ok(dir) = std::env::var(FSIZE_CHILD_ENV) else {
        return; // Not a child run.
    };
    let limit = libc::rlimit {
        rlim_cur: FSIZE_LIMIT_BYTES as libc::rlim_t,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass; signal installs SIG_IGN, no handler code.
    unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let data = pattern(2 * FSIZE_LIMIT_BYTES as usize, 9);
    for (label, vfs) in real_backends() {
        for durable in [true, false] {
            let path = Path::new(&dir).join(format!("{label}-{durable}"));
            let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
            // Two buffers, so the cut falls at the boundary of a gathered write's iovec.
            let (a, b) = data.split_at(data.len() / 3);
            let err = file.write_at(0, &[a, b], durable).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EFBIG), "{label}: {err}");
            assert_eq!(file.len().unwrap(), FSIZE_LIMIT_BYTES, "{label}");
            let mut buf = vec![0u8; FSIZE_LIMIT_BYTES as usize];
            file.read_at(0, &mut buf).unwrap();
            assert!(buf[..] == data[..buf.len()], "{label}: the written prefix");
            // Below the limit everything works (continuing after a short write).
            file.write_at(0, &[b"still fine"], true).unwrap();
        }
    }
}

#[test]
fn short_write_is_continued_never_reported_as_success() {
    let dir = TempDir::new("fsize");
    let out = run_child_test(
        "short_write_child",
        &[(FSIZE_CHILD_ENV, dir.path().to_str().unwrap())],
    );
    assert_child_ok("RLIMIT_FSIZE child", &out);
}

// ---- ENOSPC on a tiny tmpfs ----

/// A 1 MiB tmpfs, unmounted on drop.
struct TinyTmpfs {
    dir: TempDir,
}

impl TinyTmpfs {
    fn mount() -> Result<TinyTmpfs, String> {
        let dir = TempDir::new("tmpfs");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(TinyTmpfs { dir })
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn enospc_keeps_its_errno() {
    let fs = match TinyTmpfs::mount() {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPING enospc_keeps_its_errno: {why}");
            return;
        }
    };
    let data = pattern(2 << 20, 5);
    for (label, vfs) in real_backends() {
        for durable in [true, false] {
            let path = fs.dir.join(&format!("{label}-{durable}"));
            let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
            let err = file.write_at(0, &[&data], durable).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{label}: {err}");
            let err = file.allocate(4 << 20).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{label}: {err}");
            drop(file);
            vfs.remove_file(&path).unwrap();
        }
    }
}

/// Issue 8: a planted `CURRENT.N.tmp` symlink made the engine overwrite a file outside the
/// database. No open mode follows a symbolic link at the last path component (ELOOP, or
/// EEXIST for `CreateNew`), neither does `lock`, and the link's target is never written.
#[test]
fn symlink_is_never_followed_by_open_or_lock() {
    for_each_backend(|label, vfs, dir| {
        let outside = TempDir::new("outside");
        let target = outside.join("victim");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for mode in [
            OpenMode::CreateReadWrite,
            OpenMode::CreateNew,
            OpenMode::ReadWrite,
            OpenMode::ReadOnly,
        ] {
            match vfs.open(&link, mode) {
                Ok(f) => {
                    // What the old code did: the returned file is the target.
                    let _ = f.set_len(0);
                    let _ = f.write_at(0, &[b"overwritten"], true);
                    panic!("{label}: {mode:?} opened through a symlink");
                }
                Err(e) => {
                    let expected = if mode == OpenMode::CreateNew {
                        libc::EEXIST
                    } else {
                        libc::ELOOP
                    };
                    assert_eq!(e.raw_os_error(), Some(expected), "{label}: {mode:?}: {e}");
                }
            }
        }
        // A dangling link is not created through either.
        let dangling_target = outside.join("created");
        let dangling = dir.join("dangling");
        std::os::unix::fs::symlink(&dangling_target, &dangling).unwrap();
        for mode in [OpenMode::CreateReadWrite, OpenMode::CreateNew] {
            assert!(
                vfs.open(&dangling, mode).is_err(),
                "{label}: {mode:?} created a file through a dangling symlink"
            );
        }
        match vfs.lock(&dangling) {
            Ok(_) => panic!("{label}: lock created a file through a dangling symlink"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{label}: lock: {e}"),
        }
        assert!(
            !dangling_target.exists(),
            "{label}: a file appeared outside"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"precious", "{label}");
        // The links themselves are plain entries the engine may remove or rename over.
        vfs.remove_file(&link).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"precious", "{label}");
    });
}
