// Damage on disk is an error that names the file and offset (ERR_URINGDB_CORRUPTION), never
// silently wrong data; recovery: 'tolerant' opens anyway by cutting at the damage.
//
// The damage is made by flipping one byte inside a record's payload, found by searching the
// segment files for a unique marker the record carries.

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { openTestLog } from '../helpers/uringdb.mjs';
import { tmpDir, readAll, assertCode, collect } from '../helpers/util.mjs';

const MiB = 1 << 20;

/** Flips a byte inside the payload of the record containing `marker`; returns { file, offset }. */
function flipInside(dir, marker) {
  const needle = Buffer.from(marker);
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.wal'))) {
    const file = path.join(dir, name);
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(needle);
    if (at !== -1) {
      const offset = at + 2;
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, Buffer.from([bytes[offset] ^ 0x5a]), 0, 1, offset);
      fs.closeSync(fd);
      return { file, offset };
    }
  }
  throw new Error(`marker ${marker} not found in any *.wal file of ${dir}: cannot set up the damage`);
}

const rec = (i) => `record-${String(i).padStart(5, '0')}-${'x'.repeat(200)}`;

test('damage in the middle of the last segment: strict open rejects naming file and offset; tolerant opens and cuts there', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir);
  for (let i = 1; i <= 100; i += 10) await log.appendMany(Array.from({ length: 10 }, (_, j) => rec(i + j)));
  await log.close();

  // Record 45 sits in the middle of the appendMany batch 41..50.
  const damage = flipInside(dir, 'record-00045-');
  const err = await openTestLog(dir).then((l) => (l.close(), null), (e) => e);
  assertCode(t, err, 'ERR_URINGDB_CORRUPTION', 'strict open of a log damaged mid-segment');
  t.is(typeof err?.file, 'string', 'err.file is set');
  t.is(path.resolve(err?.file ?? ''), path.resolve(damage.file), `err.file names the damaged segment (${err?.file})`);
  t.is(typeof err?.offset, 'number', 'err.offset is set');
  t.true(err?.offset <= damage.offset && damage.offset - err?.offset < 4096, `err.offset ${err?.offset} points at the damaged record (byte ${damage.offset})`);

  const tolerant = await openTestLog(dir, { recovery: 'tolerant' });
  t.teardown(() => tolerant.close());
  const records = await readAll(tolerant);
  // Cut at the damage, and appendMany stays atomic: the whole damaged batch goes.
  t.is(tolerant.lastSeq, 40, 'tolerant recovery keeps the batches before the damaged one');
  t.deepEqual(records.map((r) => r.data.toString()), Array.from({ length: 40 }, (_, i) => rec(i + 1)));
  // The damaged log is writable again after a tolerant open, and numbering continues.
  t.is(await tolerant.append('after'), 41);
});

test('damage in a sealed (older) segment: reading it rejects with ERR_URINGDB_CORRUPTION naming file and offset', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { segmentBytes: MiB });
  // ~3 MiB of records: the first segments are sealed.
  for (let i = 1; i <= 12_000; i += 500) await log.appendMany(Array.from({ length: 500 }, (_, j) => rec(i + j)));
  t.true(log.stats().segments >= 3, 'several segments');
  await log.close();

  const damage = flipInside(dir, 'record-00100-');
  const checkError = (err, what) => {
    assertCode(t, err, 'ERR_URINGDB_CORRUPTION', what);
    t.is(path.resolve(err?.file ?? ''), path.resolve(damage.file), `${what}: err.file names the damaged segment (${err?.file})`);
    t.true(
      typeof err?.offset === 'number' && err.offset <= damage.offset && damage.offset - err.offset < 4096,
      `${what}: err.offset ${err?.offset} points at the damaged record (byte ${damage.offset})`,
    );
  };
  // Sealed segments may be verified at open or when read; either way the damage is an error.
  const opened = await openTestLog(dir, { segmentBytes: MiB }).then((l) => ({ log: l }), (err) => ({ err }));
  if (opened.err) {
    checkError(opened.err, 'open of a log with a damaged sealed segment');
    return;
  }
  const reopened = opened.log;
  t.teardown(() => reopened.close());
  t.is(reopened.lastSeq, 12_000);
  const good = await readAll(reopened, { from: 6000 });
  t.is(good.length, 12_000 - 5999, 'records in later segments still read');

  const seen = [];
  const err = await collect(
    (async function* () {
      for await (const r of reopened.read({ from: 1 })) {
        seen.push(r.seq);
        yield r;
      }
    })(),
  ).then(() => null, (e) => e);
  checkError(err, 'reading across the damaged record');
  t.false(seen.includes(100), 'the damaged record was never yielded');
  t.true(seen.length <= 99, 'nothing at or after the damage was yielded before the error');
});
