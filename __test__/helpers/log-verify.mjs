// The log's side of the crash tests (helpers/kill-loop.mjs is the shared core): its child
// (fixtures/appender.mjs), its acknowledgement lines, and what a log recovered after a SIGKILL
// mid-append must show:
//   - seqs contiguous from firstSeq to lastSeq, firstSeq only ever moving up by truncation;
//   - what an earlier recovery saw is still there, byte for byte (unless truncated);
//   - everything new is a record this run produced, per writer in order, whole appendMany
//     batches only, and at most each writer's one in-flight call beyond its acknowledgements;
//   - every acknowledged record at its exact seq with its exact bytes; the required ones
//     (sync:true, or covered by a completed sync()) present;
//   - nothing a reader in the child saw (lastSeq, tail) was lost.

import { openTestLog } from './uringdb.mjs';
import { CrashVerifier, runKillLoop } from './kill-loop.mjs';
import { makeRecord, parseRecord, idString } from './records.mjs';
import { readAll } from './util.mjs';

/** The appender's lines besides the common ones: A (its fields), Y, T, V. */
export const appenderReport = Object.freeze({
  init: () => ({ syncCovered: 0, visible: 0, truncateRequested: 0 }),
  /** A <seq> <writer> <counter> <batchStart> <batchLen> <sync 0|1> */
  parseAck(fields) {
    if (fields.length !== 6) return null; // a line cut by the kill (cannot happen with single writes, but harmless)
    const [seq, writer, counter, batchStart, batchLen, sync] = fields;
    return { key: seq, seq, id: { writer, counter, batchStart, batchLen, sync: sync === 1 } };
  },
  parseLine(line, report) {
    if (line.startsWith('Y ')) report.syncCovered = Math.max(report.syncCovered, Number(line.slice(2)));
    else if (line.startsWith('T ')) report.truncateRequested = Math.max(report.truncateRequested, Number(line.slice(2)));
    else if (line.startsWith('V ')) report.visible = Math.max(report.visible, Number(line.slice(2)));
  },
});

/**
 * Keeps what earlier iterations recovered and checks each new recovery against it and against
 * the child's acknowledgements. Modes: 'sync' / 'truncate': every ack is required (unless
 * truncated away); 'mixed': sync:true acks and every ack at or below the highest seq covered
 * by a completed sync() are required.
 */
