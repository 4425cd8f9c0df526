// Verification of a log recovered after a child process was SIGKILLed mid-append, and the
// kill loop shared by the durability and fallback tests.

import { openTestLog, backend } from './uringdb.mjs';
import { spawnChild, parseTagged } from './child.mjs';
import { makeRecord, parseRecord, idString } from './records.mjs';
import { readAll, randomInt, sleep } from './util.mjs';

const MAX_PROBLEMS = 20;

/** Parses the appender's stdout lines into acknowledgements, sync points, and its READY info. */
export function parseAppenderOutput(lines) {
  const acks = [];
  let syncCovered = 0;
  let visible = 0;
  let truncateRequested = 0;
  const readerErrors = [];
  let ready = null;
  let error = null;
  let opening = false;
  for (const line of lines) {
    if (line === 'OPENING') {
      opening = true;
    } else if (line.startsWith('A ')) {
      const f = line.split(' ');
      if (f.length !== 7) continue; // a line cut by the kill (cannot happen with single writes, but harmless)
      const [seq, writer, counter, batchStart, batchLen, sync] = f.slice(1).map(Number);
      acks.push({ seq, id: { writer, counter, batchStart, batchLen, sync: sync === 1 } });
    } else if (line.startsWith('Y ')) {
      syncCovered = Math.max(syncCovered, Number(line.slice(2)));
    } else if (line.startsWith('T ')) {
      truncateRequested = Math.max(truncateRequested, Number(line.slice(2)));
    } else if (line.startsWith('V ')) {
      visible = Math.max(visible, Number(line.slice(2)));
    } else if (line.startsWith('READY ')) {
      ready = parseTagged(line, 'READY');
    } else if (line.startsWith('E ')) {
      error = parseTagged(line, 'E');
    } else if (line.startsWith('X ')) {
      readerErrors.push(parseTagged(line, 'X'));
    }
  }
  return { acks, syncCovered, visible, truncateRequested, readerErrors, ready, error, opening };
}

/**
 * Keeps what earlier iterations recovered and checks each new recovery against it and against
 * the child's acknowledgements.
 */
export class KillVerifier {
  constructor(dir, openOptions) {
    this.dir = dir;
    this.openOptions = openOptions;
    /** Record bytes of seq knownFirst.. as recovered by the previous verification. */
    this.known = [];
    this.knownFirst = 1;
    /** Highest seq any child passed to truncateBefore (records below it may be gone). */
    this.truncatedTo = 0;
    /** firstSeq of the previous recovery (truncated records never come back). */
    this.prevFirstSeq = 0;
  }

