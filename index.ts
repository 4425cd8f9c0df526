/**
 * uringdb: durable embedded storage for Node.js services.
 *
 * This module is the typed façade over the native engine: it validates options with
 * exported schemas, encodes records, turns the engine's completions into promises and its
 * reads into async iterators, and maps errors to {@link UringdbError}. It holds no engine
 * logic: ordering, durability, recovery and group commit all live in the Rust core.
 *
 * @packageDocumentation
 */
import { channel } from 'node:diagnostics_channel'
import { z } from 'zod'
import * as native from './binding.js'

// Node 20 does not define Symbol.asyncDispose everywhere; `await using` needs it.
;(Symbol as { asyncDispose?: symbol }).asyncDispose ??= Symbol.for('nodejs.asyncDispose')

const MiB = 1024 * 1024

/**
 * Options of {@link openLog}, as a zod schema: validated at open; unknown keys are
 * rejected. The TypeScript type {@link LogOptions} is inferred from it.
 */
export const LogOptionsSchema = z
  .object({
    /** Default for {@link Log.append}: resolve only after fdatasync covered the record. */
    sync: z.boolean().default(true),
    /** I/O backend: `auto` probes io_uring at open and falls back to `portable`. */
    ioBackend: z.enum(['auto', 'io_uring', 'portable']).default('auto'),
    /** Preallocated size of one segment file, in bytes (a multiple of 8). */
    segmentBytes: z
      .number()
      .int()
      .min(1 * MiB)
      .max(4096 * MiB)
      .multipleOf(8)
      .default(64 * MiB),
    /** Largest record, in bytes. Default: 8 MiB, or less when `segmentBytes`/`ringBytes` are small. */
    maxRecordBytes: z.number().int().min(1).optional(),
    /** Capacity of the commit queue in bytes, a power of two. Appends wait (back-pressure) when it is full. */
    ringBytes: z
      .number()
      .int()
      .min(1 * MiB)
      .max(1024 * MiB)
      .refine((n) => (n & (n - 1)) === 0, { message: 'must be a power of two' })
      .default(32 * MiB),
    /** Extra wait, in microseconds, before writing a group that started on an idle log. */
    commitDelayUs: z.number().int().min(0).max(100_000).default(0),
    /** `strict`: damage followed by valid records is an error; `tolerant`: cut the log at the damage. */
    recovery: z.enum(['strict', 'tolerant']).default('strict'),
  })
  .strict()

/** Options of {@link openLog} (all optional). */
export type LogOptions = z.input<typeof LogOptionsSchema>

/** Options of one append. */
export interface AppendOptions {
  /** Override the log's `sync` default for this call. */
  sync?: boolean
}

/** A record read from the log. */
export interface LogRecord {
  /** Its sequence number. */
  seq: number
  /** Its bytes (a view into a buffer shared by the records of one read batch). */
  data: Buffer
}

/** Options of {@link Log.read}. */
export interface ReadOptions {
  /** First sequence number (inclusive). Default: the first record in the log. */
  from?: number
  /** End (exclusive). Default: one past the last durable record when the read starts. */
  to?: number
  /** Records fetched per crossing into the engine. Default 1024. */
  batchSize?: number
}

/** Options of {@link Log.tail}. */
export interface TailOptions {
  /** First sequence number (inclusive). Default: the next record to be appended. */
  from?: number
  /** Ends the iteration when aborted. */
  signal?: AbortSignal
  /** Records fetched per crossing into the engine. Default 1024. */
  batchSize?: number
}

/** Latency percentiles in microseconds. */
export interface Percentiles {
  count: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

/** Statistics of a log (see {@link Log.stats}). */
export interface LogStats {
  /** The I/O backend in use. */
  backend: 'io_uring' | 'portable'
  /** Why io_uring is not used, when it is not. */
  fallbackReason: string | null
  /** Kernel features probed at open (e.g. `op:WRITEV`, `IORING_FEAT_NODROP`). */
  features: string[]
  /** Records appended. */
  appends: number
  /** Payload bytes appended. */
  appendBytes: number
  /** Commit groups written. */
  groups: number
  /** fdatasync calls. */
  fsyncs: number
  /** Bytes written to segment files. */
  bytesWritten: number
  /** Mean records per commit group. */
  recordsPerGroup: number
  /** First readable sequence number (0 when empty). */
  firstSeq: number
  /** Last durable sequence number (0 when empty). */
  lastSeq: number
  /** Segment files in use. */
  segments: number
  /** Per commit group, measured from the group's oldest record (microseconds). */
  latencyUs: { queueWait: Percentiles; write: Percentiles; fsync: Percentiles; total: Percentiles }
}

/** Message published on `uringdb:log:commit` for each commit group. */
export interface CommitEvent {
  /** The log's directory. */
  dir: string
  /** Records in the group (from every handle and thread). */
  records: number
  /** Bytes written by the group. */
  bytes: number
  /** First and last sequence number of the group (0 when it held only sync requests). */
  firstSeq: number
  lastSeq: number
  /** Stage latencies of the group in microseconds. */
  queueWaitUs: number
  writeUs: number
  fsyncUs: number
  /** Whether the group was covered by fdatasync. */
  synced: boolean
}

/** Message published on `uringdb:log:recovery` when a handle opens. */
export interface RecoveryEvent {
  dir: string
  /** Whether this handle opened the engine (false: it joined one open in this process). */
  opened: boolean
  segments: number
  /** Records in the log after recovery. */
  records: number
  firstSeq: number
  lastSeq: number
  /** Bytes cut from a torn tail. */
  truncatedBytes: number
  durationUs: number
}

/** Stable error codes (besides OS error names such as `ENOSPC` and `EIO`). */
export type UringdbErrorCode =
  | 'ERR_URINGDB_INVALID_OPTION'
  | 'ERR_URINGDB_INVALID_ARGUMENT'
  | 'ERR_URINGDB_RECORD_TOO_LARGE'
  | 'ERR_URINGDB_CLOSED'
  | 'ERR_URINGDB_LOCKED'
  | 'ERR_URINGDB_CORRUPTION'
  | 'ERR_URINGDB_FAILED'
  | 'ERR_URINGDB_TRUNCATED'
  | 'ERR_URINGDB_IO_URING_UNAVAILABLE'
  | 'ERR_URINGDB_PANIC'
  | 'ERR_URINGDB_IO'
  /**
   * Retryable: the process-wide reader queue is full (`READER_QUEUE_JOBS_MAX`, 1024 jobs).
   * Each handle keeps its own multi-gets far below that (the excess waits), so this needs
   * many handles or concurrent readers at once; retry once earlier reads have completed.
   */
  | 'ERR_URINGDB_BUSY'

/**
 * Every error uringdb throws or rejects with. `code` is stable; the other properties are
 * present where they apply.
 */
export class UringdbError extends Error {
  /** A {@link UringdbErrorCode} or an OS error name such as `ENOSPC` or `EIO`. */
  readonly code: UringdbErrorCode | (string & {})
  /** For `ERR_URINGDB_INVALID_OPTION`: the option's name. */
  readonly field?: string
  /** For `ERR_URINGDB_CORRUPTION`: the damaged file. */
  readonly file?: string
  /** For `ERR_URINGDB_CORRUPTION`: the byte offset of the damage in {@link UringdbError.file}. */
  readonly offset?: number
  /** For OS errors: the errno. */
  readonly errno?: number

  /** @internal */
  constructor(
    code: string,
    message: string,
    details: { field?: string; file?: string; offset?: number; errno?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'UringdbError'
    this.code = code
    if (details.field !== undefined) this.field = details.field
    if (details.file !== undefined) this.file = details.file
    if (details.offset !== undefined) this.offset = details.offset
    if (details.errno !== undefined) this.errno = details.errno
  }
}

interface NativeErrorJson {
  code: string
  message: string
  field?: string
  file?: string
  offset?: number
  errno?: number
  cause?: NativeErrorJson
}

function fromJson(j: NativeErrorJson): UringdbError {
  return new UringdbError(j.code, j.message, {
    field: j.field,
    file: j.file,
    offset: j.offset,
    errno: j.errno,
    cause: j.cause === undefined ? undefined : fromJson(j.cause),
  })
}

/** The one place where native errors become {@link UringdbError}s. */
function toUringdbError(e: unknown): UringdbError {
  if (e instanceof UringdbError) return e
  const message = e instanceof Error ? e.message : String(e)
  if (message.startsWith('{')) {
    try {
      return fromJson(JSON.parse(message) as NativeErrorJson)
    } catch {
      // fall through: not one of ours
    }
  }
  // Argument conversion errors raised by the binding layer itself.
  return new UringdbError('ERR_URINGDB_INVALID_ARGUMENT', message, { cause: e })
}

/** Validates options against `schema`; the error names the first offending field. */
function parseOptions<S extends z.ZodType>(schema: S, options: unknown): z.output<S> {
  const parsed = schema.safeParse(options ?? {})
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const field = issue.path.length > 0 ? String(issue.path[0]) : (issue.code === 'unrecognized_keys' ? String(issue.keys[0]) : 'options')
    throw new UringdbError('ERR_URINGDB_INVALID_OPTION', `invalid option ${field}: ${issue.message}`, { field })
  }
  return parsed.data
}

function invalidArgument(message: string): UringdbError {
  return new UringdbError('ERR_URINGDB_INVALID_ARGUMENT', message)
}

// A lone UTF-16 surrogate has no UTF-8 encoding: Buffer.from replaces each with U+FFFD, so
// distinct strings ('\uD800', '\uDBFF') would become the same key or an altered value.
// Strings are therefore rejected rather than encoded lossily. isWellFormed (Node 20+, V8
// 11.3) scans in native code; the regex is the fallback for engines without it.
const isWellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as string & { isWellFormed(): boolean }).isWellFormed()
    : (s) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s)

/** Throws ERR_URINGDB_INVALID_ARGUMENT naming `name` if `s` holds a lone surrogate. */
function checkWellFormed(name: string, s: string): void {
  if (!isWellFormed(s)) {
    throw invalidArgument(`${name} is a string with a lone UTF-16 surrogate, which has no UTF-8 encoding; pass a Buffer for binary data`)
  }
}

function closedError(): UringdbError {
  return new UringdbError('ERR_URINGDB_CLOSED', 'the log is closed')
}

function checkSeq(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw invalidArgument(`${name} must be a non-negative safe integer, got ${typeof v === 'number' ? v : typeof v}`)
  }
  return v
}

function checkOptions(name: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) {
    throw invalidArgument(`${name} must be an object, got ${describe(v)}`)
  }
}

function checkBatchSize(v: unknown): number {
  if (v === undefined) return 1024
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1_000_000) {
    throw invalidArgument(`batchSize must be an integer between 1 and 1000000, got ${String(v)}`)
  }
  return v
}

/** What can be appended: bytes (copied as they are) or a string (encoded as UTF-8). */
export type RecordInput = Buffer | Uint8Array | string

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
}

const commitChannel = channel('uringdb:log:commit')
const recoveryChannel = channel('uringdb:log:recovery')

const READ_BATCH_BYTES = 4 * MiB

