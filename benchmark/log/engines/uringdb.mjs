// uringdb's durable log: `append(record)` with sync: true (the default), which resolves only
// after the group holding the record was written and fdatasynced.

import { loadUringdb } from '../../lib/uringdb.mjs'

/** @param {'io_uring' | 'portable'} backend */
export function uringdbEngine(backend) {
  return {
    name: `uringdb/${backend}`,
    label: `uringdb append (sync: true, ioBackend '${backend}')`,
    durability: 'append() resolves after its group is written and fdatasynced (sync: true)',
    backend,
    async available() {
      await loadUringdb()
    },
    async open(dir, { payload }) {
      const { openLog } = await loadUringdb()
      const log = await openLog(dir, { ioBackend: backend, sync: true })
      return {
        op: () => log.append(payload),
        counters: () => {
          const s = log.stats()
          return { groups: s.groups, fsyncs: s.fsyncs, appends: s.appends, backend: s.backend }
        },
        close: () => log.close(),
      }
    },
  }
}
