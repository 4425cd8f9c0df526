// Issue 11, two-phase commit: prepare / commitPrepared / rollbackPrepared /
// preparedTransactions. Prepared writes are invisible and lock their keys (conflicts name the
// txid), commit applies them atomically, rollback drops them, bad input is named, prepared
// transactions survive restarts, flushes and log truncation, and a child killed (SIGKILL, also
// under the drop-unsynced fault VFS) mid-stream leaves every acknowledged prepare listed or
// finished as acknowledged, no commit half applied, and the same prepared set on two restarts.

import test from 'ava';
import { pkg, iterations, backend } from '../helpers/uringdb.mjs';
import { tmpDir, assertCode, sleep, randomInt } from '../helpers/util.mjs';
import { openSmallDb, CHURN, utf8 } from '../helpers/db.mjs';
import { openTestDb } from '../helpers/uringdb.mjs';
import { spawnChild } from '../helpers/child.mjs';
import { rejects, catches } from '../helpers/expect.mjs';


test('prepared writes are invisible and lock their keys; commit applies them atomically, rollback drops them', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.put('a', 'old');
  await db.prepare('t1', [
    { type: 'put', key: 'a', value: 'new' },
    { type: 'put', key: 'b', value: '1' },
    { type: 'del', key: 'c' },
  ]);
  t.is(await db.get('a', utf8), 'old', 'prepared writes are invisible');
  t.is(await db.get('b'), undefined);
  const list = db.preparedTransactions();
  t.is(list.length, 1);
  t.is(list[0].txid, 't1');
  t.true(Math.abs(list[0].preparedAt - Date.now()) < 60_000);
  t.deepEqual(list[0].ops, [
    { type: 'put', key: Buffer.from('a'), value: Buffer.from('new') },
    { type: 'put', key: Buffer.from('b'), value: Buffer.from('1') },
    { type: 'del', key: Buffer.from('c') },
  ]);
  const st = db.stats();
  t.is(st.preparedTransactions, 1);
  t.true(st.oldestPreparedAgeMs >= 0 && st.oldestPreparedAgeMs < 60_000);

  // Every kind of write of a locked key rejects at once, naming the holder.
  const chained = db.batch().put('z', '1').del('b');
  for (const [what, p] of [
    ['put', db.put('a', 'x')],
    ['del', db.del('c')],
    ['batch', db.batch([{ type: 'put', key: 'free2', value: '1' }, { type: 'put', key: 'b', value: '2' }])],
    ['chained batch', chained.write()],
    ['prepare', db.prepare('t2', [{ type: 'put', key: 'c', value: '1' }])],
  ]) {
    const e = assertCode(t, await rejects(p), 'ERR_URINGDB_CONFLICT', what);
    t.is(e.txid, 't1', `${what}: names the holder`);
  }
  t.is(await db.get('free2'), undefined, 'a refused batch wrote nothing');
  t.is(assertCode(t, await rejects(db.clear()), 'ERR_URINGDB_CONFLICT', 'clear').txid, 't1');
  t.is(await db.get('a', utf8), 'old', 'the refused clear deleted nothing');
  t.deepEqual(db.preparedTransactions().map((x) => x.txid), ['t1'], 'the refused prepare left nothing');
  t.is(assertCode(t, await rejects(db.prepare('t1', [{ type: 'put', key: 'q', value: '1' }])), 'ERR_URINGDB_TXN_EXISTS', 'dup').txid, 't1');
  t.is(assertCode(t, await rejects(db.commitPrepared('nope')), 'ERR_URINGDB_TXN_NOT_FOUND', 'commit unknown').txid, 'nope');
  assertCode(t, await rejects(db.rollbackPrepared('nope')), 'ERR_URINGDB_TXN_NOT_FOUND', 'rollback unknown');
  await db.put('free', '1');

  await db.commitPrepared('t1');
  t.is(await db.get('a', utf8), 'new');
  t.is(await db.get('b', utf8), '1');
  t.deepEqual(db.preparedTransactions(), []);
  t.is(db.stats().preparedTransactions, 0);
  t.is(db.stats().oldestPreparedAgeMs, 0);
  assertCode(t, await rejects(db.commitPrepared('t1')), 'ERR_URINGDB_TXN_NOT_FOUND', 'second commit');
  await db.put('a', 'after'); // released

  await db.prepare('t3', [{ type: 'put', key: 'a', value: 'rolled' }]);
  assertCode(t, await rejects(db.put('a', 'x')), 'ERR_URINGDB_CONFLICT', 'locked again');
  await db.rollbackPrepared('t3');
  t.is(await db.get('a', utf8), 'after');
  await db.put('a', 'again');
  // A txid can be reused once finished.
  await db.prepare('t3', [{ type: 'del', key: 'a' }]);
  await db.commitPrepared('t3');
  t.is(await db.get('a'), undefined);
});

