// Issue 11, streams in the database: `{ type: 'append', stream, value }` in `db.batch`, and
// `db.stream(name)` with `firstSeq`, `lastSeq` and `read({ from, limit })`. Seqs are gapless
// and in commit order; the state and stream operations of one batch are one record (all or
// nothing, also across SIGKILL and the drop-unsynced fault VFS); bad input is named; streams
// survive restarts and flushes. Run on both backends (URINGDB_TEST_BACKEND).

import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { iterations, backend, pkg } from '../helpers/uringdb.mjs';
import { tmpDir, assertCode, sleep, randomInt } from '../helpers/util.mjs';
import { openSmallDb, CHURN } from '../helpers/db.mjs';
import { openTestDb } from '../helpers/uringdb.mjs';
import { spawnChild } from '../helpers/child.mjs';
import { rejects, catches } from '../helpers/expect.mjs';

const readAll = async (stream, options) => {
  const out = [];
  for await (const e of stream.read(options)) out.push([e.seq, e.data.toString()]);
  return out;
};

test('appends in a batch get gapless seqs in commit order, beside the batch\'s state', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const s = db.stream('orders/eu-1');
  t.is(s.name, 'orders/eu-1');
  t.is(s.firstSeq, 1);
  t.is(s.lastSeq, 0);
  t.deepEqual(await readAll(s), []);
  await db.batch([
    { type: 'put', key: 'order/1', value: 'placed' },
    { type: 'append', stream: 'orders/eu-1', value: 'order 1 placed' },
    { type: 'append', stream: 'other', value: Buffer.from([0, 1, 2]) },
    { type: 'append', stream: 'orders/eu-1', value: 'order 1 paid' },
  ]);
  t.is(await db.get('order/1', { encoding: 'utf8' }), 'placed');
  t.is(s.lastSeq, 2);
  t.is(db.stream('other').lastSeq, 1);
  // Concurrent batches: one handle's writes reach the log in call order.
  await Promise.all(Array.from({ length: 50 }, (_, i) => db.batch([{ type: 'append', stream: 'orders/eu-1', value: `e${i}` }])));
  t.is(s.lastSeq, 52);
  const all = await readAll(s);
  t.deepEqual(all.slice(0, 3), [[1, 'order 1 placed'], [2, 'order 1 paid'], [3, 'e0']]);
  t.deepEqual(all.map(([seq]) => seq), Array.from({ length: 52 }, (_, i) => i + 1));
  t.deepEqual(all.slice(2).map(([, d]) => d), Array.from({ length: 50 }, (_, i) => `e${i}`));
  t.deepEqual(await readAll(s, { from: 51 }), [[51, 'e48'], [52, 'e49']]);
  t.deepEqual(await readAll(s, { from: 2, limit: 2 }), [[2, 'order 1 paid'], [3, 'e0']]);
  t.deepEqual(await readAll(s, { limit: 0 }), []);
  t.deepEqual(await readAll(s, { from: 53 }), []);
  t.deepEqual((await readAll(db.stream('other'))), [[1, '\u0000\u0001\u0002']]);
  // A stream whose name extends another's is its own.
  t.deepEqual(await readAll(db.stream('orders/eu')), []);
  // A read is a snapshot: entries appended while it is open are not in it.
  const r = s.read({ from: 50 });
  const first = await r.next();
  await db.batch([{ type: 'append', stream: 'orders/eu-1', value: 'late' }]);
  const rest = [];
  for await (const e of r) rest.push(e.seq);
  t.deepEqual([first.value.seq, ...rest], [50, 51, 52]);
  t.is(s.lastSeq, 53);
  // State reads never see stream entries.
  t.deepEqual(await db.iterator().all(), [[Buffer.from('order/1'), Buffer.from('placed')]]);
});

