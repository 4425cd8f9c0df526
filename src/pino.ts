/**
 * The pino destination ({@link LogDestination}, {@link destination}) of `uringdb/pino`.
 *
 * A SonicBoom-shaped stream: `write(string)` copies the line into the native sink's commit
 * ring in one synchronous call and returns (no promise, no batching here); the sink's
 * writer thread builds compressed, time-indexed blocks and syncs them as `sync` says. The
 * store opens off the JavaScript thread; lines written before it is open wait in a bounded
 * buffer here and go to the ring, in order, when it is (`ready`).
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import { z } from 'zod'
import * as native from '../binding.js'
import { UringdbError, toUringdbError } from './errors.js'
import { parseOptions, MiB } from './options.js'

const levelSampling = z
  .object({
    /** Lines per message and window always kept. */
    first: z.number().int().min(0).max(2 ** 32 - 1),
    /** After those, every `thereafter`-th is kept; 0 drops the rest of the window. */
    thereafter: z.number().int().min(0).max(2 ** 32 - 1),
  })
  .strict()

/**
 * Sampling and rate limits per level, applied by the writer thread (ERROR and FATAL are
 * never sampled): zap's semantics per (level, message) in windows of `tickMs`; a trace
 * whose line was kept keeps all its lines; a trace with more than `traceInfoCap` INFO lines
 * in a row is silenced for the rest of its INFO lines. Drops are counted in `stats()` and
 * summarized in a WARN line in the store every `summaryIntervalMs`.
 */
export const SamplingOptionsSchema = z
  .object({
    /** The counting window, ms. */
    tickMs: z.number().int().min(1).max(3_600_000).default(1000),
    /** TRACE lines: first N per window and message, then every Mth. */
    trace: levelSampling.optional(),
    /** DEBUG lines. */
    debug: levelSampling.optional(),
    /** INFO lines. */
    info: levelSampling.optional(),
    /** WARN lines. */
    warn: levelSampling.optional(),
    /** The per-trace cap on INFO lines in a row. */
    traceInfoCap: z.number().int().min(1).max(2 ** 32 - 1).optional(),
    /** Period of the drop summary line, ms. */
    summaryIntervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
  })
  .strict()

/**
 * Options of {@link destination}, as a zod schema: unknown keys are rejected and errors
 * name the field. The TypeScript type {@link LogDestinationOptions} is inferred from it.
 */
