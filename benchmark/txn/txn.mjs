#!/usr/bin/env node
// `npm start`: durable two-phase "transactions" on uringdb's key-value Db, side by side with
// lmdb-js, classic-level and better-sqlite3 doing the same work in their durable modes.
//
// 256 concurrent transactions for 10 s per engine. Each one: a durable batch preparing 3
// branches (tx/<id>/branch/<n> = JSON "prepared"), a read of each branch, a durable batch
// marking them "committed" and writing tx/<id>/state (txn/child.mjs). Each engine runs
// in a child process of its own, so the bytes it wrote to disk (/proc/self/io) are its own.
//
//   node benchmark/txn/txn.mjs [--duration=SECONDS] [--concurrency=N] [--branches=N] [--tiny]
//                              [--only=uringdb,uringdb+2pc,uringdb+occ,lmdb,lmdb+txn,classic-level,better-sqlite3,rocksdb]
//                              [--dir=DATA_ROOT] [--backend=auto|io_uring|portable] [--no-install]
//
// uringdb's database lives in <DATA_ROOT>/txn (default: uringdb-data/ at the repository
// root) and stays there after the run; the next run reopens and checks it, then starts
// afresh. The peers run in <DATA_ROOT>/txn-peers/<engine>, removed afterwards.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { parseArgs } from '../lib/args.mjs'
import { runChild } from '../lib/child.mjs'
import { benchDir, ensureDeps } from '../lib/ensure-deps.mjs'
import { fixed, int, markdownTable, ratio, us } from '../lib/format.mjs'
import { buildFingerprint } from '../lib/build-fingerprint.mjs'
import { buildProfile, distEntry, repoRoot, uringdbVersion } from '../lib/uringdb.mjs'
import { DEFAULT_TXN_ENGINES as DEFAULT_ENGINES, TXN_ENGINES as ENGINES, txnEngine, txnMode } from './engines.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'child.mjs')

const args = parseArgs(process.argv.slice(2), {
  tiny: { type: 'boolean', default: false },
  duration: { type: 'number' },
  concurrency: { type: 'number' },
  branches: { type: 'number', default: 3 },
  only: { type: 'string', default: DEFAULT_ENGINES.join(',') },
  dir: { type: 'string', default: path.join(repoRoot, 'uringdb-data') },
  backend: { type: 'string', default: 'auto' },
  json: { type: 'string' },
  'no-install': { type: 'boolean', default: false },
})

const durationS = args.duration ?? (args.tiny ? 0.5 : 10)
const concurrency = Math.floor(args.concurrency ?? (args.tiny ? 32 : 256))
const branches = Math.floor(args.branches)
if (!['auto', 'io_uring', 'portable'].includes(args.backend)) throw new Error(`--backend must be auto, io_uring or portable, not ${args.backend}`)
const only = args.only.split(',').map((s) => s.trim()).filter(Boolean)
for (const name of only) if (!ENGINES.includes(name)) throw new Error(`--only: unknown engine ${name} (known: ${ENGINES.join(', ')})`)
// The engine's registry name: uringdb with the chosen backend.
const registryName = (name) => (name.startsWith('uringdb') && args.backend !== 'auto' ? `${name}/${args.backend}` : name)

const dataRoot = path.resolve(args.dir)
const uringdbDir = path.join(dataRoot, 'txn')
const peersDir = path.join(dataRoot, 'txn-peers')
const tty = Boolean(process.stderr.isTTY)
const say = (line = '') => process.stdout.write(line + '\n')
const note = (line) => {
  clearBar()
  process.stderr.write(line + '\n')
}

if (only.some((e) => e !== 'uringdb') && !args['no-install']) ensureDeps(note)

// ---- progress -------------------------------------------------------------------------------
// TTY: one bar on stderr redrawn in place; otherwise a plain line every 2 s per engine.