test('bad input is an error naming the field; a refused batch writes nothing', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  for (const [name, what] of [
    ['', '1..128'],
    ['x'.repeat(129), '1..128'],
    ['has space', 'ASCII'],
    ['$changes', 'ASCII'],
    ['-lead', 'ASCII'],
    ['café', 'ASCII'],
    [7, 'must be a string'],
    [undefined, 'must be a string'],
  ]) {
    const e = catches(() => db.stream(name));
    assertCode(t, e, 'ERR_URINGDB_INVALID_ARGUMENT', `stream(${String(name)})`);
    t.true(e.message.startsWith('stream must') && e.message.includes(what), e.message);
    const b = await rejects(db.batch([
      { type: 'put', key: 'k', value: 'v' },
      { type: 'append', stream: name, value: 'x' },
    ]));
    assertCode(t, b, 'ERR_URINGDB_INVALID_ARGUMENT');
    t.true(b.message.startsWith('operations[1].stream must') && b.message.includes(what), b.message);
  }
  t.true(catches(() => db.stream('x'.repeat(128))) === undefined, '128 characters are allowed');
  const v = await rejects(db.batch([{ type: 'append', stream: 's', value: 42 }]));
  assertCode(t, v, 'ERR_URINGDB_INVALID_ARGUMENT');
  t.regex(v.message, /^operations\[0\]\.value/);
  t.is(await db.get('k'), undefined, 'nothing of a refused batch was written');
  t.is(db.stream('s').lastSeq, 0);
  const p = await rejects(db.prepare('t1', [{ type: 'append', stream: 'bad name', value: 'x' }]));
  assertCode(t, p, 'ERR_URINGDB_INVALID_ARGUMENT');
  t.regex(p.message, /^operations\[0\]\.stream must/);
  const s = db.stream('s');
  for (const [options, field] of [[{ from: 0 }, 'from'], [{ from: 1.5 }, 'from'], [{ from: '1' }, 'from'], [{ limit: -1 }, 'limit'], [{ limit: 0.5 }, 'limit']]) {
    const e = catches(() => s.read(options));
    assertCode(t, e, 'ERR_URINGDB_INVALID_ARGUMENT', JSON.stringify(options));
    t.true(e.message.startsWith(`${field} must`), e.message);
  }
  assertCode(t, catches(() => s.read('nope')), 'ERR_URINGDB_INVALID_ARGUMENT');
  // An append over the per-write limit (a quarter to half of ringBytes: 1 MiB here) is
  // refused by size, like a put's value.
  const big = await rejects(db.batch([{ type: 'append', stream: 's', value: Buffer.alloc(1 << 20) }]));
  assertCode(t, big, 'ERR_URINGDB_RECORD_TOO_LARGE');
  t.is(s.lastSeq, 0);
});

test('a closed database: stream handles and readers reject with ERR_URINGDB_CLOSED', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  await db.batch([{ type: 'append', stream: 's', value: 'a' }, { type: 'append', stream: 's', value: 'b' }]);
  const s = db.stream('s');
  const r = s.read();
  t.is((await r.next()).value.seq, 1);
  await db.close();
  assertCode(t, catches(() => db.stream('s')), 'ERR_URINGDB_CLOSED');
  assertCode(t, catches(() => s.lastSeq), 'ERR_URINGDB_CLOSED');
  assertCode(t, await rejects(r.next()), 'ERR_URINGDB_CLOSED');
});

test('streams survive restarts and flushes: reads are the same and seqs continue gapless', async (t) => {
  const dir = tmpDir(t);
  const expected = [];
  for (let epoch = 0; epoch < 3; epoch++) {
    const db = await openTestDb(dir, CHURN);
    const s = db.stream('log.a');
    t.is(s.lastSeq, expected.length, `epoch ${epoch}: lastSeq after reopen`);
    t.deepEqual(await readAll(s), expected, `epoch ${epoch}: entries after reopen`);
    const write = async (n) => {
      const writes = [];
      for (let i = 0; i < n; i++) {
        const value = `${epoch}.${i}|`.padEnd(100 + (i % 300), '#');
        expected.push([expected.length + 1, value]);
        writes.push(db.batch([{ type: 'put', key: `k${i % 40}`, value }, { type: 'append', stream: 'log.a', value }]));
      }
      await Promise.all(writes);
    };
    // Some entries reach tables (a flush), the last ones only the log (replayed at open).
    await write(300);
    if (epoch >= 1) {
      await db.flush();
      t.true(db.stats().flushes > 0, `epoch ${epoch}: flushed`);
    }
    await write(50);
    t.deepEqual(await readAll(s), expected, `epoch ${epoch}: entries before close`);
    await db.close();
  }
});

