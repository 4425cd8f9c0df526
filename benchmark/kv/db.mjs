#!/usr/bin/env node
// The key-value peer benchmark: uringdb's Db (both I/O backends) against lmdb-js,
// classic-level (LevelDB), rocksdb (npm binding) and better-sqlite3, every engine in its
// durable mode, all in one run on one machine so that every ratio compares numbers measured
// minutes apart. Each (engine, case group) runs in a child process of its own
// (kv/child.mjs) so that its /proc/self/io counters, memory and background threads are
// its own. See benchmark/README.md ("Key-value peers") for what each number means.
//
//   node benchmark/kv/db.mjs              full run (both value sizes, ~15-20 minutes)
//   node benchmark/kv/db.mjs --tiny       CI: every engine, case and code path, < 90 s
//   flags: --only=uringdb,lmdb,... (engines or families) --cases=put,load,get,scan,amp
//          --value=100,4096 --n=KEYS --duration=SECONDS (per measured case) --batch=1000
//          --passes=3 (overwrite passes) --dir=DIR (parent of the temp dirs)
//          --json=FILE --no-install
//
// Output: markdown on stdout (progress on stderr), JSON in benchmark/results/db-<time>.json.
// Exit status 1 if any engine threw (an io_uring backend refused by the kernel is skipped).

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { parseArgs } from '../lib/args.mjs'
import { buildRawsync, runRawsync } from '../log/rawsync.mjs'
import { benchDir, ensureDeps } from '../lib/ensure-deps.mjs'
import { bytes, fixed, int, markdownTable, ratio, us } from '../lib/format.mjs'
import { KEY_BYTES } from './data.mjs'
import { KV_ENGINE_NAMES, kvEngine } from './engines/index.mjs'
import { machineFacts } from '../lib/machine.mjs'
import { runChild } from '../lib/child.mjs'
import { buildFingerprint } from '../lib/build-fingerprint.mjs'
import { buildProfile, distEntry, uringdbVersion } from '../lib/uringdb.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'child.mjs')
const DEFAULT_ENGINES = ['uringdb/io_uring', 'uringdb/portable', 'lmdb', 'lmdb-flushed', 'classic-level', 'rocksdb', 'better-sqlite3']
const ALL_CASES = ['put', 'load', 'get', 'scan', 'amp']
const FAMILY_OF = { 'uringdb/io_uring': 'uringdb', 'uringdb/portable': 'uringdb', 'lmdb-flushed': 'lmdb' }
const familyOf = (name) => FAMILY_OF[name] ?? name

const args = parseArgs(process.argv.slice(2), {
  tiny: { type: 'boolean', default: false },
  only: { type: 'string', default: DEFAULT_ENGINES.join(',') },
  cases: { type: 'string', default: ALL_CASES.join(',') },
  value: { type: 'string', default: '100,4096' },
  n: { type: 'number' },
  duration: { type: 'number' },
  batch: { type: 'number', default: 1000 },
  passes: { type: 'number', default: 3 },
  dir: { type: 'string', default: os.tmpdir() },
  json: { type: 'string' },
  'no-install': { type: 'boolean', default: false },
})

const log = (msg) => process.stderr.write(msg + '\n')
const say = (line = '') => process.stdout.write(line + '\n')

// ---- the plan -----------------------------------------------------------------------------

const engineNames = []
for (const item of args.only.split(',').map((s) => s.trim()).filter(Boolean)) {
  const matches = DEFAULT_ENGINES.filter((e) => e === item || familyOf(e) === item)
  if (matches.length === 0) {
    throw new Error(`--only: unknown engine ${item} (known: ${DEFAULT_ENGINES.join(', ')}, or a family: uringdb, lmdb)`)
  }
  for (const m of matches) if (!engineNames.includes(m)) engineNames.push(m)
}
const cases = new Set(args.cases.split(',').map((s) => s.trim()).filter(Boolean))
for (const c of cases) if (!ALL_CASES.includes(c)) throw new Error(`--cases: unknown case ${c} (known: ${ALL_CASES.join(', ')})`)
const valueSizes = args.value.split(/[,|]/).map((s) => Number(s.trim()))
for (const v of valueSizes) if (!Number.isInteger(v) || v < 1) throw new Error(`--value: ${v} is not a size in bytes`)

