// A panic on an engine thread (the applier, a flush, a compaction) fails the database and
// never hangs it or aborts the process (issue 8, item 5): in a child process with an injected
// panic (URINGDB_FAILPOINT=<name>:<n>:panic), every pending promise rejects with
// ERR_URINGDB_FAILED, later writes and flushes reject the same way, reads keep working,
// close() resolves and the process exits normally. Reopened, the database holds every
// acknowledged write.

import test from 'ava';
import { backend } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { spawnChild, parseTagged } from '../helpers/child.mjs';
import { openSmallDb } from '../helpers/db.mjs';

const cases = [
  { mode: 'apply', failpoint: 'apply.group:4:panic' },
  { mode: 'flush', failpoint: 'flush.table_written:1:panic' },
  { mode: 'compact', failpoint: 'compaction.installed:1:panic' },
];

for (const { mode, failpoint } of cases) {
  test(`a panic (${failpoint}) fails the database: promises reject with ERR_URINGDB_FAILED, close resolves, no abort`, async (t) => {
    t.timeout(90_000);
    const dir = tmpDir(t);
    const child = spawnChild(t, 'db-panic-child.mjs', [dir, backend(), mode], { env: { URINGDB_FAILPOINT: failpoint } });
    const { code, signal } = await child.closed;
    t.is(signal, null, `the child was not killed by a signal (abort?); stderr:\n${child.stderr()}`);
    t.is(code, 0, `the child exited normally; stderr:\n${child.stderr()}`);
    t.regex(child.stderr(), /failpoint .* reached: panicking/, 'the panic was injected');
    const line = child.lines.find((l) => l.startsWith('RESULT '));
    t.truthy(line, `the child reported; stdout:\n${child.lines.join('\n')}`);
    if (!line) return;
    const r = parseTagged(line, 'RESULT');
    t.deepEqual(r.before, ['ok', 'ok', 'ok'], 'writes before the panic succeeded');
    if (mode === 'apply') {
      t.is(r.pending.length, 100);
      t.true(r.pending.every((c) => c === 'ERR_URINGDB_FAILED'), `every pending write rejected as failed: ${[...new Set(r.pending)]}`);
    } else {
      t.is(r.op, 'ERR_URINGDB_FAILED', `${mode} rejected as failed`);
    }
    t.is(r.later, 'ERR_URINGDB_FAILED', 'a later write');
    t.is(r.laterFlush, 'ERR_URINGDB_FAILED', 'a later flush');
    t.is(r.read, 'v', 'reads keep working');
    t.is(r.close, 'ok', 'close resolves');

    const db = await openSmallDb(dir);
    t.teardown(() => db.close());
    for (let i = 0; i < 3; i++) t.is(await db.get(`before${i}`, { encoding: 'utf8' }), 'v', `before${i} after reopen`);
    await db.put('after', 'ok');
    t.is(await db.get('after', { encoding: 'utf8' }), 'ok');
  });
}
