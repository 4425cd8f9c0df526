// The key-value Db API: round trips of every key/value form, reads (get, getMany, getSync),
// atomic batches, clear, iterators against a sorted model (ranges, reverse, limit, nextv,
// seek), snapshots, flush/compactRange, reopen, stats, diagnostics channels, dispose,
// worker_threads on one directory, close with writes pending, use after close, and that
// close() lets go of every file.

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import diagnostics_channel from 'node:diagnostics_channel';
import { openTestDb, backend, Snapshot, DbIterator, ChainedBatch } from '../helpers/uringdb.mjs';
import { tmpDir, withTimeout } from '../helpers/util.mjs';
import { startWorker } from '../helpers/worker.mjs';
import { SMALL, openSmallDb, Model, diffEntries, scanAll, show, openFilesUnder, tableFiles, levelFiles } from '../helpers/db.mjs';
import { expectError, expectThrowSync } from '../helpers/expect.mjs';

/** xorshift32: reproducible variety (the seed is logged by the tests that use it). */
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const utf8 = { encoding: 'utf8' };

test('put/get/del round trips: Buffer, Uint8Array (with offset), string keys and values; empty value; empty key', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());

  t.true(Symbol.asyncDispose in db, 'Db is AsyncDisposable');
  t.is(await db.get('absent'), undefined, 'absent key reads as undefined');

  await db.put(Buffer.from('buf-key'), Buffer.from([0, 1, 2, 255]));
  t.deepEqual(await db.get('buf-key'), Buffer.from([0, 1, 2, 255]));
  t.true(Buffer.isBuffer(await db.get(Buffer.from('buf-key'))), 'values come out as Buffers');

  // A Uint8Array view with a non-zero offset: only its own bytes are the key/value.
  const backing = new Uint8Array([9, 9, 107, 49, 9, 9, 118, 49, 118, 9]);
  const k = backing.subarray(2, 4); // "k1"
  const v = backing.subarray(6, 9); // "v1v"
  await db.put(k, v);
  t.is(await db.get('k1', utf8), 'v1v', 'Uint8Array key/value with byteOffset');
  t.deepEqual(await db.get(new Uint8Array([107, 49])), Buffer.from('v1v'));

  // Strings are UTF-8 on both sides.
  await db.put('ключ-🔑', 'значение-✓');
  t.is(await db.get('ключ-🔑', utf8), 'значение-✓');
  t.deepEqual(await db.get(Buffer.from('ключ-🔑', 'utf8')), Buffer.from('значение-✓', 'utf8'));

  // Empty value is a value, not absence.
  await db.put('empty-value', '');
  const ev = await db.get('empty-value');
  t.true(Buffer.isBuffer(ev) && ev.length === 0, `empty value reads as an empty Buffer (got ${ev})`);
  t.is(await db.get('empty-value', utf8), '');
  await db.put('empty-value-bytes', new Uint8Array(0));
  t.is((await db.get('empty-value-bytes'))?.length, 0);

  // The empty key is allowed and distinct from absent.
  await db.put('', 'under the empty key');
  t.is(await db.get('', utf8), 'under the empty key');
  t.is(await db.get(Buffer.alloc(0), utf8), 'under the empty key');

  // Overwrite and delete.
  await db.put('k1', 'second');
  t.is(await db.get('k1', utf8), 'second', 'overwrite wins');
  await db.del('k1');
  t.is(await db.get('k1'), undefined, 'deleted');
  await db.del('never-existed');
  await db.del('');
  t.is(await db.get(''), undefined, 'empty key deleted');
  t.is(await db.get('empty-value', utf8), '', 'other keys untouched');

  // Binary keys that differ only after a zero byte, and a 64 KiB key (the limit).
  await db.put(Buffer.from([1, 0]), 'a');
  await db.put(Buffer.from([1, 0, 0]), 'b');
  await db.put(Buffer.from([1]), 'c');
  t.deepEqual(await db.getMany([Buffer.from([1]), Buffer.from([1, 0]), Buffer.from([1, 0, 0])], utf8), ['c', 'a', 'b']);
  const bigKey = Buffer.alloc(64 * 1024, 0x6b);
  await db.put(bigKey, 'big');
  t.is(await db.get(bigKey, utf8), 'big', 'a key of exactly 65536 bytes');

  // A write resolves with nothing useful to the caller (void), sync:false too.
  await db.put('nosync', 'x', { sync: false });
  t.is(await db.get('nosync', utf8), 'x', 'a sync:false write is visible once resolved');
});

