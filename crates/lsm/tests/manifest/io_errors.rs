//! I/O errors.

use super::common::{TempDir, EIO, ENOSPC};
use super::helpers::*;
use uringdb_lsm::manifest::{manifest_file_name, recover, ManifestWriter, VersionEdit};
use uringdb_uring::{FaultConfig, FaultVfs};

#[test]
fn a_failed_append_keeps_its_errno_and_latches() {
    for errno in [EIO, ENOSPC] {
        let dir = TempDir::new("latch");
        let fault = FaultVfs::new(
            portable(),
            FaultConfig {
                // create syncs the manifest and the temporary CURRENT; the first append
                // syncs third.
                fail_sync_nth: Some(3),
                errno,
                ..FaultConfig::default()
            },
        );
        let mut state = base_state();
        let mut w = ManifestWriter::create(fault.clone(), dir.path(), 1, &state).unwrap();
        let e = valid_edit(&mut Rng::new(3), &state);
        let err = w.append(&e).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(errno), "{err}");
        assert!(w.failed());
        let size = w.file_bytes();
        let again = w.append(&VersionEdit::default()).unwrap_err();
        assert_eq!(again.raw_os_error(), Some(errno), "{again}");
        assert!(again.to_string().contains("earlier"), "{again}");
        assert_eq!(w.file_bytes(), size);
        // std::error::Error::source reaches the io::Error.
        let source = std::error::Error::source(&again).expect("source");
        assert!(source.to_string().contains(if errno == EIO {
            "Input/output"
        } else {
            "space"
        }));
        drop(w);
        // The failed edit is not in the manifest; a new manifest continues.
        fault.crash();
        let r = recover(&*fault, dir.path(), CMP).unwrap().unwrap();
        assert_eq!(r.state, state);
        state.next_file_number += 1;
        ManifestWriter::create(fault.clone(), dir.path(), 10, &state).unwrap();
        assert_eq!(recovered(dir.path()).state, state);
    }
}

#[test]
fn a_failed_create_keeps_its_errno_and_the_old_manifest() {
    let dir = TempDir::new("failcreate");
    let (states, _) = write_manifest(dir.path(), 1, 21);
    let fault = FaultVfs::new(
        portable(),
        FaultConfig {
            fail_write_after_bytes: Some(10),
            errno: ENOSPC,
            ..FaultConfig::default()
        },
    );
    let mut state = states.last().unwrap().clone();
    let n = state.next_file_number;
    state.next_file_number += 1;
    let err = ManifestWriter::create(fault.clone(), dir.path(), n, &state).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(ENOSPC), "{err}");
    assert!(!dir.path().join(manifest_file_name(n)).exists());
    let r = recovered(dir.path());
    assert_eq!((r.manifest_number, &r.state), (1, states.last().unwrap()));
}
