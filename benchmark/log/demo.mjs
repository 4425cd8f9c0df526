#!/usr/bin/env node
// The log demo: a durable-append workload on a data directory this script creates. (`npm start`
// at the root runs txn/txn.mjs, the key-value store's demo; this one is the append-only log's.)
//
// 256 concurrent writers append JSON "outbox events" (100 B – 4 KiB) with sync: true for 10 s;
// every append counts only when its promise resolved, i.e. when the record is on disk. Then the
// log is read back and every acknowledged record is checked byte for byte.
//
//   node benchmark/log/demo.mjs [--duration=SECONDS] [--writers=N] [--dir=PATH] [--backend=auto|io_uring|portable] [--tiny]
//
// --tiny (the benchmark's bench:tiny): 32 writers for 0.5 s in a temporary directory that is
// removed afterwards; numbers meaningless.
//
// Uses only the uringdb package built in this repository (dist/index.js) and Node built-ins,
// so it runs with nothing but the root package installed.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'

import { parseArgs } from '../lib/args.mjs'
import { closedLoop } from '../lib/closed-loop.mjs'
import { fixed, int, markdownTable, us } from '../lib/format.mjs'
import { loadUringdb } from '../lib/uringdb.mjs'

const args = parseArgs(process.argv.slice(2), {
  tiny: { type: 'boolean', default: false },
  duration: { type: 'number' },
  writers: { type: 'number' },
  dir: { type: 'string' },
  backend: { type: 'string', default: 'auto' },
})
args.duration ??= args.tiny ? 0.5 : 10
const writers = Math.floor(args.writers ?? (args.tiny ? 32 : 256))
// Tiny runs (CI) leave nothing behind: their default directory is a temporary one.
const tempDir = args.dir === undefined && args.tiny
args.dir ??= tempDir ? path.join(os.tmpdir(), `uringdb-demo-tiny-${process.pid}`) : path.join('uringdb-data', 'demo-log')
// No append completing for this long is a stuck engine: fail instead of hanging.
const STALL_MS = 30_000
const dir = path.resolve(args.dir)
const tty = Boolean(process.stdout.isTTY)
const say = (line = '') => process.stdout.write(line + '\n')

// ---- the events --------------------------------------------------------------------------------
// An event is a pure function of its id, so the check after the run can rebuild exactly the
// bytes each acknowledged append carried without keeping them in memory.

const EVENT_TYPES = ['OrderPlaced', 'PaymentCaptured', 'InventoryReserved', 'ShipmentRequested', 'OrderCompleted']
const MIN_BYTES = 100
const MAX_BYTES = 4096
const PAD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'.repeat(Math.ceil(MAX_BYTES / 64))
const startedAtMs = Date.now()

/** Target size of event `id`: log-uniform in [MIN_BYTES, MAX_BYTES] (many small, some large). */
function sizeOf(id) {
  const u = (Math.imul(id ^ (id >>> 16), 0x45d9f3b) >>> 0) / 2 ** 32
  return Math.round(MIN_BYTES * (MAX_BYTES / MIN_BYTES) ** u)
}

function makeEvent(id) {
  const head =
    `{"id":${id},"type":"${EVENT_TYPES[id % EVENT_TYPES.length]}","aggregateId":"order-${id % 100_003}",` +
    `"occurredAt":${startedAtMs + (id >>> 6)},"payload":"`
  const padBytes = Math.max(0, sizeOf(id) - head.length - 2)
  return head + PAD.slice(0, padBytes) + '"}'
}

// ---- progress ----------------------------------------------------------------------------------

