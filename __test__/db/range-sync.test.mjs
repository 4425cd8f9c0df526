// The synchronous range (db.rangeSync): the same entries in the same order as the async
// iterator and a sorted model for random ranges (reverse, limit, over memtable + tables with
// deletes and overwrites), the keys-only and values-only shapes, snapshot isolation while
// writes, flushes and compactions continue, views valid until the next step, entries larger
// than a fill's buffer, closing (early exit, dispose, the database closing), bad options.

import assert from 'node:assert';
import test from 'ava';
import { pkg } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { expectThrowSync } from '../helpers/expect.mjs';
import { openSmallDb, Model, rng, randomKeyOf, diffEntries, scanAll, show, levelFiles, CHURN } from '../helpers/db.mjs';

const { RangeSync } = pkg;

const copy = (b) => Buffer.from(b);

test('rangeSync equals the async iterator and the model for random ranges, reverse and limit, over memtable + tables with deletes and overwrites', async (t) => {
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
    for (let i = 0; i < 500; i++) {
      if (keys.length > 0 && rand() % 5 === 0) {
        ops.push({ type: 'del', key: keys[rand() % keys.length] });
      } else {
        // Overwrites of earlier keys (a newer version in the memtable or a newer table).
        const k = rand() % 3 === 0 && keys.length > 0 ? keys[rand() % keys.length] : keyOf();
        keys.push(k);
        ops.push({ type: 'put', key: k, value: Buffer.alloc(rand() % 300, rand() & 0xff) });
      }
    }
    await db.batch(ops);
    for (const op of ops) (op.type === 'put' ? model.put(op.key, op.value) : model.del(op.key));
    if (round % 2 === 0) await db.flush();
  }
  t.true(levelFiles(db.stats()) > 0, 'data spans tables and the memtable');

  t.is(diffEntries([...db.rangeSync()].map(([k, v]) => [copy(k), copy(v)]), model.sorted()), null, 'full range equals the model');
  t.is(diffEntries([...db.rangeSync()], await scanAll(db)), null, 'full range equals the async iterator');

  const pick = () => (rand() % 3 === 0 ? keyOf() : keys[rand() % keys.length]);
  let checked = 0;
  for (let i = 0; i < 150; i++) {
    const options = {};
    const lower = rand() % 3;
    if (lower === 1) options.gt = pick();
    if (lower === 2) options.gte = pick();
    const upper = rand() % 3;
    if (upper === 1) options.lt = pick();
    if (upper === 2) options.lte = pick();
    if (rand() % 2 === 0) options.reverse = true;
    if (rand() % 3 === 0) options.limit = rand() % 5000;
    const expected = model.range(options);
    const desc = Object.entries(options).map(([k, v]) => `${k}=${typeof v === 'object' ? show(v) : v}`).join(' ');
    const viaAsync = await scanAll(db, options);
    t.is(diffEntries(viaAsync, expected), null, `iterator(${desc})`);
    let actual;
    const shape = i % 4;
    if (shape === 0) {
      actual = [...db.rangeSync(options)];
    } else if (shape === 1) {
      // Keys alone: compared by key with the model's entries.
      actual = [...db.rangeSync({ ...options, values: false })].map((k) => [k, undefined]);
    } else if (shape === 2) {
      // Values alone, paired with the model's keys.
      const values = [...db.rangeSync({ ...options, keys: false })];
      actual = values.map((v, j) => [expected[j]?.[0] ?? Buffer.from('?'), v]);
      t.is(values.length, expected.length, `values-only count (${desc})`);
    } else {
      // Views: copied before the next step, as documented.
      actual = [];
      for (const [k, v] of db.rangeSync({ ...options, views: true })) actual.push([copy(k), copy(v)]);
    }
    const d = diffEntries(actual, expected);
    t.is(d, null, `rangeSync(${desc}) shape ${shape}: ${d}`);
    if (d !== null) break;
    checked += expected.length;
  }
  t.true(checked > 0, 'the random ranges covered entries');
  t.deepEqual([...db.rangeSync({ limit: 0 })], [], 'limit 0: empty');
  t.is([...db.rangeSync({ limit: -1 })].length, model.map.size, 'limit -1: no limit');
  t.is([...db.rangeSync({ limit: Infinity, values: false })].length, model.map.size, 'limit Infinity: no limit');
});

