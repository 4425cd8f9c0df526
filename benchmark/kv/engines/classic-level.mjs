// classic-level (LevelDB) as a key-value store, buffer keys and values.
//
// Durability: every write with { sync: true } (LevelDB WriteOptions.sync: the WAL record is
// fsynced before the promise resolves). Each write runs on libuv's thread pool; LevelDB's
// writer queue groups concurrent sync writers into one WAL append and fsync.
// Memory: writeBufferSize and cacheSize set to uringdb's defaults (64 MiB each) instead of
// LevelDB's 4 MiB / 8 MiB, so that no engine wins by having more memory; otherwise defaults
// (Snappy compression on, 2 MiB tables, 10-bit bloom filters as classic-level sets them).

import { createRequire } from 'node:module'
import { NEXTV_KEY_SCAN_LABEL, NEXTV_SCAN_LABEL, nextvKeyScan, nextvScan } from './nextv-scan.mjs'

const require = createRequire(import.meta.url)
const MiB = 1 << 20
const SYNC = { sync: true }
// compactRange needs bounds: below every 16-byte key, and above.
const LOW = Buffer.alloc(1, 0)
const HIGH = Buffer.alloc(64, 0xff)

export function kvClassicLevelEngine() {
  return {
    name: 'classic-level',
    family: 'classic-level',
    label: 'classic-level (LevelDB), writes with { sync: true }',
    durability: 'LevelDB sync write: the WAL record is fsynced before the promise resolves',
    available() {
      require.resolve('classic-level')
    },
    async open(dir) {
      const { ClassicLevel } = require('classic-level')
      const db = new ClassicLevel(dir, {
        keyEncoding: 'buffer',
        valueEncoding: 'buffer',
        writeBufferSize: 64 * MiB,
        cacheSize: 64 * MiB,
      })
      await db.open()
      return {
        db,
        put: (key, value) => db.put(key, value, SYNC),
        batch(pairs) {
          const b = db.batch()
          for (let i = 0; i < pairs.length; i++) b.put(pairs[i][0], pairs[i][1])
          return b.write(SYNC)
        },
        get: (key) => db.get(key),
        read: (key) => db.get(key),
        getSync: (key) => db.getSync(key),
        getSyncLabel: 'getSync(key)',
        scan: (onEntry) => nextvScan(db, onEntry),
        scanLabel: NEXTV_SCAN_LABEL,
        scanKeys: (onKey) => nextvKeyScan(db, onKey),
        scanKeysLabel: NEXTV_KEY_SCAN_LABEL,
        compact: () => db.compactRange(LOW, HIGH),
        close: () => db.close(),
      }
    },
  }
}
