// The engines of the transactions workload (txn.mjs): the key-value adapters of kv/engines/
// (same durable modes and settings as kv/db.mjs), named as --only takes them. A transaction
// needs an atomic durable batch and a read, which every key-value adapter has.

import { kvEngine } from '../kv/engines/index.mjs'

/** Every engine --only may name. */
export const TXN_ENGINES = ['uringdb', 'uringdb+2pc', 'lmdb', 'classic-level', 'better-sqlite3', 'rocksdb']

/** The engines of a run without --only (rocksdb only on request). */
export const DEFAULT_TXN_ENGINES = ['uringdb', 'uringdb+2pc', 'lmdb', 'classic-level', 'better-sqlite3']

/** `uringdb+2pc`: uringdb running the prepare + commitPrepared variant (child.mjs `mode: '2pc'`). */
export const txnMode = (registryName) => (registryName.startsWith('uringdb+2pc') ? '2pc' : 'batches')

/**
 * The adapter for an engine's registry name: a name of TXN_ENGINES, or uringdb with its
 * backend (`uringdb/io_uring`, `uringdb/portable`).
 */
export const txnEngine = (registryName) => {
  if (!registryName.startsWith('uringdb+2pc')) return kvEngine(registryName)
  const backend = registryName.split('/')[1]
  const e = kvEngine(backend ? `uringdb/${backend}` : 'uringdb')
  return { ...e, name: registryName, label: `${e.label}, prepare + commitPrepared`, available: () => e.available(), open: (dir) => e.open(dir) }
}