test('rangeSync reads its snapshot while writes, flushes and compactions continue between steps; an explicit snapshot is honoured', async (t) => {
  const db = await openSmallDb(tmpDir(t), CHURN);
  t.teardown(() => db.close());
  const before = new Model();
  const value = (i, tag) => `${tag}-${i}-${'x'.repeat(i % 50)}`;
  const b = db.batch();
  for (let i = 0; i < 3000; i++) {
    const k = `k${String(i).padStart(5, '0')}`;
    b.put(k, value(i, 'old'));
    before.put(k, value(i, 'old'));
  }
  await b.write();
  await db.flush();
  const snap = db.snapshot();
  t.teardown(() => snap.release());
  // Written after the snapshot, before the ranges are made: the implicit snapshot sees it,
  // the explicit one does not.
  await db.del('k00000');
  await db.put('k00001', 'between');
  before.del('k00000');
  const atSnap = before.clone();
  atSnap.put('k00000', value(0, 'old'));
  before.put('k00001', 'between');

  const range = db.rangeSync({ keyEncoding: 'utf8', valueEncoding: 'utf8' });
  const pinned = db.rangeSync({ snapshot: snap, reverse: true, keyEncoding: 'utf8', valueEncoding: 'utf8' });
  const seen = [];
  const seenReverse = [];
  let step = 0;
  for (const e of range) {
    seen.push(e);
    const r = pinned.next();
    if (!r.done) seenReverse.push(r.value);
    if (step++ % 300 === 0) {
      // Overwrite, delete and add keys on both sides of the position, then flush and compact.
      const w = db.batch();
      for (let j = 0; j < 200; j++) {
        const i = (step * 7 + j * 13) % 3000;
        const k = `k${String(i).padStart(5, '0')}`;
        if (j % 3 === 0) w.del(k);
        else w.put(k, value(i, 'new'));
      }
      w.put(`k${String(3000 + step).padStart(5, '0')}`, 'added');
      await w.write();
      await db.flush();
      if (step % 900 === 1) await db.compactRange();
    }
  }
  for (let r = pinned.next(); !r.done; r = pinned.next()) seenReverse.push(r.value);
  const expected = before.sorted().map(([k, v]) => [k.toString(), v.toString()]);
  t.deepEqual(seen.length, expected.length);
  t.deepEqual(seen, expected, 'the range saw the state as of its creation');
  const expectedAtSnap = atSnap.sorted().map(([k, v]) => [k.toString(), v.toString()]).reverse();
  t.deepEqual(seenReverse, expectedAtSnap, 'the range at an explicit snapshot saw that state, in reverse');
  t.true(levelFiles(db.stats()) > 0);
  const now = [...db.rangeSync({ values: false, keyEncoding: 'utf8' })];
  t.notDeepEqual(now, expected.map(([k]) => k), 'a new range sees the later writes');
  t.is(db.stats().snapshots, 1, 'the ranges released their snapshots; the explicit one remains');
});

test('views: true yields views of one reused buffer (valid until the next step); without it, every yielded Buffer stays valid; entries larger than a fill', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const n = 20_000;
  for (let at = 0; at < n; at += 5000) {
    const w = db.batch();
    for (let i = at; i < at + 5000; i++) w.put(`k${String(i).padStart(6, '0')}`, `v${i}`);
    await w.write();
  }

  // Default: keep every key; all still hold their bytes after the scan.
  const kept = [...db.rangeSync({ values: false })];
  t.is(kept.length, n);
  // Yielded Buffers are plain Buffers by every test, deep equality included (the abstract-level
  // suite and assert.deepStrictEqual compare prototypes).
  const k0 = kept[0];
  t.true(Buffer.isBuffer(k0));
  t.true(k0 instanceof Buffer);
  t.is(k0.constructor, Buffer);
  t.is(Object.getPrototypeOf(k0), Buffer.prototype);
  t.notThrows(() => assert.deepStrictEqual(k0, Buffer.from('k000000')));
  t.notThrows(() => assert.deepStrictEqual([...db.rangeSync({ limit: 1, views: true })], [[Buffer.from('k000000'), Buffer.from('v0')]]));
  t.is(k0.toString('hex'), Buffer.from('k000000').toString('hex'));
  t.true(k0.equals(Buffer.from('k000000')));
  t.true(k0.subarray(1, 3) instanceof Buffer);
  t.is(k0.subarray(1, 3).toString(), '00');
  t.is(k0.slice(0, 1).toString(), 'k');
  t.is(Buffer.concat([k0, k0]).length, 14);
  t.deepEqual(k0.toJSON(), Buffer.from('k000000').toJSON());
  t.true(kept.every((k, i) => k.toString() === `k${String(i).padStart(6, '0')}`), 'copies mode: every key kept intact');

  // Views: a view taken mid-scan (once the fills have grown to their full size) is
  // overwritten once the range has moved on (the buffer is reused), while each view read
  // before the next step was right.
  const r = db.rangeSync({ values: false, views: true });
  let held;
  let i = 0;
  for (const k of r) {
    if (k.toString() !== `k${String(i).padStart(6, '0')}`) break;
    if (i === 10_000) held = k;
    if (i === 19_000) t.not(held.toString(), 'k010000', 'the held view was reused by a later batch (views are valid only until the next step)');
    i++;
  }
  t.is(i, n, 'each view was right until the next step');
  t.is(held.length, 7);

  // Values larger than any fill's buffer (and than the whole first fill) cross whole.
  const big = (j) => Buffer.alloc(100_000 + j * 50_000, 0x41 + j);
  for (let j = 0; j < 4; j++) await db.put(`k${String(j * 5000).padStart(6, '0')}x`, big(j));
  for (const views of [false, true]) {
    let found = 0;
    let count = 0;
    for (const [k, v] of db.rangeSync({ views })) {
      count++;
      if (k.toString().endsWith('x')) {
        const j = Number(k.toString().slice(1, 7)) / 5000;
        t.true(v.equals(big(j)), `big value ${j} whole (views ${views})`);
        found++;
      }
    }
    t.is(found, 4);
    t.is(count, n + 4);
  }
});

