//! Appends and reads through the public API: sequence numbers, batches, segment rolls,
//! reopen, truncation, sync: false, many producer threads.
mod common;
use common::*;
use uringdb_wal::{BackendChoice, Wal, WalOptions};

fn backends() -> Vec<BackendChoice> {
    vec![BackendChoice::IoUring, BackendChoice::Portable]
}

fn opts(b: BackendChoice) -> WalOptions {
    WalOptions {
        backend: b,
        ..small_options()
    }
}

#[test]
fn append_read_roundtrip_with_rolls_and_reopen() {
    for b in backends() {
        let dir = TempDir::new("rt");
        let n = 15_000u64; // ~2.5 MiB of records: several 1 MiB segments
        {
            let (wal, rep) = Wal::open(dir.path(), &opts(b)).unwrap();
            assert_eq!(rep.last_seq, 0);
            let (p, sink) = producer(&wal);
            for i in 1..=n {
                p.append(&record(i), i % 3 != 0).unwrap();
            }
            p.sync().unwrap();
            let out = sink.wait(n as usize + 1);
            for (i, o) in out.iter().take(n as usize).enumerate() {
                assert_eq!(*o, Outcome::Ok(i as u64 + 1));
            }
            assert_eq!(
                out[n as usize],
                Outcome::Ok(n),
                "sync completes with the watermark"
            );
            assert_eq!(wal.last_seq(), n);
            assert!(wal.stats().segments > 1, "rolled over segments");
            let all = read_all(&wal).unwrap();
            assert_eq!(all.len(), n as usize);
            for (seq, data) in &all {
                assert_eq!(data, &record(*seq));
            }
            wal.close().unwrap();
        }
        let (wal, rep) = Wal::open(dir.path(), &opts(b)).unwrap();
        assert_eq!(rep.last_seq, n);
        assert_eq!(rep.truncated_bytes, 0);
        let (p, sink) = producer(&wal);
        p.append(b"after reopen", true).unwrap();
        assert_eq!(sink.wait(1)[0], Outcome::Ok(n + 1));
        let tail = read_from(&wal, n - 2).unwrap();
        assert_eq!(tail.len(), 4);
        assert_eq!(tail[3], (n + 1, b"after reopen".to_vec()));
    }
}

