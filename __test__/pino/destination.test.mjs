// uringdb/pino's destination with the real pino: lines come back in order and identical,
// SonicBoom's surface (events, flushSync, end, reopen, drop), bad options named by field.

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { tmpDir } from '../helpers/util.mjs';
import { backend } from '../helpers/uringdb.mjs';
import { uringPino, pino, openDest, endDest, readAllLogs, readAllText } from '../helpers/pino.mjs';

test('pino(destination({ dir })) stores every line, in order, identical', async (t) => {
  const dir = tmpDir(t);
  const d = uringPino.destination({ dir, ioBackend: backend() });
  const logger = pino({ base: { svc: 'api' } }, d);
  // Logged before the store is open: buffered, then written in order.
  for (let i = 0; i < 500; i++) logger.info({ i, req: { method: 'GET', url: `/items/${i % 7}` } }, 'request');
  await once(d, 'ready');
  t.true(d.ready);
  for (let i = 500; i < 3000; i++) logger[i % 100 === 0 ? 'warn' : 'info']({ i }, 'request');
  d.flushSync();
  const st = d.stats();
  t.is(st.backend === 'io_uring' || st.backend === 'portable', true);
  await endDest(d);
  const lines = await readAllLogs(dir);
  t.is(lines.length, 3000);
  t.deepEqual(lines.map((l) => l.i), Array.from({ length: 3000 }, (_, i) => i));
  t.is(lines[0].svc, 'api');
  t.is(lines[600].level, 40);
  t.is(lines[601].level, 30);
  const warns = await readAllLogs(dir, { level: 'warn' });
  t.deepEqual(warns.map((l) => l.i), Array.from({ length: 25 }, (_, k) => 500 + k * 100));
});

test('the stored text is byte-identical to what pino wrote', async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir);
  const written = [];
  const tee = { write: (s) => { written.push(s); return d.write(s); } };
  const logger = pino({ timestamp: false, base: null }, tee);
  for (let i = 0; i < 200; i++) logger.info({ i, s: 'ünïcødé ✓ "quoted"\nnewline' }, `m${i}`);
  await endDest(d);
  t.deepEqual(await readAllText(dir), written.map((s) => s.replace(/\n$/, '')));
});

test('flushSync before ready throws ERR_URINGDB_NOT_READY; after end it is closed', async (t) => {
  const dir = tmpDir(t);
  const d = uringPino.destination({ dir, ioBackend: backend() });
  t.throws(() => d.flushSync(), { code: 'ERR_URINGDB_NOT_READY' });
  await once(d, 'ready');
  d.write('{"level":30,"msg":"x"}\n');
  d.flushSync();
  await endDest(d);
  t.false(d.writable);
  t.throws(() => d.flushSync(), { code: 'ERR_URINGDB_CLOSED' });
  const errors = [];
  d.on('error', (e) => errors.push(e));
  t.false(d.write('late\n'));
  t.is(errors[0]?.code, 'ERR_URINGDB_CLOSED');
});

test('invalid options are errors that name the field', (t) => {
  const cases = [
    [{}, 'dir'],
    [{ dir: 'x', sync: 'sometimes' }, 'sync'],
    [{ dir: 'x', syncIntervalMs: 0 }, 'syncIntervalMs'],
    [{ dir: 'x', ringBytes: 100_000 }, 'ringBytes'],
    [{ dir: 'x', blockBytes: 1 }, 'blockBytes'],
    [{ dir: 'x', segmentBytes: 10 }, 'segmentBytes'],
    [{ dir: 'x', compressionLevel: 30 }, 'compressionLevel'],
    [{ dir: 'x', traceField: 'a"b' }, 'traceField'],
    [{ dir: 'x', whenFull: 'explode' }, 'whenFull'],
    [{ dir: 'x', ioBackend: 'floppy' }, 'ioBackend'],
    [{ dir: 'x', colour: 'blue' }, 'colour'],
  ];
  for (const [options, field] of cases) {
    const e = t.throws(() => uringPino.destination(options), { code: 'ERR_URINGDB_INVALID_OPTION' }, field);
    t.is(e.field, field);
  }
});

test('a store that cannot open emits error with its code (a second writer is locked out)', async (t) => {
  const dir = tmpDir(t);
  const first = await openDest(dir);
  const second = uringPino.destination({ dir, ioBackend: backend() });
  const [e] = await once(second, 'error');
  t.is(e.code, 'ERR_URINGDB_LOCKED');
  await endDest(first);
});

test('reopen closes and reopens the store; lines written meanwhile are kept in order', async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir);
  d.write('{"level":30,"n":1}\n');
  d.reopen();
  d.write('{"level":30,"n":2}\n');
  await once(d, 'ready');
  d.write('{"level":30,"n":3}\n');
  t.is(d.recovery.lines, 1);
  await endDest(d);
  t.deepEqual((await readAllLogs(dir)).map((l) => l.n), [1, 2, 3]);
});

