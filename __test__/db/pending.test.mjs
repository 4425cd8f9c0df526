// Back-pressure by bytes and cancellation (issue 10, item 5) on the Db: `maxPendingBytes`
// bounds the bytes of writes a handle holds that have not completed (staged, parked, or in
// the commit ring); an `AbortSignal` cancels a write only before it enters the commit ring,
// and a cancelled write leaves no trace (checked by reopening and by the sequence numbers
// of the writes around it: a logged write takes a number).

import test from 'ava';
import crypto from 'node:crypto';
import { getEventListeners } from 'node:events';
import { pkg } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { MiB, openSmallDb } from '../helpers/db.mjs';

const { AbortError, UringdbError } = pkg;
const key = (i) => `k${String(i).padStart(5, '0')}`;

/** Asserts that `p` rejects as Node's APIs do on an abort, with `reason` as its cause. */
async function rejectsAborted(t, p, reason, what = '') {
  const err = await t.throwsAsync(p, undefined, what);
  t.is(err?.name, 'AbortError', what);
  t.is(err?.code, 'ABORT_ERR', what);
  t.is(err?.cause, reason, what);
  t.true(err instanceof AbortError && err instanceof UringdbError, what);
}

/** Outcomes of `ps` in order: the resolved value, or the error. */
const settle = (ps) => Promise.all(ps.map((p) => p.then((v) => ({ ok: true, v }), (e) => ({ ok: false, e }))));

test('maxPendingBytes: pending bytes never exceed the bound plus one write; writes wait and enter in order', async (t) => {
  const dir = tmpDir(t);
  const MAX = 64 * 1024;
  const value = crypto.randomBytes(1000);
  const ONE = 1 + 9 + 6 + value.length; // tag, op header, key, value
  const N = 2000;
  let db = await openSmallDb(dir, { maxPendingBytes: MAX });
  let peak = 0;
  const look = () => {
    peak = Math.max(peak, db._pendingBytes);
  };
  const order = [];
  const ps = [];
  for (let i = 0; i < N; i++) {
    ps.push(db.put(key(i), value).then((seq) => (order.push(i), look(), seq)));
    look();
  }
  t.true(db._waitingWrites > 0, `writes wait for room (${db._waitingWrites})`);
  const seqs = await Promise.all(ps);
  t.true(peak <= MAX + ONE, `peak pending ${peak} <= ${MAX} + one write`);
  t.true(peak > MAX / 2, `the bound was reached (peak ${peak})`);
  t.deepEqual(order, [...Array(N).keys()], 'resolved in call order');
  for (let i = 1; i < N; i++) t.is(seqs[i], seqs[i - 1] + 1);
  t.is(db._pendingBytes, 0);
  await db.close();
  db = await openSmallDb(dir);
  t.teardown(() => db.close());
  for (const i of [0, 1, N / 2, N - 1]) t.deepEqual(db.getSync(key(i)), value);
  t.is((await db.getMany([...Array(N).keys()].map(key))).filter((v) => v === undefined).length, 0);
});

test('maxPendingBytes: a write larger than the bound is taken when nothing else is pending', async (t) => {
  const db = await openSmallDb(tmpDir(t), { maxPendingBytes: 1 });
  t.teardown(() => db.close());
  const value = crypto.randomBytes(200 * 1024);
  const ps = [];
  let peak = 0;
  for (let i = 0; i < 20; i++) {
    ps.push(db.put(key(i), i % 2 === 0 ? value : 'small').then(() => (peak = Math.max(peak, db._pendingBytes))));
    peak = Math.max(peak, db._pendingBytes);
  }
  t.is(db._waitingWrites, 19, 'one write at a time');
  await Promise.all(ps);
  t.true(peak <= 1 + 9 + 6 + value.length, `one write at a time (peak ${peak})`);
  t.deepEqual(db.getSync(key(18)), value);
  t.is(db.getSync(key(19), { encoding: 'utf8' }), 'small');
});