const BAR_CELLS = 30
let barShown = false
function clearBar() {
  if (barShown) process.stderr.write('\r\x1b[2K')
  barShown = false
}
let lastPlainAt = -Infinity
function progress(index, count, name, elapsedS, tx) {
  const overall = Math.min(1, (index + Math.min(1, elapsedS / durationS)) / count)
  const text = `${name} ${fixed(Math.min(elapsedS, durationS))} / ${durationS} s  ${int(tx)} tx  ${int(tx / Math.max(elapsedS, 1e-3))} tx/s`
  if (tty) {
    const full = Math.round(overall * BAR_CELLS)
    const bar = '\x1b[32m' + '█'.repeat(full) + '\x1b[2m' + '░'.repeat(BAR_CELLS - full) + '\x1b[0m'
    process.stderr.write(`\r\x1b[2K${bar} ${String(Math.round(overall * 100)).padStart(3)}%  [${index + 1}/${count}] ${text}`)
    barShown = true
  } else if (elapsedS - lastPlainAt >= 2) {
    lastPlainAt = elapsedS
    process.stderr.write(`progress ${String(Math.round(overall * 100)).padStart(3)}%  [${index + 1}/${count}] ${text}\n`)
  }
}

function reportPrevious(name, p) {
  note(
    `${name}: reopened the previous run's database in ${fixed(p.reopenMs, 0)} ms` +
      (p.recovery ? ` (replayed ${int(p.recovery.replayedRecords)} log records, ${int(p.recovery.tables)} tables)` : '') +
      `: ${int(p.committed)} committed transactions, the last one ` +
      `${p.lastCommittedFound ? 'found committed ✓' : p.lastCommittedFound === false ? 'MISSING ✗' : 'not recorded'}; starting afresh`,
  )
}

// ---- run ------------------------------------------------------------------------------------

process.on('exit', () => fs.rmSync(peersDir, { recursive: true, force: true }))
process.on('SIGINT', () => process.exit(130))
process.on('SIGTERM', () => process.exit(143))

say('# uringdb transactions: durable two-phase commits, engine by engine')
say()
say(`data directory: ${uringdbDir}  (peers: ${peersDir}, removed afterwards)`)
say(
  `${concurrency} concurrent transactions × ${durationS} s per engine; each: a durable batch preparing ${branches} branches, ` +
    `a read of each, a durable batch committing them and writing the transaction's state.`,
)
say(`uringdb ${uringdbVersion()} (${buildProfile()} build) from ${distEntry}; ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores; node ${process.version}`)
if (args.tiny) say('TINY MODE: numbers meaningless.')
say()

