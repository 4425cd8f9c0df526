// tail({from, signal}): existing records first, then new ones as they are committed; ends
// normally when the signal aborts or the log closes.

import test from 'ava';
import { openTestLog, iterations } from '../helpers/uringdb.mjs';
import { tmpDir, withTimeout, sleep, collect } from '../helpers/util.mjs';

const WAIT_MS = 20_000;

async function open(t, dir, options) {
  const log = await openTestLog(dir, options);
  t.teardown(() => log.close());
  return log;
}

/** Consumes log.tail(options) in the background. */
function startTail(log, options) {
  const received = [];
  const waiters = [];
  const done = (async () => {
    for await (const record of log.tail(options)) {
      received.push(record);
      for (const w of [...waiters]) w();
    }
  })();
  done.catch(() => {});
  const waitForCount = (n, what = `${n} records`) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => {
          if (received.length >= n) {
            waiters.splice(waiters.indexOf(check), 1);
            resolve();
          }
        };
        waiters.push(check);
        check();
      }),
      WAIT_MS,
      `tail to yield ${what} (has ${received.length})`,
    );
  return { received, done, waitForCount };
}

const texts = (records) => records.map((r) => r.data.toString());
const seqs = (records) => records.map((r) => r.seq);

test('tail yields existing records, then new ones as they are appended; abort ends it normally', async (t) => {
  const log = await open(t, tmpDir(t));
  await log.appendMany(['a', 'b', 'c']);
  const ac = new AbortController();
  const tail = startTail(log, { from: 1, signal: ac.signal });
  await tail.waitForCount(3);
  t.deepEqual(texts(tail.received), ['a', 'b', 'c']);

  await log.append('d');
  await tail.waitForCount(4);
  await log.appendMany(['e', 'f']);
  await Promise.all([log.append('g'), log.append('h')]);
  await tail.waitForCount(8);
  t.deepEqual(seqs(tail.received), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.deepEqual(texts(tail.received).slice(0, 6), ['a', 'b', 'c', 'd', 'e', 'f']);
  t.deepEqual(texts(tail.received).slice(6).sort(), ['g', 'h']);
  for (const r of tail.received) t.true(Buffer.isBuffer(r.data));

  ac.abort();
  await t.notThrowsAsync(withTimeout(tail.done, WAIT_MS, 'tail to end after abort'), 'abort ends the loop normally');
  t.is(tail.received.length, 8, 'nothing more after the abort');
});

test('a tail started at lastSeq+1 waits for the next append', async (t) => {
  const log = await open(t, tmpDir(t));
  await log.appendMany(['old1', 'old2']);
  const ac = new AbortController();
  const tail = startTail(log, { from: log.lastSeq + 1, signal: ac.signal });
  await sleep(200);
  t.is(tail.received.length, 0, 'nothing yielded before a new append');
  await log.append('new');
  await tail.waitForCount(1);
  t.deepEqual(seqs(tail.received), [3]);
  t.deepEqual(texts(tail.received), ['new']);
  ac.abort();
  await withTimeout(tail.done, WAIT_MS, 'tail to end after abort');
  t.pass();
});

test('a tail on an empty log waits for the first record', async (t) => {
  const log = await open(t, tmpDir(t));
  const ac = new AbortController();
  const tail = startTail(log, { from: 1, signal: ac.signal });
  await sleep(100);
  t.is(tail.received.length, 0);
  await log.append('first');
  await tail.waitForCount(1);
  t.deepEqual(seqs(tail.received), [1]);
  ac.abort();
  await withTimeout(tail.done, WAIT_MS, 'tail to end after abort');
});

test('tail from the middle starts at from', async (t) => {
  const log = await open(t, tmpDir(t));
  await log.appendMany(['1', '2', '3', '4', '5']);
  const ac = new AbortController();
  const tail = startTail(log, { from: 3, signal: ac.signal });
  await tail.waitForCount(3);
  await log.append('6');
  await tail.waitForCount(4);
  t.deepEqual(seqs(tail.received), [3, 4, 5, 6]);
  ac.abort();
  await withTimeout(tail.done, WAIT_MS, 'tail to end after abort');
});

test('abort while the tail is waiting ends it normally', async (t) => {
  const log = await open(t, tmpDir(t));
  await log.append('x');
  const ac = new AbortController();
  const tail = startTail(log, { from: 2, signal: ac.signal });
  await sleep(100);
  ac.abort();
  await t.notThrowsAsync(withTimeout(tail.done, WAIT_MS, 'tail to end after abort'));
  t.is(tail.received.length, 0);
  // The log is still usable after a tail was aborted.
  t.is(await log.append('y'), 2);
});

test('an already aborted signal ends the tail without hanging', async (t) => {
  const log = await open(t, tmpDir(t));
  await log.appendMany(['a', 'b']);
  const tail = startTail(log, { from: 1, signal: AbortSignal.abort() });
  await t.notThrowsAsync(withTimeout(tail.done, WAIT_MS, 'tail with an aborted signal to end'));
  t.true(tail.received.length <= 2, 'at most the existing records');
});

test('close() ends a waiting tail normally', async (t) => {
  const log = await openTestLog(tmpDir(t));
  await log.append('x');
  const tail = startTail(log, { from: 1 });
  await tail.waitForCount(1);
  await log.close();
  await t.notThrowsAsync(withTimeout(tail.done, WAIT_MS, 'tail to end after close()'));
  t.deepEqual(texts(tail.received), ['x']);
});

test('tail keeps up with a burst of appends: every record once, in order', async (t) => {
  const log = await open(t, tmpDir(t));
  const ac = new AbortController();
  const tail = startTail(log, { from: 1, signal: ac.signal });
  const tail2 = startTail(log, { from: 1, signal: ac.signal });
  const n = 5000;
  const pending = [];
  for (let i = 0; i < n; i += 50) {
    if (i % 500 === 0) pending.push(log.appendMany(Array.from({ length: 50 }, (_, j) => `b${i + j}`)));
    else for (let j = 0; j < 50; j++) pending.push(log.append(`b${i + j}`));
  }
  await Promise.all(pending);
  await tail.waitForCount(n);
  await tail2.waitForCount(n);
  for (const { received } of [tail, tail2]) {
    t.is(received.length, n);
    let inOrder = true;
    for (let i = 0; i < n && inOrder; i++) inOrder = received[i].seq === i + 1;
    t.true(inOrder, 'seqs 1..n in order');
    t.deepEqual(new Set(texts(received)).size, n, 'every record exactly once');
  }
  ac.abort();
  await withTimeout(Promise.all([tail.done, tail2.done]), WAIT_MS, 'tails to end after abort');
});

// One round: a tail from 1 and a loop of full read() passes run while 64 writers append
// 2000 records each to a fresh log. Returns what went wrong, if anything.
async function tailWhileAppending(t) {
  const log = await open(t, tmpDir(t), { segmentBytes: 1 << 20 });
  const payload = (w, i) => Buffer.alloc(30 + ((w * 31 + i * 17) % 200), w);
  const writers = 64;
  const perWriter = 2000;
  const total = writers * perWriter;
  const ac = new AbortController();
  const received = [];
  let tailError = null;
  const tailing = (async () => {
    try {
      for await (const r of log.tail({ from: 1, signal: ac.signal })) {
        received.push(r.seq);
        if (received.length === total) break;
      }
    } catch (err) {
      tailError = err;
    }
  })();
  let readError = null;
  let readPasses = 0;
  let stop = false;
  const reading = (async () => {
    try {
      while (!stop) {
        let next = 1;
        for await (const r of log.read({ from: 1 })) {
          if (r.seq !== next++) throw new Error(`read() yielded seq ${r.seq}, expected ${next - 1}`);
        }
        readPasses++;
      }
    } catch (err) {
      readError = err;
    }
  })();

  const acks = await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const seqs = [];
      for (let i = 0; i < perWriter; i++) seqs.push(await log.append(payload(w, i)));
      return seqs;
    }),
  );
  stop = true;
  await withTimeout(tailing, WAIT_MS, `the tail to reach ${total} records`).catch(() => {});
  ac.abort();
  await withTimeout(reading, WAIT_MS, 'the reader loop to stop');

  const problems = [];
  if (tailError) problems.push(`tail() failed after ${received.length} records: ${tailError.code} ${tailError.message}`);
  if (readError) problems.push(`read() failed: ${readError.code} ${readError.message}`);
  if (readPasses === 0) problems.push('the reader completed no pass');
  if (!tailError && received.length !== total) problems.push(`the tail saw ${received.length} of ${total} records`);
  for (let i = 0; i < received.length; i++) {
    if (received[i] !== i + 1) {
      problems.push(`the tail yielded seq ${received[i]} at position ${i}`);
      break;
    }
  }
  const records = await collect(log.read());
  let wrong = 0;
  acks.forEach((seqs, w) => seqs.forEach((seq, i) => {
    if (!records[seq - 1]?.data.equals(payload(w, i))) wrong++;
  }));
  if (wrong > 0) problems.push(`${wrong} acknowledged records are not at their seq with their bytes`);
  await log.close();
  return problems;
}

test('tail and read() running while 64 writers append see every record intact', async (t) => {
  t.timeout(180_000);
  const rounds = iterations(8);
  for (let round = 1; round <= rounds; round++) {
    const problems = await tailWhileAppending(t);
    if (problems.length > 0) {
      t.fail(`round ${round} of ${rounds}:\n  ${problems.join('\n  ')}`);
      return;
    }
  }
  t.pass();
});
