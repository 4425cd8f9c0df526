#!/usr/bin/env node
// The durable-append workload: uringdb's log against its peers and against the device, all in
// one process and one run, so that every ratio compares numbers measured minutes apart on the
// same machine. See benchmark/README.md for what each number means and the fairness notes.
//
//   node benchmark/log/workload.mjs             full run (3 s per case in 3 rounds, ~5 minutes)
//   node benchmark/log/workload.mjs --tiny      CI: every engine and code path, well under a minute
//   flags: --duration=SECONDS (per case) --rounds=N --only=uringdb,lmdb,... --backend=io_uring|portable|both
//          --dir=DIR (parent of the temp dirs) --no-install --json=FILE
//
// Output: a markdown report on stdout (progress goes to stderr) and the full results as JSON in
// benchmark/results/<timestamp>.json. Exit status 1 if any engine threw.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { parseArgs } from '../lib/args.mjs'
import { closedLoop } from '../lib/closed-loop.mjs'
import { benchDir, ensureDeps } from '../lib/ensure-deps.mjs'
import { bytes, fixed, int, markdownTable, pct, ratio, us } from '../lib/format.mjs'
import { machineFacts } from '../lib/machine.mjs'
import { buildRawsync, runRawsync } from './rawsync.mjs'
import { buildProfile, distEntry, loadUringdb, uringdbVersion } from '../lib/uringdb.mjs'
import { betterSqlite3Engine } from './engines/better-sqlite3.mjs'
import { classicLevelEngine } from './engines/classic-level.mjs'
import { lmdbEngine } from './engines/lmdb.mjs'
import { nodeLogEngine } from './engines/node-log.mjs'
import { uringdbEngine } from './engines/uringdb.mjs'

const FAMILIES = ['uringdb', 'node', 'lmdb', 'classic-level', 'better-sqlite3', 'rawsync']
const MiB = 1 << 20

const args = parseArgs(process.argv.slice(2), {
  tiny: { type: 'boolean', default: false },
  duration: { type: 'number' },
  rounds: { type: 'number' },
  only: { type: 'string', default: FAMILIES.join(',') },
  backend: { type: 'string', default: 'both' },
  dir: { type: 'string', default: os.tmpdir() },
  'no-install': { type: 'boolean', default: false },
  json: { type: 'string' },
})

const log = (msg) => process.stderr.write(msg + '\n')

const only = new Set(args.only.split(',').map((s) => s.trim()).filter(Boolean))
for (const name of only) {
  if (!FAMILIES.includes(name)) throw new Error(`--only: unknown engine ${name} (known: ${FAMILIES.join(', ')})`)
}
const backends = { both: ['io_uring', 'portable'], io_uring: ['io_uring'], portable: ['portable'] }[args.backend]
if (!backends) throw new Error(`--backend must be io_uring, portable or both, not ${args.backend}`)

const durationMs = (args.duration ?? (args.tiny ? 0.25 : 3)) * 1000
const rounds = Math.max(1, Math.floor(args.rounds ?? (args.tiny ? 1 : 3)))
const sliceMs = durationMs / rounds
const warmupMs = args.tiny ? 50 : Math.min(250, sliceMs / 4)
// No completion for this long fails a case (an engine that loses a completion must not hang the run).
const stallMs = args.tiny ? 20_000 : 30_000
const CLOSE_TIMEOUT_MS = 10_000
const rawsyncSliceMs = args.tiny ? 100 : Math.max(200, durationMs / 2 / rounds)

// Every shape a closed loop runs: record size × appends in flight.
const SHAPES = [
  { recordBytes: 100, inflight: 1 },
  { recordBytes: 100, inflight: 64 },
  { recordBytes: 100, inflight: 1024 },
  { recordBytes: 4096, inflight: 1 },
  { recordBytes: 4096, inflight: 64 },
  { recordBytes: 4096, inflight: 1024 },
]
// Bandwidth shapes, uringdb only (the reference is rawsync's 1 MiB loop).
const BIG_SHAPES = [
  { recordBytes: MiB, inflight: 1 },
  { recordBytes: MiB, inflight: 8 },
]

// ---- engines ---------------------------------------------------------------------------------

