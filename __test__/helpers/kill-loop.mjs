// The crash-test core shared by the log and the database: a child writes and acknowledges
// writes on stdout, is killed (SIGKILL, or a failpoint's abort) at a random moment, the store
// is reopened in this process and every acknowledged write is checked. Each product plugs in
// only what differs (helpers/log-verify.mjs, helpers/db-verify.mjs): its child, how an
// acknowledgement line reads, how to reopen and read everything back, which acknowledgements
// must survive and what "present" means.
//
// The child side of the protocol is helpers/fixture-io.mjs. Lines every crash child writes,
// each with one synchronous write (so it is in the pipe before the write it reports on goes
// on, and survives the kill):
//   OPENING            about to open (an early kill lands during recovery)
//   READY {json}       opened; at least { backend }
//   A <n> <n> ...      one acknowledged write (the fields are the product's)
//   X {json}           a read in the child saw something wrong; the parent fails the iteration
//   E {code, message}  an unexpected error; the child exits with code 3
// Any other line is the product's (parseLine).

import { backend } from './uringdb.mjs';
import { spawnChild, parseTagged } from './child.mjs';
import { randomInt, sleep } from './util.mjs';

/** At most this many problems are listed per verification (the count is still kept). */
export const MAX_PROBLEMS = 20;

/** The problems one verification found: a bounded list plus the total. */
export class Problems {
  constructor(max = MAX_PROBLEMS) {
    this.list = [];
    this.count = 0;
    this.max = max;
  }

  add(text) {
    this.count++;
    if (this.list.length < this.max) this.list.push(text);
  }

  get empty() {
    return this.count === 0;
  }
}

/**
 * Parses a crash child's stdout lines into a report:
 *   { opening, ready, error, acks: Map(key -> ack), duplicateAcks: [key], readerProblems: [json] }
 * `parseAck(fields)` turns the numbers of an A line into an ack `{ key, ... }` (null: not a
 * whole line); `parseLine(line, report)` reads the product's own lines into `report`;
 * `init()` gives the product's fields their starting values.
 */
export function parseChildReport(lines, { parseAck, parseLine = () => {}, init = () => ({}) }) {
  const report = { opening: false, ready: null, error: null, acks: new Map(), duplicateAcks: [], readerProblems: [], ...init() };
  for (const line of lines) {
    if (line === 'OPENING') {
      report.opening = true;
    } else if (line.startsWith('READY ')) {
      report.ready = parseTagged(line, 'READY');
    } else if (line.startsWith('E ')) {
      report.error = parseTagged(line, 'E');
    } else if (line.startsWith('X ')) {
      report.readerProblems.push(parseTagged(line, 'X'));
    } else if (line.startsWith('A ')) {
      const ack = parseAck(line.slice(2).split(' ').map(Number));
      if (ack === null) continue;
      if (report.acks.has(ack.key)) report.duplicateAcks.push(ack.key);
      report.acks.set(ack.key, ack);
    } else {
      parseLine(line, report);
    }
  }
  return report;
}

/**
 * The verifier core: reopen, read everything, check the product's invariants, then every
 * acknowledgement (required ones must be present), then what lies beyond the
 * acknowledgements. A product subclasses it and implements:
 *   open()                          reopens the store in this process (a handle with close())
 *   read(handle, problems)          reads everything back: the recovered state
 *   checkState(state, ctx, problems)      what must hold whatever was acknowledged
 *   isRequired(ack, ctx)            must this acknowledged write survive?
 *   checkAck(state, ack, ctx, problems)   'present' or 'absent' (adds a problem when present but wrong)
 *   describeAck(ack, ctx)           short text naming an acknowledged write
 *   checkBeyondAcks(state, ctx, problems) unacknowledged writes present: at most those in flight
 *   accept(state, ctx)              remembers the verified state for the next iteration
 *   summary(state)                  the product's numbers for the caller ({ lastSeq } etc.)
 * `ctx` is { run, report, ... } (the product adds its mode and bounds).
 */
