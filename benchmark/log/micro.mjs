#!/usr/bin/env node
// Micro-benchmarks of the log API with benny (one operation at a time, no concurrency: this
// measures per-call cost and a single durable round trip, not throughput under load — that is
// workload.mjs).
//
//   node benchmark/log/micro.mjs [--tiny] [--backend=io_uring|portable|both] [--dir=DIR]
//
// Cases, per backend:
//   append 100 B, sync: true     one awaited durable append (write + fdatasync round trip)
//   appendMany 100 × 100 B       one group of 100 records, one fdatasync
//   append 100 B, sync: false    handed to the kernel, no fdatasync
//   read 10k records             async-iterate 10,000 committed 100 B records
// Results: benny's table on stdout, JSON in benchmark/results/micro-<timestamp>.json.
// Exit status 1 if any case threw.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'

import { parseArgs } from '../lib/args.mjs'
import { benchDir, ensureDeps } from '../lib/ensure-deps.mjs'
import { loadUringdb } from '../lib/uringdb.mjs'

const args = parseArgs(process.argv.slice(2), {
  tiny: { type: 'boolean', default: false },
  backend: { type: 'string', default: 'both' },
  dir: { type: 'string', default: os.tmpdir() },
  'no-install': { type: 'boolean', default: false },
})
const backends = { both: ['io_uring', 'portable'], io_uring: ['io_uring'], portable: ['portable'] }[args.backend]
if (!backends) throw new Error(`--backend must be io_uring, portable or both, not ${args.backend}`)

if (!args['no-install']) ensureDeps()
const require = createRequire(import.meta.url)
const b = require('benny')
const { openLog } = await loadUringdb()

const READ_RECORDS = 10_000
const caseOptions = args.tiny
  ? { minSamples: 1, initCount: 1, minTime: 0.01, maxTime: 0.05, delay: 0 }
  : { minSamples: 5, maxTime: 3 }

const record = Buffer.alloc(100, 0x61)
const batch = Array.from({ length: 100 }, (_, i) => Buffer.alloc(100, 0x61 + (i % 26)))
const openLogs = []
const dirs = []
const errors = []
process.on('exit', () => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

async function freshLog(backend) {
  const dir = fs.mkdtempSync(path.join(args.dir, 'uringdb-micro-'))
  dirs.push(dir)
  const log = await openLog(dir, { ioBackend: backend })
  openLogs.push(log)
  return log
}

/** benny calls a case's setup function more than once to probe its type: run it once. */
function once(setup) {
  let result = null
  return () => (result ??= setup())
}

/** Wraps a case so that a throw is recorded (and fails the run) instead of vanishing in benny. */
function guarded(name, fn) {
  return async () => {
    try {
      await fn()
    } catch (err) {
      if (errors.length < 20) errors.push(`${name}: ${err?.stack ?? err}`)
    }
  }
}

const summaries = []
for (const backend of backends) {
  let refused = null
  try {
    const probe = await freshLog(backend)
    openLogs.pop()
    await probe.close()
  } catch (err) {
    if (err?.code !== 'ERR_URINGDB_IO_URING_UNAVAILABLE') throw err
    refused = err.message
  }
  if (refused) {
    console.log(`skipping backend ${backend}: ${refused}`)
    continue
  }
  const name = (s) => `${s} [${backend}]`
  const summary = await b.suite(
    `uringdb log micro-benchmarks, ioBackend '${backend}'`,
    b.add(
      name('append 100 B, sync: true'),
      once(async () => {
        const log = await freshLog(backend)
        return guarded('append sync', () => log.append(record))
      }),
      caseOptions,
    ),
    b.add(
      name('appendMany 100 × 100 B, sync: true'),
      once(async () => {
        const log = await freshLog(backend)
        return guarded('appendMany', async () => {
          const seqs = await log.appendMany(batch)
          if (seqs.length !== batch.length) throw new Error(`appendMany returned ${seqs.length} seqs`)
        })
      }),
      caseOptions,
    ),
    b.add(
      name('append 100 B, sync: false'),
      once(async () => {
        const log = await freshLog(backend)
        return guarded('append no-sync', () => log.append(record, { sync: false }))
      }),
      caseOptions,
    ),
    b.add(
      name(`read ${READ_RECORDS / 1000}k records of 100 B`),
      once(async () => {
        const log = await freshLog(backend)
        for (let i = 0; i < READ_RECORDS; i += batch.length) await log.appendMany(batch)
        const from = log.firstSeq
        return guarded('read', async () => {
          let n = 0
          for await (const r of log.read({ from, to: from + READ_RECORDS })) n += r.data.length > 0 ? 1 : 0
          if (n !== READ_RECORDS) throw new Error(`read ${n} records, expected ${READ_RECORDS}`)
        })
      }),
      caseOptions,
    ),
    b.cycle(),
    b.complete(),
    b.save({
      file: `micro-${backend}-${new Date().toISOString().replace(/[:.]/g, '-')}${args.tiny ? '-tiny' : ''}`,
      folder: path.join(benchDir, 'results'),
      format: 'json',
    }),
  )
  summaries.push(summary)
}

for (const log of openLogs) await log.close().catch((err) => errors.push(`close: ${err?.stack ?? err}`))
if (summaries.length === 0) errors.push('no backend could run')
if (errors.length > 0) {
  console.error(`micro: ${errors.length} error(s):\n` + errors.join('\n'))
  process.exitCode = 1
}
