// The cancellation plumbing of src/pending.ts on its own (issue 10, item 5), with no engine:
// the ava tests of db/pending and log/pending reach these paths only when the committer's
// timing leaves a staged run's refused tail parked, so each path is pinned here as well.

import test from 'ava';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot } from '../helpers/uringdb.mjs';

const require = createRequire(import.meta.url);
const { CompletionQueue, without } = require(path.join(repoRoot, 'dist', 'src', 'pending.js'));
const { TickStager } = require(path.join(repoRoot, 'dist', 'src', 'stager.js'));
const { ParkedQueue, WriteGate } = require(path.join(repoRoot, 'dist', 'src', 'parked.js'));
const { AbortError } = require(path.join(repoRoot, 'dist', 'src', 'errors.js'));

test('TickStager.cancel removes one staged call: its bytes, length, word and token', (t) => {
  const s = new TickStager(64, new Uint32Array(8), () => {});
  const T = {};
  for (const [rec, token] of [['aa', undefined], ['bbb', T], ['c', undefined]]) {
    const at = s.reserve(rec.length);
    s.buffer().write(rec, at);
    s.commit(rec.length, rec.length, token);
  }
  t.is(s.cancel({}), -1, 'unknown token');
  t.is(s.cancel(T), 1, 'one staged call after it');
  t.is(s.cancel(T), -1, 'gone');
  const run = s.take();
  t.is(run.data.toString(), 'aac');
  t.deepEqual([...run.lens], [2, 1]);
  t.deepEqual([...run.words], [2, 1]);
  t.false(run.tokens?.includes(T) ?? false, 'its token is gone');
});

test('ParkedQueue.cancel removes a write from inside a parked run and a single parked write', (t) => {
  const q = new CompletionQueue();
  const p = new ParkedQueue(q);
  const T = {};
  const U = {};
  const run = { kind: 'run', data: Buffer.from('xxyyyz'), lens: Uint32Array.of(2, 3, 1), tokens: [undefined, T, undefined] };
  p.push(run, 3);
  p.push({ kind: 'one', token: U }, 1);
  const size = (op) => (op.kind === 'run' ? op.lens.length : 1);
  const find = (op, tok) => (op.kind === 'run' ? (op.tokens?.indexOf(tok) ?? -1) : op.token === tok ? 0 : -1);
  const remove = (op, j) => {
    let off = 0;
    for (let i = 0; i < j; i++) off += op.lens[i];
    op.data = Buffer.concat([op.data.subarray(0, off), op.data.subarray(off + op.lens[j])]);
    op.lens = without(op.lens, j);
    op.tokens.splice(j, 1);
  };
  t.is(p.cancel(T, size, find, remove), 2, 'one after it in the run, one parked after the run');
  t.is(run.data.toString(), 'xxz');
  t.deepEqual([...run.lens], [2, 1]);
  t.is(p.cancel(U, size, find, remove), 0);
  t.is(p.cancel(U, size, find, remove), -1);
  t.true(p.any);
});

test('CompletionQueue.cancel rejects exactly that entry and frees its bytes; the rest settle in order', async (t) => {
  const q = new CompletionQueue();
  const ps = [10, 20, 30, 40].map((b) => q.enqueue(0, b));
  t.is(q.pendingBytes, 100);
  q.cancel(1, new AbortError('r'));
  t.is(q.pendingBytes, 70);
  q.resolve(Float64Array.of(7, 8, 9));
  const out = await Promise.allSettled(ps);
  t.deepEqual(out.map((o) => o.value ?? o.reason.code), [7, 8, 'ABORT_ERR', 9]);
  t.is(q.pendingBytes, 0);
});

test('WriteGate: waits past the bound, admits in order as bytes free, one oversized write alone', async (t) => {
  const q = new CompletionQueue();
  const g = new WriteGate(q, 100, () => -1);
  const order = [];
  const w = (len) => g.enter(len, undefined, () => (order.push(len), q.enqueue(0, len)));
  const ps = [w(60), w(40), w(1), w(500), w(10)];
  t.deepEqual(order, [60, 40], 'the third would exceed the bound');
  t.is(g.waiting, 3);
  q.resolve(Float64Array.of(1));
  t.deepEqual(order, [60, 40, 1], 'room for 1, not for 500: 10 waits behind it (order)');
  q.resolve(Float64Array.of(2, 3));
  t.deepEqual(order, [60, 40, 1, 500], 'the oversized write enters alone');
  q.resolve(Float64Array.of(4));
  t.deepEqual(order, [60, 40, 1, 500, 10]);
  q.resolve(Float64Array.of(5));
  t.deepEqual(await Promise.all(ps), [1, 2, 3, 4, 5]);
});
