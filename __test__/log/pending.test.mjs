// Back-pressure by bytes and cancellation (issue 10, item 5) on the Log: `maxPendingBytes`
// bounds the bytes of appends a handle holds that have not completed; an `AbortSignal`
// cancels an append only before it enters the commit ring, and a cancelled append leaves no
// trace (checked by reopening and reading the log back: the records and their numbers).

import test from 'ava';
import crypto from 'node:crypto';
import { getEventListeners } from 'node:events';
import { openTestLog, pkg } from '../helpers/uringdb.mjs';
import { tmpDir, readAll } from '../helpers/util.mjs';

const { AbortError, UringdbError } = pkg;
const MiB = 1 << 20;
const SMALL = { segmentBytes: MiB, ringBytes: MiB };

/** Outcomes of `ps` in order: the resolved value, or the error. */
const settle = (ps) => Promise.all(ps.map((p) => p.then((v) => ({ ok: true, v }), (e) => ({ ok: false, e }))));

async function records(dir) {
  const log = await openTestLog(dir, SMALL);
  try {
    return (await readAll(log)).map((r) => ({ seq: r.seq, data: Buffer.from(r.data) }));
  } finally {
    await log.close();
  }
}

test('maxPendingBytes: pending bytes never exceed the bound plus one record; order kept; sync waits behind', async (t) => {
  const dir = tmpDir(t);
  const MAX = 32 * 1024;
  const log = await openTestLog(dir, { ...SMALL, maxPendingBytes: MAX });
  const N = 3000;
  let peak = 0;
  const look = () => {
    peak = Math.max(peak, log._pendingBytes);
  };
  const order = [];
  const ps = [];
  for (let i = 0; i < N; i++) {
    ps.push(log.append(`record ${i} ${'x'.repeat(i % 200)}`).then((seq) => (order.push(i), look(), seq)));
    look();
    if (i === N / 2) ps.push(log.appendMany(['m1', 'm2'.repeat(5000)]).then((seqs) => (order.push('many'), look(), seqs[0])));
  }
  t.true(log._waitingWrites > 0, `appends wait for room (${log._waitingWrites})`);
  let synced = false;
  const sync = log.sync().then(() => (synced = true, order.push('sync')));
  await Promise.all(ps);
  await sync;
  t.true(synced);
  t.true(peak <= MAX + 10_002, `peak pending ${peak} <= bound + one write`);
  t.is(order.at(-1), 'sync', 'sync settled after every append made before it');
  const expected = [...Array(N / 2 + 1).keys(), 'many', ...[...Array(N / 2 - 1).keys()].map((i) => i + N / 2 + 1), 'sync'];
  t.deepEqual(order, expected, 'in call order');
  t.is(log._pendingBytes, 0);
  await log.close();
  const recs = await records(dir);
  t.is(recs.length, N + 2);
  t.is(recs[0].data.toString(), 'record 0 ');
  t.is(recs[N / 2 + 1].data.toString(), 'm1');
  t.is(recs.at(-1).data.toString(), `record ${N - 1} ${'x'.repeat((N - 1) % 200)}`);
});

test('maxPendingBytes: a record larger than the bound is taken when nothing else is pending', async (t) => {
  const log = await openTestLog(tmpDir(t), { ...SMALL, maxPendingBytes: 1 });
  t.teardown(() => log.close());
  const big = crypto.randomBytes(100 * 1024);
  const ps = [];
  for (let i = 0; i < 10; i++) ps.push(log.append(big));
  t.is(log._waitingWrites, 9);
  const seqs = await Promise.all(ps);
  t.deepEqual(seqs, [...Array(10).keys()].map((i) => i + 1));
});

test('abort while staged: exactly that append is gone; numbers stay contiguous', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, SMALL);
  const ac = new AbortController();
  const reason = new Error('no');
  const a = log.append('a');
  const b = log.append('b', { signal: ac.signal });
  const b2 = log.append('b2', { signal: ac.signal });
  const c = log.append('c');
  ac.abort(reason);
  for (const p of [b, b2]) {
    const err = await t.throwsAsync(p);
    t.is(err.name, 'AbortError');
    t.is(err.code, 'ABORT_ERR');
    t.is(err.cause, reason);
    t.true(err instanceof AbortError && err instanceof UringdbError);
  }
  t.is(await a, 1);
  t.is(await c, 2);
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
  await log.close();
  t.deepEqual((await records(dir)).map((r) => r.data.toString()), ['a', 'c']);
});

test('abort while waiting for maxPendingBytes room removes exactly that append (or appendMany)', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { ...SMALL, maxPendingBytes: 1000 });
  const acs = [...Array(30)].map(() => new AbortController());
  // Write 25 is an appendMany of two records.
  const ps = acs.map((ac, i) =>
    i === 25
      ? log.appendMany([`${i}:${'y'.repeat(200)}`, `${i}:b`], { signal: ac.signal })
      : log.append(`${i}:${'y'.repeat(200)}`, { signal: ac.signal }),
  );
  t.true(log._waitingWrites >= 20);
  acs[20].abort();
  acs[25].abort();
  acs[29].abort();
  const out = await settle(ps);
  t.deepEqual(out.map((o) => o.ok), [...Array(30).keys()].map((i) => i !== 20 && i !== 25 && i !== 29));
  t.is(out[20].e.code, 'ABORT_ERR');
  t.true(out[20].e.cause instanceof Error && out[20].e.cause.name === 'AbortError', 'cause: the default reason');
  await log.close();
  const got = (await records(dir)).map((r) => Number(r.data.toString().split(':')[0]));
  t.deepEqual(got, [...Array(30).keys()].filter((i) => i !== 20 && i !== 25 && i !== 29));
});