const BAR_CELLS = 30
let lastLineAt = 0
let finished = false
function progress(elapsedS, appends, bytes, ratePerS) {
  if (finished) return
  const done = Math.min(1, elapsedS / args.duration)
  const text =
    `${fixed(elapsedS)} s / ${args.duration} s  ${int(appends)} durable appends  ` +
    `${int(ratePerS)}/s  ${fixed(bytes / 1e6 / Math.max(elapsedS, 1e-3))} MB/s`
  if (tty) {
    const full = Math.round(done * BAR_CELLS)
    const bar = '\x1b[32m' + '█'.repeat(full) + '\x1b[2m' + '░'.repeat(BAR_CELLS - full) + '\x1b[0m'
    process.stdout.write(`\r\x1b[2K${bar} ${String(Math.round(done * 100)).padStart(3)}%  ${text}`)
  } else if (elapsedS - lastLineAt >= 1 || done >= 1) {
    lastLineAt = elapsedS
    say(`progress ${String(Math.round(done * 100)).padStart(3)}%  ${text}`)
  }
  // Past the deadline the loop only waits for appends in flight: one 100% line is enough.
  if (done >= 1) finished = true
}

// ---- run ---------------------------------------------------------------------------------------

const { openLog } = await loadUringdb()
say(`uringdb demo: durable appends of JSON outbox events`)
say(`data directory: ${dir}`)
const log = await openLog(dir, { ioBackend: args.backend, sync: true })
// Earlier runs' records are of no use to this one: drop their whole segments so the directory
// does not grow run after run (truncateBefore keeps the segment holding lastSeq).
const trimmed = log.lastSeq > 0 ? await log.truncateBefore(log.lastSeq + 1) : 0
const base = log.lastSeq + 1
const opened = log.stats()
say(
  `backend: ${opened.backend}${opened.fallbackReason ? ` (fallback: ${opened.fallbackReason})` : ''}; ` +
    `features: ${opened.features.join(', ') || 'none'}` +
    (trimmed > 0 ? `; removed ${trimmed} segment(s) of earlier runs` : ''),
)
say(`${writers} writers × ${args.duration} s, sync: true, events of ${MIN_BYTES} B – ${MAX_BYTES / 1024} KiB`)
say()

let ids = new Uint32Array(1 << 20) // ids[seq - base] = id of the event acknowledged with seq
let acked = 0
let ackedBytes = 0
let nextId = 1
const before = log.stats()

async function appendOne() {
  const id = nextId++
  const event = makeEvent(id)
  const seq = await log.append(event)
  const slot = seq - base
  if (slot < 0) throw new Error(`append returned seq ${seq}, below the first seq of this run ${base}`)
  while (slot >= ids.length) {
    const grown = new Uint32Array(ids.length * 2)
    grown.set(ids)
    ids = grown
  }
  ids[slot] = id
  acked++
  ackedBytes += event.length // ASCII: characters = bytes
}

let lastOps = 0
let lastAt = process.hrtime.bigint()
const runStart = lastAt
let run
try {
  run = await closedLoop({
    clients: writers,
    durationMs: args.duration * 1000,
    op: appendOne,
    stallMs: STALL_MS,
    onProgress: () => {
      const now = process.hrtime.bigint()
      const rate = ((acked - lastOps) * 1e9) / Number(now - lastAt)
      lastOps = acked
      lastAt = now
      progress(Number(now - runStart) / 1e9, acked, ackedBytes, rate)
    },
  })
} catch (err) {
  // A failed or stuck log: say what happened with the engine's own counters, and exit non-zero
  // without waiting for appends that may never complete.
  if (tty) say()
  say()
  say(`✗ the workload failed after ${int(acked)} acknowledged appends: ${err?.code ? `[${err.code}] ` : ''}${err?.message ?? err}`)
  if (err?.cause) say(`  cause: ${err.cause.code ? `[${err.cause.code}] ` : ''}${err.cause.message ?? err.cause}`)
  try {
    const s = log.stats()
    say(`  log.stats(): appends ${s.appends}, groups ${s.groups}, fsyncs ${s.fsyncs}, lastSeq ${s.lastSeq}, segments ${s.segments}, backend ${s.backend}`)
  } catch (statsErr) {
    say(`  log.stats() failed too: ${statsErr?.message ?? statsErr}`)
  }
  process.exit(1)
}
finished = false
progress(run.seconds, acked, ackedBytes, run.opsPerSec)
if (tty) say()
const after = log.stats()

