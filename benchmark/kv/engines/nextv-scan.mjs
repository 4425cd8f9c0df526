// The full ordered scan of an abstract-level style iterator (uringdb's Db and classic-level):
// batches of 1000 entries through nextv(), one crossing per batch.

/** Calls onEntry(key, value) for every entry of db.iterator(); resolves with the count. */
export async function nextvScan(db, onEntry) {
  const it = db.iterator()
  let count = 0
  try {
    for (;;) {
      const chunk = await it.nextv(1000)
      if (chunk.length === 0) break
      for (let i = 0; i < chunk.length; i++) onEntry(chunk[i][0], chunk[i][1])
      count += chunk.length
    }
  } finally {
    await it.close()
  }
  return count
}

export const NEXTV_SCAN_LABEL = 'iterator().nextv(1000)'

/** Calls onKey(key) for every key of db.keys() in batches of 1000 (classic-level); resolves with the count. */
export async function nextvKeyScan(db, onKey) {
  const it = db.keys()
  let count = 0
  try {
    for (;;) {
      const chunk = await it.nextv(1000)
      if (chunk.length === 0) break
      for (let i = 0; i < chunk.length; i++) onKey(chunk[i])
      count += chunk.length
    }
  } finally {
    await it.close()
  }
  return count
}

export const NEXTV_KEY_SCAN_LABEL = 'keys().nextv(1000)'