test('reads are served from memtable and tables alike (flushed data round-trips)', async (t) => {
  const db = await openSmallDb(tmpDir(t), { memtableBytes: 64 * 1024 });
  t.teardown(() => db.close());
  for (let i = 0; i < 300; i++) await db.put(`k${i}`, `v${i}-${'x'.repeat(300)}`);
  await db.flush();
  t.true(levelFiles(db.stats()) > 0, 'tables exist after flush()');
  t.is(db.stats().memtableBytes, 0, 'the memtable is empty after flush()');
  await db.put('k5', 'new');
  await db.del('k6');
  t.is(await db.get('k5', utf8), 'new', 'memtable overrides the table');
  t.is(await db.get('k6'), undefined, 'a memtable delete hides the table entry');
  t.is(await db.get('k7', utf8), `v7-${'x'.repeat(300)}`, 'read from a table');
  t.is(db.getSync('k8', utf8), `v8-${'x'.repeat(300)}`, 'getSync reads tables too');
});

test('getMany: present, absent and repeated keys in order; utf8; empty list', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.batch([
    { type: 'put', key: 'a', value: '1' },
    { type: 'put', key: 'b', value: '' },
    { type: 'put', key: 'c', value: '3' },
  ]);
  const got = await db.getMany(['c', 'missing', 'a', 'b', 'a', Buffer.from('c')]);
  t.deepEqual(got, [Buffer.from('3'), undefined, Buffer.from('1'), Buffer.alloc(0), Buffer.from('1'), Buffer.from('3')]);
  t.deepEqual(await db.getMany(['b', 'a', 'zz'], utf8), ['', '1', undefined]);
  t.deepEqual(await db.getMany([]), []);
  // A large multi-get (more than one staging run of the façade).
  const keys = Array.from({ length: 3000 }, (_, i) => `m${i}`);
  await db.batch(keys.filter((_, i) => i % 3 === 0).map((k) => ({ type: 'put', key: k, value: k.toUpperCase() })));
  const many = await db.getMany(keys, utf8);
  t.is(many.length, 3000);
  t.true(many.every((v, i) => (i % 3 === 0 ? v === keys[i].toUpperCase() : v === undefined)), 'getMany of 3000 keys matches');
  // Many concurrent get()s in one tick (staged together) each get their own answer.
  const singles = await Promise.all(keys.slice(0, 1500).map((k) => db.get(k, utf8)));
  t.deepEqual(singles, many.slice(0, 1500));
});

test('getSync: buffer, utf8, and the target form returning the length (-1 when absent)', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.put('k', 'hello world');
  await db.put('e', '');
  const v = db.getSync('k');
  t.true(Buffer.isBuffer(v));
  t.is(v.toString(), 'hello world');
  t.is(db.getSync('k', utf8), 'hello world');
  t.is(db.getSync('nope'), undefined);
  t.is(db.getSync('nope', utf8), undefined);
  t.is(db.getSync('e', utf8), '');

  const target = Buffer.alloc(32, 0xaa);
  t.is(db.getSync('k', { target }), 11, 'returns the value length');
  t.is(target.subarray(0, 11).toString(), 'hello world', 'copied into target');
  t.is(target[11], 0xaa, 'bytes past the value untouched');
  t.is(db.getSync('nope', { target }), -1, '-1 when absent');
  t.is(db.getSync('e', { target }), 0, 'empty value: length 0');
  const small = new Uint8Array(4);
  t.is(db.getSync('k', { target: small }), 11, 'a too-small target still reports the full length');
  // Target as a view at an offset: written at its own offset only.
  const backing = new Uint8Array(20).fill(1);
  t.is(db.getSync('k', { target: backing.subarray(5, 18) }), 11);
  t.is(Buffer.from(backing.subarray(5, 16)).toString(), 'hello world');
  t.is(backing[4], 1, 'nothing written before the view');
  t.is(backing[16], 1, 'nothing written past the value');
  // Sees a write as soon as it resolved.
  await db.put('k', 'changed');
  t.is(db.getSync('k', utf8), 'changed');
});

