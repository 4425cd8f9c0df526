// Bad input is a clear error with a stable code, and never costs a good record: wrong types,
// oversized records, invalid options, use after close, a second process on the same directory.

import test from 'ava';
import { openTestLog, openLog, backend, LogOptionsSchema } from '../helpers/uringdb.mjs';
import { tmpDir, readAll } from '../helpers/util.mjs';
import { errorOf, expectError, NOT_BYTES } from '../helpers/expect.mjs';
import { spawnChild, waitReady } from '../helpers/child.mjs';

const MiB = 1 << 20;

test('wrong record types reject with ERR_URINGDB_INVALID_ARGUMENT and append nothing', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir);
  t.teardown(() => log.close());
  t.is(await log.append('good-1'), 1);

  for (const [name, value] of NOT_BYTES) {
    await expectError(t, () => log.append(value), 'ERR_URINGDB_INVALID_ARGUMENT', `append(${name})`);
  }
  await expectError(t, () => log.append(), 'ERR_URINGDB_INVALID_ARGUMENT', 'append() without a record');
  t.is(await log.append('good-2'), 2);

  const badBatches = [
    ['a string (not an array)', 'abc'],
    ['a Buffer (not an array)', Buffer.from('abc')],
    ['a number', 5],
    ['null', null],
    ['undefined', undefined],
    ['an object', { 0: 'a', length: 1 }],
    ['an array of numbers', [1, 2, 3]],
    ['an array with one bad element last', ['ok', 'ok', 7]],
    ['an array with one bad element first', [null, 'ok']],
    ['an array with an object', ['ok', {}]],
  ];
  for (const [name, value] of badBatches) {
    await expectError(t, () => log.appendMany(value), 'ERR_URINGDB_INVALID_ARGUMENT', `appendMany(${name})`);
  }
  t.deepEqual(await log.appendMany(['good-3', 'good-4']), [3, 4]);
  t.is(log.lastSeq, 4, 'no bad call consumed a seq');

  await log.close();
  const reopened = await openTestLog(dir);
  t.teardown(() => reopened.close());
  t.deepEqual((await readAll(reopened)).map((r) => r.data.toString()), ['good-1', 'good-2', 'good-3', 'good-4'], 'exactly the good records');
});

test('wrong argument types for read, tail, truncateBefore and append options', async (t) => {
  const log = await openTestLog(tmpDir(t));
  t.teardown(() => log.close());
  await log.appendMany(['a', 'b', 'c']);
  for (const [name, range] of [
    ['from: string', { from: '1' }],
    ['from: negative', { from: -1 }],
    ['from: fraction', { from: 1.5 }],
    ['to: string', { to: 'x' }],
    ['from: NaN', { from: Number.NaN }],
  ]) {
    await expectError(t, () => log.read(range), 'ERR_URINGDB_INVALID_ARGUMENT', `read({${name}})`);
  }
  await expectError(t, () => log.read('1'), 'ERR_URINGDB_INVALID_ARGUMENT', "read('1')");
  await expectError(t, () => log.tail({ from: 'x' }), 'ERR_URINGDB_INVALID_ARGUMENT', "tail({from: 'x'})");
  await expectError(t, () => log.tail({ from: 1, signal: 'not a signal' }), 'ERR_URINGDB_INVALID_ARGUMENT', 'tail({signal: string})');
  for (const [name, seq] of [['string', '2'], ['negative', -5], ['fraction', 2.5], ['undefined', undefined], ['NaN', Number.NaN]]) {
    await expectError(t, () => log.truncateBefore(seq), 'ERR_URINGDB_INVALID_ARGUMENT', `truncateBefore(${name})`);
  }
  const err = await errorOf(() => log.append('x', { sync: 'yes' }));
  t.true(
    err?.code === 'ERR_URINGDB_INVALID_ARGUMENT' || err?.code === 'ERR_URINGDB_INVALID_OPTION',
    `append('x', {sync: 'yes'}) is rejected as an invalid argument/option (got ${err?.code} ${err?.message})`,
  );
  t.is(log.lastSeq, 3, 'nothing was appended by the bad calls');
  t.deepEqual((await readAll(log)).map((r) => r.data.toString()), ['a', 'b', 'c']);
});