// ---- results -----------------------------------------------------------------------------------

const groups = after.groups - before.groups
const fsyncs = after.fsyncs - before.fsyncs
const lat = after.latencyUs
say()
say('## Results')
say()
say(
  markdownTable(
    ['measure', 'value'],
    [
      ['durable appends', int(run.ops)],
      ['appends/s', int(run.opsPerSec)],
      ['MB/s (payload)', fixed(ackedBytes / 1e6 / run.seconds)],
      ['latency p50 / p99 / p99.9 (append → durable ack)', `${us(run.latency.p50Us)} / ${us(run.latency.p99Us)} / ${us(run.latency.p999Us)}`],
      ['commit groups', int(groups)],
      ['records per group (mean)', fixed(groups > 0 ? run.ops / groups : NaN)],
      ['fsyncs/s', int(fsyncs / run.seconds)],
      ['group stages p50 / p99: queue wait', `${us(lat.queueWait.p50)} / ${us(lat.queueWait.p99)}`],
      ['group stages p50 / p99: write', `${us(lat.write.p50)} / ${us(lat.write.p99)}`],
      ['group stages p50 / p99: fsync', `${us(lat.fsync.p50)} / ${us(lat.fsync.p99)}`],
      ['backend', after.backend],
      ['segments on disk', int(after.segments)],
    ],
    ['l', 'r'],
  ),
)
say()

// ---- read back and verify --------------------------------------------------------------------

say('## Read-back check')
const verifyStart = process.hrtime.bigint()
const seen = new Uint8Array(run.ops)
let read = 0
let expectedCrc = 0
let actualCrc = 0
let problems = 0
let previousSeq = base - 1
const report = (msg) => {
  if (++problems <= 10) say(`  ✗ ${msg}`)
}
for await (const r of log.read({ from: base })) {
  if (r.seq <= previousSeq) report(`seq ${r.seq} after seq ${previousSeq}: out of order`)
  previousSeq = r.seq
  const slot = r.seq - base
  if (slot >= run.ops) {
    report(`seq ${r.seq} was never acknowledged`)
    continue
  }
  if (seen[slot]) report(`seq ${r.seq} read twice`)
  seen[slot] = 1
  read++
  const expected = Buffer.from(makeEvent(ids[slot]))
  expectedCrc = zlib.crc32(expected, expectedCrc)
  actualCrc = zlib.crc32(r.data, actualCrc)
  if (!expected.equals(r.data)) report(`seq ${r.seq}: bytes differ from event ${ids[slot]}`)
}
for (let i = 0; i < run.ops; i++) {
  if (!seen[i]) report(`acknowledged seq ${base + i} is missing`)
}
const verifySeconds = Number(process.hrtime.bigint() - verifyStart) / 1e9
const hex = (n) => '0x' + (n >>> 0).toString(16).padStart(8, '0')
if (problems === 0 && read === run.ops && expectedCrc === actualCrc) {
  say(
    `  ✓ all ${int(run.ops)} acknowledged records read back in order, byte-exact ` +
      `(CRC-32 over all records ${hex(actualCrc)} = expected ${hex(expectedCrc)}; ${fixed(verifySeconds, 2)} s)`,
  )
} else {
  say(`  ✗ ${int(read)} of ${int(run.ops)} acknowledged records read back, ${problems} problem(s); CRC-32 ${hex(actualCrc)} vs expected ${hex(expectedCrc)}`)
  process.exitCode = 1
}
await log.close()
say()
if (tempDir && !process.exitCode) fs.rmSync(dir, { recursive: true, force: true })
else say(`The log stays in ${dir} (the next run removes its old segments).`)
