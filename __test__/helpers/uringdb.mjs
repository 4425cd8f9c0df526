// Loads the built package (dist/index.js, CommonJS) and the test environment knobs shared by
// every test file and by the child-process fixtures.
//
// Environment:
//   URINGDB_TEST_BACKEND     'io_uring' | 'portable' | 'auto' (default 'auto'): the ioBackend every
//                            test opens with. The suite is run once per backend.
//   URINGDB_TEST_ITERATIONS  overrides the iteration count of the loop-shaped tests (kill loops)
//                            for longer soak runs.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Repository root (the package root), two levels above this file. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const distIndexPath = path.join(repoRoot, 'dist', 'index.js');
if (!fs.existsSync(distIndexPath)) {
  // Say how to get out of here rather than failing with a bare ERR_MODULE_NOT_FOUND.
  throw new Error(`${distIndexPath} is missing: build the package first (npm run build:debug)`);
}

const require = createRequire(import.meta.url);
const pkg = require(distIndexPath);

/** The package exports, loaded exactly as `require('uringdb')` would. */
export const { openLog, UringdbError, LogOptionsSchema } = pkg;
if (typeof openLog !== 'function') throw new Error(`dist/index.js does not export openLog (got ${typeof openLog})`);
if (typeof UringdbError !== 'function') throw new Error(`dist/index.js does not export UringdbError (got ${typeof UringdbError})`);
if (LogOptionsSchema === undefined) throw new Error('dist/index.js does not export LogOptionsSchema');

export { pkg };

const BACKENDS = ['auto', 'io_uring', 'portable'];

/** The ioBackend under test, from URINGDB_TEST_BACKEND (default 'auto'). */
export function backend() {
  const value = process.env.URINGDB_TEST_BACKEND ?? 'auto';
  if (!BACKENDS.includes(value)) {
    throw new Error(`URINGDB_TEST_BACKEND=${JSON.stringify(value)} is not one of ${BACKENDS.join(', ')}`);
  }
  return value;
}

/**
 * Iteration count for a loop-shaped test: `defaultCount` unless URINGDB_TEST_ITERATIONS is set,
 * in which case that (a positive integer) wins.
 */
export function iterations(defaultCount) {
  const raw = process.env.URINGDB_TEST_ITERATIONS;
  if (raw === undefined || raw === '') return defaultCount;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`URINGDB_TEST_ITERATIONS=${JSON.stringify(raw)} is not a positive integer`);
  }
  return n;
}

/** openLog with the backend under test (options may override it). */
export function openTestLog(dir, options = {}) {
  return openLog(dir, { ioBackend: backend(), ...options });
}

// --- The key-value database (additive: the log tests above do not use these) ---

/** The Db exports (undefined until dist/index.js carries the Db; the db tests check). */
export const { open, Db, Snapshot, DbIterator, ChainedBatch, DbOptionsSchema } = pkg;

/** open() with the backend under test (options may override it). */
export function openTestDb(dir, options = {}) {
  if (typeof open !== 'function') throw new Error(`dist/index.js does not export open (got ${typeof open}): rebuild (npm run build:debug)`);
  return open(dir, { ioBackend: backend(), ...options });
}
