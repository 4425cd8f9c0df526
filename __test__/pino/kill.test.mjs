// kill -9 after flushSync: every flushed line reads back, in order, identical. The child
// runs its I/O through the layer that drops unsynced bytes (URINGDB_FAULT_VFS), so the kill
// loses everything no fdatasync covered, as a power cut would; each iteration continues the
// same store, so recovery (torn tails cut) is exercised again and again.

import test from 'ava';
import { spawnChild, parseTagged } from '../helpers/child.mjs';
import { backend, iterations } from '../helpers/uringdb.mjs';
import { tmpDir, sleep } from '../helpers/util.mjs';
import { readAllText } from '../helpers/pino.mjs';

/** The exact text the child's pino writes for line `i` (without the newline). */
function expectedLine(i) {
  return `{"level":30,"time":${1_700_000_000_000 + i},"i":${i},"pad":"${'p'.repeat(i % 50)}","msg":"line ${i}"}`;
}

test('kill -9 after flushSync: every flushed line is back, in order, identical', async (t) => {
  const dir = tmpDir(t);
  const rounds = iterations(6);
  let maxAcked = -1;
  let killedMidWrite = 0;
  for (let round = 0; round < rounds; round++) {
    const child = spawnChild(t, 'pino-child.mjs', [dir, backend()], { env: { URINGDB_FAULT_VFS: 'drop-unsynced' } });
    const ready = parseTagged(await child.waitFor((l) => l.startsWith('READY ') || l.startsWith('E '), 20_000, 'READY'), 'READY');
    t.truthy(ready, `round ${round}: ${child.stderr()}`);
    t.true(ready.from > maxAcked, `round ${round}: the store kept every flushed line (from ${ready.from}, flushed up to ${maxAcked})`);
    await child.waitFor((l) => l.startsWith('A '), 20_000, 'a first flush');
    await sleep(20 + Math.floor(Math.random() * 200));
    child.kill('SIGKILL');
    const { signal } = await child.closed;
    t.is(signal, 'SIGKILL', child.stderr());
    const errors = child.lines.filter((l) => l.startsWith('E '));
    t.deepEqual(errors, []);
    for (const line of child.lines) if (line.startsWith('A ')) maxAcked = Math.max(maxAcked, Number(line.slice(2)));
    killedMidWrite++;
  }
  const lines = await readAllText(dir);
  t.true(lines.length > maxAcked, `${lines.length} lines back, flushed up to ${maxAcked}`);
  let bad = 0;
  for (let i = 0; i < lines.length && bad < 5; i++) {
    if (lines[i] !== expectedLine(i)) {
      bad++;
      t.fail(`line ${i}: ${lines[i]}`);
    }
  }
  t.is(bad, 0);
  t.is(killedMidWrite, rounds);
});