export const LogDestinationOptionsSchema = z
  .object({
    /** The store's directory (created if missing). */
    dir: z.string().min(1),
    /**
     * Durability: `'none'` (only `flushSync()` and close sync), `'interval'` (a group
     * fdatasync at most every `syncIntervalMs` while anything is unsynced) or `'always'`
     * (every group the writer drains is written and synced at once; `write` still does not
     * wait). `flushSync()` makes everything written before it durable in every mode.
     */
    sync: z.enum(['none', 'interval', 'always']).default('interval'),
    /** The group fdatasync period of `sync: 'interval'`, in milliseconds. */
    syncIntervalMs: z.number().int().min(1).max(3_600_000).default(1000),
    /** Raw (uncompressed) bytes per block. */
    blockBytes: z.number().int().min(4096).max(4 * MiB).default(128 * 1024),
    /** Capacity of the commit ring, in bytes, a power of two; a line is at most half of it. */
    ringBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(1024 * MiB)
      .refine((n) => (n & (n - 1)) === 0, { message: 'must be a power of two' })
      .default(16 * MiB),
    /** A segment file is sealed and the next one started at this size, in bytes. */
    segmentBytes: z.number().int().min(64 * 1024).max(2 ** 40).default(64 * MiB),
    /** zstd level of the blocks (1 is fastest). */
    compressionLevel: z.number().int().min(1).max(19).default(1),
    /** The string field that carries a trace id (indexed by the writer). */
    traceField: z.string().max(64).regex(/^[^"\\\u0000-\u001f]*$/, 'no quotes, backslashes or control characters').default('traceId'),
    /**
     * When the ring is full: `'wait'` blocks the write until the writer frees space
     * (back-pressure, no line lost), `'drop'` drops the line and emits `drop`.
     */
    whenFull: z.enum(['wait', 'drop']).default('wait'),
    /** Bytes of lines buffered while the store opens; beyond it lines are dropped (`drop`). */
    openBufferBytes: z.number().int().min(0).max(1024 * MiB).default(16 * MiB),
    /** I/O backend: `auto` probes io_uring at open and falls back to `portable`. */
    ioBackend: z.enum(['auto', 'io_uring', 'portable']).default('auto'),
    /** Seal the active segment file once its first block is this old, in ms (rotation by age; by size: `segmentBytes`). */
    rotateAgeMs: z.number().int().min(1).max(2 ** 40).optional(),
    /**
     * Which sealed segment files are deleted, oldest first: when all files together exceed
     * `maxBytes`, when there are more than `maxFiles`, or when one was last written more than
     * `maxAgeMs` ago. The active file is never deleted. No limit by default.
     */
    retention: z
      .object({
        /** Total bytes of the store's segment files. */
        maxBytes: z.number().int().min(1).max(2 ** 52).optional(),
        /** Age of a sealed file since its last write, ms. */
        maxAgeMs: z.number().int().min(1).max(2 ** 52).optional(),
        /** Number of segment files. */
        maxFiles: z.number().int().min(1).max(2 ** 32).optional(),
      })
      .strict()
      .optional(),
    /** Sampling and rate limits per level; see {@link SamplingOptionsSchema}. Off by default. */
    sampling: SamplingOptionsSchema.optional(),
  })
  .strict()

/** Options of {@link destination}; see {@link LogDestinationOptionsSchema}. */
export type LogDestinationOptions = z.input<typeof LogDestinationOptionsSchema>

/** Counters of a {@link LogDestination}. */
export interface LogDestinationStats {
  /** The I/O backend in use. */
  backend: string
  /** Lines written into blocks since open. */
  lines: number
  /** Blocks written. */
  blocks: number
  /** Raw NDJSON bytes in those blocks. */
  rawBytes: number
  /** Bytes those blocks take on disk. */
  storedBytes: number
  /** fdatasyncs. */
  syncs: number
  /** Segment files started by rotation. */
  segmentsCreated: number
  /** Writes that waited for ring space (`whenFull: 'wait'`). */
  fullWaits: number
  /** Lines dropped: ring full (`whenFull: 'drop'`) or the open buffer full. */
  dropped: number
  /** Segment files deleted by retention. */
  segmentsRemoved: number
  /** Their bytes. */
  bytesRemoved: number
  /** Lines the sampler dropped, by level name and reason (levels with drops only). */
  sampled: Record<string, { sampling: number; traceCap: number }>
}

const LEVEL_CLASSES = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'other', 'none']

// Open destinations, flushed synchronously when the process exits normally, so that lines
// logged just before `process.exit()` are not left in the ring.
const open = new Set<LogDestination>()
let exitHook = false
function onExit(): void {
  for (const d of open) {
    try {
      d.flushSync()
    } catch {
      // Failing at exit has nobody to tell; the store's own state says what is durable.
    }
  }
}

/**
 * A pino destination on a uringdb log store. Create it with {@link destination}.
 *
 * Events, as SonicBoom's: `ready` (the store is open), `drop` (a line was dropped, with the
 * line), `error` (the store failed: open, a write or an fdatasync; emitted only when a
 * listener exists, otherwise a process warning is emitted once), `finish` and `close`
 * (after `end()`).
 */
export class LogDestination extends EventEmitter {
  readonly #options: z.output<typeof LogDestinationOptionsSchema>
  #native: native.NativeLogSink | undefined
  #opening: Promise<void> | undefined
  #buffer: string[] = []
  #bufferBytes = 0
  #dropped = 0
  #ending = false
  #closed = false
  #warned = false
  #recovery: native.NativeLogSinkRecovery | undefined

  /** @internal Use {@link destination}. */
  constructor(options: LogDestinationOptions) {
    super()
    this.#options = parseOptions(LogDestinationOptionsSchema, options)
    this.#open()
  }

  #open(): void {
    const o = this.#options
    const p = native.openLogSink(o.dir, {
      ioBackend: o.ioBackend,
      sync: o.sync,
      syncIntervalMs: o.syncIntervalMs,
      blockBytes: o.blockBytes,
      ringBytes: o.ringBytes,
      segmentBytes: o.segmentBytes,
      compressionLevel: o.compressionLevel,
      traceField: o.traceField,
      sampling: o.sampling,
      rotateAgeMs: o.rotateAgeMs,
      retentionMaxBytes: o.retention?.maxBytes,
      retentionMaxAgeMs: o.retention?.maxAgeMs,
      retentionMaxFiles: o.retention?.maxFiles,
    })
    this.#opening = p.then(
      (sink) => {
        this.#opening = undefined
        this.#native = sink
        this.#recovery = sink.recovery
        open.add(this)
        if (!exitHook) {
          exitHook = true
          process.on('exit', onExit)
        }
        const buffered = this.#buffer
        this.#buffer = []
        this.#bufferBytes = 0
        for (const line of buffered) this.#push(line)
        this.emit('ready')
        if (this.#ending) void this.#close()
      },
      (e: unknown) => {
        this.#opening = undefined
        this.#closed = true
        this.#fail(toUringdbError(e))
      },
    )
  }

  #fail(e: UringdbError): void {
    if (this.listenerCount('error') > 0) {
      this.emit('error', e)
    } else if (!this.#warned) {
      this.#warned = true
      process.emitWarning(`uringdb/pino: ${e.message} (listen for 'error' on the destination)`, { code: e.code })
    }
  }

  #push(line: string): boolean {
    const sink = this.#native
    if (sink === undefined) return false
    try {
      if (sink.write(line, this.#options.whenFull === 'wait')) return true
    } catch (e) {
      this.#fail(toUringdbError(e))
      return false
    }
    this.#dropped++
    this.emit('drop', line)
    return false
  }

  /** The directory of the store. */
  get dir(): string {
    return this.#options.dir
  }

  /** True until `end()`: pino recognizes a destination by it (as a Writable's). */
  get writable(): boolean {
    return !this.#ending && !this.#closed
  }

  /** Whether the store is open (after `ready`, before `end()`). */
  get ready(): boolean {
    return this.#native !== undefined
  }

  /** What opening the store found (lines already there, bytes of a torn tail cut), once `ready`. */
  get recovery(): { segments: number; lines: number; cutBytes: number } | undefined {
    return this.#recovery
  }

  /**
   * Writes one or more serialized lines (pino calls it with one line ending in `\n`).
   * Returns false when the line was dropped (and `drop` was emitted) or the store failed.
   */
  write(data: string | Uint8Array): boolean {
    if (this.#ending || this.#closed) {
      this.#fail(new UringdbError('ERR_URINGDB_CLOSED', 'write after end() on a uringdb/pino destination'))
      return false
    }
    const line = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')
    if (this.#native !== undefined) return this.#push(line)
    const bytes = Buffer.byteLength(line)
    if (this.#bufferBytes + bytes > this.#options.openBufferBytes) {
      this.#dropped++
      this.emit('drop', line)
      return false
    }
    this.#buffer.push(line)
    this.#bufferBytes += bytes
    return true
  }

  /**
   * Makes every line written before it durable: seals the partial block, writes it and
   * fdatasyncs, then returns (blocking the event loop for that long, as SonicBoom's
   * `flushSync` does). Throws `ERR_URINGDB_NOT_READY` before `ready`.
   */
  flushSync(): void {
    const sink = this.#native
    if (sink === undefined) {
      if (this.#closed) throw new UringdbError('ERR_URINGDB_CLOSED', 'flushSync() on a closed uringdb/pino destination')
      throw new UringdbError('ERR_URINGDB_NOT_READY', 'flushSync() before the uringdb/pino destination is ready (wait for the ready event)')
    }
    try {
      sink.flushSync()
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /** SonicBoom's `flush(cb)`: {@link LogDestination.flushSync} on a later tick, then `cb`. */
  flush(cb?: (err?: Error) => void): void {
    const run = (): void => {
      let err: Error | undefined
      try {
        this.flushSync()
      } catch (e) {
        err = e as Error
      }
      if (cb !== undefined) cb(err)
      else if (err !== undefined) this.#fail(toUringdbError(err))
    }
    if (this.#native === undefined && this.#opening !== undefined) this.once('ready', run)
    else setImmediate(run)
  }

  /**
   * Closes the store and reopens it (SonicBoom's `reopen`, used after external rotation;
   * here rotation is internal, and a reopen is how a destination recovers after a failed
   * write or fdatasync). Lines written meanwhile are buffered; `ready` is emitted again.
   */
  reopen(): void {
    if (this.#ending || this.#closed) return
    const sink = this.#native
    this.#native = undefined
    if (sink === undefined) return
    open.delete(this)
    void sink.close().then(
      () => this.#open(),
      () => this.#open(),
    )
  }

  /** Writes and syncs what is left and closes the store; emits `finish` and `close`. */
  end(): void {
    if (this.#ending) return
    this.#ending = true
    if (this.#native !== undefined) void this.#close()
  }

  /** Same as {@link LogDestination.end}. */
  destroy(): void {
    this.end()
  }

  async #close(): Promise<void> {
    const sink = this.#native
    if (sink === undefined) return
    this.#native = undefined
    open.delete(this)
    try {
      await sink.close()
    } catch (e) {
      this.#fail(toUringdbError(e))
    }
    this.#closed = true
    this.emit('finish')
    this.emit('close')
  }

  /** The counters (zeros before `ready`). */
  stats(): LogDestinationStats {
    const s = this.#native?.stats()
    return {
      backend: s?.backend ?? '',
      lines: s?.lines ?? 0,
      blocks: s?.blocks ?? 0,
      rawBytes: s?.rawBytes ?? 0,
      storedBytes: s?.storedBytes ?? 0,
      syncs: s?.syncs ?? 0,
      segmentsCreated: s?.segmentsCreated ?? 0,
      fullWaits: s?.fullWaits ?? 0,
      dropped: this.#dropped,
      segmentsRemoved: s?.segmentsRemoved ?? 0,
      bytesRemoved: s?.bytesRemoved ?? 0,
      sampled: sampledByLevel(s),
    }
  }
}

function sampledByLevel(s: native.NativeLogSinkStats | undefined): Record<string, { sampling: number; traceCap: number }> {
  const out: Record<string, { sampling: number; traceCap: number }> = {}
  if (s === undefined) return out
  LEVEL_CLASSES.forEach((name, i) => {
    const sampling = s.droppedSampling[i] ?? 0
    const traceCap = s.droppedTraceCap[i] ?? 0
    if (sampling + traceCap > 0) out[name] = { sampling, traceCap }
  })
  return out
}

/**
 * Creates a pino destination on the log store in `options.dir`, synchronously (the store
 * opens in the background; lines written before `ready` are buffered).
 *
 * ```ts
 * import pino from 'pino'
 * import { destination } from 'uringdb/pino'
 * const logger = pino(destination({ dir: './logs' }))
 * ```
 */
export function destination(options: LogDestinationOptions): LogDestination {
  return new LogDestination(options)
}

/**
 * The `pino.transport({ target: 'uringdb/pino', options })` entry: builds the destination
 * in the transport's worker thread and resolves once the store is open.
 */
export async function transport(options: LogDestinationOptions): Promise<LogDestination> {
  // pino adds its own keys to a transport's options; they are not the destination's.
  const { $context: _context, pinoWillSendConfig: _config, ...own } = options as LogDestinationOptions & { $context?: unknown; pinoWillSendConfig?: unknown }
  const d = destination(own)
  await new Promise<void>((resolve, reject) => {
    const failed = (e: Error): void => reject(e)
    d.once('error', failed)
    d.once('ready', () => {
      d.off('error', failed)
      resolve()
    })
  })
  return d
}
