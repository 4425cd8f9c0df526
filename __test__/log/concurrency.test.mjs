// Several producers on one engine (main thread + worker_threads sharing the same directory),
// and close() while appends and tails are pending.

import test from 'ava';
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import { openTestLog, backend, iterations } from '../helpers/uringdb.mjs';
import { tmpDir, readAll, withTimeout, assertCode } from '../helpers/util.mjs';
import { spawnChild, parseTagged, fixturesDir } from '../helpers/child.mjs';
import { startWorker as startWorkerThread } from '../helpers/worker.mjs';

const PER_THREAD = 5000 * Math.max(1, Math.ceil(iterations(1) / 20));

const startWorker = (t, workerData) => startWorkerThread(t, 'worker-appender.mjs', workerData);

async function appendTagged(log, tag, count, inflight) {
  const acks = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      acks.push([i, await log.append(`${tag}:${i}`)]);
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  return acks;
}

/** Every tagged record present exactly once at its acknowledged seq; seqs 1..n contiguous. */
function checkAll(t, records, ackSets) {
  const total = ackSets.reduce((n, s) => n + s.acks.length, 0);
  t.is(records.length, total, `${total} records in the log`);
  let contiguous = true;
  for (let i = 0; i < records.length && contiguous; i++) contiguous = records[i].seq === i + 1;
  t.true(contiguous, 'seqs are 1..n without gaps');
  const seen = new Map();
  for (const r of records) {
    const text = r.data.toString();
    seen.set(text, (seen.get(text) ?? 0) + 1);
  }
  let duplicates = 0;
  for (const n of seen.values()) if (n !== 1) duplicates++;
  t.is(duplicates, 0, 'no record appears twice');
  let wrong = 0;
  const firstWrong = [];
  for (const { tag, acks, count } of ackSets) {
    t.is(acks.length, count, `${tag}: every append was acknowledged`);
    t.is(new Set(acks.map(([i]) => i)).size, count, `${tag}: each index once`);
    for (const [i, seq] of acks) {
      if (records[seq - 1]?.data.toString() !== `${tag}:${i}`) {
        wrong++;
        if (firstWrong.length < 5) firstWrong.push(`${tag}:${i} acked at seq ${seq}, log has ${records[seq - 1]?.data.toString()}`);
      }
    }
  }
  t.is(wrong, 0, `every ack points at its record: ${firstWrong.join('; ')}`);
}

test.serial('main thread and two worker_threads append to the same directory concurrently', async (t) => {
  t.timeout(120_000);
  const dir = tmpDir(t);
  const ioBackend = backend();
  const log = await openTestLog(dir);
  t.teardown(() => log.close());
  const startSignal = new SharedArrayBuffer(4);
  const workers = ['w1', 'w2'].map((tag) => startWorker(t, { dir, ioBackend, tag, count: PER_THREAD, inflight: 64, startSignal }));
  await withTimeout(Promise.all(workers.map((w) => w.opened)), 30_000, 'workers to open the shared log');
  Atomics.store(new Int32Array(startSignal), 0, 1);
  Atomics.notify(new Int32Array(startSignal), 0);

  const [mainAcks, ...results] = await withTimeout(
    Promise.all([appendTagged(log, 'main', PER_THREAD, 64), ...workers.map((w) => w.done)]),
    90_000,
    'all threads to finish appending',
  );
  const ackSets = [
    { tag: 'main', acks: mainAcks, count: PER_THREAD },
    { tag: 'w1', acks: results[0].acks, count: PER_THREAD },
    { tag: 'w2', acks: results[1].acks, count: PER_THREAD },
  ];
  const allSeqs = ackSets.flatMap((s) => s.acks.map(([, seq]) => seq));
  t.is(new Set(allSeqs).size, allSeqs.length, 'no seq was handed out twice across threads');
  t.is(log.lastSeq, 3 * PER_THREAD);
  checkAll(t, await readAll(log), ackSets);
  const stats = log.stats();
  t.true(stats.appends >= 3 * PER_THREAD, `the engine is shared: its stats count all threads' appends (${stats.appends})`);
  await log.close();

  const reopened = await openTestLog(dir);
  t.teardown(() => reopened.close());
  checkAll(t, await readAll(reopened), ackSets);
});

