// The reader pool (issue 10, item 4): async reads run on `readerThreads` threads at once,
// yet every read sees the state as of its call, and an iterator's batches still arrive in
// order. Correctness only: nothing here measures time.

import test from 'ava';
import { tmpDir } from '../helpers/util.mjs';
import { openSmallDb, utf8 } from '../helpers/db.mjs';

const KEYS = 200;
const key = (i) => `k${String(i).padStart(5, '0')}`;

test('readerThreads is validated with an error that names it', async (t) => {
  for (const readerThreads of [-1, 65, 1.5]) {
    const e = await t.throwsAsync(openSmallDb(tmpDir(t), { readerThreads }));
    t.regex(e.message, /readerThreads/, `readerThreads ${readerThreads}: ${e.message}`);
  }
});

test('with four reader threads and writes racing them, every get, getMany and iterator sees the state as of its call', async (t) => {
  // A small memtable so that rounds flush and compact under the readers: reads cross
  // memtables, level 0 and deeper tables while the version changes.
  const db = await openSmallDb(tmpDir(t), { readerThreads: 4, memtableBytes: 64 * 1024, l0CompactionTrigger: 2 });
  t.teardown(() => db.close());
  const pad = 'x'.repeat(200);
  const valueOf = (round, i) => `${round}:${i}:${pad}`;
  const write = (round) => {
    const b = db.batch();
    for (let i = 0; i < KEYS; i++) b.put(key(i), valueOf(round, i));
    return b.write();
  };
  await write(0);
  const ROUNDS = 30;
  let checked = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Round `round` is durable and visible. Reads issued now must see it, even though the
    // next round's writes are issued before any of them has run.
    const reads = [];
    for (let i = 0; i < KEYS; i++) {
      reads.push(db.get(key(i), utf8).then((v) => [`get ${key(i)}`, v, valueOf(round, i)]));
    }
    for (let i = 0; i < KEYS; i += 10) {
      const ks = [key(i), key(i + 1), key(i + 2)];
      reads.push(db.getMany(ks, utf8).then((vs) => [`getMany ${ks}`, vs.join('|'), ks.map((_, j) => valueOf(round, i + j)).join('|')]));
    }
    const its = [];
    for (let n = 0; n < 4; n++) {
      its.push(
        (async () => {
          const seen = [];
          for await (const [k, v] of db.iterator({ ...utf8 })) seen.push(`${k}=${v}`);
          return ['iterator', seen.join(','), Array.from({ length: KEYS }, (_, i) => `${key(i)}=${valueOf(round, i)}`).join(',')];
        })(),
      );
    }
    const next = write(round + 1);
    for (const [what, got, want] of await Promise.all([...reads, ...its])) {
      if (got !== want) {
        t.fail(`round ${round}: ${what} saw ${String(got).slice(0, 80)}…, expected ${want.slice(0, 80)}…`);
        return;
      }
      checked++;
    }
    await next;
  }
  t.is(checked, ROUNDS * (KEYS + KEYS / 10 + 4));
  const s = db.stats();
  t.true(s.readerQueue.peakJobs <= s.readerQueue.limitJobs, JSON.stringify(s.readerQueue));
});

test('with four reader threads, many iterators read at once and each gets its batches in order', async (t) => {
  const db = await openSmallDb(tmpDir(t), { readerThreads: 4, memtableBytes: 64 * 1024 });
  t.teardown(() => db.close());
  const N = 3000;
  for (let at = 0; at < N; at += 500) {
    const b = db.batch();
    for (let i = at; i < at + 500; i++) b.put(key(i), `v${i}`);
    await b.write();
  }
  const want = Array.from({ length: N }, (_, i) => `${key(i)}=v${i}`);
  // Sixteen iterators fetching small batches (nextv of a few entries) at once: batches of
  // one iterator queue behind one another while the other iterators' batches keep every
  // reader thread busy, so a batch taken out of order would show as a misordered scan.
  const scans = Array.from({ length: 16 }, async (_, n) => {
    const reverse = n % 2 === 1;
    const it = db.iterator({ ...utf8, reverse });
    const seen = [];
    for (;;) {
      const chunk = await it.nextv(1 + (n % 7));
      if (chunk.length === 0) break;
      for (const [k, v] of chunk) seen.push(`${k}=${v}`);
    }
    await it.close();
    return [n, reverse, seen];
  });
  for (const [n, reverse, seen] of await Promise.all(scans)) {
    const expected = reverse ? [...want].reverse() : want;
    t.is(seen.length, expected.length, `iterator ${n}: entry count`);
    const bad = seen.findIndex((e, i) => e !== expected[i]);
    t.is(bad, -1, `iterator ${n} (reverse ${reverse}): entry ${bad} is ${seen[bad]}, expected ${expected[bad]}`);
  }
});
