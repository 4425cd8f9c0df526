// Small test utilities: temp dirs, bounded waits, collecting async iterators.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh directory under os.tmpdir(), removed (recursively) when the test ends. */
export function tmpDir(t, prefix = 'uringdb-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Resolves/rejects like `promise`, but rejects with `message` if it has not settled within `ms`.
 * The timer is unref'd and cleared, so it never keeps the process alive by itself.
 */
export function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Collects an async iterable into an array, failing after `limit` items (a runaway guard). */
export async function collect(iterable, limit = 10_000_000) {
  const out = [];
  for await (const item of iterable) {
    out.push(item);
    if (out.length > limit) throw new Error(`iterator yielded more than ${limit} items`);
  }
  return out;
}

/** All records of `log` via read(range), as { seq, data } with data a Buffer. */
export function readAll(log, range = {}) {
  return collect(log.read(range));
}

/** Asserts `err` is a uringdb error with the given code; returns it. */
export function assertCode(t, err, code, what = '') {
  t.truthy(err, `${what}: expected an error with code ${code}, got nothing`);
  t.is(err?.code, code, `${what}: expected code ${code}, got ${err?.code} (${err?.message})`);
  return err;
}

/** Integers in [lo, hi] from Math.random (the test only needs variety, not reproducibility). */
export function randomInt(lo, hi) {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

/** Names of the files in `dir` (non-recursive), sorted. */
export function listFiles(dir) {
  return fs.readdirSync(dir).sort();
}

/** A cheap 32-bit integer hash (murmur3 finalizer over a combined word): the workloads' deterministic "random" numbers. */
export function mix32(a, b) {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