test('a write called before a prepare is ordered before it; a prepare takes its locks when called', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const put = db.put('k', 'before');
  const prep = db.prepare('t', [{ type: 'put', key: 'k', value: 'prepared' }]);
  const after = db.put('k', 'after'); // same tick, after the prepare: refused
  await put;
  await prep;
  assertCode(t, await rejects(after), 'ERR_URINGDB_CONFLICT', 'a put after the prepare call');
  t.is(await db.get('k', utf8), 'before');
  await db.commitPrepared('t');
  t.is(await db.get('k', utf8), 'prepared');
});

test('bad input to prepare / commitPrepared / rollbackPrepared names the field', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const op = [{ type: 'put', key: 'k', value: 'v' }];
  const cases = [
    ['txid not a string', db.prepare(42, op), /txid must be a string/],
    ['empty txid', db.prepare('', op), /txid must be 1\.\.256 bytes/],
    ['txid too long', db.prepare('é'.repeat(129), op), /txid must be 1\.\.256 bytes of UTF-8, got 258/],
    ['ops not an array', db.prepare('t', 'x'), /operations must be an array/],
    ['empty ops', db.prepare('t', []), /operations must hold at least one operation/],
    ['bad op type', db.prepare('t', [{ type: 'nope', key: 'k' }]), /operations\[0\]\.type/],
    ['bad key', db.prepare('t', [{ type: 'put', key: 5, value: 'v' }]), /operations\[0\]\.key/],
    ['commit txid not a string', db.commitPrepared(null), /txid must be a string/],
    ['rollback empty txid', db.rollbackPrepared(''), /txid must be 1\.\.256 bytes/],
  ];
  for (const [what, p, re] of cases) {
    const e = assertCode(t, await rejects(p), 'ERR_URINGDB_INVALID_ARGUMENT', what);
    t.regex(e.message, re, what);
  }
  await db.prepare('x'.repeat(256), op); // the bound itself is accepted
  await db.rollbackPrepared('x'.repeat(256));
  const big = Buffer.alloc(2 << 20); // beyond the largest record of SMALL's 1 MiB segments
  assertCode(t, await rejects(db.prepare('big', [{ type: 'put', key: 'k', value: big }])), 'ERR_URINGDB_RECORD_TOO_LARGE', 'oversized');
  t.deepEqual(db.preparedTransactions(), [], 'nothing left behind by refused prepares');
  await db.put('k', 'free'); // and no lock
  t.is(typeof pkg.TXID_BYTES_MAX, 'number');
});

test('prepared transactions survive restarts, flushes and log truncation; two restarts list the same set', async (t) => {
  const dir = tmpDir(t);
  {
    const db = await openTestDb(dir, CHURN);
    await db.prepare('keep', [{ type: 'put', key: 'k', value: 'v' }, { type: 'del', key: 'gone' }]);
    await db.prepare('done', [{ type: 'put', key: 'd', value: '1' }]);
    await db.prepare('undo', [{ type: 'put', key: 'u', value: '1' }]);
    await db.commitPrepared('done');
    await db.rollbackPrepared('undo');
    const big = Buffer.alloc(1000, 'x');
    const ps = [];
    for (let i = 0; i < 2000; i++) ps.push(db.put(`fill${i}`, big));
    await Promise.all(ps);
    await db.flush();
    const st = db.stats();
    t.true(st.flushes > 1, 'flushed');
    await db.close();
  }
  const seen = [];
  for (let i = 0; i < 2; i++) {
    const db = await openTestDb(dir, CHURN);
    const list = db.preparedTransactions();
    t.deepEqual(list.map((x) => x.txid), ['keep'], `restart ${i}`);
    t.is(await db.get('d', utf8), '1');
    t.is(await db.get('u'), undefined);
    t.is(await db.get('k'), undefined);
    assertCode(t, await rejects(db.put('k', 'x')), 'ERR_URINGDB_CONFLICT', 'still locked after restart');
    seen.push(list);
    await db.close();
  }
  t.deepEqual(seen[0], seen[1]);
  const db = await openTestDb(dir, CHURN);
  await db.commitPrepared('keep');
  t.is(await db.get('k', utf8), 'v');
  await db.close();
});

// --- kill -9 ---

