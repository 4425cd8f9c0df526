// Helpers of the uringdb/pino tests: the package entry loaded as users load it, the real
// pino, and a destination on the backend under test.

import path from 'node:path';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { repoRoot, backend } from './uringdb.mjs';

const require = createRequire(path.join(repoRoot, 'package.json'));

/** `require('uringdb/pino')`, resolved through the package's exports. */
export const uringPino = require('uringdb/pino');
/** The real pino (a devDependency). */
export const pino = require('pino');
/** The `uringdb` bin as package.json declares it. */
export const binPath = path.join(repoRoot, require('./package.json').bin.uringdb);

/** A destination with the backend under test; resolves once it is ready. */
export async function openDest(dir, options = {}) {
  const d = uringPino.destination({ dir, ioBackend: backend(), ...options });
  await once(d, 'ready');
  return d;
}

/** Ends a destination and waits for `close`. */
export async function endDest(d) {
  const closed = once(d, 'close');
  d.end();
  await closed;
}

/** Every parsed line of the store. */
export async function readAllLogs(dir, options = {}) {
  const out = [];
  for await (const line of uringPino.readLogs(dir, options)) out.push(line);
  return out;
}

/** Every line's text, as stored. */
export async function readAllText(dir, options = {}) {
  const out = [];
  for await (const line of uringPino.readLogLines(dir, options)) out.push(line);
  return out;
}
