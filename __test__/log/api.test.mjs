// The public log API on its happy paths: sequence numbers, encodings, read ranges, reopen, sync,
// large records, dispose/close, stats() and diagnostics_channel events.

import test from 'ava';
import diagnosticsChannel from 'node:diagnostics_channel';
import fs from 'node:fs';
import path from 'node:path';
import { openTestLog, backend } from '../helpers/uringdb.mjs';
import { tmpDir, readAll, assertCode, collect } from '../helpers/util.mjs';

const MiB = 1 << 20;

/** Opens a log and closes it at teardown (close is idempotent, so tests may close it themselves). */
async function open(t, dir, options) {
  const log = await openTestLog(dir, options);
  t.teardown(() => log.close());
  return log;
}

const seqsOf = (records) => records.map((r) => r.seq);

test('append and appendMany return contiguous increasing seqs starting at 1', async (t) => {
  const log = await open(t, tmpDir(t));
  t.is(log.firstSeq, 0, 'empty log: firstSeq');
  t.is(log.lastSeq, 0, 'empty log: lastSeq');

  t.is(await log.append('a'), 1);
  t.is(await log.append('b'), 2);
  t.deepEqual(await log.appendMany(['c', 'd', 'e']), [3, 4, 5]);
  t.is(await log.append('f'), 6);

  // Many in flight at once: each gets its own seq, all together exactly 7..206.
  const concurrent = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(`c${i}`)));
  for (const seq of concurrent) t.true(Number.isSafeInteger(seq), `seq ${seq} is a safe integer`);
  t.deepEqual([...concurrent].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => 7 + i));

  // Concurrent appendMany calls: each batch contiguous, batches disjoint.
  const batches = await Promise.all(Array.from({ length: 20 }, (_, i) => log.appendMany([`m${i}a`, `m${i}b`, `m${i}c`])));
  const all = [];
  for (const batch of batches) {
    t.is(batch.length, 3);
    t.deepEqual(batch, [batch[0], batch[0] + 1, batch[0] + 2], 'one appendMany gets contiguous seqs');
    all.push(...batch);
  }
  t.deepEqual(all.sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => 207 + i));

  t.is(log.firstSeq, 1);
  t.is(log.lastSeq, 266);

  // And every seq maps to what was appended with it.
  const records = await readAll(log);
  t.deepEqual(seqsOf(records), Array.from({ length: 266 }, (_, i) => i + 1));
  t.is(records[0].data.toString(), 'a');
  t.is(records[4].data.toString(), 'e');
  for (let i = 0; i < 200; i++) t.is(records[concurrent[i] - 1].data.toString(), `c${i}`);
  for (let i = 0; i < 20; i++) t.is(records[batches[i][1] - 1].data.toString(), `m${i}b`);
});

