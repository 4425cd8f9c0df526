// The small default footprint (issue 10): an empty database, and an empty log, opened with
// default options, given one write and closed, take at most 4 MiB on disk (allocated
// blocks, as du counts them). Log segments start small and grow only under heavy writes;
// no prepared-but-unused segment is left behind by a clean close. A size assertion, not a
// timing one.

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { openTestDb, openTestLog } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';

const LIMIT_BYTES = 4 * 1024 * 1024;

/** Bytes allocated under `dir` (st_blocks × 512, as du counts them), and every file's path. */
function diskUsage(dir) {
  let bytes = 0;
  const files = [];
  const walk = (p) => {
    const st = fs.lstatSync(p);
    bytes += st.blocks * 512;
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) walk(path.join(p, name));
    else files.push(path.relative(dir, p));
  };
  walk(dir);
  return { bytes, files };
}

test('an empty database with default options: open + put + close leaves at most 4 MiB', async (t) => {
  const dir = path.join(tmpDir(t), 'db');
  const db = await openTestDb(dir);
  await db.put('key', 'value');
  await db.close();
  const { bytes, files } = diskUsage(dir);
  t.log(`${(bytes / 1024).toFixed(0)} KiB in ${files.length} files: ${files.join(', ')}`);
  t.true(bytes <= LIMIT_BYTES, `${bytes} bytes on disk: ${files.join(', ')}`);
  t.deepEqual(files.filter((f) => f.endsWith('.prep')), [], 'no prepared segment left behind');
  // And it reopens with the write in it.
  const again = await openTestDb(dir);
  t.is(await again.get('key', { encoding: 'utf8' }), 'value');
  await again.close();
});

test('an empty log with default options: open + append + close leaves at most 4 MiB', async (t) => {
  const dir = path.join(tmpDir(t), 'log');
  const log = await openTestLog(dir);
  await log.append(Buffer.from('one record'));
  await log.close();
  const { bytes, files } = diskUsage(dir);
  t.log(`${(bytes / 1024).toFixed(0)} KiB in ${files.length} files: ${files.join(', ')}`);
  t.true(bytes <= LIMIT_BYTES, `${bytes} bytes on disk: ${files.join(', ')}`);
  t.deepEqual(files.filter((f) => f.endsWith('.prep')), [], 'no prepared segment left behind');
});