function checkAfterCrash(t, ctx, fate, listed, present) {
  for (const [n, f] of fate) {
    const p = present.get(n);
    const all = p.every(Boolean);
    const none = p.every((x) => !x);
    if (!all && !none) t.fail(`${ctx}: tx${n} half applied: ${p}`);
    const isListed = listed.has(n);
    if (f === 'C') {
      if (isListed || !all) t.fail(`${ctx}: acknowledged commit of tx${n} lost (listed ${isListed}, present ${p})`);
    } else if (f === 'R') {
      if (isListed || !none) t.fail(`${ctx}: acknowledged rollback of tx${n} lost`);
    } else if (!isListed) {
      // Acknowledged prepare: listed, or finished by its (unacknowledged) commit or rollback.
      const intended = n % 4 === 0 ? 'P' : n % 4 === 3 ? 'R' : 'C';
      const ok = (intended === 'C' && all) || (intended === 'R' && none);
      if (!ok) t.fail(`${ctx}: acknowledged prepare of tx${n} is neither listed nor finished as issued`);
      fate.set(n, intended);
    } else if (!none) {
      t.fail(`${ctx}: listed tx${n} is visible`);
    }
  }
}

for (const variant of [
  { title: 'kill -9', env: {} },
  { title: 'kill -9 with the drop-unsynced fault VFS', env: { URINGDB_FAULT_VFS: 'drop-unsynced' } },
]) {
  test(`two-phase commit survives ${variant.title}: acknowledged prepares listed or finished, no commit half applied`, async (t) => {
    const dir = tmpDir(t);
    const fate = new Map(); // n -> 'P' | 'C' | 'R'
    let acked = 0;
    for (let it = 0; it < iterations(4); it++) {
      const child = spawnChild(t, 'db-txn-child.mjs', [dir, backend(), it * 1_000_000], { env: variant.env });
      await child.waitFor((l) => l.startsWith('READY') || l.startsWith('E '), 30_000, 'child ready');
      await sleep(randomInt(100, 600));
      child.kill('SIGKILL');
      await child.closed;
      for (const line of child.lines) {
        const m = /^([PCR]) (\d+)$/.exec(line);
        if (m) {
          fate.set(Number(m[2]), m[1]);
          acked++;
        }
        if (line.startsWith('E ')) t.fail(`child error: ${line}`);
      }
      const lists = [];
      for (let r = 0; r < 2; r++) {
        const db = await openTestDb(dir, CHURN);
        const listed = new Set(db.preparedTransactions().map((x) => Number(x.txid.slice(2))));
        // Prepares in flight at the kill may survive unacknowledged: adopt them.
        for (const n of listed) if (!fate.has(n)) fate.set(n, 'P');
        const keys = [...fate.keys()];
        const vals = await db.getMany(keys.flatMap((n) => [0, 1, 2].map((k) => `tx${n}/k${k}`)));
        const present = new Map(keys.map((n, i) => [n, [0, 1, 2].map((k) => vals[i * 3 + k] !== undefined)]));
        if (r === 0) checkAfterCrash(t, `iteration ${it}`, fate, listed, present);
        lists.push(db.preparedTransactions());
        t.is(db.stats().preparedTransactions, listed.size);
        await db.close();
      }
      t.deepEqual(lists[0], lists[1], `iteration ${it}: two restarts list the same prepared set`);
    }
    t.true(acked > 0, 'the child acknowledged something');
    t.log(`${acked} acknowledgements, ${[...fate.values()].filter((f) => f === 'P').length} left prepared`);
  });
}

test('locks hold across handles on one engine: a second handle and a worker thread see them at once', async (t) => {
  const dir = tmpDir(t);
  const a = await openTestDb(dir);
  const b = await openTestDb(dir);
  t.teardown(async () => {
    await b.close();
    await a.close();
  });
  t.false(b.recovery.opened, 'the second handle shares the engine');
  const { Worker } = await import('node:worker_threads');
  const w = new Worker(new URL('../fixtures/db-txn-worker.mjs', import.meta.url), { workerData: { dir, ioBackend: backend() } });
  const next = () => new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  t.deepEqual(await next(), { opened: false });
  await a.prepare('held', [{ type: 'put', key: 'k', value: 'v' }]);
  t.is(assertCode(t, await rejects(b.put('k', 'x')), 'ERR_URINGDB_CONFLICT', 'second handle').txid, 'held');
  w.postMessage({ key: 'k' });
  t.deepEqual(await next(), { code: 'ERR_URINGDB_CONFLICT', txid: 'held' }, 'worker thread');
  await a.rollbackPrepared('held');
  await b.put('k', 'b');
  w.postMessage({ key: 'k' });
  t.deepEqual(await next(), { code: null }, 'released for the worker too');
  w.postMessage({ close: true });
  t.deepEqual(await next(), { closed: true });
  await w.terminate();
  t.is(await a.get('k', utf8), 'from-worker');
});
