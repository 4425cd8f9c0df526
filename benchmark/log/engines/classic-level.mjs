// classic-level (LevelDB) puts with { sync: true }: LevelDB's writer queue groups concurrent
// sync writes into one WAL append and one fsync; each put runs on libuv's thread pool.
// Sequential zero-padded string keys, Buffer values.

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export function classicLevelEngine() {
  return {
    name: 'classic-level',
    label: 'classic-level put({ sync: true })',
    durability: 'LevelDB WriteOptions.sync: the WAL record is fsynced before the callback',
    available() {
      require.resolve('classic-level')
    },
    async open(dir, { payload }) {
      const { ClassicLevel } = require('classic-level')
      const db = new ClassicLevel(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
      await db.open()
      let key = 0
      const sync = { sync: true }
      return {
        op: () => db.put((++key).toString(16).padStart(12, '0'), payload, sync),
        close: () => db.close(),
      }
    },
  }
}
