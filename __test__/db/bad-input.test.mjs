// Bad input to the key-value Db is a clear error with a stable code and never costs a good
// write: wrong types for every method and option, invalid and unknown options (naming the
// field), oversized keys and writes, released or foreign snapshots, misuse of iterators and
// chained batches, double close, and a second process on the same directory.

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { open, openTestDb, backend, UringdbError, DbOptionsSchema } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { spawnChild, waitReady } from '../helpers/child.mjs';
import { MiB, SMALL, openSmallDb } from '../helpers/db.mjs';
import { errorOf, expectError, expectThrowSync, NOT_BYTES as NOT_BYTES_OF_ALL } from '../helpers/expect.mjs';

// Values of the wrong type for a key or a value, and an ArrayBuffer (not a view).
const NOT_BYTES = [...NOT_BYTES_OF_ALL, ['ArrayBuffer', new ArrayBuffer(4)]];

// Options arguments that are not objects.
const NOT_OBJECT = [
  ['a string', 'sync'],
  ['a number', 1],
  ['true', true],
  ['an array', [true]],
];

test('wrong key/value types reject with ERR_URINGDB_INVALID_ARGUMENT for every method and write nothing', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.put('good', '1');
  const seq0 = db.stats().visibleSeq;
  for (const [name, bad] of NOT_BYTES) {
    await expectError(t, () => db.put(bad, 'v'), 'ERR_URINGDB_INVALID_ARGUMENT', `put(key: ${name})`);
    await expectError(t, () => db.put('k', bad), 'ERR_URINGDB_INVALID_ARGUMENT', `put(value: ${name})`);
    await expectError(t, () => db.del(bad), 'ERR_URINGDB_INVALID_ARGUMENT', `del(${name})`);
    await expectError(t, () => db.get(bad), 'ERR_URINGDB_INVALID_ARGUMENT', `get(${name})`);
    await expectError(t, () => db.getMany([bad]), 'ERR_URINGDB_INVALID_ARGUMENT', `getMany([${name}])`);
    await expectError(t, () => db.getMany(['good', bad]), 'ERR_URINGDB_INVALID_ARGUMENT', `getMany(['good', ${name}])`);
    expectThrowSync(t, () => db.getSync(bad), 'ERR_URINGDB_INVALID_ARGUMENT', `getSync(${name})`);
    await expectError(t, () => db.batch([{ type: 'put', key: bad, value: 'v' }]), 'ERR_URINGDB_INVALID_ARGUMENT', `batch put key ${name}`);
    await expectError(t, () => db.batch([{ type: 'put', key: 'k', value: bad }]), 'ERR_URINGDB_INVALID_ARGUMENT', `batch put value ${name}`);
    await expectError(t, () => db.batch([{ type: 'del', key: bad }]), 'ERR_URINGDB_INVALID_ARGUMENT', `batch del key ${name}`);
    expectThrowSync(t, () => db.batch().put(bad, 'v'), 'ERR_URINGDB_INVALID_ARGUMENT', `chained put key ${name}`);
    expectThrowSync(t, () => db.batch().put('k', bad), 'ERR_URINGDB_INVALID_ARGUMENT', `chained put value ${name}`);
    expectThrowSync(t, () => db.batch().del(bad), 'ERR_URINGDB_INVALID_ARGUMENT', `chained del ${name}`);
    if (bad !== undefined) {
      for (const bound of ['gt', 'gte', 'lt', 'lte']) {
        expectThrowSync(t, () => db.iterator({ [bound]: bad }), 'ERR_URINGDB_INVALID_ARGUMENT', `iterator({${bound}: ${name}})`);
        await expectError(t, () => db.clear({ [bound]: bad }), 'ERR_URINGDB_INVALID_ARGUMENT', `clear({${bound}: ${name}})`);
      }
      await expectError(t, () => db.compactRange({ gte: bad }), 'ERR_URINGDB_INVALID_ARGUMENT', `compactRange({gte: ${name}})`);
      await expectError(t, () => db.compactRange({ lte: bad }), 'ERR_URINGDB_INVALID_ARGUMENT', `compactRange({lte: ${name}})`);
    }
  }
  await expectError(t, () => db.put(), 'ERR_URINGDB_INVALID_ARGUMENT', 'put() without arguments');
  await expectError(t, () => db.put('k'), 'ERR_URINGDB_INVALID_ARGUMENT', 'put(k) without a value');
  await expectError(t, () => db.get(), 'ERR_URINGDB_INVALID_ARGUMENT', 'get() without a key');

  // A batch with one bad operation writes none of its good ones.
  await expectError(
    t,
    () => db.batch([{ type: 'put', key: 'b1', value: 'v' }, { type: 'put', key: 'b2', value: 7 }]),
    'ERR_URINGDB_INVALID_ARGUMENT',
    'batch with a bad last operation',
  );
  t.is(await db.get('b1'), undefined, 'no operation of a rejected batch was applied');
  t.is(db.stats().visibleSeq, seq0, 'no bad call consumed a sequence number');
  t.is(await db.get('good', { encoding: 'utf8' }), '1');
});