  /**
   * Reopens the log in this process and returns a list of problems (empty when all is well).
   * `mode` 'sync' / 'truncate': every ack is required (unless truncated away); 'mixed':
   * sync:true acks and every ack at or below the highest seq covered by a completed sync()
   * are required.
   */
  async verify({ run, mode, acks, syncCovered = 0, visible = 0, truncateRequested = 0, readerErrors = [], ready }) {
    const problems = [];
    const problem = (text) => {
      if (problems.length < MAX_PROBLEMS) problems.push(text);
    };
    for (const e of readerErrors) problem(`a reader in the child failed while appends went on: ${e.code} ${e.message}`);
    const truncatedTo = Math.max(this.truncatedTo, truncateRequested);
    const knownEnd = this.knownFirst + this.known.length; // exclusive

    let log;
    try {
      log = await openTestLog(this.dir, this.openOptions);
    } catch (err) {
      return { problems: [`reopen after kill failed: ${err?.code} ${err?.message}`], lastSeq: 0, required: 0 };
    }
    let records;
    const firstSeq = log.firstSeq;
    const lastSeq = log.lastSeq;
    try {
      records = await readAll(log); // from the first record
    } catch (err) {
      await log.close();
      return { problems: [`read after kill failed: ${err?.code} ${err?.message}`], lastSeq, required: 0 };
    }
    await log.close();

    if (lastSeq === 0) {
      if (firstSeq !== 0) problem(`empty log but firstSeq=${firstSeq} (expected 0)`);
      if (knownEnd > 1) problem(`the log is empty, but an earlier recovery had records up to seq ${knownEnd - 1}`);
    } else {
      if (firstSeq < 1 || firstSeq > lastSeq) problem(`firstSeq=${firstSeq} is outside 1..lastSeq=${lastSeq}`);
      if (firstSeq > Math.max(1, truncatedTo)) {
        problem(`firstSeq=${firstSeq}, but nothing at or above seq ${Math.max(1, truncatedTo)} was ever truncated`);
      }
      if (firstSeq < this.prevFirstSeq) problem(`firstSeq went back from ${this.prevFirstSeq} to ${firstSeq}: truncated records reappeared`);
    }
    const expectedCount = lastSeq === 0 ? 0 : lastSeq - firstSeq + 1;
    if (records.length !== expectedCount) problem(`read() yielded ${records.length} records for firstSeq=${firstSeq} lastSeq=${lastSeq}`);
    for (let i = 0; i < records.length; i++) {
      if (records[i].seq !== firstSeq + i) {
        problem(`record #${i} has seq ${records[i].seq}, expected ${firstSeq + i} (gap or reorder)`);
        break;
      }
      if (!Buffer.isBuffer(records[i].data)) {
        problem(`record seq ${firstSeq + i}: data is not a Buffer`);
        break;
      }
    }
    const at = (seq) => records[seq - firstSeq]?.data;

    // What earlier recoveries saw must still be there, byte for byte (unless truncated).
    if (knownEnd - 1 > lastSeq) problem(`log shrank: an earlier recovery had records up to seq ${knownEnd - 1}, now lastSeq=${lastSeq}`);
    for (let seq = Math.max(firstSeq, this.knownFirst); seq < Math.min(knownEnd, lastSeq + 1); seq++) {
      if (!at(seq)?.equals(this.known[seq - this.knownFirst])) problem(`record seq ${seq} changed since the previous recovery`);
    }
    if (ready && ready.lastSeq !== knownEnd - 1) {
      problem(`the child recovered lastSeq=${ready.lastSeq}, the previous in-process recovery had ${knownEnd - 1}`);
    }

    // Everything new must be exactly a record this run produced, per writer in order, whole
    // batches. (If truncation reached into this run's records, a writer may start mid-way.)
    const newFrom = Math.max(knownEnd, firstSeq);
    const mayStartMidway = firstSeq > knownEnd;
    const perWriter = new Map(); // writer -> { next counter expected, last id }
    const newIds = new Map(); // seq -> id
    for (let seq = newFrom; seq <= lastSeq; seq++) {
      const data = at(seq);
      if (!data) break;
      const id = parseRecord(data);
      if (id === null) {
        problem(`record seq ${seq} (${data.length} bytes) is not a record the child produced (garbage)`);
        continue;
      }
      if (id.run !== run) {
        problem(`record seq ${seq} is from run ${id.run}, expected only run ${run} beyond seq ${knownEnd - 1}`);
        continue;
      }
      newIds.set(seq, id);
      const w = perWriter.get(id.writer) ?? { next: mayStartMidway ? id.counter : 0, last: null };
      if (id.counter !== w.next) problem(`record seq ${seq} (${idString(id)}): writer ${id.writer} expected counter ${w.next} (duplicate or hole)`);
      w.next = id.counter + 1;
      w.last = { seq, id };
      perWriter.set(id.writer, w);
    }
    for (const [writer, w] of perWriter) {
      const { id, seq } = w.last;
      if (id.counter !== id.batchStart + id.batchLen - 1) {
        problem(`writer ${writer}: appendMany batch ${id.batchStart}+${id.batchLen} is partially present (last counter ${id.counter} at seq ${seq}): not atomic`);
      }
    }

    // Acknowledged records: exact seq, exact bytes; required ones must be present.
    const ackedSeqs = new Set();
    const maxAckedCounter = new Map();
    let required = 0;
    for (const ack of acks) {
      const { seq } = ack;
      const id = { run, ...ack.id };
      if (ackedSeqs.has(seq)) problem(`seq ${seq} was acknowledged twice`);
      ackedSeqs.add(seq);
      if (seq < knownEnd) problem(`seq ${seq} (${idString(id)}) was acknowledged but belongs to an earlier recovered record`);
      maxAckedCounter.set(id.writer, Math.max(maxAckedCounter.get(id.writer) ?? -1, id.counter));
      const isRequired = mode !== 'mixed' || id.sync || seq <= syncCovered;
      if (isRequired) required++;
      if (seq < firstSeq) {
        if (seq >= truncatedTo) problem(`acknowledged record seq ${seq} (${idString(id)}) is gone although only seqs below ${truncatedTo} were truncated (firstSeq ${firstSeq})`);
      } else if (seq <= lastSeq) {
        const expected = makeRecord(id);
        if (!at(seq).equals(expected)) {
          const found = parseRecord(at(seq));
          problem(`ack seq ${seq} (${idString(id)}): log has ${found ? idString(found) : 'other bytes'} at that seq`);
        }
      } else if (isRequired) {
        problem(`acknowledged ${id.sync ? 'durable' : 'synced'} record seq ${seq} (${idString(id)}) is missing (lastSeq ${lastSeq})`);
      }
    }
    if (visible > lastSeq) {
      problem(`a reader in the child saw seq ${visible} (lastSeq or tail), but the recovered log ends at ${lastSeq}: a visible record was lost`);
    }
    if (mode === 'mixed' && syncCovered > lastSeq) {
      problem(`sync() covering seq ${syncCovered} completed, but the recovered log ends at ${lastSeq}`);
    }

    // Beyond its acknowledgements each writer may have at most its one in-flight call in the log.
    for (const writer of perWriter.keys()) {
      const acked = maxAckedCounter.get(writer) ?? -1;
      for (const [seq, id] of newIds) {
        if (id.writer === writer && id.counter > acked && id.batchStart !== acked + 1) {
          problem(`writer ${writer}: unacknowledged record ${idString(id)} at seq ${seq} is beyond its single in-flight call (last ack counter ${acked})`);
          break;
        }
      }
    }

    this.known = records.map((r) => r.data);
    this.knownFirst = lastSeq === 0 ? 1 : firstSeq;
    this.truncatedTo = truncatedTo;
    this.prevFirstSeq = firstSeq;
    return { problems, lastSeq, firstSeq, required };
  }
}

