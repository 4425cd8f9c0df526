// Runs abstract-level's compliance suite (node_modules/abstract-level/test) on UringLevel under
// tape, with the façade's DEFAULT options (only the ioBackend is set), printing TAP. Run as its
// own process (tape owns the process: it reports at exit and sets the exit code), by
// __test__/level/level.test.mjs, which asserts on the TAP output and on the stats line:
//
//   node __test__/helpers/level-suite.mjs [run-dir]
//
// Every database the suite's factory makes gets a fresh directory (mkdtemp) in run-dir
// (default: a new one in os.tmpdir()). The ioBackend is URINGDB_TEST_BACKEND's, as for every
// other test. The adapter is dist/level.js.
//
// Databases the suite leaves open. The suite's second pass runs every test on a sublevel of a
// fresh root (`factory().sublevel('test')`), and closes only the sublevel: left alone, ~480
// roots stay open until the process ends (each with its engine threads, files and memory:
// issue 10's "it leaves hundreds of databases open"). So at the end of every tape test, a
// root made for the second pass is closed once its sublevel is closed (a sublevel set up for
// several tests stays open until its teardown test closes it). The few roots the first pass
// leaves open (tests that reopen on 'closed') are closed when the suite finishes, like the
// rest; run-dir is removed then (the ava test also removes it, in case this process dies).
//
// Disk. Every database's allocated bytes (the sum of st_blocks * 512 over its files) are
// measured just before each close (while it is open, with whatever it preallocated) and once
// more when the suite has finished and everything is closed; the largest is its footprint.
//
// Stats. When the suite finishes, one line is printed on stdout (not TAP; the parser ignores
// it): `uringdb-level-suite-stats {json}`, with
//   databases        databases the factory made
//   maxOpen          most roots open (or opening) at the end of a test
//   maxDbBytes, maxDbPath   the largest footprint of one database, and whose
//   totalBytes       the sum of every database's footprint
//   leftOpen         roots still open after the final close (the suite locks one on purpose)
//   threadsAtFinish, threadsAfterClose, fdsAfterClose, peakRssBytes   of this process

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { backend } from './uringdb.mjs';
import { UringLevel } from './level.mjs';

const require = createRequire(import.meta.url);
const tape = require('tape');
const suite = require('abstract-level/test');

const runDir = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'uringdb-level-suite-'));
if (!fs.statSync(runDir).isDirectory()) throw new Error(`${runDir} is not a directory`);

/** Every root the factory made, in order. */
const databases = [];
/** Roots and sublevels, to silence their listeners at the end. */
const emitters = [];
/** Second-pass roots not closed yet, each with the sublevel the suite made of it. */
const secondPassRoots = [];
/** Closes started by the sweep (settled and checked when the suite finishes). */
const sweepCloses = [];
/** Footprint (allocated bytes) of each database directory, the largest seen. */
const footprints = new Map();
let maxOpen = 0;

/** Allocated bytes of the files under `dir` (st_blocks are 512-byte units on Linux). */
function allocatedBytes(dir) {
  let total = 0;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (err.code === 'ENOENT') return 0;
    throw err;
  }
  for (const entry of entries) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += allocatedBytes(p);
    else {
      try {
        total += fs.lstatSync(p).blocks * 512;
      } catch (err) {
        if (err.code !== 'ENOENT') throw err; // a file the engine removed meanwhile
      }
    }
  }
  return total;
}

/** Records the footprint of the database in `dir` now, keeping the largest. */
function measure(dir) {
  const bytes = allocatedBytes(dir);
  if (bytes > (footprints.get(dir) ?? 0)) footprints.set(dir, bytes);
}

/**
 * The façade's defaults, but for the backend under test. The options abstract-level sees stay
 * the suite's own (postopen hooks are handed those, and the suite compares them).
 */
class TestLevel extends UringLevel {
  _open(options) {
    return super._open({ ioBackend: backend(), ...options });
  }

  async _close() {
    measure(this.location);
    await super._close();
  }