const engines = []
if (only.has('uringdb')) for (const b of backends) engines.push({ family: 'uringdb', ...uringdbEngine(b) })
if (only.has('node')) for (const m of ['append', 'prealloc']) engines.push({ family: 'node', ...nodeLogEngine(m) })
if (only.has('lmdb')) for (const v of ['commit-sync', 'flushed']) engines.push({ family: 'lmdb', ...lmdbEngine(v) })
if (only.has('classic-level')) engines.push({ family: 'classic-level', ...classicLevelEngine() })
if (only.has('better-sqlite3')) engines.push({ family: 'better-sqlite3', ...betterSqlite3Engine() })

const peersWanted = engines.some((e) => !['uringdb', 'node'].includes(e.family))
if (peersWanted && !args['no-install']) ensureDeps(log)

const skipped = [] // { engine, reason }
const failures = [] // { engine, shape, error }
const runnable = []
for (const e of engines) {
  try {
    await e.available?.()
    runnable.push(e)
  } catch (err) {
    const reason = err.message.split('\n')[0]
    // uringdb itself must load: a benchmark of uringdb that silently skips it is broken.
    if (e.family === 'uringdb') failures.push({ engine: e.name, shape: null, error: reason })
    else skipped.push({ engine: e.name, reason })
    log(`skip ${e.name}: ${reason}`)
  }
}

// ---- temp dirs -------------------------------------------------------------------------------

const liveDirs = new Set()
function tempDir(name) {
  const dir = fs.mkdtempSync(path.join(args.dir, `uringdb-bench-${name.replace(/[^a-z0-9]+/gi, '-')}-`))
  liveDirs.add(dir)
  return dir
}
function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true })
  liveDirs.delete(dir)
}
process.on('exit', () => {
  for (const dir of liveDirs) fs.rmSync(dir, { recursive: true, force: true })
})
process.on('SIGINT', () => process.exit(130))
process.on('SIGTERM', () => process.exit(143))

// ---- machine facts -----------------------------------------------------------------------------

const machine = machineFacts(args.dir)
machine.uringdb = { version: uringdbVersion(), build: buildProfile(), entry: distEntry }
if (runnable.some((e) => e.family === 'uringdb')) {
  const dir = tempDir('probe')
  try {
    const { openLog } = await loadUringdb()
    const probe = await openLog(dir, { ioBackend: 'auto' })
    const s = probe.stats()
    machine.uringdb = { ...machine.uringdb, autoBackend: s.backend, fallbackReason: s.fallbackReason, features: s.features }
    await probe.close()
  } catch (err) {
    failures.push({ engine: 'uringdb/auto', shape: null, error: err.message })
    log(`uringdb probe failed: ${err.message}`)
  } finally {
    removeDir(dir)
  }
}

// The driver's own ceiling: the same closed loop around an operation that costs nothing (an
// already-resolved promise), 1024 callers. No engine can be measured faster than this.
const resolved = Promise.resolve()
const harness = await closedLoop({ clients: 1024, durationMs: args.tiny ? 50 : 500, op: () => resolved })
machine.harnessOpsPerSec = harness.opsPerSec

// ---- the device: rawsync ---------------------------------------------------------------------

// Every case runs in `rounds` slices of durationMs/rounds, the whole case list once per round
// with the engine order rotated, so that a burst of load from a neighbour hits every engine
// alike rather than one. A case's numbers are its median round (by ops/s); the spread of the
// rounds is reported. rawsync runs once per round too, before that round's cases.

const rawsyncSizes = [...new Set([...SHAPES, ...BIG_SHAPES].map((s) => s.recordBytes * s.inflight))].sort((a, b) => a - b)
let rawsyncBinary = null
if (only.has('rawsync')) {
  try {
    rawsyncBinary = buildRawsync(log)
  } catch (err) {
    failures.push({ engine: 'rawsync', shape: null, error: err.message })
    log(`rawsync: ${err.message}`)
  }
}
const rawsyncRounds = [] // per round: array of rawsync lines

const cases = []
for (const shape of [...SHAPES, ...BIG_SHAPES]) {
  const big = BIG_SHAPES.includes(shape)
  const forShape = runnable.filter((e) => (big ? e.family === 'uringdb' : !(e.singleWriter && shape.inflight !== 1)))
  cases.push({ ...shape, engines: forShape })
}
const caseCount = cases.reduce((n, c) => n + c.engines.length, 0)

