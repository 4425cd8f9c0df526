// Verification of a key-value database recovered after its writer child (fixtures/db-writer.mjs)
// died mid-write, and the kill loop shared by the database durability and fallback tests.
//
// What a recovery must show (helpers/db-workload.mjs describes the workload):
//   - whole batches only: a batch's b/ keys are all present or all absent;
//   - a prefix of the run: the batches present are exactly 0..M-1 (every write is one record of
//     one write-ahead log, in call order, so recovery can only cut a suffix);
//   - every batch acknowledged with sync:true is present (g < M);
//   - beyond the acknowledgements, at most <lanes> batches (those in flight at the kill);
//   - the whole database equals the state verified before the run plus batches 0..M-1 applied
//     in order: no lost overwrite, no resurrected delete, nothing else;
//   - the tables on disk are exactly those the levels reference (orphans from a crash during
//     flush or compaction were removed).

import { openTestDb, backend } from './uringdb.mjs';
import { spawnChild, parseTagged } from './child.mjs';
import { randomInt, sleep } from './util.mjs';
import { CHURN, tableFiles, levelFiles } from './db.mjs';
import { applyBatch, batchOps, parseBatchKey, keysIn, batchKeyPrefix } from './db-workload.mjs';

const MAX_PROBLEMS = 20;

/** Options of the verifier's own opens: no background work of its own (so the files hold still). */
export const VERIFY_OPTIONS = Object.freeze({
  segmentBytes: CHURN.segmentBytes,
  ringBytes: CHURN.ringBytes,
  memtableBytes: 64 << 20,
  l0CompactionTrigger: 1000,
  l0SlowdownTrigger: 1000,
  l0StopTrigger: 1000,
});

/** Parses the writer's stdout. */
export function parseWriterOutput(lines) {
  const acks = new Map(); // g -> sync
  const readerProblems = [];
  let ready = null;
  let error = null;
  let opening = false;
  let flushes = 0;
  let compactions = 0;
  for (const line of lines) {
    if (line.startsWith('A ')) {
      const [g, sync] = line.slice(2).split(' ').map(Number);
      if (Number.isInteger(g) && (sync === 0 || sync === 1)) acks.set(g, sync === 1);
    } else if (line === 'OPENING') {
      opening = true;
    } else if (line.startsWith('READY ')) {
      ready = parseTagged(line, 'READY');
    } else if (line.startsWith('S ')) {
      const s = parseTagged(line, 'S');
      flushes = Math.max(flushes, s.flushes);
      compactions = Math.max(compactions, s.compactions);
    } else if (line.startsWith('X ')) {
      readerProblems.push(parseTagged(line, 'X'));
    } else if (line.startsWith('E ')) {
      error = parseTagged(line, 'E');
    }
  }
  return { acks, readerProblems, ready, error, opening, flushes, compactions };
}

/** Keeps the verified state of the database between iterations and checks each recovery. */
export class DbKillVerifier {
  constructor(dir) {
    this.dir = dir;
    /** The database's contents as verified after the previous iteration (string -> string). */
    this.model = new Map();
  }