  // Tracked to silence their listeners at the end, like the roots', and to know a
  // second-pass root's sublevel.
  _sublevel(name, options) {
    const sublevel = super._sublevel(name, options);
    emitters.push(sublevel);
    const entry = secondPassRoots.find((e) => e.root === this);
    if (entry !== undefined && entry.sublevel === undefined) entry.sublevel = sublevel;
    return sublevel;
  }
}

/**
 * Whether the factory was called by the suite's second pass: its factory is
 * `factory().sublevel('test', opts)`, in abstract-level/test/index.js, while the first pass
 * calls the factory from the test files.
 */
function calledBySecondPass() {
  const frames = new Error().stack.split('\n').slice(2, 5).join('\n');
  return /abstract-level[\\/]test[\\/]index\.js/.test(frames);
}

/** Closes the second-pass roots whose sublevel is closed; counts the roots still open. */
function sweep() {
  for (let i = secondPassRoots.length - 1; i >= 0; i--) {
    const { root, sublevel } = secondPassRoots[i];
    if (sublevel !== undefined && sublevel.status !== 'closed') continue;
    secondPassRoots.splice(i, 1);
    const closing = root.close();
    closing.catch(() => {}); // judged when the suite finishes, with the others
    sweepCloses.push(closing);
  }
  const open = databases.filter((db) => db.status === 'open' || db.status === 'opening').length;
  if (open > maxOpen) maxOpen = open;
}

/** tape, with the sweep run as each test ends. */
function test(...args) {
  const t = tape(...args);
  t.once('end', sweep);
  return t;
}
Object.assign(test, tape);

suite({
  test,
  factory(options) {
    const db = new TestLevel(fs.mkdtempSync(path.join(runDir, 'db-')), options);
    databases.push(db);
    emitters.push(db);
    if (calledBySecondPass()) secondPassRoots.push({ root: db, sublevel: undefined });
    return db;
  },
});

/** A line of /proc/self/status, as a number (kB for memory). */
function procStatus(field) {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m === null ? undefined : Number(m[1]);
}

tape.onFinish(async () => {
  const threadsAtFinish = procStatus('Threads');
  // Some tests leave listeners that react to 'closed' (by reopening): silence them first.
  for (const emitter of emitters) emitter.removeAllListeners();
  const closed = await Promise.allSettled([...sweepCloses, ...databases.map((db) => db.close())]);
  // A test ('errors from both postopen hook function and resource lock the db') leaves its
  // database (or, in the sublevel pass, the root's sublevel) locked on purpose:
  // abstract-level refuses to close it, and the process exit does.
  const locked = (err) => err?.code === 'LEVEL_STATUS_LOCKED' || err?.cause?.code === 'LEVEL_STATUS_LOCKED';
  const failed = closed.filter((r) => r.status === 'rejected' && !locked(r.reason));

  for (const db of databases) measure(db.location);
  let maxDbBytes = 0;
  let maxDbPath = '';
  let totalBytes = 0;
  for (const [dir, bytes] of footprints) {
    totalBytes += bytes;
    if (bytes > maxDbBytes) [maxDbBytes, maxDbPath] = [bytes, path.basename(dir)];
  }
  const stats = {
    databases: databases.length,
    maxOpen,
    maxDbBytes,
    maxDbPath,
    totalBytes,
    leftOpen: databases.filter((db) => db.status !== 'closed').length,
    threadsAtFinish,
    threadsAfterClose: procStatus('Threads'),
    fdsAfterClose: fs.readdirSync('/proc/self/fd').length,
    peakRssBytes: procStatus('VmHWM') * 1024,
  };
  console.log(`uringdb-level-suite-stats ${JSON.stringify(stats)}`);
  fs.rmSync(runDir, { recursive: true, force: true });
  if (failed.length > 0) {
    // Not a TAP line: the ava side fails on a non-zero exit.
    for (const r of failed) console.error('level-suite: a database failed to close:', r.reason);
    process.exitCode = 1;
  }
});