test('malformed batches, options and encodings reject with ERR_URINGDB_INVALID_ARGUMENT', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const badOps = [
    ['a string', 'put'],
    ['a number', 5],
    ['null', null],
    ['an object', { 0: { type: 'put', key: 'a', value: 'b' }, length: 1 }],
    ['an array with null', [null]],
    ['an array with a number', [5]],
    ['an unknown type', [{ type: 'merge', key: 'a', value: 'b' }]],
    ['a missing type', [{ key: 'a', value: 'b' }]],
    ['a put without value', [{ type: 'put', key: 'a' }]],
    ['a del without key', [{ type: 'del' }]],
  ];
  for (const [name, ops] of badOps) await expectError(t, () => db.batch(ops), 'ERR_URINGDB_INVALID_ARGUMENT', `batch(${name})`);

  for (const [name, o] of NOT_OBJECT) {
    await expectError(t, () => db.put('k', 'v', o), 'ERR_URINGDB_INVALID_ARGUMENT', `put options ${name}`);
    await expectError(t, () => db.del('k', o), 'ERR_URINGDB_INVALID_ARGUMENT', `del options ${name}`);
    await expectError(t, () => db.get('k', o), 'ERR_URINGDB_INVALID_ARGUMENT', `get options ${name}`);
    await expectError(t, () => db.getMany(['k'], o), 'ERR_URINGDB_INVALID_ARGUMENT', `getMany options ${name}`);
    expectThrowSync(t, () => db.getSync('k', o), 'ERR_URINGDB_INVALID_ARGUMENT', `getSync options ${name}`);
    await expectError(t, () => db.batch([{ type: 'put', key: 'k', value: 'v' }], o), 'ERR_URINGDB_INVALID_ARGUMENT', `batch options ${name}`);
    await expectError(t, () => db.batch().put('k', 'v').write(o), 'ERR_URINGDB_INVALID_ARGUMENT', `chained write options ${name}`);
    await expectError(t, () => db.clear(o), 'ERR_URINGDB_INVALID_ARGUMENT', `clear options ${name}`);
    await expectError(t, () => db.compactRange(o), 'ERR_URINGDB_INVALID_ARGUMENT', `compactRange range ${name}`);
    expectThrowSync(t, () => db.iterator(o), 'ERR_URINGDB_INVALID_ARGUMENT', `iterator options ${name}`);
    expectThrowSync(t, () => db.keys(o), 'ERR_URINGDB_INVALID_ARGUMENT', `keys options ${name}`);
    expectThrowSync(t, () => db.values(o), 'ERR_URINGDB_INVALID_ARGUMENT', `values options ${name}`);
  }
  for (const sync of ['yes', 1, 'false', {}]) {
    await expectError(t, () => db.put('k', 'v', { sync }), 'ERR_URINGDB_INVALID_ARGUMENT', `put sync ${String(sync)}`);
    await expectError(t, () => db.del('k', { sync }), 'ERR_URINGDB_INVALID_ARGUMENT', `del sync ${String(sync)}`);
    await expectError(t, () => db.batch([{ type: 'del', key: 'k' }], { sync }), 'ERR_URINGDB_INVALID_ARGUMENT', `batch sync ${String(sync)}`);
    await expectError(t, () => db.batch([], { sync }), 'ERR_URINGDB_INVALID_ARGUMENT', `empty batch sync ${String(sync)}`);
    await expectError(t, () => db.clear({ sync }), 'ERR_URINGDB_INVALID_ARGUMENT', `clear sync ${String(sync)}`);
  }
  for (const enc of ['hex', 'base64', 5, 'json']) {
    await expectError(t, () => db.get('k', { encoding: enc }), 'ERR_URINGDB_INVALID_ARGUMENT', `get encoding ${enc}`);
    await expectError(t, () => db.getMany(['k'], { encoding: enc }), 'ERR_URINGDB_INVALID_ARGUMENT', `getMany encoding ${enc}`);
    expectThrowSync(t, () => db.getSync('k', { encoding: enc }), 'ERR_URINGDB_INVALID_ARGUMENT', `getSync encoding ${enc}`);
    expectThrowSync(t, () => db.iterator({ keyEncoding: enc }), 'ERR_URINGDB_INVALID_ARGUMENT', `iterator keyEncoding ${enc}`);
    expectThrowSync(t, () => db.iterator({ valueEncoding: enc }), 'ERR_URINGDB_INVALID_ARGUMENT', `iterator valueEncoding ${enc}`);
  }
  for (const [name, target] of [['a string', 'xxxx'], ['an array', [0, 0]], ['an ArrayBuffer', new ArrayBuffer(8)], ['a number', 8]]) {
    expectThrowSync(t, () => db.getSync('k', { target }), 'ERR_URINGDB_INVALID_ARGUMENT', `getSync target ${name}`);
  }
  // The value is copied into the target while the key is read: the two must not overlap.
  const shared = Buffer.alloc(16, 1);
  for (const [name, key, target] of [['the key itself', shared, shared], ['a view overlapping the key', shared.subarray(0, 8), shared.subarray(4)]]) {
    expectThrowSync(t, () => db.getSync(key, { target }), 'ERR_URINGDB_INVALID_ARGUMENT', `getSync target ${name}`);
  }
  t.is(db.getSync(shared.subarray(0, 8), { target: shared.subarray(8) }), -1, 'adjacent views of one buffer are fine');
  for (const limit of [-2, 1.5, 'x', NaN, -Infinity]) {
    expectThrowSync(t, () => db.iterator({ limit }), 'ERR_URINGDB_INVALID_ARGUMENT', `iterator limit ${String(limit)}`);
    await expectError(t, () => db.clear({ limit }), 'ERR_URINGDB_INVALID_ARGUMENT', `clear limit ${String(limit)}`);
  }
  for (const reverse of ['yes', 1, null]) {
    expectThrowSync(t, () => db.iterator({ reverse }), 'ERR_URINGDB_INVALID_ARGUMENT', `iterator reverse ${String(reverse)}`);
  }
  await expectError(t, () => db.getMany('abc'), 'ERR_URINGDB_INVALID_ARGUMENT', 'getMany(a string)');
  await expectError(t, () => db.getMany(Buffer.from('abc')), 'ERR_URINGDB_INVALID_ARGUMENT', 'getMany(a Buffer)');
  await expectError(t, () => db.getMany(null), 'ERR_URINGDB_INVALID_ARGUMENT', 'getMany(null)');
  t.deepEqual(await db.getMany(['k']), [undefined], 'nothing was written by the bad calls');
});