test('rangeSync closing: early exit and dispose release it; a step after the database closed throws ERR_URINGDB_CLOSED', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  for (let i = 0; i < 10_000; i++) db.put(`k${String(i).padStart(5, '0')}`, 'v');
  await db.put('last', 'v');
  t.is(db.stats().snapshots, 0);

  const r = db.rangeSync();
  t.true(r instanceof RangeSync);
  t.is(r[Symbol.iterator](), r, 'an iterator of itself');
  for (const e of r) {
    t.truthy(e);
    break;
  }
  t.deepEqual(r.next(), { done: true, value: undefined }, 'ended by the early exit');

  const d = db.rangeSync({ limit: 5 });
  t.false(d.next().done);
  d[Symbol.dispose]();
  t.true(d.next().done, 'disposed: ended');
  d.close(); // idempotent

  const exhausted = db.rangeSync({ limit: 3 });
  t.is([...exhausted].length, 3);
  t.true(exhausted.next().done, 'stays ended');

  const open1 = db.rangeSync({ values: false });
  const open2 = db.rangeSync({ reverse: true });
  t.false(open1.next().done);
  const closing = db.close();
  const e1 = expectThrowSync(t, () => open1.next(), 'ERR_URINGDB_CLOSED', 'a step after close');
  t.regex(e1.message, /closed while this range was open/);
  expectThrowSync(t, () => open2.next(), 'ERR_URINGDB_CLOSED', 'an unstarted range after close');
  expectThrowSync(t, () => db.rangeSync(), 'ERR_URINGDB_CLOSED', 'rangeSync after close');
  await closing;
  expectThrowSync(t, () => open1.next(), 'ERR_URINGDB_CLOSED', 'after the close completed');
  open1.close();
});

test('rangeSync rejects bad options synchronously, naming the field', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.put('a', '1');
  const cases = [
    [{ keys: 'yes' }, /keys must be a boolean/],
    [{ values: 0 }, /values must be a boolean/],
    [{ views: 1 }, /views must be a boolean/],
    [{ keys: false, values: false }, /keys and values cannot both be false/],
    [{ limit: 1.5 }, /limit must be/],
    [{ limit: -2 }, /limit must be/],
    [{ reverse: 'no' }, /reverse must be a boolean/],
    [{ gte: 42 }, /gte/],
    [{ lt: {} }, /lt/],
    [{ keyEncoding: 'hex' }, /keyEncoding/],
    [{ valueEncoding: 'json' }, /valueEncoding/],
    [{ snapshot: {} }, /snapshot must come from db.snapshot\(\)/],
    ['not an object', /options/],
  ];
  for (const [options, message] of cases) {
    const e = expectThrowSync(t, () => db.rangeSync(options), 'ERR_URINGDB_INVALID_ARGUMENT', `rangeSync(${JSON.stringify(options)})`);
    t.regex(e?.message ?? '', message);
  }
  const s = db.snapshot();
  s.release();
  expectThrowSync(t, () => db.rangeSync({ snapshot: s }), 'ERR_URINGDB_INVALID_ARGUMENT', 'a released snapshot');
  t.is(db.stats().snapshots, 0, 'no range left open by a rejected call');
  t.deepEqual([...db.rangeSync({ keyEncoding: 'utf8', valueEncoding: 'utf8' })], [['a', '1']], 'nothing lost');
});
