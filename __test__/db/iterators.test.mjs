// The key-value Db API, iteration: iterators against a sorted model (ranges, reverse, limit,
// encodings, nextv, seek) and snapshots (isolation from later writes, flushes and
// compactions).

import test from 'ava';
import { Snapshot, DbIterator } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { openSmallDb, Model, rng, randomKeyOf, diffEntries, scanAll, show, levelFiles, utf8 } from '../helpers/db.mjs';

test('iterators match a sorted model: gt/gte/lt/lte, reverse, limit, over memtable + tables, with deletes', async (t) => {
  const seed = (Date.now() ^ process.pid) >>> 0;
  t.log(`seed ${seed}`);
  const rand = rng(seed);
  const db = await openSmallDb(tmpDir(t), { memtableBytes: 64 * 1024, l0CompactionTrigger: 3, targetFileBytes: 64 * 1024 });
  t.teardown(() => db.close());
  const model = new Model();
  const keyOf = randomKeyOf(rand);
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