export class LogKillVerifier extends CrashVerifier {
  constructor(dir, openOptions) {
    super();
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

  get knownEnd() {
    return this.knownFirst + this.known.length; // exclusive
  }

  open() {
    return openTestLog(this.dir, this.openOptions);
  }

  async read(log) {
    const firstSeq = log.firstSeq;
    const lastSeq = log.lastSeq;
    const records = await readAll(log); // from the first record
    return { firstSeq, lastSeq, records, at: (seq) => records[seq - firstSeq]?.data, newIds: new Map() };
  }

  checkState(state, { run, report }, problems) {
    const { firstSeq, lastSeq, records, at } = state;
    const problem = (text) => problems.add(text);
    const truncatedTo = Math.max(this.truncatedTo, report.truncateRequested);
    state.truncatedTo = truncatedTo;
    const knownEnd = this.knownEnd;

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

    // What earlier recoveries saw must still be there, byte for byte (unless truncated).
    if (knownEnd - 1 > lastSeq) problem(`log shrank: an earlier recovery had records up to seq ${knownEnd - 1}, now lastSeq=${lastSeq}`);
    for (let seq = Math.max(firstSeq, this.knownFirst); seq < Math.min(knownEnd, lastSeq + 1); seq++) {
      if (!at(seq)?.equals(this.known[seq - this.knownFirst])) problem(`record seq ${seq} changed since the previous recovery`);
    }
    if (report.ready && report.ready.lastSeq !== knownEnd - 1) {
      problem(`the child recovered lastSeq=${report.ready.lastSeq}, the previous in-process recovery had ${knownEnd - 1}`);
    }

    // Everything new must be exactly a record this run produced, per writer in order, whole
    // batches. (If truncation reached into this run's records, a writer may start mid-way.)
    const newFrom = Math.max(knownEnd, firstSeq);
    const mayStartMidway = firstSeq > knownEnd;
    const perWriter = new Map(); // writer -> { next counter expected, last id }
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
      state.newIds.set(seq, id);
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
    state.writers = [...perWriter.keys()];

    if (report.visible > lastSeq) {
      problem(`a reader in the child saw seq ${report.visible} (lastSeq or tail), but the recovered log ends at ${lastSeq}: a visible record was lost`);
    }
  }

  isRequired(ack, { mode, report }) {
    return mode !== 'mixed' || ack.id.sync || ack.seq <= report.syncCovered;
  }

  describeAck(ack, { run }) {
    return `seq ${ack.seq} (${idString({ run, ...ack.id })})`;
  }

  /** Exact seq, exact bytes; below firstSeq only if truncated away. */
  checkAck(state, ack, { run }, problems) {
    const { seq } = ack;
    const { firstSeq, lastSeq, at, truncatedTo } = state;
    const id = { run, ...ack.id };
    if (seq < this.knownEnd) problems.add(`seq ${seq} (${idString(id)}) was acknowledged but belongs to an earlier recovered record`);
    if (seq < firstSeq) {
      if (seq >= truncatedTo) problems.add(`acknowledged record seq ${seq} (${idString(id)}) is gone although only seqs below ${truncatedTo} were truncated (firstSeq ${firstSeq})`);
      return 'present'; // truncated away by the child itself
    }
    if (seq > lastSeq) return 'absent';
    if (!at(seq).equals(makeRecord(id))) {
      const found = parseRecord(at(seq));
      problems.add(`ack seq ${seq} (${idString(id)}): log has ${found ? idString(found) : 'other bytes'} at that seq`);
    }
    return 'present';
  }

  /** Beyond its acknowledgements each writer may have at most its one in-flight call in the log. */
  checkBeyondAcks(state, { mode, report }, problems) {
    if (mode === 'mixed' && report.syncCovered > state.lastSeq) {
      problems.add(`sync() covering seq ${report.syncCovered} completed, but the recovered log ends at ${state.lastSeq}`);
    }
    const maxAckedCounter = new Map();
    for (const { id } of report.acks.values()) maxAckedCounter.set(id.writer, Math.max(maxAckedCounter.get(id.writer) ?? -1, id.counter));
    for (const writer of state.writers) {
      const acked = maxAckedCounter.get(writer) ?? -1;
      for (const [seq, id] of state.newIds) {
        if (id.writer === writer && id.counter > acked && id.batchStart !== acked + 1) {
          problems.add(`writer ${writer}: unacknowledged record ${idString(id)} at seq ${seq} is beyond its single in-flight call (last ack counter ${acked})`);
          break;
        }
      }
    }
  }

  accept(state) {
    this.known = state.records.map((r) => r.data);
    this.knownFirst = state.lastSeq === 0 ? 1 : state.firstSeq;
    this.truncatedTo = state.truncatedTo;
    this.prevFirstSeq = state.firstSeq;
  }

  summary(state) {
    return { firstSeq: state.firstSeq, lastSeq: state.lastSeq };
  }
}

/**
 * The log's kill loop (helpers/kill-loop.mjs runKillLoop with fixtures/appender.mjs): every
 * fifth iteration kills the appender early (while it opens/recovers), the others 20..300 ms
 * after READY. `mode`: sync | mixed | truncate (fixtures/appender.mjs).
 *
 * Returns { failed, acks, required, firstSeq, lastSeq, backends } for the caller's own assertions.
 */
export function runLogKillLoop(t, { writers = 64, segmentBytes = 1 << 20, ...options }) {
  const product = {
    fixture: 'appender.mjs',
    args: () => [options.mode, writers, segmentBytes],
    parse: appenderReport,
    verifier: new LogKillVerifier(options.dir, { segmentBytes }),
    context: () => ({}),
    minKillMs: 20,
    maxKillMs: 300,
    initial: () => ({ firstSeq: 0, lastSeq: 0 }),
    tally(result, _report, verdict) {
      result.firstSeq = verdict.firstSeq;
      result.lastSeq = verdict.lastSeq;
    },
  };
  return runKillLoop(t, product, options);
}
