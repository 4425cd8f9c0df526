/**
 * The durable append-only log: {@link Log} and {@link openLog}.
 *
 * @module
 */
import './polyfill.js'
import * as native from '../binding.js'
import { UringdbError, toUringdbError, invalidArgument, closedError, nativeDetail } from './errors.js'
import { describe, isWellFormed, checkWellFormed, checkSeq, checkOptions, checkBatchSize } from './args.js'
import { MiB, LogOptionsSchema, parseOptions, type LogOptions, type AppendOptions, type ReadOptions, type TailOptions } from './options.js'
import { commitChannel, recoveryChannel, type CommitEvent, type LogStats, type RecoveryEvent } from './diagnostics.js'

/** A record read from the log. */
export interface LogRecord {
  /** Its sequence number. */
  seq: number
  /** Its bytes (a view into a buffer shared by the records of one read batch). */
  data: Buffer
}

/** What can be appended: bytes (copied as they are) or a string (encoded as UTF-8). */
export type RecordInput = Buffer | Uint8Array | string


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