test('a released snapshot rejects with ERR_URINGDB_INVALID_ARGUMENT in every read', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.put('k', 'old');
  const snap = db.snapshot();
  await db.put('k', 'new');
  snap.release();
  await expectError(t, () => db.get('k', { snapshot: snap }), 'ERR_URINGDB_INVALID_ARGUMENT', 'get at a released snapshot');
  await expectError(t, () => db.getMany(['k'], { snapshot: snap }), 'ERR_URINGDB_INVALID_ARGUMENT', 'getMany at a released snapshot');
  await expectError(t, () => db.getSync('k', { snapshot: snap }), 'ERR_URINGDB_INVALID_ARGUMENT', 'getSync at a released snapshot');
  await expectError(t, () => db.getSync('k', { snapshot: snap, target: Buffer.alloc(8) }), 'ERR_URINGDB_INVALID_ARGUMENT', 'getSync(target) at a released snapshot');
  await expectError(t, async () => db.iterator({ snapshot: snap }).next(), 'ERR_URINGDB_INVALID_ARGUMENT', 'iterator at a released snapshot');
  t.is(await db.get('k', { encoding: 'utf8' }), 'new', 'the db works on');
});

test('a snapshot option that is not a Snapshot (or is another database\'s) is refused, never silently ignored', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.put('k', 'old');
  await db.put('k', 'new');
  // A value that is not a snapshot must not be silently ignored (that would read the current state).
  for (const [name, fake] of [['{}', {}], ['a number', 5], ['a string', 'snap'], ['a look-alike', { seq: 1, release() {} }]]) {
    await expectError(t, () => db.get('k', { snapshot: fake }), 'ERR_URINGDB_INVALID_ARGUMENT', `get snapshot ${name}`);
    await expectError(t, () => db.getMany(['k'], { snapshot: fake }), 'ERR_URINGDB_INVALID_ARGUMENT', `getMany snapshot ${name}`);
    await expectError(t, () => db.getSync('k', { snapshot: fake }), 'ERR_URINGDB_INVALID_ARGUMENT', `getSync snapshot ${name}`);
    expectThrowSync(t, () => db.iterator({ snapshot: fake }), 'ERR_URINGDB_INVALID_ARGUMENT', `iterator snapshot ${name}`);
  }
  // A snapshot of another database is not this database's snapshot... but it is a Snapshot;
  // whatever the engine does, it must not return the other database's data.
  const other = await openSmallDb(tmpDir(t));
  t.teardown(() => other.close());
  await other.put('k', 'other-db');
  const foreign = other.snapshot();
  const r = await db.get('k', { snapshot: foreign, encoding: 'utf8' }).then((v) => ({ v }), (err) => ({ err }));
  t.true(r.err !== undefined || r.v === 'old' || r.v === 'new', `a foreign snapshot never reads another database (got ${JSON.stringify(r)})`);
  foreign.release();
});

