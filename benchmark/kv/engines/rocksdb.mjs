// The `rocksdb` npm binding (Level/rocksdb: leveldown's API over RocksDB), buffer keys and
// values. Its API is callback-based (abstract-leveldown 7); each call is wrapped in a promise.
//
// Durability: every write with { sync: true } (RocksDB WriteOptions.sync: the WAL is fsynced
// before the callback). Writes run on libuv's thread pool; RocksDB groups concurrent writers.
// Memory: writeBufferSize and cacheSize 64 MiB (the binding's defaults are 4 MiB / 8 MiB),
// matching uringdb's defaults; otherwise the binding's defaults (Snappy, 4 KiB blocks,
// 10-bit bloom filters, leveled compaction). The binding has no sync get.

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const MiB = 1 << 20
const SYNC = { sync: true }
const NO_OPTIONS = {}
const LOW = Buffer.alloc(1, 0)
const HIGH = Buffer.alloc(64, 0xff)

const call = (fn) =>
  new Promise((resolve, reject) => {
    fn((err, value) => (err ? reject(err) : resolve(value)))
  })

export function kvRocksdbEngine() {
  return {
    name: 'rocksdb',
    family: 'rocksdb',
    label: 'rocksdb (npm binding), writes with { sync: true }',
    durability: 'RocksDB sync write: the WAL is fsynced before the callback',
    available() {
      require.resolve('rocksdb')
    },
    async open(dir) {
      const RocksDB = require('rocksdb')
      const db = RocksDB(dir)
      await call((cb) => db.open({ writeBufferSize: 64 * MiB, cacheSize: 64 * MiB }, cb))
      const get = (key) =>
        new Promise((resolve, reject) => {
          db.get(key, NO_OPTIONS, (err, value) => {
            if (!err) resolve(value)
            else if (/NotFound/i.test(err.message)) resolve(undefined)
            else reject(err)
          })
        })
      return {
        db,
        put: (key, value) => call((cb) => db.put(key, value, SYNC, cb)),
        batch(pairs) {
          const b = db.batch()
          for (let i = 0; i < pairs.length; i++) b.put(pairs[i][0], pairs[i][1])
          return call((cb) => b.write(SYNC, cb))
        },
        get,
        read: get,
        async scan(onEntry) {
          const it = db.iterator({ keyAsBuffer: true, valueAsBuffer: true })
          let count = 0
          try {
            for (;;) {
              const entry = await new Promise((resolve, reject) => {
                it.next((err, key, value) => (err ? reject(err) : resolve(key === undefined ? null : [key, value])))
              })
              if (entry === null) break
              onEntry(entry[0], entry[1])
              count++
            }
          } finally {
            await call((cb) => it.end(cb))
          }
          return count
        },
        scanLabel: 'iterator().next(cb) (entries cached natively in batches)',
        compact: () => call((cb) => db.compactRange(LOW, HIGH, cb)),
        close: () => call((cb) => db.close(cb)),
      }
    },
  }
}