const durationMs = (args.duration ?? (args.tiny ? 0.25 : 3)) * 1000
const warmupMs = args.tiny ? 50 : 1000
const batch = Math.floor(args.batch)
const passes = Math.floor(args.passes)
const INFLIGHTS = [1, 64, 1024]
/** Keys loaded per value size: 1M (20K tiny) of 100 B, 200K (5K tiny) of 4 KiB; --n for all. */
const keysFor = (valueBytes) => Math.floor(args.n ?? (valueBytes >= 4096 ? (args.tiny ? 5_000 : 200_000) : args.tiny ? 20_000 : 1_000_000))
// The flushed lmdb variant differs from the other only in when a single put is acknowledged.
const dataEngines = engineNames.filter((e) => e !== 'lmdb-flushed')
const dataCases = ['load', 'get', 'scan', 'amp'].filter((c) => cases.has(c))
const SEED = 0x75d6

if (engineNames.some((e) => familyOf(e) !== 'uringdb') && !args['no-install']) ensureDeps(log)

// ---- engines ------------------------------------------------------------------------------

const skipped = [] // { engine, reason }
const failures = [] // { engine, group, error }
const runnable = []
for (const name of engineNames) {
  const e = kvEngine(name)
  try {
    await e.available()
    runnable.push(name)
  } catch (err) {
    const reason = err.message.split('\n')[0]
    // uringdb itself must load: a benchmark of uringdb that silently skips it is broken.
    if (familyOf(name) === 'uringdb') failures.push({ engine: name, group: null, error: reason })
    else skipped.push({ engine: name, reason })
    log(`skip ${name}: ${reason}`)
  }
}

const runDir = fs.mkdtempSync(path.join(args.dir, 'uringdb-db-bench-'))
const cleanup = () => fs.rmSync(runDir, { recursive: true, force: true })
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))
process.on('SIGTERM', () => process.exit(143))

const machine = machineFacts(runDir)
machine.uringdb = { version: uringdbVersion(), build: buildProfile(), entry: distEntry, fingerprint: buildFingerprint() }
if (machine.uringdb.build === 'debug') log('warning: uringdb is a debug build: its numbers say nothing about its speed')

// ---- run ----------------------------------------------------------------------------------

const results = {} // results[valueBytes] = { put: {engine: levels}, data: {engine: out}, floor }

