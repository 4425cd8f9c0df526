#!/usr/bin/env node
// One case group of one engine for db.mjs, in a process of its own (see lib/child.mjs):
//
//   group 'put'   durable puts of fresh random keys at each in-flight level, a fresh
//                 directory per level: warm-up, then a closed loop (lib/closed-loop.mjs).
//   group 'data'  one directory through its whole life:
//                 load     N keys in durable batches (one batch in flight), flush, close;
//                 reads    reopen; random gets (async path, 64 in flight; sync paths in a
//                          tight loop); full ordered scans;
//                 amp      reopen; overwrite the whole key space `passes` times (random
//                          order, durable batches), flush, close; reopen, compact, close.
//                 Bytes written to disk are /proc/self/io deltas around each write phase,
//                 from before open to after close; before closing, background flushes and
//                 compactions are left to run until the process wrote nothing for a while
//                 (lib/proc-io.mjs). Space is `du` of the directory at those points.
//                 Values read back are checked against what was written (outside timing).

import fs from 'node:fs'
import path from 'node:path'

import { childMain } from '../lib/child.mjs'
import { closedLoop } from '../lib/closed-loop.mjs'
import { fixed, int, us } from '../lib/format.mjs'
import { KEY_BYTES, keyAt, keyBounds, makeKeys, permutation, prng, randomKeySource, valueSource } from './data.mjs'
import { kvEngine } from './engines/index.mjs'
import { diskUsage, ioDelta, procIo, settleWrites } from '../lib/proc-io.mjs'

const log = (msg) => process.stderr.write(msg + '\n')
const nowS = () => Number(process.hrtime.bigint()) / 1e9
const STALL_MS = 30_000
const GET_INFLIGHT = 64
const CHECK_KEYS = 256

childMain(async (spec) => {
  const engine = kvEngine(spec.engine)
  await engine.available()
  const tag = `${engine.name} ${spec.valueBytes} B`
  if (spec.group === 'put') return putGroup(engine, spec, tag)
  if (spec.group === 'data') return dataGroup(engine, spec, tag)
  throw new Error(`unknown group ${spec.group}`)
})

function freshDir(spec, engine) {
  return fs.mkdtempSync(path.join(spec.parentDir, `${engine.name.replace(/[^a-z0-9]+/gi, '-')}-`))
}

async function closeQuietly(h) {
  try {
    await h?.close()
  } catch (err) {
    log(`close after failure: ${err?.message ?? err}`)
  }
}

// ---- durable puts ------------------------------------------------------------------------