for (const variant of [
  { title: 'kill -9', env: {} },
  { title: 'kill -9 with the drop-unsynced fault VFS', env: { URINGDB_FAULT_VFS: 'drop-unsynced' } },
]) {
  test(`state and stream of one batch are all or nothing across ${variant.title}; the stream stays gapless`, async (t) => {
    t.timeout(120_000);
    const dir = tmpDir(t);
    const present = []; // i of every batch recovered, in stream order
    let acked = 0;
    for (let it = 0; it < iterations(4); it++) {
      const start = it * 1_000_000;
      const child = spawnChild(t, 'db-stream-child.mjs', [dir, backend(), start], { env: variant.env });
      await child.waitFor((l) => l.startsWith('READY') || l.startsWith('E '), 30_000, 'child ready');
      await sleep(randomInt(150, 700));
      child.kill('SIGKILL');
      await child.closed;
      const acks = [];
      for (const line of child.lines) {
        const m = /^A (\d+)$/.exec(line);
        if (m) acks.push(Number(m[1]));
        if (line.startsWith('E ')) t.fail(`child error: ${line}`);
      }
      acked += acks.length;
      const reads = [];
      for (let r = 0; r < 2; r++) {
        const db = await openTestDb(dir, CHURN);
        const s = db.stream('s');
        const entries = await readAll(s);
        reads.push(entries);
        t.is(s.lastSeq, entries.length, `iteration ${it}: lastSeq`);
        entries.forEach(([seq], j) => {
          if (seq !== j + 1) t.fail(`iteration ${it}: entry ${j} has seq ${seq}: a gap`);
        });
        const ids = entries.map(([, d]) => Number(d.slice(0, d.indexOf('|'))));
        if (r === 0) {
          // Earlier iterations' entries are unchanged; this run's are a prefix of its calls.
          t.deepEqual(ids.slice(0, present.length), present, `iteration ${it}: earlier entries changed`);
          const mine = ids.slice(present.length);
          mine.forEach((id, j) => {
            if (id !== start + j) t.fail(`iteration ${it}: entry ${present.length + j} is batch ${id}, expected ${start + j} (order or gap)`);
          });
          const n = mine.length;
          for (const a of acks) if (a - start >= n) t.fail(`iteration ${it}: acknowledged batch ${a} lost (${n} recovered)`);
          // All or nothing: the state key of each batch exists exactly when its entry does.
          const probe = [];
          for (let g = Math.max(0, n - 40); g < n + 40; g++) probe.push(g);
          const vals = await db.getMany(probe.map((g) => `k/${start + g}`));
          probe.forEach((g, x) => {
            if ((vals[x] !== undefined) !== (g < n)) t.fail(`iteration ${it}: batch ${start + g} half there (state ${vals[x] !== undefined}, stream ${g < n})`);
          });
          present.push(...mine);
        }
        await db.close();
      }
      t.deepEqual(reads[0], reads[1], `iteration ${it}: two restarts read the same stream`);
    }
    t.true(acked > 0, 'the child acknowledged something');
    t.true(present.length > 0, 'something was recovered');
    // The stream tree reached tables (its manifest is at format version 2): recovery read
    // entries from flushed tables, not only from the log.
    const current = fs.readFileSync(path.join(dir, 'CURRENT'), 'utf8').trim();
    t.is(fs.readFileSync(path.join(dir, current)).readUInt32LE(8), 2, 'the stream tree was flushed');
    t.log(`${acked} acknowledgements, ${present.length} batches recovered`);
  });
}

test('the stream API is exported and typed', (t) => {
  t.is(typeof pkg.Stream, 'function');
  t.is(typeof pkg.StreamReader, 'function');
  t.is(pkg.STREAM_NAME_BYTES_MAX, 128);
});

test('tail yields the entries from `from` on, then new ones as batches are applied; abort and close end it', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  const s = db.stream('events');
  await db.batch([{ type: 'append', stream: 'events', value: 'old' }]);
  // Default: only what is appended from now on.
  const fresh = s.tail();
  // From the start: the existing entry, then the new ones.
  const all = s.tail({ from: 1 });
  t.deepEqual((await all.next()).value, { seq: 1, data: Buffer.from('old') });
  const pending = all.next(); // waits: nothing after seq 1 yet
  await sleep(50);
  const writes = [];
  for (let i = 0; i < 20; i++) writes.push(db.batch([{ type: 'put', key: `k${i}`, value: 'v' }, { type: 'append', stream: 'events', value: `new${i}` }]));
  // A batch to another stream does not wake this tail with anything of its own.
  writes.push(db.batch([{ type: 'append', stream: 'other', value: 'x' }]));
  const got = [(await pending).value];
  for await (const e of all) {
    got.push(e);
    if (got.length === 20) break; // leaving the loop closes the tail
  }
  t.deepEqual(got.map((e) => [e.seq, e.data.toString()]), Array.from({ length: 20 }, (_, i) => [i + 2, `new${i}`]));
  await Promise.all(writes);
  t.deepEqual((await all.next()).done, true, 'a closed tail is done');
  const firstFresh = await fresh.next();
  t.deepEqual([firstFresh.value.seq, firstFresh.value.data.toString()], [2, 'new0']);
  await fresh.close();

  // An abort ends a tail waiting for an entry (normally: done), and later calls.
  const ac = new AbortController();
  const aborted = s.tail({ signal: ac.signal });
  const waiting = aborted.next();
  setTimeout(() => ac.abort(), 30);
  t.deepEqual(await waiting, { done: true, value: undefined });
  t.true((await aborted.next()).done);
  // Closing the database ends a waiting tail.
  const closing = s.tail();
  const wait2 = closing.next();
  await sleep(20);
  await db.close();
  t.deepEqual(await wait2, { done: true, value: undefined });
});

