// Damage on disk is an error naming the damaged file and the offset of the damage
// (ERR_URINGDB_CORRUPTION with .file and .offset), never wrong or missing data and never a
// crash: one byte of a table (data blocks, index/filter/metaindex, footer), of the MANIFEST
// (header, a record) or of CURRENT is flipped in a copy of a database whose data is all in
// tables; a child process opens each copy and reads everything (scan, get, getSync) and must
// exit normally. Damage to the write-ahead log follows the log's rules: strict recovery
// rejects damage followed by intact records naming the segment; tolerant recovery cuts there,
// whole batches only.

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { backend } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { spawnChild, parseTagged } from '../helpers/child.mjs';
import { openSmallDb, tableFiles, levelFiles, seqKey, seqValue } from '../helpers/db.mjs';
import { expectError } from '../helpers/expect.mjs';

const KEYS = 3000;

/** A database with KEYS keys, all in tables (several levels), nothing left in the log to replay. */
async function makePristine(t) {
  const dir = tmpDir(t, 'uringdb-pristine-');
  const db = await openSmallDb(dir, { memtableBytes: 64 * 1024, blockBytes: 1024, targetFileBytes: 64 * 1024, l0CompactionTrigger: 4 });
  for (let start = 0; start < KEYS; start += 100) {
    // Each key written twice (an older version), interleaved across batches.
    await db.batch(Array.from({ length: 100 }, (_, j) => ({ type: 'put', key: seqKey(start + j), value: 'stale' })));
    await db.batch(Array.from({ length: 100 }, (_, j) => ({ type: 'put', key: seqKey(start + j), value: seqValue(start + j) })));
  }
  await db.compactRange();
  // And one level-0 table on top, holding the same values for a slice of the keys.
  await db.batch(Array.from({ length: 200 }, (_, j) => ({ type: 'put', key: seqKey(1000 + j), value: seqValue(1000 + j) })));
  await db.flush();
  const s = db.stats();
  t.true(s.levels[0].files >= 1 && levelFiles(s) >= 3, `tables in several levels (${s.levels.map((l) => l.files)})`);
  t.is(s.flushedSeq, s.visibleSeq, 'everything is in tables');
  await db.close();
  return dir;
}