test("whenFull: 'drop' drops lines when the ring is full and says so; nothing accepted is lost", async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir, { ringBytes: 64 * 1024, whenFull: 'drop', sync: 'none' });
  const dropped = [];
  d.on('drop', (line) => dropped.push(JSON.parse(line).i));
  const big = 'x'.repeat(8000);
  const accepted = [];
  for (let i = 0; i < 3000; i++) {
    if (d.write(`{"level":30,"i":${i},"pad":"${big}"}\n`)) accepted.push(i);
  }
  t.is(accepted.length + dropped.length, 3000);
  t.is(d.stats().dropped, dropped.length);
  await endDest(d);
  t.deepEqual((await readAllLogs(dir)).map((l) => l.i), accepted);
});

test('a line over half the ring is refused with ERR_URINGDB_RECORD_TOO_LARGE', async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir, { ringBytes: 64 * 1024 });
  const errors = [];
  d.on('error', (e) => errors.push(e));
  t.false(d.write('y'.repeat(40_000)));
  t.is(errors[0].code, 'ERR_URINGDB_RECORD_TOO_LARGE');
  t.true(d.write('{"level":30}\n'));
  await endDest(d);
  t.is((await readAllLogs(dir)).length, 1);
});

test('corruption is ERR_URINGDB_CORRUPTION naming the file and offset', async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir, { sync: 'always' });
  for (let i = 0; i < 50; i++) {
    d.write(`{"level":30,"i":${i}}\n`);
    d.flushSync();
  }
  await endDest(d);
  const seg = path.join(dir, fs.readdirSync(dir).find((n) => n.endsWith('.ulog')));
  const bytes = fs.readFileSync(seg);
  bytes[32 + 80 + 2] ^= 0x40; // the first block's payload
  fs.writeFileSync(seg, bytes);
  const e = await t.throwsAsync(readAllLogs(dir), { code: 'ERR_URINGDB_CORRUPTION' });
  t.is(e.file, seg);
  t.is(e.offset, 32);
  const again = uringPino.destination({ dir, ioBackend: backend() });
  const [openError] = await once(again, 'error');
  t.is(openError.code, 'ERR_URINGDB_CORRUPTION');
  t.is(openError.file, seg);
});

test('sampling drops INFO past the first N, never ERROR, and counts by level and reason', async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir, { sampling: { tickMs: 3_600_000, info: { first: 5, thereafter: 0 }, traceInfoCap: 20 } });
  const logger = pino({ base: null }, d);
  for (let i = 0; i < 100; i++) logger.info({ i }, 'hit');
  for (let i = 0; i < 3; i++) logger.error({ i }, 'boom');
  for (let i = 0; i < 30; i++) logger.info({ traceId: 'tr-1', i }, 'traced');
  d.flushSync();
  const st = d.stats();
  await endDest(d);
  const lines = await readAllLogs(dir);
  t.deepEqual(lines.filter((l) => l.msg === 'hit').map((l) => l.i), [0, 1, 2, 3, 4]);
  t.is(lines.filter((l) => l.level === 50).length, 3);
  t.is(lines.filter((l) => l.msg === 'traced').length, 20);
  t.deepEqual(st.sampled, { info: { sampling: 95, traceCap: 10 } });
  const e = t.throws(() => uringPino.destination({ dir, sampling: { info: { first: -1, thereafter: 0 } } }), { code: 'ERR_URINGDB_INVALID_OPTION' });
  t.is(e.field, 'sampling');
});

test('rotation by size and retention by file count keep the newest lines', async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir, { segmentBytes: 64 * 1024, blockBytes: 4096, retention: { maxFiles: 2 } });
  const noise = (i) => Buffer.from(`${i}`.repeat(40)).toString('base64') + Math.random().toString(36).repeat(4);
  for (let i = 0; i < 5000; i++) d.write(`{"level":30,"i":${i},"noise":"${noise(i)}"}\n`);
  d.flushSync();
  const st = d.stats();
  await endDest(d);
  t.true(st.segmentsCreated >= 2, JSON.stringify(st));
  t.is(st.segmentsRemoved, st.segmentsCreated + 1 - 2);
  t.is(fs.readdirSync(dir).filter((n) => n.endsWith('.ulog')).length, 2);
  const back = (await readAllLogs(dir)).map((l) => l.i);
  t.true(back.length > 0 && back.length < 5000);
  t.deepEqual(back, Array.from({ length: back.length }, (_, k) => 5000 - back.length + k));
});
