// Issue 11, optimistic transactions: db.transaction(fn, { retries, sync }). Reads at a
// snapshot with read-your-writes (get, getMany, iterator), buffered writes committed as one
// record, validation of the read set at apply (lost updates impossible, phantoms in an
// iterated range conflict), retries then ERR_URINGDB_CONFLICT with details, a throw writes
// nothing, prepared locks refuse at once, options are validated naming the field, and a
// child killed (SIGKILL, also under the drop-unsynced fault VFS) mid-transactions leaves
// every resolved transaction whole, no partial one, counters equal to their committed
// increments, and the same state on two restarts (replay decides as the live engine did).

import test from 'ava';
import { iterations, backend, openTestDb } from '../helpers/uringdb.mjs';
import { tmpDir, assertCode, sleep, randomInt } from '../helpers/util.mjs';
import { openSmallDb, CHURN, utf8, scanAll } from '../helpers/db.mjs';
import { spawnChild } from '../helpers/child.mjs';

const rejects = async (p) => {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
};

test('N concurrent read-increment-write transactions on one counter increment it exactly N times', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const N = 40;
  let attempts = 0;
  const results = await Promise.all(
    Array.from({ length: N }, () =>
      db.transaction(async (tx) => {
        attempts++;
        const v = Number((await tx.get('counter', utf8)) ?? 0);
        tx.put('counter', String(v + 1));
        return v + 1;
      }, { retries: 1000 }),
    ),
  );
  t.is(await db.get('counter', utf8), String(N));
  t.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i + 1), 'each saw a distinct value');
  t.true(attempts > N, 'some attempts conflicted and retried');
  t.log(`${attempts} attempts for ${N} transactions`);
});

test('reads see the snapshot plus the transaction\'s own writes (get, getMany, iterator)', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.batch([
    { type: 'put', key: 'a', value: '1' },
    { type: 'put', key: 'b', value: '2' },
    { type: 'put', key: 'c', value: '3' },
  ]);
  const out = await db.transaction(async (tx) => {
    tx.put('b', 'B');
    tx.del('c');
    tx.put('bb', 'new');
    tx.put('z', 'outside');
    const got = [await tx.get('b', utf8), await tx.get('c'), ...(await tx.getMany(['a', 'bb'], utf8))];
    const entries = [];
    for await (const [k, v] of tx.iterator({ gte: 'a', lt: 'd', keyEncoding: 'utf8', valueEncoding: 'utf8' })) entries.push([k, v]);
    const rev = [];
    for await (const [k] of tx.iterator({ lte: 'bb', reverse: true, limit: 2, keyEncoding: 'utf8' })) rev.push(k);
    // Outside the transaction nothing is visible yet.
    t.is(await db.get('b', utf8), '2');
    return { got, entries, rev };
  });
  t.deepEqual(out.got, ['B', undefined, '1', 'new']);
  t.deepEqual(out.entries, [['a', '1'], ['b', 'B'], ['bb', 'new']]);
  t.deepEqual(out.rev, ['bb', 'b']);
  t.is(await db.get('b', utf8), 'B');
  t.is(await db.get('c'), undefined);
  t.is(await db.get('z', utf8), 'outside');
});

test('a throw in fn rejects with its error and writes nothing; a read-only transaction logs nothing', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const boom = new Error('boom');
  const e = await rejects(db.transaction(async (tx) => {
    tx.put('k', 'v');
    await tx.get('k');
    throw boom;
  }));
  t.is(e, boom);
  t.is(await db.get('k'), undefined);
  const seq = db.stats().visibleSeq;
  t.is(await db.transaction(async (tx) => (await tx.get('k')) ?? 'none'), 'none');
  t.is(db.stats().visibleSeq, seq, 'nothing was logged');
  // The transaction object is dead after fn.
  let kept;
  await db.transaction((tx) => {
    kept = tx;
  });
  assertCode(t, (() => { try { kept.put('x', 'y'); } catch (err) { return err; } })(), 'ERR_URINGDB_INVALID_ARGUMENT');
});

test('retries exhausted: ERR_URINGDB_CONFLICT naming the key and a read-set conflict; a range read conflicts on an insert', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  let runs = 0;
  const e = await rejects(db.transaction(async (tx) => {
    runs++;
    await tx.get('hot');
    await db.put('hot', String(runs)); // another writer, after the snapshot
    tx.put('out', 'x');
  }, { retries: 2 }));
  assertCode(t, e, 'ERR_URINGDB_CONFLICT');
  t.is(e.conflict, 'read-set');
  t.deepEqual(e.key, Buffer.from('hot'));
  t.regex(e.message, /hot/);
  t.is(runs, 3, 'the first attempt and two retries');
  t.is(await db.get('out'), undefined);
  // Phantom: a key inserted into an iterated range.
  const p = await rejects(db.transaction(async (tx) => {
    for await (const _ of tx.iterator({ gte: 'r/', lt: 'r0' })) { /* empty range */ }
    await db.put('r/new', '1');
    tx.put('sum', '0');
  }, { retries: 0 }));
  assertCode(t, p, 'ERR_URINGDB_CONFLICT');
  t.deepEqual(p.key, Buffer.from('r/new'));
  // Disjoint keys: no conflict.
  t.is(await db.transaction(async (tx) => {
    await tx.get('mine');
    await db.put('theirs', '1');
    tx.put('mine', '1');
    return 'ok';
  }, { retries: 0 }), 'ok');
});

