/**
 * A log's reads: a range of committed records, and a tail that waits for new ones, each
 * fetched from the engine in batches through a native cursor. {@link Log.read} and
 * {@link Log.tail} check their arguments and delegate here.
 *
 * @module
 */
import type * as native from '../binding.js'
import { toUringdbError } from './errors.js'
import { MiB } from './options.js'

/** A record read from the log. */
export interface LogRecord {
  /** Its sequence number. */
  seq: number
  /** Its bytes (a view into a buffer shared by the records of one read batch). */
  data: Buffer
}

// Bytes fetched per crossing at most.
const READ_BATCH_BYTES = 4 * MiB

/** The records in `[from, to)` (`from` 0: the first), `batch` per crossing at most. */
export async function* readRange(handle: native.NativeLog, from: number, to: number, batch: number): AsyncGenerator<LogRecord, void, undefined> {
  let cursor: native.NativeCursor
  try {
    cursor = handle.cursor(from)
  } catch (e) {
    throw toUringdbError(e)
  }
  for (;;) {
    let r: native.ReadResult
    try {
      r = await cursor.read(to, batch, READ_BATCH_BYTES)
    } catch (e) {
      throw toUringdbError(e)
    }
    const meta = r.meta
    if (meta.length === 0) return
    for (let i = 0; i < meta.length; i += 3) {
      yield { seq: meta[i], data: r.data.subarray(meta[i + 1], meta[i + 1] + meta[i + 2]) }
    }
  }
}

/**
 * The records from `next` on, then new ones as they become durable, until `signal` aborts,
 * `isClosing()` or the log closes (the iteration then ends normally). `token` names this
 * tail's waits (for `cancelWait`).
 */
export async function* tailFrom(
  handle: native.NativeLog,
  next: number,
  batch: number,
  signal: AbortSignal | undefined,
  token: number,
  isClosing: () => boolean,
): AsyncGenerator<LogRecord, void, undefined> {
  let cursor: native.NativeCursor
  try {
    cursor = handle.cursor(next)
  } catch (e) {
    throw toUringdbError(e)
  }
  const onAbort = (): void => {
    try {
      handle.cancelWait(token)
    } catch {
      // closed: the wait has ended already
    }
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    while (!signal?.aborted && !isClosing()) {
      let r: native.ReadResult
      try {
        r = await cursor.read(0, batch, READ_BATCH_BYTES)
      } catch (e) {
        const err = toUringdbError(e)
        if (err.code === 'ERR_URINGDB_CLOSED') return
        throw err
      }
      const meta = r.meta
      if (meta.length === 0) {
        // Checked synchronously right before the wait is registered: an abort that
        // happened while we were reading must not leave a wait nobody cancels.
        if (signal?.aborted || isClosing()) return
        let durable: number
        try {
          durable = await handle.waitFor(next, token)
        } catch (e) {
          const err = toUringdbError(e)
          if (err.code === 'ERR_URINGDB_CLOSED') return
          throw err
        }
        if (durable < 0) return
        continue
      }
      for (let i = 0; i < meta.length; i += 3) {
        next = meta[i] + 1
        yield { seq: meta[i], data: r.data.subarray(meta[i + 1], meta[i + 1] + meta[i + 2]) }
        if (signal?.aborted) return
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
}
