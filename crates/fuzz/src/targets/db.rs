//! The database targets (`uringdb-lsm`'s `db/`): the v1 database directory with one file
//! replaced, through `Db::open`, and write batches.

use std::fs;

use uringdb_lsm::db::{batch, Db, DbOptions, RangeOptions};
use uringdb_wal::RecoveryMode;

use super::env::Env;
use super::fixtures::{fixtures_dir, DB_FILES};
use super::limits::{FIXED_BYTES_DEFAULT, STEPS_MAX, STRUCT_EXPANSION};
use super::manifest::reseal_manifest;
use super::table_file::{declared_table, reseal_table};
use super::target::{nothing_declared, Target};
use super::wal::{reseal_segments, wal_options};

/// The database targets, in `--list` order.
pub(super) fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "db",
            about: "the v1 database directory with one file replaced by the input (first \
                    byte: which file): Db::open, scan everything, get, close",
            max_len: 64 << 10,
            declared: |input| match input.split_first() {
                Some((&which, file))
                    if DB_FILES[usize::from(which) % DB_FILES.len()].ends_with(".sst") =>
                {
                    declared_table(file)
                }
                _ => 0,
            },
            expansion: STRUCT_EXPANSION,
            // The database's fixed buffers: its log's commit ring and I/O chunk (1 MiB
            // each here) and its memtable's arena (1 MiB here).
            fixed_bytes: (1 << 20) + FIXED_BYTES_DEFAULT,
            seeds: |f| f.db_files.clone(),
            run: run_db,
            fixup: Some(|b| {
                if let Some((&mut which, file)) = b.split_first_mut() {
                    let name = DB_FILES[usize::from(which) % DB_FILES.len()];
                    if name.ends_with(".sst") {
                        reseal_table(file);
                    } else if name.starts_with("MANIFEST") {
                        reseal_manifest(file);
                    } else if name.ends_with(".wal") {
                        reseal_segments(file);
                    }
                }
            }),
        },
        Target {
            name: "batch",
            about: "a write batch (WAL record payload): validate and ops, rebuild",
            max_len: 16 << 10,
            declared: nothing_declared,
            // `validate` collects nothing; `ops` yields borrowed slices. The rebuild
            // check copies the batch once.
            expansion: 1,
            fixed_bytes: FIXED_BYTES_DEFAULT,
            seeds: |f| f.batches.clone(),
            run: run_batch,
            fixup: None,
        },
    ]
}

fn db_options() -> DbOptions {
    DbOptions {
        wal: wal_options(RecoveryMode::Strict),
        memtable_bytes: 1 << 20,
        ..DbOptions::default()
    }
}

fn run_db(env: &Env, input: &[u8]) -> bool {
    let Some((&which, content)) = input.split_first() else {
        return false;
    };
    let replaced = DB_FILES[usize::from(which) % DB_FILES.len()];
    let dir = env.fresh_dir("db");
    let src = fixtures_dir().join("db_v1");
    for name in DB_FILES {
        let to = dir.join(name);
        if let Some(parent) = to.parent() {
            let _ = fs::create_dir_all(parent);
        }
        let written = if name == replaced {
            fs::write(&to, content)
        } else {
            fs::copy(src.join(name), &to).map(|_| ())
        };
        if written.is_err() {
            return false;
        }
    }
    let Ok(db) = Db::open(&dir, db_options()) else {
        return false;
    };
    let mut it = db.iter(RangeOptions::default(), None);
    for _ in 0..STEPS_MAX {
        match it.next_batch(1000, 1 << 20) {
            Ok(b) if !b.done => {}
            _ => break,
        }
    }
    drop(it);
    for key in [&b"key0003"[..], b"unflushed", b""] {
        let _ = db.get(key, None);
    }
    let _ = db.close();
    true
}

/// Re-encodes one decoded operation.
fn add_op(b: &mut batch::WriteBatch, op: batch::Op<'_>) {
    match op {
        batch::Op::Put(k, v) => b.put(k, v),
        batch::Op::Delete(k) => b.delete(k),
        batch::Op::Append {
            stream,
            appended_at_ms,
            data,
        } => b.append(stream, appended_at_ms, data),
        batch::Op::Cursor {
            stream,
            consumer,
            position,
        } => b.cursor(stream, consumer, position),
        batch::Op::Truncate { stream, before } => b.truncate(stream, before),
    };
}

fn run_batch(_: &Env, input: &[u8]) -> bool {
    // The database replays logged payloads with `ops` alone: it must not panic on any.
    let unvalidated = batch::ops(input).take(STEPS_MAX).count();
    // An optimistic transaction's record: its read set decodes whole and the record
    // rebuilds byte for byte.
    if let Ok(batch::Record::Optimistic {
        snapshot,
        reads,
        ops,
    }) = batch::record(input)
    {
        let items: Vec<batch::ReadItem<'_>> = batch::read_set(reads).take(STEPS_MAX).collect();
        if batch::validate(input).is_err() {
            return false;
        }
        let mut b = batch::WriteBatch::new();
        for op in batch::raw_ops(ops) {
            add_op(&mut b, op);
        }
        let rebuilt = batch::encode_optimistic(snapshot, &items, &b);
        assert_eq!(rebuilt, input, "rebuilt optimistic record differs");
        return true;
    }
    match batch::validate(input) {
        Ok(n) => {
            assert_eq!(unvalidated, n, "ops and validate disagree");
            let mut b = batch::WriteBatch::new();
            for op in batch::ops(input) {
                add_op(&mut b, op);
            }
            assert_eq!(b.as_bytes(), input, "rebuilt batch differs");
            true
        }
        Err(_) => false,
    }
}
