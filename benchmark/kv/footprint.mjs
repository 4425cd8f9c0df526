// The empty-database footprint (issue 10): for each engine, many times over, a fresh
// directory, open with default options (timed), one durable put, close, then the disk space
// allocated under the directory (st_blocks × 512, as du counts it). Reports the open time
// p50/p90, the whole open + put + close p50, and the allocated bytes, all from the same run,
// with uringdb's open p50 as a ratio of classic-level's (the target: <= 3×; and
// <= 4 MiB on disk).
//
//   node benchmark/kv/footprint.mjs [--iterations=30] [--backend=both|io_uring|portable]
//                                   [--roots=/path/a,/path/b] [--dir=DIR] [--only=...]
//
// `--roots` lists builds of uringdb to measure side by side (a checkout with dist/ built;
// default: this repository), e.g. the base of a change and the change. Each (engine, build,
// backend) runs in a child process of its own; the engines take turns, iteration by
// iteration in rounds of 5, so that a burst of load on the shared machine hits them all.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { parseArgs } from '../lib/args.mjs'
import { repoRoot } from '../lib/uringdb.mjs'

const self = fileURLToPath(import.meta.url)
const require = createRequire(import.meta.url)

function diskBytes(p) {
  const st = fs.lstatSync(p)
  let bytes = st.blocks * 512
  if (st.isDirectory()) for (const n of fs.readdirSync(p)) bytes += diskBytes(path.join(p, n))
  return bytes
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6

/**
 * One engine's open / put / close, in a child process: `iterations` fresh databases, after
 * one untimed warm-up (module loading and the first native call are not what is measured).
 */
async function child({ engine, root, backend, iterations, dir }) {
  const key = Buffer.from('key-0000000000001')
  const value = Buffer.alloc(100, 7)
  const uringdb = engine === 'uringdb' ? require(path.join(root, 'dist', 'index.js')) : null
  const { ClassicLevel } = engine === 'classic-level' ? require('classic-level') : {}
  const lmdb = engine === 'lmdb' ? require('lmdb') : null
  const rows = []
  for (let i = 0; i <= iterations; i++) {
    const d = fs.mkdtempSync(path.join(dir, `fp-${engine}-`))
    const db = path.join(d, 'db')
    let openMs
    const t0 = process.hrtime.bigint()
    if (engine === 'uringdb') {
      const h = await uringdb.open(db, { ioBackend: backend })
      openMs = ms(t0)
      await h.put(key, value)
      await h.close()
    } else if (engine === 'classic-level') {
      const h = new ClassicLevel(db, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
      await h.open()
      openMs = ms(t0)
      await h.put(key, value, { sync: true })
      await h.close()
    } else if (engine === 'lmdb') {
      const h = lmdb.open({ path: db, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false })
      openMs = ms(t0)
      await h.put(key, value)
      await h.close()
    } else {
      throw new Error(`unknown engine ${engine}`)
    }
    const totalMs = ms(t0)
    if (i > 0) rows.push({ openMs, totalMs, bytes: diskBytes(db) })
    fs.rmSync(d, { recursive: true, force: true })
  }
  process.stdout.write(`${JSON.stringify(rows)}\n`)
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]
}

function main() {
  const argv = process.argv.slice(2)
  if (argv[0] === '--child') return child(JSON.parse(argv[1]))
  const o = parseArgs(argv, {
    iterations: { type: 'number', default: 30 },
    backend: { type: 'string', default: 'both' },
    roots: { type: 'string', default: repoRoot },
    dir: { type: 'string', default: os.tmpdir() },
    only: { type: 'string', default: 'uringdb,classic-level,lmdb' },
  })
  const only = o.only.split(',')
  const backends = o.backend === 'both' ? ['io_uring', 'portable'] : [o.backend]
  const configs = []
  if (only.includes('uringdb')) {
    for (const root of o.roots.split(',')) {
      for (const backend of backends) configs.push({ engine: 'uringdb', root: path.resolve(root), backend, label: `uringdb/${backend} ${root}` })
    }
  }
  for (const engine of ['classic-level', 'lmdb']) {
    if (!only.includes(engine)) continue
    try {
      require.resolve(engine)
      configs.push({ engine, label: engine })
    } catch {
      console.error(`${engine}: not installed (node benchmark/ensure-deps.mjs), skipped`)
    }
  }
  const rows = new Map(configs.map((c) => [c.label, []]))
  const per = 5
  for (let done = 0; done < o.iterations; done += per) {
    const n = Math.min(per, o.iterations - done)
    for (const c of configs) {
      const r = spawnSync(process.execPath, [self, '--child', JSON.stringify({ ...c, iterations: n, dir: o.dir })], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      if (r.status !== 0) {
        console.error(`${c.label} failed with status ${r.status}`)
        process.exit(1)
      }
      rows.get(c.label).push(...JSON.parse(r.stdout.trim().split('\n').pop()))
    }
  }
  const classic = rows.get('classic-level')
  const classicP50 = classic ? pct(classic.map((r) => r.openMs), 50) : undefined
  console.log(`${o.iterations} iterations per engine, fresh directory each, default options, dir ${o.dir}\n`)
  console.log('| engine | open p50 ms | open p90 ms | open+put+close p50 ms | disk allocated (median) | open p50 / classic-level |')
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (const c of configs) {
    const r = rows.get(c.label)
    const p50 = pct(r.map((x) => x.openMs), 50)
    console.log(
      `| ${c.label} | ${p50.toFixed(2)} | ${pct(r.map((x) => x.openMs), 90).toFixed(2)} | ` +
        `${pct(r.map((x) => x.totalMs), 50).toFixed(2)} | ${(pct(r.map((x) => x.bytes), 50) / 1048576).toFixed(3)} MiB | ` +
        `${classicP50 ? (p50 / classicP50).toFixed(2) + '×' : 'n/a'} |`,
    )
  }
}

await main()
