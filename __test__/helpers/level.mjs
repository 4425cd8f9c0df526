// Loads the built adapter (dist/level.js, CommonJS, exported as `uringdb/level`) for the
// level tests, and opens databases with the backend under test (URINGDB_TEST_BACKEND).

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot, backend } from './uringdb.mjs';
import { tmpDir } from './util.mjs';

const levelPath = path.join(repoRoot, 'dist', 'level.js');
if (!fs.existsSync(levelPath)) {
  throw new Error(`${levelPath} is missing: build the package first (npm run build:debug)`);
}

const require = createRequire(import.meta.url);

/** The adapter, loaded exactly as `require('uringdb/level')` would. */
export const { UringLevel } = require(levelPath);
if (typeof UringLevel !== 'function') throw new Error(`dist/level.js does not export UringLevel (got ${typeof UringLevel})`);

/**
 * A UringLevel in `dir` (default: a fresh temp dir removed at teardown), opened with the
 * backend under test and closed at teardown (close is idempotent). Options override.
 */
export async function openTestLevel(t, options = {}, dir = tmpDir(t, 'uringdb-level-')) {
  const db = new UringLevel(dir, { ioBackend: backend(), ...options });
  t.teardown(() => db.close());
  await db.open();
  return db;
}