test.serial('a handle closed in one thread does not disturb another thread appending to the same directory', async (t) => {
  t.timeout(60_000);
  const dir = tmpDir(t);
  const log = await openTestLog(dir);
  await log.append('main:0');
  const w = startWorker(t, { dir, ioBackend: backend(), tag: 'w', count: 2000, inflight: 16 });
  await withTimeout(w.opened, 30_000, 'worker to open');
  await log.close(); // the worker's handle keeps the engine open
  const result = await withTimeout(w.done, 30_000, 'worker to finish');

  const reopened = await openTestLog(dir);
  t.teardown(() => reopened.close());
  const records = await readAll(reopened);
  checkAll(t, records.slice(1).map((r, i) => ({ ...r, seq: i + 1 })), [
    { tag: 'w', acks: result.acks.map(([i, seq]) => [i, seq - 1]), count: 2000 },
  ]);
  t.is(records[0].data.toString(), 'main:0');
});

test.serial('a worker terminated with appends in flight does not keep the directory locked after the other handles close', async (t) => {
  t.timeout(60_000);
  const dir = tmpDir(t);
  const log = await openTestLog(dir);
  const worker = new Worker(path.join(fixturesDir, 'worker-forever.mjs'), { workerData: { dir, ioBackend: backend() } });
  t.teardown(() => worker.terminate());
  await withTimeout(new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  }), 30_000, 'the worker to open the log');
  // Let it get appends in flight, then kill the thread without closing its handle.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await worker.terminate();

  // The main thread's handle (same engine) keeps working.
  const seq = await withTimeout(log.append('main-after-terminate'), 20_000, 'an append after the worker was terminated');
  const records = await readAll(log);
  t.is(records.length, seq, 'seqs 1..n without gaps');
  t.is(records.at(-1)?.data.toString(), 'main-after-terminate');
  await withTimeout(log.close(), 20_000, 'close() after the worker was terminated');

  // The terminated worker's handle is gone with its thread, so this process holds no handle:
  // another process can open the directory.
  const child = spawnChild(t, 'open-report.mjs', [dir, backend()]);
  const line = await child.waitFor((l) => l.startsWith('OK ') || l.startsWith('E '), 30_000, 'OK or E');
  t.true(line.startsWith('OK '), `another process opens the directory after every live handle closed (got ${line})`);
});

test('concurrent opens and path aliases of one directory share one engine; the lock goes with the last handle', async (t) => {
  const dir = tmpDir(t);
  const handles = await withTimeout(Promise.all(Array.from({ length: 20 }, () => openTestLog(dir))), 30_000, '20 concurrent opens');
  const seqs = await Promise.all(handles.map((h, i) => h.append(`h${i}`)));
  t.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1), 'one numbering across all handles');
  const link = `${dir}-link`;
  fs.symlinkSync(dir, link);
  t.teardown(() => fs.rmSync(link, { force: true }));
  const aliases = [`${dir}/`, path.join(dir, '..', path.basename(dir)), path.relative(process.cwd(), dir), link];
  for (const alias of aliases) {
    const h = await openTestLog(alias);
    handles.push(h);
    t.is(h.lastSeq, 20, `${alias} opens the same log`);
  }
  t.is(await handles.at(-1).append('via-link'), 21);
  for (const h of handles) t.is(h.lastSeq, 21, 'every handle sees every append');
  await Promise.all(handles.map((h) => h.close()));

  const child = spawnChild(t, 'open-report.mjs', [dir, backend()]);
  const line = await child.waitFor((l) => l.startsWith('OK ') || l.startsWith('E '), 30_000, 'OK or E');
  t.true(line.startsWith('OK '), `another process opens the directory once every handle is closed (got ${line})`);
  t.is(parseTagged(line, 'OK').seq, 22);
});

