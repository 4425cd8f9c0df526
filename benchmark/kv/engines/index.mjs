// The key-value engines by name, each with the adapter contract every case relies on:
//
//   engine: { name, family, label, durability, singleWriter?, backend?, available(), open(dir) }
//   handle = await engine.open(dir):
//     put(key, value)      durable single write; a promise, or undefined when synchronous
//     batch(pairs)         durable atomic write of [key, value] pairs (same)
//     get(key)?            the async read path: Promise<value | undefined>
//     getSync(key)?        the sync read path (the value may be reused by the next call)
//     getSyncInto(key)?    a second sync path (uringdb: copy into a caller's buffer)
//     read(key)            the engine's idiomatic read, value or promise (stable value)
//     scan(onEntry)        full ordered scan, onEntry(key, value) per entry; resolves with the count
//     flush?()             write the memtable to tables (uringdb)
//     compact?()           compact the whole key range
//     info?()              engine statistics for the JSON report
//     close()
// Keys and values handed in are Buffers that the engine must copy at the call.

import { kvBetterSqlite3Engine } from './better-sqlite3.mjs'
import { kvClassicLevelEngine } from './classic-level.mjs'
import { kvLmdbEngine } from './lmdb.mjs'
import { kvRocksdbEngine } from './rocksdb.mjs'
import { kvUringdbEngine } from './uringdb.mjs'

const FACTORIES = {
  uringdb: () => kvUringdbEngine('auto'),
  'uringdb/io_uring': () => kvUringdbEngine('io_uring'),
  'uringdb/portable': () => kvUringdbEngine('portable'),
  lmdb: () => kvLmdbEngine('commit-sync'),
  'lmdb-flushed': () => kvLmdbEngine('flushed'),
  'classic-level': () => kvClassicLevelEngine(),
  rocksdb: () => kvRocksdbEngine(),
  'better-sqlite3': () => kvBetterSqlite3Engine(),
}

export const KV_ENGINE_NAMES = Object.keys(FACTORIES)

export function kvEngine(name) {
  const f = FACTORIES[name]
  if (!f) throw new Error(`unknown engine ${name} (known: ${KV_ENGINE_NAMES.join(', ')})`)
  return f()
}