async function putGroup(engine, spec, tag) {
  const values = valueSource(spec.valueBytes, spec.seed)
  const levels = []
  for (const inflight of spec.inflights) {
    if (engine.singleWriter && inflight > 1) continue
    const dir = freshDir(spec, engine)
    let h = null
    try {
      h = await engine.open(dir)
      const nextKey = randomKeySource(spec.seed + inflight)
      let i = 0
      const op = () => h.put(nextKey(), values.at(i++))
      await closedLoop({ clients: inflight, durationMs: spec.warmupMs, op, samplesMax: 1 << 16, stallMs: STALL_MS })
      const io0 = procIo()
      const capacity = Math.min(1 << 22, Math.max(1 << 16, Math.ceil(spec.durationMs * 2000)))
      const cpu0 = process.cpuUsage()
      const r = await closedLoop({ clients: inflight, durationMs: spec.durationMs, op, samplesMax: capacity, stallMs: STALL_MS })
      // Process CPU (user + system, every thread: the engine's own threads included) per put.
      const cpuUsPerOp = cpuUs(process.cpuUsage(cpu0)) / r.ops
      const io = ioDelta(io0, procIo())
      const info = h.info?.()
      const closing = h
      h = null
      await closing.close()
      levels.push({
        inflight,
        ops: r.ops,
        seconds: r.seconds,
        opsPerSec: r.opsPerSec,
        ...r.latency,
        writeBytesPerOp: io ? io.writeBytes / r.ops : null,
        cpuUsPerOp,
        info,
      })
      log(`${tag} put × ${inflight}: ${int(r.opsPerSec)} ops/s, ${fixed(cpuUsPerOp, 2)} CPU µs/put, p50 ${us(r.latency.p50Us)}, p99 ${us(r.latency.p99Us)}`)
    } finally {
      await closeQuietly(h)
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  return { levels }
}

// ---- load, reads, amplification -------------------------------------------------------------

async function dataGroup(engine, spec, tag) {
  const { n, valueBytes, batch } = spec
  const cases = new Set(spec.cases)
  const keys = makeKeys(n, spec.seed)
  const values = valueSource(valueBytes, spec.seed)
  const userBytes = n * (KEY_BYTES + valueBytes)
  const settle = { quietMs: spec.tiny ? 100 : 1000, maxMs: spec.tiny ? 2000 : 60_000 }
  const out = { n, valueBytes, batch, userBytes }
  const dir = freshDir(spec, engine)
  let h = null

  /** Writes every key once, in `order` (identity when null), as durable batches. */
  const writePass = async (label, order, version) => {
    let lastReport = nowS()
    for (let start = 0; start < n; start += batch) {
      const end = Math.min(n, start + batch)
      const pairs = new Array(end - start)
      for (let j = start; j < end; j++) {
        const i = order === null ? j : order[j]
        pairs[j - start] = [keyAt(keys, i), values.at(i, version)]
      }
      await h.batch(pairs)
      if (nowS() - lastReport >= 5) {
        lastReport = nowS()
        log(`${tag} ${label}: ${int(end)} / ${int(n)} keys`)
      }
    }
  }

  /** Reads CHECK_KEYS keys back and compares them with what `version` wrote. */
  const check = async (version, when) => {
    const next = prng(spec.seed + 99 + version)
    for (let c = 0; c < Math.min(CHECK_KEYS, n); c++) {
      const i = next() % n
      const got = await h.read(keyAt(keys, i))
      const want = values.at(i, version)
      if (got === undefined || got === null || Buffer.compare(got, want) !== 0) {
        throw new Error(
          `${engine.name}: ${when}: key #${i} (${keyAt(keys, i).toString('hex')}) read back ` +
            (got == null ? 'as absent' : `${got.byteLength} bytes that differ from the ${want.length} written (version ${version})`),
        )
      }
    }
  }

  /**
   * Ends a write phase: lets background flushes and compactions run to quiescence while the
   * database is still open (no bytes written for `settle.quietMs`), then closes it.
   * Returns the engine's statistics and the milliseconds waited.
   */
  const settleAndClose = async () => {
    const settledOpenMs = await settleWrites(settle)
    const info = h.info?.()
    const closing = h
    h = null
    await closing.close()
    return { info, settledOpenMs }
  }

  /** Bytes written and space after a write phase (closed), once background writes went quiet. */
  const afterWrites = async (io0, userBytesWritten) => {
    const settledMs = await settleWrites(settle)
    const io = ioDelta(io0, procIo())
    const du = diskUsage(dir)
    return {
      io,
      settledMs,
      writeAmp: io ? io.writeBytes / userBytesWritten : null,
      allocatedBytes: du.allocatedBytes,
      apparentBytes: du.apparentBytes,
      spaceAmp: du.allocatedBytes / userBytes,
      // Write-ahead logs: uringdb's wal/ segments (preallocated), LevelDB's and RocksDB's
      // *.log, SQLite's -wal file. lmdb has none.
      logAllocatedBytes: du.files.filter((f) => /(^|\/)wal\/|\.log$|-wal$/.test(f.file)).reduce((a, f) => a + f.allocatedBytes, 0),
      largestFiles: du.files.slice(0, 8),
      fileCount: du.files.length,
    }
  }

  try {
    // -- load
    {
      const io0 = procIo()
      h = await engine.open(dir)
      const t0 = nowS()
      await writePass('load', null, 0)
      const seconds = nowS() - t0
      log(`${tag} load: ${int(n)} keys in ${fixed(seconds, 2)} s, ${int(n / seconds)} keys/s`)
      let flushSeconds = null
      if (h.flush) {
        const f0 = nowS()
        await h.flush()
        flushSeconds = nowS() - f0
      }
      const closed = await settleAndClose()
      out.load = { seconds, opsPerSec: n / seconds, flushSeconds, ...closed, ...(await afterWrites(io0, userBytes)) }
    }

    // -- reads
    if (cases.has('get') || cases.has('scan')) {
      h = await engine.open(dir)
      await check(0, 'after load and reopen')
      if (cases.has('get') && h.get) {
        const next = prng(spec.seed + 7)
        let misses = 0
        const op = async () => {
          const v = await h.get(keyAt(keys, next() % n))
          if (v === undefined || v === null) misses++
        }
        await closedLoop({ clients: GET_INFLIGHT, durationMs: spec.warmupMs, op, samplesMax: 1 << 16, stallMs: STALL_MS })
        const cpu0 = process.cpuUsage()
        const r = await closedLoop({ clients: GET_INFLIGHT, durationMs: spec.durationMs, op, samplesMax: 1 << 20, stallMs: STALL_MS })
        const cpuUsPerOp = cpuUs(process.cpuUsage(cpu0)) / r.ops
        if (misses > 0) throw new Error(`${engine.name}: ${misses} async gets of loaded keys found nothing`)
        out.getAsync = { inflight: GET_INFLIGHT, label: h.getLabel ?? 'get(key)', ops: r.ops, seconds: r.seconds, opsPerSec: r.opsPerSec, cpuUsPerOp, ...r.latency }
        log(`${tag} get × ${GET_INFLIGHT}: ${int(r.opsPerSec)} ops/s, p50 ${us(r.latency.p50Us)}, p99 ${us(r.latency.p99Us)}`)
      }
      if (cases.has('get') && h.getSync) {
        out.getSync = syncGets(h.getSync, h.getSyncLabel, keys, n, spec)
        log(`${tag} ${out.getSync.label}: ${int(out.getSync.opsPerSec)} ops/s`)
      }
      if (cases.has('get') && h.getSyncInto) {
        out.getSyncInto = syncGets(h.getSyncInto, h.getSyncIntoLabel, keys, n, spec)
        log(`${tag} ${out.getSyncInto.label}: ${int(out.getSyncInto.opsPerSec)} ops/s`)
      }
      if (cases.has('scan')) {
        const { min, max } = keyBounds(keys, n)
        // A full ordered scan, measured up to 5 times within the case's duration (median):
        // keys and values, then keys alone (where the engine has a keys-only scan).
        const scanRuns = async (run, withValues) => {
          const runs = []
          const started = nowS()
          do {
            let first = null
            let last = null
            let bytes = 0
            const cpu0 = process.cpuUsage()
            const s0 = nowS()
            const count = withValues
              ? await run((k, v) => {
                  if (first === null) first = Buffer.from(k)
                  last = k
                  bytes += k.length + v.length
                })
              : await run((k) => {
                  if (first === null) first = Buffer.from(k)
                  last = k
                  bytes += k.length
                })
            const seconds = nowS() - s0
            const cpuUsPerKey = cpuUs(process.cpuUsage(cpu0)) / count
            if (count !== n) throw new Error(`${engine.name}: a full scan returned ${count} entries, ${n} were loaded`)
            if (Buffer.compare(first, min) !== 0 || Buffer.compare(Buffer.from(last), max) !== 0) {
              throw new Error(`${engine.name}: a full scan did not start at the smallest key or did not end at the largest`)
            }
            const expected = withValues ? userBytes : n * KEY_BYTES
            if (bytes !== expected) throw new Error(`${engine.name}: a full scan returned ${bytes} bytes, ${expected} were loaded`)
            runs.push({ seconds, keysPerSec: n / seconds, cpuUsPerKey })
          } while (runs.length < 5 && nowS() - started < spec.durationMs / 1000)
          const sorted = [...runs].sort((x, y) => x.keysPerSec - y.keysPerSec)
          return { runs, mid: sorted[Math.floor((sorted.length - 1) / 2)] }
        }
        {
          const { runs, mid } = await scanRuns(h.scan, true)
          out.scan = { label: h.scanLabel, runs: runs.length, keysPerSec: mid.keysPerSec, cpuUsPerKey: mid.cpuUsPerKey, MBps: (mid.keysPerSec * (KEY_BYTES + valueBytes)) / 1e6, all: runs }
          log(`${tag} scan: ${int(mid.keysPerSec)} keys/s, ${fixed(mid.cpuUsPerKey, 3)} CPU µs/key (median of ${runs.length})`)
        }
        if (h.scanKeys) {
          const { runs, mid } = await scanRuns(h.scanKeys, false)
          out.scanKeys = { label: h.scanKeysLabel, runs: runs.length, keysPerSec: mid.keysPerSec, cpuUsPerKey: mid.cpuUsPerKey, all: runs }
          log(`${tag} key scan: ${int(mid.keysPerSec)} keys/s, ${fixed(mid.cpuUsPerKey, 3)} CPU µs/key (median of ${runs.length})`)
        }
      }
      const closing = h
      h = null
      await closing.close()
    }

    // -- amplification: overwrite the key space, then compact
    if (cases.has('amp')) {
      const passes = spec.overwritePasses
      const io0 = procIo()
      h = await engine.open(dir)
      const t0 = nowS()
      for (let p = 1; p <= passes; p++) await writePass(`overwrite ${p}/${passes}`, permutation(n, spec.seed + p), p)
      const seconds = nowS() - t0
      log(`${tag} overwrite ${passes}×: ${int((n * passes) / seconds)} keys/s`)
      if (h.flush) await h.flush()
      const closed = await settleAndClose()
      out.overwrite = { passes, seconds, opsPerSec: (n * passes) / seconds, ...closed, ...(await afterWrites(io0, userBytes * passes)) }

      const c0 = procIo()
      h = await engine.open(dir)
      await check(passes, `after ${passes} overwrites and reopen`)
      if (h.compact) {
        const s0 = nowS()
        await h.compact()
        const compactSeconds = nowS() - s0
        await check(passes, `after compaction`)
        const closed = await settleAndClose()
        out.compacted = { seconds: compactSeconds, ...closed, ...(await afterWrites(c0, userBytes)) }
      } else {
        const closing = h
        h = null
        await closing.close()
      }
      log(
        `${tag} write amp: load ${fixed(out.load.writeAmp, 2)}, overwrite ${fixed(out.overwrite.writeAmp, 2)}; ` +
          `space amp: load ${fixed(out.load.spaceAmp, 2)}, overwrite ${fixed(out.overwrite.spaceAmp, 2)}` +
          (out.compacted ? `, compacted ${fixed(out.compacted.spaceAmp, 2)}` : ''),
      )
    }
    return out
  } finally {
    await closeQuietly(h)
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Process CPU time (user + system, every thread) of a `process.cpuUsage` delta, in µs. */
const cpuUs = (c) => c.user + c.system

/** Sync gets of random loaded keys in a tight loop for the case's duration. */
function syncGets(fn, label, keys, n, spec) {
  const next = prng(spec.seed + 11)
  const run = (ms) => {
    let ops = 0
    let misses = 0
    const cpu0 = process.cpuUsage()
    const start = process.hrtime.bigint()
    const deadline = start + BigInt(Math.round(ms * 1e6))
    for (;;) {
      for (let k = 0; k < 1024; k++) {
        const v = fn(keyAt(keys, next() % n))
        if (v === undefined || v === null || v === -1) misses++
      }
      ops += 1024
      if (process.hrtime.bigint() >= deadline) break
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    const cpuUsPerOp = cpuUs(process.cpuUsage(cpu0)) / ops
    if (misses > 0) throw new Error(`${label}: ${misses} sync gets of loaded keys found nothing`)
    return { ops, seconds, opsPerSec: ops / seconds, cpuUsPerOp }
  }
  run(spec.warmupMs)
  return { label, ...run(spec.durationMs) }
}
