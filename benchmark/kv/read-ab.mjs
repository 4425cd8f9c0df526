#!/usr/bin/env node
// A/B of the read paths between two builds of uringdb, beside lmdb-js and classic-level, in
// one run and interleaved: on a shared, noisy machine the throughput of one engine measured
// minutes after another's says little, so every round measures every contestant back to
// back, and the table reports medians over rounds. Each contestant runs in a child process
// of its own (one per round), on a database loaded once per engine family: both uringdb
// builds read the same directory (its format is the same; a build that cannot read it fails).
//
//   node benchmark/kv/read-ab.mjs <root A> <root B> [--n=1000000] [--rounds=5]
//        [--seconds=2] [--no-peers] [--tiny] [--dir=DIR]
//
// A root is a checkout whose package is built (dist/index.js and the .node binary). The
// cases: getSync(key, { target }) (into a caller's buffer), getSync(key) (a new Buffer),
// get(key) with 64 in flight; each reports gets/s and process CPU µs per get (user + system,
// every thread: reader threads included), median over rounds, with min–max of the rounds.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { parseArgs } from '../lib/args.mjs'
import { keyAt, makeKeys, prng, valueSource } from './data.mjs'

const here = fileURLToPath(import.meta.url)
const SEED = 42
const GET_INFLIGHT = 64
const VALUE_BYTES = 100

// ---- child: load or read one contestant --------------------------------------------------

async function engineFor(name) {
  const { kvEngine } = await import('./engines/index.mjs')
  return kvEngine(name)
}

async function childLoad(engineName, dir, n) {
  const h = await (await engineFor(engineName)).open(dir)
  const keys = makeKeys(n, SEED)
  const values = valueSource(VALUE_BYTES, SEED)
  const BATCH = 1000
  const inflight = []
  for (let i = 0; i < n; i += BATCH) {
    const pairs = []
    for (let j = i; j < Math.min(n, i + BATCH); j++) pairs.push([keyAt(keys, j), values.at(j)])
    inflight.push(h.batch(pairs))
    if (inflight.length >= 16) await inflight.shift()
  }
  await Promise.all(inflight)
  if (h.flush) await h.flush()
  await h.close()
}

function cpuUs(c) {
  return c.user + c.system
}

async function childRead(engineName, dir, n, ms) {
  const h = await (await engineFor(engineName)).open(dir)
  const keys = makeKeys(n, SEED)
  const out = {}
  const sync = (fn) => {
    const next = prng(SEED + 11)
    const run = (runMs) => {
      let ops = 0
      const cpu0 = process.cpuUsage()
      const t0 = process.hrtime.bigint()
      const end = t0 + BigInt(Math.round(runMs * 1e6))
      for (;;) {
        for (let k = 0; k < 1024; k++) {
          const v = fn(keyAt(keys, next() % n))
          if (v === undefined || v === null || v === -1) throw new Error(`${engineName}: a loaded key is missing`)
        }
        ops += 1024
        if (process.hrtime.bigint() >= end) break
      }
      const s = Number(process.hrtime.bigint() - t0) / 1e9
      return { opsPerSec: ops / s, cpuUsPerOp: cpuUs(process.cpuUsage(cpu0)) / ops }
    }
    run(Math.min(1000, ms / 2))
    return run(ms)
  }
  if (h.getSyncInto) out.getSyncInto = sync(h.getSyncInto)
  if (h.getSync) out.getSync = sync(h.getSync)
  if (h.get) {
    const next = prng(SEED + 13)
    const run = async (runMs) => {
      let ops = 0
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      const end = t0 + runMs
      const client = async () => {
        while (performance.now() < end) {
          const v = await h.get(keyAt(keys, next() % n))
          if (v === undefined || v === null) throw new Error(`${engineName}: a loaded key is missing`)
          ops++
        }
      }
      await Promise.all(Array.from({ length: GET_INFLIGHT }, client))
      const s = (performance.now() - t0) / 1000
      return { opsPerSec: ops / s, cpuUsPerOp: cpuUs(process.cpuUsage(cpu0)) / ops }
    }
    await run(Math.min(1000, ms / 2))
    out.get = await run(ms)
  }
  await h.close()
  return out
}

if (process.argv[2] === '--child') {
  const [, , , mode, engineName, dir, n, ms] = process.argv
  if (mode === 'load') await childLoad(engineName, dir, Number(n))
  else process.stdout.write(JSON.stringify(await childRead(engineName, dir, Number(n), Number(ms))) + '\n')
  process.exit(0)
}

