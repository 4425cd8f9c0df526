// pino.transport({ target: 'uringdb/pino' }): the destination in pino's worker thread.

import test from 'ava';
import { once } from 'node:events';
import { tmpDir } from '../helpers/util.mjs';
import { backend } from '../helpers/uringdb.mjs';
import { pino, readAllLogs } from '../helpers/pino.mjs';

test('pino.transport with target uringdb/pino stores every line in order', async (t) => {
  const dir = tmpDir(t);
  const transport = pino.transport({ target: 'uringdb/pino', options: { dir, ioBackend: backend(), sync: 'always' } });
  const logger = pino(transport);
  for (let i = 0; i < 2000; i++) logger.info({ i }, 'via worker');
  logger.error({ i: 2000 }, 'last');
  const closed = once(transport, 'close');
  // thread-stream unrefs its worker: keep this process's loop alive until the close.
  const keepAlive = setInterval(() => {}, 1000);
  transport.end();
  await closed;
  clearInterval(keepAlive);
  const lines = await readAllLogs(dir);
  t.is(lines.length, 2001);
  t.deepEqual(lines.map((l) => l.i), Array.from({ length: 2001 }, (_, i) => i));
  t.is(lines[2000].level, 50);
});

test('pino.transport with bad options fails with the field named', async (t) => {
  const dir = tmpDir(t);
  const transport = pino.transport({ target: 'uringdb/pino', options: { dir, sync: 'sometimes' } });
  const keepAlive = setInterval(() => {}, 1000);
  const [e] = await once(transport, 'error');
  clearInterval(keepAlive);
  t.regex(e.message, /sync/);
});