test('Buffer, Uint8Array and string records round-trip byte-exact as Buffers', async (t) => {
  const log = await open(t, tmpDir(t));
  const backing = new Uint8Array(64).map((_, i) => i);
  const inputs = [
    ['Buffer', Buffer.from([0, 1, 2, 255, 254, 0])],
    ['pooled Buffer slice', Buffer.from('pooled')], // shares Node's allocation pool
    ['Buffer subarray', Buffer.from('0123456789').subarray(3, 7)],
    ['Uint8Array', new Uint8Array([9, 8, 7, 6, 0, 0, 1])],
    ['Uint8Array view with offset', new Uint8Array(backing.buffer, 10, 5)],
    ['ASCII string', 'hello, world'],
    ['multi-byte string', 'żółć € 日本語 𝄞 🎉'],
    ['string with NUL', 'a\u0000b'],
    ['empty string', ''],
    ['empty Buffer', Buffer.alloc(0)],
    ['empty Uint8Array', new Uint8Array(0)],
  ];
  const expected = inputs.map(([, v]) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
  const seqs = [];
  for (const [, value] of inputs) seqs.push(await log.append(value));
  seqs.push(...(await log.appendMany(inputs.map(([, v]) => v))));

  const records = await readAll(log);
  t.is(records.length, inputs.length * 2);
  for (let i = 0; i < records.length; i++) {
    const [name] = inputs[i % inputs.length];
    const want = expected[i % inputs.length];
    t.is(records[i].seq, seqs[i], `${name}: seq`);
    t.true(Buffer.isBuffer(records[i].data), `${name}: data is a Buffer`);
    t.true(records[i].data.equals(want), `${name}: bytes ${records[i].data.toString('hex')} != ${want.toString('hex')}`);
  }
  t.is(records[6].data.toString('utf8'), 'żółć € 日本語 𝄞 🎉');
  t.is(records[8].data.length, 0, 'empty record has 0 bytes');
});

test('records survive reopen; numbering continues after reopen', async (t) => {
  const dir = tmpDir(t);
  const log1 = await openTestLog(dir);
  const seqs1 = await log1.appendMany(['one', 'two', 'three']);
  await log1.close();

  const log2 = await open(t, dir);
  t.is(log2.firstSeq, 1);
  t.is(log2.lastSeq, 3);
  const before = await readAll(log2);
  t.deepEqual(seqsOf(before), seqs1);
  t.deepEqual(before.map((r) => r.data.toString()), ['one', 'two', 'three']);
  t.is(await log2.append('four'), 4);
  await log2.close();

  const log3 = await open(t, dir);
  t.is(log3.lastSeq, 4);
  t.deepEqual((await readAll(log3)).map((r) => r.data.toString()), ['one', 'two', 'three', 'four']);
});

test('read({from, to}): from inclusive, to exclusive, defaults, empty ranges', async (t) => {
  const log = await open(t, tmpDir(t));
  t.deepEqual(await readAll(log), [], 'empty log reads nothing');
  t.deepEqual(await readAll(log, { from: 1 }), [], 'empty log from 1 reads nothing');

  await log.appendMany(Array.from({ length: 10 }, (_, i) => `r${i + 1}`));
  const range = (from, to) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
  t.deepEqual(seqsOf(await readAll(log)), range(1, 11), 'no bounds: everything');
  t.deepEqual(seqsOf(await collect(log.read())), range(1, 11), 'read() without an argument');
  t.deepEqual(seqsOf(await readAll(log, { from: 1 })), range(1, 11));
  t.deepEqual(seqsOf(await readAll(log, { from: 3, to: 7 })), range(3, 7), 'from inclusive, to exclusive');
  t.deepEqual(seqsOf(await readAll(log, { from: 4 })), range(4, 11));
  t.deepEqual(seqsOf(await readAll(log, { to: 3 })), range(1, 3));
  t.deepEqual(seqsOf(await readAll(log, { from: 5, to: 6 })), [5]);
  t.deepEqual(await readAll(log, { from: 5, to: 5 }), [], 'from == to is empty');
  t.deepEqual(await readAll(log, { from: 11 }), [], 'from lastSeq+1 is empty');
  t.deepEqual(await readAll(log, { from: 100 }), [], 'from far beyond the end is empty');
  t.deepEqual(seqsOf(await readAll(log, { from: 9, to: 100 })), [9, 10], 'to beyond the end stops at the end');
  const mid = await readAll(log, { from: 3, to: 7 });
  t.deepEqual(mid.map((r) => r.data.toString()), ['r3', 'r4', 'r5', 'r6']);

  // Two readers at once, and breaking out of one early, do not disturb each other.
  const it1 = log.read({ from: 1 })[Symbol.asyncIterator]();
  const it2 = log.read({ from: 6 })[Symbol.asyncIterator]();
  t.is((await it1.next()).value.seq, 1);
  t.is((await it2.next()).value.seq, 6);
  t.is((await it1.next()).value.seq, 2);
  await it1.return?.();
  t.deepEqual(seqsOf(await collect({ [Symbol.asyncIterator]: () => it2 })), [7, 8, 9, 10]);
});

test('a read() that covers many records yields them all in order', async (t) => {
  const log = await open(t, tmpDir(t));
  const n = 20_000;
  for (let i = 0; i < n; i += 1000) {
    await log.appendMany(Array.from({ length: 1000 }, (_, j) => `rec-${i + j}`));
  }
  const records = await readAll(log);
  t.is(records.length, n);
  let ok = true;
  for (let i = 0; i < n && ok; i++) ok = records[i].seq === i + 1 && records[i].data.toString() === `rec-${i}`;
  t.true(ok, 'every record in order with its content');
});

test('an input buffer may be reused as soon as append() has returned', async (t) => {
  const log = await open(t, tmpDir(t));
  const buf = Buffer.from('original');
  const pending = log.append(buf); // not awaited: the record must have been taken by now
  buf.fill(0x2d);
  const batch = [Buffer.from('one'), Buffer.from('two')];
  const pendingMany = log.appendMany(batch);
  batch[0].fill(0x2d);
  batch[1] = Buffer.from('replaced');
  await Promise.all([pending, pendingMany]);
  t.deepEqual((await readAll(log)).map((r) => r.data.toString()), ['original', 'one', 'two']);
});

test('mutating buffers returned by read() does not change the log', async (t) => {
  const log = await open(t, tmpDir(t));
  await log.appendMany(['aaaa', 'bbbb']);
  const first = await readAll(log);
  first[0].data.fill(0x7a);
  first[1].data.fill(0x7a);
  const second = await readAll(log);
  t.deepEqual(second.map((r) => r.data.toString()), ['aaaa', 'bbbb'], 'mutating a returned Buffer changed the log');
});

test('sync:false appends resolve, sync() makes them durable, and they read back', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { sync: false });
  const fsyncsBefore = log.stats().fsyncs;
  const seqs = [];
  for (let i = 0; i < 50; i++) seqs.push(await log.append(`nosync-${i}`));
  seqs.push(await log.append('explicit-sync', { sync: true }));
  seqs.push(await log.append('explicit-nosync', { sync: false }));
  t.deepEqual(seqs, Array.from({ length: 52 }, (_, i) => i + 1));
  await log.sync();
  t.is(log.lastSeq, 52, 'everything is visible after sync()');
  t.true(log.stats().fsyncs > fsyncsBefore, 'sync() (and the sync:true append) issued an fsync');
  t.deepEqual((await readAll(log)).map((r) => r.data.toString()).slice(-2), ['explicit-sync', 'explicit-nosync']);
  await log.sync(); // nothing pending: still resolves
  await log.close();

  const reopened = await open(t, dir);
  t.is(reopened.lastSeq, 52);
  t.is((await readAll(reopened, { from: 50 })).map((r) => r.data.toString()).join(','), 'nosync-49,explicit-sync,explicit-nosync');
});