#[test]
fn append_many_gets_contiguous_seqs() {
    let dir = TempDir::new("many");
    let (wal, _) = Wal::open(dir.path(), &small_options()).unwrap();
    let (p, sink) = producer(&wal);
    p.append(b"a", true).unwrap();
    let recs: Vec<Vec<u8>> = (0..100).map(record).collect();
    let refs: Vec<&[u8]> = recs.iter().map(|r| &r[..]).collect();
    p.append_many(&refs, true).unwrap();
    p.append(b"z", true).unwrap();
    let out = sink.wait(102);
    let seqs: Vec<u64> = out
        .iter()
        .map(|o| match o {
            Outcome::Ok(s) => *s,
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(seqs, (1..=102).collect::<Vec<_>>());
    let all = read_all(&wal).unwrap();
    assert_eq!(all[1].1, record(0));
    assert_eq!(all[100].1, record(99));
}

#[test]
fn limits_are_enforced() {
    let dir = TempDir::new("limits");
    let o = WalOptions {
        max_record_bytes: Some(1000),
        ..small_options()
    };
    let (wal, _) = Wal::open(dir.path(), &o).unwrap();
    let (p, _sink) = producer(&wal);
    assert!(p.append(&[0u8; 1000], true).is_ok());
    let e = p.append(&[0u8; 1001], true).unwrap_err();
    assert!(
        matches!(
            e,
            uringdb_wal::WalError::TooLarge {
                bytes: 1001,
                limit: 1000
            }
        ),
        "{e}"
    );
    // A batch whose total exceeds what one entry may hold.
    let big = vec![0u8; 1000];
    // 600 framed records of 1016 bytes: more than half the 1 MiB ring.
    let refs: Vec<&[u8]> = (0..600).map(|_| &big[..]).collect();
    assert!(matches!(
        p.append_many(&refs, true).unwrap_err(),
        uringdb_wal::WalError::BatchTooLarge {
            bytes: 609_600,
            limit: 524_288
        }
    ));
    for (field, o) in [
        (
            "segmentBytes",
            WalOptions {
                segment_bytes: 1000,
                ..WalOptions::default()
            },
        ),
        (
            "ringBytes",
            WalOptions {
                ring_bytes: 3 << 20,
                ..WalOptions::default()
            },
        ),
        (
            "commitDelayUs",
            WalOptions {
                commit_delay_us: 10_000_000,
                ..WalOptions::default()
            },
        ),
        (
            "maxRecordBytes",
            WalOptions {
                max_record_bytes: Some(0),
                ..WalOptions::default()
            },
        ),
    ] {
        let d = TempDir::new("opt");
        match Wal::open(d.path(), &o) {
            Err(uringdb_wal::WalError::InvalidOption { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn sync_false_becomes_durable_when_idle_and_on_sync() {
    let dir = TempDir::new("nosync");
    let (wal, _) = Wal::open(dir.path(), &small_options()).unwrap();
    let (p, sink) = producer(&wal);
    for i in 0..100 {
        p.append(&record(i), false).unwrap();
    }
    sink.wait(100);
    // The idle committer syncs on its own: the watermark reaches 100 without a sync call.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.last_seq() < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "idle sync never happened"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    p.sync().unwrap();
    assert_eq!(sink.wait(101)[100], Outcome::Ok(100));
}

#[test]
fn truncate_before_deletes_whole_segments_only() {
    let dir = TempDir::new("trunc");
    let (wal, _) = Wal::open(dir.path(), &small_options()).unwrap();
    let (p, sink) = producer(&wal);
    let n = 20_000u64;
    for i in 1..=n {
        p.append(&record(i), false).unwrap();
    }
    p.sync().unwrap();
    sink.wait(n as usize + 1);
    let segs = wal.stats().segments;
    assert!(segs >= 4, "{segs}");
    let cut = n / 2;
    let removed = wal.truncate_before(cut).unwrap();
    assert!(removed >= 1);
    let first = wal.first_seq();
    assert!(first <= cut && first > 1, "first={first}");
    assert!(matches!(
        read_from(&wal, 1).unwrap_err(),
        uringdb_wal::WalError::Truncated { .. }
    ));
    let rest = read_from(&wal, cut).unwrap();
    assert_eq!(rest.len() as u64, n - cut + 1);
    assert_eq!(rest[0], (cut, record(cut)));
    wal.close().unwrap();
    drop(wal);
    let (wal, rep) = Wal::open(dir.path(), &small_options()).unwrap();
    assert_eq!(rep.last_seq, n);
    assert_eq!(wal.first_seq(), first);
    assert_eq!(read_all(&wal).unwrap().len() as u64, n - first + 1);
}

#[test]
fn many_threads_append_concurrently() {
    let dir = TempDir::new("threads");
    let (wal, _) = Wal::open(dir.path(), &small_options()).unwrap();
    let wal = std::sync::Arc::new(wal);
    let threads = 4u64;
    let per = 3000u64;
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let (p, sink) = producer(&wal);
                for i in 0..per {
                    let mut r = t.to_le_bytes().to_vec();
                    r.extend_from_slice(&i.to_le_bytes());
                    if i % 50 == 0 {
                        p.append_many(&[&r[..], &r[..]], true).unwrap();
                    } else {
                        p.append(&r, i % 2 == 0).unwrap();
                    }
                }
                let n = per + per.div_ceil(50);
                let out = sink.wait(n as usize);
                let mut last = 0;
                for o in out {
                    let Outcome::Ok(s) = o else { panic!("{o:?}") };
                    assert!(s > last, "a producer's completions are in order");
                    last = s;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let all = read_all(&wal).unwrap();
    let expect = threads * (per + per.div_ceil(50));
    assert_eq!(all.len() as u64, expect);
    let mut seen = std::collections::HashMap::new();
    for (i, (seq, data)) in all.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        *seen.entry(data.clone()).or_insert(0) += 1;
    }
    assert_eq!(seen.len() as u64, threads * per);
    let st = wal.stats();
    assert!(st.groups < st.appends, "group commit formed groups: {st:?}");
}

#[test]
fn close_drains_pending_and_rejects_later_appends() {
    let dir = TempDir::new("close");
    let (wal, _) = Wal::open(dir.path(), &small_options()).unwrap();
    let (p, sink) = producer(&wal);
    for i in 0..5000 {
        p.append(&record(i), true).unwrap();
    }
    wal.close().unwrap();
    let out = sink.wait(5000);
    assert!(out.iter().all(|o| matches!(o, Outcome::Ok(_))));
    assert!(matches!(
        p.append(b"x", true),
        Err(uringdb_wal::WalError::Closed)
    ));
    drop(p);
    drop(wal);
    let (wal, _) = Wal::open(dir.path(), &small_options()).unwrap();
    assert_eq!(wal.last_seq(), 5000);
}

#[test]
fn second_open_in_another_process_is_locked() {
    if std::env::var("WAL_LOCK_CHILD").is_ok() {
        let dir = std::env::var("WAL_LOCK_CHILD").unwrap();
        match Wal::open(std::path::Path::new(&dir), &small_options()) {
            Err(uringdb_wal::WalError::Locked(_)) => std::process::exit(42),
            other => panic!("expected Locked, got {other:?}"),
        }
    }
    let dir = TempDir::new("lock");
    let (_wal, _) = Wal::open(dir.path(), &small_options()).unwrap();
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_open_in_another_process_is_locked",
            "--nocapture",
        ])
        .env("WAL_LOCK_CHILD", dir.path())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(42));
}

/// Regression: a commit group that did not fit in the rest of the active segment was written
/// whole into a new one, leaving the old segment nearly empty (a test saw 46 records in a
/// 1 MiB segment). Groups now end at the segment boundary.
#[test]
fn regression_large_groups_fill_segments_before_rolling() {
    let dir = TempDir::new("fill");
    // A long commit delay makes every group as large as possible.
    // A long commit delay and a ring larger than a segment make groups as large as a
    // segment: under the old behaviour each roll left most of a segment unused.
    let o = WalOptions {
        commit_delay_us: 20_000,
        ring_bytes: 4 << 20,
        ..small_options()
    };
    let (wal, _) = Wal::open(dir.path(), &o).unwrap();
    let (p, sink) = producer(&wal);
    let rec = vec![7u8; 4000];
    let n = 1500; // ~6 MiB: several 1 MiB segments, in groups of up to ~1 MiB
    for _ in 0..n {
        p.append(&rec, true).unwrap();
    }
    sink.wait(n);
    wal.close().unwrap();
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 5, "{segs:?}");
    let frame = uringdb_wal::format::frame_bytes(rec.len()) as u64;
    for seg in &segs[..segs.len() - 1] {
        let bytes = std::fs::read(seg).unwrap();
        let number = uringdb_wal::format::parse_segment_file_name(
            seg.file_name().unwrap().to_str().unwrap(),
        )
        .unwrap();
        let salt = uringdb_wal::format::segment_salt(uringdb_wal::format::SEGMENT_VERSION, number);
        let mut off = uringdb_wal::format::SEGMENT_HEADER_BYTES;
        while let Ok(f) = uringdb_wal::format::decode_frame_salted(&bytes[off..], salt) {
            off += f.total;
        }
        let unused = bytes.len() as u64 - off as u64;
        assert!(
            unused < frame,
            "{}: {unused} bytes left unused, less than one record ({frame}) may be",
            seg.display()
        );
    }
}

/// Regression: append counters were updated after the group's completions went out, so a
/// caller whose append had completed could read stale stats.
#[test]
fn regression_stats_count_an_append_by_the_time_it_completes() {
    let dir = TempDir::new("stats");
    let (wal, _) = Wal::open(dir.path(), &small_options()).unwrap();
    let (p, sink) = producer(&wal);
    for i in 1..=200u64 {
        p.append(&record(i), true).unwrap();
        sink.wait(i as usize);
        let st = wal.stats();
        assert!(
            st.appends >= i,
            "after {i} completions stats().appends = {}",
            st.appends
        );
        assert!(st.groups >= 1);
    }
}
