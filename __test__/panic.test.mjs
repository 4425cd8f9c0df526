// A Rust panic never aborts the process: it becomes a rejected promise with ERR_URINGDB_PANIC,
// and the process (and other logs in it) keeps working. Driven through the binding's test-only
// `__testPanic` hook.

import test from 'ava';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot, openTestLog } from './helpers/uringdb.mjs';
import { tmpDir, readAll } from './helpers/util.mjs';

const require = createRequire(import.meta.url);
const binding = require(path.join(repoRoot, 'binding.js'));

test('a panic inside the engine rejects with ERR_URINGDB_PANIC and the process survives', async (t) => {
  const log = await openTestLog(tmpDir(t));
  t.teardown(() => log.close());
  t.is(await log.append('before'), 1);

  t.is(typeof binding.__testPanic, 'function', 'the binding exposes the test-only __testPanic hook');
  if (typeof binding.__testPanic !== 'function') return;
  let err = null;
  try {
    await binding.__testPanic();
  } catch (e) {
    err = e;
  }
  t.truthy(err, '__testPanic() rejected');
  t.is(err?.code, 'ERR_URINGDB_PANIC', `code (${err?.message})`);

  // Twice: the first panic did not poison anything.
  const err2 = await Promise.resolve().then(() => binding.__testPanic()).then(() => null, (e) => e);
  t.is(err2?.code, 'ERR_URINGDB_PANIC');

  // Still alive, and the log still works.
  t.is(await log.append('after'), 2);
  t.deepEqual((await readAll(log)).map((r) => r.data.toString()), ['before', 'after']);
});
