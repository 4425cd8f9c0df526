#!/usr/bin/env node
// One engine of txn.mjs, in a process of its own (see lib/child.mjs) so that /proc/self/io
// counts that engine's writes only.
//
// A transaction (two-phase-commit coordinator bookkeeping, as a saga or XA coordinator
// keeps it):
//   1. prepare: one durable atomic batch writing `branches` keys tx/<id>/branch/<n>, each a
//      JSON record { status: 'prepared', participant, amount, payload };
//   2. read every branch back (the engine's idiomatic read) and check it says 'prepared';
//   3. commit: one durable atomic batch rewriting the branches as 'committed' and writing
//      tx/<id>/state = { status: 'committed', ... }.
// With `mode: '2pc'` (uringdb only, `uringdb+2pc` in txn.mjs) a transaction is instead
// db.prepare(txid, [the branches as 'committed' + the state]) then db.commitPrepared(txid):
// one prepare record holding the operations and a commit record holding only the txid (the
// prepared writes are invisible, so there is no read-back).
// With `mode: 'occ'` a transaction is one read-then-write transaction: read the `branches`
// keys, write them as 'committed' plus the state (read 3, write 4), committed durably:
// uringdb+occ uses db.transaction(async (tx) => ...) (optimistic: validated at apply, retried
// on a conflict; the keys are the transaction's own, so none conflicts); lmdb+txn uses
// lmdb-js's db.transaction(() => { get; put }), its nearest equivalent: the callback runs
// inside LMDB's single write transaction (serialized, so its reads cannot go stale), and the
// promise resolves after the commit's sync (overlappingSync off).
// A transaction counts when its commit batch resolved (is durable). `concurrency`
// transactions are in flight at every moment (lib/closed-loop.mjs).
//
// uringdb's directory persists between runs (it is `npm start`'s data directory): a run first
// reopens the previous run's database, checks that its last committed transaction is there,
// then starts afresh in the same place. After the measured window the database is closed,
// reopened and every transaction acknowledged in this run is checked by a full scan.

import fs from 'node:fs'

import { childMain } from '../lib/child.mjs'
import { closedLoop } from '../lib/closed-loop.mjs'
import { txnEngine } from './engines.mjs'
import { ioDelta, procIo } from '../lib/proc-io.mjs'

const PARTICIPANTS = ['payments', 'inventory', 'shipping', 'ledger', 'notifications', 'fraud', 'loyalty', 'tax']
const PAD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'.repeat(8)
const MARKER = Buffer.from('meta/txn-bench')
const STATE = Buffer.from('/state')

const txId = (id) => String(id).padStart(10, '0')
const branchKey = (id, n) => Buffer.from(`tx/${txId(id)}/branch/${n}`)
const stateKey = (id) => Buffer.from(`tx/${txId(id)}/state`)

function branchValue(id, n, status) {
  return Buffer.from(
    JSON.stringify({
      status,
      tx: id,
      branch: n,
      participant: PARTICIPANTS[n % PARTICIPANTS.length],
      amount: ((id * 7919 + n * 104729) % 1_000_000) / 100,
      // 120–247 bytes of opaque participant payload.
      payload: PAD.slice(0, 120 + ((id * 31 + n) & 127)),
    }),
  )
}