test('oversized keys, writes above maxBatchBytes; the limits themselves work', async (t) => {
  const db = await openSmallDb(tmpDir(t)); // ringBytes 1 MiB
  t.teardown(() => db.close());
  const over = Buffer.alloc(64 * 1024 + 1, 0x6b);
  await expectError(t, () => db.put(over, 'v'), 'ERR_URINGDB_INVALID_ARGUMENT', 'put key of 65537 bytes');
  await expectError(t, () => db.put('€'.repeat(21846), 'v'), 'ERR_URINGDB_INVALID_ARGUMENT', 'put string key of 65538 UTF-8 bytes');
  await expectError(t, () => db.del(over), 'ERR_URINGDB_INVALID_ARGUMENT', 'del key of 65537 bytes');
  await expectError(t, () => db.get(over), 'ERR_URINGDB_INVALID_ARGUMENT', 'get key of 65537 bytes');
  await expectError(t, () => db.getMany(['a', over]), 'ERR_URINGDB_INVALID_ARGUMENT', 'getMany with a key of 65537 bytes');
  expectThrowSync(t, () => db.getSync(over), 'ERR_URINGDB_INVALID_ARGUMENT', 'getSync key of 65537 bytes');
  await expectError(t, () => db.batch([{ type: 'put', key: 'ok', value: 'v' }, { type: 'put', key: over, value: 'v' }]), 'ERR_URINGDB_INVALID_ARGUMENT', 'batch with an oversized key');
  expectThrowSync(t, () => db.batch().put(over, 'v'), 'ERR_URINGDB_INVALID_ARGUMENT', 'chained put oversized key');
  expectThrowSync(t, () => db.iterator({ gte: over }), 'ERR_URINGDB_INVALID_ARGUMENT', 'iterator bound of 65537 bytes');
  expectThrowSync(t, () => db.iterator().seek(over), 'ERR_URINGDB_INVALID_ARGUMENT', 'seek to 65537 bytes');
  t.is(await db.get('ok'), undefined, 'the batch with the oversized key wrote nothing');

  // A write above the commit queue's per-write limit (a quarter to half of ringBytes).
  const huge = Buffer.alloc(MiB, 0x76);
  await expectError(t, () => db.put('big', huge), 'ERR_URINGDB_RECORD_TOO_LARGE', 'put of a 1 MiB value with a 1 MiB ring');
  await expectError(
    t,
    () => db.batch(Array.from({ length: 8 }, (_, i) => ({ type: 'put', key: `b${i}`, value: huge.subarray(0, 128 * 1024) }))),
    'ERR_URINGDB_RECORD_TOO_LARGE',
    'batch of 1 MiB total',
  );
  const chained = db.batch();
  for (let i = 0; i < 8; i++) chained.put(`c${i}`, huge.subarray(0, 128 * 1024));
  await expectError(t, () => chained.write(), 'ERR_URINGDB_RECORD_TOO_LARGE', 'chained batch of 1 MiB total');
  t.deepEqual(await db.getMany(['big', 'b0', 'c0']), [undefined, undefined, undefined], 'nothing of the oversized writes was applied');

  // The limits: a 64 KiB key, and a 100 KiB value, work.
  const max = Buffer.alloc(64 * 1024, 0x6d);
  await db.put(max, huge.subarray(0, 100 * 1024));
  t.is((await db.get(max))?.length, 100 * 1024);
  t.is(db.getSync(max, { target: Buffer.alloc(1) }), 100 * 1024);
  await db.put('after', 'ok');
  t.is(await db.get('after', { encoding: 'utf8' }), 'ok', 'the db works after the rejected writes');
});

