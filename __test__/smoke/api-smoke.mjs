// The API smoke test of a cross-built addon (issue 13): run by scripts/cross-check.sh under
// qemu-user with an official Node build for the target architecture, against a staged copy of
// the package whose only addon is the cross-built one. Not an ava file: it must run on a bare
// Node with nothing but the package itself.
//
//   node api-smoke.mjs <package dir> <data dir>
//
// It exercises each product once through the public entry point: the key-value database
// (put, get, getSync, batch, iterator, rangeSync, snapshot, prepare/commitPrepared, close and
// reopen: every acknowledged write is back) and the log (append, read back, stats, reopen).
// Prints one line `SMOKE ok backend=<backend> arch=<arch> node=<version>` and exits 0, or
// throws (exit 1).
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const [pkgDir, dataDir] = process.argv.slice(2)
if (!pkgDir || !dataDir) {
  console.error('usage: node api-smoke.mjs <package dir> <data dir>')
  process.exit(2)
}
const require = createRequire(path.join(path.resolve(pkgDir), 'package.json'))
const { open, openLog } = require(path.resolve(pkgDir, 'dist', 'index.js'))
fs.rmSync(dataDir, { recursive: true, force: true })

// The key-value database.
const dbDir = path.join(dataDir, 'db')
let db = await open(dbDir)
await db.put('a', 'one')
await db.batch([
  { type: 'put', key: 'b', value: 'two' },
  { type: 'put', key: 'c', value: 'three' },
  { type: 'del', key: 'a' },
])
assert.equal(await db.get('b', { encoding: 'utf8' }), 'two')
assert.equal(db.getSync('c', { encoding: 'utf8' }), 'three')
assert.equal(await db.get('a'), undefined)
const keys = []
for await (const [k] of db.iterator({ keyEncoding: 'utf8' })) keys.push(k)
assert.deepEqual(keys, ['b', 'c'])
assert.deepEqual([...db.rangeSync({ keyEncoding: 'utf8', values: false })].map((e) => e.key ?? e), ['b', 'c'])
const snap = db.snapshot()
await db.put('b', 'changed')
assert.equal(await db.get('b', { encoding: 'utf8', snapshot: snap }), 'two')
snap.release()
await db.prepare('tx-1', [{ type: 'put', key: 'p', value: 'prepared' }])
assert.equal(await db.get('p'), undefined, 'a prepared write is invisible')
await db.commitPrepared('tx-1')
assert.equal(await db.get('p', { encoding: 'utf8' }), 'prepared')
const backend = db.stats().log.backend
await db.close()
db = await open(dbDir)
assert.equal(await db.get('b', { encoding: 'utf8' }), 'changed', 'reopened: writes are back')
assert.equal(await db.get('p', { encoding: 'utf8' }), 'prepared')
await db.close()

// The log.
const logDir = path.join(dataDir, 'log')
let log = await openLog(logDir)
const seqs = []
for (let i = 0; i < 100; i++) seqs.push(log.append(Buffer.from(`record ${i}`)))
const got = await Promise.all(seqs)
assert.equal(got.length, 100)
await log.close()
log = await openLog(logDir)
let n = 0
for await (const r of log.read({ from: got[0] })) {
  assert.equal(Buffer.from(r.data).toString(), `record ${n}`)
  n++
}
assert.equal(n, 100, 'reopened log: every record is back')
await log.close()
fs.rmSync(dataDir, { recursive: true, force: true })
console.log(`SMOKE ok backend=${backend} arch=${process.arch} node=${process.version}`)