test('batch (array and chained) is atomic and ordered; ChainedBatch length/clear/write', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.put('old', 'x');
  await db.batch([
    { type: 'put', key: 'a', value: '1' },
    { type: 'del', key: 'old' },
    { type: 'put', key: 'b', value: 'first' },
    { type: 'put', key: 'b', value: 'second' }, // later op on the same key wins
    { type: 'put', key: 'c', value: 'gone' },
    { type: 'del', key: 'c' },
    { type: 'del', key: 'd' },
    { type: 'put', key: 'd', value: 'back' },
    { type: 'put', key: Buffer.from([0xff]), value: new Uint8Array([1, 2]) },
  ]);
  t.deepEqual(await db.getMany(['a', 'old', 'b', 'c', 'd'], utf8), ['1', undefined, 'second', undefined, 'back']);
  t.deepEqual(await db.get(Buffer.from([0xff])), Buffer.from([1, 2]));
  await db.batch([]); // empty: resolves, writes nothing
  const seqBefore = db.stats().visibleSeq;
  await db.batch([]);
  t.is(db.stats().visibleSeq, seqBefore, 'an empty batch writes nothing');

  const b = db.batch();
  t.true(b instanceof ChainedBatch);
  t.is(b.length, 0);
  t.is(b.put('x', '1'), b, 'put returns the batch');
  t.is(b.del('a'), b, 'del returns the batch');
  b.put('y', '2').put('x', '3');
  t.is(b.length, 4);
  t.is(await db.get('x'), undefined, 'nothing visible before write()');
  b.clear();
  t.is(b.length, 0, 'clear() empties it');
  b.put('z', 'zz').del('b').put('x', 'xx');
  t.is(b.length, 3);
  await b.write();
  t.deepEqual(await db.getMany(['x', 'y', 'z', 'b', 'a'], utf8), ['xx', undefined, 'zz', undefined, '1']);
  await db.batch().write(); // an empty chained batch resolves
  await db.batch().put('s', 'nosync').write({ sync: false });
  t.is(await db.get('s', utf8), 'nosync');

  // Readers never see a batch half-applied: a reader racing 50 batches sees all or nothing.
  const keys = Array.from({ length: 20 }, (_, i) => `atom/${i}`);
  let torn = null;
  let reading = true;
  const reader = (async () => {
    while (reading && torn === null) {
      const vals = await db.getMany(keys, utf8);
      if (new Set(vals).size !== 1) torn = vals;
      const snapVals = db.getSync(keys[0], utf8);
      void snapVals;
    }
  })();
  for (let gen = 0; gen < 50; gen++) await db.batch(keys.map((key) => ({ type: 'put', key, value: `gen${gen}` })));
  reading = false;
  await reader;
  t.is(torn, null, `a multi-get saw a batch half-applied: ${JSON.stringify(torn)}`);
});