test('iterator and chained batch misuse: busy iterator, bad nextv sizes, seek types, writing a batch twice', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  for (let i = 0; i < 10; i++) await db.put(`k${i}`, `${i}`);
  const it = db.iterator();
  for (const size of [0, -1, 1.5, 'x', null, undefined, NaN]) {
    await expectError(t, () => it.nextv(size), 'ERR_URINGDB_INVALID_ARGUMENT', `nextv(${String(size)})`);
  }
  for (const [name, bad] of NOT_BYTES) expectThrowSync(t, () => it.seek(bad), 'ERR_URINGDB_INVALID_ARGUMENT', `seek(${name})`);
  const first = it.next();
  await expectError(t, () => it.next(), 'ERR_URINGDB_INVALID_ARGUMENT', 'next() while a next() is pending');
  await expectError(t, () => it.nextv(2), 'ERR_URINGDB_INVALID_ARGUMENT', 'nextv() while a next() is pending');
  t.deepEqual((await first).value?.map(String), ['k0', '0'], 'the pending next() is unaffected');
  t.deepEqual((await it.nextv(2)).map(([k]) => String(k)), ['k1', 'k2'], 'the iterator goes on afterwards');
  await it.close();

  const b = db.batch().put('x', '1');
  await b.write();
  await expectError(t, () => b.write(), 'ERR_URINGDB_INVALID_ARGUMENT', 'writing a chained batch twice');
  expectThrowSync(t, () => b.put('y', '2'), 'ERR_URINGDB_INVALID_ARGUMENT', 'put on a written chained batch');
  expectThrowSync(t, () => b.del('y'), 'ERR_URINGDB_INVALID_ARGUMENT', 'del on a written chained batch');
  t.is(await db.get('y'), undefined);
});

