// uringdb's key-value Db, strictly through its documented API (the README and src/db.ts).
//
// Durability: opened with `sync: true` (the default, said explicitly), so put() and
// batch().write() resolve only after the write's commit group was written and fdatasynced.
// Memory: the defaults (64 MiB memtable, 64 MiB block cache); the peers are given the same
// budget (see classic-level.mjs, rocksdb.mjs, better-sqlite3.mjs).

import { loadUringdb } from '../../lib/uringdb.mjs'
import { NEXTV_SCAN_LABEL, nextvScan } from './nextv-scan.mjs'

async function loadDb() {
  const api = await loadUringdb()
  if (typeof api.open !== 'function') {
    throw new Error('the uringdb build does not export open() (the key-value Db is not built yet: run `npm run build`)')
  }
  return api
}

/** @param {'io_uring' | 'portable' | 'auto'} backend */
export function kvUringdbEngine(backend) {
  return {
    name: backend === 'auto' ? 'uringdb' : `uringdb/${backend}`,
    family: 'uringdb',
    label: `uringdb Db (sync: true, ioBackend '${backend}')`,
    durability: 'put()/batch().write() resolve after the commit group is written and fdatasynced (sync: true)',
    backend,
    async available() {
      await loadDb()
    },
    async open(dir) {
      const { open } = await loadDb()
      const db = await open(dir, { ioBackend: backend, sync: true })
      const target = Buffer.allocUnsafe(64 * 1024)
      return {
        db,
        put: (key, value) => db.put(key, value),
        batch(pairs) {
          const b = db.batch()
          for (let i = 0; i < pairs.length; i++) b.put(pairs[i][0], pairs[i][1])
          return b.write()
        },
        get: (key) => db.get(key),
        read: (key) => db.get(key),
        getSync: (key) => db.getSync(key),
        getSyncLabel: 'getSync(key)',
        // The zero-allocation sync path: the value is copied into a caller's buffer.
        getSyncInto: (key) => db.getSync(key, { target }),
        getSyncIntoLabel: 'getSync(key, { target })',
        // The synchronous range where the build has it (a build before it: the async
        // iterator's batches, so that an A/B against an older build runs).
        ...(typeof db.rangeSync === 'function'
          ? {
              async scan(onEntry) {
                let count = 0
                for (const [key, value] of db.rangeSync()) {
                  onEntry(key, value)
                  count++
                }
                return count
              },
              scanLabel: 'rangeSync() (synchronous iterable)',
              async scanKeys(onKey) {
                let count = 0
                for (const key of db.rangeSync({ values: false })) {
                  onKey(key)
                  count++
                }
                return count
              },
              scanKeysLabel: 'rangeSync({ values: false })',
            }
          : {
              scan: (onEntry) => nextvScan(db, onEntry),
              scanLabel: NEXTV_SCAN_LABEL,
              async scanKeys(onKey) {
                const it = db.iterator()
                let count = 0
                try {
                  for (;;) {
                    const chunk = await it.nextv(1000)
                    if (chunk.length === 0) break
                    for (let i = 0; i < chunk.length; i++) onKey(chunk[i][0])
                    count += chunk.length
                  }
                } finally {
                  await it.close()
                }
                return count
              },
              scanKeysLabel: 'iterator().nextv(1000), keys taken',
            }),
        flush: () => db.flush(),
        compact: () => db.compactRange(),
        info() {
          const s = db.stats()
          return {
            backend: s.log?.backend,
            fallbackReason: s.log?.fallbackReason,
            writeAmplification: s.writeAmplification,
            spaceAmplification: s.spaceAmplification,
            flushes: s.flushes,
            compactions: s.compactions,
            stalls: s.stalls,
            stallUs: s.stallUs,
            levels: s.levels?.map((l) => ({ level: l.level, files: l.files, bytes: l.bytes })),
            logGroups: s.log?.groups,
            logFsyncs: s.log?.fsyncs,
            logBytesWritten: s.log?.bytesWritten,
          }
        },
        close: () => db.close(),
      }
    },
  }
}
