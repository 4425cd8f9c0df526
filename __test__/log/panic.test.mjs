// A Rust panic never aborts the process: it becomes a rejected promise with ERR_URINGDB_PANIC,
// and the process (and other logs in it) keeps working. Driven through the binding's test-only
// `__testPanic` hook.

import test from 'ava';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot, openTestLog } from '../helpers/uringdb.mjs';
import { tmpDir, readAll } from '../helpers/util.mjs';

const require = createRequire(import.meta.url);
// The loader the façade uses (dist/index.js requires ./binding.js, which re-exports the root one).
const binding = require(path.join(repoRoot, 'dist', 'binding.js'));

/**
 * The error code: the raw binding sends errors as `Error`s whose message is a JSON object
 * `{"code", "message", ...}` that the façade turns into a UringdbError; accept either form.
 */
function codeOf(err) {
  if (err?.code && !String(err.code).startsWith('Generic')) return err.code;
  try {
    return JSON.parse(err?.message).code;
  } catch {
    return err?.code;
  }
}

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
  t.is(codeOf(err), 'ERR_URINGDB_PANIC', `code (${err?.message})`);

  // Twice: the first panic did not poison anything.
  const err2 = await Promise.resolve().then(() => binding.__testPanic()).then(() => null, (e) => e);
  t.is(codeOf(err2), 'ERR_URINGDB_PANIC');

  // Still alive, and the log still works.
  t.is(await log.append('after'), 2);
  t.deepEqual((await readAll(log)).map((r) => r.data.toString()), ['before', 'after']);
});