test('a transaction writing a key a prepared transaction holds rejects at once with prepared-lock details', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.prepare('p1', [{ type: 'put', key: 'locked', value: 'p' }]);
  let runs = 0;
  const e = await rejects(db.transaction(async (tx) => {
    runs++;
    tx.put('locked', 'tx');
  }, { retries: 5 }));
  assertCode(t, e, 'ERR_URINGDB_CONFLICT');
  t.is(e.conflict, 'prepared-lock');
  t.is(e.txid, 'p1');
  t.deepEqual(e.key, Buffer.from('locked'));
  t.is(runs, 1, 'not retried');
  await db.commitPrepared('p1');
  t.is(await db.get('locked', utf8), 'p');
});

test('invalid arguments are errors naming the field', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const ok = async () => {};
  for (const [args, field] of [
    [['nope'], 'fn'],
    [[ok, 'x'], 'options'],
    [[ok, { retries: -1 }], 'options.retries'],
    [[ok, { retries: 1.5 }], 'options.retries'],
    [[ok, { retries: 1001 }], 'options.retries'],
    [[ok, { retries: '3' }], 'options.retries'],
    [[ok, { sync: 'yes' }], 'options.sync'],
  ]) {
    const e = await rejects(db.transaction(...args));
    assertCode(t, e, 'ERR_URINGDB_INVALID_ARGUMENT', field);
    t.true(e.message.startsWith(field), `${field}: ${e.message}`);
  }
  const bad = await rejects(db.transaction((tx) => tx.put(42, 'v')));
  assertCode(t, bad, 'ERR_URINGDB_INVALID_ARGUMENT');
  t.regex(bad.message, /^key/);
  const snap = db.snapshot();
  const it = await rejects(db.transaction(async (tx) => {
    for await (const _ of tx.iterator({ snapshot: snap })) { /* never */ }
  }));
  snap.release();
  assertCode(t, it, 'ERR_URINGDB_INVALID_ARGUMENT');
  t.regex(it.message, /snapshot/);
  await db.close();
  assertCode(t, await rejects(db.transaction(ok)), 'ERR_URINGDB_CLOSED');
});

// --- kill -9 ---

for (const variant of [
  { title: 'kill -9', env: {} },
  { title: 'kill -9 with the drop-unsynced fault VFS', env: { URINGDB_FAULT_VFS: 'drop-unsynced' } },
]) {
  test(`transactions survive ${variant.title}: every resolved one whole, none partial, no lost update, two restarts agree`, async (t) => {
    const dir = tmpDir(t);
    const acked = new Map(); // n -> [c, v]
    for (let it = 0; it < iterations(4); it++) {
      const child = spawnChild(t, 'db-occ-child.mjs', [dir, backend(), it * 1_000_000], { env: variant.env });
      await child.waitFor((l) => l.startsWith('READY') || l.startsWith('E '), 30_000, 'child ready');
      await sleep(randomInt(150, 700));
      child.kill('SIGKILL');
      await child.closed;
      for (const line of child.lines) {
        const m = /^A (\d+) (\d) (\d+)$/.exec(line);
        if (m) acked.set(Number(m[1]), [Number(m[2]), Number(m[3])]);
        if (line.startsWith('E ')) t.fail(`child error: ${line}`);
      }
      const states = [];
      for (let r = 0; r < 2; r++) {
        const db = await openTestDb(dir, CHURN);
        const all = await scanAll(db, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
        states.push(all);
        await db.close();
      }
      t.deepEqual(states[0], states[1], `iteration ${it}: two restarts agree`);
      const kv = new Map(states[0]);
      // Every acknowledged transaction is there, whole.
      for (const [n, [c, v]] of acked) {
        if (kv.get(`t${n}/a`) !== `${c}:${v}` || kv.get(`t${n}/b`) !== `${c}:${v}`) t.fail(`iteration ${it}: acknowledged t${n} lost`);
      }
      // No partial transaction; each counter equals the committed increments, and their
      // values are 1..counter exactly once (serializable: no lost update).
      const seen = [[], [], [], []];
      for (const [k, v] of kv) {
        const m = /^t(\d+)\/a$/.exec(k);
        if (m === null) continue;
        if (kv.get(`t${m[1]}/b`) !== v) t.fail(`iteration ${it}: t${m[1]} partial`);
        const [c, val] = v.split(':').map(Number);
        seen[c].push(val);
      }
      for (let c = 0; c < 4; c++) {
        const counter = Number(kv.get(`counter${c}`) ?? 0);
        t.deepEqual(seen[c].sort((a, b) => a - b), Array.from({ length: counter }, (_, i) => i + 1), `iteration ${it}: counter${c}`);
      }
    }
    t.true(acked.size > 0, 'the child acknowledged something');
    t.log(`${acked.size} acknowledged transactions`);
  });
}
