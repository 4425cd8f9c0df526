// Runs abstract-level's compliance suite (node_modules/abstract-level/test) on UringLevel under
// tape, printing TAP. Run as its own process (tape owns the process: it reports at exit and
// sets the exit code), by __test__/level/level.test.mjs, which asserts on the TAP output:
//
//   node __test__/helpers/level-suite.mjs [run-dir]
//
// Every database the suite's factory makes gets a fresh directory (mkdtemp) in run-dir
// (default: a new one in os.tmpdir()). When the suite finishes, the databases still open are
// closed (the suite leaves the roots of its sublevel tests open) and run-dir is removed; the
// ava test also removes it, in case this process dies first. The ioBackend is
// URINGDB_TEST_BACKEND's, as for every other test. The adapter is dist/level.js.

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
const databases = [];
const emitters = [];

const MiB = 1 << 20;

/**
 * The façade options of every suite database: the backend under test, and the smallest log
 * segment, commit ring and cache, because the suite makes over a thousand databases and
 * leaves hundreds open until the end (each would otherwise preallocate a 64 MiB segment).
 */
const suiteDbOptions = { ioBackend: backend(), segmentBytes: 1 * MiB, ringBytes: 1 * MiB, cacheBytes: 1 * MiB };

/**
 * Adds suiteDbOptions at open without adding them to the options abstract-level sees
 * (postopen hooks are handed those, and the suite compares them).
 */
class TestLevel extends UringLevel {
  _open(options) {
    return super._open({ ...suiteDbOptions, ...options });
  }

  // Tracked to silence their listeners at the end, like the roots' (the suite's second pass
  // runs every test on a sublevel of a fresh root).
  _sublevel(name, options) {
    const sublevel = super._sublevel(name, options);
    emitters.push(sublevel);
    return sublevel;
  }
}

suite({
  test: tape,
  factory(options) {
    const db = new TestLevel(fs.mkdtempSync(path.join(runDir, 'db-')), options);
    databases.push(db);
    emitters.push(db);
    return db;
  },
});

tape.onFinish(async () => {
  // Some tests leave listeners that react to 'closed' (by reopening): silence them first.
  for (const emitter of emitters) emitter.removeAllListeners();
  const closed = await Promise.allSettled(databases.map((db) => db.close()));
  fs.rmSync(runDir, { recursive: true, force: true });
  // A test ('errors from both postopen hook function and resource lock the db') leaves its
  // database (or, in the sublevel pass, the root's sublevel) locked on purpose:
  // abstract-level refuses to close it, and the process exit does.
  const locked = (err) => err?.code === 'LEVEL_STATUS_LOCKED' || err?.cause?.code === 'LEVEL_STATUS_LOCKED';
  const failed = closed.filter((r) => r.status === 'rejected' && !locked(r.reason));
  if (failed.length > 0) {
    // Not a TAP line: the ava side fails on a non-zero exit.
    for (const r of failed) console.error('level-suite: a database failed to close:', r.reason);
    process.exitCode = 1;
  }
});
