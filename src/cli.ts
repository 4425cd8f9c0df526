#!/usr/bin/env node
/**
 * The `uringdb` command (the package's `bin`):
 *
 * ```text
 * uringdb logs <dir> [--since 10m] [--until <time>] [--level warn] [--grep text] [--follow]
 * uringdb logs stats <dir>
 * ```
 *
 * `logs` prints the matching lines as NDJSON, exactly as stored (pipe it into pino-pretty);
 * `logs stats` prints one JSON object: volume, compression ratio, time range, and the lines
 * the sampler dropped (summed from its summary lines in the store). Both read a
 * store that is being written. Exit status: 0, 1 on an error (printed to stderr with its
 * code), 2 on a usage error.
 *
 * @module
 */
import { parseArgs } from 'node:util'
import { readLogLines, logStoreStats } from './log-store.js'
import { UringdbError } from './errors.js'

const USAGE = `usage:
  uringdb logs <dir> [--since 10m] [--until <time>] [--level warn] [--grep text] [--follow]
  uringdb logs stats <dir>`

function usage(message: string): never {
  process.stderr.write(`uringdb: ${message}\n${USAGE}\n`)
  process.exit(2)
}

/** Writes `text`, waiting when stdout is full; false when stdout is closed (EPIPE). */
async function out(text: string): Promise<boolean> {
  if (process.stdout.destroyed) return false
  if (process.stdout.write(text)) return true
  await new Promise<void>((resolve) => {
    process.stdout.once('drain', resolve)
    process.stdout.once('close', resolve)
  })
  return !process.stdout.destroyed
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command !== 'logs') usage(command === undefined ? 'a command is required' : `unknown command ${JSON.stringify(command)}`)
  let parsed
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        level: { type: 'string' },
        grep: { type: 'string' },
        follow: { type: 'boolean', short: 'f' },
      },
    })
  } catch (e) {
    usage((e as Error).message)
  }
  const { values, positionals } = parsed
  if (positionals[0] === 'stats') {
    if (positionals.length !== 2) usage('logs stats takes one directory')
    const stats = logStoreStats(positionals[1])
    // Drops are in the store as the sampler's WARN summary lines: the level bitmap lets
    // this read only blocks holding WARN or above.
    const drops: Record<string, Record<string, number>> = {}
    for await (const line of readLogLines(positionals[1], { level: 'warn', match: '"uringdbDropped"' })) {
      const parsed = JSON.parse(line) as { uringdbDropped?: { level: string; reason: string; count: number }[] }
      for (const d of parsed.uringdbDropped ?? []) {
        const byReason = (drops[d.level] ??= {})
        byReason[d.reason] = (byReason[d.reason] ?? 0) + d.count
      }
    }
    await out(JSON.stringify({ ...stats, drops }) + '\n')
    return
  }
  if (positionals.length !== 1) usage('logs takes one directory')
  const level = values.level === undefined ? undefined : /^\d+$/.test(values.level) ? Number(values.level) : values.level
  const abort = new AbortController()
  process.once('SIGINT', () => abort.abort())
  process.once('SIGTERM', () => abort.abort())
  process.stdout.on('error', () => abort.abort())
  const lines = readLogLines(positionals[0], {
    since: values.since,
    until: values.until,
    level,
    match: values.grep,
    follow: values.follow === true,
    signal: abort.signal,
  })
  // Lines are gathered and written in chunks; a chunk is also written whenever the reader
  // waits (caught up with a followed store), so --follow prints lines as they come.
  let chunk = ''
  let scheduled = false
  let writing = Promise.resolve(true)
  const flush = (): void => {
    scheduled = false
    if (chunk.length === 0) return
    const text = chunk
    chunk = ''
    writing = writing.then((ok) => (ok ? out(text) : false))
  }
  for await (const line of lines) {
    chunk += line + '\n'
    if (chunk.length >= 64 * 1024) {
      flush()
      if (!(await writing)) return
    } else if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
    if (abort.signal.aborted) break
  }
  flush()
  await writing
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const code = e instanceof UringdbError ? e.code : 'ERR_URINGDB_INTERNAL'
  process.stderr.write(`uringdb: ${code}: ${(e as Error).message}\n`)
  process.exitCode = 1
})
