//! Replays, through the fuzz checks (no panic, allocation within the bound), every seed of
//! every target and every input kept in `crates/fuzz/regressions/<target>/`, then runs a
//! short fixed-seed mutation round per target, so that the harness itself cannot rot.
//! The time-bounded runs are the `fuzz` stage of `scripts/test.sh`.

use std::path::Path;

use uringdb_fuzz::runner::{self, Config};
use uringdb_fuzz::targets::{self, Env, Fixtures};

fn check_all(target: &targets::Target, env: &Env, inputs: &[(String, Vec<u8>)]) {
    for (name, input) in inputs {
        let (outcome, largest, limit) = runner::check(target, env, input);
        if let Err(f) = outcome {
            panic!(
                "{} {name}: {} ({largest} of {limit} bytes)\n{}\n{}",
                target.name,
                f.kind,
                f.message,
                runner::hex_dump(input, 256)
            );
        }
    }
}

#[test]
fn every_seed_passes_every_check() {
    let fixtures = Fixtures::load().expect("fixtures");
    for t in targets::all() {
        let seeds: Vec<(String, Vec<u8>)> = (t.seeds)(&fixtures)
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("seed {i}"), s))
            .collect();
        assert!(!seeds.is_empty(), "{}: no seeds", t.name);
        let env = Env::new(&format!("seeds-{}", t.name)).expect("scratch dir");
        check_all(&t, &env, &seeds);
    }
}

#[test]
fn every_kept_regression_input_passes_every_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let names: Vec<&str> = targets::all().iter().map(|t| t.name).collect();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return; // None kept yet.
    };
    for entry in dirs {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            names.contains(&name),
            "{}: no target named {name:?}",
            dir.display()
        );
    }
    for t in targets::all() {
        let dir = root.join(t.name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut inputs = Vec::new();
        for e in entries {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read input");
            inputs.push((path.display().to_string(), bytes));
        }
        inputs.sort();
        let env = Env::new(&format!("regress-{}", t.name)).expect("scratch dir");
        check_all(&t, &env, &inputs);
    }
}

#[test]
fn a_short_fixed_seed_round_of_every_target_passes() {
    let crash_dir = std::env::temp_dir().join(format!("uringdb-fuzz-test-{}", std::process::id()));
    for t in targets::all() {
        // The seeds, then 30 mutants: enough to run the mutations and fix-ups, small
        // enough for the test stage (the seeds dominate for the file-based targets).
        let seeds = (t.seeds)(&Fixtures::load().expect("fixtures")).len() as u64;
        let cfg = Config {
            seconds: None,
            iterations: Some(seeds + 30),
            seed: 1,
            hang_seconds: 120,
            crash_dir: crash_dir.clone(),
        };
        if let Err(f) = runner::run(&t, &cfg) {
            panic!("{}: {} — {}", t.name, f.kind, f.message);
        }
    }
    let _ = std::fs::remove_dir_all(&crash_dir);
}

/// Recovery read a frame by its declared length before checking it against the file: a
/// damaged length field (27 bits: up to 128 MiB) in an 8 KiB segment made `Wal::open`
/// allocate and zero that much. Found by `wal_recovery` (87 MB for a 6.6 KB file).
#[test]
fn wal_recovery_allocates_no_more_than_the_file_for_a_frame_that_claims_more() {
    use uringdb_wal::format::{segment_file_name, word0, Kind, SegmentHeader};
    use uringdb_wal::{BackendChoice, Wal, WalOptions};
    let mut seg = SegmentHeader {
        number: 1,
        first_seq: 1,
    }
    .encode()
    .to_vec();
    // A FULL frame header that claims 100 MiB of payload, in an 8 KiB file.
    seg.extend_from_slice(&word0(Kind::Full, 100 << 20, false).to_le_bytes());
    seg.extend_from_slice(&[0xAB; 12]);
    seg.resize(8192, 0);
    let env = Env::new("regress-frame-len").expect("scratch dir");
    let dir = env.fresh_dir("wal");
    std::fs::write(dir.join(segment_file_name(1)), &seg).expect("write segment");
    let opts = WalOptions {
        segment_bytes: 1 << 20,
        ring_bytes: 1 << 20,
        backend: BackendChoice::Portable,
        ..WalOptions::default()
    };
    let (opened, largest) = uringdb_fuzz::alloc::measure(|| Wal::open(&dir, &opts).map(|_| ()));
    // Tolerant or strict, the frame is a torn tail or damage: either way not data.
    let _ = opened;
    // The ring (1 MiB) and recovery's 1 MiB I/O chunk are the largest legitimate ones.
    assert!(
        largest <= (1 << 20) + (64 << 10),
        "one allocation of {largest} bytes while recovering an 8 KiB segment"
    );
}
