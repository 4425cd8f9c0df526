// The key-value Db API, lifecycle: flush/compactRange, reopen, stats, diagnostics channels,
// dispose, worker_threads on one directory, close with writes pending, use after close, and
// that close() lets go of every file.

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import diagnostics_channel from 'node:diagnostics_channel';
import { openTestDb, backend } from '../helpers/uringdb.mjs';
import { tmpDir, withTimeout } from '../helpers/util.mjs';
import { startWorker } from '../helpers/worker.mjs';
import { SMALL, openSmallDb, Model, diffEntries, scanAll, openFilesUnder, tableFiles, levelFiles, utf8 } from '../helpers/db.mjs';
import { expectError, expectThrowSync } from '../helpers/expect.mjs';

test('flush() keeps data readable; compactRange() empties level 0 into a deeper level', async (t) => {
  const dir = tmpDir(t);
  // No automatic compaction: level 0 grows by one table per flush.
  const db = await openSmallDb(dir, { l0CompactionTrigger: 100, l0SlowdownTrigger: 200, l0StopTrigger: 300 });
  t.teardown(() => db.close());
  const model = new Model();
  for (let f = 0; f < 4; f++) {
    const ops = [];
    for (let i = 0; i < 300; i++) {
      const k = `f${String((i * 7 + f * 3) % 500).padStart(4, '0')}`;
      ops.push({ type: 'put', key: k, value: `v${f}-${i}` });
      model.put(k, `v${f}-${i}`);
    }
    await db.batch(ops);
    await db.flush();
    t.is(db.stats().memtableBytes, 0, `flush ${f}: memtable empty`);
    t.is(db.stats().levels[0].files, f + 1, `flush ${f}: one more level-0 table`);
  }
  t.is(diffEntries(await scanAll(db), model.sorted()), null, 'data readable after the flushes');
  const before = db.stats();
  t.is(before.flushes, 4);
  await db.compactRange();
  const after = db.stats();
  t.is(after.levels[0].files, 0, 'compactRange() moved every level-0 table down');
  t.true(after.compactions > before.compactions, 'a compaction ran');
  t.true(levelFiles(after) >= 1, 'the data lives in a deeper level');
  t.true(after.compactionBytesWritten > 0 && after.compactionBytesRead > 0, 'compaction byte counters moved');
  t.true(
    after.levels.slice(1).reduce((n, l) => n + l.bytes, 0) < before.levels[0].bytes,
    'overwritten versions were dropped (fewer bytes than the four level-0 tables)',
  );
  t.is(diffEntries(await scanAll(db), model.sorted()), null, 'data unchanged by compaction');
  // Compaction inputs are deleted from disk (possibly just after the compaction installs).
  const deadline = Date.now() + 3000;
  while (tableFiles(dir).length !== levelFiles(db.stats()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(tableFiles(dir).length, levelFiles(db.stats()), 'compaction inputs were deleted from disk');
  // Ranged compaction over an empty level 0 is fine.
  await db.compactRange({ gte: 'f0100', lte: 'f0200' });
});

test('reopen keeps everything (tables, memtable via log replay, deletes); created/replayed reported', async (t) => {
  const dir = tmpDir(t);
  const options = { memtableBytes: 64 * 1024 };
  let db = await openSmallDb(dir, options);
  t.is(db.recovery.created, true, 'a new directory is created');
  t.is(db.recovery.opened, true);
  t.is(db.location, dir);
  const model = new Model();
  for (let i = 0; i < 1500; i++) {
    const k = `r${i % 700}`;
    if (i % 9 === 0) {
      await db.del(k);
      model.del(k);
    } else {
      await db.put(k, `${i}-${'z'.repeat(i % 150)}`);
      model.put(k, `${i}-${'z'.repeat(i % 150)}`);
    }
  }
  t.true(db.stats().flushes > 0, 'some data was flushed to tables');
  t.true(db.stats().memtableBytes > 0, 'some data is only in the memtable (and the log)');
  await db.close();
  t.true(fs.existsSync(path.join(dir, 'CURRENT')) && fs.existsSync(path.join(dir, 'wal')), 'layout: CURRENT and wal/');

  db = await openSmallDb(dir, options);
  t.teardown(() => db.close());
  t.is(db.recovery.created, false);
  t.true(db.recovery.tables > 0, 'tables found in the manifest');
  t.true(db.recovery.replayedRecords > 0, 'log records replayed above the tables');
  t.is(db.recovery.lastSeq, 1500, 'every write is one sequence number');
  t.is(diffEntries(await scanAll(db), model.sorted()), null, 'everything is back');
  await db.put('after', 'reopen');
  t.is(await db.get('after', utf8), 'reopen');
});

test('stats(): fields present and sane', async (t) => {
  // Compressed tables, so that point reads go through the block cache (uncompressed blocks
  // are read from the table's mapping, without it).
  const db = await openSmallDb(tmpDir(t), { memtableBytes: 64 * 1024, compression: 'lz4' });
  t.teardown(() => db.close());
  const s0 = db.stats();
  t.is(s0.levels.length, 7, 'seven levels');
  t.deepEqual(s0.levels.map((l) => l.level), [0, 1, 2, 3, 4, 5, 6]);
  t.is(s0.puts, 0);
  t.is(s0.log.backend, backend() === 'auto' ? s0.log.backend : backend());
  for (let i = 0; i < 2000; i++) await db.put(`s${String(i).padStart(5, '0')}`, 'v'.repeat(100));
  for (let i = 0; i < 100; i++) await db.del(`s${String(i).padStart(5, '0')}`);
  await db.flush();
  // Point reads from tables: hits and misses of the block cache, and bloom checks for absent keys.
  for (let i = 0; i < 200; i++) await db.get(`s${String(i * 7).padStart(5, '0')}`);
  // Absent keys inside the tables' key range (so that only a filter can rule them out).
  for (let i = 0; i < 200; i++) await db.get(`s${String(i * 7 + 100).padStart(5, '0')}x`);
  const s = db.stats();
  for (const f of ['userBytesWritten', 'puts', 'deletes', 'flushes', 'flushBytesWritten', 'compactions', 'compactionBytesRead', 'compactionBytesWritten',
    'writeAmplification', 'spaceAmplification', 'stalls', 'slowdowns', 'stops', 'stallUs', 'gets', 'memtableBytes', 'immutableMemtables', 'visibleSeq',
    'flushedSeq', 'snapshots', 'backgroundErrors']) {
    t.true(typeof s[f] === 'number' && Number.isFinite(s[f]) && s[f] >= 0, `${f} is a finite non-negative number (${s[f]})`);
  }
  t.is(s.puts, 2000);
  t.is(s.deletes, 100);
  t.is(s.visibleSeq, 2100, 'one sequence number per write');
  t.is(s.flushedSeq, 2100, 'flush() covered everything');
  t.true(s.flushes >= 1);
  t.true(s.userBytesWritten >= 2000 * 106, `userBytesWritten ${s.userBytesWritten} counts keys and values`);
  t.true(s.writeAmplification >= 1, `writeAmplification ${s.writeAmplification} >= 1 after writes`);
  t.true(s.spaceAmplification >= 1, `spaceAmplification ${s.spaceAmplification} >= 1`);
  t.true(s.gets >= 400, `gets counted (${s.gets})`);
  t.is(s.backgroundError, null);
  t.is(s.backgroundErrors, 0);
  t.true(levelFiles(s) >= 1);
  t.true(s.levels.every((l) => l.files >= 0 && l.bytes >= 0 && (l.files > 0 || l.bytes === 0)), 'per-level files/bytes consistent');
  t.true(s.levels.slice(2).every((l, i) => l.targetBytes > s.levels[i + 1].targetBytes), 'deeper levels have larger targets');
  const c = s.cache;
  for (const f of ['hits', 'misses', 'hitRate', 'usedBytes', 'capacityBytes', 'entries', 'evictions']) t.is(typeof c[f], 'number', `cache.${f}`);
  t.true(c.hits + c.misses > 0, 'the block cache was consulted');
  t.true(c.hits > 0, `reads of nearby keys hit the cache (hits ${c.hits}, misses ${c.misses})`);
  t.true(c.hitRate >= 0 && c.hitRate <= 1);
  t.is(c.capacityBytes, 64 * 1024 * 1024, 'default cacheBytes');
  t.true(c.usedBytes > 0 && c.usedBytes <= c.capacityBytes);
  const b = s.bloom;
  t.true(b.checked > 0, `bloom filters consulted (${b.checked})`);
  t.true(b.useful > 0 && b.useful <= b.checked, `bloom filters answered "absent" for absent keys (${b.useful}/${b.checked})`);
  t.true(b.usefulRate > 0 && b.usefulRate <= 1);
  for (const f of ['appends', 'appendBytes', 'groups', 'fsyncs', 'bytesWritten', 'firstSeq', 'lastSeq', 'segments', 'recycledSegments', 'freshSegments', 'poolSegments']) t.is(typeof s.log[f], 'number', `log.${f}`);
  t.is(s.log.appends, 2100);
  t.is(s.log.lastSeq, 2100);
  t.true(s.log.fsyncs > 0 && s.log.fsyncs <= s.log.groups);
  t.is(typeof s.log.total.p99, 'number');
  t.notThrows(() => JSON.stringify(s), 'plain data');
});

test('diagnostics_channel: uringdb:db:recovery, :flush and :compaction fire for this directory', async (t) => {
  const dir = tmpDir(t);
  const events = { recovery: [], flush: [], compaction: [] };
  const subs = Object.keys(events).map((name) => {
    const fn = (msg) => {
      if (msg?.dir === dir) events[name].push(msg);
    };
    diagnostics_channel.subscribe(`uringdb:db:${name}`, fn);
    return () => diagnostics_channel.unsubscribe(`uringdb:db:${name}`, fn);
  });
  t.teardown(() => subs.forEach((u) => u()));
  const db = await openSmallDb(dir, { l0CompactionTrigger: 100, l0SlowdownTrigger: 200, l0StopTrigger: 300 });
  t.teardown(() => db.close());
  t.is(events.recovery.length, 1, 'one recovery event per open');
  t.is(events.recovery[0].created, true);
  t.is(typeof events.recovery[0].lastSeq, 'number');
  for (let f = 0; f < 2; f++) {
    await db.batch(Array.from({ length: 100 }, (_, i) => ({ type: 'put', key: `d${i}`, value: `${f}` })));
    await db.flush();
  }
  await db.compactRange();
  const waitFor = async (name, n) => {
    const deadline = Date.now() + 5000;
    while (events[name].length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return events[name].length;
  };
  t.true((await waitFor('flush', 2)) >= 2, `two flush events (got ${events.flush.length})`);
  t.true((await waitFor('compaction', 1)) >= 1, `a compaction event (got ${events.compaction.length})`);
  t.is(typeof events.flush[0], 'object');
  t.true(Object.keys(events.flush[0]).length > 1, `flush event carries detail: ${JSON.stringify(events.flush[0])}`);
  t.true(Object.keys(events.compaction[0]).length > 1, `compaction event carries detail: ${JSON.stringify(events.compaction[0])}`);
  // The typed events' facts (NativeDbEvent in binding.d.ts), published without their kind.
  for (const e of events.flush) {
    for (const k of ['tables', 'bytes', 'entries', 'flushedSeq', 'logSegmentsRemoved', 'durationMs']) t.is(typeof e[k], 'number', `flush.${k}`);
    t.false('kind' in e, 'the channel names the kind');
  }
  t.true(events.flush[1].flushedSeq > events.flush[0].flushedSeq, 'flushedSeq grows');
  const manual = events.compaction.find((e) => e.manual);
  t.truthy(manual, `a manual compaction event: ${JSON.stringify(events.compaction)}`);
  t.is(manual.reason, 'manual');
  for (const k of ['level', 'outputLevel', 'inputs', 'outputs', 'bytesRead', 'bytesWritten', 'entriesDropped', 'durationMs']) {
    t.is(typeof manual[k], 'number', `compaction.${k}`);
  }
  t.true(manual.outputLevel > manual.level && manual.inputs >= 2, `compactRange merged level-0 tables down: ${JSON.stringify(manual)}`);
});

test('diagnostics_channel: uringdb:db:stall reports slowdowns and their end with typed facts', async (t) => {
  const dir = tmpDir(t);
  const stalls = [];
  const fn = (msg) => {
    if (msg?.dir === dir) stalls.push(msg);
  };
  diagnostics_channel.subscribe('uringdb:db:stall', fn);
  t.teardown(() => diagnostics_channel.unsubscribe('uringdb:db:stall', fn));
  // One level-0 table is already a slowdown; compaction (triggered by two) ends it.
  const db = await openSmallDb(dir, { l0CompactionTrigger: 1, l0SlowdownTrigger: 1, l0StopTrigger: 1000 });
  t.teardown(() => db.close());
  for (let f = 0; f < 3; f++) {
    await db.batch(Array.from({ length: 50 }, (_, i) => ({ type: 'put', key: `s${f}-${i}`, value: 'v' })));
    await db.flush();
  }
  const deadline = Date.now() + 10_000;
  while (!stalls.some((e) => e.level === 'none') && Date.now() < deadline) {
    await db.put('tick', String(Date.now()));
    await new Promise((r) => setTimeout(r, 20));
  }
  t.true(stalls.some((e) => e.level === 'slowdown'), `a slowdown was published: ${JSON.stringify(stalls)}`);
  t.true(stalls.some((e) => e.level === 'none'), `its end was published: ${JSON.stringify(stalls)}`);
  for (const e of stalls) {
    t.true(['none', 'slowdown', 'stop'].includes(e.level), `level ${e.level}`);
    t.is(typeof e.l0Files, 'number');
    t.is(typeof e.immutableMemtables, 'number');
  }
});

test('Symbol.asyncDispose closes iterators and the db; later calls reject with ERR_URINGDB_CLOSED', async (t) => {
  const dir = tmpDir(t);
  const db = await openSmallDb(dir);
  await db.put('a', '1');
  const it = db.iterator();
  t.is(typeof it[Symbol.asyncDispose], 'function');
  await it[Symbol.asyncDispose]();
  t.deepEqual(await it.nextv(5).catch((e) => e.code), [], 'a disposed iterator is exhausted (or rejects)');
  await db[Symbol.asyncDispose]();
  await expectError(t, () => db.get('a'), 'ERR_URINGDB_CLOSED', 'get after asyncDispose');
  await expectError(t, () => db.put('a', '2'), 'ERR_URINGDB_CLOSED', 'put after asyncDispose');
  // The directory can be opened again right away.
  const again = await openSmallDb(dir);
  t.is(await again.get('a', utf8), '1');
  await again.close();
});

test('every operation after close() rejects or throws ERR_URINGDB_CLOSED; close is idempotent', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  await db.put('k', 'v');
  const snap = db.snapshot();
  const chained = db.batch().put('x', 'y');
  const it = db.iterator();
  await db.close();
  await db.close();
  await db[Symbol.asyncDispose]();
  const ops = {
    'put': () => db.put('k', 'v'),
    'del': () => db.del('k'),
    'get': () => db.get('k'),
    'get at snapshot': () => db.get('k', { snapshot: snap }),
    'getMany': () => db.getMany(['k']),
    'batch(array)': () => db.batch([{ type: 'put', key: 'k', value: 'v' }]),
    'batch([])': () => db.batch([]),
    'chained write (made before close)': () => chained.write(),
    'chained write (made after close)': () => db.batch().put('a', 'b').write(),
    'clear': () => db.clear(),
    'flush': () => db.flush(),
    'compactRange': () => db.compactRange(),
    'iterator.next (opened before close)': () => it.next(),
    'iterator.nextv (opened before close)': () => it.nextv(1),
  };
  for (const [name, fn] of Object.entries(ops)) await expectError(t, fn, 'ERR_URINGDB_CLOSED', name);
  expectThrowSync(t, () => db.getSync('k'), 'ERR_URINGDB_CLOSED', 'getSync');
  expectThrowSync(t, () => db.iterator(), 'ERR_URINGDB_CLOSED', 'iterator()');
  expectThrowSync(t, () => db.keys(), 'ERR_URINGDB_CLOSED', 'keys()');
  expectThrowSync(t, () => db.values(), 'ERR_URINGDB_CLOSED', 'values()');
  expectThrowSync(t, () => db.snapshot(), 'ERR_URINGDB_CLOSED', 'snapshot()');
  expectThrowSync(t, () => db.stats(), 'ERR_URINGDB_CLOSED', 'stats()');
  snap.release(); // releasing after close is harmless
});

test('close() with thousands of writes pending: all settle, every resolved write is durable after reopen', async (t) => {
  const dir = tmpDir(t);
  const db = await openSmallDb(dir, { memtableBytes: 64 * 1024 });
  await db.put('before', 'x');
  const N = 5000;
  const pending = [];
  for (let i = 0; i < N; i++) {
    if (i % 10 === 0) pending.push(db.batch([{ type: 'put', key: `p${i}`, value: `v${i}` }, { type: 'put', key: `q${i}`, value: `w${i}` }]));
    else pending.push(db.put(`p${i}`, `v${i}`, { sync: i % 3 !== 0 }));
  }
  const g = db.get('before', utf8);
  const closing = db.close();
  const settled = await withTimeout(Promise.allSettled(pending), 30_000, 'pending writes to settle after close()');
  await withTimeout(closing, 30_000, 'close() with writes pending');
  const fulfilled = settled.filter((s) => s.status === 'fulfilled').length;
  const codes = [...new Set(settled.filter((s) => s.status === 'rejected').map((s) => s.reason?.code))];
  // The contract (Db.close): writes already made complete.
  t.is(fulfilled, N, `all ${N} writes made before close() complete (rejected codes: ${codes.join(',')})`);
  t.is(await g.catch((e) => e.code), 'x', 'a get made before close() settles with the value');
  await expectError(t, () => db.put('late', 'x'), 'ERR_URINGDB_CLOSED', 'a write after close()');

  const reopened = await openSmallDb(dir);
  t.teardown(() => reopened.close());
  const keys = [];
  for (let i = 0; i < N; i++) if (settled[i].status === 'fulfilled') keys.push(`p${i}`);
  const vals = await reopened.getMany(keys, utf8);
  const lost = keys.filter((k, i) => vals[i] !== `v${k.slice(1)}`);
  t.deepEqual(lost.slice(0, 10), [], `${lost.length} resolved writes are missing after reopen`);
  const qs = await reopened.getMany(Array.from({ length: N / 10 }, (_, j) => `q${j * 10}`), utf8);
  t.true(qs.every((v, j) => settled[j * 10].status !== 'fulfilled' || v === `w${j * 10}`), 'resolved batches complete after reopen');
});

test('worker_threads: main thread and two workers on one directory share the engine; all writes visible', async (t) => {
  t.timeout(60_000);
  const dir = tmpDir(t);
  const options = { ...SMALL, memtableBytes: 64 * 1024 };
  const db = await openTestDb(dir, options);
  t.teardown(() => db.close());
  const startSignal = new SharedArrayBuffer(4);
  const COUNT = 1500;
  const workers = ['w1', 'w2'].map((tag) =>
    startWorker(t, 'db-worker.mjs', { dir, ioBackend: backend(), tag, count: COUNT, inflight: 32, options, startSignal }),
  );
  const openedMsgs = await withTimeout(Promise.all(workers.map((w) => w.opened)), 20_000, 'workers to open');
  t.deepEqual(openedMsgs.map((m) => m?.opened), [false, false], 'workers joined the engine the main thread opened');
  Atomics.store(new Int32Array(startSignal), 0, 1);
  Atomics.notify(new Int32Array(startSignal), 0);
  const mainWrites = [];
  for (let i = 0; i < COUNT; i++) mainWrites.push(db.put(`main/${String(i).padStart(6, '0')}`, `main:${i}`));
  await Promise.all(mainWrites);
  const results = await withTimeout(Promise.all(workers.map((w) => w.done)), 45_000, 'workers to finish');
  t.deepEqual(results.map((r) => r.acked), [COUNT, COUNT]);

  const check = async (handle, what) => {
    for (const tag of ['main', 'w1', 'w2']) {
      const entries = await scanAll(handle, { gt: `${tag}/`, lt: `${tag}0`, keyEncoding: 'utf8', valueEncoding: 'utf8' });
      t.is(entries.length, COUNT, `${what}: ${tag} wrote ${COUNT} keys`);
      const bad = entries.findIndex(([k, v], i) => k !== `${tag}/${String(i).padStart(6, '0')}` || v !== `${tag}:${i}`);
      t.is(bad, -1, `${what}: ${tag} entry #${bad} is wrong`);
    }
  };
  await check(db, 'in the main thread (workers closed their handles)');
  t.is(db.stats().puts, 3 * COUNT, 'one engine counted every thread\'s writes');
  await db.close();
  const reopened = await openTestDb(dir, options);
  await check(reopened, 'after reopen');
  await reopened.close();
});

test('close() lets go of every file in the directory (reads, writes, flush; no iterators)', async (t) => {
  const dir = tmpDir(t);
  const db = await openSmallDb(dir, { memtableBytes: 64 * 1024 });
  for (let i = 0; i < 2000; i++) await db.put(`k${i}`, 'v'.repeat(200));
  await db.flush();
  await db.get('k5');
  db.getSync('k6');
  t.true(openFilesUnder(dir).length > 0, 'the open db holds files (the check can see them)');
  await db.close();
  const left = openFilesUnder(dir);
  t.deepEqual(left, [], `files still open after close(): ${left.map((f) => path.basename(f)).join(', ')}`);
});

test('close() lets go of every file in the directory, even while closed iterator objects are still referenced', async (t) => {
  const dir = tmpDir(t);
  const db = await openSmallDb(dir, { memtableBytes: 64 * 1024 });
  for (let i = 0; i < 2000; i++) await db.put(`k${i}`, 'v'.repeat(200));
  await db.flush();
  t.true(tableFiles(dir).length > 0, 'tables exist');
  // Iterators used and closed (fully drained, closed early, and by for-await break),
  // kept reachable so that garbage collection cannot clean up after them.
  const drained = db.iterator();
  await drained.all();
  const early = db.iterator();
  await early.nextv(3);
  await early.close();
  const keysIt = db.keys();
  for await (const k of keysIt) {
    void k;
    break;
  }
  await db.get('k5');
  await db.close();
  const left = openFilesUnder(dir);
  t.deepEqual(left, [], `files still open after close(): ${left.map((f) => path.basename(f)).join(', ')}`);
  t.truthy(drained && early && keysIt); // keep them alive up to here
});

test('stats().log counts recycled and fresh log segments: flushes free segments into a pool of at most two, and later segments reuse them', async (t) => {
  t.timeout(120_000);
  const dir = tmpDir(t);
  const db = await openTestDb(dir, { ...SMALL, memtableBytes: 256 * 1024 });
  t.teardown(() => db.close());
  const value = Buffer.alloc(2000, 7);
  let k = 0;
  // Each round writes ~4 MiB (several 1 MiB segments), then flushes, which truncates the log
  // and pools what it freed; the next round's rolls take from the pool.
  for (let round = 0; round < 4; round++) {
    const writes = [];
    for (let i = 0; i < 2000; i++) writes.push(db.put(`k${String(k++).padStart(8, '0')}`, value));
    await Promise.all(writes);
    await db.flush();
    const s = db.stats().log;
    t.true(s.poolSegments <= 2, `round ${round}: the pool holds at most two (${s.poolSegments})`);
  }
  const s = db.stats().log;
  t.true(s.recycledSegments > 0, `segments were reused (recycled ${s.recycledSegments}, fresh ${s.freshSegments})`);
  t.true(s.freshSegments > 0, 'the first segments were new');
  // The segment preparer may take a pooled file (renaming it to .wal.prep) between the two
  // looks, never add one (only a flush's truncation does): at most one fewer on disk.
  const pooled = fs.readdirSync(path.join(dir, 'wal')).filter((f) => f.endsWith('.wal.free')).length;
  t.true(pooled <= s.poolSegments && pooled >= s.poolSegments - 1, `poolSegments counts the .wal.free files (${s.poolSegments} counted, ${pooled} on disk)`);
  // Every write is still there after reopen.
  await db.close();
  const again = await openTestDb(dir, { ...SMALL, memtableBytes: 256 * 1024 });
  t.teardown(() => again.close());
  for (const i of [0, 1, 2000, 4000, k - 1]) t.deepEqual(await again.get(`k${String(i).padStart(8, '0')}`), value, `key ${i}`);
});
