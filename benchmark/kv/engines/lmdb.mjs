// lmdb-js as a key-value store: binary keys (bytewise order) and binary values (no msgpack).
//
// Durability: on Linux lmdb-js defaults to `overlappingSync`, where a write's promise
// resolves when its transaction is committed and visible and the flush to disk follows;
// that promise is not a durability acknowledgement. So two durable configurations:
//   'lmdb'          overlappingSync: false — the commit itself syncs; the promise resolves after;
//   'lmdb-flushed'  the default overlappingSync with separateFlushed: true, awaiting `.flushed`
//                   (resolves once the OS reports the commit flushed).
// Neither uses noSync, noMetaSync or useWritemap. lmdb-js folds every write of one event
// turn into one transaction and one sync (eventTurnBatching, the default): its group commit.
// Batches use db.transaction(() => { puts }), one LMDB transaction per batch (merged with
// whatever else was queued in the same turn).
//
// Reads: getBinaryFast() is the sync path (the returned buffer is reused by the next read);
// getAsync() (documented as experimental) is the async one; get() is the idiomatic read.

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** @param {'commit-sync' | 'flushed'} variant */
export function kvLmdbEngine(variant = 'commit-sync') {
  const flushed = variant === 'flushed'
  return {
    name: flushed ? 'lmdb-flushed' : 'lmdb',
    family: 'lmdb',
    label: flushed ? 'lmdb-js put().flushed (overlappingSync)' : 'lmdb-js put() (overlappingSync: false)',
    durability: flushed
      ? 'the promise from put(...).flushed: committed and flushed to disk'
      : 'put()/transaction() promise resolves after the commit, which syncs (overlappingSync off)',
    available() {
      require.resolve('lmdb')
    },
    async open(dir) {
      const { open } = require('lmdb')
      const db = open(
        flushed
          ? { path: dir, encoding: 'binary', keyEncoding: 'binary', separateFlushed: true }
          : { path: dir, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false },
      )
      return {
        db,
        put: flushed ? (key, value) => db.put(key, value).flushed : (key, value) => db.put(key, value),
        batch(pairs) {
          const committed = db.transaction(() => {
            for (let i = 0; i < pairs.length; i++) db.put(pairs[i][0], pairs[i][1])
          })
          return flushed ? committed.then(() => db.flushed) : committed
        },
        get: (key) => db.getAsync(key),
        getLabel: 'getAsync(key) (experimental)',
        read: (key) => db.get(key),
        getSync: (key) => db.getBinaryFast(key),
        getSyncLabel: 'getBinaryFast(key)',
        async scan(onEntry) {
          let count = 0
          for (const { key, value } of db.getRange({})) {
            onEntry(key, value)
            count++
          }
          return count
        },
        scanLabel: 'getRange() (synchronous iterable)',
        async scanKeys(onKey) {
          let count = 0
          for (const key of db.getKeys({})) {
            onKey(key)
            count++
          }
          return count
        },
        scanKeysLabel: 'getKeys() (synchronous iterable)',
        close: async () => {
          await db.flushed
          await db.close()
        },
      }
    },
  }
}
