// The database's side of the crash tests (helpers/kill-loop.mjs is the shared core): its child
// (fixtures/db-writer.mjs), its acknowledgement lines, and what a database recovered after
// the writer died mid-write must show (used by the durability, failpoint and fallback tests).
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

import { openTestDb } from './uringdb.mjs';
import { CrashVerifier, runKillLoop } from './kill-loop.mjs';
import { CHURN, tableFiles, levelFiles } from './db.mjs';
import { applyBatch, batchOps, parseBatchKey, keysIn, batchKeyPrefix } from './db-workload.mjs';

/** Options of the verifier's own opens: no background work of its own (so the files hold still). */
export const VERIFY_OPTIONS = Object.freeze({
  segmentBytes: CHURN.segmentBytes,
  ringBytes: CHURN.ringBytes,
  memtableBytes: 64 << 20,
  l0CompactionTrigger: 1000,
  l0SlowdownTrigger: 1000,
  l0StopTrigger: 1000,
});

/** The writer's lines besides the common ones: A <g> <sync 0|1>, S {flushes, compactions, l0}. */
export const writerReport = Object.freeze({
  init: () => ({ flushes: 0, compactions: 0 }),
  parseAck(fields) {
    const [g, sync] = fields;
    if (fields.length !== 2 || !Number.isInteger(g) || (sync !== 0 && sync !== 1)) return null;
    return { key: g, g, sync: sync === 1 };
  },
  parseLine(line, report) {
    if (!line.startsWith('S ')) return;
    const s = JSON.parse(line.slice(2));
    report.flushes = Math.max(report.flushes, s.flushes);
    report.compactions = Math.max(report.compactions, s.compactions);
  },
});

/** Keeps the verified state of the database between iterations and checks each recovery. */
export class DbKillVerifier extends CrashVerifier {
  constructor(dir) {
    super();
    this.dir = dir;
    /** The database's contents as verified after the previous iteration (string -> string). */
    this.model = new Map();
  }

  open() {
    return openTestDb(this.dir, VERIFY_OPTIONS);
  }

  /** Every key and value, and the recovery info; checks that no table is orphaned or missing. */
  async read(db, problems) {
    const onDisk = tableFiles(this.dir).length;
    const inLevels = levelFiles(db.stats());
    if (onDisk !== inLevels) problems.add(`${onDisk} table files on disk but the levels hold ${inLevels} (orphaned or missing tables)`);
    const actual = new Map();
    const it = db.iterator({ keyEncoding: 'utf8', valueEncoding: 'utf8' });
    for (;;) {
      const chunk = await it.nextv(4096);
      if (chunk.length === 0) break;
      for (const [k, v] of chunk) actual.set(k, v);
    }
    await it.close();
    return { actual, recovery: db.recovery };
  }

  /** Whole batches, a prefix of the run, and exactly the state batches 0..M-1 produce. */
  checkState(state, { run }, problems) {
    const { actual } = state;
    const problem = (text) => problems.add(text);
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
    state.counts = counts;
    state.present = present;

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
    state.expected = expected;
  }

  /** 'sync' mode: every acknowledged batch; 'mixed': the sync:true ones. */
  isRequired(ack, { mode }) {
    return mode !== 'mixed' || ack.sync;
  }

  describeAck(ack) {
    return `batch ${ack.g} (sync:${ack.sync})`;
  }

  checkAck(state, ack) {
    return state.counts.has(ack.g) ? 'present' : 'absent';
  }

  /** At most `lanes` batches beyond the acknowledgements (those in flight at the kill). */
  checkBeyondAcks(state, { report, lanes }, problems) {
    let unacked = 0;
    for (const g of state.counts.keys()) if (!report.acks.has(g)) unacked++;
    if (unacked > lanes) problems.add(`${unacked} batches present that were never acknowledged, more than the ${lanes} that can be in flight (present: 0..${state.present - 1})`);
  }

  accept(state) {
    this.model = state.expected;
  }

  summary(state) {
    return { present: state.present, recovery: state.recovery };
  }

  /**
   * After a loop: opens with the churn settings, writes `count` more batches (a run of its
   * own), compacts everything and checks that writes, flushes and compactions still work and
   * that the result verifies. Returns the verdict ({ problems, ... }).
   */
  async writeAndCompact(t, run, count = 200) {
    const db = await openTestDb(this.dir, CHURN);
    const acks = new Map();
    try {
      const before = db.stats();
      for (let g = 0; g < count; g++) {
        await db.batch(batchOps(run, g));
        acks.set(g, { key: g, g, sync: true });
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
    const report = { acks, duplicateAcks: [], readerProblems: [] };
    return this.verify({ run, report, mode: 'sync', lanes: 0 });
  }
}

/**
 * The database's kill loop (helpers/kill-loop.mjs runKillLoop with fixtures/db-writer.mjs):
 * kills come `minKillMs`..`maxKillMs` after READY, every `earlyEvery`-th while the writer
 * opens; with `failpoint`, the engine's crash point aborts the writer instead. `mode`: sync |
 * mixed (fixtures/db-writer.mjs). `lanes` batches are in flight at most.
 *
 * Returns { failed, acks, required, present, flushes, compactions, fired, backends, orphansRemoved, verifier }.
 */
export function runDbKillLoop(t, { mode = 'sync', lanes = 16, maxBatches = 3000, minKillMs = 40, maxKillMs = 400, ...options }) {
  const product = {
    fixture: 'db-writer.mjs',
    args: () => [mode, lanes, maxBatches],
    parse: writerReport,
    verifier: new DbKillVerifier(options.dir),
    context: () => ({ lanes }),
    minKillMs,
    maxKillMs,
    initial: () => ({ present: 0, flushes: 0, compactions: 0, orphansRemoved: 0 }),
    tally(result, report, verdict) {
      result.present += verdict.present;
      result.flushes += report.flushes;
      result.compactions += report.compactions;
      result.orphansRemoved += verdict.recovery?.orphansRemoved ?? 0;
    },
  };
  return runKillLoop(t, product, { mode, ...options });
}