test('oversized records reject with ERR_URINGDB_RECORD_TOO_LARGE and append nothing', async (t) => {
  const dir = tmpDir(t);
  const maxRecordBytes = 4096;
  const log = await openTestLog(dir, { maxRecordBytes });
  t.teardown(() => log.close());
  t.is(await log.append(Buffer.alloc(maxRecordBytes, 1)), 1, 'exactly maxRecordBytes is accepted');
  await expectError(t, () => log.append(Buffer.alloc(maxRecordBytes + 1)), 'ERR_URINGDB_RECORD_TOO_LARGE', 'Buffer of max+1');
  await expectError(t, () => log.append(new Uint8Array(maxRecordBytes * 3)), 'ERR_URINGDB_RECORD_TOO_LARGE', 'Uint8Array of 3×max');
  // The limit is on UTF-8 bytes, not on string length: 2000 '€' are 6000 bytes.
  await expectError(t, () => log.append('€'.repeat(2000)), 'ERR_URINGDB_RECORD_TOO_LARGE', 'string of 6000 UTF-8 bytes');
  t.is(await log.append('€'.repeat(1365)), 2, '4095 UTF-8 bytes are accepted');
  await expectError(t, () => log.appendMany(['ok', Buffer.alloc(maxRecordBytes + 1), 'ok']), 'ERR_URINGDB_RECORD_TOO_LARGE', 'appendMany with one oversized record');
  // A batch is one reservation in the commit queue: a batch larger than the queue allows is
  // rejected as too large too, even though each record is within maxRecordBytes.
  await expectError(t, () => log.appendMany(Array.from({ length: 20_000 }, () => Buffer.alloc(maxRecordBytes))), 'ERR_URINGDB_RECORD_TOO_LARGE', 'appendMany of 80 MiB in total');
  // Far beyond every buffer in the engine.
  await expectError(t, () => log.append(Buffer.alloc(64 * MiB)), 'ERR_URINGDB_RECORD_TOO_LARGE', '64 MiB record');
  t.is(await log.append('after'), 3);
  t.is(log.lastSeq, 3);
  await log.close();

  const reopened = await openTestLog(dir, { maxRecordBytes });
  t.teardown(() => reopened.close());
  const records = await readAll(reopened);
  t.deepEqual(records.map((r) => r.seq), [1, 2, 3]);
  t.true(records[0].data.equals(Buffer.alloc(maxRecordBytes, 1)));
  t.is(records[2].data.toString(), 'after');
});

test('invalid options reject with ERR_URINGDB_INVALID_OPTION naming the field', async (t) => {
  const dir = tmpDir(t);
  const cases = [
    ['unknown key', { bogus: 1 }, 'bogus'],
    ['sync: string', { sync: 'yes' }, 'sync'],
    ['ioBackend: unknown', { ioBackend: 'epoll' }, 'ioBackend'],
    ['ioBackend: number', { ioBackend: 1 }, 'ioBackend'],
    ['segmentBytes: below 1 MiB', { segmentBytes: 1000 }, 'segmentBytes'],
    ['segmentBytes: above 4 GiB', { segmentBytes: 8 * 1024 * MiB }, 'segmentBytes'],
    ['segmentBytes: fraction', { segmentBytes: MiB + 0.5 }, 'segmentBytes'],
    ['segmentBytes: string', { segmentBytes: '1048576' }, 'segmentBytes'],
    ['maxRecordBytes: 0', { maxRecordBytes: 0 }, 'maxRecordBytes'],
    ['maxRecordBytes: above ringBytes/4', { ringBytes: 4 * MiB, maxRecordBytes: MiB + 1 }, 'maxRecordBytes'],
    ['ringBytes: not a power of two', { ringBytes: 3 * MiB }, 'ringBytes'],
    ['ringBytes: below 1 MiB', { ringBytes: 512 * 1024 }, 'ringBytes'],
    ['commitDelayUs: negative', { commitDelayUs: -1 }, 'commitDelayUs'],
    ['commitDelayUs: above 100000', { commitDelayUs: 100_001 }, 'commitDelayUs'],
    ['recovery: unknown', { recovery: 'lenient' }, 'recovery'],
  ];
  for (const [name, options, field] of cases) {
    const err = await expectError(t, () => openLog(dir, options), 'ERR_URINGDB_INVALID_OPTION', `openLog(${name})`);
    t.is(err?.field, field, `${name}: err.field names ${field} (got ${err?.field})`);
  }
  const err = await errorOf(() => openLog(dir, { ioBackend: 'epoll' }));
  for (const accepted of ['auto', 'io_uring', 'portable']) {
    t.true(err?.message.includes(accepted), `the ioBackend error lists '${accepted}': ${err?.message}`);
  }

  // The exported schema agrees, and fills in the documented defaults.
  t.false(LogOptionsSchema.safeParse({ segmentBytes: 1000 }).success);
  t.false(LogOptionsSchema.safeParse({ bogus: true }).success);
  const defaults = LogOptionsSchema.parse({});
  t.like(defaults, { sync: true, ioBackend: 'auto', segmentBytes: 64 * MiB, ringBytes: 32 * MiB, commitDelayUs: 0, recovery: 'strict' });
  const withDefaults = await openTestLog(dir);
  t.is(withDefaults.maxRecordBytes, 8 * MiB, 'maxRecordBytes defaults to 8 MiB');
  await withDefaults.close();

  // Valid edge values open fine (README: maxRecordBytes is 1 to ringBytes / 4).
  const log = await openTestLog(dir, { segmentBytes: MiB, ringBytes: MiB, maxRecordBytes: MiB / 4, commitDelayUs: 0 });
  t.is(await log.append('ok'), 1);
  await log.close();
});