// Appends made in one tick are staged here and handed to the engine in one crossing at the
// end of the tick (see Log.append). Bounds on one staging run:
const STAGE_BYTES = 256 * 1024
// A run is handed over early when it reaches STAGE_RECORDS appends, so that the committer
// starts writing while the rest of a large tick is still being appended (measured at 1024
// in flight: p99 3.4-4.5 ms with 256 against 4.5-11 ms with one hand-over per tick).
const STAGE_RECORDS = 256
// Records larger than this skip staging and cross on their own (copied once, by the engine).
const STAGE_RECORD_MAX = 16 * 1024

// Parked operations. The engine never blocks the JS thread: when its commit queue (or, for
// the Db, a write stall's bounded queue) is full, a hand-over takes what fits and says how
// much; the rest, and every operation after it, wait here in call order as pending
// promises until the engine calls the completion callback with no outcome ("room again"),
// once per commit group at most. Parked writes are not copied: a parked record or value is
// read (encoded) when it is handed over, so — as with a stream's write(chunk) — a Buffer
// passed to a write must not be modified until its promise settles. Only the tail of a
// refused staging run is kept as bytes, and at most one such run (one staging buffer) is
// parked at a time, because nothing is staged while anything is parked.
type ParkedLogOp =
  | { kind: 'run'; data: Buffer; lens: Uint32Array; entries: Uint32Array }
  | { kind: 'rec'; record: Uint8Array | string; len: number; sync: boolean }
  | { kind: 'many'; bufs: Uint8Array[]; sync: boolean }
  | { kind: 'sync' }

/** Records in the first `k` packed entries (each word is `count << 1 | sync`). */
function recordsIn(entries: Uint32Array, k: number): number {
  let n = 0
  for (let i = 0; i < k; i++) n += entries[i] >>> 1
  return n
}

function nativeDetail(e: unknown, key: string): unknown {
  const message = e instanceof Error ? e.message : ''
  if (!message.startsWith('{')) return undefined
  try {
    return (JSON.parse(message) as Record<string, unknown>)[key]
  } catch {
    return undefined
  }
}

/**
 * A durable append-only log. Create one with {@link openLog}.
 *
 * Appends from one handle complete in the order they were made. With `sync: true` (the
 * default) a promise resolves only after fdatasync covered the record; readers never see a
 * record that could still be lost.
 */
export class Log implements AsyncDisposable {
  readonly #native: native.NativeLog
  readonly #dir: string
  readonly #sync: boolean
  // Pending operations in completion order. #counts[i] is 0 for an operation that resolves
  // with one number (append, sync) and n >= 1 for appendMany of n records (an array).
  #resolves: Array<(v: never) => void> = []
  #rejects: Array<(e: UringdbError) => void> = []
  #counts: number[] = []
  #head = 0
  #partial: number[] = []
  #closing = false
  #closed: Promise<void> | undefined
  #idle: (() => void) | undefined
  #nextToken = 1
  readonly #maxRecordBytes: number
  // The staging run of this tick: bytes, record lengths, and one word per append call.
  #stage: Buffer | undefined
  #stageBytes = 0
  readonly #lens = new Uint32Array(STAGE_RECORDS)
  readonly #entries = new Uint32Array(STAGE_RECORDS)
  #staged = 0
  #flushQueued = false
  // Operations waiting for room in the engine, in call order (see ParkedLogOp); they are
  // the newest #parkedOps operations of the queue above.
  #parked: ParkedLogOp[] = []
  #parkedHead = 0
  #parkedOps = 0
  // Parked operations the engine refused, waiting for the `ahead` operations before them.
  #doom: { ahead: number; count: number; err: UringdbError } | undefined
  readonly #flushStaged = (): void => {
    this.#flushQueued = false
    const n = this.#staged
    if (n === 0) return
    const data = (this.#stage as Buffer).subarray(0, this.#stageBytes)
    this.#staged = 0
    this.#stageBytes = 0
    const lens = this.#lens.subarray(0, n)
    const entries = this.#entries.subarray(0, n)
    try {
      const taken = this.#native.appendPacked(data, lens, entries)
      // Nothing is staged while anything is parked, so the refused tail goes last.
      if (taken < n) this.#parkRun(data, lens, entries, taken)
    } catch (e) {
      // The staged calls are the newest n operations in the queue; those the engine did
      // not accept are rejected (they were not written).
      const accepted = nativeDetail(e, 'accepted')
      this.#rejectNewest(n - (typeof accepted === 'number' ? accepted : 0), toUringdbError(e))
    }
  }

