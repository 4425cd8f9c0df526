// Helpers of the key-value database tests: small-footprint options, a sorted in-memory model
// to compare iterators against, and a check for files left open (error capture: expect.mjs).

import fs from 'node:fs';
import path from 'node:path';
import { openTestDb } from './uringdb.mjs';

export const MiB = 1 << 20;

/** Read and iterator options for utf8 strings. */
export const utf8 = { encoding: 'utf8' };

/**
 * Options that keep a test database small: log segments of at most 1 MiB (instead of growing
 * to 64 MiB under load) and a 1 MiB commit ring (writes up to 256 KiB).
 */
export const SMALL = Object.freeze({ segmentBytes: MiB, ringBytes: MiB });

/**
 * Options that make flushes and compactions happen with little data: 64 KiB memtables,
 * compaction at 2 level-0 tables, 64 KiB output tables, a 1 MiB level 1 and a small cache.
 */
export const CHURN = Object.freeze({
  ...SMALL,
  memtableBytes: 64 * 1024,
  l0CompactionTrigger: 2,
  targetFileBytes: 64 * 1024,
  levelBaseBytes: MiB,
  blockBytes: 1024,
  cacheBytes: 256 * 1024,
});

/** openTestDb with SMALL options (and `options` on top). */
export function openSmallDb(dir, options = {}) {
  return openTestDb(dir, { ...SMALL, ...options });
}

const toBuf = (k) => (typeof k === 'string' ? Buffer.from(k, 'utf8') : Buffer.from(k.buffer, k.byteOffset, k.byteLength));

/** xorshift32: reproducible variety (the seed is logged by the tests that use it). */
export function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/**
 * Short random binary keys drawn from `rand` (many shared prefixes, zero and 0xff bytes) and
 * some longer ones: the key shapes the iterator model tests range over.
 */
export function randomKeyOf(rand) {
  return () => {
    const len = rand() % 4 === 0 ? rand() % 40 : 1 + (rand() % 5);
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = rand() % 3 === 0 ? [0, 0xff, 0x61][rand() % 3] : rand() & 0xff;
    return b;
  };
}

/**
 * A sorted model of a database's contents: keys ordered with Buffer.compare, as the engine
 * orders them (bytewise).
 */
export class Model {
  constructor() {
    /** hex(key) -> [key Buffer, value Buffer] */
    this.map = new Map();
  }
  put(k, v) {
    const kb = Buffer.from(toBuf(k));
    this.map.set(kb.toString('hex'), [kb, Buffer.from(toBuf(v))]);
  }
  del(k) {
    this.map.delete(toBuf(k).toString('hex'));
  }
  get(k) {
    return this.map.get(toBuf(k).toString('hex'))?.[1];
  }
  clone() {
    const m = new Model();
    for (const [h, e] of this.map) m.map.set(h, e);
    return m;
  }
  /** Entries in key order. */
  sorted() {
    return [...this.map.values()].sort((a, b) => Buffer.compare(a[0], b[0]));
  }
  /** What an iterator (or clear) with `options` covers, in its order, limit applied. */
  range(options = {}) {
    // gte/lte win over gt/lt when both are given (as the façade documents).
    const inRange = ([k]) =>
      (options.gte !== undefined ? Buffer.compare(k, toBuf(options.gte)) >= 0 : options.gt === undefined || Buffer.compare(k, toBuf(options.gt)) > 0) &&
      (options.lte !== undefined ? Buffer.compare(k, toBuf(options.lte)) <= 0 : options.lt === undefined || Buffer.compare(k, toBuf(options.lt)) < 0);
    let out = this.sorted().filter(inRange);
    if (options.reverse === true) out.reverse();
    const limit = options.limit;
    if (limit !== undefined && limit !== -1 && limit !== Infinity) out = out.slice(0, limit);
    return out;
  }
}

/** Short printable form of a key for messages. */
export function show(k) {
  if (k === undefined) return 'undefined';
  const b = toBuf(k);
  const printable = b.every((c) => c >= 0x20 && c < 0x7f);
  const s = printable ? JSON.stringify(b.toString('latin1')) : `0x${b.toString('hex')}`;
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Compares iterator output with model entries; returns a description of the first difference or null. */
export function diffEntries(actual, expected) {
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a === undefined) return `#${i}: missing, expected ${show(e[0])} (got ${actual.length} entries, expected ${expected.length})`;
    if (e === undefined) return `#${i}: extra entry ${show(a[0])} (got ${actual.length} entries, expected ${expected.length})`;
    if (!Buffer.from(a[0]).equals(e[0])) return `#${i}: key ${show(a[0])}, expected ${show(e[0])}`;
    if (a[1] !== undefined && !Buffer.from(a[1]).equals(e[1])) return `#${i} key ${show(a[0])}: value differs (${a[1].length} vs ${e[1].length} bytes)`;
  }
  return null;
}

/** Every entry of `db` as [key Buffer, value Buffer], in key order. */
export async function scanAll(db, options = {}) {
  const out = [];
  const it = db.iterator(options);
  try {
    for (;;) {
      const chunk = await it.nextv(1000);
      if (chunk.length === 0) break;
      for (const e of chunk) out.push(e);
    }
  } finally {
    await it.close();
  }
  return out;
}

/** Files under `dir` that this process has open (from /proc/self/fd). */
export function openFilesUnder(dir) {
  const root = path.resolve(dir) + path.sep;
  const out = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (the readdir's own fd, for one)
    }
    if (target.startsWith(root)) out.push(target);
  }
  return out;
}

/** Names of the table files in a database directory. */
export function tableFiles(dir) {
  return fs.readdirSync(dir).filter((f) => /^\d+\.sst$/.test(f)).sort();
}

/** Total table files the database's levels hold (from stats()). */
export function levelFiles(stats) {
  return stats.levels.reduce((n, l) => n + l.files, 0);
}

/** Key i of the simple numbered data set (corruption and disk-full tests): "k" + 5 digits. */
export const seqKey = (i) => `k${String(i).padStart(5, '0')}`;

/** Value of seqKey(i): names its key, 8..104 bytes. */
export const seqValue = (i) => `value-${i}-${'v'.repeat(i % 97)}`;

/** A 4 KiB value for key i (disk-full tests): its index, then pseudo-random (incompressible) bytes seeded by it. */
export function bigValue(i) {
  const b = Buffer.alloc(4000);
  let s = (i * 2654435761) >>> 0 || 1;
  for (let n = 0; n < b.length; n += 4) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    b.writeUInt32LE(s, n);
  }
  return Buffer.concat([Buffer.from(`${i}:`), b]);
}