test('maxPendingBytes: option validated by the schema, naming the field', async (t) => {
  for (const bad of [0, -1, 1.5, 'x', 2 ** 41]) {
    const err = await t.throwsAsync(openSmallDb(tmpDir(t), { maxPendingBytes: bad }));
    t.is(err.code, 'ERR_URINGDB_INVALID_OPTION');
    t.is(err.field, 'maxPendingBytes');
  }
});

test('abort while staged: exactly that write is gone (put, del, batch, chained batch)', async (t) => {
  const dir = tmpDir(t);
  let db = await openSmallDb(dir);
  await db.put('d', 'kept');
  const ac = new AbortController();
  const reason = new Error('changed my mind');
  const { signal } = ac;
  const p1 = db.put('a', '1');
  const p2 = db.put('b', '2', { signal });
  const p3 = db.del('d', { signal });
  const p4 = db.batch([{ type: 'put', key: 'e', value: '5' }], { signal });
  const p5 = db.batch().put('f', '6').write({ signal });
  const p6 = db.put('c', '3');
  ac.abort(reason);
  const s1 = await p1;
  for (const [p, what] of [[p2, 'put'], [p3, 'del'], [p4, 'batch'], [p5, 'chained batch']]) await rejectsAborted(t, p, reason, what);
  t.is(await p6, s1 + 1, 'the aborted writes took no sequence number');
  t.is(getEventListeners(signal, 'abort').length, 0);
  await db.close();
  db = await openSmallDb(dir);
  t.teardown(() => db.close());
  t.deepEqual(
    (await db.getMany(['a', 'b', 'c', 'd', 'e', 'f'], { encoding: 'utf8' })),
    ['1', undefined, '3', 'kept', undefined, undefined],
  );
});

test('abort while waiting for maxPendingBytes room removes exactly that write', async (t) => {
  const dir = tmpDir(t);
  let db = await openSmallDb(dir, { maxPendingBytes: 4096 });
  const value = crypto.randomBytes(1000);
  const acs = [...Array(20)].map(() => new AbortController());
  const ps = acs.map((ac, i) => db.put(key(i), value, { signal: ac.signal }));
  t.true(db._waitingWrites >= 10, `writes wait (${db._waitingWrites})`);
  const reason = 'stop';
  acs[15].abort(reason);
  acs[19].abort(reason);
  const out = await settle(ps);
  for (const i of [15, 19]) {
    t.false(out[i].ok);
    t.is(out[i].e.name, 'AbortError');
    t.is(out[i].e.cause, reason);
  }
  const kept = out.filter((o, i) => i !== 15 && i !== 19);
  t.true(kept.every((o) => o.ok));
  for (let i = 1; i < kept.length; i++) t.is(kept[i].v, kept[i - 1].v + 1, 'consecutive, in order');
  await db.close();
  db = await openSmallDb(dir);
  t.teardown(() => db.close());
  const got = await db.getMany([...Array(20).keys()].map(key));
  t.deepEqual(got.map((v) => v !== undefined), [...Array(20).keys()].map((i) => i !== 15 && i !== 19));
});

