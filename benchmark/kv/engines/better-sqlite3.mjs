// better-sqlite3 as a key-value store: one WITHOUT ROWID table (k BLOB PRIMARY KEY, v BLOB),
// so rows live in the primary key's B-tree, ordered bytewise like the other engines' keys.
//
// Durability: journal_mode = WAL, synchronous = FULL: every commit fsyncs the WAL before the
// statement returns. A put is one INSERT OR REPLACE in its own (autocommit) transaction; a
// batch is one explicit transaction. The API is synchronous (it blocks the event loop during
// the fsync), so more writers than one only queue: it is run with one writer.
// Memory: cache_size 64 MiB (SQLite's default is 2 MiB), matching uringdb's block cache.

import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export function kvBetterSqlite3Engine() {
  return {
    name: 'better-sqlite3',
    family: 'better-sqlite3',
    label: 'better-sqlite3 (WAL, synchronous=FULL), one transaction per put/batch',
    durability: 'each transaction fsyncs the WAL before it returns (synchronous=FULL)',
    singleWriter: true,
    available() {
      require.resolve('better-sqlite3')
    },
    async open(dir) {
      const Database = require('better-sqlite3')
      const db = new Database(path.join(dir, 'kv.db'))
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = FULL')
      db.pragma(`cache_size = ${-64 * 1024}`) // KiB when negative
      db.exec('CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID')
      const upsert = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)')
      const select = db.prepare('SELECT v FROM kv WHERE k = ?').pluck()
      const writeMany = db.transaction((pairs) => {
        for (let i = 0; i < pairs.length; i++) upsert.run(pairs[i][0], pairs[i][1])
      })
      return {
        db,
        put: (key, value) => {
          upsert.run(key, value)
        },
        batch: (pairs) => {
          writeMany(pairs)
        },
        read: (key) => select.get(key),
        getSync: (key) => select.get(key),
        getSyncLabel: "prepare('SELECT v … WHERE k = ?').pluck().get(key)",
        async scan(onEntry) {
          let count = 0
          for (const row of db.prepare('SELECT k, v FROM kv ORDER BY k').raw().iterate()) {
            onEntry(row[0], row[1])
            count++
          }
          return count
        },
        scanLabel: "prepare('SELECT k, v … ORDER BY k').raw().iterate()",
        close: async () => db.close(),
      }
    },
  }
}
