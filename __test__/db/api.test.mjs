// The key-value Db API, writes and point reads: round trips of every key/value form, reads
// (get, getMany, getSync), atomic batches and clear. Iterators and snapshots are in
// iterators.test.mjs; flush, reopen, stats, diagnostics, dispose, close and worker_threads in
// lifecycle.test.mjs.

import test from 'ava';
import { ChainedBatch } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { openSmallDb, Model, diffEntries, scanAll, levelFiles, utf8 } from '../helpers/db.mjs';

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
