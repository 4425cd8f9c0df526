// better-sqlite3 synchronous autocommit inserts, one writer (the API is synchronous, so more
// callers would only queue behind each other). journal_mode=WAL with synchronous=FULL: every
// commit fsyncs the WAL before the insert returns.

import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export function betterSqlite3Engine() {
  return {
    name: 'better-sqlite3',
    label: 'better-sqlite3 INSERT autocommit (WAL, synchronous=FULL)',
    durability: 'each autocommit transaction fsyncs the WAL before run() returns',
    singleWriter: true,
    available() {
      require.resolve('better-sqlite3')
    },
    async open(dir, { payload }) {
      const Database = require('better-sqlite3')
      const db = new Database(path.join(dir, 'log.db'))
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = FULL')
      db.exec('CREATE TABLE log (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)')
      const insert = db.prepare('INSERT INTO log (seq, data) VALUES (?, ?)')
      let seq = 0
      return {
        op: () => {
          insert.run(++seq, payload)
        },
        close: async () => db.close(),
      }
    },
  }
}
