#!/usr/bin/env node
// pino into uringdb/pino against pino into pino.destination() (SonicBoom to a plain file, no
// fsync), in one run, on the same generated lines (issue 12's targets).
//
//   node benchmark/log/pino.mjs [--lines=N] [--dir=PATH] [--backend=auto|io_uring|portable] [--tiny]
//
// The generator: HTTP request logs as a pino-http service writes them. Every line has the same
// field names (req.method, req.url, req.headers.host, req.headers.user-agent, res.statusCode,
// responseTime, reqId, userId, traceId, msg); each field has a few distinct values (4 methods,
// 40 routes with numeric ids, 3 hosts, 5 user agents, 7 status codes), and the ids and
// timings vary per line (an increasing request id, 10 000 users, a trace id per 5 requests,
// a response time with a long tail). It is a pure function of the line number.
//
// Rows, each measured over the same N lines:
//   pino → uringdb   logger.info() into destination({ sync: 'interval' }), then flushSync
//   pino → SonicBoom logger.info() into pino.destination({ dest: file, sync: false }), then flushSync
//   sink alone       the serialized lines written straight into destination().write(), then flushSync
// Columns: lines/s; p99 and max of the time one write() call takes on the event loop (the
// destination's write, timed around each call); MB/s of raw NDJSON; bytes on disk against
// the NDJSON. Then a query: the last 1% of the store by time, with the blocks it touched.
//
// --tiny (bench:tiny): 20 000 lines in a temporary directory; numbers meaningless.
// pino is this directory's dependency (never the uringdb package's).

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'

import { parseArgs } from '../lib/args.mjs'
import { bytes, markdownTable } from '../lib/format.mjs'
import { repoRoot } from '../lib/uringdb.mjs'

const args = parseArgs(process.argv.slice(2), {
  tiny: { type: 'boolean', default: false },
  lines: { type: 'number' },
  dir: { type: 'string' },
  backend: { type: 'string', default: 'auto' },
})
const N = Math.floor(args.lines ?? (args.tiny ? 20_000 : 1_000_000))
const base = path.resolve(args.dir ?? path.join(os.tmpdir(), `uringdb-pino-bench-${process.pid}`))
const require = createRequire(import.meta.url)
const pino = require('pino')
const uringPino = require(path.join(repoRoot, 'dist', 'pino.js'))
const binding = require(path.join(repoRoot, 'binding.js'))
const say = (line = '') => process.stdout.write(line + '\n')

// ---- the generator -------------------------------------------------------------------------------
const METHODS = ['GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE']
const ROUTES = Array.from({ length: 40 }, (_, k) => ['/api/orders', '/api/users', '/api/items', '/api/carts', '/health'][k % 5] + (k % 5 === 4 ? '' : `/:id${k > 20 ? '/history' : ''}`))
const HOSTS = ['api.example.com', 'api-eu.example.com', 'internal.svc.local']
const AGENTS = ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0', 'curl/8.5.0', 'okhttp/4.12.0', 'Go-http-client/2.0', 'python-requests/2.32.3']
const STATUS = [200, 200, 200, 200, 200, 201, 204, 304, 400, 404, 500]

function mix(i) {
  let x = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) >>> 0
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0
  return (x ^ (x >>> 16)) >>> 0
}

/** The object logged for request `i` (pino adds level, time, pid, hostname, msg). */
function request(i) {
  const h = mix(i)
  const route = ROUTES[h % ROUTES.length].replace(':id', String(h % 100_000))
  return {
    reqId: `req-${i.toString(16).padStart(8, '0')}`,
    traceId: `t-${(i / 5 | 0).toString(16)}`,
    req: { method: METHODS[(h >>> 3) % METHODS.length], url: route, headers: { host: HOSTS[(h >>> 7) % 3], 'user-agent': AGENTS[(h >>> 9) % 5] } },
    res: { statusCode: STATUS[(h >>> 11) % STATUS.length] },
    userId: (h >>> 5) % 10_000,
    responseTime: Math.round((1 + ((h >>> 14) % 1000) ** 2 / 2000) * 100) / 100,
  }
}

// ---- measuring ---------------------------------------------------------------------------------
/** Wraps `dest.write` so that each call's duration (ns) lands in `samples`. */
function timed(dest, samples) {
  const write = dest.write.bind(dest)
  dest.write = (s) => {
    const t0 = process.hrtime.bigint()
    const r = write(s)
    samples.push(Number(process.hrtime.bigint() - t0))
    return r
  }
  return dest
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}

function dirBytes(dir) {
  let n = 0
  for (const name of fs.readdirSync(dir)) n += fs.statSync(path.join(dir, name)).size
  return n
}

