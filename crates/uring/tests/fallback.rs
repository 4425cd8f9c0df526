//! io_uring refused by a seccomp filter (as in a container): `auto` falls back to portable and
//! says why; an explicit `io_uring` request fails with the same reason.
//!
//! The test re-executes its own binary under `examples/deny_io_uring` (cargo builds examples
//! before running integration tests), and the child makes the assertions. Linux only: seccomp
//! and io_uring are Linux features (elsewhere `auto` is always portable).

#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::assert_child_ok;
use uringdb_uring::{open_vfs, BackendChoice, BackendKind, OpenMode};

const CHILD_ENV: &str = "URINGDB_TEST_DENIED_CHILD";

/// Child side: runs under the seccomp filter.
#[test]
fn child_probe() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // Not a child run.
    }
    let (vfs, report) = open_vfs(BackendChoice::Auto).unwrap();
    assert_eq!(report.backend, BackendKind::Portable);
    assert_eq!(vfs.kind(), BackendKind::Portable);
    assert!(report.features.is_empty());
    let reason = report.fallback_reason.expect("a fallback reason");
    assert!(reason.contains("EPERM"), "{reason}");
    assert!(reason.contains("seccomp"), "{reason}");
    println!("fallback_reason: {reason}");

    let err = open_vfs(BackendChoice::IoUring).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains(&reason), "{err}");

    // The fallback really works.
    let path = std::env::temp_dir().join(format!("uringdb-denied-{}", std::process::id()));
    let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
    file.write_at(0, &[b"portable"], true).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(file.read_at(0, &mut buf).unwrap(), 8);
    assert_eq!(&buf, b"portable");
    std::fs::remove_file(&path).unwrap();
}

fn deny_io_uring_exe() -> PathBuf {
    // The test binary is target/<profile>/deps/fallback-<hash>; examples are in
    // target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join("deny_io_uring")
}

#[test]
fn auto_falls_back_when_seccomp_refuses_io_uring() {
    let helper = deny_io_uring_exe();
    assert!(
        helper.exists(),
        "{} missing: `cargo test -p uringdb-uring` builds examples, but `cargo test --test \
         fallback` does not; run `cargo build -p uringdb-uring --example deny_io_uring` first",
        helper.display()
    );
    let out = Command::new(&helper)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "child_probe", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    assert_child_ok("child under deny_io_uring", &out);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("fallback_reason: io_uring_setup failed with EPERM"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn auto_uses_io_uring_when_allowed() {
    if let Ok(disabled) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        if disabled.trim() != "0" {
            eprintln!(
                "SKIPPING auto_uses_io_uring_when_allowed: kernel.io_uring_disabled={}",
                disabled.trim()
            );
            return;
        }
    }
    let (vfs, report) = open_vfs(BackendChoice::Auto).unwrap();
    assert_eq!(
        report.backend,
        BackendKind::IoUring,
        "fallback: {:?}",
        report.fallback_reason
    );
    assert_eq!(vfs.kind(), BackendKind::IoUring);
    assert_eq!(report.fallback_reason, None);
    for needed in ["op:WRITEV", "op:FSYNC"] {
        assert!(
            report.features.iter().any(|f| f == needed),
            "{needed} missing from {:?}",
            report.features
        );
    }
    println!("features: {:?}", report.features);
}