/**
 * The kill loop: `count` times, start the appender child on `dir`, SIGKILL it at a random moment,
 * reopen in-process and verify. Every fifth iteration kills it early (while it opens/recovers).
 * Fails the test (t.fail with the problems) at the first bad iteration.
 *
 * Returns { ackTotal, requiredTotal, lastSeq, backends } for the caller's own assertions.
 */
export async function runKillLoop(t, { dir, count, mode, env = {}, wrapper = [], writers = 64, segmentBytes = 1 << 20, childBackend = backend() }) {
  const verifier = new KillVerifier(dir, { segmentBytes });
  let ackTotal = 0;
  let requiredTotal = 0;
  let lastSeq = 0;
  let firstSeq = 0;
  const backends = new Set();
  for (let i = 0; i < count; i++) {
    const run = i + 1;
    const early = i % 5 === 4;
    const child = spawnChild(t, 'appender.mjs', [dir, childBackend, run, mode, writers, segmentBytes], { env, wrapper });
    if (early) {
      await child.waitFor((l) => l === 'OPENING', 30_000, 'OPENING');
      await sleep(randomInt(0, 60));
    } else {
      await child.waitFor((l) => l.startsWith('READY '), 30_000, 'READY');
      await sleep(randomInt(20, 300));
    }
    child.kill('SIGKILL');
    const { code, signal } = await child.closed;
    const out = parseAppenderOutput(child.lines);
    if (out.error) {
      t.fail(`iteration ${run}: the appender failed: ${out.error.code} ${out.error.message}\nstderr:\n${child.stderr()}`);
      return { ackTotal, requiredTotal, lastSeq, backends, failed: true };
    }
    if (signal !== 'SIGKILL') {
      t.fail(`iteration ${run}: the appender exited by itself (code ${code}, signal ${signal}) before the kill\nstderr:\n${child.stderr()}`);
      return { ackTotal, requiredTotal, lastSeq, backends, failed: true };
    }
    if (out.ready) backends.add(out.ready.backend);
    const result = await verifier.verify({ run, mode, ...out });
    if (result.problems.length > 0) {
      t.fail(
        `iteration ${run} (${mode}, ${out.acks.length} acks, killed ${early ? 'early' : 'while appending'}): ` +
          `recovered log is wrong:\n  ${result.problems.join('\n  ')}\nchild stderr:\n${child.stderr()}`,
      );
      return { ackTotal, requiredTotal, lastSeq, backends, failed: true };
    }
    ackTotal += out.acks.length;
    requiredTotal += result.required;
    lastSeq = result.lastSeq;
    firstSeq = result.firstSeq;
  }
  return { ackTotal, requiredTotal, lastSeq, firstSeq, backends, failed: false };
}