// ---- parent ------------------------------------------------------------------------------

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const args = parseArgs(process.argv.slice(2).filter((a) => a.startsWith('--')), {
  n: { type: 'number' },
  rounds: { type: 'number' },
  seconds: { type: 'number' },
  'no-peers': { type: 'boolean', default: false },
  tiny: { type: 'boolean', default: false },
  dir: { type: 'string', default: os.tmpdir() },
})
const [rootA, rootB] = positional
if (!rootA || !rootB) {
  console.error('usage: node benchmark/kv/read-ab.mjs <root A> <root B> [--n=N] [--rounds=R] [--seconds=S] [--no-peers] [--tiny]')
  process.exit(2)
}
const n = Math.floor(args.n ?? (args.tiny ? 5_000 : 1_000_000))
const rounds = Math.floor(args.rounds ?? (args.tiny ? 1 : 5))
const ms = (args.seconds ?? (args.tiny ? 0.1 : 2)) * 1000
const entry = (root) => path.join(path.resolve(root), 'dist', 'index.js')
for (const r of [rootA, rootB]) if (!fs.existsSync(entry(r))) throw new Error(`${entry(r)} is missing: build ${r} first`)

const contestants = [
  { name: 'A', label: `uringdb A (${rootA})`, engine: 'uringdb/io_uring', family: 'uringdb', env: { URINGDB_ENTRY: entry(rootA) } },
  { name: 'B', label: `uringdb B (${rootB})`, engine: 'uringdb/io_uring', family: 'uringdb', env: { URINGDB_ENTRY: entry(rootB) } },
]
if (!args['no-peers']) {
  contestants.push({ name: 'lmdb', label: 'lmdb-js', engine: 'lmdb', family: 'lmdb', env: {} })
  contestants.push({ name: 'classic-level', label: 'classic-level', engine: 'classic-level', family: 'classic-level', env: {} })
}

function child(c, mode, dir) {
  const r = spawnSync(process.execPath, [here, '--child', mode, c.engine, dir, String(n), String(ms)], {
    env: { ...process.env, ...c.env },
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  })
  if (r.status !== 0) throw new Error(`${c.label} ${mode} failed (${r.status}): ${r.stderr}`)
  return r.stdout
}

const base = fs.mkdtempSync(path.join(args.dir, 'uringdb-read-ab-'))
const dirs = {}
try {
  for (const c of contestants) {
    if (dirs[c.family]) continue
    dirs[c.family] = path.join(base, c.family)
    const t0 = performance.now()
    // The family's database is loaded by B (the build under test) or the peer itself.
    child(c.name === 'A' ? contestants[1] : c, 'load', dirs[c.family])
    console.error(`loaded ${c.family}: ${n} keys of ${VALUE_BYTES} B in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }
  const results = Object.fromEntries(contestants.map((c) => [c.name, []]))
  for (let r = 0; r < rounds; r++) {
    for (const c of contestants) {
      results[c.name].push(JSON.parse(child(c, 'read', dirs[c.family])))
    }
    console.error(`round ${r + 1}/${rounds} done`)
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
  }
  const fmt = (x) => Math.round(x).toLocaleString('en-US')
  const cases = [
    ['getSyncInto', 'getSync(key, { target })'],
    ['getSync', 'getSync(key) / getBinaryFast / getSync'],
    ['get', `get(key) × ${GET_INFLIGHT} in flight`],
  ]
  console.log(`## Random gets, ${fmt(n)} keys of ${VALUE_BYTES} B, medians of ${rounds} interleaved rounds of ${ms / 1000} s\n`)
  console.log('| case | contestant | gets/s (min–max) | CPU µs/get | B/A gets/s | B/A CPU |')
  console.log('| --- | --- | ---: | ---: | ---: | ---: |')
  for (const [k, label] of cases) {
    const m = {}
    for (const c of contestants) {
      const rs = results[c.name].map((x) => x[k]).filter(Boolean)
      if (rs.length === 0) continue
      const ops = rs.map((x) => x.opsPerSec)
      m[c.name] = { ops: median(ops), cpu: median(rs.map((x) => x.cpuUsPerOp)), min: Math.min(...ops), max: Math.max(...ops) }
    }
    for (const c of contestants) {
      const x = m[c.name]
      if (!x) continue
      const ab = c.name === 'B' && m.A ? [`${(x.ops / m.A.ops).toFixed(2)}×`, `${(x.cpu / m.A.cpu).toFixed(2)}×`] : ['', '']
      console.log(`| ${label} | ${c.label} | ${fmt(x.ops)} (${fmt(x.min)}–${fmt(x.max)}) | ${x.cpu.toFixed(2)} | ${ab[0]} | ${ab[1]} |`)
    }
  }
} finally {
  fs.rmSync(base, { recursive: true, force: true })
}