test('clear(range) deletes exactly the range (gte/lt, gt/lte, limit, reverse+limit, all)', async (t) => {
  const db = await openSmallDb(tmpDir(t), { memtableBytes: 64 * 1024 });
  t.teardown(() => db.close());
  const model = new Model();
  const ops = [];
  for (let i = 0; i < 2500; i++) {
    const k = `k${String(i).padStart(5, '0')}`;
    ops.push({ type: 'put', key: k, value: `v${i}` });
    model.put(k, `v${i}`);
  }
  await db.batch(ops.slice(0, 1200));
  await db.flush(); // half in tables, half in the memtable
  await db.batch(ops.slice(1200));

  const clearAndCheck = async (range, what) => {
    for (const [k] of model.range(range)) model.del(k);
    await db.clear(range);
    const d = diffEntries(await scanAll(db), model.sorted());
    t.is(d, null, `after clear(${what}): ${d}`);
  };
  await clearAndCheck({ gte: 'k00100', lt: 'k00200' }, 'gte/lt');
  await clearAndCheck({ gt: 'k01100', lte: 'k01300' }, 'gt/lte across memtable and table');
  await clearAndCheck({ gte: 'k02000', limit: 7 }, 'limit 7');
  await clearAndCheck({ lt: 'k00900', reverse: true, limit: 5 }, 'reverse limit 5');
  await clearAndCheck({ gte: 'k02400', sync: false }, 'sync:false');
  t.true(model.map.size > 1000, 'the clears left most keys');
  await db.clear();
  t.deepEqual(await scanAll(db), [], 'clear() with no range deletes everything');
  t.is(await db.get('k00000'), undefined);
});

test('iterators match a sorted model: gt/gte/lt/lte, reverse, limit, over memtable + tables, with deletes', async (t) => {
  const seed = (Date.now() ^ process.pid) >>> 0;
  t.log(`seed ${seed}`);
  const rand = rng(seed);
  const db = await openSmallDb(tmpDir(t), { memtableBytes: 64 * 1024, l0CompactionTrigger: 3, targetFileBytes: 64 * 1024 });
  t.teardown(() => db.close());
  const model = new Model();
  const keyOf = () => {
    // Short random binary keys (many shared prefixes, zero and 0xff bytes) and some text.
    const len = rand() % 4 === 0 ? rand() % 40 : 1 + (rand() % 5);
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = rand() % 3 === 0 ? [0, 0xff, 0x61][rand() % 3] : rand() & 0xff;
    return b;
  };
  const keys = [];
  for (let round = 0; round < 6; round++) {
    const ops = [];
    for (let i = 0; i < 400; i++) {
      if (keys.length > 0 && rand() % 5 === 0) {
        const k = keys[rand() % keys.length];
        ops.push({ type: 'del', key: k });
      } else {
        const k = rand() % 4 === 0 && keys.length > 0 ? keys[rand() % keys.length] : keyOf();
        const v = Buffer.alloc(rand() % 200, rand() & 0xff);
        keys.push(k);
        ops.push({ type: 'put', key: k, value: v });
      }
    }
    await db.batch(ops);
    for (const op of ops) (op.type === 'put' ? model.put(op.key, op.value) : model.del(op.key));
    if (round % 2 === 0) await db.flush();
  }
  t.true(levelFiles(db.stats()) > 0, 'data spans tables and the memtable');

  const all = await scanAll(db);
  t.is(diffEntries(all, model.sorted()), null, 'full scan equals the model');

  const pick = () => (rand() % 3 === 0 ? keyOf() : keys[rand() % keys.length]);
  let checked = 0;
  for (let i = 0; i < 120; i++) {
    const options = {};
    const lower = rand() % 3;
    if (lower === 1) options.gt = pick();
    if (lower === 2) options.gte = pick();
    const upper = rand() % 3;
    if (upper === 1) options.lt = pick();
    if (upper === 2) options.lte = pick();
    if (rand() % 2 === 0) options.reverse = true;
    if (rand() % 3 === 0) options.limit = rand() % 50;
    const expected = model.range(options);
    let actual;
    if (i % 3 === 0) {
      actual = [];
      for await (const e of db.iterator(options)) actual.push(e);
    } else if (i % 3 === 1) {
      const it = db.iterator(options);
      actual = [];
      for (let n = 1; ; n = (n * 3) % 17 + 1) {
        const chunk = await it.nextv(n);
        if (chunk.length === 0) break;
        t.true(chunk.length <= n, 'nextv returns at most size entries');
        actual.push(...chunk);
      }
      await it.close();
    } else {
      const it = db.iterator(options);
      t.true(it instanceof DbIterator);
      actual = [];
      for (let r = await it.next(); !r.done; r = await it.next()) actual.push(r.value);
    }
    const d = diffEntries(actual, expected);
    const desc = Object.entries(options).map(([k, v]) => `${k}=${typeof v === 'object' ? show(v) : v}`).join(' ');
    t.is(d, null, `iterator(${desc}): ${d}`);
    if (d !== null) break;
    checked += expected.length;
  }
  t.true(checked > 0, 'the random ranges covered entries');

  // Equal bounds, empty and inverted ranges.
  const k0 = model.sorted()[5][0];
  t.is(diffEntries(await scanAll(db, { gte: k0, lte: k0 }), model.range({ gte: k0, lte: k0 })), null, 'gte == lte: one entry');
  t.deepEqual(await scanAll(db, { gt: k0, lt: k0 }), [], 'gt == lt: empty');
  t.deepEqual(await scanAll(db, { gte: Buffer.from([0xff, 0xff, 0xff]), lte: Buffer.from([0]) }), [], 'inverted range: empty');
  // gte wins over gt, lte over lt, when both are given (as in abstract-level).
  const [ka, kb, kc, kd] = [10, 20, 40, 50].map((i) => model.sorted()[i][0]);
  for (const range of [{ gt: kb, gte: ka }, { gte: ka, gt: kb, lt: kc, lte: kd }, { lt: kc, lte: kd, reverse: true }]) {
    t.is(diffEntries(await scanAll(db, range), model.range(range)), null, `both bounds given: ${Object.keys(range).join('/')}`);
  }
  t.deepEqual(await scanAll(db, { limit: 0 }), [], 'limit 0: empty');
  t.is((await scanAll(db, { limit: -1 })).length, model.map.size, 'limit -1: no limit');
  t.is((await scanAll(db, { limit: Infinity })).length, model.map.size, 'limit Infinity: no limit');
});

