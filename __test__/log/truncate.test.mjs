// truncateBefore(seq): deletes whole segments whose records are all below seq, and nothing else.

import test from 'ava';
import path from 'node:path';
import fs from 'node:fs';
import { openTestLog } from '../helpers/uringdb.mjs';
import { tmpDir, readAll, listFiles, assertCode } from '../helpers/util.mjs';

const MiB = 1 << 20;
const RECORD_BYTES = 64 * 1024;
// A 1 MiB segment cannot hold more than this many 64 KiB records (their framing only adds bytes).
const MAX_RECORDS_PER_SEGMENT = MiB / RECORD_BYTES;

// Segment files are named N.wal; the next segment is prepared in the background as N.wal.prep,
// so only *.wal files are compared.
const segmentFiles = (dir) => listFiles(dir).filter((f) => f.endsWith('.wal'));

const record = (seq) => {
  const b = Buffer.alloc(RECORD_BYTES, seq & 0xff);
  b.writeUInt32LE(seq, 0);
  return b;
};

async function fill(log, count) {
  for (let i = 0; i < count; i += 8) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 8); j++) batch.push(record(j + 1));
    await log.appendMany(batch);
  }
}

function checkRecords(t, records, from, to) {
  t.is(records.length, to - from + 1, `records ${from}..${to}`);
  let ok = true;
  for (let i = 0; i < records.length && ok; i++) {
    ok = records[i].seq === from + i && records[i].data.equals(record(from + i));
    if (!ok) t.fail(`record at index ${i}: seq ${records[i].seq}, expected ${from + i} with its bytes`);
  }
  t.true(ok);
}

/**
 * Reads `it` from seq `next` while `next <= last`, counting records that are not the expected
 * one in order; a read error ends it. Returns { next, wrong, err }.
 */
async function drainChecked(it, next, last) {
  let wrong = 0;
  let err = null;
  try {
    while (next <= last) {
      const r = await it.next();
      if (r.done) break;
      if (r.value.seq !== next || !r.value.data.equals(record(next))) wrong++;
      next = r.value.seq + 1;
    }
  } catch (e) {
    err = e;
  }
  return { next, wrong, err };
}

test('truncateBefore removes whole segments below seq only; the rest stays readable across reopen', async (t) => {
  const dir = tmpDir(t);
  const options = { segmentBytes: MiB };
  const log = await openTestLog(dir, options);
  const total = 96; // 6 MiB of payload: at least 6 segments
  await fill(log, total);
  t.is(log.lastSeq, total);
  const segmentsBefore = log.stats().segments;
  t.true(segmentsBefore >= 6, `6 MiB in 1 MiB segments makes at least 6 segments (stats says ${segmentsBefore})`);
  const filesBefore = segmentFiles(dir);
  t.is(filesBefore.length, segmentsBefore, `one *.wal file per segment (${filesBefore.join(', ')})`);

  // Truncating at or below the first seq removes nothing.
  t.is(await log.truncateBefore(1), 0, 'truncateBefore(1) removes nothing');
  t.deepEqual(segmentFiles(dir), filesBefore, 'no segment file changed');
  t.is(log.firstSeq, 1);

  const cut = 50;
  const removed = await log.truncateBefore(cut);
  t.is(typeof removed, 'number');
  t.true(removed >= 2, `at least 2 whole segments lie below seq ${cut} (removed ${removed})`);
  const filesAfter = segmentFiles(dir);
  const gone = filesBefore.filter((f) => !filesAfter.includes(f));
  t.is(gone.length, removed, `segment files removed from the directory (${gone.join(', ')}) match the count returned`);
  t.is(filesAfter.length, filesBefore.length - removed, 'no segment file was added');
  t.is(log.stats().segments, segmentsBefore - removed, 'stats().segments dropped by the count returned');

  const firstSeq = log.firstSeq;
  t.true(firstSeq > 1 && firstSeq <= cut, `firstSeq ${firstSeq} in (1, ${cut}]: only whole segments below the cut went`);
  t.true(cut - firstSeq < MAX_RECORDS_PER_SEGMENT, `firstSeq ${firstSeq}: every segment wholly below ${cut} was removed`);
  t.is(log.lastSeq, total);
  checkRecords(t, await readAll(log, { from: firstSeq }), firstSeq, total);
  checkRecords(t, await readAll(log, { from: cut }), cut, total);
  // Without `from`, read() starts at the first seq; from below it rejects (src/log.ts: read()).
  checkRecords(t, await readAll(log), firstSeq, total);
  const below = await readAll(log, { from: 1 }).then(() => null, (err) => err);
  assertCode(t, below, 'ERR_URINGDB_TRUNCATED', 'read({from: 1}) below firstSeq');
  const justBelow = await readAll(log, { from: firstSeq - 1 }).then(() => null, (err) => err);
  assertCode(t, justBelow, 'ERR_URINGDB_TRUNCATED', 'read({from: firstSeq - 1})');

  // Truncating again at the same seq is a no-op.
  t.is(await log.truncateBefore(cut), 0, 'second truncateBefore at the same seq removes nothing');
  t.deepEqual(segmentFiles(dir), filesAfter);
  await log.close();

  const reopened = await openTestLog(dir, options);
  t.teardown(() => reopened.close());
  t.is(reopened.firstSeq, firstSeq, 'firstSeq survives reopen');
  t.is(reopened.lastSeq, total, 'lastSeq survives reopen');
  checkRecords(t, await readAll(reopened), firstSeq, total);
  t.is(await reopened.append(record(total + 1)), total + 1, 'numbering continues after truncate + reopen');
  checkRecords(t, await readAll(reopened, { from: total - 1 }), total - 1, total + 1);
});