  /**
   * Reopens the database in this process and checks it against the run's acknowledgements.
   * Returns { problems, present, required, recovery }.
   */
  async verify({ run, mode, acks, lanes, readerProblems = [] }) {
    const problems = [];
    const problem = (text) => {
      if (problems.length < MAX_PROBLEMS) problems.push(text);
    };
    for (const p of readerProblems) problem(`a read in the child while writing: ${JSON.stringify(p)}`);

    let db;
    try {
      db = await openTestDb(this.dir, VERIFY_OPTIONS);
    } catch (err) {
      return { problems: [...problems, `reopen failed: ${err?.code} ${err?.message}`], present: 0, required: 0 };
    }
    const recovery = db.recovery;
    let actual;
    try {
      const onDisk = tableFiles(this.dir).length;
      const inLevels = levelFiles(db.stats());
      if (onDisk !== inLevels) problem(`${onDisk} table files on disk but the levels hold ${inLevels} (orphaned or missing tables)`);
      actual = new Map();
      const it = db.iterator({ keyEncoding: 'utf8', valueEncoding: 'utf8' });
      for (;;) {
        const chunk = await it.nextv(4096);
        if (chunk.length === 0) break;
        for (const [k, v] of chunk) actual.set(k, v);
      }
      await it.close();
    } catch (err) {
      await db.close().catch(() => {});
      return { problems: [...problems, `scan after reopen failed: ${err?.code} ${err?.message}`], present: 0, required: 0, recovery };
    }
    await db.close();

    // Which batches of this run are in, and are they whole?
    const counts = new Map();
    const prefix = batchKeyPrefix(run);
    for (const k of actual.keys()) {
      if (!k.startsWith(prefix)) continue;
      const p = parseBatchKey(k);
      if (p === null) {
        problem(`unexpected key ${JSON.stringify(k)}`);
        continue;
      }
      counts.set(p.g, (counts.get(p.g) ?? 0) + 1);
    }
    for (const [g, n] of counts) {
      if (n !== keysIn(run, g)) problem(`batch ${run}.${g} is half-applied: ${n} of its ${keysIn(run, g)} keys present`);
    }
    const present = counts.size;
    const gs = [...counts.keys()].sort((a, b) => a - b);
    if (present > 0 && gs.at(-1) !== present - 1) {
      const missing = [];
      for (let g = 0, i = 0; g <= gs.at(-1) && missing.length < 10; g++) {
        if (gs[i] === g) i++;
        else missing.push(g);
      }
      problem(`not a prefix of the issued batches: batch ${gs.at(-1)} is present but batches ${missing.join(', ')}... are not`);
    }

    // Acknowledgements: the durable ones must be in; at most `lanes` batches beyond the acks.
    let required = 0;
    const lost = [];
    for (const [g, sync] of acks) {
      const isRequired = mode !== 'mixed' || sync;
      if (!isRequired) continue;
      required++;
      if (!counts.has(g)) lost.push(g);
    }
    if (lost.length > 0) problem(`${lost.length} acknowledged durable batches are missing, e.g. ${lost.slice(0, 10).join(', ')} (present: 0..${present - 1})`);
    let unacked = 0;
    for (const g of counts.keys()) if (!acks.has(g)) unacked++;
    if (unacked > lanes) problem(`${unacked} batches present that were never acknowledged, more than the ${lanes} that can be in flight`);

    // The whole state: the previous state plus batches 0..present-1 of this run.
    const expected = new Map(this.model);
    for (let g = 0; g < present; g++) applyBatch(expected, run, g);
    let diffs = 0;
    for (const [k, v] of expected) {
      const a = actual.get(k);
      if (a !== v) {
        if (diffs++ < 8) problem(`key ${k}: expected ${JSON.stringify(v.slice(0, 40))}, found ${a === undefined ? 'nothing' : JSON.stringify(a.slice(0, 40))}`);
      }
    }
    for (const k of actual.keys()) {
      if (!expected.has(k) && diffs++ < 8) problem(`key ${k} is present but should not be (deleted, or never written)`);
    }
    if (diffs > 8) problem(`... ${diffs} keys differ from the expected state in all`);
    if (problems.length === 0) this.model = expected;
    return { problems, present, required, recovery };
  }

  /**
   * After a loop: opens with the churn settings, writes `count` more batches (a run of its
   * own), compacts everything and checks that writes, flushes and compactions still work and
   * that the result verifies. Returns { problems, stats }.
   */
  async writeAndCompact(t, run, count = 200) {
    const db = await openTestDb(this.dir, CHURN);
    const acks = new Map();
    try {
      const before = db.stats();
      for (let g = 0; g < count; g++) {
        await db.batch(batchOps(run, g));
        acks.set(g, true);
      }
      await db.flush();
      await db.compactRange();
      const after = db.stats();
      t.true(after.flushes > before.flushes, `the reopened database flushes (${after.flushes} flushes)`);
      t.true(after.compactions > before.compactions, `the reopened database compacts (${after.compactions} compactions)`);
      t.is(after.levels[0].files, 0, 'compactRange() emptied level 0');
      t.is(after.backgroundError, null, 'no background error');
    } finally {
      await db.close();
    }
    return this.verify({ run, mode: 'sync', acks, lanes: 0 });
  }
}