test('large records (1 MiB and exactly maxRecordBytes) round-trip', async (t) => {
  const dir = tmpDir(t);
  const log = await open(t, dir, { maxRecordBytes: 3 * MiB + 7, segmentBytes: 16 * MiB });
  const pattern = (n, salt) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + salt) & 0xff;
    return b;
  };
  const big = pattern(MiB, 1);
  const exact = pattern(3 * MiB + 7, 2);
  const justBelow = pattern(3 * MiB + 6, 3);
  const seqs = [await log.append(big), await log.append(exact), await log.append(justBelow)];
  seqs.push(...(await log.appendMany([pattern(MiB, 4), 'small', pattern(MiB + 1, 5)])));
  t.deepEqual(seqs, [1, 2, 3, 4, 5, 6]);
  t.is(log.maxRecordBytes, 3 * MiB + 7, 'log.maxRecordBytes reports the option');
  const check = async (l) => {
    const records = await readAll(l);
    t.is(records.length, 6);
    t.true(records[0].data.equals(big), '1 MiB record');
    t.true(records[1].data.equals(exact), 'record of exactly maxRecordBytes');
    t.true(records[2].data.equals(justBelow), 'record of maxRecordBytes - 1');
    t.true(records[3].data.equals(pattern(MiB, 4)));
    t.is(records[4].data.toString(), 'small');
    t.true(records[5].data.equals(pattern(MiB + 1, 5)));
  };
  await check(log);
  await log.close();
  const reopened = await open(t, dir, { maxRecordBytes: 3 * MiB + 7, segmentBytes: 16 * MiB });
  await check(reopened);
});

test('records spanning several 1 MiB segments round-trip across segment boundaries', async (t) => {
  const dir = tmpDir(t);
  const log = await open(t, dir, { segmentBytes: MiB });
  const expected = [];
  for (let i = 0; i < 60; i++) {
    const b = Buffer.alloc(50_000 + i * 997, i & 0xff);
    b.write(`#${i}#`, 0);
    expected.push(b);
  }
  for (let i = 0; i < expected.length; i += 6) await log.appendMany(expected.slice(i, i + 6));
  const check = async (l) => {
    const records = await readAll(l);
    t.is(records.length, expected.length);
    for (let i = 0; i < expected.length; i++) t.true(records[i].data.equals(expected[i]), `record ${i + 1}`);
  };
  await check(log);
  await log.close();
  await check(await open(t, dir, { segmentBytes: MiB }));
});