test('tail: bad options are errors naming the field', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const s = db.stream('s');
  for (const [options, field] of [[{ from: 0 }, 'from'], [{ from: 2.5 }, 'from'], [{ signal: {} }, 'options.signal']]) {
    const e = catches(() => s.tail(options));
    assertCode(t, e, 'ERR_URINGDB_INVALID_ARGUMENT', JSON.stringify(options));
    t.true(e.message.startsWith(`${field} must`), e.message);
  }
  const already = new AbortController();
  already.abort();
  t.true((await s.tail({ signal: already.signal }).next()).done, 'an aborted signal ends the tail at once');
});

test('appends in a prepare are numbered when the commit is applied; a rollback consumes no seq; listed across restarts', async (t) => {
  const dir = tmpDir(t);
  let db = await openTestDb(dir, CHURN);
  const s = () => db.stream('outbox');
  await db.prepare('tx-a', [{ type: 'put', key: 'branch/a', value: 'prepared' }, { type: 'append', stream: 'outbox', value: 'a' }]);
  await db.prepare('tx-b', [{ type: 'append', stream: 'outbox', value: 'b' }]);
  await db.prepare('tx-c', [{ type: 'append', stream: 'outbox', value: 'c' }]);
  t.is(s().lastSeq, 0, 'a prepare assigns no seq');
  await db.batch([{ type: 'append', stream: 'outbox', value: 'plain' }]);
  await db.rollbackPrepared('tx-b');
  await db.commitPrepared('tx-a');
  t.deepEqual(await readAll(s()), [[1, 'plain'], [2, 'a']]);
  t.is(await db.get('branch/a', { encoding: 'utf8' }), 'prepared');
  const listed = db.preparedTransactions();
  t.deepEqual(listed.map((x) => [x.txid, x.ops]), [['tx-c', [{ type: 'append', stream: 'outbox', value: Buffer.from('c') }]]]);
  await db.close();
  db = await openTestDb(dir, CHURN);
  t.deepEqual(db.preparedTransactions().map((x) => x.txid), ['tx-c'], 'listed after a restart');
  t.is(s().lastSeq, 2);
  await db.commitPrepared('tx-c');
  t.deepEqual(await readAll(s(), { from: 2 }), [[2, 'a'], [3, 'c']]);
  await db.close();
  db = await openTestDb(dir, CHURN);
  t.deepEqual(await readAll(s()), [[1, 'plain'], [2, 'a'], [3, 'c']], 'the same after replay');
  await db.close();
});

test('tx.append in an optimistic transaction: numbered when it commits, nothing from an attempt that conflicted and was retried', async (t) => {
  const dir = tmpDir(t);
  const db = await openSmallDb(dir);
  t.teardown(() => db.close());
  await db.put('balance', '0');
  await db.batch([{ type: 'append', stream: 'outbox', value: 'before' }]);
  // The first attempt reads `balance`, then a plain put changes it before the commit: that
  // attempt conflicts and is retried; only the retry's append is in the stream.
  let attempts = 0;
  await db.transaction(async (tx) => {
    attempts++;
    const b = Number(await tx.get('balance', { encoding: 'utf8' }));
    if (attempts === 1) await db.put('balance', '100');
    tx.put('balance', String(b + 1));
    tx.append('outbox', `credited by attempt ${attempts} to ${b + 1}`);
    tx.append('audit', Buffer.from(`attempt ${attempts}`));
  });
  t.is(attempts, 2, 'the first attempt conflicted');
  t.is(await db.get('balance', { encoding: 'utf8' }), '101');
  t.deepEqual(await readAll(db.stream('outbox')), [
    [1, 'before'],
    [2, 'credited by attempt 2 to 101'],
  ]);
  t.deepEqual(await readAll(db.stream('audit')), [[1, 'attempt 2']]);
  // A transaction that only appends writes one record; one that fails writes nothing.
  await db.transaction(async (tx) => {
    tx.append('outbox', 'append only');
  });
  const e = await rejects(
    db.transaction(async (tx) => {
      tx.append('outbox', 'never');
      throw new Error('changed my mind');
    }),
  );
  t.is(e?.message, 'changed my mind');
  t.is(db.stream('outbox').lastSeq, 3);
  // Bad input names the argument, at the call.
  await db.transaction(async (tx) => {
    const bad = catches(() => tx.append('bad name', 'x'));
    assertCode(t, bad, 'ERR_URINGDB_INVALID_ARGUMENT');
    t.regex(bad.message, /^stream/);
    const badValue = catches(() => tx.append('s', 42));
    assertCode(t, badValue, 'ERR_URINGDB_INVALID_ARGUMENT');
    t.regex(badValue.message, /^value/);
  });
  // Numbers survive a restart.
  await db.close();
  const again = await openSmallDb(dir);
  try {
    t.is(again.stream('outbox').lastSeq, 3);
    t.deepEqual((await readAll(again.stream('outbox'), { from: 2 })).map(([seq]) => seq), [2, 3]);
  } finally {
    await again.close();
  }
});
