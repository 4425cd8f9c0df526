/**
 * Reading a uringdb/pino log store: {@link readLogs}, {@link logStoreStats}, and the time
 * and level arguments they share with the `uringdb logs` command.
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises'
import * as native from '../binding.js'
import { UringdbError, toUringdbError, invalidArgument } from './errors.js'

/** pino's level names and their numbers. */
export const LEVELS: Readonly<Record<string, number>> = Object.freeze({
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
})

/** Options of {@link readLogs}. */
export interface ReadLogsOptions {
  /**
   * Only lines whose `time` is at or after this: a `Date`, milliseconds since the epoch, an
   * ISO date string, or a duration back from now such as `'10m'`, `'2h'`, `'30s'`, `'1d'`.
   */
  since?: Date | number | string
  /** Only lines whose `time` is at or before this (same forms as `since`). */
  until?: Date | number | string
  /** Only lines at this level or above: a pino level name or number. */
  level?: string | number
  /**
   * Only lines that contain this text (checked on the stored line, before parsing), or
   * that the regular expression matches.
   */
  match?: string | RegExp
  /** Keep waiting for new lines at the end of the store (until `signal` aborts). */
  follow?: boolean
  /** How often a following reader looks for new lines, in ms (default 200). */
  pollMs?: number
  /** Stops a following reader. */
  signal?: AbortSignal
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** A time argument as milliseconds since the epoch; `name` is used in errors. */
export function parseTime(name: string, value: Date | number | string, now = Date.now()): number {
  if (value instanceof Date) {
    const t = value.getTime()
    if (Number.isFinite(t)) return t
  } else if (typeof value === 'number') {
    if (Number.isFinite(value)) return value
  } else if (typeof value === 'string') {
    const rel = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim())
    if (rel !== null) return now - Number(rel[1]) * UNITS[rel[2]]
    const t = Date.parse(value)
    if (Number.isFinite(t)) return t
  }
  throw new UringdbError('ERR_URINGDB_INVALID_OPTION', `invalid option ${name}: expected a Date, a time in ms, an ISO date or a duration such as '10m', got ${String(value)}`, { field: name })
}

/** A level argument as pino's number. */
export function parseLevel(value: string | number): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value
  if (typeof value === 'string' && Object.hasOwn(LEVELS, value)) return LEVELS[value]
  throw new UringdbError('ERR_URINGDB_INVALID_OPTION', `invalid option level: expected one of ${Object.keys(LEVELS).join(', ')} or a level number, got ${String(value)}`, { field: 'level' })
}

const READ_BATCH_BYTES = 256 * 1024

/**
 * Reads the lines of a log store in order, as parsed objects, reading only the blocks whose
 * time range and levels can match. Works on a store that is being written (read-only; a
 * block still being written is not read until it is complete). Each step decodes about
 * 256 KiB of matching lines synchronously, then yields.
 *
 * ```ts
 * for await (const line of readLogs('./logs', { since: '10m', level: 'warn' })) console.log(line.msg)
 * ```
 */
export async function* readLogs(dir: string, options: ReadLogsOptions = {}): AsyncGenerator<Record<string, unknown>, void, undefined> {
  for await (const text of readLogLines(dir, options)) {
    yield JSON.parse(text) as Record<string, unknown>
  }
}

/**
 * Like {@link readLogs}, but yields each matching line's text (without its newline), as
 * stored: what `uringdb logs` prints.
 */
export async function* readLogLines(dir: string, options: ReadLogsOptions = {}): AsyncGenerator<string, void, undefined> {
  if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('dir must be a non-empty string')
  const now = Date.now()
  const filter: native.NativeReadFilter = {}
  if (options.since !== undefined) filter.since = parseTime('since', options.since, now)
  if (options.until !== undefined) filter.until = parseTime('until', options.until, now)
  if (options.level !== undefined) filter.minLevel = parseLevel(options.level)
  const { match } = options
  if (typeof match === 'string') filter.contains = match
  else if (match !== undefined && !(match instanceof RegExp)) {
    throw new UringdbError('ERR_URINGDB_INVALID_OPTION', 'invalid option match: expected a string or a RegExp', { field: 'match' })
  }
  const pollMs = options.pollMs ?? 200
  if (!Number.isInteger(pollMs) || pollMs < 1) {
    throw new UringdbError('ERR_URINGDB_INVALID_OPTION', 'invalid option pollMs: expected a positive integer', { field: 'pollMs' })
  }
  let reader: native.NativeLogReader
  try {
    reader = native.openLogReader(dir, filter)
  } catch (e) {
    throw toUringdbError(e)
  }
  for (;;) {
    let batch: Buffer | null
    try {
      batch = reader.nextLines(READ_BATCH_BYTES)
    } catch (e) {
      throw toUringdbError(e)
    }
    if (batch === null) {
      if (options.follow !== true || options.signal?.aborted === true) return
      try {
        await sleep(pollMs, undefined, { signal: options.signal })
      } catch {
        return
      }
      continue
    }
    const text = batch.toString('utf8')
    let start = 0
    for (;;) {
      const nl = text.indexOf('\n', start)
      if (nl < 0) break
      const line = text.slice(start, nl)
      start = nl + 1
      if (match instanceof RegExp && !match.test(line)) continue
      yield line
    }
  }
}

/** Totals over a store's block headers ({@link logStoreStats}). */
export interface LogStoreStats {
  /** Segment files. */
  segments: number
  /** Blocks. */
  blocks: number
  /** Lines. */
  lines: number
  /** Raw NDJSON bytes of the lines. */
  rawBytes: number
  /** Bytes of the segment files on disk. */
  fileBytes: number
  /** `rawBytes / fileBytes`. */
  compressionRatio: number
  /** Earliest line time (ms since the epoch), if any line has one. */
  minTime?: number
  /** Latest line time. */
  maxTime?: number
}

/** Walks the block headers of a store (payloads are not read). */
export function logStoreStats(dir: string): LogStoreStats {
  let s: native.NativeLogSummary
  try {
    s = native.summarizeLogs(dir)
  } catch (e) {
    throw toUringdbError(e)
  }
  return {
    segments: s.segments,
    blocks: s.blocks,
    lines: s.lines,
    rawBytes: s.rawBytes,
    fileBytes: s.fileBytes,
    compressionRatio: s.fileBytes > 0 ? s.rawBytes / s.fileBytes : 0,
    ...(s.minTime !== undefined && s.minTime !== null ? { minTime: s.minTime } : {}),
    ...(s.maxTime !== undefined && s.maxTime !== null ? { maxTime: s.maxTime } : {}),
  }
}