test('back-pressure: 16 MiB of appends in flight through a 1 MiB commit queue all complete', async (t) => {
  const dir = tmpDir(t);
  const log = await openTestLog(dir, { ringBytes: 1 << 20, segmentBytes: 1 << 20 });
  t.teardown(() => log.close());
  const record = (i) => Buffer.alloc(8192, i & 0xff).fill(`#${i}#`, 0, 8);
  const pending = [];
  for (let i = 0; i < 2000; i++) pending.push(log.append(record(i)));
  for (let i = 0; i < 20; i++) pending.push(log.appendMany([record(2000 + 2 * i), record(2001 + 2 * i)]));
  const settled = await withTimeout(Promise.allSettled(pending), 60_000, 'appends through a full commit queue to complete');
  const rejected = settled.filter((s) => s.status === 'rejected');
  t.is(rejected.length, 0, `no append failed (${rejected[0]?.reason?.code}: ${rejected[0]?.reason?.message})`);
  const records = await readAll(log);
  t.is(records.length, 2040);
  let wrong = 0;
  settled.slice(0, 2000).forEach((s, i) => {
    if (!records[s.value - 1]?.data.equals(record(i))) wrong++;
  });
  t.is(wrong, 0, 'every append is at its seq');
});

// README: "await log.close() // pending appends still resolve".
test.serial('close() while 10,000 appends are pending: every pending append resolves and is durable; later ones reject with ERR_URINGDB_CLOSED', async (t) => {
  t.timeout(60_000);
  const dir = tmpDir(t);
  const log = await openTestLog(dir);
  const n = 10_000;
  const pending = Array.from({ length: n }, (_, i) => log.append(`pending-${i}`));
  const closing = log.close();
  const lateAppend = log.append('after-close').then(() => null, (err) => err);

  const settled = await withTimeout(Promise.allSettled(pending), 30_000, 'every pending append to settle after close()');
  await withTimeout(closing, 30_000, 'close() to resolve');
  assertCode(t, await lateAppend, 'ERR_URINGDB_CLOSED', 'append called after close()');

  const fulfilled = [];
  let otherRejections = 0;
  const otherCodes = new Set();
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') fulfilled.push([i, s.value]);
    else if (s.reason?.code !== 'ERR_URINGDB_CLOSED') {
      otherRejections++;
      otherCodes.add(`${s.reason?.code}: ${s.reason?.message}`);
    }
  });
  t.is(otherRejections, 0, `pending appends reject only with ERR_URINGDB_CLOSED (got ${[...otherCodes].join(', ')})`);
  t.is(fulfilled.length, n, `appends made before close() still resolve (${n - fulfilled.length} of ${n} rejected with ERR_URINGDB_CLOSED)`);
  const seqs = fulfilled.map(([, seq]) => seq);
  t.is(new Set(seqs).size, seqs.length, 'resolved seqs are unique');

  const reopened = await openTestLog(dir);
  t.teardown(() => reopened.close());
  const records = await readAll(reopened);
  t.is(records.length, fulfilled.length, 'the log holds exactly the resolved appends');
  let wrong = 0;
  for (const [i, seq] of fulfilled) if (records[seq - 1]?.data.toString() !== `pending-${i}`) wrong++;
  t.is(wrong, 0, 'every resolved append is in the log at its seq');
});

test('a process with a pending tail and pending appends exits by itself after close()', async (t) => {
  const child = spawnChild(t, 'close-pending.mjs', [tmpDir(t), backend()]);
  const line = await child.waitFor((l) => l.startsWith('DONE ') || l.startsWith('E '), 30_000, 'DONE');
  if (line.startsWith('E ')) {
    t.fail(`the child failed: ${line}\n${child.stderr()}`);
    return;
  }
  const done = parseTagged(line, 'DONE');
  t.is(done.fulfilled + done.rejected, 2000);
  t.is(done.rejected, 0, `appends made before close() still resolve (rejections: ${done.codes})`);
  t.true(done.tailEnded, 'close() ended the pending tail');
  const exit = await withTimeout(child.closed, 15_000, 'the child process to exit by itself after close() (a leaked handle keeps it alive)').catch((err) => err);
  if (exit instanceof Error) {
    t.fail(exit.message);
    return;
  }
  t.is(exit.code, 0, `exit code (stderr: ${child.stderr()})`);
});
