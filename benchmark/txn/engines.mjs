// The engines of the transactions workload (txn.mjs): the key-value adapters of kv/engines/
// (same durable modes and settings as kv/db.mjs), named as --only takes them. A transaction
// needs an atomic durable batch and a read, which every key-value adapter has.

import { kvEngine } from '../kv/engines/index.mjs'

/** Every engine --only may name. */
export const TXN_ENGINES = ['uringdb', 'uringdb+2pc', 'uringdb+occ', 'lmdb', 'lmdb+txn', 'classic-level', 'better-sqlite3', 'rocksdb']

/** The engines of a run without --only (rocksdb only on request). */
export const DEFAULT_TXN_ENGINES = ['uringdb', 'uringdb+2pc', 'uringdb+occ', 'lmdb', 'lmdb+txn', 'classic-level', 'better-sqlite3']

// Variants: an engine's adapter running another shape of transaction (child.mjs `mode`).
const VARIANTS = {
  '+2pc': { mode: '2pc', label: 'prepare + commitPrepared' },
  '+occ': { mode: 'occ', label: 'db.transaction (optimistic): read 3, write 4' },
  '+txn': { mode: 'occ', label: 'db.transaction(() => { get 3; put 4 }) (serialized write transaction)' },
}
const variantOf = (registryName) => Object.keys(VARIANTS).find((v) => registryName.split('/')[0].endsWith(v))

/**
 * The transaction shape of an engine: `2pc` (uringdb+2pc: prepare + commitPrepared), `occ`
 * (uringdb+occ and lmdb+txn: one read-then-write transaction), else `batches`.
 */
export const txnMode = (registryName) => VARIANTS[variantOf(registryName)]?.mode ?? 'batches'

/**
 * The adapter for an engine's registry name: a name of TXN_ENGINES, or uringdb with its
 * backend (`uringdb/io_uring`, `uringdb+occ/portable`, ...).
 */
export const txnEngine = (registryName) => {
  const v = variantOf(registryName)
  if (v === undefined) return kvEngine(registryName)
  const [name, backend] = registryName.split('/')
  const base = name.slice(0, -v.length)
  const e = kvEngine(backend ? `${base}/${backend}` : base)
  return { ...e, name: registryName, label: `${e.label}, ${VARIANTS[v].label}`, available: () => e.available(), open: (dir) => e.open(dir) }
}
