// The checkable write workload of the database crash tests, shared by the writer child
// (fixtures/db-writer.mjs) and the verifier (helpers/db-verify.mjs).
//
// A run is one child process; its batches are numbered g = 0, 1, 2, ... in the order the child
// issues them (assigned synchronously at the call, so g order is the order of the calls, which
// is the order of the write-ahead log). Everything a batch writes is a function of (run, g):
//
//   b/<run>/<g>/<j>  for j < keysIn(run, g)   unique to the batch, never overwritten or deleted:
//                                               presence of these says whether batch g is in
//   s/<n>            two of 16 shared keys      overwritten by many batches ("<run>.<g>")
//   last                                        overwritten by every batch ("<run>.<g>")
//   t/<run>/<g>                                 put by every batch; batches with g % 3 == 2
//                                               delete t/<run>/<g-1> (a recent key, often still
//                                               in the memtable, sometimes flushed)
//   t/<run-1>/<g>    deleted when g % 5 == 0     a key of the previous run, long in tables
//
// so the whole expected database after a crash is: the state before the run, plus batches
// 0..M-1 of the run applied in order, for the M that the recovered b/ keys show.

import { mix32 } from './util.mjs';

const pad = (n, w) => String(n).padStart(w, '0');

/** Number of b/ keys batch (run, g) writes: 1..4. */
export const keysIn = (run, g) => 1 + (mix32(run, g) % 4);

export const batchKeyPrefix = (run) => `b/${pad(run, 4)}/`;
export const batchKey = (run, g, j) => `${batchKeyPrefix(run)}${pad(g, 7)}/${j}`;

/** Parses a b/ key: { run, g, j } or null. */
export function parseBatchKey(key) {
  const m = /^b\/(\d{4})\/(\d{7})\/(\d)$/.exec(key);
  return m ? { run: Number(m[1]), g: Number(m[2]), j: Number(m[3]) } : null;
}

/** The value of b/<run>/<g>/<j>: names itself, padded to 20..180 bytes. */
export function batchValue(run, g, j) {
  const h = mix32(mix32(run, g), j + 1);
  const head = `${run}.${g}.${j}|`;
  return head + String.fromCharCode(97 + (h % 26)).repeat(20 + (h % 160));
}

/** Whether batch (run, g) is written with sync:true in the 'mixed' mode. */
export const syncIn = (run, g) => (mix32(run, g) >>> 8) % 2 === 0;

/** The operations of batch (run, g), in order. */
export function batchOps(run, g) {
  const id = `${run}.${g}`;
  const ops = [];
  for (let j = 0, k = keysIn(run, g); j < k; j++) ops.push({ type: 'put', key: batchKey(run, g, j), value: batchValue(run, g, j) });
  const h = mix32(run ^ 0x5555, g);
  ops.push({ type: 'put', key: `s/${pad(h % 16, 2)}`, value: id });
  ops.push({ type: 'put', key: `s/${pad((h >>> 4) % 16, 2)}`, value: `${id}+` });
  ops.push({ type: 'put', key: 'last', value: id });
  ops.push({ type: 'put', key: `t/${pad(run, 4)}/${pad(g, 7)}`, value: `t${id}` });
  if (g % 3 === 2) ops.push({ type: 'del', key: `t/${pad(run, 4)}/${pad(g - 1, 7)}` });
  if (g % 5 === 0 && run > 1) ops.push({ type: 'del', key: `t/${pad(run - 1, 4)}/${pad(g, 7)}` });
  return ops;
}

/** Applies batch (run, g) to a Map model (string keys and values). */
export function applyBatch(model, run, g) {
  for (const op of batchOps(run, g)) {
    if (op.type === 'put') model.set(op.key, op.value);
    else model.delete(op.key);
  }
}
