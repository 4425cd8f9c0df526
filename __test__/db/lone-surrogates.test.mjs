// Strings with lone UTF-16 surrogates cannot be encoded as UTF-8: Buffer.from turns every one
// of them into U+FFFD, so '\uD800' and '\uDBFF' used to become the same key (issue 8, item 5).
// The façade rejects them with ERR_URINGDB_INVALID_ARGUMENT naming the argument, for keys,
// range bounds, values and log records, and writes nothing. Well-formed strings (including
// surrogate pairs) are unchanged.

import test from 'ava';
import { openLog } from '../helpers/uringdb.mjs';
import { tmpDir, assertCode, collect } from '../helpers/util.mjs';
import { openSmallDb } from '../helpers/db.mjs';
import { expectError, expectThrowSync } from '../helpers/expect.mjs';
import { openTestLevel } from '../helpers/level.mjs';

const LONE = [
  ['high', '\uD800'],
  ['other high', '\uDBFF'],
  ['low', '\uDC00'],
  ['high at the end', 'key\uD83D'],
  ['low at the start', '\uDE00key'],
  ['reversed pair', '\uDE00\uD83D'],
];

test('lone-surrogate keys no longer collide: both are rejected and nothing is written', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const a = await expectError(t, () => db.put('\uD800', 'first'), 'ERR_URINGDB_INVALID_ARGUMENT', 'put \\uD800');
  t.regex(a?.message ?? '', /\bkey\b.*surrogate/, 'the message names the argument and the cause');
  await expectError(t, () => db.put('\uDBFF', 'second'), 'ERR_URINGDB_INVALID_ARGUMENT', 'put \\uDBFF');
  t.deepEqual(await collect(db.keys()), [], 'nothing was written');
  t.is(db.getSync('\uFFFD'), undefined, 'not stored as U+FFFD either');
});

test('every method rejects a lone surrogate in a key, bound, value or record, naming it', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  await db.put('good', '1');
  for (const [name, bad] of LONE) {
    const err = await expectError(t, () => db.put(bad, 'v'), 'ERR_URINGDB_INVALID_ARGUMENT', `put(key: ${name})`);
    t.regex(err?.message ?? '', /^key /, `put(key: ${name}) names 'key'`);
    const verr = await expectError(t, () => db.put('k', bad), 'ERR_URINGDB_INVALID_ARGUMENT', `put(value: ${name})`);
    t.regex(verr?.message ?? '', /^value /, `put(value: ${name}) names 'value'`);
    await expectError(t, () => db.del(bad), 'ERR_URINGDB_INVALID_ARGUMENT', `del(${name})`);
    await expectError(t, () => db.get(bad), 'ERR_URINGDB_INVALID_ARGUMENT', `get(${name})`);
    const gm = await expectError(t, () => db.getMany(['good', bad]), 'ERR_URINGDB_INVALID_ARGUMENT', `getMany(${name})`);
    t.regex(gm?.message ?? '', /^keys\[1\] /, `getMany names keys[1]`);
    expectThrowSync(t, () => db.getSync(bad), 'ERR_URINGDB_INVALID_ARGUMENT', `getSync(${name})`);
    const b = await expectError(t, () => db.batch([{ type: 'put', key: 'k', value: 'v' }, { type: 'put', key: 'k2', value: bad }]), 'ERR_URINGDB_INVALID_ARGUMENT', `batch value ${name}`);
    t.regex(b?.message ?? '', /^operations\[1\]\.value /, 'batch names operations[1].value');
    await expectError(t, () => db.batch([{ type: 'del', key: bad }]), 'ERR_URINGDB_INVALID_ARGUMENT', `batch del ${name}`);
    expectThrowSync(t, () => db.batch().put(bad, 'v'), 'ERR_URINGDB_INVALID_ARGUMENT', `chained put key ${name}`);
    expectThrowSync(t, () => db.batch().put('k', bad), 'ERR_URINGDB_INVALID_ARGUMENT', `chained put value ${name}`);
    for (const bound of ['gt', 'gte', 'lt', 'lte']) {
      expectThrowSync(t, () => db.iterator({ [bound]: bad }), 'ERR_URINGDB_INVALID_ARGUMENT', `iterator({${bound}: ${name}})`);
      await expectError(t, () => db.clear({ [bound]: bad }), 'ERR_URINGDB_INVALID_ARGUMENT', `clear({${bound}: ${name}})`);
    }
    await expectError(t, () => db.compactRange({ gte: bad }), 'ERR_URINGDB_INVALID_ARGUMENT', `compactRange(${name})`);
  }
  t.deepEqual(
    (await collect(db.iterator())).map(([k, v]) => [k.toString(), v.toString()]),
    [['good', '1']],
    'no rejected write reached the database',
  );
});

