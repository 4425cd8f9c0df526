/**
 * The durable append-only log: {@link Log} and {@link openLog}.
 *
 * @module
 */
import './polyfill.js'
import * as native from '../binding.js'
import { UringdbError, toUringdbError, invalidArgument, closedError, acceptedBefore } from './errors.js'
import { TickStager } from './stager.js'
import { ParkedQueue, WriteGate } from './parked.js'
import { CompletionQueue, bytesIn, closeHandle, without, type Tokens } from './pending.js'
import { checkDir, describe, isWellFormed, checkWellFormed, checkSeq, checkOptions, checkBatchSize, checkSignal } from './args.js'
import { LogOptionsSchema, parseOptions, nativeLogOptions, type LogOptions, type AppendOptions, type ReadOptions, type TailOptions } from './options.js'
import { readRange, tailFrom, type LogRecord } from './log-read.js'
import { commitChannel, recoveryChannel, type CommitEvent, type LogStats, type RecoveryEvent } from './diagnostics.js'

/** What can be appended: bytes (copied as they are) or a string (encoded as UTF-8). */
export type RecordInput = Buffer | Uint8Array | string


// Appends made in one tick are staged here and handed to the engine in one crossing at the
// end of the tick (see Log.append). Bounds on one staging run:
const STAGE_BYTES = 256 * 1024
// A run is handed over early when it reaches STAGE_RECORDS appends, so that the committer
// starts writing while the rest of a large tick is still being appended (measured at 1024
// in flight: p99 3.4-4.5 ms with 256 against 4.5-11 ms with one hand-over per tick).
const STAGE_RECORDS = 256
// Records larger than this skip staging and cross on their own (copied once, by the engine).
const STAGE_RECORD_MAX = 16 * 1024

// An operation parked while the engine is full (see ParkedQueue): the refused tail of a
// staging run (bytes), one record not yet copied, one appendMany, or one sync. Each word of
// a run's `entries` is one append call, `count << 1 | sync`.
// Tokens identify appends an AbortSignal may cancel (see WriteGate).
type ParkedLogOp =
  | { kind: 'run'; data: Buffer; lens: Uint32Array; entries: Uint32Array; tokens: Tokens }
  | { kind: 'rec'; record: Uint8Array | string; len: number; sync: boolean; token: object | undefined }
  | { kind: 'many'; bufs: Uint8Array[]; sync: boolean; token: object | undefined }
  | { kind: 'sync' }
type ParkedRecord = Extract<ParkedLogOp, { kind: 'rec' }>
type ParkedRun = Extract<ParkedLogOp, { kind: 'run' }>