test('a non-string directory rejects with ERR_URINGDB_INVALID_ARGUMENT', async (t) => {
  for (const [name, dir] of [['number', 123], ['null', null], ['undefined', undefined], ['object', {}], ['array', ['/tmp']]]) {
    await expectError(t, () => openLog(dir), 'ERR_URINGDB_INVALID_ARGUMENT', `openLog(${name})`);
  }
});

test('use after close rejects with ERR_URINGDB_CLOSED; another handle on the same directory keeps working', async (t) => {
  const dir = tmpDir(t);
  const a = await openTestLog(dir);
  const b = await openTestLog(dir);
  t.teardown(() => b.close());
  t.is(await a.append('from-a'), 1);
  await a.close();

  await expectError(t, () => a.append('x'), 'ERR_URINGDB_CLOSED', 'append after close');
  await expectError(t, () => a.appendMany(['x']), 'ERR_URINGDB_CLOSED', 'appendMany after close');
  await expectError(t, () => a.read({ from: 1 }), 'ERR_URINGDB_CLOSED', 'read after close');
  await expectError(t, () => a.tail({ from: 1 }), 'ERR_URINGDB_CLOSED', 'tail after close');
  await expectError(t, () => a.sync(), 'ERR_URINGDB_CLOSED', 'sync after close');
  await expectError(t, () => a.truncateBefore(1), 'ERR_URINGDB_CLOSED', 'truncateBefore after close');
  // Bad input on a closed log: either error is clear, but it must be an error.
  const err = await errorOf(() => a.append(42));
  t.true(['ERR_URINGDB_CLOSED', 'ERR_URINGDB_INVALID_ARGUMENT'].includes(err?.code), `append(42) after close: ${err?.code}`);

  // The other handle on the same (shared) engine is unaffected.
  t.is(await b.append('from-b'), 2);
  t.deepEqual((await readAll(b)).map((r) => r.data.toString()), ['from-a', 'from-b']);
});

test('a second process opening the same directory gets ERR_URINGDB_LOCKED', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir);
  await log.appendMany(['one', 'two']);
  await log.close();

  const child = spawnChild(t, 'hold-open.mjs', [dir, backend()]);
  const ready = await waitReady(t, child, 'the log');
  if (ready === null) return;
  t.is(ready.lastSeq, 2);

  const err = await expectError(t, () => openTestLog(dir), 'ERR_URINGDB_LOCKED', 'open while another process holds the directory');
  t.truthy(err?.message, 'the LOCKED error says something');

  // Once the holder is gone (even by SIGKILL), the directory opens again with everything in it.
  child.kill('SIGKILL');
  await child.closed;
  const reopened = await openTestLog(dir);
  t.teardown(() => reopened.close());
  t.deepEqual((await readAll(reopened)).map((r) => r.data.toString()), ['one', 'two']);
});