childMain(async (spec, send) => {
  const engine = txnEngine(spec.engine)
  await engine.available()
  const out = { engine: engine.name, label: engine.label, durability: engine.durability, dir: spec.dir }

  // -- the previous run's database (uringdb's persistent directory only)
  if (spec.persistent && fs.existsSync(spec.dir) && fs.readdirSync(spec.dir).length > 0) {
    const t0 = process.hrtime.bigint()
    let h
    try {
      h = await engine.open(spec.dir)
    } catch (err) {
      // Never removed: a database that does not open is exactly what this check is for. (A
      // directory written by an older development build whose format changed lands here too.)
      err.message =
        `cannot reopen the previous run's database in ${spec.dir}: ${err.message}\n` +
        `(if an older build of uringdb wrote it, remove the directory and run again)`
      throw err
    }
    const reopenMs = Number(process.hrtime.bigint() - t0) / 1e6
    try {
      const marker = await h.read(MARKER)
      if (marker === undefined || marker === null) {
        throw new Error(`${spec.dir} holds a database that txn.mjs did not create (no ${MARKER} key): remove it or pass --dir`)
      }
      const prev = JSON.parse(Buffer.from(marker).toString('utf8'))
      let lastFound = null
      if (prev.lastCommittedTx) {
        const v = await h.read(stateKey(prev.lastCommittedTx))
        lastFound = v != null && JSON.parse(Buffer.from(v).toString('utf8')).status === 'committed'
      }
      out.previousRun = { ...prev, reopenMs, recovery: h.db?.recovery, lastCommittedFound: lastFound }
      send({ type: 'previous', previousRun: out.previousRun })
    } finally {
      await h.close()
    }
    fs.rmSync(spec.dir, { recursive: true, force: true })
  }
  fs.mkdirSync(spec.dir, { recursive: true })

  // -- the workload
  let h = await engine.open(spec.dir)
  out.backend = h.db?.stats?.().log?.backend
  await h.batch([[MARKER, Buffer.from(JSON.stringify({ startedAt: new Date().toISOString(), committed: 0 }))]])
  const branches = spec.branches
  let nextId = 1
  let committed = 0
  let lastCommittedTx = 0
  const done = new Uint8Array(1 << 24)

  async function transaction2pc() {
    const id = nextId++
    const ops = new Array(branches + 1)
    for (let n = 0; n < branches; n++) ops[n] = { type: 'put', key: branchKey(id, n), value: branchValue(id, n, 'committed') }
    ops[branches] = { type: 'put', key: stateKey(id), value: Buffer.from(JSON.stringify({ status: 'committed', branches, decidedAt: Date.now() })) }
    const txid = txId(id)
    await h.db.prepare(txid, ops)
    await h.db.commitPrepared(txid)
    committed++
    if (id > lastCommittedTx) lastCommittedTx = id
    if (id < done.length) done[id] = 1
  }

  async function transactionOcc() {
    const id = nextId++
    const keys = new Array(branches)
    for (let n = 0; n < branches; n++) keys[n] = branchKey(id, n)
    const state = Buffer.from(JSON.stringify({ status: 'committed', branches, decidedAt: Date.now() }))
    if (typeof h.db.transaction !== 'function') throw new Error('mode occ needs db.transaction')
    if (engineFamily === 'uringdb') {
      await h.db.transaction(async (tx) => {
        const read = await tx.getMany(keys)
        for (let n = 0; n < branches; n++) {
          if (read[n] !== undefined) throw new Error(`tx ${id}: branch ${n} exists before its transaction`)
          tx.put(keys[n], branchValue(id, n, 'committed'))
        }
        tx.put(stateKey(id), state)
      })
    } else {
      await h.db.transaction(() => {
        for (let n = 0; n < branches; n++) {
          if (h.db.get(keys[n]) !== undefined) throw new Error(`tx ${id}: branch ${n} exists before its transaction`)
          h.db.put(keys[n], branchValue(id, n, 'committed'))
        }
        h.db.put(stateKey(id), state)
      })
    }
    committed++
    if (id > lastCommittedTx) lastCommittedTx = id
    if (id < done.length) done[id] = 1
  }

  async function transaction() {
    const id = nextId++
    const keys = new Array(branches)
    const prepare = new Array(branches)
    for (let n = 0; n < branches; n++) {
      keys[n] = branchKey(id, n)
      prepare[n] = [keys[n], branchValue(id, n, 'prepared')]
    }
    await h.batch(prepare)
    const read = await Promise.all(keys.map((k) => h.read(k)))
    for (let n = 0; n < branches; n++) {
      const v = read[n]
      if (v === undefined || v === null) throw new Error(`tx ${id}: branch ${n} is missing right after its prepare batch resolved`)
      const rec = JSON.parse(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8'))
      if (rec.status !== 'prepared' || rec.tx !== id) throw new Error(`tx ${id}: branch ${n} reads back as ${rec.status} of tx ${rec.tx}`)
    }
    const commit = new Array(branches + 1)
    for (let n = 0; n < branches; n++) commit[n] = [keys[n], branchValue(id, n, 'committed')]
    commit[branches] = [stateKey(id), Buffer.from(JSON.stringify({ status: 'committed', branches, decidedAt: Date.now() }))]
    await h.batch(commit)
    committed++
    if (id > lastCommittedTx) lastCommittedTx = id
    if (id < done.length) done[id] = 1
  }

  if (spec.mode === '2pc' && typeof h.db?.prepare !== 'function') throw new Error('mode 2pc needs uringdb with db.prepare')
  const engineFamily = engine.family
  const io0 = procIo()
  const cpu0 = process.cpuUsage()
  const started = process.hrtime.bigint()
  const run = await closedLoop({
    clients: spec.concurrency,
    durationMs: spec.durationMs,
    op: spec.mode === '2pc' ? transaction2pc : spec.mode === 'occ' ? transactionOcc : transaction,
    onProgress: () => send({ type: 'progress', tx: committed, elapsedS: Number(process.hrtime.bigint() - started) / 1e9 }),
  })
  const closing = h
  h = null
  await closing.close()
  const cpu = process.cpuUsage(cpu0)
  const io = ioDelta(io0, procIo())
  Object.assign(out, {
    transactions: run.ops,
    seconds: run.seconds,
    txPerSec: run.opsPerSec,
    ...run.latency,
    branches,
    concurrency: spec.concurrency,
    io,
    writeBytesPerTx: io ? io.writeBytes / run.ops : null,
    // The process's CPU time (user + system, every thread) over the run and its close.
    cpuUsPerTx: (cpu.user + cpu.system) / run.ops,
    mode: spec.mode ?? 'batches',
  })

  // -- check: reopen and scan every acknowledged transaction (uringdb: its data directory)
  if (spec.verify) {
    h = await engine.open(spec.dir)
    try {
      const t0 = process.hrtime.bigint()
      let states = 0
      let bad = 0
      let scanned = 0
      await h.scan((k, v) => {
        scanned++
        if (k[0] !== 0x74 /* t */) return // the marker
        const id = Number(Buffer.from(k.buffer, k.byteOffset + 3, 10).toString('latin1'))
        const rec = JSON.parse(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8'))
        if (rec.status !== 'committed' || done[id] !== 1) bad++
        else if (k.length > STATE.length && Buffer.compare(k.subarray(k.length - STATE.length), STATE) === 0) states++
      })
      const expectedKeys = 1 + committed * (branches + 1)
      out.verify = {
        committedStates: states,
        acknowledged: committed,
        bad,
        keys: scanned,
        expectedKeys,
        ok: states === committed && bad === 0 && scanned === expectedKeys,
        seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      }
      await h.batch([
        [MARKER, Buffer.from(JSON.stringify({ finishedAt: new Date().toISOString(), committed, lastCommittedTx }))],
      ])
    } finally {
      await h.close()
    }
  }
  if (!spec.persistent) fs.rmSync(spec.dir, { recursive: true, force: true })
  return out
})