export class CrashVerifier {
  /** Returns { problems: [text], problemCount, required, ...summary }. */
  async verify(ctx) {
    const { report } = ctx;
    const problems = new Problems();
    for (const p of report.readerProblems) problems.add(`a read in the child while writing saw: ${JSON.stringify(p)}`);
    for (const key of report.duplicateAcks) problems.add(`${this.describeAck(report.acks.get(key), ctx)} was acknowledged twice`);

    let handle;
    try {
      handle = await this.open();
    } catch (err) {
      problems.add(`reopen after the kill failed: ${err?.code} ${err?.message}`);
      return { problems: problems.list, problemCount: problems.count, required: 0 };
    }
    let state;
    try {
      state = await this.read(handle, problems);
    } catch (err) {
      await handle.close().catch(() => {});
      problems.add(`read after the reopen failed: ${err?.code} ${err?.message}`);
      return { problems: problems.list, problemCount: problems.count, required: 0 };
    }
    await handle.close();

    this.checkState(state, ctx, problems);

    let required = 0;
    const lost = [];
    for (const ack of report.acks.values()) {
      const isRequired = this.isRequired(ack, ctx);
      if (isRequired) required++;
      const found = this.checkAck(state, ack, ctx, problems);
      if (found !== 'present' && found !== 'absent') throw new Error(`checkAck returned ${found}`);
      if (found === 'absent' && isRequired) lost.push(ack);
    }
    if (lost.length > 0) {
      problems.add(`${lost.length} acknowledged writes that had to survive are missing, e.g. ${lost.slice(0, 10).map((a) => this.describeAck(a, ctx)).join('; ')}`);
    }
    this.checkBeyondAcks(state, ctx, problems);

    if (problems.empty) this.accept(state, ctx);
    return { problems: problems.list, problemCount: problems.count, required, ...this.summary(state) };
  }
}

/**
 * The kill loop: `count` times, start the product's child on `dir`, end it at a random moment
 * (SIGKILL), or let a failpoint abort it, reopen in-process and verify. With `earlyEvery`, every
 * such iteration kills the child while it opens (recovers). Fails the test (t.fail with the
 * problems) at the first bad iteration.
 *
 * product: {
 *   fixture        the child (fixtures/<name>), run as <fixture> <dir> <ioBackend> <run> ...args(run)
 *   args(run)      the child's further arguments
 *   parse          { parseAck, parseLine, init } for parseChildReport
 *   verifier       a CrashVerifier
 *   context(run)   the verifier's ctx besides { run, report } (mode, bounds)
 *   initial()      the product's counters, zero
 *   tally(result, report, verdict)   adds the product's counters to the result
 *   minKillMs, maxKillMs             the kill comes this long after READY
 * }
 *
 * failpoint: a name from the engine's crash points; the child gets URINGDB_FAILPOINT=<name>:<n>
 * (n from 1 to 6) and must die by SIGABRT having reported it; if it has not within
 * `failpointWaitMs`, it is killed and the iteration counts as not fired.
 *
 * Returns { failed, acks, required, fired, backends, ...the product's tally }.
 */
export async function runKillLoop(t, product, { dir, count, mode, env = {}, envFor, wrapper = [], childBackend = backend(), earlyEvery = 5, failpoint, failpointWaitMs = 8000 }) {
  const { fixture, verifier, minKillMs, maxKillMs } = product;
  const result = { failed: false, acks: 0, required: 0, fired: 0, backends: new Set(), verifier, ...product.initial() };
  for (let i = 0; i < count; i++) {
    const run = i + 1;
    const early = failpoint === undefined && earlyEvery > 0 && i % earlyEvery === earlyEvery - 1;
    const childEnv = { ...env, ...(envFor ? envFor(i) : {}) };
    if (failpoint !== undefined) childEnv.URINGDB_FAILPOINT = `${failpoint}:${randomInt(1, 6)}`;
    const child = spawnChild(t, fixture, [dir, childBackend, run, ...product.args(run)], { env: childEnv, wrapper });
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
    const report = parseChildReport(child.lines, product.parse);
    const context = `iteration ${run} of ${fixture} (${mode}, ${how}, env ${JSON.stringify(childEnv)}, ${report.acks.size} acks)`;
    const fail = (text) => {
      t.fail(`${context}: ${text}\nchild stderr:\n${child.stderr().slice(-4000)}`);
      result.failed = true;
      return result;
    };
    if (report.error) return fail(`the child failed: ${report.error.code} ${report.error.message}`);
    if (failpoint !== undefined) {
      const reached = child.stderr().includes(`failpoint ${failpoint} reached`);
      if (signal === 'SIGABRT' && reached) result.fired++;
      else if (signal !== 'SIGKILL') return fail(`the child ended with code ${code} signal ${signal} (failpoint reached: ${reached})`);
    } else if (signal !== 'SIGKILL') {
      return fail(`the child exited by itself (code ${code}, signal ${signal}) before the kill`);
    }
    if (report.ready) result.backends.add(report.ready.backend);
    const verdict = await verifier.verify({ run, report, mode, ...product.context(run) });
    if (verdict.problemCount > 0) {
      return fail(`the recovered store is wrong (${verdict.problemCount} problems):\n  ${verdict.problems.join('\n  ')}`);
    }
    result.acks += report.acks.size;
    result.required += verdict.required;
    product.tally(result, report, verdict);
  }
  return result;
}
