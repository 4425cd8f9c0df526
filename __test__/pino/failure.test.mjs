// A destination whose disk fails: ENOSPC latches it with a clear error (the errno kept),
// nothing throws into pino or crashes the process, and reopen() resumes logging. The I/O
// layer that injects the failure is the fault backend (URINGDB_FAULT_VFS, read when a store
// opens), so this file runs its tests one at a time.

import test from 'ava';
import { once } from 'node:events';
import { tmpDir } from '../helpers/util.mjs';
import { pino, openDest, endDest, readAllLogs } from '../helpers/pino.mjs';

test.serial('ENOSPC: error event with the errno, writes refused, reopen resumes', async (t) => {
  const dir = tmpDir(t);
  process.env.URINGDB_FAULT_VFS = 'drop-unsynced,fail_write_after_bytes=65536,errno=ENOSPC';
  let d;
  try {
    d = await openDest(dir, { sync: 'always', blockBytes: 4096 });
  } finally {
    delete process.env.URINGDB_FAULT_VFS;
  }
  const errors = [];
  d.on('error', (e) => errors.push(e));
  const logger = pino({ base: null }, d);
  let flushError;
  for (let i = 0; i < 20_000 && flushError === undefined; i++) {
    logger.info({ i, pad: 'x'.repeat(200) }, 'filling');
    if (i % 100 === 99) {
      try {
        d.flushSync();
      } catch (e) {
        flushError = e;
      }
    }
  }
  t.truthy(flushError, 'the disk filled');
  t.is(flushError.code, 'ERR_URINGDB_FAILED');
  t.is(flushError.errno, 28);
  t.is(flushError.cause?.code, 'ENOSPC');
  t.regex(flushError.message, /No space left on device/);
  // Writes after the failure are refused with the same error, as events (pino is not thrown at).
  t.notThrows(() => logger.info('after'));
  t.true(errors.length > 0);
  t.is(errors.at(-1).code, 'ERR_URINGDB_FAILED');
  const flushedBefore = d.stats().lines;

  // Space is back (no fault layer at the next open): reopen() and log on.
  d.reopen();
  await once(d, 'ready');
  logger.info({ i: -1 }, 'resumed');
  d.flushSync();
  await endDest(d);
  const lines = await readAllLogs(dir);
  t.is(lines.at(-1).msg, 'resumed');
  t.true(lines.length >= 1 && lines.length <= flushedBefore + 1);
});