const refused = new Set() // engines whose open was refused by the environment (io_uring off)
const payloads = new Map()
function payloadOf(size) {
  if (!payloads.has(size)) {
    // Incompressible bytes; one shared buffer per size (every engine copies it at the call).
    const buf = Buffer.allocUnsafe(size)
    for (let i = 0; i < size; i++) buf[i] = (Math.imul(i + 1, 2654435761) >>> 24) & 0xff
    payloads.set(size, buf)
  }
  return payloads.get(size)
}

/** One slice of one case: fresh dir, open, warm up, measure, close. Returns a row or null. */
async function runSlice(e, c, tag) {
  const dir = tempDir(e.name)
  let handle = null
  try {
    handle = await e.open(dir, { payload: payloadOf(c.recordBytes), tiny: args.tiny })
    await closedLoop({ clients: c.inflight, durationMs: warmupMs, op: handle.op, samplesMax: 1 << 16, stallMs })
    const before = handle.counters?.()
    const capacity = Math.min(1 << 22, Math.max(1 << 16, Math.ceil(sliceMs * 2000)))
    const r = await closedLoop({ clients: c.inflight, durationMs: sliceMs, op: handle.op, samplesMax: capacity, stallMs })
    const after = handle.counters?.()
    const closing = handle.close()
    handle = null
    await withTimeout(closing, CLOSE_TIMEOUT_MS)
    const row = { ops: r.ops, seconds: r.seconds, opsPerSec: r.opsPerSec, ...r.latency }
    if (before && after) {
      const groups = after.groups - before.groups
      row.groups = groups
      row.recordsPerGroup = groups > 0 ? r.ops / groups : null
      row.fsyncsPerSec = (after.fsyncs - before.fsyncs) / r.seconds
      if (after.backend) row.backend = after.backend
    }
    log(`${tag}: ${int(r.opsPerSec)} ops/s, p50 ${us(r.latency.p50Us)}, p99 ${us(r.latency.p99Us)}`)
    return row
  } catch (err) {
    if (err?.code === 'ERR_URINGDB_IO_URING_UNAVAILABLE') {
      refused.add(e.name)
      skipped.push({ engine: e.name, reason: err.message })
      log(`${tag}: io_uring refused here, skipping ${e.name}: ${err.message}`)
    } else {
      failures.push({ engine: e.name, shape: `${bytes(c.recordBytes)} × ${c.inflight}`, error: String(err?.stack ?? err) })
      log(`${tag}: FAILED: ${err?.stack ?? err}`)
    }
    return null
  } finally {
    // After a failure (a stall above all) close may never resolve: give it a bounded wait and
    // leave the instance behind.
    if (handle) await withTimeout(handle.close(), CLOSE_TIMEOUT_MS).catch((err) => log(`${tag}: close: ${err.message}`))
    removeDir(dir)
  }
}

function withTimeout(promise, ms) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