test('iterator encodings and the keys()/values() projections', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const model = new Model();
  for (let i = 0; i < 50; i++) {
    const k = `key-${String(i).padStart(2, '0')}-é`;
    await db.put(k, `value ${i} ✓`);
    model.put(k, `value ${i} ✓`);
  }
  const entries = [];
  for await (const e of db.iterator({ keyEncoding: 'utf8', valueEncoding: 'utf8', gte: 'key-10', lt: 'key-20' })) entries.push(e);
  t.deepEqual(entries, model.range({ gte: 'key-10', lt: 'key-20' }).map(([k, v]) => [k.toString(), v.toString()]));

  const keys = [];
  for await (const k of db.keys({ reverse: true, limit: 5, keyEncoding: 'utf8' })) keys.push(k);
  t.deepEqual(keys, model.range({ reverse: true, limit: 5 }).map(([k]) => k.toString()));

  const values = [];
  for await (const v of db.values({ gt: 'key-45' })) values.push(v);
  t.true(values.every((v) => Buffer.isBuffer(v)), 'values() yields Buffers by default');
  t.deepEqual(values.map(String), model.range({ gt: 'key-45' }).map(([, v]) => v.toString()));

  const valuesUtf8 = [];
  for await (const v of db.values({ valueEncoding: 'utf8', lte: 'key-01-é' })) valuesUtf8.push(v);
  t.deepEqual(valuesUtf8, ['value 0 ✓', 'value 1 ✓']);

  // Breaking out of a for-await closes the iterator; the db stays usable.
  let n = 0;
  for await (const k of db.keys()) {
    void k;
    if (++n === 3) break;
  }
  t.is(n, 3);
  t.is(await db.get('key-03-é', utf8), 'value 3 ✓');
});

