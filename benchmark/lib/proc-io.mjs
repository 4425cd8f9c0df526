// What a process wrote to storage, and what a directory occupies on disk.
//
// /proc/self/io `write_bytes` counts the bytes this process (all its threads, including
// exited ones and io_uring's io-wq workers) caused to be sent to the block layer: a
// buffered write is counted when it first dirties a page (page-granular, so rewriting and
// fdatasyncing the same 4 KiB page again counts it again), a direct write when it is
// submitted. The file system's journal (written by jbd2, another process) and the device's
// own amplification are not included. `cancelled_write_bytes` counts dirty pages dropped
// before writeback (a file truncated or deleted while still dirty); we report it beside.
//
// Compaction threads of RocksDB and LevelDB run inside the engine's process, so they are
// covered; that is why every engine runs in a child process of its own (see kv/child.mjs, txn/child.mjs).

import fs from 'node:fs'
import path from 'node:path'

/** @returns {{readBytes: number, writeBytes: number, cancelledWriteBytes: number, wchar: number} | null} */
export function procIo() {
  let text
  try {
    text = fs.readFileSync('/proc/self/io', 'utf8')
  } catch {
    return null // not Linux, or /proc not mounted: the write-amplification rows read n/a
  }
  const f = {}
  for (const line of text.split('\n')) {
    const [k, v] = line.split(': ')
    if (k && v !== undefined) f[k] = Number(v)
  }
  return {
    readBytes: f.read_bytes,
    writeBytes: f.write_bytes,
    cancelledWriteBytes: f.cancelled_write_bytes,
    wchar: f.wchar,
  }
}

/** `after - before`, field by field (null if either is null). */
export function ioDelta(before, after) {
  if (!before || !after) return null
  return {
    readBytes: after.readBytes - before.readBytes,
    writeBytes: after.writeBytes - before.writeBytes,
    cancelledWriteBytes: after.cancelledWriteBytes - before.cancelledWriteBytes,
    wchar: after.wchar - before.wchar,
  }
}

/**
 * Space a directory tree occupies, like `du -s --block-size=1` (allocated blocks, so a
 * preallocated or zero-filled file counts in full) and like `du -s --apparent-size`.
 * `files` lists each regular file (relative path, allocated bytes), largest first.
 */
export function diskUsage(dir) {
  let allocatedBytes = 0
  let apparentBytes = 0
  const files = []
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name)
      const st = fs.lstatSync(p)
      allocatedBytes += st.blocks * 512
      apparentBytes += st.size
      if (entry.isDirectory()) walk(p)
      else if (entry.isFile()) files.push({ file: path.relative(dir, p), allocatedBytes: st.blocks * 512, bytes: st.size })
    }
  }
  walk(dir)
  files.sort((a, b) => b.allocatedBytes - a.allocatedBytes)
  return { allocatedBytes, apparentBytes, files }
}

/**
 * Waits until the process has written nothing for `quietMs` (background flushes and
 * compactions have settled), at most `maxMs`. Returns the milliseconds waited.
 */
export async function settleWrites({ quietMs, maxMs }) {
  const start = Date.now()
  let last = procIo()?.writeBytes
  if (last === undefined) return 0
  let quietSince = Date.now()
  const step = Math.max(20, Math.min(200, quietMs / 4))
  while (Date.now() - start < maxMs) {
    await new Promise((r) => setTimeout(r, step))
    const now = procIo().writeBytes
    if (now !== last) {
      last = now
      quietSince = Date.now()
    } else if (Date.now() - quietSince >= quietMs) break
  }
  return Date.now() - start
}
