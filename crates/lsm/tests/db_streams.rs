//! Streams in the database (issue 11): appends in a batch get gapless stream seqs at apply,
//! in log order; recovery assigns the same numbers; state and stream entries of one batch
//! are all or nothing across a crash that drops unsynced data.
//!
//! Rerun one crash seed with `STREAM_CRASH_SEED=<n> cargo test -p uringdb-lsm --test
//! db_streams -- --nocapture`.

mod common;

use std::collections::BTreeMap;

use common::{small_db, TempDir, XorShift as Rng};
use uringdb_lsm::db::batch::{ReadItem, WriteBatch};
use uringdb_lsm::db::{Db, DbError, DbOptions, StreamInfo};
use uringdb_wal::{BackendChoice, FaultConfig, FaultVfs};

/// Stream name → its entries' (seq, data), in seq order.
type Streams = BTreeMap<String, Vec<(u64, Vec<u8>)>>;

fn options() -> DbOptions {
    DbOptions {
        memtable_bytes: 64 << 10,
        l0_compaction_trigger: 2,
        level_base_bytes: 1 << 20,
        target_file_bytes: 64 << 10,
        block_bytes: 1024,
        ..small_db(BackendChoice::Portable)
    }
}

fn read_stream(db: &Db, name: &str, from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut it = db.stream_iter(name.as_bytes(), from, None, None).unwrap();
    let mut out = Vec::new();
    loop {
        let b = it.next_batch(97, 1 << 16).unwrap();
        let mut at = 0;
        for (i, &seq) in b.seqs.iter().enumerate() {
            let n = b.lens[i] as usize;
            out.push((seq, b.data[at..at + n].to_vec()));
            at += n;
        }
        if b.done {
            return out;
        }
    }
}