/** Records in the first `k` packed entries (each word is `count << 1 | sync`). */
function recordsIn(entries: Uint32Array, k: number): number {
  let n = 0
  for (let i = 0; i < k; i++) n += entries[i] >>> 1
  return n
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
  // Pending operations in completion order; appendMany of n records is one entry of count n.
  readonly #queue = new CompletionQueue()
  #closing = false
  #closed: Promise<void> | undefined
  #nextToken = 1
  readonly #maxRecordBytes: number
  // The staging run of this tick: bytes, record lengths, and one word per append call.
  readonly #stage = new TickStager(STAGE_BYTES, new Uint32Array(STAGE_RECORDS), () => this.#flushStaged())
  // Operations waiting for room in the engine, in call order; they are the newest
  // operations of the queue above.
  readonly #parked = new ParkedQueue<ParkedLogOp>(this.#queue)
  // The bound on pending bytes (maxPendingBytes), and cancellation before the ring.
  readonly #gate: WriteGate

  #flushStaged(): void {
    const run = this.#stage.take()
    if (run === undefined) return
    const { data, lens, words: entries, tokens } = run
    const n = entries.length
    try {
      const taken = this.#native.appendPacked(data, lens, entries)
      // Nothing is staged while anything is parked, so the refused tail goes last.
      if (taken < n) this.#parkRun(data, lens, entries, tokens, taken)
    } catch (e) {
      // The staged calls are the newest n operations in the queue; those the engine did
      // not accept are rejected (they were not written).
      this.#queue.rejectNewest(n - acceptedBefore(e), toUringdbError(e))
    }
  }

  /**
   * Parks the entries of a staged run from `taken` on. Their bytes stay in the staging
   * buffer, which nothing else writes while anything is parked (only #packParked reuses it,
   * once this run is taken); the lengths are copied (their arrays are reused).
   */
  #parkRun(data: Buffer, lens: Uint32Array, entries: Uint32Array, tokens: Tokens, taken: number): void {
    const r = recordsIn(entries, taken)
    this.#parked.push(
      {
        kind: 'run',
        data: data.subarray(bytesIn(lens, r)),
        lens: lens.slice(r),
        entries: entries.slice(taken),
        tokens: tokens?.slice(taken),
      },
      entries.length - taken,
    )
  }

  /**
   * Hands parked operations to the engine in order (see ParkedQueue.pump). Consecutive
   * parked records are packed into one run (one crossing).
   */
  #pump(): void {
    this.#parked.pump((head) => {
      const op = head.kind === 'rec' ? this.#packParked() : head
      if (op.kind === 'run') {
        let taken: number
        try {
          taken = this.#native.appendPacked(op.data, op.lens, op.entries)
        } catch (e) {
          this.#parked.handed(acceptedBefore(e))
          throw e
        }
        this.#parked.handed(taken)
        if (taken === op.entries.length) return true
        const r = recordsIn(op.entries, taken)
        op.data = op.data.subarray(bytesIn(op.lens, r))
        op.lens = op.lens.subarray(r)
        op.entries = op.entries.subarray(taken)
        op.tokens = op.tokens?.slice(taken)
        return false
      }
      const done = op.kind === 'sync' ? this.#native.sync() : this.#native.appendMany(op.bufs, op.sync)
      if (done) this.#parked.handed(1)
      return done
    })
  }

  /** Packs the run of parked records at the head into one parked run (one staging run's worth). */
  #packParked(): ParkedRun {
    return this.#parked.pack(
      (op): op is ParkedRecord => op.kind === 'rec',
      (op) => op.len,
      STAGE_RECORDS,
      STAGE_BYTES,
      (ops, bytes) => {
        const k = ops.length
        // Packed into the staging buffer (idle while anything is parked, and the run before
        // this one was taken whole), so that a long wait does not make a buffer per run.
        const data = bytes <= STAGE_BYTES ? this.#stage.buffer().subarray(0, bytes) : Buffer.allocUnsafe(bytes)
        const lens = new Uint32Array(k)
        const entries = new Uint32Array(k)
        let tokens: Tokens
        let at = 0
        for (let i = 0; i < k; i++) {
          const op = ops[i]
          if (typeof op.record === 'string') data.write(op.record, at, 'utf8')
          else data.set(op.record, at)
          at += op.len
          lens[i] = op.len
          entries[i] = op.sync ? 3 : 2
          if (op.token !== undefined) (tokens ??= new Array<object | undefined>(k))[i] = op.token
        }
        const run: ParkedRun = { kind: 'run', data, lens, entries, tokens }
        return run
      },
    )
  }

  /**
   * Removes the staged or parked append of `token` (an abort): returns how many pending
   * operations come after it, -1 if it is not staged or parked (in the ring, or settled).
   * A staged or parked run holds one record per entry.
   */
  #cancel(token: object): number {
    const staged = this.#stage.cancel(token)
    if (staged >= 0) return staged
    return this.#parked.cancel(
      token,
      (op) => (op.kind === 'run' ? op.entries.length : 1),
      (op, t) => (op.kind === 'run' ? (op.tokens?.indexOf(t) ?? -1) : op.kind !== 'sync' && op.token === t ? 0 : -1),
      (op, j) => {
        const run = op as ParkedRun
        const off = bytesIn(run.lens, j)
        run.data = Buffer.concat([run.data.subarray(0, off), run.data.subarray(off + run.lens[j])])
        run.lens = without(run.lens, j)
        run.entries = without(run.entries, j)
        ;(run.tokens as object[]).splice(j, 1)
      },
    )
  }

  /** @internal Bytes of the appends this handle holds that have not completed (tests). */
  get _pendingBytes(): number {
    return this.#queue.pendingBytes
  }

  /** @internal Operations waiting for room under maxPendingBytes (tests). */
  get _waitingWrites(): number {
    return this.#gate.waiting
  }

  /** @internal */
  constructor(handle: native.NativeLog, dir: string, sync: boolean, maxPendingBytes: number) {
    this.#gate = new WriteGate(this.#queue, maxPendingBytes, (token) => this.#cancel(token))
    this.#native = handle
    this.#dir = dir
    this.#sync = sync
    this.#maxRecordBytes = handle.maxRecordBytes
  }

  /**
   * @internal Receives completions from the engine (one call per commit group), or, with
   * no outcome (null seqs, 0 failed), word that parked operations may be retried.
   */
  _complete(seqs: Float64Array | null, failed: number, error: native.NativeError | null, group: native.NativeCommitGroup | null): void {
    if (seqs === null && failed === 0) {
      this.#pump()
      return
    }
    if (seqs !== null) {
      this.#queue.resolve(seqs)
      if (group !== null && commitChannel.hasSubscribers) {
        const event: CommitEvent = {
          dir: this.#dir,
          ...group,
        }
        commitChannel.publish(event)
      }
    }
    if (failed > 0) this.#queue.fail(failed, error)
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
    if (this.#closing) return Promise.reject(closedError('log'))
    let sync: unknown = this.#sync
    let signal: AbortSignal | undefined
    if (options !== undefined) {
      if (typeof options !== 'object' || options === null) {
        return Promise.reject(invalidArgument(`options must be an object, got ${describe(options)}`))
      }
      sync = options.sync ?? this.#sync
      if (typeof sync !== 'boolean') {
        return Promise.reject(invalidArgument(`options.sync must be a boolean, got ${describe(sync)}`))
      }
      try {
        signal = checkSignal(options)
      } catch (e) {
        return Promise.reject(e)
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
    if (signal === undefined && this.#gate.open(len)) {
      if (len <= STAGE_RECORD_MAX && !this.#parked.any && !this.#stage.full(len)) {
        // The common case, inline: staged into this tick's run.
        const at = this.#stage.reserve(len)
        const stage = this.#stage.buffer()
        if (typeof record === 'string') stage.write(record, at, 'utf8')
        else stage.set(record, at)
        this.#stage.commit(len, sync === true ? 3 : 2) // one record << 1 | sync
        return this.#queue.enqueue<number>(0, len)
      }
      return this.#enterRecord(record, len, sync as boolean, undefined)
    }
    return this.#enterLater(record, len, sync as boolean, signal)
  }

  // Apart from append so that append captures nothing in a closure (V8 would then allocate
  // a context for its variables on every call, also on the fast path).
  #enterLater(record: RecordInput, len: number, sync: boolean, signal: AbortSignal | undefined): Promise<number> {
    return this.#gate.enter(len, signal, (token) => this.#enterRecord(record, len, sync, token))
  }

  /** Stages, hands over or parks one record (it passed the gate). */
  #enterRecord(record: RecordInput, len: number, sync: boolean, token: object | undefined): Promise<number> {
    if (len <= STAGE_RECORD_MAX && !this.#parked.any) {
      // A full run is flushed first. If the engine refused part of it, that tail is parked,
      // its bytes still in the staging buffer: this record must park behind it (below), not
      // be staged over it.
      if (this.#stage.full(len)) this.#flushStaged()
      if (!this.#parked.any) {
        const at = this.#stage.reserve(len)
        const stage = this.#stage.buffer()
        if (typeof record === 'string') stage.write(record, at, 'utf8')
        else stage.set(record, at)
        this.#stage.commit(len, sync ? 3 : 2, token) // one record << 1 | sync
        return this.#queue.enqueue<number>(0, len)
      }
    }
    // Large records cross on their own, after whatever is staged (order is kept); while
    // operations are parked, every record parks behind them (not copied).
    this.#flushStaged()
    if (!this.#parked.any) {
      try {
        const taken = typeof record === 'string' ? this.#native.appendString(record, sync) : this.#native.append(record, sync)
        if (taken) return this.#queue.enqueue<number>(0, len)
      } catch (e) {
        return Promise.reject(toUringdbError(e))
      }
    }
    this.#parked.push({ kind: 'rec', record, len, sync, token })
    return this.#queue.enqueue<number>(0, len)
  }

  /**
   * Appends records atomically — after a crash either all of them are in the log or none
   * is — with contiguous sequence numbers, in one commit group. Resolves with their
   * sequence numbers.
   */
  appendMany(records: readonly RecordInput[], options?: AppendOptions): Promise<number[]> {
    if (this.#closing) return Promise.reject(closedError('log'))
    let bufs: Uint8Array[]
    let sync: boolean
    let signal: AbortSignal | undefined
    let bytes = 0
    try {
      checkOptions('options', options)
      const s = options?.sync ?? this.#sync
      if (typeof s !== 'boolean') throw invalidArgument(`options.sync must be a boolean, got ${describe(s)}`)
      sync = s
      signal = checkSignal(options)
      if (!Array.isArray(records)) throw invalidArgument(`records must be an array, got ${describe(records)}`)
      if (records.length === 0) return Promise.resolve([])
      bufs = new Array(records.length)
      for (let i = 0; i < records.length; i++) {
        const r: unknown = records[i]
        if (typeof r === 'string') {
          checkWellFormed(`records[${i}]`, r)
          bufs[i] = Buffer.from(r, 'utf8')
        }
        else if (r instanceof Uint8Array) bufs[i] = r
        else throw invalidArgument(`records[${i}] must be a Buffer, Uint8Array or string, got ${describe(r)}`)
        bytes += bufs[i].byteLength
      }
    } catch (e) {
      return Promise.reject(toUringdbError(e))
    }
    return this.#gate.enter(bytes, signal, (token) => this.#enterMany(bufs, bytes, sync, token))
  }

  /** Hands over or parks one appendMany (it passed the gate). */
  #enterMany(bufs: Uint8Array[], bytes: number, sync: boolean, token: object | undefined): Promise<number[]> {
    try {
      this.#flushStaged()
      if (this.#parked.any || !this.#native.appendMany(bufs, sync)) this.#parked.push({ kind: 'many', bufs, sync, token })
    } catch (e) {
      return Promise.reject(toUringdbError(e))
    }
    return this.#queue.enqueue<number[]>(bufs.length, bytes)
  }

  /**
   * Makes every record appended so far (by any handle) durable, including earlier
   * `sync: false` appends.
   */
  async sync(): Promise<void> {
    if (this.#closing) throw closedError('log')
    // After the appends waiting for room, if any (they were made before it).
    await this.#gate.enter(0, undefined, () => {
      this.#flushStaged()
      try {
        if (this.#parked.any || !this.#native.sync()) this.#parked.push({ kind: 'sync' })
      } catch (e) {
        return Promise.reject(toUringdbError(e))
      }
      return this.#queue.enqueue<number>(0)
    })
  }

  /**
   * Reads committed records in `[from, to)`, fetching them from the engine in batches.
   * Reading from below {@link Log.firstSeq} rejects with `ERR_URINGDB_TRUNCATED`.
   */
  async *read(options: ReadOptions = {}): AsyncGenerator<LogRecord, void, undefined> {
    if (this.#closing) throw closedError('log')
    checkOptions('options', options)
    const batch = checkBatchSize(options.batchSize)
    const from = options.from === undefined ? 0 : checkSeq('from', options.from)
    const to = options.to === undefined ? this.lastSeq + 1 : checkSeq('to', options.to)
    if (to !== 0 && from !== 0 && to <= from) return
    if (to === 0) return
    yield* readRange(this.#native, from, to, batch)
  }

  /**
   * Reads records from `from` on and then waits for new ones as they become durable, until
   * `signal` aborts or the log is closed (the iteration then ends normally).
   */
  async *tail(options: TailOptions = {}): AsyncGenerator<LogRecord, void, undefined> {
    if (this.#closing) throw closedError('log')
    checkOptions('options', options)
    const batch = checkBatchSize(options.batchSize)
    const signal = options.signal
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw invalidArgument(`options.signal must be an AbortSignal, got ${describe(signal)}`)
    }
    let next = options.from === undefined ? this.lastSeq + 1 : checkSeq('from', options.from)
    if (next === 0) next = 1
    if (signal?.aborted) return
    yield* tailFrom(this.#native, next, batch, signal, this.#nextToken++, () => this.#closing)
  }

  /**
   * Deletes whole segment files all of whose records are below `seq` (the active segment
   * is never deleted, so some records below `seq` may remain). Resolves with the number of
   * segments deleted.
   */
  async truncateBefore(seq: number): Promise<number> {
    if (this.#closing) throw closedError('log')
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
    let s: native.NativeLogStats
    try {
      s = this.#native.stats()
    } catch (e) {
      throw toUringdbError(e)
    }
    const { queueWait, write, fsync, total, ...counters } = s
    return {
      ...counters,
      recordsPerGroup: s.groups === 0 ? 0 : s.appends / s.groups,
      latencyUs: { queueWait, write, fsync, total },
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
    this.#closed = closeHandle(this.#queue, this.#native)
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
  checkDir(dir)
  const o = parseOptions(LogOptionsSchema, options)
  let log: Log | undefined
  const onComplete = (seqs: Float64Array | null, failed: number, error: native.NativeError | null, group: native.NativeCommitGroup | null): void => {
    log?._complete(seqs, failed, error, group)
  }
  let handle: native.NativeLog
  try {
    handle = await native.openLog(dir, nativeLogOptions(o), onComplete)
  } catch (e) {
    throw toUringdbError(e)
  }
  log = new Log(handle, dir, o.sync, o.maxPendingBytes)
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