test('nextv and seek: batches, end of range, seek forward/backward within the range and in reverse', async (t) => {
  const db = await openSmallDb(tmpDir(t), { memtableBytes: 64 * 1024 });
  t.teardown(() => db.close());
  const model = new Model();
  const ops = [];
  for (let i = 0; i < 5000; i += 2) {
    const k = `s${String(i).padStart(5, '0')}`;
    ops.push({ type: 'put', key: k, value: String(i) });
    model.put(k, String(i));
  }
  await db.batch(ops.slice(0, 1500));
  await db.flush();
  await db.batch(ops.slice(1500));

  const it = db.iterator({ gte: 's00100', lt: 's04000', keyEncoding: 'utf8', valueEncoding: 'utf8' });
  const first = await it.nextv(3);
  t.deepEqual(first, [['s00100', '100'], ['s00102', '102'], ['s00104', '104']]);
  const big = await it.nextv(10_000);
  t.is(big.length, (4000 - 106) / 2, 'nextv(10000) returns the rest of the range');
  t.deepEqual(big.at(-1), ['s03998', '3998']);
  t.deepEqual(await it.nextv(10), [], '[] at the end');
  t.deepEqual(await it.nextv(10), [], '[] again');
  t.is(await it.nextEntry?.(), undefined);

  // seek: to an absent key lands on the next one; backwards works; outside the range clamps.
  it.seek('s00501');
  t.deepEqual(await it.nextv(2), [['s00502', '502'], ['s00504', '504']], 'seek to an absent key: next greater');
  it.seek('s00200');
  t.deepEqual(await it.nextv(1), [['s00200', '200']], 'seek backwards to an exact key');
  it.seek('s00000');
  t.deepEqual(await it.nextv(1), [['s00100', '100']], 'seek below the range: first in range');
  it.seek('s09999');
  t.deepEqual(await it.nextv(1), [], 'seek past the range: exhausted');
  it.seek('s03998');
  t.deepEqual(await it.nextv(5), [['s03998', '3998']], 'seek to the last key');
  await it.close();

  const rev = db.iterator({ gt: 's01000', lte: 's02000', reverse: true, keyEncoding: 'utf8' });
  rev.seek('s01501');
  t.deepEqual((await rev.nextv(2)).map(([k]) => k), ['s01500', 's01498'], 'reverse seek to an absent key: next smaller');
  rev.seek('s09999');
  t.deepEqual((await rev.nextv(1)).map(([k]) => k), ['s02000'], 'reverse seek above the range: last in range');
  rev.seek('s01000');
  t.deepEqual(await rev.nextv(1), [], 'reverse seek to the exclusive lower bound: exhausted');
  rev.seek('s01002');
  t.deepEqual((await rev.nextv(5)).map(([k]) => k), ['s01002'], 'reverse seek just above the bound');
  await rev.close();

  // seek then read everything equals the model's tail.
  const it2 = db.iterator();
  it2.seek('s02500');
  const rest = [];
  for (;;) {
    const c = await it2.nextv(777);
    if (c.length === 0) break;
    rest.push(...c);
  }
  t.is(diffEntries(rest, model.range({ gte: 's02500' })), null, 'seek + drain');
  await it2.close();
  await it2.close(); // idempotent
});