const fingerprint = buildFingerprint()
const rows = []
const failures = []
const skipped = []
const names = only.map(registryName)
for (let i = 0; i < names.length; i++) {
  const name = names[i]
  const engine = txnEngine(name)
  try {
    await engine.available()
  } catch (err) {
    const reason = err.message.split('\n')[0]
    if (engine.family === 'uringdb') failures.push({ engine: name, error: reason })
    else skipped.push({ engine: name, reason })
    note(`skip ${name}: ${reason}`)
    continue
  }
  const mode = txnMode(name)
  // The 2pc variant runs in a directory of its own, removed afterwards (like a peer's).
  const persistent = engine.family === 'uringdb' && mode === 'batches'
  const dir = persistent ? uringdbDir : path.join(peersDir, name.replace(/[^a-z0-9]+/gi, '-'))
  if (!persistent) fs.rmSync(dir, { recursive: true, force: true })
  lastPlainAt = -Infinity
  progress(i, names.length, name, 0, 0)
  try {
    const out = await runChild(
      CHILD,
      { engine: name, dir, persistent, verify: true, durationMs: durationS * 1000, concurrency, branches, mode },
      {
        timeoutMs: durationS * 1000 + 180_000,
        onMessage: (m) => {
          if (m.type === 'progress') progress(i, names.length, name, m.elapsedS, m.tx)
          else if (m.type === 'previous') reportPrevious(name, m.previousRun)
        },
      },
    )
    progress(i, names.length, name, out.seconds, out.transactions)
    clearBar()
    rows.push(out)
    if (out.previousRun?.lastCommittedFound === false) {
      failures.push({ engine: name, error: "the previous run's last committed transaction is missing after reopen" })
    }
    const v = out.verify
    if (v && !v.ok) failures.push({ engine: name, error: `read-back check failed: ${JSON.stringify(v)}` })
    note(
      `${name}: ${int(out.txPerSec)} tx/s, p50 ${us(out.p50Us)}, p99 ${us(out.p99Us)}` +
        (v ? `; reopened and scanned ${int(v.keys)} keys: ${v.ok ? `all ${int(v.acknowledged)} acknowledged transactions committed ✓` : 'MISMATCH ✗'}` : ''),
    )
  } catch (err) {
    clearBar()
    if (err.code === 'ERR_URINGDB_IO_URING_UNAVAILABLE') {
      skipped.push({ engine: name, reason: err.message })
      note(`${name}: io_uring refused here, skipping: ${err.message}`)
    } else {
      failures.push({ engine: name, error: err.childStack ?? err.message })
      note(`${name}: FAILED: ${err.childStack ?? err.message}`)
    }
  } finally {
    if (!persistent) fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (buildFingerprint() !== fingerprint) {
  failures.push({ engine: 'uringdb', error: 'the uringdb build was replaced during the run: run again' })
}

// ---- report ---------------------------------------------------------------------------------

const peers = rows.filter((r) => txnEngine(r.engine).family !== 'uringdb')
const best = [...peers].sort((a, b) => b.txPerSec - a.txPerSec)[0]
say()
say('## Results')
say()
if (rows.length > 0) {
  say(
    markdownTable(
      ['engine', 'transactions/s', 'p50', 'p99', 'disk bytes / tx', 'CPU µs / tx', `vs best peer${best ? ` (${best.engine})` : ''}`],
      rows.map((r) => [
        r.engine + (r.backend ? ` (${r.backend})` : ''),
        int(r.txPerSec),
        us(r.p50Us),
        us(r.p99Us),
        int(r.writeBytesPerTx),
        int(r.cpuUsPerTx),
        best ? ratio(r.txPerSec / best.txPerSec) : 'n/a',
      ]),
    ),
  )
  say()
  say('Durable mode of each engine:')
  for (const r of rows) say(`- ${r.engine}: ${r.label} — ${r.durability}`)
  say()
  say(
    `Latency: from the start of a transaction (its prepare batch) to its durable commit. Disk bytes: ` +
      `/proc/self/io write_bytes of the engine's process over the run and its close, per transaction. ` +
      `CPU: the engine process's user + system time (all threads) over the same span, per transaction. ` +
      `uringdb+2pc: db.prepare(txid, branches + state) then db.commitPrepared(txid) instead of two batches. ` +
      `uringdb+occ: one db.transaction reading the branches and writing them and the state (read 3, write 4; one durable record); ` +
      `lmdb+txn: the same in lmdb-js's db.transaction(() => { get; put }) (one serialized, synced write transaction).`,
  )
  say()
}
if (skipped.length > 0) for (const s of skipped) say(`skipped ${s.engine}: ${s.reason}`)
if (failures.length > 0) {
  say('## Failures')
  say()
  for (const f of failures) say(`- ${f.engine}: ${f.error.split('\n').slice(0, 6).join(' | ')}`)
  say()
}
const u = rows.find((r) => txnEngine(r.engine).family === 'uringdb')
if (u) say(`uringdb's database stays in ${u.dir} (the next run reopens and checks it, then starts afresh).`)

const jsonFile = args.json
  ? path.resolve(args.json)
  : path.join(benchDir, 'results', `txn-${new Date().toISOString().replace(/[:.]/g, '-')}${args.tiny ? '-tiny' : ''}.json`)
fs.mkdirSync(path.dirname(jsonFile), { recursive: true })
fs.writeFileSync(jsonFile, JSON.stringify({ benchmark: 'txn', args, durationS, concurrency, branches, rows, skipped, failures }, null, 2))
say(`Results: ${path.relative(process.cwd(), jsonFile) || jsonFile}`)
if (failures.length > 0) process.exitCode = 1