async function runPino(name, dest, onDisk) {
  const samples = []
  const logger = pino({ base: { pid: 4242, hostname: 'web-1' } }, timed(dest, samples))
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++) {
    logger.info(request(i), 'request completed')
    // Let the event loop turn now and then, as a service's would.
    if ((i & 1023) === 1023) await new Promise((r) => setImmediate(r))
  }
  dest.flushSync()
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  samples.sort((a, b) => a - b)
  return { name, s, samples, onDisk: onDisk() }
}

async function ready(d) {
  await new Promise((resolve, reject) => {
    d.once('ready', resolve)
    d.once('error', reject)
  })
  return d
}

async function closeUring(d) {
  await new Promise((resolve) => {
    d.once('close', resolve)
    d.end()
  })
}

fs.rmSync(base, { recursive: true, force: true })
fs.mkdirSync(base, { recursive: true })
const rows = []
let rawBytes = 0
try {
  // Raw NDJSON size: the lines SonicBoom writes (its file is the NDJSON itself).
  const sonicFile = path.join(base, 'sonic.ndjson')
  const sonic = pino.destination({ dest: sonicFile, sync: false, minLength: 4096 })
  await new Promise((r) => sonic.once('ready', r))
  const b = await runPino('pino → SonicBoom (file, no fsync)', sonic, () => fs.statSync(sonicFile).size)
  sonic.end()
  rawBytes = b.onDisk

  const uDir = path.join(base, 'uringdb')
  const u = await ready(uringPino.destination({ dir: uDir, sync: 'interval', ioBackend: args.backend }))
  const a = await runPino("pino → uringdb/pino (sync: 'interval')", u, () => dirBytes(uDir))
  const backend = u.stats().backend
  await closeUring(u)
  a.onDisk = dirBytes(uDir)
  rows.push(a, b)

  // The sink alone: pre-serialized lines (pino's own output, from the SonicBoom file).
  const lines = fs.readFileSync(sonicFile, 'utf8').split('\n').filter(Boolean).map((l) => l + '\n')
  const sDir = path.join(base, 'sink')
  const d = await ready(uringPino.destination({ dir: sDir, sync: 'interval', ioBackend: args.backend }))
  // Not timed per call: this row is the sink's throughput.
  const samples = []
  const t0 = process.hrtime.bigint()
  for (const l of lines) d.write(l)
  d.flushSync()
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  await closeUring(d)
  samples.sort((x, y) => x - y)
  rows.push({ name: 'sink alone (destination.write of serialized lines)', s, samples, onDisk: dirBytes(sDir) })

  // The last 1% by time of the pino → uringdb store (its lines carry their own times).
  const uTimes = []
  for await (const l of uringPino.readLogLines(uDir)) uTimes.push(Number(/"time":(\d+)/.exec(l)[1]))
  const uSince = uTimes[Math.floor(uTimes.length * 0.99)]
  const reader = binding.openLogReader(uDir, { since: uSince })
  let got = 0
  for (let batch; (batch = reader.nextLines(1 << 20)) !== null; ) got += batch.toString('utf8').split('\n').length - 1
  const [seen, read] = reader.blocks()

  say(`# pino → uringdb/pino vs pino → SonicBoom, ${N.toLocaleString('en-US')} HTTP request lines${args.tiny ? ' (--tiny: numbers meaningless)' : ''}`)
  say(`backend ${backend}; node ${process.version}; ${os.cpus().length} CPUs; raw NDJSON ${bytes(rawBytes)} (${(rawBytes / N).toFixed(0)} B/line)`)
  say()
  say(
    markdownTable(
      ['path', 'lines/s', 'write() p50', 'write() p99', 'write() max', 'MB/s NDJSON', 'on disk', 'NDJSON / disk'],
      rows.map((r) => [
        r.name,
        Math.round(N / r.s).toLocaleString('en-US'),
        r.samples.length ? `${(pct(r.samples, 0.5) / 1000).toFixed(2)} µs` : '—',
        r.samples.length ? `${(pct(r.samples, 0.99) / 1000).toFixed(2)} µs` : '—',
        r.samples.length ? `${(r.samples[r.samples.length - 1] / 1000).toFixed(0)} µs` : '—',
        (rawBytes / r.s / 1e6).toFixed(0),
        bytes(r.onDisk),
        (rawBytes / r.onDisk).toFixed(1) + '×',
      ]),
    ),
  )
  say()
  say(`last 1% by time (${got.toLocaleString('en-US')} lines): read ${read} of ${seen} block headers' payloads (${((100 * read) / Math.max(1, seen)).toFixed(2)}% of blocks)`)
  const ratio = rows[0].s > 0 ? rows[1].s / rows[0].s : 0
  say(`lines/s uringdb ÷ SonicBoom: ${ratio.toFixed(2)}`)
} finally {
  if (args.dir === undefined) fs.rmSync(base, { recursive: true, force: true })
}