  /**
   * Parks the entries of a staged run from `taken` on. Their bytes stay in the staging
   * buffer, which nothing else writes while anything is parked (only #packParked reuses it,
   * once this run is taken); the lengths are copied (their arrays are reused).
   */
  #parkRun(data: Buffer, lens: Uint32Array, entries: Uint32Array, taken: number): void {
    const r = recordsIn(entries, taken)
    let at = 0
    for (let i = 0; i < r; i++) at += lens[i]
    this.#parked.push({
      kind: 'run',
      data: data.subarray(at),
      lens: lens.slice(r),
      entries: entries.slice(taken),
    })
    this.#parkedOps += entries.length - taken
  }

  #park(op: ParkedLogOp): void {
    this.#parked.push(op)
    this.#parkedOps++
  }

  /**
   * The engine refused the parked operations (it closed or failed): they are rejected with
   * `err` once the operations ahead of them have settled, so that outcomes keep call order.
   */
  #failParked(err: UringdbError): void {
    const n = this.#parkedOps
    this.#parked = []
    this.#parkedHead = 0
    this.#parkedOps = 0
    const ahead = this.#counts.length - this.#head - n
    if (ahead <= 0 || this.#doom !== undefined) this.#rejectNewest(n, err)
    else this.#doom = { ahead, count: n, err }
  }

  /** One operation ahead of the refused parked ones settled; reject them when none is left. */
  #stepDoom(): void {
    const d = this.#doom as { ahead: number; count: number; err: UringdbError }
    if (--d.ahead > 0) return
    this.#doom = undefined
    for (let i = 0; i < d.count; i++) this.#settle(false, d.err)
  }

  /**
   * Hands parked operations to the engine in order, until it is full again (it then calls
   * back once it has room) or none is left. Consecutive parked records are packed into
   * one run (one crossing). An error rejects every parked operation: they come after the
   * failed one and the engine refuses writes from then on (closed or failed).
   */
  #pump(): void {
    const q = this.#parked
    try {
      while (this.#parkedHead < q.length) {
        const op = q[this.#parkedHead]
        if (op.kind === 'rec') {
          q[this.#parkedHead] = this.#packParked()
          continue
        }
        let done: boolean
        if (op.kind === 'run') {
          let taken: number
          try {
            taken = this.#native.appendPacked(op.data, op.lens, op.entries)
          } catch (e) {
            const accepted = nativeDetail(e, 'accepted')
            this.#parkedOps -= typeof accepted === 'number' ? accepted : 0
            throw e
          }
          this.#parkedOps -= taken
          done = taken === op.entries.length
          if (!done) {
            const r = recordsIn(op.entries, taken)
            let at = 0
            for (let i = 0; i < r; i++) at += op.lens[i]
            op.data = op.data.subarray(at)
            op.lens = op.lens.subarray(r)
            op.entries = op.entries.subarray(taken)
          }
        } else {
          done = op.kind === 'sync' ? this.#native.sync() : this.#native.appendMany(op.bufs, op.sync)
          if (done) this.#parkedOps--
        }
        if (!done) return
        this.#parkedHead++
      }
    } catch (e) {
      this.#failParked(toUringdbError(e))
      return
    }
    this.#parked = []
    this.#parkedHead = 0
  }

  /** Packs the run of parked records at the head into one parked run (one staging run's worth). */
  #packParked(): ParkedLogOp {
    const q = this.#parked
    let end = this.#parkedHead
    let bytes = 0
    while (end < q.length && end - this.#parkedHead < STAGE_RECORDS) {
      const op = q[end]
      if (op.kind !== 'rec' || (end > this.#parkedHead && bytes + op.len > STAGE_BYTES)) break
      bytes += op.len
      end++
    }
    const k = end - this.#parkedHead
    // Packed into the staging buffer (idle while anything is parked, and the run before
    // this one was taken whole), so that a long wait does not make a buffer per run.
    const data = bytes <= STAGE_BYTES ? (this.#stage ??= Buffer.allocUnsafe(STAGE_BYTES)).subarray(0, bytes) : Buffer.allocUnsafe(bytes)
    const lens = new Uint32Array(k)
    const entries = new Uint32Array(k)
    let at = 0
    for (let i = 0; i < k; i++) {
      const op = q[this.#parkedHead + i] as Extract<ParkedLogOp, { kind: 'rec' }>
      if (typeof op.record === 'string') data.write(op.record, at, 'utf8')
      else data.set(op.record, at)
      at += op.len
      lens[i] = op.len
      entries[i] = op.sync ? 3 : 2
    }
    // The packed run replaces the head record; the others it took become no-ops.
    q.splice(this.#parkedHead + 1, k - 1)
    return { kind: 'run', data, lens, entries }
  }

  /** @internal */
  constructor(handle: native.NativeLog, dir: string, sync: boolean) {
    this.#native = handle
    this.#dir = dir
    this.#sync = sync
    this.#maxRecordBytes = handle.maxRecordBytes
  }

  #rejectNewest(k: number, err: UringdbError): void {
    const start = this.#counts.length - k
    const rejects = this.#rejects.splice(start, k)
    this.#resolves.splice(start, k)
    this.#counts.splice(start, k)
    if (this.#head >= this.#counts.length && this.#idle !== undefined) {
      const idle = this.#idle
      this.#idle = undefined
      idle()
    }
    for (const r of rejects) r(err)
  }

  /**
   * @internal Receives completions from the engine (one call per commit group), or, with
   * no outcome (null seqs, 0 failed), word that parked operations may be retried.
   */
  _complete(seqs: Float64Array | null, failed: number, errorJson: string | null, group: Float64Array | null): void {
    if (seqs === null && failed === 0) {
      this.#pump()
      return
    }
    if (seqs !== null) {
      for (let i = 0; i < seqs.length; i++) {
        const count = this.#counts[this.#head]
        if (count === 0) {
          this.#settle(true, seqs[i])
        } else {
          this.#partial.push(seqs[i])
          if (this.#partial.length === count) {
            const all = this.#partial
            this.#partial = []
            this.#settle(true, all)
          }
        }
      }
      if (group !== null && commitChannel.hasSubscribers) {
        const event: CommitEvent = {
          dir: this.#dir,
          records: group[0],
          bytes: group[1],
          firstSeq: group[2],
          lastSeq: group[3],
          queueWaitUs: group[4],
          writeUs: group[5],
          fsyncUs: group[6],
          synced: group[7] === 1,
        }
        commitChannel.publish(event)
      }
    }
    if (failed > 0) {
      const err = toUringdbError(new Error(errorJson ?? '{"code":"ERR_URINGDB_IO","message":"unknown failure"}'))
      while (failed > 0) {
        const count = Math.max(1, this.#counts[this.#head]) - this.#partial.length
        this.#partial = []
        failed -= count
        this.#settle(false, err)
      }
    }
  }

  #settle(ok: boolean, value: unknown): void {
    const h = this.#head
    const fn = ok ? this.#resolves[h] : this.#rejects[h]
    this.#head = h + 1
    if (this.#head === this.#counts.length) {
      this.#head = 0
      this.#resolves.length = 0
      this.#rejects.length = 0
      this.#counts.length = 0
      if (this.#idle !== undefined) {
        const idle = this.#idle
        this.#idle = undefined
        idle()
      }
    } else if (this.#head > 4096 && this.#head * 2 > this.#counts.length) {
      this.#resolves.splice(0, this.#head)
      this.#rejects.splice(0, this.#head)
      this.#counts.splice(0, this.#head)
      this.#head = 0
    }
    ;(fn as (v: unknown) => void)(value)
    if (this.#doom !== undefined) this.#stepDoom()
  }

  #enqueue<T>(count: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#resolves.push(resolve as (v: never) => void)
      this.#rejects.push(reject)
      this.#counts.push(count)
    })
  }

  /**
   * Appends one record. Resolves with its sequence number once it is durable (`sync: true`)
   * or once the kernel has it (`sync: false`). Never blocks: when the commit queue is full
   * the append waits, in order, as a pending promise. A Buffer passed here must not be
   * modified until the promise settles (a waiting append reads it when it is handed over,
   * as a stream's `write(chunk)` does).
   *
   * Appends made in the same tick reach the engine together, in order, in one call at the
   * end of the tick (one crossing into native code per tick, not per record).
   */
  append(record: RecordInput, options?: AppendOptions): Promise<number> {
    if (this.#closing) return Promise.reject(closedError())
    let sync: unknown = this.#sync
    if (options !== undefined) {
      if (typeof options !== 'object' || options === null) {
        return Promise.reject(invalidArgument(`options must be an object, got ${describe(options)}`))
      }
      sync = options.sync ?? this.#sync
      if (typeof sync !== 'boolean') {
        return Promise.reject(invalidArgument(`options.sync must be a boolean, got ${describe(sync)}`))
      }
    }
    let len: number
    if (typeof record === 'string') {
      if (!isWellFormed(record)) {
        return Promise.reject(invalidArgument('record is a string with a lone UTF-16 surrogate, which has no UTF-8 encoding; pass a Buffer for binary data'))
      }
      len = Buffer.byteLength(record, 'utf8')
    } else if (record instanceof Uint8Array) len = record.byteLength
    else return Promise.reject(invalidArgument(`a record must be a Buffer, Uint8Array or string, got ${describe(record)}`))
    if (len > this.#maxRecordBytes) {
      return Promise.reject(
        new UringdbError('ERR_URINGDB_RECORD_TOO_LARGE', `record of ${len} bytes exceeds the limit of ${this.#maxRecordBytes} bytes`),
      )
    }
    if (len > STAGE_RECORD_MAX || this.#parked.length > 0) {
      // Large records cross on their own, after whatever is staged (order is kept); while
      // operations are parked, every record parks behind them (not copied).
      this.#flushStaged()
      if (this.#parked.length === 0) {
        try {
          const taken =
            typeof record === 'string' ? this.#native.appendString(record, sync as boolean) : this.#native.append(record, sync as boolean)
          if (taken) return this.#enqueue<number>(0)
        } catch (e) {
          return Promise.reject(toUringdbError(e))
        }
      }
      this.#park({ kind: 'rec', record, len, sync: sync as boolean })
      return this.#enqueue<number>(0)
    }
    if (this.#staged === STAGE_RECORDS || this.#stageBytes + len > STAGE_BYTES) this.#flushStaged()
    const stage = (this.#stage ??= Buffer.allocUnsafe(STAGE_BYTES))
    if (typeof record === 'string') stage.write(record, this.#stageBytes, 'utf8')
    else stage.set(record, this.#stageBytes)
    this.#stageBytes += len
    this.#lens[this.#staged] = len
    this.#entries[this.#staged] = sync === true ? 3 : 2 // one record << 1 | sync
    this.#staged++
    if (!this.#flushQueued) {
      this.#flushQueued = true
      queueMicrotask(this.#flushStaged)
    }
    return this.#enqueue<number>(0)
  }

  /**
   * Appends records atomically — after a crash either all of them are in the log or none
   * is — with contiguous sequence numbers, in one commit group. Resolves with their
   * sequence numbers.
   */
  appendMany(records: readonly RecordInput[], options?: AppendOptions): Promise<number[]> {
    if (this.#closing) return Promise.reject(closedError())
    try {
      checkOptions('options', options)
      const sync = options?.sync ?? this.#sync
      if (typeof sync !== 'boolean') throw invalidArgument(`options.sync must be a boolean, got ${describe(sync)}`)
      if (!Array.isArray(records)) throw invalidArgument(`records must be an array, got ${describe(records)}`)
      if (records.length === 0) return Promise.resolve([])
      this.#flushStaged()
      const bufs: Uint8Array[] = new Array(records.length)
      for (let i = 0; i < records.length; i++) {
        const r: unknown = records[i]
        if (typeof r === 'string') {
          checkWellFormed(`records[${i}]`, r)
          bufs[i] = Buffer.from(r, 'utf8')
        }
        else if (r instanceof Uint8Array) bufs[i] = r
        else throw invalidArgument(`records[${i}] must be a Buffer, Uint8Array or string, got ${describe(r)}`)
      }
      if (this.#parked.length > 0 || !this.#native.appendMany(bufs, sync)) this.#park({ kind: 'many', bufs, sync })
    } catch (e) {
      return Promise.reject(toUringdbError(e))
    }
    return this.#enqueue<number[]>(records.length)
  }

  /**
   * Makes every record appended so far (by any handle) durable, including earlier
   * `sync: false` appends.
   */
  async sync(): Promise<void> {
    if (this.#closing) throw closedError()
    this.#flushStaged()
    try {
      if (this.#parked.length > 0 || !this.#native.sync()) this.#park({ kind: 'sync' })
    } catch (e) {
      throw toUringdbError(e)
    }
    await this.#enqueue<number>(0)
  }

  /**
   * Reads committed records in `[from, to)`, fetching them from the engine in batches.
   * Reading from below {@link Log.firstSeq} rejects with `ERR_URINGDB_TRUNCATED`.
   */
  async *read(options: ReadOptions = {}): AsyncGenerator<LogRecord, void, undefined> {
    if (this.#closing) throw closedError()
    checkOptions('options', options)
    const batch = checkBatchSize(options.batchSize)
    const from = options.from === undefined ? 0 : checkSeq('from', options.from)
    const to = options.to === undefined ? this.lastSeq + 1 : checkSeq('to', options.to)
    if (to !== 0 && from !== 0 && to <= from) return
    if (to === 0) return
    let cursor: native.NativeCursor
    try {
      cursor = this.#native.cursor(from)
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
   * Reads records from `from` on and then waits for new ones as they become durable, until
   * `signal` aborts or the log is closed (the iteration then ends normally).
   */
  async *tail(options: TailOptions = {}): AsyncGenerator<LogRecord, void, undefined> {
    if (this.#closing) throw closedError()
    checkOptions('options', options)
    const batch = checkBatchSize(options.batchSize)
    const signal = options.signal
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw invalidArgument(`options.signal must be an AbortSignal, got ${describe(signal)}`)
    }
    let next = options.from === undefined ? this.lastSeq + 1 : checkSeq('from', options.from)
    if (next === 0) next = 1
    if (signal?.aborted) return
    let cursor: native.NativeCursor
    try {
      cursor = this.#native.cursor(next)
    } catch (e) {
      throw toUringdbError(e)
    }
    const token = this.#nextToken++
    const onAbort = (): void => {
      try {
        this.#native.cancelWait(token)
      } catch {
        // closed: the wait has ended already
      }
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      while (!signal?.aborted && !this.#closing) {
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
          if (signal?.aborted || this.#closing) return
          let durable: number
          try {
            durable = await this.#native.waitFor(next, token)
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

  /**
   * Deletes whole segment files all of whose records are below `seq` (the active segment
   * is never deleted, so some records below `seq` may remain). Resolves with the number of
   * segments deleted.
   */
  async truncateBefore(seq: number): Promise<number> {
    if (this.#closing) throw closedError()
    try {
      return await this.#native.truncateBefore(checkSeq('seq', seq))
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /** First readable sequence number, 0 when the log is empty. */
  get firstSeq(): number {
    try {
      return this.#native.firstSeq
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /** Last durable (and visible) sequence number, 0 when the log is empty. */
  get lastSeq(): number {
    try {
      return this.#native.lastSeq
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /** The largest record accepted, in bytes. */
  get maxRecordBytes(): number {
    return this.#native.maxRecordBytes
  }

  /** Counters, latency percentiles per stage, and the I/O backend in use. */
  stats(): LogStats {
    let s: native.NativeStats
    try {
      s = this.#native.stats()
    } catch (e) {
      throw toUringdbError(e)
    }
    return {
      backend: s.backend as LogStats['backend'],
      fallbackReason: s.fallbackReason ?? null,
      features: s.features,
      appends: s.appends,
      appendBytes: s.appendBytes,
      groups: s.groups,
      fsyncs: s.fsyncs,
      bytesWritten: s.bytesWritten,
      recordsPerGroup: s.groups === 0 ? 0 : s.appends / s.groups,
      firstSeq: s.firstSeq,
      lastSeq: s.lastSeq,
      segments: s.segments,
      latencyUs: { queueWait: s.queueWait, write: s.write, fsync: s.fsync, total: s.total },
    }
  }

  /**
   * Closes this handle: new calls reject with `ERR_URINGDB_CLOSED`, appends already made
   * still complete (they are written, not dropped), open tails end. The engine closes
   * (syncs, joins its threads, releases the directory lock) with the last handle in the
   * process. Idempotent. After a write or fsync failure, close still resolves: the failure
   * was reported to the appends it affected.
   */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed
    this.#closing = true
    this.#flushStaged()
    this.#closed = (async () => {
      if (this.#counts.length > this.#head) {
        await new Promise<void>((resolve) => {
          this.#idle = resolve
        })
      }
      try {
        await this.#native.close()
      } catch (e) {
        throw toUringdbError(e)
      }
    })()
    return this.#closed
  }

  /** Same as {@link Log.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}

/**
 * Opens the durable log in `dir` (created if missing), running crash recovery. Opening the
 * same directory again in this process — from the main thread or a worker thread — shares
 * one engine; each handle closes independently.
 *
 * @throws {@link UringdbError} `ERR_URINGDB_INVALID_OPTION` (with `field`),
 * `ERR_URINGDB_LOCKED`, `ERR_URINGDB_CORRUPTION` (with `file` and `offset`),
 * `ERR_URINGDB_IO_URING_UNAVAILABLE`, or an OS error code.
 */
export async function openLog(dir: string, options: LogOptions = {}): Promise<Log> {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw invalidArgument(`dir must be a non-empty string, got ${describe(dir)}`)
  }
  const o = parseOptions(LogOptionsSchema, options)
  let log: Log | undefined
  const onComplete = (seqs: Float64Array | null, failed: number, errorJson: string | null, group: Float64Array | null): void => {
    log?._complete(seqs, failed, errorJson, group)
  }
  let handle: native.NativeLog
  try {
    handle = await native.openLog(
      dir,
      {
        ioBackend: o.ioBackend,
        segmentBytes: o.segmentBytes,
        ringBytes: o.ringBytes,
        maxRecordBytes: o.maxRecordBytes ?? 0,
        commitDelayUs: o.commitDelayUs,
        recovery: o.recovery,
      },
      onComplete,
    )
  } catch (e) {
    throw toUringdbError(e)
  }
  log = new Log(handle, dir, o.sync)
  if (recoveryChannel.hasSubscribers) {
    const r = handle.recovery
    const event: RecoveryEvent = {
      dir,
      opened: r.opened,
      segments: r.segments,
      records: handle.lastSeq === 0 ? 0 : handle.lastSeq - handle.firstSeq + 1,
      firstSeq: handle.firstSeq,
      lastSeq: r.lastSeq,
      truncatedBytes: r.truncatedBytes,
      durationUs: r.durationUs,
    }
    recoveryChannel.publish(event)
  }
  return log
}

// ---------------------------------------------------------------------------------------
// The key-value database
// ---------------------------------------------------------------------------------------

const compressionEnum = z.enum(['none', 'lz4', 'zstd'])

/**
 * Options of {@link open}, as a zod schema: validated at open; unknown keys are rejected
 * and errors name the field. The TypeScript type {@link DbOptions} is inferred from it.
 */
export const DbOptionsSchema = z
  .object({
    /** Default durability of writes: resolve only after fdatasync covered them. */
    sync: z.boolean().default(true),
    /** I/O backend: `auto` probes io_uring at open and falls back to `portable`. */
    ioBackend: z.enum(['auto', 'io_uring', 'portable']).default('auto'),
    /** `strict`: damage in the log followed by valid records is an error; `tolerant`: cut there. */
    recovery: z.enum(['strict', 'tolerant']).default('strict'),
    /** Preallocated size of one log segment, in bytes. */
    segmentBytes: z.number().int().min(1 * MiB).max(4096 * MiB).multipleOf(8).default(64 * MiB),
    /** Capacity of the commit queue in bytes, a power of two. */
    ringBytes: z
      .number()
      .int()
      .min(1 * MiB)
      .max(1024 * MiB)
      .refine((n) => (n & (n - 1)) === 0, { message: 'must be a power of two' })
      .default(32 * MiB),
    /** Extra wait, in microseconds, before writing a group that started on an idle log. */
    commitDelayUs: z.number().int().min(0).max(100_000).default(0),
    /** Memtable size at which it is flushed to a table, in bytes. */
    memtableBytes: z.number().int().min(64 * 1024).max(4096 * MiB).default(64 * MiB),
    /** Memtables waiting for flush at which writes stop. */
    maxImmutableMemtables: z.number().int().min(1).max(16).default(2),
    /** Level-0 tables that trigger a compaction into level 1. */
    l0CompactionTrigger: z.number().int().min(1).max(1000).default(4),
    /** Level-0 tables at which writes are slowed. */
    l0SlowdownTrigger: z.number().int().min(1).max(1000).default(12),
    /** Level-0 tables at which writes stop until compaction catches up. */
    l0StopTrigger: z.number().int().min(1).max(1000).default(20),
    /** Target size of level 1 in bytes; each deeper level is `levelMultiplier` times larger. */
    levelBaseBytes: z.number().int().min(1 * MiB).max(2 ** 40).default(256 * MiB),
    /** Size ratio between adjacent levels. */
    levelMultiplier: z.number().int().min(2).max(100).default(10),
    /** Size of one table written by compaction, in bytes. */
    targetFileBytes: z.number().int().min(64 * 1024).max(4096 * MiB).default(64 * MiB),
    /** Block compression: one for all levels, or one per level (the last applies below). */
    compression: z
      .union([compressionEnum, z.array(compressionEnum).min(1).max(7)])
      .default(['none', 'none', 'lz4']),
    /** Bloom filter bits per key (0 disables filters). */
    bloomBitsPerKey: z.number().int().min(0).max(64).default(10),
    /** Target size of a data block, in bytes. */
    blockBytes: z.number().int().min(256).max(4 * MiB).default(4096),
    /** Block cache capacity, in bytes (0 disables it). */
    cacheBytes: z.number().int().min(0).max(2 ** 40).default(64 * MiB),
    /** Background compaction threads. */
    compactionThreads: z.number().int().min(1).max(64).default(1),
    /** Bytes per second flush and compaction may write (0: unlimited). */
    compactionRateBytesPerSec: z.number().int().min(0).max(2 ** 50).default(0),
    /**
     * Table files kept open at most (the least recently used beyond it are closed and
     * reopened when read); also at most half the process's open-file limit (`ulimit -n`).
     */
    maxOpenFiles: z.number().int().min(16).max(2 ** 20).default(1000),
  })
  .strict()

/** Options of {@link open} (all optional). */
export type DbOptions = z.input<typeof DbOptionsSchema>

/** A key or value: bytes, or a string (encoded as UTF-8). */
export type Bytes = Uint8Array | string

/** How values (and keys, for iterators) come out: `buffer` (default) or `utf8` strings. */
export type Encoding = 'buffer' | 'utf8'

/** Options of one write. */
export interface WriteOptions {
  /** Override the database's `sync` default for this write. */
  sync?: boolean
}

/** Options of a point read. */
export interface GetOptions<E extends Encoding = 'buffer'> {
  /** Read at this snapshot instead of the current state. */
  snapshot?: Snapshot
  /** `utf8` returns strings. */
  encoding?: E
}

/** One operation of {@link Db.batch}. */
export type BatchOperation =
  | { type: 'put'; key: Bytes; value: Bytes }
  | { type: 'del'; key: Bytes }

/** A key range: any of `gt`/`gte` and `lt`/`lte` (absent: unbounded). */
export interface Range {
  /** Keys greater than this. */
  gt?: Bytes
  /** Keys greater than or equal to this. */
  gte?: Bytes
  /** Keys less than this. */
  lt?: Bytes
  /** Keys less than or equal to this. */
  lte?: Bytes
}

/** Options of {@link Db.iterator}, {@link Db.keys} and {@link Db.values}. */
export interface IteratorOptions extends Range {
  /** Descending key order. */
  reverse?: boolean
  /** At most this many entries (-1 or Infinity: no limit). */
  limit?: number
  /** Read at this snapshot (otherwise the iterator takes its own at creation). */
  snapshot?: Snapshot
  /** Key encoding of the entries returned. */
  keyEncoding?: Encoding
  /** Value encoding of the entries returned. */
  valueEncoding?: Encoding
}

/** Options of {@link Db.clear}. */
export interface ClearOptions extends Range, WriteOptions {
  /** Delete keys from the high end (only matters with `limit`). */
  reverse?: boolean
  /** Delete at most this many keys. */
  limit?: number
  /** Delete the keys in the range as of this snapshot (keys written later are kept). */
  snapshot?: Snapshot
}

/** Statistics of one level of the tree. */
export interface LevelStats {
  /** Level number (0 = newest). */
  level: number
  /** Table files. */
  files: number
  /** Bytes in those files. */
  bytes: number
  /** Target size (0 for level 0, which is bounded by file count). */
  targetBytes: number
}

/** Statistics of a database; every counter is cumulative since open. */
export interface DbStats {
  /** Per level. */
  levels: LevelStats[]
  /** Bytes of user keys and values written. */
  userBytesWritten: number
  /** Put operations applied. */
  puts: number
  /** Delete operations applied. */
  deletes: number
  /** Memtable flushes. */
  flushes: number
  /** Bytes written by flushes. */
  flushBytesWritten: number
  /** Compactions. */
  compactions: number
  /** Bytes read by compactions. */
  compactionBytesRead: number
  /** Bytes written by compactions. */
  compactionBytesWritten: number
  /** (log + flush + compaction bytes written) / user bytes written. */
  writeAmplification: number
  /** Bytes of all tables / bytes of the last non-empty level. */
  spaceAmplification: number
  /** Times writes were held back (slowdowns and stops). */
  stalls: number
  /** Times writes were slowed. */
  slowdowns: number
  /** Times writes were stopped. */
  stops: number
  /** Total time writes were held back, in microseconds. */
  stallUs: number
  /** Payload bytes held by a write stall now (bounded by `stallQueueLimitBytes` plus one write). */
  stallQueueBytes: number
  /** The stall queue's bound (`STALL_QUEUE_BYTES_MAX`). */
  stallQueueLimitBytes: number
  /** The process-wide reader queue: jobs now, the most there have been, and its bound. */
  readerQueue: { jobs: number; peakJobs: number; limitJobs: number }
  /** Block cache. */
  cache: { hits: number; misses: number; hitRate: number; usedBytes: number; capacityBytes: number; entries: number; evictions: number }
  /** Bloom filters: table lookups that consulted one, and those it answered "absent". */
  bloom: { checked: number; useful: number; usefulRate: number }
  /** Point reads. */
  gets: number
  /** Table files open now (at most `maxOpenFiles`). */
  openTableFiles: number
  /** Bytes in the active memtable. */
  memtableBytes: number
  /** Memtables waiting for flush. */
  immutableMemtables: number
  /** Newest visible sequence number. */
  visibleSeq: number
  /** Sequence number up to which everything is in tables. */
  flushedSeq: number
  /** Live snapshots. */
  snapshots: number
  /** Background failures so far. */
  backgroundErrors: number
  /** The current background failure (writes are refused while set), or null. */
  backgroundError: string | null
  /** The write-ahead log's statistics. */
  log: {
    backend: string
    fallbackReason: string | null
    appends: number
    appendBytes: number
    groups: number
    fsyncs: number
    bytesWritten: number
    firstSeq: number
    lastSeq: number
    segments: number
    queueWait: Percentiles
    write: Percentiles
    fsync: Percentiles
    total: Percentiles
  }
}

/** What {@link open} found (published on `uringdb:db:recovery`, also {@link Db.recovery}). */
export interface DbRecovery {
  /** The directory. */
  dir: string
  /** Whether this handle opened the engine (false: it joined one already open). */
  opened: boolean
  /** Whether the database was created by this open. */
  created: boolean
  /** Sequence number up to which everything was in tables. */
  flushedSeq: number
  /** Log records replayed into the memtable. */
  replayedRecords: number
  /** Tables in the manifest. */
  tables: number
  /** Unreferenced table files removed (left by a crash during flush or compaction). */
  orphansRemoved: number
  /** Manifest edits replayed. */
  manifestEdits: number
  /** Bytes of a torn manifest tail cut. */
  manifestTornBytes: number
  /** Log segments found. */
  logSegments: number
  /** Bytes cut from a torn log tail. */
  logTruncatedBytes: number
  /** Last sequence number. */
  lastSeq: number
  /** Time open took, in microseconds. */
  durationUs: number
  /** I/O backend in use. */
  backend: string
  /** Why io_uring is not used, or null. */
  fallbackReason: string | null
}

const dbChannels = {
  flush: channel('uringdb:db:flush'),
  compaction: channel('uringdb:db:compaction'),
  stall: channel('uringdb:db:stall'),
  recovery: channel('uringdb:db:recovery'),
  error: channel('uringdb:db:error'),
} as const

const KEY_BYTES_MAX = 64 * 1024
const BATCH_TAG = 0xb1
const DB_STAGE_BYTES = 1 * MiB
const DB_STAGE_WRITES = 256
// #reserve's answer when the write must park (see ParkedDbWrite).
const PARK = -2
// Multi-gets (a tick's gets, or one getMany call) of one handle in the engine's reader
// queue at once; more wait in the handle, in call order, as pending promises (reading the
// state as of their call). Keeps one handle far below the process-wide READER_QUEUE_JOBS_MAX.
const DB_READS_IN_FLIGHT_MAX = 16

// A Db write waiting for room in the engine (see ParkedLogOp): a refused staging run's tail
// (bytes), or one write not yet encoded (`encode` writes its payload; keys and values are
// read then, not copied now).
type ParkedDbWrite =
  | { kind: 'run'; data: Buffer; lens: Uint32Array; syncs: Uint8Array }
  | { kind: 'one'; len: number; sync: boolean; encode: (b: Buffer, at: number) => void }

/** Encodes a put (kind 1) or delete (kind 0) batch payload of one entry at `at`. */
function encodeSingle(b: Buffer, at: number, kind: 0 | 1, k: Uint8Array, v: Uint8Array | undefined): void {
  const head = kind === 1 ? 9 : 5
  b[at] = BATCH_TAG
  b[at + 1] = kind
  b.writeUInt32LE(k.byteLength, at + 2)
  if (kind === 1) b.writeUInt32LE((v as Uint8Array).byteLength, at + 6)
  b.set(k, at + 1 + head)
  if (v !== undefined) b.set(v, at + 1 + head + k.byteLength)
}
const GET_STAGE_KEYS = 1024
const SCRATCH_BYTES = 16 * 1024

function keyBytes(name: string, k: unknown): Buffer {
  let b: Buffer
  if (typeof k === 'string') {
    checkWellFormed(name, k)
    b = Buffer.from(k, 'utf8')
  } else if (k instanceof Uint8Array) b = Buffer.from(k.buffer, k.byteOffset, k.byteLength)
  else throw invalidArgument(`${name} must be a Buffer, Uint8Array or string, got ${describe(k)}`)
  if (b.byteLength > KEY_BYTES_MAX) {
    throw invalidArgument(`${name} of ${b.byteLength} bytes is larger than the limit of ${KEY_BYTES_MAX} bytes`)
  }
  return b
}

function valueBytes(name: string, v: unknown): Buffer {
  if (typeof v === 'string') {
    checkWellFormed(name, v)
    return Buffer.from(v, 'utf8')
  }
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  throw invalidArgument(`${name} must be a Buffer, Uint8Array or string, got ${describe(v)}`)
}

function checkEncoding(name: string, e: unknown): Encoding {
  if (e === undefined || e === 'buffer' || e === 'binary' || e === 'view') return 'buffer'
  if (e === 'utf8' || e === 'utf-8') return 'utf8'
  throw invalidArgument(`${name} must be 'buffer' or 'utf8', got ${String(e)}`)
}

function checkSnapshot(s: unknown): native.NativeSnapshot | null {
  if (s === undefined || s === null) return null
  if (!(s instanceof Snapshot)) throw invalidArgument('snapshot must come from db.snapshot()')
  return s._native
}

function checkSync(options: WriteOptions | undefined, dflt: boolean): boolean {
  checkOptions('options', options)
  const s: unknown = options?.sync ?? dflt
  if (typeof s !== 'boolean') throw invalidArgument(`options.sync must be a boolean, got ${describe(s)}`)
  return s
}

/** Encodes batch operations (the format of `uringdb_lsm::db::batch`; validated again natively). */
class BatchEncoder {
  buf: Buffer
  len = 1
  count = 0
  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity)
    this.buf[0] = BATCH_TAG
  }
  #reserve(n: number): void {
    if (this.len + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n))
    this.buf.copy(next, 0, 0, this.len)
    this.buf = next
  }
  put(k: Buffer, v: Buffer): void {
    this.#reserve(9 + k.length + v.length)
    const b = this.buf
    b[this.len] = 1
    b.writeUInt32LE(k.length, this.len + 1)
    b.writeUInt32LE(v.length, this.len + 5)
    k.copy(b, this.len + 9)
    v.copy(b, this.len + 9 + k.length)
    this.len += 9 + k.length + v.length
    this.count++
  }
  del(k: Buffer): void {
    this.#reserve(5 + k.length)
    const b = this.buf
    b[this.len] = 0
    b.writeUInt32LE(k.length, this.len + 1)
    k.copy(b, this.len + 5)
    this.len += 5 + k.length
    this.count++
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.len)
  }
}

/**
 * A consistent point-in-time view: reads given it see exactly the writes that had resolved
 * before it was taken. Release it when done (compaction keeps old versions while it lives).
 */
export class Snapshot implements Disposable {
  /** @internal */
  readonly _native: native.NativeSnapshot
  /** @internal */
  constructor(n: native.NativeSnapshot) {
    this._native = n
  }
  /** The sequence number the snapshot reads at (-1 once released). */
  get seq(): number {
    return this._native.seq
  }
  /** Releases the snapshot (idempotent). Reads given it afterwards reject. */
  release(): void {
    this._native.release()
  }
  /** Same as {@link Snapshot.release}, for `using`. */
  [Symbol.dispose](): void {
    this.release()
  }
}

/** One `[key, value]` pair of an iterator. */
export type Entry<K, V> = [K, V]

/**
 * An iterator over a key range of a consistent snapshot, fetching entries from the engine
 * in batches (growing from 64 to 4096 entries). Async-iterable; also `next()`, `nextv()`,
 * `seek()` and `close()`.
 */
export class DbIterator<K = Buffer, V = Buffer> implements AsyncIterableIterator<Entry<K, V>>, AsyncDisposable {
  #native: native.NativeIterator | undefined
  #db: Db
  #data: Buffer = Buffer.alloc(0)
  #lens: Int32Array = new Int32Array(0)
  #pos = 0
  #off = 0
  #done = false
  #batch = 64
  readonly #keyEnc: Encoding
  readonly #valueEnc: Encoding
  readonly #keys: boolean
  readonly #values: boolean
  #busy = false
  #aborted = false

  /** @internal */
  constructor(db: Db, n: native.NativeIterator, keyEnc: Encoding, valueEnc: Encoding, keys: boolean, values: boolean) {
    this.#db = db
    this.#native = n
    this.#keyEnc = keyEnc
    this.#valueEnc = valueEnc
    this.#keys = keys
    this.#values = values
  }

  #decode(b: Buffer, enc: Encoding): Buffer | string {
    return enc === 'utf8' ? b.toString('utf8') : b
  }

  async #fill(): Promise<boolean> {
    if (this.#aborted) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database was closed while this iterator was open')
    if (this.#pos * 2 < this.#lens.length) return true
    if (this.#done) return false
    const n = this.#native
    if (n === undefined) throw this.#db._closedOr('the iterator is closed')
    let b: native.NativeBatch
    try {
      b = await n.nextBatch(this.#batch, 1 * MiB)
    } catch (e) {
      throw toUringdbError(e)
    }
    this.#batch = Math.min(this.#batch * 2, 4096)
    this.#data = b.data
    this.#lens = b.lens
    this.#pos = 0
    this.#off = 0
    this.#done = b.done
    return this.#lens.length > 0
  }

  #take(): Entry<K, V> {
    const kl = this.#lens[this.#pos * 2]
    const vl = this.#lens[this.#pos * 2 + 1]
    const k = this.#data.subarray(this.#off, this.#off + kl)
    const v = this.#data.subarray(this.#off + kl, this.#off + kl + vl)
    this.#off += kl + vl
    this.#pos++
    return [
      (this.#keys ? this.#decode(k, this.#keyEnc) : undefined) as K,
      (this.#values ? this.#decode(v, this.#valueEnc) : undefined) as V,
    ]
  }

  #enter(): void {
    if (this.#busy) throw invalidArgument('the iterator is busy: wait for the previous call to settle')
    this.#busy = true
  }

  /** The next entry, or `undefined` at the end. */
  async nextEntry(): Promise<Entry<K, V> | undefined> {
    this.#enter()
    try {
      if (!(await this.#fill())) return undefined
      return this.#take()
    } finally {
      this.#busy = false
    }
  }

  /** Up to `size` entries (fewer at the end; an empty array once exhausted). */
  async nextv(size: number): Promise<Array<Entry<K, V>>> {
    if (!Number.isInteger(size) || size < 1) throw invalidArgument(`size must be a positive integer, got ${String(size)}`)
    this.#enter()
    try {
      const out: Array<Entry<K, V>> = []
      while (out.length < size) {
        if (!(await this.#fill())) break
        while (out.length < size && this.#pos * 2 < this.#lens.length) out.push(this.#take())
      }
      return out
    } finally {
      this.#busy = false
    }
  }

  /** Every remaining entry; closes the iterator. */
  async all(): Promise<Array<Entry<K, V>>> {
    const out: Array<Entry<K, V>> = []
    try {
      for (;;) {
        const chunk = await this.nextv(4096)
        if (chunk.length === 0) return out
        for (const e of chunk) out.push(e)
      }
    } finally {
      await this.close()
    }
  }

  /**
   * Repositions: the next entry is the first at or after `target` (at or before it, in
   * reverse), still within the range.
   */
  seek(target: Bytes): void {
    const t = keyBytes('target', target)
    if (this.#native === undefined) throw this.#db._closedOr('the iterator is closed')
    this.#native.seek(t)
    this.#lens = new Int32Array(0)
    this.#pos = 0
    this.#off = 0
    this.#done = false
    this.#batch = 64
  }

  /** @internal Closed because its database closed: later reads reject, not end quietly. */
  async _abort(): Promise<void> {
    if (this.#native !== undefined) this.#aborted = true
    await this.close()
  }

  /** Releases the iterator (idempotent). */
  async close(): Promise<void> {
    const n = this.#native
    this.#native = undefined
    this.#done = true
    this.#lens = new Int32Array(0)
    if (n !== undefined) {
      n.close()
      this.#db._forget(this)
    }
  }

  /** AsyncIterator protocol. */
  async next(): Promise<IteratorResult<Entry<K, V>>> {
    const e = await this.nextEntry()
    if (e === undefined) {
      await this.close()
      return { done: true, value: undefined }
    }
    return { done: false, value: e }
  }

  /** Closes the iterator when a `for await` loop exits early. */
  async return(): Promise<IteratorResult<Entry<K, V>>> {
    await this.close()
    return { done: true, value: undefined }
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  /** Same as {@link DbIterator.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}

/** A chained batch: collect operations, then {@link ChainedBatch.write} them atomically. */
export class ChainedBatch {
  readonly #db: Db
  #enc = new BatchEncoder()
  #written = false
  /** @internal */
  constructor(db: Db) {
    this.#db = db
  }
  /** Adds a put. */
  put(key: Bytes, value: Bytes): this {
    this.#check()
    this.#enc.put(keyBytes('key', key), valueBytes('value', value))
    return this
  }
  /** Adds a delete. */
  del(key: Bytes): this {
    this.#check()
    this.#enc.del(keyBytes('key', key))
    return this
  }
  /** Removes every operation added so far. */
  clear(): this {
    this.#check()
    this.#enc = new BatchEncoder()
    return this
  }
  /** Operations added. */
  get length(): number {
    return this.#enc.count
  }
  /** Writes all operations atomically (all or nothing, also across a crash). */
  write(options?: WriteOptions): Promise<void> {
    try {
      this.#check()
      this.#written = true
      if (this.#enc.count === 0) return Promise.resolve()
      return this.#db._write(this.#enc.bytes(), options).then(() => undefined)
    } catch (e) {
      return Promise.reject(toUringdbError(e))
    }
  }
  #check(): void {
    if (this.#written) throw invalidArgument('the batch was already written')
  }
}

/**
 * The key-value database. Create one with {@link open}.
 *
 * Every write (put, del, batch) is one record in the write-ahead log, applied to the
 * memtable after its commit group is durable (with `sync: true`, the default), so a
 * resolved write is visible to every later read and survives a crash. Writes from one
 * handle complete in order.
 */
export class Db implements AsyncDisposable {
  readonly #native: native.NativeDb
  readonly #dir: string
  readonly #sync: boolean
  readonly #maxBatchBytes: number
  #resolves: Array<(seq: number) => void> = []
  #rejects: Array<(e: UringdbError) => void> = []
  #head = 0
  #closing = false
  #closed: Promise<void> | undefined
  #idle: (() => void) | undefined
  readonly #iterators = new Set<DbIterator<unknown, unknown>>()
  readonly #recovery: DbRecovery
  // Writes staged in this tick.
  #stage: Buffer | undefined
  #stageBytes = 0
  readonly #lens = new Uint32Array(DB_STAGE_WRITES)
  readonly #syncs = new Uint8Array(DB_STAGE_WRITES)
  #staged = 0
  #flushQueued = false
  // Writes waiting for room in the engine, in call order; the newest #parkedOps writes of
  // the queue above. Nothing is staged while any is parked.
  #parked: ParkedDbWrite[] = []
  #parkedHead = 0
  #parkedOps = 0
  // Parked writes the engine refused, waiting for the `ahead` writes before them.
  #doom: { ahead: number; count: number; err: UringdbError } | undefined
  // Gets staged in this tick (current state only; snapshot reads cross on their own).
  #getKeys: Buffer[] = []
  #getWaiters: Array<[(v: Buffer | undefined) => void, (e: UringdbError) => void]> = []
  #getQueued = false
  // The snapshot the staged gets read at: taken when the first of them was called, so that
  // no get sees a write issued after it.
  #getSnap: native.NativeSnapshot | null = null
  #scratch: Buffer | undefined
  // Multi-gets in the reader queue, and those waiting for a place (see DB_READS_IN_FLIGHT_MAX).
  #reads = 0
  #readQueue: Array<() => void> = []
  #readHead = 0

  /** @internal */
  constructor(handle: native.NativeDb, dir: string, sync: boolean, recovery: DbRecovery) {
    this.#native = handle
    this.#dir = dir
    this.#sync = sync
    this.#maxBatchBytes = handle.maxBatchBytes
    this.#recovery = recovery
  }

  /** The directory. */
  get location(): string {
    return this.#dir
  }

  /** What open found. */
  get recovery(): DbRecovery {
    return this.#recovery
  }

  /** @internal */
  _closedOr(message: string): UringdbError {
    return this.#closing ? new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed') : invalidArgument(message)
  }

  /** @internal */
  _forget(it: DbIterator<unknown, unknown>): void {
    this.#iterators.delete(it)
  }

  readonly #flushStaged = (): void => {
    this.#flushQueued = false
    const n = this.#staged
    if (n === 0) return
    const data = (this.#stage as Buffer).subarray(0, this.#stageBytes)
    this.#staged = 0
    this.#stageBytes = 0
    const lens = this.#lens.subarray(0, n)
    const syncs = this.#syncs.subarray(0, n)
    try {
      const taken = this.#native.writePacked(data, lens, syncs)
      if (taken < n) {
        // The refused tail's bytes stay in the staging buffer, which nothing else writes
        // while anything is parked (#packParked reuses it once this run is taken); its
        // lengths are copied (their arrays are reused).
        let at = 0
        for (let i = 0; i < taken; i++) at += lens[i]
        this.#parked.push({ kind: 'run', data: data.subarray(at), lens: lens.slice(taken), syncs: syncs.slice(taken) })
        this.#parkedOps += n - taken
      }
    } catch (e) {
      const accepted = nativeDetail(e, 'accepted')
      this.#rejectNewest(n - (typeof accepted === 'number' ? accepted : 0), toUringdbError(e))
    }
  }

  #park(len: number, sync: boolean, encode: (b: Buffer, at: number) => void): Promise<number> {
    this.#parked.push({ kind: 'one', len, sync, encode })
    this.#parkedOps++
    return this.#enqueue()
  }

  /**
   * The engine refused the parked writes (it closed or failed): they are rejected with `err`
   * once the writes ahead of them have settled, so that outcomes keep call order.
   */
  #failParked(err: UringdbError): void {
    const n = this.#parkedOps
    this.#parked = []
    this.#parkedHead = 0
    this.#parkedOps = 0
    const ahead = this.#resolves.length - this.#head - n
    if (ahead <= 0 || this.#doom !== undefined) this.#rejectNewest(n, err)
    else this.#doom = { ahead, count: n, err }
  }

  /** One write ahead of the refused parked ones settled; reject them when none is left. */
  #stepDoom(): void {
    const d = this.#doom as { ahead: number; count: number; err: UringdbError }
    if (--d.ahead > 0) return
    this.#doom = undefined
    for (let i = 0; i < d.count; i++) this.#rejects[this.#head++](d.err)
  }

  /**
   * Hands parked writes to the engine in order, packed into staging-sized runs (one
   * crossing each), until it is full again (it calls back once it has room) or none is
   * left. An error rejects every parked write (the engine refuses writes from then on).
   */
  #pump(): void {
    const q = this.#parked
    try {
      while (this.#parkedHead < q.length) {
        let op = q[this.#parkedHead]
        if (op.kind === 'one') {
          op = this.#packParked()
          q[this.#parkedHead] = op
        }
        let taken: number
        try {
          taken = this.#native.writePacked(op.data, op.lens, op.syncs)
        } catch (e) {
          const accepted = nativeDetail(e, 'accepted')
          this.#parkedOps -= typeof accepted === 'number' ? accepted : 0
          throw e
        }
        this.#parkedOps -= taken
        if (taken < op.lens.length) {
          let at = 0
          for (let i = 0; i < taken; i++) at += op.lens[i]
          op.data = op.data.subarray(at)
          op.lens = op.lens.subarray(taken)
          op.syncs = op.syncs.subarray(taken)
          return
        }
        this.#parkedHead++
      }
    } catch (e) {
      this.#failParked(toUringdbError(e))
      return
    }
    this.#parked = []
    this.#parkedHead = 0
  }

  /** Encodes the parked writes at the head into one run (one staging run's worth at most). */
  #packParked(): Extract<ParkedDbWrite, { kind: 'run' }> {
    const q = this.#parked
    let end = this.#parkedHead
    let bytes = 0
    while (end < q.length && end - this.#parkedHead < DB_STAGE_WRITES) {
      const op = q[end]
      if (op.kind !== 'one' || (end > this.#parkedHead && bytes + op.len > DB_STAGE_BYTES)) break
      bytes += op.len
      end++
    }
    const k = end - this.#parkedHead
    // Into the staging buffer (see #flushStaged): no buffer per run during a long wait.
    const data = bytes <= DB_STAGE_BYTES ? (this.#stage ??= Buffer.allocUnsafe(DB_STAGE_BYTES)).subarray(0, bytes) : Buffer.allocUnsafe(bytes)
    const lens = new Uint32Array(k)
    const syncs = new Uint8Array(k)
    let at = 0
    for (let i = 0; i < k; i++) {
      const op = q[this.#parkedHead + i] as Extract<ParkedDbWrite, { kind: 'one' }>
      op.encode(data, at)
      at += op.len
      lens[i] = op.len
      syncs[i] = op.sync ? 1 : 0
    }
    q.splice(this.#parkedHead + 1, k - 1)
    return { kind: 'run', data, lens, syncs }
  }

  #rejectNewest(k: number, err: UringdbError): void {
    const start = this.#resolves.length - k
    const rejects = this.#rejects.splice(start, k)
    this.#resolves.splice(start, k)
    this.#maybeIdle()
    for (const r of rejects) r(err)
  }

  #maybeIdle(): void {
    if (this.#head >= this.#resolves.length) {
      this.#head = 0
      this.#resolves.length = 0
      this.#rejects.length = 0
      if (this.#idle !== undefined) {
        const idle = this.#idle
        this.#idle = undefined
        idle()
      }
    }
  }

  /**
   * @internal Receives completions from the engine (one call per commit group), or, with
   * no outcome (null seqs, 0 failed), word that parked writes may be retried.
   */
  _complete(seqs: Float64Array | null, failed: number, errorJson: string | null): void {
    if (seqs === null && failed === 0) {
      this.#pump()
      return
    }
    if (seqs !== null) {
      for (let i = 0; i < seqs.length; i++) {
        const fn = this.#resolves[this.#head++]
        fn(seqs[i])
        if (this.#doom !== undefined) this.#stepDoom()
      }
    }
    if (failed > 0) {
      const err = toUringdbError(new Error(errorJson ?? '{"code":"ERR_URINGDB_IO","message":"unknown failure"}'))
      for (let i = 0; i < failed; i++) {
        this.#rejects[this.#head++](err)
        if (this.#doom !== undefined) this.#stepDoom()
      }
    }
    if (this.#head >= this.#resolves.length) this.#maybeIdle()
    else if (this.#head > 4096 && this.#head * 2 > this.#resolves.length) {
      this.#resolves.splice(0, this.#head)
      this.#rejects.splice(0, this.#head)
      this.#head = 0
    }
  }

  /** @internal Logs one encoded batch; resolves with its sequence number. */
  _write(payload: Buffer, options: WriteOptions | undefined): Promise<number> {
    if (this.#closing) return Promise.reject(new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed'))
    let sync: boolean
    try {
      sync = checkSync(options, this.#sync)
    } catch (e) {
      return Promise.reject(e)
    }
    const len = payload.length
    if (len > this.#maxBatchBytes) {
      return Promise.reject(
        new UringdbError('ERR_URINGDB_RECORD_TOO_LARGE', `a write of ${len} bytes exceeds the limit of ${this.#maxBatchBytes} bytes`),
      )
    }
    const at = this.#parked.length > 0 ? PARK : this.#reserve(len)
    if (at === PARK) return this.#park(len, sync, (b, to) => payload.copy(b, to))
    if (at < 0) {
      // Crosses alone (copied once, by the engine).
      const p = this.#enqueue()
      try {
        const lens = Uint32Array.of(len)
        const syncs = Uint8Array.of(sync ? 1 : 0)
        if (this.#native.writePacked(payload, lens, syncs) === 0) {
          this.#parked.push({ kind: 'run', data: payload, lens, syncs })
          this.#parkedOps++
        }
      } catch (e) {
        this.#rejectNewest(1, toUringdbError(e))
      }
      return p
    }
    payload.copy(this.#stage as Buffer, at)
    return this.#commitStaged(len, sync)
  }

  #enqueue(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#resolves.push(resolve)
      this.#rejects.push(reject)
    })
  }

  /**
   * Reserves `len` bytes of this tick's staging buffer for one write (flushing the run first
   * if it is full) and returns their offset, -1 if the write must cross on its own, or
   * PARK if flushing the run parked some of it (the write then parks behind it).
   */
  #reserve(len: number): number {
    if (this.#staged === DB_STAGE_WRITES || this.#stageBytes + len > DB_STAGE_BYTES) {
      this.#flushStaged()
      if (this.#parked.length > 0) return PARK
    }
    if (len > DB_STAGE_BYTES) return -1
    this.#stage ??= Buffer.allocUnsafe(DB_STAGE_BYTES)
    const at = this.#stageBytes
    this.#stageBytes += len
    return at
  }

  #commitStaged(len: number, sync: boolean): Promise<number> {
    this.#lens[this.#staged] = len
    this.#syncs[this.#staged] = sync ? 1 : 0
    this.#staged++
    if (!this.#flushQueued) {
      this.#flushQueued = true
      queueMicrotask(this.#flushStaged)
    }
    return this.#enqueue()
  }

  /** Stages one put or delete, encoded straight into the staging buffer. */
  #single(kind: 0 | 1, key: unknown, value: unknown, options: WriteOptions | undefined): Promise<number> {
    if (this.#closing) return Promise.reject(new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed'))
    try {
      const sync = options === undefined ? this.#sync : checkSync(options, this.#sync)
      const k = typeof key === 'string' || !(key instanceof Uint8Array) ? keyBytes('key', key) : key
      if (k.byteLength > KEY_BYTES_MAX) keyBytes('key', k)
      let v: Uint8Array | undefined
      if (kind === 1) v = value instanceof Uint8Array ? value : valueBytes('value', value)
      const head = kind === 1 ? 9 : 5
      const len = 1 + head + k.byteLength + (v?.byteLength ?? 0)
      if (len > this.#maxBatchBytes) {
        throw new UringdbError('ERR_URINGDB_RECORD_TOO_LARGE', `a write of ${len} bytes exceeds the limit of ${this.#maxBatchBytes} bytes`)
      }
      const at = this.#parked.length > 0 ? PARK : this.#reserve(len)
      if (at === PARK) {
        const kk = k
        return this.#park(len, sync, (b, to) => encodeSingle(b, to, kind, kk, v))
      }
      if (at < 0) {
        const e = new BatchEncoder(len)
        if (kind === 1) e.put(Buffer.from(k.buffer, k.byteOffset, k.byteLength), Buffer.from((v as Uint8Array).buffer, (v as Uint8Array).byteOffset, (v as Uint8Array).byteLength))
        else e.del(Buffer.from(k.buffer, k.byteOffset, k.byteLength))
        return this._write(e.bytes(), { sync })
      }
      encodeSingle(this.#stage as Buffer, at, kind, k, v)
      return this.#commitStaged(len, sync)
    } catch (err) {
      return Promise.reject(toUringdbError(err))
    }
  }

  /**
   * Sets `key` to `value`. Resolves (with the write's sequence number) once it is durable.
   * Never blocks: when the commit queue or a write stall's bounded queue is full, the write
   * waits, in order, as a pending promise — so do not modify a Buffer key or value until the
   * promise settles (a waiting write reads it when it is handed over).
   */
  put(key: Bytes, value: Bytes, options?: WriteOptions): Promise<void> {
    return this.#single(1, key, value, options) as Promise<unknown> as Promise<void>
  }

  /** Deletes `key` (not an error if it is absent). */
  del(key: Bytes, options?: WriteOptions): Promise<void> {
    return this.#single(0, key, undefined, options) as Promise<unknown> as Promise<void>
  }

  /** Applies `operations` atomically: all or nothing, also across a crash. */
  batch(operations: readonly BatchOperation[], options?: WriteOptions): Promise<void>
  /** Starts a {@link ChainedBatch}. */
  batch(): ChainedBatch
  batch(operations?: readonly BatchOperation[], options?: WriteOptions): Promise<void> | ChainedBatch {
    if (operations === undefined) return new ChainedBatch(this)
    try {
      if (!Array.isArray(operations)) throw invalidArgument(`operations must be an array, got ${describe(operations)}`)
      if (operations.length === 0) {
        checkSync(options, this.#sync)
        if (this.#closing) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed')
        return Promise.resolve()
      }
      const e = new BatchEncoder(1024)
      for (let i = 0; i < operations.length; i++) {
        const op: unknown = operations[i]
        if (typeof op !== 'object' || op === null) throw invalidArgument(`operations[${i}] must be an object, got ${describe(op)}`)
        const o = op as { type?: unknown; key?: unknown; value?: unknown }
        if (o.type === 'put') e.put(keyBytes(`operations[${i}].key`, o.key), valueBytes(`operations[${i}].value`, o.value))
        else if (o.type === 'del') e.del(keyBytes(`operations[${i}].key`, o.key))
        else throw invalidArgument(`operations[${i}].type must be 'put' or 'del', got ${String(o.type)}`)
      }
      return this._write(e.bytes(), options) as Promise<unknown> as Promise<void>
    } catch (err) {
      return Promise.reject(toUringdbError(err))
    }
  }

  /** Whether a multi-get started now would wait for a place in the reader queue. */
  #readsFull(): boolean {
    return this.#reads >= DB_READS_IN_FLIGHT_MAX
  }

  /** Runs `start` (one reader-queue job) when this handle has a place for it, in call order. */
  #read<T>(start: () => Promise<T>): Promise<T> {
    const run = (): Promise<T> => {
      let p: Promise<T>
      try {
        p = start()
      } catch (e) {
        this.#readDone()
        return Promise.reject(e)
      }
      return p.finally(() => this.#readDone())
    }
    if (this.#reads < DB_READS_IN_FLIGHT_MAX) {
      this.#reads++
      return run()
    }
    // The place is handed over by #readDone (#reads stays as it is).
    return new Promise<void>((resolve) => this.#readQueue.push(resolve)).then(run)
  }

  #readDone(): void {
    if (this.#readHead < this.#readQueue.length) {
      const next = this.#readQueue[this.#readHead]
      this.#readHead++
      if (this.#readHead === this.#readQueue.length) {
        this.#readQueue = []
        this.#readHead = 0
      } else if (this.#readHead > 1024 && this.#readHead * 2 > this.#readQueue.length) {
        this.#readQueue = this.#readQueue.slice(this.#readHead)
        this.#readHead = 0
      }
      next()
    } else {
      this.#reads--
    }
  }

  readonly #flushGets = (): void => {
    this.#getQueued = false
    const keys = this.#getKeys
    const waiters = this.#getWaiters
    const snap = this.#getSnap
    this.#getKeys = []
    this.#getWaiters = []
    this.#getSnap = null
    if (keys.length === 0) return
    const lens = new Uint32Array(keys.length)
    for (let i = 0; i < keys.length; i++) lens[i] = keys[i].length
    // `snap` was taken at the first of these gets, so waiting for a place changes nothing.
    const p = this.#read(() => this.#native.getMany(Buffer.concat(keys), lens, snap))
    p.finally(() => snap?.release()).then(
      (b) => {
        let off = 0
        for (let i = 0; i < waiters.length; i++) {
          const n = b.lens[i * 2 + 1]
          if (n < 0) waiters[i][0](undefined)
          else {
            waiters[i][0](b.data.subarray(off, off + n))
            off += n
          }
        }
      },
      (e: unknown) => {
        const err = toUringdbError(e)
        for (const [, rej] of waiters) rej(err)
      },
    )
  }

  /**
   * Reads the value of `key` (`undefined` if absent), off the JavaScript thread. The gets
   * of one tick cross to the engine together.
   */
  get(key: Bytes, options?: GetOptions<'buffer'>): Promise<Buffer | undefined>
  get(key: Bytes, options: GetOptions<'utf8'>): Promise<string | undefined>
  get(key: Bytes, options?: GetOptions<Encoding>): Promise<Buffer | string | undefined> {
    try {
      if (this.#closing) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed')
      checkOptions('options', options)
      const enc = checkEncoding('options.encoding', options?.encoding)
      const k = keyBytes('key', key)
      const snap = options?.snapshot
      checkSnapshot(snap)
      if (snap !== undefined && snap !== null) {
        return this.getMany([k], { snapshot: snap, encoding: enc } as GetOptions<'buffer'>).then((v) => v[0])
      }
      if (this.#getKeys.length === 0) this.#getSnap = this.#native.snapshot()
      const p = new Promise<Buffer | undefined>((resolve, reject) => {
        this.#getKeys.push(Buffer.from(k))
        this.#getWaiters.push([resolve, reject])
      })
      if (this.#getKeys.length >= GET_STAGE_KEYS) this.#flushGets()
      else if (!this.#getQueued) {
        this.#getQueued = true
        queueMicrotask(this.#flushGets)
      }
      return enc === 'utf8' ? p.then((b) => b?.toString('utf8')) : p
    } catch (err) {
      return Promise.reject(toUringdbError(err))
    }
  }

  /** Reads several keys at one consistent state; `undefined` for absent ones. */
  getMany(keys: readonly Bytes[], options?: GetOptions<'buffer'>): Promise<Array<Buffer | undefined>>
  getMany(keys: readonly Bytes[], options: GetOptions<'utf8'>): Promise<Array<string | undefined>>
  async getMany(keys: readonly Bytes[], options?: GetOptions<Encoding>): Promise<Array<Buffer | string | undefined>> {
    if (this.#closing) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed')
    checkOptions('options', options)
    if (!Array.isArray(keys)) throw invalidArgument(`keys must be an array, got ${describe(keys)}`)
    const enc = checkEncoding('options.encoding', options?.encoding)
    const bufs = keys.map((k, i) => keyBytes(`keys[${i}]`, k))
    const lens = new Uint32Array(bufs.length)
    for (let i = 0; i < bufs.length; i++) lens[i] = bufs[i].length
    const given = checkSnapshot(options?.snapshot)
    // A call that must wait for a place still reads the state as of now (or its snapshot,
    // even if the caller releases it meanwhile).
    const own = this.#readsFull() ? (given === null ? this.#native.snapshot() : given.dup()) : null
    const data = Buffer.concat(bufs)
    let b: native.NativeBatch
    try {
      b = await this.#read(() => this.#native.getMany(data, lens, own ?? given))
    } catch (e) {
      throw toUringdbError(e)
    } finally {
      own?.release()
    }
    const out: Array<Buffer | string | undefined> = new Array(bufs.length)
    let off = 0
    for (let i = 0; i < bufs.length; i++) {
      const n = b.lens[i * 2 + 1]
      if (n < 0) out[i] = undefined
      else {
        const v = b.data.subarray(off, off + n)
        out[i] = enc === 'utf8' ? v.toString('utf8') : v
        off += n
      }
    }
    return out
  }

  /**
   * Reads `key` synchronously, on the calling thread (for hot keys: no promise, no thread
   * hop). With `target`, copies the value into it and returns the value's length (-1 if
   * absent; a length above `target.length` means only a prefix was copied).
   */
  getSync(key: Bytes, options?: GetOptions<'buffer'>): Buffer | undefined
  getSync(key: Bytes, options: GetOptions<'utf8'>): string | undefined
  getSync(key: Bytes, options: { target: Uint8Array; snapshot?: Snapshot }): number
  getSync(key: Bytes, options?: GetOptions<Encoding> & { target?: Uint8Array }): Buffer | string | number | undefined {
    if (this.#closing) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed')
    checkOptions('options', options)
    const k = typeof key === 'string' || key instanceof Uint8Array ? key : keyBytes('key', key)
    const kb = typeof k === 'string' ? keyBytes('key', k) : k
    if (kb.byteLength > KEY_BYTES_MAX) keyBytes('key', kb)
    try {
      const target = options?.target
      if (target !== undefined) {
        if (!(target instanceof Uint8Array)) throw invalidArgument(`options.target must be a Uint8Array, got ${describe(target)}`)
        return this.#native.getSyncInto(kb, target, checkSnapshot(options?.snapshot))
      }
      const enc = checkEncoding('options.encoding', options?.encoding)
      const snap = checkSnapshot(options?.snapshot)
      // Values that fit the scratch buffer are copied into it by the engine and out of it
      // here (cheaper than handing a new native buffer to JavaScript); larger ones cross
      // as their own buffer.
      const scratch = (this.#scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES))
      const n = this.#native.getSyncInto(kb, scratch, snap)
      if (n < 0) return undefined
      if (n <= SCRATCH_BYTES) {
        return enc === 'utf8' ? scratch.toString('utf8', 0, n) : Buffer.from(scratch.subarray(0, n))
      }
      const v = this.#native.getSync(kb, snap)
      if (v === null) return undefined
      return enc === 'utf8' ? v.toString('utf8') : v
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /** Takes a snapshot of the current state (release it when done). */
  snapshot(): Snapshot {
    if (this.#closing) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed')
    try {
      return new Snapshot(this.#native.snapshot())
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /** An iterator over `[key, value]` entries of a range, at a consistent snapshot. */
  iterator(options?: IteratorOptions & { keyEncoding?: 'buffer'; valueEncoding?: 'buffer' }): DbIterator<Buffer, Buffer>
  iterator(options: IteratorOptions): DbIterator<Buffer | string, Buffer | string>
  iterator(options: IteratorOptions = {}): DbIterator<Buffer | string, Buffer | string> {
    return this.#iterator(options, true, true) as DbIterator<Buffer | string, Buffer | string>
  }

  /** The keys of a range (entries' values are not copied out). */
  keys(options: IteratorOptions = {}): AsyncIterableIterator<Buffer | string> & { close(): Promise<void> } {
    return project(this.#iterator(options, true, false), 0)
  }

  /** The values of a range. */
  values(options: IteratorOptions = {}): AsyncIterableIterator<Buffer | string> & { close(): Promise<void> } {
    return project(this.#iterator(options, false, true), 1)
  }

  /** @internal The raw iterator with its key/value selection (for the level adapter). */
  _iterator(options: IteratorOptions, keys: boolean, values: boolean): DbIterator<unknown, unknown> {
    return this.#iterator(options, keys, values)
  }

  #iterator(options: IteratorOptions, keys: boolean, values: boolean): DbIterator<unknown, unknown> {
    if (this.#closing) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed')
    checkOptions('options', options)
    const o = options ?? {}
    // As in abstract-level, `gte` wins over `gt` and `lte` over `lt` when both are given.
    const lower = o.gte !== undefined ? [keyBytes('gte', o.gte), true] as const : o.gt !== undefined ? [keyBytes('gt', o.gt), false] as const : undefined
    const upper = o.lte !== undefined ? [keyBytes('lte', o.lte), true] as const : o.lt !== undefined ? [keyBytes('lt', o.lt), false] as const : undefined
    let limit = -1
    if (o.limit !== undefined && o.limit !== null && o.limit !== Infinity && o.limit !== -1) {
      if (typeof o.limit !== 'number' || !Number.isInteger(o.limit) || o.limit < 0) {
        throw invalidArgument(`limit must be a non-negative integer, -1 or Infinity, got ${String(o.limit)}`)
      }
      limit = o.limit
    }
    if (o.reverse !== undefined && typeof o.reverse !== 'boolean') throw invalidArgument(`reverse must be a boolean, got ${describe(o.reverse)}`)
    if (o.snapshot !== undefined && !(o.snapshot instanceof Snapshot)) throw invalidArgument('snapshot must come from db.snapshot()')
    const keyEnc = checkEncoding('keyEncoding', o.keyEncoding)
    const valueEnc = checkEncoding('valueEncoding', o.valueEncoding)
    let n: native.NativeIterator
    try {
      n = this.#native.iterator(
        lower?.[0] ?? null,
        lower?.[1] ?? false,
        upper?.[0] ?? null,
        upper?.[1] ?? false,
        o.reverse === true,
        limit,
        values,
        o.snapshot?._native ?? null,
      )
    } catch (e) {
      throw toUringdbError(e)
    }
    const it = new DbIterator<unknown, unknown>(this, n, keyEnc, valueEnc, keys, values)
    this.#iterators.add(it)
    return it
  }

  /**
   * Deletes every key in a range (all keys by default), as of a snapshot taken when `clear`
   * is called (keys written later are kept). A range whose deletions fit in one write
   * (`maxBatchBytes`: 1 byte, plus 5 bytes and the key per key) is deleted by one atomic
   * write, also across a crash. A larger range is deleted by consecutive writes of up to
   * `maxBatchBytes`, each atomic, in iteration order, each started after the previous one
   * resolved: if `clear` fails or the process crashes, the deleted keys are a prefix of the
   * range in iteration order (a suffix with `reverse`).
   */
  async clear(options: ClearOptions = {}): Promise<void> {
    checkOptions('options', options)
    const { sync, ...range } = options
    checkSync({ sync }, this.#sync)
    const it = this.#iterator(range, true, false)
    try {
      // The whole range goes into one write while it fits, so that a small clear is atomic;
      // beyond that a write is issued whenever the next key would not fit (bounded memory:
      // one write's worth of keys).
      let e = new BatchEncoder(4096)
      for (;;) {
        const chunk = await it.nextv(1000)
        for (const [k] of chunk) {
          const key = k as Buffer
          if (e.count > 0 && e.len + 5 + key.length > this.#maxBatchBytes) {
            await this._write(e.bytes(), { sync })
            e = new BatchEncoder(4096)
          }
          e.del(key)
        }
        if (chunk.length === 0) break
      }
      if (e.count > 0) await this._write(e.bytes(), { sync })
    } finally {
      await it.close()
    }
  }

  /** Writes the memtable to a table; resolves when everything written before is in tables. */
  async flush(): Promise<void> {
    if (this.#closing) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed')
    try {
      await this.#native.flush()
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /**
   * Flushes, then compacts every table overlapping the range into the bottom level,
   * dropping overwritten versions and deletions no snapshot needs.
   */
  async compactRange(range: { gte?: Bytes; lte?: Bytes } = {}): Promise<void> {
    if (this.#closing) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed')
    checkOptions('range', range)
    const lo = range.gte === undefined ? null : keyBytes('gte', range.gte)
    const hi = range.lte === undefined ? null : keyBytes('lte', range.lte)
    try {
      await this.#native.compactRange(lo, hi)
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /** Statistics (see {@link DbStats}). */
  stats(): DbStats {
    if (this.#closing) throw new UringdbError('ERR_URINGDB_CLOSED', 'the database is closed')
    try {
      return JSON.parse(this.#native.statsJson()) as DbStats
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /**
   * Closes this handle: new calls reject with `ERR_URINGDB_CLOSED`, writes already made
   * complete, open iterators are closed. The engine closes with the last handle in the
   * process. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed
    this.#closing = true
    this.#flushStaged()
    this.#flushGets()
    this.#closed = (async () => {
      for (const it of [...this.#iterators]) await it._abort()
      if (this.#resolves.length > this.#head) {
        await new Promise<void>((resolve) => {
          this.#idle = resolve
        })
      }
      try {
        await this.#native.close()
      } catch (e) {
        throw toUringdbError(e)
      }
    })()
    return this.#closed
  }

  /** Same as {@link Db.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}

function noop(): void {}

function project(it: DbIterator<unknown, unknown>, i: 0 | 1): AsyncIterableIterator<Buffer | string> & { close(): Promise<void> } {
  return {
    async next(): Promise<IteratorResult<Buffer | string>> {
      const r = await it.next()
      return r.done === true ? { done: true, value: undefined } : { done: false, value: r.value[i] as Buffer | string }
    },
    async return(): Promise<IteratorResult<Buffer | string>> {
      await it.close()
      return { done: true, value: undefined }
    },
    close: () => it.close(),
    [Symbol.asyncIterator]() {
      return this
    },
  }
}

function onDbEvent(dir: string, kind: string, json: string): void {
  const ch = (dbChannels as Record<string, ReturnType<typeof channel>>)[kind]
  if (ch === undefined || !ch.hasSubscribers) return
  try {
    ch.publish({ dir, ...(JSON.parse(json) as object) })
  } catch {
    // An event that does not parse is dropped, never thrown into the engine's callback.
  }
}

/**
 * Opens the key-value database in `dir` (created if missing), running crash recovery:
 * the log is replayed above what the tables hold. Opening the same directory again in
 * this process — from the main thread or a worker thread — shares one engine.
 *
 * @throws {@link UringdbError} `ERR_URINGDB_INVALID_OPTION` (with `field`),
 * `ERR_URINGDB_LOCKED`, `ERR_URINGDB_CORRUPTION` (with `file` and `offset`),
 * `ERR_URINGDB_IO_URING_UNAVAILABLE`, or an OS error code.
 */
export async function open(dir: string, options: DbOptions = {}): Promise<Db> {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw invalidArgument(`dir must be a non-empty string, got ${describe(dir)}`)
  }
  const o = parseOptions(DbOptionsSchema, options)
  let db: Db | undefined
  const onComplete = (seqs: Float64Array | null, failed: number, errorJson: string | null): void => {
    db?._complete(seqs, failed, errorJson)
  }
  let handle: native.NativeDb
  try {
    handle = await native.openDb(
      dir,
      {
        log: {
          ioBackend: o.ioBackend,
          segmentBytes: o.segmentBytes,
          ringBytes: o.ringBytes,
          maxRecordBytes: 0,
          commitDelayUs: o.commitDelayUs,
          recovery: o.recovery,
        },
        memtableBytes: o.memtableBytes,
        maxImmutableMemtables: o.maxImmutableMemtables,
        l0CompactionTrigger: o.l0CompactionTrigger,
        l0SlowdownTrigger: o.l0SlowdownTrigger,
        l0StopTrigger: o.l0StopTrigger,
        levelBaseBytes: o.levelBaseBytes,
        levelMultiplier: o.levelMultiplier,
        targetFileBytes: o.targetFileBytes,
        compression: typeof o.compression === 'string' ? [o.compression] : o.compression,
        bloomBitsPerKey: o.bloomBitsPerKey,
        blockBytes: o.blockBytes,
        cacheBytes: o.cacheBytes,
        compactionThreads: o.compactionThreads,
        compactionRateBytesPerSec: o.compactionRateBytesPerSec,
        maxOpenFiles: o.maxOpenFiles,
      },
      onComplete,
      (kind: string, json: string) => onDbEvent(dir, kind, json),
    )
  } catch (e) {
    throw toUringdbError(e)
  }
  const recovery = { dir, ...(JSON.parse(handle.recoveryJson) as Omit<DbRecovery, 'dir'>) }
  db = new Db(handle, dir, o.sync, recovery)
  if (dbChannels.recovery.hasSubscribers) dbChannels.recovery.publish(recovery)
  return db
}