test('abort while parked behind a full ring: the aborted appends are gone, the rest durable and in order', async (t) => {
  const dir = tmpDir(t);
  // 1 MiB ring; the committer holds its first group 100 ms, so the ring stays full for
  // the whole synchronous burst however fast the disk is.
  const log = await openTestLog(dir, { ...SMALL, commitDelayUs: 100_000 });
  // 4 KiB records, staged 64 to a run; a first record of 257000 bytes leaves room in the
  // ring for exactly three runs, so the fourth is refused whole and parked as a run of 64
  // (cancelled from inside the run), and every later append parks on its own.
  const N = 1000;
  const rec = (i) => Buffer.concat([Buffer.from(`${String(i).padStart(4, '0')}:`), crypto.randomBytes(4 * 1024 - 5)]);
  const data = [crypto.randomBytes(257_000), ...[...Array(N - 1).keys()].map(rec)];
  const ac = new AbortController();
  const ps = data.map((d, i) => log.append(d, i >= 20 && i % 7 === 0 ? { signal: ac.signal } : undefined));
  // Parked too (behind the parked appends).
  const many = log.appendMany(['never', 'logged'], { signal: ac.signal });
  ac.abort('late');
  await t.throwsAsync(many, { code: 'ABORT_ERR' });
  const out = await settle(ps);
  const aborted = out.flatMap((o, i) => (o.ok ? [] : [i]));
  t.true(out.every((o) => o.ok || o.e.code === 'ABORT_ERR'));
  t.true(aborted.every((i) => i >= 20 && i % 7 === 0), `only signalled appends: ${aborted}`);
  t.is(aborted.filter((i) => i >= 600).length, [...Array(N).keys()].filter((i) => i >= 600 && i % 7 === 0).length, 'every parked one');
  const seqs = out.filter((o) => o.ok).map((o) => o.v);
  t.deepEqual(seqs, [...Array(seqs.length).keys()].map((i) => i + 1), 'contiguous, in order');
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
  await log.close();
  const recs = await records(dir);
  const kept = data.filter((_, i) => !aborted.includes(i));
  t.is(recs.length, kept.length);
  for (let i = 0; i < kept.length; i++) if (!recs[i].data.equals(kept[i])) t.fail(`record ${i + 1} differs`);
});

test('abort after entry does nothing; an already aborted signal rejects at once; a bad signal is named', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, SMALL);
  const ac = new AbortController();
  const p = log.append('entered', { signal: ac.signal });
  await new Promise((resolve) => queueMicrotask(resolve));
  ac.abort();
  t.is(await p, 1);
  const err = await t.throwsAsync(log.append('never', { signal: AbortSignal.abort('r') }));
  t.is(err.code, 'ABORT_ERR');
  t.is(err.cause, 'r');
  await t.throwsAsync(log.appendMany(['never'], { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  const bad = await t.throwsAsync(log.append('x', { signal: 'nope' }));
  t.is(bad.code, 'ERR_URINGDB_INVALID_ARGUMENT');
  t.regex(bad.message, /options\.signal/);
  t.is(await log.append('after'), 2);
  await log.close();
  t.deepEqual((await records(dir)).map((r) => r.data.toString()), ['entered', 'after']);
});

test('many appends on one signal: one abort listener while any is pending, none after', async (t) => {
  const log = await openTestLog(tmpDir(t), { ...SMALL, maxPendingBytes: 8192 });
  t.teardown(() => log.close());
  const ac = new AbortController();
  const ps = [];
  for (let i = 0; i < 5000; i++) ps.push(log.append('z'.repeat(100), { signal: ac.signal }));
  t.is(getEventListeners(ac.signal, 'abort').length, 1);
  await Promise.all(ps);
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
});

test('close waits for appends still waiting for room; they are written', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { ...SMALL, maxPendingBytes: 1024 });
  const ps = [];
  for (let i = 0; i < 300; i++) ps.push(log.append(`w${i}`.padEnd(300, '.')));
  t.true(log._waitingWrites > 0);
  await log.close();
  t.is((await Promise.all(ps)).length, 300);
  t.is((await records(dir)).length, 300);
});

test('a burst parked behind a full ring reads back in call order, byte for byte', async (t) => {
  // The committer waits 100 ms before its first group, so the 1 MiB ring fills in this one
  // tick; a first record of 257000 bytes leaves room for exactly three staging runs of 64
  // records of 4 KiB, so the fourth run's flush — made inside the append of record 256 —
  // is refused whole and parked (its bytes stay in the staging buffer). That append used
  // to be staged all the same, at offset 0, over the parked run's first record: record 192
  // read back as record 256.
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { ...SMALL, commitDelayUs: 100_000 });
  const N = 400;
  const data = [
    crypto.randomBytes(257_000),
    ...[...Array(N).keys()].map((i) => Buffer.concat([Buffer.from(`${String(i).padStart(4, '0')}:`), crypto.randomBytes(4 * 1024 - 5)])),
  ];
  const seqs = await Promise.all(data.map((d) => log.append(d)));
  t.deepEqual(seqs, [...Array(N + 1).keys()].map((i) => i + 1));
  await log.close();
  const recs = await records(dir);
  t.is(recs.length, N + 1);
  const wrong = recs.flatMap((r, i) => (r.data.equals(data[i]) ? [] : [`${i}: ${r.data.subarray(0, 4)}`]));
  t.deepEqual(wrong, [], 'every record where it was appended');
});