test('snapshots: later writes are invisible to get/getMany/getSync/iterator at the snapshot, also across flush and compaction', async (t) => {
  const db = await openSmallDb(tmpDir(t), { memtableBytes: 64 * 1024 });
  t.teardown(() => db.close());
  const before = new Model();
  for (let i = 0; i < 500; i++) {
    await db.put(`k${i}`, `old${i}`);
    before.put(`k${i}`, `old${i}`);
  }
  await db.flush();
  const snap = db.snapshot();
  t.true(snap instanceof Snapshot);
  t.is(typeof snap.seq, 'number');
  t.is(db.stats().snapshots, 1, 'stats counts the live snapshot');

  for (let i = 0; i < 500; i += 2) await db.put(`k${i}`, `new${i}`);
  for (let i = 1; i < 500; i += 4) await db.del(`k${i}`);
  for (let i = 500; i < 600; i++) await db.put(`k${i}`, `added${i}`);
  await db.flush();
  await db.compactRange(); // must keep the versions the snapshot needs

  t.is(await db.get('k0', { snapshot: snap, encoding: 'utf8' }), 'old0');
  t.is(await db.get('k0', utf8), 'new0');
  t.is(await db.get('k1', { snapshot: snap, encoding: 'utf8' }), 'old1', 'deleted later: still there at the snapshot');
  t.is(await db.get('k1'), undefined);
  t.is(await db.get('k550', { snapshot: snap }), undefined, 'added later: absent at the snapshot');
  t.deepEqual(await db.getMany(['k2', 'k3', 'k5', 'k599'], { snapshot: snap, encoding: 'utf8' }), ['old2', 'old3', 'old5', undefined]);
  t.is(db.getSync('k4', { snapshot: snap, encoding: 'utf8' }), 'old4');
  t.is(db.getSync('k4', utf8), 'new4');
  const target = Buffer.alloc(16);
  t.is(db.getSync('k9', { snapshot: snap, target }), 4);
  t.is(target.subarray(0, 4).toString(), 'old9');
  t.is(db.getSync('k9', { target }), -1, 'without the snapshot: deleted');

  const atSnap = await scanAll(db, { snapshot: snap });
  t.is(diffEntries(atSnap, before.sorted()), null, 'an iterator at the snapshot sees exactly the old state');
  const rangeAtSnap = await scanAll(db, { snapshot: snap, gte: 'k10', lt: 'k2', reverse: true });
  t.is(diffEntries(rangeAtSnap, before.range({ gte: 'k10', lt: 'k2', reverse: true })), null);

  snap.release();
  snap.release(); // idempotent
  t.is(snap.seq, -1, 'a released snapshot reports seq -1');
  t.is(db.stats().snapshots, 0, 'released');
  // Snapshot is Disposable too.
  const s2 = db.snapshot();
  s2[Symbol.dispose]();
  t.is(s2.seq, -1);
});

test('an iterator reads one consistent snapshot while writes, flushes and compactions continue', async (t) => {
  const db = await openSmallDb(tmpDir(t), { memtableBytes: 64 * 1024, l0CompactionTrigger: 2, targetFileBytes: 64 * 1024 });
  t.teardown(() => db.close());
  const N = 2000;
  const key = (i) => `c${String(i).padStart(5, '0')}`;
  await db.batch(Array.from({ length: N }, (_, i) => ({ type: 'put', key: key(i), value: `gen0-${i}-${'p'.repeat(100)}` })));
  const it = db.iterator({ keyEncoding: 'utf8', valueEncoding: 'utf8' });
  const seen = [];
  let gen = 0;
  const flushesBefore = db.stats().flushes;
  for (;;) {
    const chunk = await it.nextv(37);
    if (chunk.length === 0) break;
    seen.push(...chunk);
    // Between steps: overwrite everything ahead, delete some, insert new keys in the gaps.
    gen++;
    const ops = [];
    for (let i = 0; i < N; i += 7) ops.push({ type: 'put', key: key(i), value: `gen${gen}-${i}-${'q'.repeat(100)}` });
    for (let i = 3; i < N; i += 11) ops.push({ type: 'del', key: key(i) });
    ops.push({ type: 'put', key: `${key(gen * 13 % N)}x`, value: 'inserted' });
    await db.batch(ops);
    if (gen % 10 === 0) await db.flush();
  }
  t.true(db.stats().flushes > flushesBefore, 'flushes happened while the iterator was open');
  t.is(seen.length, N, `the iterator yielded the ${N} keys of its snapshot (got ${seen.length})`);
  const wrong = seen.findIndex(([k, v], i) => k !== key(i) || v !== `gen0-${i}-${'p'.repeat(100)}`);
  t.is(wrong, -1, `entry #${wrong} is not from the snapshot: ${JSON.stringify(seen[wrong])?.slice(0, 80)}`);
  await it.close();
});

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
  const db = await openSmallDb(tmpDir(t), { memtableBytes: 64 * 1024 });
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
  for (const f of ['appends', 'appendBytes', 'groups', 'fsyncs', 'bytesWritten', 'firstSeq', 'lastSeq', 'segments']) t.is(typeof s.log[f], 'number', `log.${f}`);
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