// The device floor for one writer: a plain loop of one write of a put's size and one
// fdatasync (crates/uring/examples/rawsync), with the file growing (`append`) and overwritten
// in place (`prealloc`, a recycled or zero-filled log's best case). An engine that makes each
// acknowledged put durable before the next one starts cannot beat the faster of the two, so
// the 1-writer target is only reachable where 1.3× better-sqlite3 is below it.
let rawsyncBinary
function deviceFloor(valueBytes) {
  if (rawsyncBinary === null) return null
  const dir = fs.mkdtempSync(path.join(runDir, 'rawsync-'))
  try {
    rawsyncBinary ??= buildRawsync(log)
    const lines = runRawsync(rawsyncBinary, {
      dir,
      sizes: [KEY_BYTES + valueBytes + 16],
      modes: ['append', 'prealloc'],
      durationMs,
      warmupMs: args.tiny ? 20 : 100,
      regionBytes: args.tiny ? 1 << 20 : undefined,
    })
    return Object.fromEntries(lines.map((l) => [l.mode, l]))
  } catch (err) {
    failures.push({ engine: 'rawsync', group: 'device floor', error: err.message })
    log(`rawsync failed: ${err.message}`)
    rawsyncBinary = null
    return null
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
const refused = new Set()
const startedAt = Date.now()

async function group(name, spec) {
  if (refused.has(name)) return null
  const timeoutMs =
    spec.group === 'put'
      ? INFLIGHTS.length * (durationMs + warmupMs) + (args.tiny ? 30_000 : 120_000)
      : args.tiny ? 60_000 : 60 * 60_000
  try {
    return await runChild(CHILD, { ...spec, engine: name, parentDir: runDir, tiny: args.tiny, seed: SEED }, { timeoutMs })
  } catch (err) {
    if (err.code === 'ERR_URINGDB_IO_URING_UNAVAILABLE') {
      refused.add(name)
      skipped.push({ engine: name, reason: err.message })
      log(`${name}: io_uring refused here, skipping: ${err.message}`)
    } else {
      failures.push({ engine: name, group: `${spec.group} ${spec.valueBytes} B`, error: err.childStack ?? err.message })
      log(`${name} ${spec.group} ${spec.valueBytes} B: FAILED: ${err.childStack ?? err.message}`)
    }
    return null
  }
}

for (const valueBytes of valueSizes) {
  const r = (results[valueBytes] = { n: keysFor(valueBytes), put: {}, data: {} })
  if (cases.has('put')) {
    for (const name of runnable) {
      log(`[${fixed((Date.now() - startedAt) / 1000, 0)} s] ${name}: durable puts, ${bytes(valueBytes)} values`)
      const out = await group(name, { group: 'put', valueBytes, inflights: INFLIGHTS, durationMs, warmupMs })
      if (out) r.put[name] = out.levels
    }
    r.floor = deviceFloor(valueBytes)
  }
  if (dataCases.length > 0) {
    for (const name of runnable.filter((e) => dataEngines.includes(e))) {
      log(`[${fixed((Date.now() - startedAt) / 1000, 0)} s] ${name}: ${dataCases.join(', ')}, ${int(r.n)} keys of ${bytes(valueBytes)}`)
      const out = await group(name, {
        group: 'data',
        valueBytes,
        n: r.n,
        batch,
        overwritePasses: passes,
        cases: dataCases,
        durationMs,
        warmupMs,
      })
      if (out) r.data[name] = out
    }
  }
}
const wallSeconds = (Date.now() - startedAt) / 1000
const buildChanged = buildFingerprint() !== machine.uringdb.fingerprint
if (buildChanged) failures.push({ engine: 'uringdb', group: null, error: 'the uringdb build was replaced during the run: its results mix two builds; run again' })

// ---- report -------------------------------------------------------------------------------

const isUringdb = (name) => familyOf(name) === 'uringdb'
const uringdbNames = runnable.filter(isUringdb)
const targets = []

/**
 * One target row. `value` and `reference` are numbers (or undefined when not measured);
 * the verdict is PASS/MISS only when both are, otherwise n/a (never PASS).
 */
function target({ name, engine, valueBytes, value, reference, refLabel, required, higherIsBetter = true, absolute = false, info = false, unit = 'rate' }) {
  let r = null
  let verdict = 'n/a'
  if (Number.isFinite(value) && (absolute || (Number.isFinite(reference) && reference > 0))) {
    r = absolute ? value : value / reference
    verdict = (higherIsBetter ? r >= required : r <= required) ? 'PASS' : 'MISS'
  }
  targets.push({ target: name, engine, valueBytes, value, reference: absolute ? null : reference, refLabel, ratio: r, required, higherIsBetter, absolute, info, unit, verdict })
}

/** The best peer (not uringdb) by `metric` among `rows` ({engine, value}). */
function bestPeer(rows, higherIsBetter = true) {
  const peers = rows.filter((x) => !isUringdb(x.engine) && Number.isFinite(x.value))
  peers.sort((a, b) => (higherIsBetter ? b.value - a.value : a.value - b.value))
  return peers[0] ?? null
}

const mb = (n) => (Number.isFinite(n) ? `${(n / 1e6).toFixed(1)} MB` : 'n/a')
const vsLabel = (r, best) => (best && Number.isFinite(r) ? ratio(r / best.value) : 'n/a')

say('# uringdb key-value benchmark: durable engines side by side')
say()
say(
  `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.kernel}; node ${machine.node}; ` +
    `data dir ${machine.dataDir} on ${machine.fs?.type ?? '?'} (${machine.fs?.source ?? '?'}); ` +
    `io_uring_disabled=${machine.ioUringDisabled ?? 'n/a'}; load ${machine.loadAverage.join(' ')}`,
)
say(`uringdb ${machine.uringdb.version} (${machine.uringdb.build} build) from ${machine.uringdb.entry}`)
say(
  `${args.tiny ? 'TINY MODE (numbers meaningless). ' : ''}${fixed(durationMs / 1000, 2)} s per measured case after ` +
    `${fixed(warmupMs / 1000, 2)} s warm-up; random 16-byte keys; incompressible values; batches of ${batch}; ` +
    `wall time ${fixed(wallSeconds, 0)} s.`,
)
say()

for (const valueBytes of valueSizes) {
  const r = results[valueBytes]
  const vb = bytes(valueBytes)

  if (cases.has('put')) {
    say(`## Durable puts, ${vb} values (fresh random keys, closed loop)`)
    say()
    for (const inflight of INFLIGHTS) {
      const rows = []
      for (const [name, levels] of Object.entries(r.put)) {
        const l = levels.find((x) => x.inflight === inflight)
        if (l) rows.push({ engine: name, value: l.opsPerSec, l })
      }
      if (rows.length === 0) continue
      const best = bestPeer(rows)
      say(`### ${inflight} in flight${best ? ` (best peer: ${best.engine})` : ''}`)
      say()
      say(
        markdownTable(
          ['engine', 'puts/s', 'CPU µs/put', 'p50', 'p99', 'p99.9', 'disk B/put', 'vs best peer'],
          rows.map(({ engine, l }) => [engine, int(l.opsPerSec), Number.isFinite(l.cpuUsPerOp) ? fixed(l.cpuUsPerOp, 2) : 'n/a', us(l.p50Us), us(l.p99Us), us(l.p999Us), int(l.writeBytesPerOp), vsLabel(l.opsPerSec, best)]),
        ),
      )
      say()
      // Issue 10's targets: 1024 in flight ≥ 5× lmdb-js, 64 in flight ≥ 3× (here against
      // the best peer, which is lmdb-js in one of its two settings), one writer ≥ 1.3×
      // better-sqlite3 with synchronous=FULL.
      if (inflight > 1) {
        const required = inflight >= 1024 ? 5 : 3
        for (const u of uringdbNames) {
          const mine = rows.find((x) => x.engine === u)
          target({ name: `durable puts, ${inflight} in flight ≥ ${required}× best peer`, engine: u, valueBytes, value: mine?.value, reference: best?.value, refLabel: best?.engine, required })
        }
      } else {
        const sqlite = rows.find((x) => x.engine === 'better-sqlite3')
        const f = r.floor
        if (f) {
          const best = Math.max(f.append?.writesPerSec ?? 0, f.prealloc?.writesPerSec ?? 0)
          say(
            `Device floor (rawsync, one ${int(f.prealloc?.bytesPerWrite ?? f.append?.bytesPerWrite)} B write + fdatasync per put, no engine): ` +
              `${int(f.append?.writesPerSec)}/s growing the file, ${int(f.prealloc?.writesPerSec)}/s overwriting in place.` +
              (sqlite ? ` 1.3× better-sqlite3 is ${int(1.3 * sqlite.value)}/s, ${fixed((1.3 * sqlite.value) / best, 2)}× the faster floor.` : ''),
          )
          say()
        }
        for (const u of uringdbNames) {
          const mine = rows.find((x) => x.engine === u)
          target({ name: 'durable puts, 1 writer ≥ 1.3× better-sqlite3 (synchronous=FULL)', engine: u, valueBytes, value: mine?.value, reference: sqlite?.value, refLabel: 'better-sqlite3', required: 1.3 })
        }
      }
    }
    const single = Object.keys(r.put).filter((e) => kvEngine(e).singleWriter)
    if (single.length > 0) say(`(${single.join(', ')}: synchronous API, measured with 1 writer only.)\n`)
  }

  const data = Object.entries(r.data)
  if (data.length === 0) continue

  if (cases.has('load')) {
    const rows = data.filter(([, d]) => d.load).map(([engine, d]) => ({ engine, value: d.load.opsPerSec, d }))
    const best = bestPeer(rows)
    say(`## Bulk load: ${int(r.n)} keys of ${vb} in durable batches of ${batch}, one batch in flight`)
    say()
    say(
      markdownTable(
        ['engine', 'keys/s', 'MB/s (user)', 'seconds', 'vs best peer'],
        rows.map(({ engine, d }) => [engine, int(d.load.opsPerSec), fixed((d.load.opsPerSec * (16 + valueBytes)) / 1e6), fixed(d.load.seconds, 2), vsLabel(d.load.opsPerSec, best)]),
      ),
    )
    say()
    for (const u of uringdbNames) {
      target({ name: 'bulk load ≥ 1.5× best peer', engine: u, valueBytes, value: rows.find((x) => x.engine === u)?.value, reference: best?.value, refLabel: best?.engine, required: 1.5 })
    }
  }

  if (cases.has('get')) {
    // Process CPU (user + system, every thread: reader threads included) per get.
    const cpuCell = (g) => (g.cpuUsPerOp === undefined ? 'n/a' : fixed(g.cpuUsPerOp, 2))
    const asyncRows = data.filter(([, d]) => d.getAsync).map(([engine, d]) => ({ engine, value: d.getAsync.opsPerSec, g: d.getAsync }))
    const classic = asyncRows.find((x) => x.engine === 'classic-level')
    say(`## Random gets of loaded keys, ${vb} values, async path (${asyncRows[0]?.g.inflight ?? 64} in flight)`)
    say()
    say(
      markdownTable(
        ['engine', 'call', 'gets/s', 'CPU µs/get', 'p50', 'p99', 'vs classic-level'],
        asyncRows.map(({ engine, g }) => [engine, g.label, int(g.opsPerSec), cpuCell(g), us(g.p50Us), us(g.p99Us), vsLabel(g.opsPerSec, classic)]),
        ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
      ),
    )
    say()
    const syncRows = []
    for (const [engine, d] of data) {
      if (d.getSync) syncRows.push({ engine, g: d.getSync })
      if (d.getSyncInto) syncRows.push({ engine, g: d.getSyncInto })
    }
    const lmdbFast = syncRows.find((x) => x.engine === 'lmdb')
    say(`## Random gets of loaded keys, ${vb} values, sync path (one caller, tight loop)`)
    say()
    say(
      markdownTable(
        ['engine', 'call', 'gets/s', 'CPU µs/get', 'vs lmdb getBinaryFast'],
        syncRows.map(({ engine, g }) => [engine, g.label, int(g.opsPerSec), cpuCell(g), lmdbFast ? ratio(g.opsPerSec / lmdbFast.g.opsPerSec) : 'n/a']),
        ['l', 'l', 'r', 'r', 'r'],
      ),
    )
    say()
    say('(rocksdb: the npm binding has no sync get; better-sqlite3: no async get.)')
    say()
    for (const u of uringdbNames) {
      const into = data.find(([e]) => e === u)?.[1]
      target({ name: 'sync get (getSync into a buffer) ≥ lmdb getBinaryFast', engine: u, valueBytes, value: into?.getSyncInto?.opsPerSec, reference: lmdbFast?.g.opsPerSec, refLabel: 'lmdb getBinaryFast', required: 1 })
      target({ name: 'sync get (getSync returning a Buffer) ≥ lmdb getBinaryFast', engine: u, valueBytes, value: into?.getSync?.opsPerSec, reference: lmdbFast?.g.opsPerSec, refLabel: 'lmdb getBinaryFast', required: 1, info: true })
      target({ name: 'async get ≥ 2× classic-level', engine: u, valueBytes, value: into?.getAsync?.opsPerSec, reference: classic?.value, refLabel: 'classic-level get', required: 2 })
    }
  }

  if (cases.has('scan')) {
    for (const [field, what, lmdbLabel] of [
      ['scan', 'keys and values', 'lmdb getRange'],
      ['scanKeys', 'keys only', 'lmdb getKeys'],
    ]) {
      const rows = data.filter(([, d]) => d[field]).map(([engine, d]) => ({ engine, value: d[field].keysPerSec, s: d[field] }))
      if (rows.length === 0) continue
      const classic = rows.find((x) => x.engine === 'classic-level')
      const lmdb = rows.find((x) => x.engine === 'lmdb')
      say(`## Full ordered scan of ${int(r.n)} keys of ${vb} (${what})`)
      say()
      say(
        markdownTable(
          ['engine', 'call', 'keys/s', 'CPU µs/key', 'MB/s', 'vs classic-level', 'vs lmdb'],
          rows.map(({ engine, s }) => [engine, s.label, int(s.keysPerSec), Number.isFinite(s.cpuUsPerKey) ? fixed(s.cpuUsPerKey, 3) : 'n/a', s.MBps === undefined ? '' : fixed(s.MBps), vsLabel(s.keysPerSec, classic), vsLabel(s.keysPerSec, lmdb)]),
          ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
        ),
      )
      say()
      for (const u of uringdbNames) {
        const mine = rows.find((x) => x.engine === u)?.value
        target({ name: `ordered scan (${what}) ≥ 3× classic-level`, engine: u, valueBytes, value: mine, reference: classic?.value, refLabel: 'classic-level', required: 3 })
        target({ name: `ordered scan (${what}) ≥ 0.7× lmdb`, engine: u, valueBytes, value: mine, reference: lmdb?.value, refLabel: lmdbLabel, required: 0.7 })
      }
    }
  }

  if (cases.has('amp')) {
    const rows = data.filter(([, d]) => d.overwrite)
    const rocks = r.data.rocksdb
    say(`## Write amplification, ${vb} values: bytes written to disk / user bytes (keys + values)`)
    say()
    say(
      markdownTable(
        ['engine', 'load', `overwrite ${passes}×`, 'both', 'compactRange wrote', 'load vs rocksdb', 'overwrite vs rocksdb'],
        rows.map(([engine, d]) => [
          engine,
          fixed(d.load.writeAmp, 2),
          fixed(d.overwrite.writeAmp, 2),
          fixed((d.load.io?.writeBytes + d.overwrite.io?.writeBytes) / (d.userBytes * (1 + passes)), 2),
          d.compacted ? mb(d.compacted.io?.writeBytes) : 'n/a',
          rocks ? ratio(d.load.writeAmp / rocks.load.writeAmp) : 'n/a',
          rocks ? ratio(d.overwrite.writeAmp / rocks.overwrite.writeAmp) : 'n/a',
        ]),
      ),
    )
    say()
    say(
      `(/proc/self/io write_bytes of the engine's process from before open to after close; before closing, ` +
        `background flushes and compactions ran until the process wrote nothing for 1 s; load: ${int(r.n)} keys, overwrite: ${passes} passes over them in random order; both: the ` +
        `two phases together. uringdb is flushed before its close; LevelDB and RocksDB keep up to one write buffer ` +
        `(64 MiB) in their WAL at close and write it as a table at the next open, i.e. in the next phase. ` +
        `"compactRange wrote" is what the manual full compaction afterwards wrote.)`,
    )
    say()
    say(`## Space amplification, ${vb} values: disk usage (du) / live user bytes (${mb(r.n * (16 + valueBytes))})`)
    say()
    say(
      markdownTable(
        ['engine', 'after load', `after overwrite ${passes}×`, 'after compactRange', 'log share after overwrite', 'largest file after overwrite'],
        rows.map(([engine, d]) => [
          engine,
          fixed(d.load.spaceAmp, 2),
          fixed(d.overwrite.spaceAmp, 2),
          d.compacted ? fixed(d.compacted.spaceAmp, 2) : 'n/a',
          fixed(d.overwrite.logAllocatedBytes / d.userBytes, 2),
          d.overwrite.largestFiles[0] ? `${d.overwrite.largestFiles[0].file} (${mb(d.overwrite.largestFiles[0].allocatedBytes)})` : '',
        ]),
      ),
    )
    say(
      `("log share": the write-ahead log's files (uringdb's preallocated wal/ segments, LevelDB's and RocksDB's ` +
        `*.log, SQLite's -wal) / live user bytes, included in the amplification beside it.)`,
    )
    say()
    for (const u of uringdbNames) {
      const d = r.data[u]
      target({ name: 'write amplification (load) ≤ rocksdb', engine: u, valueBytes, value: d?.load?.writeAmp, reference: rocks?.load?.writeAmp, refLabel: 'rocksdb', required: 1, higherIsBetter: false, unit: 'factor' })
      target({ name: `write amplification (overwrite ${passes}×) ≤ rocksdb`, engine: u, valueBytes, value: d?.overwrite?.writeAmp, reference: rocks?.overwrite?.writeAmp, refLabel: 'rocksdb', required: 1, higherIsBetter: false, unit: 'factor' })
      target({ name: `space amplification after overwrite ${passes}× (flushed, settled) ≤ 1.2`, engine: u, valueBytes, value: d?.overwrite?.spaceAmp, required: 1.2, higherIsBetter: false, absolute: true, unit: 'factor' })
      target({ name: 'space amplification after load (flushed) ≤ 1.2', engine: u, valueBytes, value: d?.load?.spaceAmp, required: 1.2, higherIsBetter: false, absolute: true, info: true, unit: 'factor' })
      target({ name: 'space amplification after compactRange ≤ 1.2', engine: u, valueBytes, value: d?.compacted?.spaceAmp, required: 1.2, higherIsBetter: false, absolute: true, info: true, unit: 'factor' })
    }
  }
}

if (targets.length > 0) {
  say('## Targets')
  say()
  say(
    markdownTable(
      ['target', 'values', 'engine', 'uringdb', 'reference', 'ratio', 'verdict'],
      targets.map((t) => [
        t.target + (t.info ? ' (info)' : ''),
        bytes(t.valueBytes),
        t.engine,
        t.unit === 'factor' ? fixed(t.value, 2) : int(t.value),
        t.absolute ? '—' : `${t.refLabel ?? 'n/a'} ${t.unit === 'factor' ? fixed(t.reference, 2) : int(t.reference)}`,
        t.absolute ? fixed(t.ratio, 2) : ratio(t.ratio),
        t.verdict,
      ]),
      ['l', 'r', 'l', 'r', 'l', 'r', 'l'],
    ),
  )
  say()
  const counted = targets.filter((t) => !t.info)
  say(
    `${counted.filter((t) => t.verdict === 'PASS').length} PASS, ${counted.filter((t) => t.verdict === 'MISS').length} MISS, ` +
      `${counted.filter((t) => t.verdict === 'n/a').length} n/a (rows marked (info) are not counted).`,
  )
  say()
}

if (skipped.length > 0) {
  say('## Skipped')
  say()
  for (const s of skipped) say(`- ${s.engine}: ${s.reason}`)
  say()
}
if (failures.length > 0) {
  say('## Failures')
  say()
  for (const f of failures) say(`- ${f.engine}${f.group ? ` (${f.group})` : ''}: ${f.error.split('\n').slice(0, 6).join(' | ')}`)
  say()
}

const resultsDir = path.join(benchDir, 'results')
const jsonFile = args.json ? path.resolve(args.json) : path.join(resultsDir, `db-${new Date().toISOString().replace(/[:.]/g, '-')}${args.tiny ? '-tiny' : ''}.json`)
fs.mkdirSync(path.dirname(jsonFile), { recursive: true })
fs.writeFileSync(
  jsonFile,
  JSON.stringify(
    {
      benchmark: 'db',
      startedAt: new Date(startedAt).toISOString(),
      wallSeconds,
      args,
      machine: { ...machine, loadAverageEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      engines: Object.fromEntries(runnable.map((n) => [n, (({ label, durability }) => ({ label, durability }))(kvEngine(n))])),
      results,
      targets,
      skipped,
      failures,
    },
    null,
    2,
  ),
)
say(`Results: ${path.relative(process.cwd(), jsonFile) || jsonFile}`)
if (failures.length > 0) process.exitCode = 1