test('Symbol.asyncDispose closes the log (and `await using` where the syntax exists)', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir);
  t.is(typeof log[Symbol.asyncDispose], 'function', 'log has [Symbol.asyncDispose]');
  await log.append('x');
  await log[Symbol.asyncDispose]();
  await assertCode(t, await log.append('y').then(() => null, (e) => e), 'ERR_URINGDB_CLOSED', 'append after asyncDispose');

  // `await using` is syntax of newer Node versions; where it parses, it must close the log too.
  let supportsAwaitUsing = true;
  const AsyncFunction = (async () => {}).constructor;
  let body;
  try {
    body = new AsyncFunction('openLog', 'dir', 'let escaped; { await using l = await openLog(dir); await l.append("z"); escaped = l; } return escaped;');
  } catch {
    supportsAwaitUsing = false;
  }
  if (supportsAwaitUsing) {
    const escaped = await body(openTestLog, dir);
    await assertCode(t, await escaped.append('after').then(() => null, (e) => e), 'ERR_URINGDB_CLOSED', 'append after `await using` scope');
  } else {
    t.log(`Node ${process.version} has no \`await using\` syntax; checked the dispose protocol directly`);
  }
  const reopened = await open(t, dir);
  t.is(reopened.lastSeq, supportsAwaitUsing ? 2 : 1);
});

test('close() is idempotent, also when called concurrently', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir);
  await log.append('x');
  await Promise.all([log.close(), log.close()]);
  await log.close();
  await log[Symbol.asyncDispose]();
  const reopened = await open(t, dir);
  t.is(reopened.lastSeq, 1);
});

function assertPercentiles(t, p, what) {
  t.is(typeof p, 'object', `${what} is an object`);
  for (const k of ['count', 'p50', 'p90', 'p99', 'p999', 'max']) {
    t.is(typeof p?.[k], 'number', `${what}.${k} is a number`);
    t.true(p?.[k] >= 0, `${what}.${k} >= 0 (got ${p?.[k]})`);
  }
  t.true(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max, `${what}: percentiles are monotone ${JSON.stringify(p)}`);
}

test('stats(): shape, backend, and counters that grow', async (t) => {
  const log = await open(t, tmpDir(t));
  const s0 = log.stats();
  t.true(['io_uring', 'portable'].includes(s0.backend), `backend ${s0.backend}`);
  if (backend() !== 'auto') t.is(s0.backend, backend(), 'the requested backend is the one in use');
  if (s0.backend === 'io_uring') t.is(s0.fallbackReason, null, 'no fallback reason when io_uring is used');
  // README: fallbackReason "says why io_uring was not used (null when it is)".
  if (s0.backend === 'portable') t.true(typeof s0.fallbackReason === 'string' && s0.fallbackReason.length > 0, `portable: fallbackReason says why (${s0.fallbackReason})`);
  t.true(Array.isArray(s0.features), 'features is an array');
  for (const f of s0.features) t.is(typeof f, 'string');
  for (const k of ['appends', 'appendBytes', 'groups', 'fsyncs', 'recordsPerGroup', 'firstSeq', 'lastSeq', 'segments']) {
    t.is(typeof s0[k], 'number', `stats().${k} is a number`);
  }
  t.is(s0.appends, 0);
  t.is(s0.firstSeq, 0);
  t.is(s0.lastSeq, 0);
  for (const stage of ['queueWait', 'write', 'fsync', 'total']) assertPercentiles(t, s0.latencyUs?.[stage], `latencyUs.${stage}`);

  const payload = 'x'.repeat(100);
  await Promise.all(Array.from({ length: 100 }, () => log.append(payload)));
  await log.appendMany([payload, payload, payload]);
  const s1 = log.stats();
  t.is(s1.appends - s0.appends, 103, 'appends counts records');
  t.true(s1.appendBytes - s0.appendBytes >= 103 * 100, `appendBytes grew by at least the payload (${s1.appendBytes})`);
  t.true(s1.groups > s0.groups, 'groups grew');
  t.true(s1.groups <= 101, `at most one group per call (${s1.groups})`);
  t.true(s1.fsyncs > s0.fsyncs, 'fsyncs grew');
  t.true(s1.recordsPerGroup >= 1, `recordsPerGroup ${s1.recordsPerGroup} >= 1`);
  t.is(s1.firstSeq, 1);
  t.is(s1.lastSeq, 103);
  t.true(s1.segments >= 1, 'at least one segment');
  for (const stage of ['queueWait', 'write', 'fsync', 'total']) assertPercentiles(t, s1.latencyUs[stage], `latencyUs.${stage} after appends`);
  t.true(s1.latencyUs.total.count > 0, 'total latency has samples');
  t.true(s1.latencyUs.total.count <= s1.groups, 'latency is sampled per group');
  t.is(typeof s1.latencyUs.total.p50, 'number');
  t.true(s1.latencyUs.total.p50 >= 0);
  t.deepEqual(s1.features, s0.features, 'features do not change while open');
  t.is(s1.backend, s0.backend);
});