const slices = new Map() // `${engine}|${recordBytes}|${inflight}` → rows, one per round
for (let round = 0; round < rounds; round++) {
  if (rawsyncBinary) {
    const dir = tempDir('rawsync')
    try {
      log(`round ${round + 1}/${rounds}: rawsync, ${rawsyncSizes.length} sizes × 3 modes, ${rawsyncSliceMs} ms each`)
      rawsyncRounds.push(
        runRawsync(rawsyncBinary, {
          dir,
          sizes: rawsyncSizes,
          modes: ['append', 'prealloc', 'fallocate'],
          durationMs: rawsyncSliceMs,
          warmupMs: args.tiny ? 20 : 100,
          regionBytes: args.tiny ? 8 * MiB : undefined,
        }),
      )
    } catch (err) {
      failures.push({ engine: 'rawsync', shape: null, error: err.message })
      log(`rawsync failed: ${err.message}`)
      rawsyncBinary = null
    } finally {
      removeDir(dir)
    }
  }
  let index = 0
  for (const c of cases) {
    const n = c.engines.length
    for (let k = 0; k < n; k++) {
      const e = c.engines[(k + round) % n]
      index++
      if (refused.has(e.name)) continue
      const tag = `round ${round + 1}/${rounds} [${index}/${caseCount}] ${e.name} ${bytes(c.recordBytes)} × ${c.inflight} in flight`
      const row = await runSlice(e, c, tag)
      if (!row) continue
      const key = `${e.name}|${c.recordBytes}|${c.inflight}`
      if (!slices.has(key)) slices.set(key, [])
      slices.get(key).push(row)
    }
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

// rawsync: per (mode, size), the median round by writes/s.
const rawsync = []
if (rawsyncRounds.length > 0) {
  for (const line of rawsyncRounds[0]) {
    const all = rawsyncRounds.map((lines) => lines.find((l) => l.mode === line.mode && l.bytesPerWrite === line.bytesPerWrite)).filter(Boolean)
    const sorted = [...all].sort((a, b) => a.writesPerSec - b.writesPerSec)
    const mid = sorted[Math.floor((sorted.length - 1) / 2)]
    rawsync.push({ ...mid, rounds: all.length, writesPerSecMin: sorted[0].writesPerSec, writesPerSecMax: sorted.at(-1).writesPerSec })
  }
}
const raw = (mode, size) => rawsync.find((r) => r.mode === mode && r.bytesPerWrite === size)

const results = []
for (const c of cases) {
  for (const e of c.engines) {
    const rows = slices.get(`${e.name}|${c.recordBytes}|${c.inflight}`)
    if (!rows) continue
    const sorted = [...rows].sort((a, b) => a.opsPerSec - b.opsPerSec)
    const mid = sorted[Math.floor((sorted.length - 1) / 2)]
    const row = {
      engine: e.name,
      family: e.family,
      label: e.label,
      recordBytes: c.recordBytes,
      inflight: c.inflight,
      ...mid,
      opsPerSec: median(rows.map((r) => r.opsPerSec)),
      opsPerSecMin: sorted[0].opsPerSec,
      opsPerSecMax: sorted.at(-1).opsPerSec,
      rounds: rows,
    }
    row.MBps = (row.opsPerSec * c.recordBytes) / 1e6
    // The device's limit for this shape: a raw loop writing one full group (every caller's
    // record) per fdatasync on a preallocated file.
    const dev = raw('prealloc', c.recordBytes * c.inflight)
    if (dev) {
      row.deviceOpsPerSec = dev.writesPerSec * c.inflight
      row.deviceFraction = row.opsPerSec / row.deviceOpsPerSec
    }
    results.push(row)
  }
}

// ---- targets (issue 2, 100 B records unless said) ----------------------------------------------

const find = (engine, recordBytes, inflight) =>
  results.find((r) => r.engine === engine && r.recordBytes === recordBytes && r.inflight === inflight)
const best = (family, recordBytes, inflight) =>
  results
    .filter((r) => r.family === family && r.recordBytes === recordBytes && r.inflight === inflight)
    .sort((a, b) => b.opsPerSec - a.opsPerSec)[0]

const targets = []
function target(name, backend, value, reference, refLabel, required, unit, higherIsBetter = true) {
  let verdict = 'n/a'
  let r = null
  if (Number.isFinite(value) && Number.isFinite(reference) && reference > 0) {
    r = value / reference
    verdict = (higherIsBetter ? r >= required : r <= required) ? 'PASS' : 'MISS'
  }
  targets.push({ target: name, backend, value, reference, refLabel, ratio: r, required, unit, higherIsBetter, verdict })
}
for (const b of backends) {
  const u = (bytesPer, n) => find(`uringdb/${b}`, bytesPer, n)
  const at1024 = u(100, 1024)
  target('1024 in flight ≥ 1,000,000/s', b, at1024?.opsPerSec, 1_000_000, null, 1, 'ops/s')
  const lmdb1024 = best('lmdb', 100, 1024)
  target('1024 in flight ≥ 3× lmdb-js', b, at1024?.opsPerSec, lmdb1024?.opsPerSec, lmdb1024?.engine, 3, 'ops/s')
  const node1024 = best('node', 100, 1024)
  target('1024 in flight ≥ 3× pure Node', b, at1024?.opsPerSec, node1024?.opsPerSec, node1024?.engine, 3, 'ops/s')
  const lmdb64 = best('lmdb', 100, 64)
  target('64 in flight ≥ 3× lmdb-js', b, u(100, 64)?.opsPerSec, lmdb64?.opsPerSec, lmdb64?.engine, 3, 'ops/s')
  const sqlite = find('better-sqlite3', 100, 1)
  target('1 writer ≥ 1.3× better-sqlite3', b, u(100, 1)?.opsPerSec, sqlite?.opsPerSec, 'better-sqlite3', 1.3, 'ops/s')
  target('1 writer p50 ≤ raw append+fdatasync p50', b, u(100, 1)?.p50Us, raw('append', 100)?.p50Us, 'rawsync append 100 B', 1, 'µs', false)
  target('1 MiB ≥ 80% of raw bandwidth', b, u(MiB, 1)?.MBps, raw('prealloc', MiB)?.MBps, 'rawsync prealloc 1 MiB', 0.8, 'MB/s')
  // Context, not targets: the same bandwidth against the raw modes that also pay for allocation
  // (the log zero-fills its next segment in the background while it writes, and rawsync's
  // prealloc loop overwrites a region filled before its timer started).
  target('(info) 1 MiB vs raw append', b, u(MiB, 1)?.MBps, raw('append', MiB)?.MBps, 'rawsync append 1 MiB', 0.8, 'MB/s')
  target('(info) 1 MiB vs raw fallocate', b, u(MiB, 1)?.MBps, raw('fallocate', MiB)?.MBps, 'rawsync fallocate 1 MiB', 0.8, 'MB/s')
}
for (const t of targets) if (t.target.startsWith('(info)') && t.verdict !== 'n/a') t.verdict = 'info'

// ---- report ---------------------------------------------------------------------------------------

/** The slowest–fastest round, as a compact range ("" with one round). */
function spread(min, max) {
  if (rounds < 2 || !Number.isFinite(min)) return ''
  const k = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(x >= 1e5 ? 0 : 1)}k` : x.toFixed(0))
  return `${k(min)}–${k(max)}`
}

const out = []
const m = machine
out.push(`# uringdb durable-append workload${args.tiny ? ' (tiny mode: numbers are not meaningful)' : ''}`)
out.push('')
if (runnable.some((e) => e.family === 'uringdb') && machine.uringdb.build !== 'release') {
  out.push(`**Warning: uringdb is a ${machine.uringdb.build} build, not a release build (\`npm run build\`): its numbers are not meaningful.**`)
  out.push('')
}
out.push(
  `${new Date().toISOString()} · ${durationMs / 1000} s per case in ${rounds} round(s) of ${sliceMs / 1000} s, each after a ` +
    `${warmupMs / 1000} s warm-up on a fresh instance · closed loop (N callers each awaiting its append, then issuing the next) · ` +
    `numbers are the median round, "spread" the slowest–fastest round`,
)
out.push('')
out.push('## Machine')
out.push('')
out.push(
  markdownTable(
    ['fact', 'value'],
    [
      ['kernel', `${m.kernel} (${m.kernelVersion})`],
      ['CPU', `${m.cpu} × ${m.cores} cores, ${m.memoryGiB} GiB`],
      ['load average (1/5/15 min) at start → end', `${m.loadAverage.join(' / ')} → ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')}`],
      ['node', m.node],
      ['data dir', m.dataDir],
      ['file system', m.fs ? `${m.fs.type} on ${m.fs.source} (${m.fs.mountPoint}; ${m.fs.options})` : 'unknown'],
      ['device', m.device ? `${m.device.name}${m.device.model ? ' ' + m.device.model : ''}, rotational ${m.device.rotational}, write cache ${m.device.writeCache ?? '?'}, fua ${m.device.fua ?? '?'}` : 'unknown'],
      ['kernel.io_uring_disabled', m.ioUringDisabled ?? 'absent'],
      ['closed-loop ceiling (no-op, 1024 callers)', `${int(m.harnessOpsPerSec)} ops/s`],
      ['uringdb', `${m.uringdb.version}, ${m.uringdb.build} build (${m.uringdb.entry}); auto → ${m.uringdb.autoBackend ?? 'n/a'}${m.uringdb.fallbackReason ? ` (fallback: ${m.uringdb.fallbackReason})` : ''}`],
      ['uringdb features', (m.uringdb.features ?? []).join(', ') || 'n/a'],
    ],
    ['l', 'l'],
  ),
)
out.push('')

if (rawsync.length > 0) {
  out.push('## The device: write + fdatasync loop in Rust (rawsync)')
  out.push('')
  out.push(
    markdownTable(
      ['mode', 'bytes/write', 'writes/s', 'spread', '100 B records/s', 'MB/s', 'p50', 'p99'],
      rawsync.map((r) => [
        r.mode,
        bytes(r.bytesPerWrite),
        int(r.writesPerSec),
        spread(r.writesPerSecMin, r.writesPerSecMax),
        int((r.writesPerSec * r.bytesPerWrite) / 100),
        fixed(r.MBps),
        us(r.p50Us),
        us(r.p99Us),
      ]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  )
  out.push('')
}

out.push('## Durable appends')
out.push('')
out.push(
  'ops/s: acknowledged durable appends per second. MB/s: payload bytes only. rec/group and fsync/s: from the engine\'s own counters ' +
    '(uringdb stats(), the pure-Node log). device: this throughput as a fraction of rawsync on a preallocated file writing one full ' +
    'group (record size × in flight) per fdatasync.',
)
out.push('')
const shapeKeys = [...SHAPES, ...BIG_SHAPES]
const rows = []
for (const s of shapeKeys) {
  for (const r of results.filter((x) => x.recordBytes === s.recordBytes && x.inflight === s.inflight)) {
    rows.push([
      r.engine,
      bytes(r.recordBytes),
      r.inflight,
      int(r.opsPerSec),
      spread(r.opsPerSecMin, r.opsPerSecMax),
      fixed(r.MBps),
      us(r.p50Us),
      us(r.p99Us),
      us(r.p999Us),
      r.recordsPerGroup != null ? fixed(r.recordsPerGroup) : '',
      r.fsyncsPerSec != null ? int(r.fsyncsPerSec) : '',
      pct(r.deviceFraction),
    ])
  }
}
out.push(
  markdownTable(['engine', 'record', 'in flight', 'ops/s', 'spread', 'MB/s', 'p50', 'p99', 'p99.9', 'rec/group', 'fsync/s', 'device'], rows, [
    'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r',
  ]),
)
out.push('')

out.push('## Targets (issue 2; 100 B records, same run)')
out.push('')
const fmtValue = (t, v) =>
  !Number.isFinite(v) ? 'not measured' : t.unit === 'µs' ? us(v) : t.unit === 'MB/s' ? `${fixed(v)} MB/s` : `${int(v)}/s`
out.push(
  markdownTable(
    ['target', 'backend', 'uringdb', 'reference', 'ratio', 'needed', 'verdict'],
    targets.map((t) => [
      t.target,
      t.backend,
      fmtValue(t, t.value),
      t.refLabel ? `${fmtValue(t, t.reference)} (${t.refLabel})` : fmtValue(t, t.reference),
      ratio(t.ratio),
      `${t.higherIsBetter ? '≥' : '≤'} ${t.required}×`,
      t.verdict,
    ]),
    ['l', 'l', 'r', 'r', 'r', 'r', 'l'],
  ),
)
out.push('')
if (skipped.length > 0) {
  out.push('Skipped: ' + skipped.map((s) => `${s.engine} (${s.reason})`).join('; '))
  out.push('')
}
if (failures.length > 0) {
  out.push('## Failures')
  out.push('')
  for (const f of failures) out.push(`- ${f.engine}${f.shape ? ` ${f.shape}` : ''}: ${f.error.split('\n')[0]}`)
  out.push('')
}
process.stdout.write(out.join('\n') + '\n')

const report = {
  when: new Date().toISOString(),
  mode: args.tiny ? 'tiny' : 'full',
  durationMs,
  rounds,
  sliceMs,
  warmupMs,
  machine,
  engines: runnable.map((e) => ({ name: e.name, label: e.label, durability: e.durability })),
  rawsync,
  results,
  targets,
  skipped,
  failures,
}
const jsonPath = args.json ?? path.join(benchDir, 'results', `${report.when.replace(/[:.]/g, '-')}${args.tiny ? '-tiny' : ''}.json`)
fs.mkdirSync(path.dirname(jsonPath), { recursive: true })
fs.writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n')
log(`results written to ${jsonPath}`)
// Exit explicitly: an engine abandoned after a stall may still hold the event loop open.
process.exit(failures.length > 0 ? 1 : 0)