/**
 * The kill loop: `count` times, start the writer on `dir`, end it at a random moment (SIGKILL),
 * or let a failpoint abort it, reopen in-process and verify. With `earlyEvery`, every such
 * iteration kills the child while it opens (recovers). Fails the test at the first bad
 * iteration (t.fail with the problems).
 *
 * failpoint: a name from the engine's crash points; the child gets URINGDB_FAILPOINT=<name>:<n>
 * (n from 1 to 6) and must die by SIGABRT having reported it; if it has not within
 * `failpointWaitMs`, it is killed and the iteration counts as not fired.
 *
 * Returns { failed, acks, required, present, flushes, compactions, fired, backends, orphansRemoved, verifier }.
 */
export async function runDbKillLoop(t, { dir, count, mode = 'sync', env = {}, envFor, wrapper = [], lanes = 16, maxBatches = 3000, childBackend = backend(), earlyEvery = 5, failpoint, failpointWaitMs = 8000, minKillMs = 40, maxKillMs = 400 }) {
  const verifier = new DbKillVerifier(dir);
  const result = { failed: false, acks: 0, required: 0, present: 0, flushes: 0, compactions: 0, fired: 0, backends: new Set(), orphansRemoved: 0, verifier };
  for (let i = 0; i < count; i++) {
    const run = i + 1;
    const early = failpoint === undefined && earlyEvery > 0 && i % earlyEvery === earlyEvery - 1;
    const childEnv = { ...env, ...(envFor ? envFor(i) : {}) };
    if (failpoint !== undefined) childEnv.URINGDB_FAILPOINT = `${failpoint}:${randomInt(1, 6)}`;
    const child = spawnChild(t, 'db-writer.mjs', [dir, childBackend, run, mode, lanes, maxBatches], { env: childEnv, wrapper });
    let how;
    if (failpoint !== undefined) {
      const timer = setTimeout(() => child.kill('SIGKILL'), failpointWaitMs);
      await child.closed;
      clearTimeout(timer);
      how = `failpoint ${childEnv.URINGDB_FAILPOINT}`;
    } else if (early) {
      await child.waitFor((l) => l === 'OPENING', 30_000, 'OPENING');
      await sleep(randomInt(0, 60));
      how = 'killed while opening';
    } else {
      await child.waitFor((l) => l.startsWith('READY '), 30_000, 'READY');
      await sleep(randomInt(minKillMs, maxKillMs));
      how = 'killed while writing';
    }
    child.kill('SIGKILL');
    const { code, signal } = await child.closed;
    const out = parseWriterOutput(child.lines);
    const context = `iteration ${run} (${mode}, ${how}, env ${JSON.stringify(childEnv)}, ${out.acks.size} acks)`;
    if (out.error) {
      t.fail(`${context}: the writer failed: ${out.error.code} ${out.error.message}\nstderr:\n${child.stderr()}`);
      result.failed = true;
      return result;
    }
    if (failpoint !== undefined) {
      const reached = child.stderr().includes(`failpoint ${failpoint} reached`);
      if (signal === 'SIGABRT' && reached) result.fired++;
      else if (signal !== 'SIGKILL') {
        t.fail(`${context}: the writer ended with code ${code} signal ${signal} (failpoint reached: ${reached})\nstderr:\n${child.stderr()}`);
        result.failed = true;
        return result;
      }
    } else if (signal !== 'SIGKILL') {
      t.fail(`${context}: the writer exited by itself (code ${code}, signal ${signal}) before the kill\nstderr:\n${child.stderr()}`);
      result.failed = true;
      return result;
    }
    if (out.ready) result.backends.add(out.ready.backend);
    const v = await verifier.verify({ run, mode, acks: out.acks, lanes, readerProblems: out.readerProblems });
    if (v.problems.length > 0) {
      t.fail(`${context}: the recovered database is wrong:\n  ${v.problems.join('\n  ')}\nchild stderr:\n${child.stderr().slice(-2000)}`);
      result.failed = true;
      return result;
    }
    result.acks += out.acks.size;
    result.required += v.required;
    result.present += v.present;
    result.flushes += out.flushes;
    result.compactions += out.compactions;
    result.orphansRemoved += v.recovery?.orphansRemoved ?? 0;
  }
  return result;
}