test.serial('diagnostics_channel uringdb:log:commit reports each group consistently', async (t) => {
  const messages = [];
  const dir = tmpDir(t);
  const onCommit = (message) => {
    if (message.dir === dir) messages.push(message);
  };
  diagnosticsChannel.subscribe('uringdb:log:commit', onCommit);
  t.teardown(() => diagnosticsChannel.unsubscribe('uringdb:log:commit', onCommit));

  const log = await open(t, dir);
  await log.append('first');
  await Promise.all(Array.from({ length: 300 }, (_, i) => log.append(`c${i}`)));
  await log.appendMany(['m1', 'm2', 'm3', 'm4']);
  await log.append('last');
  await new Promise((resolve) => setImmediate(resolve));

  const total = 306;
  t.true(messages.length >= 3, `at least 3 groups were published (got ${messages.length})`);
  t.true(messages.length <= total, 'no more groups than records');
  const sorted = [...messages].sort((a, b) => a.firstSeq - b.firstSeq);
  let next = 1;
  let records = 0;
  for (const m of sorted) {
    for (const k of ['records', 'bytes', 'firstSeq', 'lastSeq', 'queueWaitUs', 'writeUs', 'fsyncUs']) {
      t.is(typeof m[k], 'number', `commit message .${k} is a number: ${JSON.stringify(m)}`);
      t.true(m[k] >= 0, `commit message .${k} >= 0`);
    }
    t.true(m.records >= 1, 'a group of appends has records');
    t.is(m.synced, true, 'sync:true groups are covered by fdatasync');
    t.is(m.lastSeq - m.firstSeq + 1, m.records, `group ${m.firstSeq}..${m.lastSeq} claims ${m.records} records`);
    t.is(m.firstSeq, next, `groups tile the seqs without gap or overlap (expected a group at ${next})`);
    next = m.lastSeq + 1;
    records += m.records;
  }
  t.is(records, total, 'the groups cover exactly the appended records');
  t.is(next, total + 1);
  t.true(messages.reduce((s, m) => s + m.bytes, 0) >= 4 + 306, 'bytes cover at least the payloads');
});

test.serial('diagnostics_channel uringdb:log:recovery is published on reopen', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { segmentBytes: MiB });
  for (let i = 0; i < 5; i++) await log.appendMany(Array.from({ length: 100 }, () => Buffer.alloc(1000, i)));
  const lastSeq = log.lastSeq;
  await log.close();

  const messages = [];
  const onRecovery = (message) => messages.push(message);
  diagnosticsChannel.subscribe('uringdb:log:recovery', onRecovery);
  t.teardown(() => diagnosticsChannel.unsubscribe('uringdb:log:recovery', onRecovery));
  const reopened = await open(t, dir, { segmentBytes: MiB });
  await new Promise((resolve) => setImmediate(resolve));

  const dirs = new Set([dir, path.resolve(dir), fs.realpathSync(dir)]);
  const mine = messages.filter((m) => dirs.has(m.dir));
  t.is(mine.length, 1, `one recovery message for ${dir} (got ${JSON.stringify(messages)})`);
  const m = mine[0];
  if (!m) return;
  for (const k of ['segments', 'records', 'lastSeq', 'truncatedBytes', 'durationUs']) {
    t.is(typeof m[k], 'number', `recovery .${k} is a number: ${JSON.stringify(m)}`);
    t.true(m[k] >= 0);
  }
  t.is(m.lastSeq, lastSeq, 'recovery reports the last seq');
  t.is(reopened.lastSeq, lastSeq);
  t.true(m.segments >= 1, 'at least one segment recovered');
  t.true(m.records <= lastSeq, 'records recovered <= lastSeq');
  t.is(m.truncatedBytes, 0, 'a clean close leaves no torn tail to truncate');
});