fn read_all(db: &Db, names: &[String]) -> Streams {
    names
        .iter()
        .map(|n| (n.clone(), read_stream(db, n, 1)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn info(db: &Db, name: &str) -> StreamInfo {
    db.stream_info(name.as_bytes()).unwrap()
}

#[test]
fn appends_get_gapless_seqs_in_log_order_and_read_back() {
    let dir = TempDir::new("streams-basic");
    let db = Db::open(dir.path(), small_db(BackendChoice::Portable)).unwrap();
    assert_eq!(
        info(&db, "out"),
        StreamInfo {
            first_seq: 1,
            last_seq: 0
        }
    );
    let w = db.blocking_writer();
    let mut b = WriteBatch::new();
    b.put(b"k1", b"v1")
        .append(b"out", 10, b"a")
        .append(b"other", 11, b"x")
        .append(b"out", 12, b"b");
    w.write(&b, true).unwrap();
    let mut b = WriteBatch::new();
    b.append(b"out", 13, b"c");
    w.write(&b, true).unwrap();
    assert_eq!(
        info(&db, "out"),
        StreamInfo {
            first_seq: 1,
            last_seq: 3
        }
    );
    assert_eq!(info(&db, "other").last_seq, 1);
    assert_eq!(
        read_stream(&db, "out", 1),
        vec![(1, b"a".to_vec()), (2, b"b".to_vec()), (3, b"c".to_vec())]
    );
    assert_eq!(read_stream(&db, "out", 3), vec![(3, b"c".to_vec())]);
    assert!(read_stream(&db, "out", 4).is_empty());
    // A stream whose name extends another's is its own range.
    assert!(read_stream(&db, "ou", 1).is_empty());
    let mut it = db.stream_iter(b"out", 1, Some(2), None).unwrap();
    let batch = it.next_batch(10, 1 << 20).unwrap();
    assert_eq!(
        (batch.seqs, batch.appended_at_ms, batch.done),
        (vec![1, 2], vec![10, 12], true)
    );
    // State reads never see the stream tree.
    let mut scan = db.iter(Default::default(), None);
    let s = scan.next_batch(100, 1 << 20).unwrap();
    assert_eq!((s.lens.len() / 2, &s.data[..]), (1, &b"k1v1"[..]));
    drop(w);
    db.close().unwrap();
}

#[test]
fn bad_names_and_unsupported_places_are_errors_naming_the_field() {
    let dir = TempDir::new("streams-bad");
    let db = Db::open(dir.path(), small_db(BackendChoice::Portable)).unwrap();
    let w = db.blocking_writer();
    let invalid = |r: Result<u64, DbError>| match r {
        Err(DbError::InvalidArgument(m)) => m,
        other => panic!("expected an invalid argument, got {other:?}"),
    };
    for (name, needle) in [
        (&b""[..], "stream must be 1..=128 bytes, got 0"),
        (&[b'a'; 129][..], "stream must be 1..=128 bytes, got 129"),
        (b"has space", "stream must be ASCII"),
        (b"$changes", "stream must be ASCII"),
    ] {
        let mut b = WriteBatch::new();
        b.put(b"k", b"v").append(name, 1, b"x");
        let m = invalid(w.write(&b, true));
        assert!(m.contains(needle) && m.contains("operation 1"), "{m}");
    }
    for name in [&b""[..], b"a b"] {
        assert!(
            matches!(db.stream_info(name), Err(DbError::InvalidArgument(m)) if m.starts_with("stream must"))
        );
        assert!(db.stream_iter(name, 1, None, None).is_err());
    }
    // Nothing of the refused batches was written.
    assert_eq!(db.get(b"k", None).unwrap(), None);
    // A bad name in an optimistic transaction's appends is refused the same way.
    let mut b = WriteBatch::new();
    b.append(b"bad name", 1, b"x");
    let rec = uringdb_lsm::db::batch::encode_optimistic(0, &[], &b);
    let m = match uringdb_lsm::db::batch::validate(&rec) {
        Err(DbError::InvalidArgument(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.starts_with("stream must be ASCII"), "{m}");
    drop(w);
    db.close().unwrap();
}

/// Random batches of puts and appends over a few streams, with flushes between some: every
/// reopen reads the same streams, and appends after it continue the numbering (replay
/// assigns the numbers it assigned before, from the meta keys flushed at F).
#[test]
fn replay_assigns_same_seqs() {
    let names: Vec<String> = ["a", "b", "c.d", "c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for seed in 1..=4u64 {
        let dir = TempDir::new(&format!("streams-replay-{seed}"));
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut model = Streams::new();
        for epoch in 0..4 {
            let db = Db::open(dir.path(), options()).unwrap();
            assert_eq!(
                read_all(&db, &names),
                model,
                "seed {seed} epoch {epoch}: reopened"
            );
            for n in &names {
                let last = model.get(n).map_or(0, |v| v.len() as u64);
                assert_eq!(
                    info(&db, n).last_seq,
                    last,
                    "seed {seed} epoch {epoch}: {n}"
                );
            }
            let w = db.blocking_writer();
            for i in 0..100 + r.below(300) {
                let mut b = WriteBatch::new();
                b.put(format!("k{}", r.below(50)).as_bytes(), &[b'v'; 100]);
                for _ in 0..r.below(4) {
                    let n = &names[r.below(names.len() as u64) as usize];
                    let mut data = format!("e{epoch}i{i}").into_bytes();
                    data.resize(data.len() + r.below(300) as usize, b'.');
                    b.append(n.as_bytes(), i, &data);
                    let s = model.entry(n.clone()).or_default();
                    s.push((s.len() as u64 + 1, data));
                }
                w.write(&b, r.below(2) == 0).unwrap();
                if r.below(150) == 0 {
                    db.flush().unwrap();
                }
            }
            assert_eq!(
                read_all(&db, &names),
                model,
                "seed {seed} epoch {epoch}: live"
            );
            assert!(db.stats().flushes > 0 || epoch == 0);
            drop(w);
            db.close().unwrap();
        }
        // The stream tree reached tables, so the manifest is at version 2.
        let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
        let m = std::fs::read(dir.path().join(current.trim())).unwrap();
        assert_eq!(m[8..12], 2u32.to_le_bytes(), "seed {seed}");
    }
}

/// A database that never appended keeps writing a version-1 manifest (readable by a build
/// before streams), flushes included.
#[test]
fn a_database_without_streams_keeps_manifest_version_1() {
    let dir = TempDir::new("streams-v1");
    let db = Db::open(dir.path(), options()).unwrap();
    let w = db.blocking_writer();
    for i in 0..2000u32 {
        w.put(&i.to_be_bytes(), &[b'v'; 100]).unwrap();
    }
    db.flush().unwrap();
    assert!(db.stats().flushes > 0);
    drop(w);
    db.close().unwrap();
    let current = std::fs::read_to_string(dir.path().join("CURRENT")).unwrap();
    let m = std::fs::read(dir.path().join(current.trim())).unwrap();
    assert_eq!(m[8..12], 1u32.to_le_bytes());
}

/// Batches `{put k<i>, append s <i>}` on a layer that drops unsynced bytes at a random
/// moment: after the reopen each batch is wholly there or wholly gone, the ones there are a
/// prefix of the issued ones covering every acknowledged `sync` write, and the stream is
/// gapless with the data in issue order. Two reopens in a row read the same.
#[test]
fn state_and_stream_of_one_batch_are_all_or_nothing_across_a_crash() {
    let seeds: Vec<u64> = match std::env::var("STREAM_CRASH_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => (1..=6).collect(),
    };
    let all = seeds.len() > 1;
    let (mut lost, mut flushes) = (0, 0);
    for seed in seeds {
        let dir = TempDir::new(&format!("streams-crash-{seed}"));
        let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
        let vfs = FaultVfs::new(inner, FaultConfig::default());
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut issued = 0u64; // batches of earlier epochs that survived, then this epoch's
        for epoch in 0..3 {
            let ctx = format!("seed {seed} epoch {epoch}");
            let db = Db::open_on(dir.path(), options(), vfs.clone()).unwrap();
            let w = db.blocking_writer();
            let mut required = issued;
            let writes = 50 + r.below(250);
            for i in issued..issued + writes {
                let mut b = WriteBatch::new();
                let data = format!("{i:08}").into_bytes();
                b.put(format!("k{i:08}").as_bytes(), &data)
                    .append(b"s", i, &data);
                // The last few of an epoch are unsynced, so that the crash has something
                // to drop (earlier unsynced ones are usually covered by a later sync).
                let sync = r.below(3) != 0 && i + 5 < issued + writes;
                w.write(&b, sync)
                    .unwrap_or_else(|e| panic!("{ctx}: write {i}: {e}"));
                if sync {
                    required = i + 1;
                }
                if r.below(80) == 0 {
                    // Both trees reach tables with one flushed seq (and the log is cut).
                    db.flush().unwrap();
                    flushes += 1;
                }
            }
            match r.below(3) {
                0 => vfs.crash(),
                1 => vfs.crash_torn(seed << 8 | epoch),
                _ => vfs.crash_pages(seed << 8 | epoch),
            }
            drop(w);
            let _ = db.close();
            drop(db);
            let mut seen = None;
            for reopen in 0..2 {
                let db = Db::open_on(dir.path(), options(), vfs.clone())
                    .unwrap_or_else(|e| panic!("{ctx}: reopen {reopen}: {e}"));
                let s = read_stream(&db, "s", 1);
                let n = s.len() as u64;
                assert!(n >= required, "{ctx}: {n} entries, {required} acknowledged");
                assert!(
                    n <= issued + writes,
                    "{ctx}: {n} entries, {} issued",
                    issued + writes
                );
                for (j, (seq, data)) in s.iter().enumerate() {
                    assert_eq!(*seq, j as u64 + 1, "{ctx}: gap");
                    assert_eq!(data, format!("{j:08}").as_bytes(), "{ctx}: order");
                }
                // The state holds exactly the batches whose append survived.
                for i in (n.saturating_sub(3))..(n + 3).min(issued + writes) {
                    let got = db.get(format!("k{i:08}").as_bytes(), None).unwrap();
                    assert_eq!(got.is_some(), i < n, "{ctx}: key {i} with {n} entries");
                }
                assert_eq!(info(&db, "s").last_seq, n, "{ctx}");
                if let Some(prev) = seen.replace(s.clone()) {
                    assert_eq!(prev, s, "{ctx}: two reopens read differently");
                }
                if reopen == 1 {
                    if n < issued + writes {
                        lost += 1;
                    }
                    issued = n;
                }
                db.close().unwrap();
            }
        }
    }
    println!("epochs that lost unsynced batches: {lost}, flushes: {flushes}");
    assert!(
        !all || (lost > 0 && flushes > 0),
        "vacuous: {lost} lost, {flushes} flushes"
    );
}

/// `tail`'s waits: woken when the stream grows past the seq waited after (at once if it
/// has), not by other streams; cancelled and closed waits end with their outcome.
#[test]
fn stream_waits_wake_on_growth_cancel_and_close() {
    use std::sync::mpsc::channel;
    use uringdb_lsm::db::StreamWaitOutcome as O;
    let dir = TempDir::new("streams-wait");
    let db = Db::open(dir.path(), small_db(BackendChoice::Portable)).unwrap();
    let w = db.blocking_writer();
    let append = |stream: &[u8]| {
        let mut b = WriteBatch::new();
        b.append(stream, 1, b"x");
        w.write(&b, true).unwrap();
    };
    let (tx, rx) = channel();
    let wait = |after: u64| {
        let tx = tx.clone();
        db.stream_wait(b"s", after, Box::new(move |o| tx.send((after, o)).unwrap()))
            .unwrap()
    };
    let first = wait(0);
    assert_ne!(first, 0, "registered");
    let second = wait(1);
    append(b"other");
    assert!(rx.try_recv().is_err(), "another stream does not wake it");
    append(b"s");
    assert_eq!(rx.recv().unwrap(), (0, O::Ready(1)));
    assert!(rx.try_recv().is_err(), "the wait after 1 still waits");
    // Already satisfied: woken at once, no id.
    assert_eq!(wait(0), 0);
    assert_eq!(rx.recv().unwrap(), (0, O::Ready(1)));
    db.stream_wait_cancel(second);
    assert_eq!(rx.recv().unwrap(), (1, O::Cancelled));
    db.stream_wait_cancel(second); // twice: nothing
    let third = wait(5);
    assert_ne!(third, 0);
    assert!(matches!(
        db.stream_wait(b"bad name", 0, Box::new(|_| {})),
        Err(DbError::InvalidArgument(m)) if m.starts_with("stream must")
    ));
    drop(w);
    db.close().unwrap();
    assert_eq!(rx.recv().unwrap(), (5, O::Closed));
    assert!(rx.try_recv().is_err());
}

/// Appends in a prepare get their seqs when the commit is applied (after appends committed
/// in between), a rollback consumes none, and a prepared append survives a restart listed
/// with its stream and is numbered by a commit after it.
#[test]
fn prepared_appends_are_numbered_at_commit_and_rollback_consumes_none() {
    let dir = TempDir::new("streams-prepare");
    let db = Db::open(dir.path(), options()).unwrap();
    let w = db.blocking_writer();
    let one = |stream: &[u8], data: &[u8]| {
        let mut b = WriteBatch::new();
        b.append(stream, 7, data);
        b
    };
    let mut p = WriteBatch::new();
    p.put(b"k", b"v").append(b"s", 7, b"prepared-a");
    w.prepare("a", &p).unwrap();
    w.prepare("b", &one(b"s", b"prepared-b")).unwrap();
    w.prepare("c", &one(b"s", b"prepared-c")).unwrap();
    assert_eq!(info(&db, "s").last_seq, 0, "a prepare assigns nothing");
    w.write(&one(b"s", b"plain"), true).unwrap();
    w.finish_prepared("a", true).unwrap();
    w.finish_prepared("b", false).unwrap();
    assert_eq!(
        read_stream(&db, "s", 1),
        vec![(1, b"plain".to_vec()), (2, b"prepared-a".to_vec())]
    );
    assert_eq!(db.get(b"k", None).unwrap().as_deref(), Some(&b"v"[..]));
    let listed = db.prepared_transactions();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ops[0].stream.as_deref(), Some("s"));
    assert_eq!(listed[0].ops[0].value.as_deref(), Some(&b"prepared-c"[..]));
    drop(w);
    db.close().unwrap();
    // After a restart (and a flush in between on the second one) the same.
    for round in 0..2 {
        let db = Db::open(dir.path(), options()).unwrap();
        assert_eq!(db.prepared_transactions().len(), 1, "round {round}");
        assert_eq!(info(&db, "s").last_seq, 2, "round {round}");
        db.flush().unwrap();
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), options()).unwrap();
    let w = db.blocking_writer();
    w.finish_prepared("c", true).unwrap();
    assert_eq!(
        read_stream(&db, "s", 2),
        vec![(2, b"prepared-a".to_vec()), (3, b"prepared-c".to_vec())]
    );
    drop(w);
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(
        info(&db, "s").last_seq,
        3,
        "the commit's number is replayed"
    );
    assert_eq!(read_stream(&db, "s", 3), vec![(3, b"prepared-c".to_vec())]);
    db.close().unwrap();
}

/// Appends inside optimistic transactions: a committed transaction's appends get their
/// stream seqs at apply, in order after what was applied before it; a refused attempt
/// (a conflict) appends nothing and uses no seq, so the stream stays gapless; after a crash
/// (with a flush between), replay reaches the same decisions and the same numbers.
#[test]
fn optimistic_transactions_append_only_when_they_commit() {
    let dir = TempDir::new("streams-occ");
    let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
    let vfs = FaultVfs::new(inner, FaultConfig::default());
    let tx_ops = |k: &[u8], v: &[u8], data: &[u8]| {
        let mut b = WriteBatch::new();
        b.put(k, v)
            .append(b"out", 9, data)
            .append(b"audit", 9, data);
        b
    };
    let live;
    {
        let db = Db::open_on(dir.path(), options(), vfs.clone()).unwrap();
        let w = db.blocking_writer();
        let mut plain = WriteBatch::new();
        plain.append(b"out", 9, b"plain-1");
        w.write(&plain, true).unwrap();
        // `a` and `b` both read k; `a` commits first, `b` is refused.
        let a = db.begin_optimistic();
        let b = db.begin_optimistic();
        w.commit_optimistic(
            a,
            &[ReadItem::Key(b"k")],
            &tx_ops(b"k", b"a", b"from-a"),
            true,
        )
        .unwrap();
        match w.commit_optimistic(
            b,
            &[ReadItem::Key(b"k")],
            &tx_ops(b"k", b"b", b"from-b"),
            true,
        ) {
            Err(DbError::ReadConflict { .. }) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        db.flush().unwrap();
        // After the flush: `c` commits, `d` (read k, written by c) is refused.
        let c = db.begin_optimistic();
        let d = db.begin_optimistic();
        w.commit_optimistic(
            c,
            &[ReadItem::Key(b"k")],
            &tx_ops(b"k", b"c", b"from-c"),
            true,
        )
        .unwrap();
        assert!(matches!(
            w.commit_optimistic(
                d,
                &[ReadItem::Key(b"k")],
                &tx_ops(b"k", b"d", b"from-d"),
                true
            ),
            Err(DbError::ReadConflict { .. })
        ));
        // An attempt that only appends (reads nothing) always commits.
        let e = db.begin_optimistic();
        let mut only = WriteBatch::new();
        only.append(b"out", 9, b"from-e");
        w.commit_optimistic(e, &[], &only, true).unwrap();
        let want_out: Vec<(u64, Vec<u8>)> = [&b"plain-1"[..], b"from-a", b"from-c", b"from-e"]
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u64 + 1, d.to_vec()))
            .collect();
        assert_eq!(read_stream(&db, "out", 1), want_out);
        assert_eq!(
            read_stream(&db, "audit", 1),
            vec![(1, b"from-a".to_vec()), (2, b"from-c".to_vec())]
        );
        assert_eq!(db.get(b"k", None).unwrap().as_deref(), Some(&b"c"[..]));
        live = read_all(&db, &["out".to_string(), "audit".to_string()]);
        vfs.crash();
        drop(w);
        let _ = db.close();
    }
    for round in 0..2 {
        let db = Db::open_on(dir.path(), options(), vfs.clone()).unwrap();
        assert_eq!(
            read_all(&db, &["out".to_string(), "audit".to_string()]),
            live,
            "round {round}: replay decided or numbered differently"
        );
        assert_eq!(info(&db, "out").last_seq, 4, "round {round}");
        db.close().unwrap();
    }
}
