//! The manifest targets (`uringdb-lsm`'s `manifest/`): record payloads (version edits),
//! CURRENT, and whole manifest files through `manifest::recover`.

use std::fs;

use uringdb_lsm::manifest::{self, ManifestState, VersionEdit};

use super::env::Env;
use super::limits::{FIXED_BYTES_DEFAULT, STRUCT_EXPANSION};
use super::target::{nothing_declared, Target};

/// The manifest targets, in `--list` order.
pub(super) fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "manifest_edit",
            about: "a manifest record payload: VersionEdit::decode, apply to a state, \
                    snapshot round trip",
            max_len: 16 << 10,
            declared: nothing_declared,
            expansion: STRUCT_EXPANSION,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.edits.clone(),
            run: run_manifest_edit,
            fixup: None,
        },
        Target {
            name: "manifest_current",
            about: "the contents of CURRENT",
            max_len: 128,
            declared: nothing_declared,
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.currents.clone(),
            run: |_, input| match manifest::fuzzing::parse_current(input) {
                Ok(n) => {
                    let canonical = format!("{}\n", manifest::manifest_file_name(n));
                    assert_eq!(
                        canonical.as_bytes(),
                        input,
                        "CURRENT accepted only canonical"
                    );
                    true
                }
                Err((offset, _)) => {
                    assert!(offset <= input.len() as u64, "offset within CURRENT");
                    false
                }
            },
            fixup: None,
        },
        Target {
            name: "manifest",
            about: "a whole MANIFEST file: manifest::recover with and without CURRENT, \
                    snapshot round trip",
            max_len: 64 << 10,
            declared: nothing_declared,
            expansion: STRUCT_EXPANSION,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.manifests.clone(),
            run: run_manifest,
            fixup: Some(|b| reseal_manifest(b)),
        },
    ]
}

/// Replaying the snapshot of `state` from scratch gives `state` again.
fn assert_snapshot_round_trip(state: &ManifestState) {
    let snap = state.snapshot_edit();
    let mut bytes = Vec::new();
    snap.encode(&mut bytes);
    let decoded = match VersionEdit::decode(&bytes) {
        Ok(e) => e,
        Err(e) => panic!("a snapshot does not decode: {e}"),
    };
    assert_eq!(decoded, snap, "snapshot edit round trip");
    let mut again = ManifestState::new(&state.comparator);
    if let Err(e) = again.apply(&decoded) {
        panic!("a snapshot does not apply to a fresh state: {e}");
    }
    assert_eq!(&again, state, "snapshot replay gives another state");
}

fn run_manifest_edit(_: &Env, input: &[u8]) -> bool {
    let Ok(edit) = VersionEdit::decode(input) else {
        return false;
    };
    let mut bytes = Vec::new();
    edit.encode(&mut bytes);
    assert_eq!(
        VersionEdit::decode(&bytes).as_ref(),
        Ok(&edit),
        "edit round trip"
    );
    let comparator = edit
        .comparator
        .clone()
        .unwrap_or_else(|| "uringdb.internal_key.v1".into());
    let mut state = ManifestState::new(&comparator);
    if state.apply(&edit).is_ok() {
        assert_snapshot_round_trip(&state);
    }
    true
}

fn run_manifest(env: &Env, input: &[u8]) -> bool {
    let dir = env.fresh_dir("manifest");
    let name = manifest::manifest_file_name(1);
    let current = dir.join(manifest::CURRENT_FILE_NAME);
    let written = fs::write(dir.join(&name), input).is_ok()
        && fs::write(&current, format!("{name}\n")).is_ok();
    if !written {
        return false;
    }
    let comparator = "uringdb.internal_key.v1";
    let accepted = match manifest::recover(&*env.vfs, &dir, comparator) {
        Ok(Some(r)) => {
            assert_snapshot_round_trip(&r.state);
            assert!(
                r.torn_tail_bytes <= input.len() as u64,
                "cut more than the file"
            );
            true
        }
        Ok(None) => panic!("CURRENT exists, yet recovery found a new database"),
        Err(_) => false,
    };
    // Without CURRENT, recovery decides whether the manifest held data.
    if fs::remove_file(&current).is_ok() {
        let _ = manifest::recover(&*env.vfs, &dir, comparator);
    }
    accepted
}

pub(super) fn reseal_manifest(b: &mut [u8]) {
    if b.len() >= manifest::MANIFEST_HEADER_BYTES {
        let crc = crc32c::crc32c(&b[..24]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
    }
    let mut at = manifest::MANIFEST_HEADER_BYTES;
    while at + manifest::RECORD_HEADER_BYTES <= b.len() {
        let len = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let start = at + manifest::RECORD_HEADER_BYTES;
        let Some(end) = start.checked_add(len).filter(|&e| e <= b.len()) else {
            break;
        };
        let crc = crc32c::crc32c_append(crc32c::crc32c(&b[at..at + 4]), &b[start..end]);
        b[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}
