// lmdb-js durable puts, sequential uint32 keys, raw binary values (no msgpack).
//
// Durability: lmdb-js on Linux defaults to overlappingSync, where a put's promise resolves
// when its transaction is *committed* (visible) and the flush to disk happens afterwards; such
// a promise is not an acknowledgement of durability. So both durable configurations are run
// and the faster is the baseline:
//   'lmdb'         overlappingSync: false — the commit itself syncs; put() resolves after it;
//   'lmdb-flushed' the default overlappingSync: true with separateFlushed: true, awaiting
//                  put(...).flushed, which resolves after the OS reports the commit flushed.
// Neither uses noSync, noMetaSync or useWritemap. Every put of an event-loop turn is folded
// into one transaction and one sync (eventTurnBatching, the default).

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** @param {'commit-sync' | 'flushed'} variant */
export function lmdbEngine(variant) {
  return {
    name: variant === 'flushed' ? 'lmdb-flushed' : 'lmdb',
    label:
      variant === 'flushed'
        ? 'lmdb-js put().flushed (overlappingSync)'
        : 'lmdb-js put() (overlappingSync: false)',
    durability:
      variant === 'flushed'
        ? 'promise from put(...).flushed: the transaction is committed and flushed to disk'
        : 'put() promise resolves after the transaction commit, which syncs (overlappingSync off)',
    available() {
      require.resolve('lmdb')
    },
    async open(dir, { payload }) {
      const { open } = require('lmdb')
      const options =
        variant === 'flushed'
          ? { path: dir, encoding: 'binary', keyEncoding: 'uint32', separateFlushed: true }
          : { path: dir, encoding: 'binary', keyEncoding: 'uint32', overlappingSync: false }
      const db = open(options)
      let key = 0
      const op = variant === 'flushed' ? () => db.put(++key, payload).flushed : () => db.put(++key, payload)
      return {
        op,
        close: async () => {
          await db.flushed
          await db.close()
        },
      }
    },
  }
}
