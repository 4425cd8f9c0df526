// clear() and atomicity (issue 8, item 5): a range whose deletions fit in one write is deleted
// by exactly one write (atomic, also across a crash); a larger range by consecutive writes of
// at most maxBatchBytes, so that after a crash the deleted keys are a prefix of the range in
// iteration order and every write is all-or-nothing. The kill loop checks that rule at random
// kill points, for sync:true clears and for sync:false clears under the drop-unsynced fault VFS.

import test from 'ava';
import { backend, iterations } from '../helpers/uringdb.mjs';
import { tmpDir, collect, sleep, randomInt } from '../helpers/util.mjs';
import { spawnChild } from '../helpers/child.mjs';
import { openSmallDb } from '../helpers/db.mjs';
import { clearKey, CLEAR_VALUE, deletesPerWrite } from '../helpers/db-clear.mjs';

async function limitOf(db) {
  const err = await db.put('probe', Buffer.alloc(16 << 20)).then(() => null, (e) => e);
  const m = /limit of (\d+) bytes/.exec(err?.message ?? '');
  if (!m) throw new Error(`no size limit in ${err?.message}`);
  return Number(m[1]);
}

async function fill(db, from, to) {
  for (let i = from; i < to; ) {
    const b = db.batch();
    for (let j = 0; j < 1000 && i < to; j++, i++) b.put(clearKey(i), CLEAR_VALUE);
    await b.write();
  }
}

const appends = (db) => db.stats().log.appends;

test('clear() of a range that fits one write deletes it with exactly one (atomic) write', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const per = deletesPerWrite(await limitOf(db));
  const count = Math.min(per - 1, 5000);
  t.true(count > 2000, `a range of ${count} keys spans several 1000-key batches`);
  await fill(db, 0, count);
  await db.put('other', 'kept');
  const before = appends(db);
  await db.clear({ gte: 'clr/', lt: 'clr0' });
  t.is(appends(db) - before, 1, 'one write');
  t.deepEqual((await collect(db.keys({ keyEncoding: 'utf8' }))), ['other']);

  // With a limit and in reverse: one write, the highest keys.
  await fill(db, 0, count);
  const before2 = appends(db);
  await db.clear({ gte: 'clr/', lt: 'clr0', reverse: true, limit: count - 10 });
  t.is(appends(db) - before2, 1, 'one write with reverse and limit');
  t.deepEqual(await collect(db.keys({ keyEncoding: 'utf8', gte: 'clr/', lt: 'clr0' })), Array.from({ length: 10 }, (_, i) => clearKey(i)));
});

test('clear() of a range larger than one write uses full writes, in order', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const per = deletesPerWrite(await limitOf(db));
  const count = 2 * per + 100;
  await fill(db, 0, count);
  const before = appends(db);
  await db.clear();
  t.is(appends(db) - before, 3, `${count} deletions, ${per} per write`);
  t.deepEqual(await collect(db.keys()), []);
});

const COUNT = iterations(8);
const variants = [
  { title: 'sync:true', sync: true, env: {} },
  { title: 'sync:false with the drop-unsynced fault VFS', sync: false, env: { URINGDB_FAULT_VFS: 'drop-unsynced' } },
];

for (const { title, sync, env } of variants) {
  test.serial(`SIGKILL during clear() (${title}) leaves a prefix of whole writes deleted`, async (t) => {
    t.timeout(60_000 + COUNT * 20_000);
    const seen = [];
    // How long a whole clear of each size took in this run (learned from the runs that were
    // killed too late), so that later kills land anywhere in it; only the spread of kill
    // points depends on it, never an assertion.
    const span = [200, 400];
    for (let run = 0; run < COUNT; run++) {
      const dir = tmpDir(t, 'uringdb-clear-');
      // Alternate a range that fits one write with one that takes three.
      const probe = await openSmallDb(dir);
      const per = deletesPerWrite(await limitOf(probe));
      await probe.close();
      const count = run % 2 === 0 ? Math.min(per - 1, 5000) : 2 * per + 100;
      const child = spawnChild(t, 'db-clear-child.mjs', [dir, backend(), count, sync ? 1 : 0], { env });
      await child.waitFor((l) => l === 'CLEARING' || l.startsWith('E '), 60_000, 'CLEARING');
      await sleep(randomInt(0, span[run % 2]));
      child.kill('SIGKILL');
      await child.closed;
      const errLine = child.lines.find((l) => l.startsWith('E '));
      t.is(errLine, undefined, `run ${run}: the child failed: ${errLine}\n${child.stderr()}`);
      const done = child.lines.find((l) => l.startsWith('CLEARED '));
      const cleared = done !== undefined;
      if (cleared) span[run % 2] = Math.max(10, Math.ceil(Number(done.split(' ')[1]) * 1.2));

      const db = await openSmallDb(dir);
      const keys = await collect(db.keys({ keyEncoding: 'utf8', gte: 'clr/', lt: 'clr0' }));
      await db.close();
      const deleted = count - keys.length;
      const expected = Array.from({ length: keys.length }, (_, i) => clearKey(deleted + i));
      t.deepEqual(keys, expected, `run ${run}: the deleted keys are a prefix of the range (${deleted} of ${count} deleted)`);
      t.true(deleted === count || deleted % per === 0, `run ${run}: ${deleted} deletions are whole writes of ${per}`);
      if (count < per) t.true(deleted === 0 || deleted === count, `run ${run}: a one-write clear is all or nothing (${deleted} of ${count})`);
      if (cleared && sync) t.is(deleted, count, `run ${run}: an acknowledged sync clear deleted everything`);
      seen.push(`${deleted}/${count}${cleared ? ' acked' : ''}`);
    }
    t.log(`deleted after each kill: ${seen.join(', ')}`);
  });
}