test('truncateBefore(lastSeq) keeps the last record and appends continue', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { segmentBytes: MiB });
  t.teardown(() => log.close());
  await fill(log, 64);
  const removed = await log.truncateBefore(64);
  t.true(removed >= 3, `removed ${removed} segments`);
  t.true(log.firstSeq <= 64 && 64 - log.firstSeq < MAX_RECORDS_PER_SEGMENT, `firstSeq ${log.firstSeq}`);
  const rest = await readAll(log); // from the first seq
  t.is(rest.at(-1).seq, 64);
  t.true(rest.at(-1).data.equals(record(64)));
  t.is(await log.append(record(65)), 65);
  checkRecords(t, await readAll(log, { from: 64 }), 64, 65);
});

test('truncateBefore while appends are in flight loses none of them', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { segmentBytes: MiB });
  t.teardown(() => log.close());
  await fill(log, 48);
  const pending = [];
  for (let i = 49; i <= 96; i++) pending.push(log.append(record(i)));
  const removed = await log.truncateBefore(40);
  const seqs = await Promise.all(pending);
  t.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: 48 }, (_, i) => 49 + i), 'appends in flight got seqs 49..96');
  t.true(removed >= 1);
  const records = await readAll(log, { from: 40 });
  t.deepEqual(records.map((r) => r.seq), Array.from({ length: 57 }, (_, i) => 40 + i));
  for (let i = 0; i < pending.length; i++) {
    t.true(records[seqs[i] - 40].data.equals(record(49 + i)), `append #${i} is at its seq ${seqs[i]}`);
  }
  for (let s = 40; s <= 48; s++) t.true(records[s - 40].data.equals(record(s)));
});

test('truncateBefore frees the disk space of the removed segments', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { segmentBytes: MiB });
  t.teardown(() => log.close());
  await fill(log, 96);
  const allocated = (f) => {
    try {
      return fs.statSync(path.join(dir, f)).blocks * 512;
    } catch {
      return 0;
    }
  };
  const du = () => listFiles(dir).reduce((sum, f) => sum + allocated(f), 0);
  const segmentsBefore = segmentFiles(dir);
  const sizes = new Map(segmentsBefore.map((f) => [f, allocated(f)]));
  const before = du();
  const removed = await log.truncateBefore(80);
  const gone = segmentsBefore.filter((f) => !segmentFiles(dir).includes(f));
  const freedExpected = gone.reduce((sum, f) => sum + sizes.get(f), 0);
  const after = du();
  t.true(removed >= 3, `removed ${removed} segments`);
  t.true(freedExpected >= removed * 512 * 1024, `the removed segments held disk space (${freedExpected} bytes)`);
  // A segment being prepared in the background may take up to one segment meanwhile.
  t.true(before - after >= freedExpected - MiB, `disk usage fell from ${before} to ${after} bytes; the removed segments held ${freedExpected}`);
});

test('a read in progress when truncateBefore removes its segments continues correctly or ends with ERR_URINGDB_TRUNCATED', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { segmentBytes: MiB });
  t.teardown(() => log.close());
  await fill(log, 96);
  const it = log.read({ from: 1, batchSize: 4 })[Symbol.asyncIterator]();
  for (let seq = 1; seq <= 5; seq++) t.is((await it.next()).value?.seq, seq);
  const removed = await log.truncateBefore(90);
  t.true(removed >= 5, `removed ${removed} segments under the reader`);

  // The reader may go on (deleted files stay readable while open) or stop with TRUNCATED; it
  // must not yield wrong bytes, skip records, or call the healthy log corrupt.
  const { next, wrong, err } = await drainChecked(it, 6, Infinity);
  t.is(wrong, 0, 'every record the reader yielded is the right one, in order');
  if (err) {
    t.is(err.code, 'ERR_URINGDB_TRUNCATED', `the interrupted read ends with ERR_URINGDB_TRUNCATED (got ${err.code}: ${err.message})`);
  } else {
    t.is(next, 97, 'the reader that went on read through to the end');
  }
  // And the log itself is fine.
  checkRecords(t, await readAll(log), log.firstSeq, 96);
  await log.close();
  const reopened = await openTestLog(dir, { segmentBytes: MiB });
  t.teardown(() => reopened.close());
  t.is(reopened.lastSeq, 96);
  checkRecords(t, await readAll(reopened), reopened.firstSeq, 96);
});

test('a tail that falls behind a truncateBefore continues correctly or ends with ERR_URINGDB_TRUNCATED', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { segmentBytes: MiB });
  t.teardown(() => log.close());
  await fill(log, 64);
  const ac = new AbortController();
  const it = log.tail({ from: 1, signal: ac.signal, batchSize: 2 })[Symbol.asyncIterator]();
  t.is((await it.next()).value?.seq, 1);
  await log.truncateBefore(60);
  const { next, wrong, err } = await drainChecked(it, 2, 64);
  ac.abort();
  t.is(wrong, 0, 'every record the tail yielded is the right one, in order');
  if (err) t.is(err.code, 'ERR_URINGDB_TRUNCATED', `the tail ends with ERR_URINGDB_TRUNCATED (got ${err.code}: ${err.message})`);
  else t.is(next, 65, 'the tail went on through to the end');
});