/** Copies `pristine` to a fresh directory and XORs the byte at `offset` of `file` (relative) with `mask`. */
function damagedCopy(t, pristine, file, offset, mask = 0x10) {
  const dir = tmpDir(t, 'uringdb-damaged-');
  fs.cpSync(pristine, dir, { recursive: true });
  const target = path.join(dir, file);
  const fd = fs.openSync(target, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= mask;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
  return { dir, file: target, offset, size: fs.statSync(target).size };
}

/** Runs the checker child over the damaged copies; returns their results in order. */
async function check(t, cases) {
  const child = spawnChild(t, 'db-corrupt-check.mjs', [backend(), KEYS, ...cases.map((c) => c.dir)]);
  const { code, signal } = await child.closed;
  t.is(signal, null, `the checker was killed by ${signal}: damage crashed the process\nstderr:\n${child.stderr().slice(-3000)}`);
  t.is(code, 0, `the checker exited with code ${code}\nstderr:\n${child.stderr().slice(-3000)}`);
  const results = child.lines.filter((l) => l.startsWith('RESULT ')).map((l) => parseTagged(l, 'RESULT'));
  t.is(results.length, cases.length, 'a result for every damaged copy');
  return results;
}

/** Every error the checker saw for one copy. */
const errorsOf = (r) => [r.open, r.scan?.error, ...(r.gets?.errors ?? [])].filter((e) => e);

/**
 * The common verdict: no wrong or missing value anywhere; if `mustDetect`, at least one error,
 * and every error is ERR_URINGDB_CORRUPTION naming the damaged file at an offset within it and
 * within `range` ([lo, hi), by default the 64 KiB up to and including the damaged byte: the
 * start of the block, record or footer that holds it).
 */
function judge(t, c, r, { mustDetect = true, range = [c.offset - 64 * 1024, c.offset + 1], endOk = false, what }) {
  const label = `${what} (byte ${c.offset} of ${path.basename(c.file)}, ${c.size} bytes)`;
  if (r.scan) {
    t.deepEqual(r.scan.wrong, [], `${label}: the scan yielded wrong entries`);
    if (r.scan.error === null) t.is(r.scan.count, KEYS, `${label}: a scan that did not fail saw every key`);
  }
  if (r.gets) {
    t.deepEqual(r.gets.wrong, [], `${label}: get returned wrong values`);
    t.is(r.gets.absent, 0, `${label}: get reported ${r.gets.absent} present keys as absent`);
  }
  const errors = errorsOf(r);
  if (mustDetect) t.true(errors.length > 0, `${label}: the damage went unnoticed by open, scan and ${KEYS} gets`);
  for (const e of errors) {
    t.is(e.code, 'ERR_URINGDB_CORRUPTION', `${label}: error code (${e.code}: ${e.message})`);
    t.is(e.file && path.resolve(e.file), path.resolve(c.file), `${label}: err.file names the damaged file (${e.file})`);
    t.true(typeof e.offset === 'number' && Number.isInteger(e.offset), `${label}: err.offset is an integer (${e.offset})`);
    t.true(e.offset >= 0 && (e.offset < c.size || (endOk && e.offset === c.size)), `${label}: err.offset ${e.offset} is within the file`);
    t.true(e.offset >= range[0] && e.offset < range[1], `${label}: err.offset ${e.offset} points at the damage (byte ${c.offset}; expected within [${range[0]}, ${range[1]}))`);
  }
}

test('a flipped byte anywhere in a table (data blocks, index/filter/metaindex, footer) is ERR_URINGDB_CORRUPTION naming the table', async (t) => {
  t.timeout(90_000);
  const pristine = await makePristine(t);
  const tables = tableFiles(pristine);
  // The largest table, in a deeper level (several data blocks), and the level-0 one (the newest).
  const bySize = tables.map((f) => [f, fs.statSync(path.join(pristine, f)).size]).sort((a, b) => b[1] - a[1]);
  const [big, bigSize] = bySize[0];
  const [newest, newestSize] = [tables.at(-1), fs.statSync(path.join(pristine, tables.at(-1))).size];
  const offsets = (size) => [
    0, 1, 100, // the first data block
    Math.floor(size * 0.25), Math.floor(size * 0.5), Math.floor(size * 0.75), // further data blocks
    size - 64 - 300, size - 64 - 40, size - 64 - 1, // index, metaindex and their trailers
    size - 64, size - 50, size - 20, size - 12, size - 3, // footer: handles, version, crc, magic
  ];
  const cases = [];
  for (const [file, size] of [[big, bigSize], [newest, newestSize]]) {
    for (const offset of offsets(size)) cases.push({ ...damagedCopy(t, pristine, file, offset), what: `table ${file === big ? 'largest' : 'level-0'}` });
  }
  const results = await check(t, cases);
  cases.forEach((c, i) => results[i] && judge(t, c, results[i], { what: c.what }));
  // Damage in a footer is found when the table is opened: at open, or at the first read.
  const footerCase = cases.findIndex((c) => c.offset === bigSize - 20);
  t.truthy(errorsOf(results[footerCase] ?? {}).length, 'the footer damage was reported');
});

test('damage to MANIFEST (header, a record) and CURRENT is ERR_URINGDB_CORRUPTION at open naming the file; a damaged last manifest record never yields wrong data', async (t) => {
  t.timeout(60_000);
  const pristine = await makePristine(t);
  const manifest = fs.readdirSync(pristine).find((f) => /^MANIFEST-\d+$/.test(f));
  const mSize = fs.statSync(path.join(pristine, manifest)).size;
  t.true(mSize > 32 + 3 * 16, `the manifest holds several records (${mSize} bytes)`);
  const cases = [
    { ...damagedCopy(t, pristine, manifest, 0), what: 'manifest magic', mustDetect: true, range: [0, 32] },
    { ...damagedCopy(t, pristine, manifest, 9), what: 'manifest version', mustDetect: true, range: [0, 32] },
    { ...damagedCopy(t, pristine, manifest, 17), what: 'manifest number', mustDetect: true, range: [0, 32] },
    { ...damagedCopy(t, pristine, manifest, 26), what: 'manifest header crc', mustDetect: true, range: [0, 32] },
    { ...damagedCopy(t, pristine, manifest, 32), what: 'first record length', mustDetect: true, range: [32, 33] },
    { ...damagedCopy(t, pristine, manifest, 37), what: 'first record checksum', mustDetect: true, range: [32, 33] },
    { ...damagedCopy(t, pristine, manifest, 45), what: 'first record payload', mustDetect: true, range: [32, 46] },
    { ...damagedCopy(t, pristine, manifest, Math.floor(mSize / 2)), what: 'a middle record', mustDetect: true },
    // The last record: a torn tail is cut by design; whatever recovery does, data must be right.
    { ...damagedCopy(t, pristine, manifest, mSize - 2), what: 'the last record', mustDetect: false },
    { ...damagedCopy(t, pristine, 'CURRENT', 3), what: 'CURRENT name', mustDetect: true, range: [0, 64] },
    { ...damagedCopy(t, pristine, 'CURRENT', 12), what: 'CURRENT number' },
    { ...damagedCopy(t, pristine, 'CURRENT', fs.statSync(path.join(pristine, 'CURRENT')).size - 1, 0x0a ^ 0x41), what: 'CURRENT newline', mustDetect: true, range: [0, 64], endOk: true /* the missing newline is at the end */ },
  ];
  const results = await check(t, cases);
  cases.forEach((c, i) => {
    const r = results[i];
    if (!r) return;
    if (c.what === 'CURRENT number') {
      // Names another (absent) manifest: an error at open is required, its code is the engine's choice.
      t.truthy(r.open, `CURRENT naming a missing manifest must fail the open (got ${JSON.stringify(r.open)})`);
      t.true(typeof r.open?.code === 'string', 'with a code');
      return;
    }
    judge(t, c, r, c);
    if (c.mustDetect) t.truthy(r.open, `${c.what}: detected at open (got ${JSON.stringify(r.open)}; scan ${JSON.stringify(r.scan?.error)})`);
  });
});

test('an empty or missing CURRENT, and a missing table, fail the open instead of opening an empty or partial database', async (t) => {
  const pristine = await makePristine(t);
  const emptyCurrent = tmpDir(t, 'uringdb-damaged-');
  fs.cpSync(pristine, emptyCurrent, { recursive: true });
  fs.writeFileSync(path.join(emptyCurrent, 'CURRENT'), '');
  const missingTable = tmpDir(t, 'uringdb-damaged-');
  fs.cpSync(pristine, missingTable, { recursive: true });
  const gone = tableFiles(missingTable)[0];
  fs.rmSync(path.join(missingTable, gone));
  const truncatedTable = tmpDir(t, 'uringdb-damaged-');
  fs.cpSync(pristine, truncatedTable, { recursive: true });
  const cut = tableFiles(truncatedTable).at(-1);
  const cutSize = fs.statSync(path.join(truncatedTable, cut)).size;
  fs.truncateSync(path.join(truncatedTable, cut), cutSize - 100);
  const [a, b, c] = await check(t, [{ dir: emptyCurrent }, { dir: missingTable }, { dir: truncatedTable }]);
  t.is(a?.open?.code, 'ERR_URINGDB_CORRUPTION', `empty CURRENT: ${JSON.stringify(a?.open)}`);
  t.is(a?.open?.file && path.resolve(a.open.file), path.resolve(emptyCurrent, 'CURRENT'));
  const missingErrors = errorsOf(b ?? {});
  t.true(missingErrors.length > 0, `a missing table must be reported (open, scan or get), got none`);
  t.true(missingErrors.every((e) => String(e.file ?? e.message).includes(gone)), `the error names ${gone}: ${JSON.stringify(missingErrors)}`);
  t.deepEqual(b?.scan?.wrong ?? [], []);
  t.is(b?.gets?.absent ?? 0, 0, 'no key of the missing table read as absent');
  // A table shorter than the manifest says: an error naming it (the offset may be where the
  // manifest's size puts the footer, past the shortened file's end).
  const cutErrors = errorsOf(c ?? {});
  t.true(cutErrors.length > 0, 'a table cut short must be reported');
  for (const e of cutErrors) {
    t.is(e.code, 'ERR_URINGDB_CORRUPTION', `table cut short: ${e.code} ${e.message}`);
    t.is(e.file && path.resolve(e.file), path.resolve(truncatedTable, cut));
    t.true(Number.isInteger(e.offset) && e.offset >= 0 && e.offset <= cutSize, `offset ${e.offset} within the table's recorded size ${cutSize}`);
  }
  t.deepEqual(c?.scan?.wrong ?? [], []);
  t.deepEqual(c?.gets?.wrong ?? [], []);
  t.is(c?.gets?.absent ?? 0, 0, 'no key of the shortened table read as absent');
});

test('log damage: strict open rejects naming the segment; tolerant open cuts whole batches there and the database works on', async (t) => {
  const dir = tmpDir(t);
  // A large memtable: everything stays in the log (replayed at open).
  let db = await openSmallDb(dir);
  for (let b = 0; b < 100; b++) {
    await db.batch(Array.from({ length: 10 }, (_, j) => ({ type: 'put', key: seqKey(b * 10 + j), value: `batch-${String(b).padStart(3, '0')}-${j}-${'w'.repeat(40)}` })));
  }
  t.is(db.stats().flushes, 0, 'nothing was flushed');
  await db.close();
  // Damage inside batch 50 (in the middle of the log).
  const seg = fs.readdirSync(path.join(dir, 'wal')).find((f) => /^\d+\.wal$/.test(f));
  const segPath = path.join(dir, 'wal', seg);
  const bytes = fs.readFileSync(segPath);
  const at = bytes.indexOf(Buffer.from('batch-050-5-'));
  t.true(at > 0, 'found batch 50 in the segment');
  const fd = fs.openSync(segPath, 'r+');
  fs.writeSync(fd, Buffer.from([bytes[at + 3] ^ 0x20]), 0, 1, at + 3);
  fs.closeSync(fd);

  const child = spawnChild(t, 'db-corrupt-check.mjs', [backend(), 1000, dir]);
  const { code, signal } = await child.closed;
  t.is(signal, null);
  t.is(code, 0, child.stderr());
  const r = parseTagged(child.lines.find((l) => l.startsWith('RESULT ')) ?? 'RESULT {}', 'RESULT');
  t.is(r.open?.code, 'ERR_URINGDB_CORRUPTION', `strict open of a log damaged mid-way: ${JSON.stringify(r.open)}`);
  t.is(r.open?.file && path.resolve(r.open.file), path.resolve(segPath), 'err.file names the segment');
  t.true(typeof r.open?.offset === 'number' && r.open.offset <= at + 3 && at + 3 - r.open.offset < 4096, `err.offset ${r.open?.offset} points at the damaged record (byte ${at + 3})`);
  await expectError(t, () => openSmallDb(dir), 'ERR_URINGDB_CORRUPTION', 'strict open in this process');

  db = await openSmallDb(dir, { recovery: 'tolerant' });
  t.true(db.recovery.logTruncatedBytes > 0, 'tolerant recovery reports the cut');
  t.is(db.recovery.lastSeq, 50, 'batches 0..49 kept (one sequence number per batch)');
  const got = await db.getMany(Array.from({ length: 1000 }, (_, i) => seqKey(i)), { encoding: 'utf8' });
  const wrong = got.findIndex((v, i) => (i < 500 ? v !== `batch-${String(Math.floor(i / 10)).padStart(3, '0')}-${i % 10}-${'w'.repeat(40)}` : v !== undefined));
  t.is(wrong, -1, `key ${wrong}: the state is exactly batches 0..49 (got ${got[wrong]})`);
  await db.put('after', 'cut');
  await db.close();
  db = await openSmallDb(dir); // strict again: the cut log is clean now
  t.is(await db.get('after', { encoding: 'utf8' }), 'cut');
  t.is(await db.get(seqKey(499), { encoding: 'utf8' }), `batch-049-9-${'w'.repeat(40)}`);
  t.is(await db.get(seqKey(500)), undefined);
  await db.close();
});
