// What an outbox append costs on the write path (issue 11, streams in the database): durable
// batches of 3 branch puts (the baseline) against the same batches plus one stream append,
// in the same run, 256 concurrent callers, alternating rows so that the machine's drift
// hits both. Reports tx/s, p50/p99 and the ratio, then reads the stream back (entries/s).
//
//   node benchmark/kv/stream.mjs [--seconds 5] [--clients 256] [--rounds 2] [--tiny]
//
// Build the release addon first (URINGDB_NATIVE_RELEASE=1 bash scripts/build.sh --release).

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadUringdb } from '../lib/uringdb.mjs'
import { closedLoop } from '../lib/closed-loop.mjs'
import { parseArgs } from '../lib/args.mjs'
import { int, us, ratio, markdownTable } from '../lib/format.mjs'

const args = parseArgs(process.argv.slice(2), {
  seconds: { type: 'number', default: 5 },
  clients: { type: 'number', default: 256 },
  rounds: { type: 'number', default: 2 },
  tiny: { type: 'boolean', default: false },
})
if (args.tiny) Object.assign(args, { seconds: 0.3, clients: 16, rounds: 1 })

const { open } = await loadUringdb()
const value = Buffer.alloc(64, 'v')
const event = Buffer.alloc(128, 'e')

async function row(name, withAppend) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `uringdb-bench-stream-${name}-`))
  const db = await open(dir)
  let n = 0
  const r = await closedLoop({
    clients: args.clients,
    durationMs: args.seconds * 1000,
    op: () => {
      const i = n++
      const ops = [0, 1, 2].map((b) => ({ type: 'put', key: `tx/${i}/branch/${b}`, value }))
      if (withAppend) ops.push({ type: 'append', stream: 'outbox', value: event })
      return db.batch(ops)
    },
  })
  let readPerSec = NaN
  if (withAppend) {
    const t0 = process.hrtime.bigint()
    let count = 0
    for await (const e of db.stream('outbox').read()) count += e.data.length > 0 ? 1 : 0
    const s = Number(process.hrtime.bigint() - t0) / 1e9
    if (count !== db.stream('outbox').lastSeq) throw new Error(`read ${count} of ${db.stream('outbox').lastSeq} entries`)
    readPerSec = count / s
  }
  await db.close()
  fs.rmSync(dir, { recursive: true, force: true })
  return { name, opsPerSec: r.opsPerSec, p50: r.latency.p50Us, p99: r.latency.p99Us, readPerSec }
}

const results = { base: [], append: [] }
for (let round = 0; round < args.rounds; round++) {
  results.base.push(await row('3 puts', false))
  results.append.push(await row('3 puts + 1 append', true))
}
const best = (rows) => rows.reduce((a, b) => (b.opsPerSec > a.opsPerSec ? b : a))
const b = best(results.base)
const a = best(results.append)
console.log(markdownTable(
  ['durable batch', 'tx/s', 'p50', 'p99', 'vs 3 puts', 'stream read entries/s'],
  [
    [b.name, int(b.opsPerSec), us(b.p50), us(b.p99), ratio(1), 'n/a'],
    [a.name, int(a.opsPerSec), us(a.p50), us(a.p99), ratio(a.opsPerSec / b.opsPerSec), int(a.readPerSec)],
  ],
))
console.log(`\n${args.clients} concurrent callers, ${args.seconds} s per row, best of ${args.rounds} rounds (rows alternate).`)