test('well-formed strings with surrogate pairs round-trip unchanged', async (t) => {
  const db = await openSmallDb(tmpDir(t));
  t.teardown(() => db.close());
  const k = 'emoji \uD83D\uDE00 key';
  const v = 'value \uD83D\uDCA9';
  await db.put(k, v);
  t.is(await db.get(k, { encoding: 'utf8' }), v);
  t.is(db.getSync(k, { encoding: 'utf8' }), v);
  t.deepEqual(await collect(db.keys({ keyEncoding: 'utf8' })), [k]);
});

test('log records with a lone surrogate are rejected (staged, large and appendMany)', async (t) => {
  const log = await openLog(tmpDir(t), { segmentBytes: 1 << 20, ringBytes: 1 << 20 });
  t.teardown(() => log.close());
  for (const [name, bad] of LONE) {
    await expectError(t, () => log.append(bad), 'ERR_URINGDB_INVALID_ARGUMENT', `append(${name})`);
    await expectError(t, () => log.append(bad + 'x'.repeat(100_000)), 'ERR_URINGDB_INVALID_ARGUMENT', `large append(${name})`);
    const e = await expectError(t, () => log.appendMany(['ok', bad]), 'ERR_URINGDB_INVALID_ARGUMENT', `appendMany(${name})`);
    t.regex(e?.message ?? '', /^records\[1\] /, 'appendMany names records[1]');
  }
  t.is(log.lastSeq, 0, 'nothing was appended');
  t.is(await log.append('\uD83D\uDE00'), 1);
});

test('UringLevel (utf8 encodings) rejects lone-surrogate keys and values', async (t) => {
  const db = await openTestLevel(t, { segmentBytes: 1 << 20, ringBytes: 1 << 20 });
  let err = null;
  try {
    await db.put('\uD800', 'v');
  } catch (e) {
    err = e;
  }
  assertCode(t, err?.cause ?? err, 'ERR_URINGDB_INVALID_ARGUMENT', 'level put key');
  err = null;
  try {
    await db.put('k', '\uDBFF');
  } catch (e) {
    err = e;
  }
  assertCode(t, err?.cause ?? err, 'ERR_URINGDB_INVALID_ARGUMENT', 'level put value');
  t.deepEqual(await db.keys().all(), []);
});

test('the fallback check (no String.prototype.isWellFormed) rejects the same strings', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { repoRoot } = await import('../helpers/uringdb.mjs');
  const script = `
    delete String.prototype.isWellFormed;
    const { open } = require(${JSON.stringify(repoRoot + '/dist/index.js')});
    (async () => {
      const db = await open(process.argv[1], { segmentBytes: 1 << 20, ringBytes: 1 << 20 });
      const out = [];
      for (const s of ${JSON.stringify(LONE.map(([, s]) => s))}) out.push(await db.put(s, 'v').then(() => 'ok', (e) => e.code));
      out.push(await db.put('\\uD83D\\uDE00', 'v').then(() => 'ok', (e) => e.code));
      await db.close();
      console.log(JSON.stringify(out));
    })();`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script, tmpDir(t)], { encoding: 'utf8' }));
  t.deepEqual(out, [...LONE.map(() => 'ERR_URINGDB_INVALID_ARGUMENT'), 'ok']);
});