test('open(): every invalid option rejects with ERR_URINGDB_INVALID_OPTION naming the field; nothing is created', async (t) => {
  const base = tmpDir(t);
  const cases = [
    ['sync', 'yes'],
    ['ioBackend', 'libaio'],
    ['ioBackend', 1],
    ['recovery', 'lenient'],
    ['segmentBytes', 1000],
    ['segmentBytes', MiB + 1],
    ['segmentBytes', '1MiB'],
    ['ringBytes', 3 * MiB],
    ['ringBytes', 1024],
    ['commitDelayUs', -1],
    ['commitDelayUs', 1.5],
    ['memtableBytes', 1000],
    ['memtableBytes', 'big'],
    ['maxImmutableMemtables', 0],
    ['l0CompactionTrigger', 0],
    ['l0CompactionTrigger', 1.5],
    ['l0SlowdownTrigger', 0],
    ['l0StopTrigger', 'x'],
    ['levelBaseBytes', 1000],
    ['levelMultiplier', 1],
    ['targetFileBytes', 100],
    ['compression', 'gzip'],
    ['compression', ['none', 'gzip']],
    ['compression', []],
    ['compression', 5],
    ['bloomBitsPerKey', 65],
    ['bloomBitsPerKey', -1],
    ['blockBytes', 10],
    ['cacheBytes', -1],
    ['cacheBytes', NaN],
    ['compactionThreads', 0],
    ['compactionRateBytesPerSec', -1],
    ['compactionRateBytesPerSec', Infinity],
    ['maxOpenFiles', 15],
    ['maxOpenFiles', 2 ** 20 + 1],
    ['maxOpenFiles', 1.5],
  ];
  let i = 0;
  for (const [field, value] of cases) {
    const dir = path.join(base, `c${i++}`);
    const err = await expectError(t, () => openTestDb(dir, { ...SMALL, [field]: value }), 'ERR_URINGDB_INVALID_OPTION', `${field}: ${JSON.stringify(value) ?? String(value)}`);
    t.is(err?.field, field, `${field}=${String(value)}: err.field names the option (got ${err?.field})`);
    t.true(String(err?.message).includes(field), `${field}: the message names the option (${err?.message})`);
    t.false(fs.existsSync(dir), `${field}: an invalid option creates nothing`);
    // The exported schema agrees.
    t.false(DbOptionsSchema.safeParse({ [field]: value }).success, `DbOptionsSchema rejects ${field}=${String(value)}`);
  }
  // Unknown keys (typos included) are rejected, naming the key.
  for (const key of ['bogus', 'memtablebytes', 'cache_bytes', 'writeBufferSize']) {
    const dir = path.join(base, `u-${key}`);
    const err = await expectError(t, () => openTestDb(dir, { [key]: 1 }), 'ERR_URINGDB_INVALID_OPTION', `unknown option ${key}`);
    t.is(err?.field, key, `unknown option ${key}: err.field names it (got ${err?.field})`);
    t.false(fs.existsSync(dir));
  }
  // Options that contradict each other.
  await expectError(t, () => openTestDb(path.join(base, 'x1'), { l0CompactionTrigger: 10, l0SlowdownTrigger: 5 }), 'ERR_URINGDB_INVALID_OPTION', 'slowdown below the compaction trigger');
  // Non-object options and bad directories.
  for (const [name, o] of NOT_OBJECT) {
    await expectError(t, () => open(path.join(base, 'x2'), o), 'ERR_URINGDB_INVALID_OPTION', `open options ${name}`);
  }
  for (const [name, dir] of [['a number', 5], ['an empty string', ''], ['null', null], ['a Buffer', Buffer.from(base)]]) {
    await expectError(t, () => open(dir), 'ERR_URINGDB_INVALID_ARGUMENT', `open(dir: ${name})`);
  }
  // A file where the directory should be.
  const file = path.join(base, 'a-file');
  fs.writeFileSync(file, 'x');
  const err = await errorOf(() => openTestDb(file, SMALL));
  t.truthy(err, 'opening a regular file as a database fails');
  t.true(err instanceof UringdbError, `as a UringdbError (${err?.code}: ${err?.message})`);
  t.true(typeof err?.code === 'string' && err.code.length > 0);
  // Valid edge values open fine.
  const ok = await openTestDb(path.join(base, 'ok'), { ...SMALL, memtableBytes: 64 * 1024, targetFileBytes: 64 * 1024, levelBaseBytes: MiB, compression: ['none', 'lz4', 'zstd'], bloomBitsPerKey: 0, cacheBytes: 0 });
  await ok.put('k', 'v');
  t.is(await ok.get('k', { encoding: 'utf8' }), 'v');
  await ok.close();
});

test('double close is fine; close of a second handle on the same directory leaves the first working', async (t) => {
  const dir = tmpDir(t);
  const a = await openSmallDb(dir);
  const b = await openSmallDb(dir); // same process: joins the engine
  t.is(b.recovery.opened, false, 'the second handle joined the open engine');
  await b.put('from-b', '1');
  await Promise.all([b.close(), b.close()]);
  await b.close();
  t.is(await a.get('from-b', { encoding: 'utf8' }), '1', 'the first handle still works after the second closed');
  await a.put('from-a', '2');
  await a.close();
  await a.close();
  const c = await openSmallDb(dir);
  t.deepEqual(await c.getMany(['from-a', 'from-b'], { encoding: 'utf8' }), ['2', '1']);
  await c.close();
});

test('opening a directory another process holds open rejects with ERR_URINGDB_LOCKED', async (t) => {
  t.timeout(60_000);
  const dir = tmpDir(t);
  const child = spawnChild(t, 'db-hold-open.mjs', [dir, backend()]);
  const ready = await waitReady(t, child, 'the db');
  if (ready === null) return;
  t.is(ready.lastSeq, 1);
  const err = await expectError(t, () => openSmallDb(dir), 'ERR_URINGDB_LOCKED', 'open while another process holds the db');
  t.true(String(err?.message).length > 0);
  // The failed open left the holder's database alone; once the holder dies, the lock is free.
  child.kill('SIGKILL');
  const { signal } = await child.closed;
  t.is(signal, 'SIGKILL');
  const db = await openSmallDb(dir);
  t.is(await db.get('held-by', { encoding: 'utf8' }), String(child.pid), "the holder's write survived");
  await db.close();
});