test('abort while parked behind a full ring: the aborted writes are gone, the others durable and in order', async (t) => {
  const dir = tmpDir(t);
  // 1 MiB ring; the committer holds its first group 100 ms, so the ring stays full for
  // the whole synchronous burst however fast the disk is.
  let db = await openSmallDb(dir, { commitDelayUs: 100_000 });
  const value = crypto.randomBytes(60 * 1024);
  const N = 100;
  const ac = new AbortController();
  const ps = [];
  for (let i = 0; i < N; i++) ps.push(db.put(key(i), value, i >= 10 && i % 3 === 0 ? { signal: ac.signal } : undefined));
  // The ring holds ~17 of these: most of the burst is parked (the JS thread has not turned).
  ac.abort('late');
  const out = await settle(ps);
  const aborted = [];
  for (let i = 0; i < N; i++) {
    if (out[i].ok) continue;
    t.is(out[i].e.code, 'ABORT_ERR', `write ${i}`);
    aborted.push(i);
  }
  t.true(aborted.length > 0 && aborted.every((i) => i >= 10 && i % 3 === 0), `only signalled writes aborted: ${aborted}`);
  t.true(aborted.filter((i) => i >= 40).length === [...Array(N).keys()].filter((i) => i >= 40 && i % 3 === 0).length, 'every parked one');
  const seqs = out.filter((o) => o.ok).map((o) => o.v);
  for (let i = 1; i < seqs.length; i++) t.is(seqs[i], seqs[i - 1] + 1, 'consecutive, in order');
  t.is(getEventListeners(ac.signal, 'abort').length, 0, 'no listener left');
  await db.close();
  db = await openSmallDb(dir);
  t.teardown(() => db.close());
  const got = await db.getMany([...Array(N).keys()].map(key));
  for (let i = 0; i < N; i++) {
    if (aborted.includes(i)) t.is(got[i], undefined, `aborted ${i} absent`);
    else t.deepEqual(got[i], value, `${i} durable`);
  }
});

test('abort after entry does nothing: the write is durable when its promise resolves', async (t) => {
  const dir = tmpDir(t);
  let db = await openSmallDb(dir);
  const ac = new AbortController();
  const p = db.put('x', 'entered', { signal: ac.signal });
  // The tick's staged run crosses at the end of the tick (a microtask queued before this one).
  await new Promise((resolve) => queueMicrotask(resolve));
  ac.abort();
  await p;
  t.is(db.getSync('x', { encoding: 'utf8' }), 'entered');
  await db.close();
  db = await openSmallDb(dir);
  t.teardown(() => db.close());
  t.is(db.getSync('x', { encoding: 'utf8' }), 'entered');
});

test('an already aborted signal rejects at once; a bad signal is a clear error', async (t) => {
  const dir = tmpDir(t);
  let db = await openSmallDb(dir);
  const reason = new Error('before');
  const signal = AbortSignal.abort(reason);
  await rejectsAborted(t, db.put('a', '1', { signal }), reason);
  await rejectsAborted(t, db.del('a', { signal }), reason);
  await rejectsAborted(t, db.batch([{ type: 'put', key: 'a', value: '1' }], { signal }), reason);
  const err = await t.throwsAsync(db.put('a', '1', { signal: {} }));
  t.is(err.code, 'ERR_URINGDB_INVALID_ARGUMENT');
  t.regex(err.message, /options\.signal/);
  const s = await db.put('b', '2');
  await db.close();
  db = await openSmallDb(dir);
  t.teardown(() => db.close());
  t.is(db.getSync('a'), undefined);
  t.is(s, 1, 'nothing was logged before b');
});

test('many writes on one signal: one abort listener while any is pending, none after', async (t) => {
  const db = await openSmallDb(tmpDir(t), { maxPendingBytes: 16 * 1024 });
  t.teardown(() => db.close());
  const ac = new AbortController();
  const ps = [];
  for (let i = 0; i < 5000; i++) ps.push(db.put(key(i), 'v'.repeat(100), { signal: ac.signal }));
  t.is(getEventListeners(ac.signal, 'abort').length, 1, 'one listener per signal, not per write');
  await Promise.all(ps);
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
});

test('close waits for writes still waiting for room; they are written', async (t) => {
  const dir = tmpDir(t);
  let db = await openSmallDb(dir, { maxPendingBytes: 2048, ringBytes: MiB });
  const ps = [];
  for (let i = 0; i < 200; i++) ps.push(db.put(key(i), 'x'.repeat(500)));
  t.true(db._waitingWrites > 0);
  await db.close();
  await Promise.all(ps);
  db = await openSmallDb(dir);
  t.teardown(() => db.close());
  t.is((await db.getMany([...Array(200).keys()].map(key))).filter((v) => v === undefined).length, 0);
});
