/**
 * The key-value database: {@link Db} and {@link open}.
 *
 * @module
 */
import './polyfill.js'
import * as native from '../binding.js'
import { UringdbError, AbortError, toUringdbError, invalidArgument, closedError } from './errors.js'
import { CompletionQueue, closeHandle } from './pending.js'
import { ReadGate, GetStager } from './reads.js'
import { DbWrites } from './db-writes.js'
import { checkDir, describe, checkOptions, KEY_BYTES_MAX, keyBytes, checkEncoding, checkSync, checkSignal } from './args.js'
import {
  DbOptionsSchema,
  parseOptions,
  nativeDbOptions,
  type DbOptions,
  type Bytes,
  type Encoding,
  type WriteOptions,
  type GetOptions,
  type BatchOperation,
  type IteratorOptions,
  type RangeSyncOptions,
  type ClearOptions,
} from './options.js'
import { dbChannels, onDbEvent, type DbRecovery, type DbStats } from './diagnostics.js'
import { BatchEncoder, ChainedBatch, encodeOperations, txidBytes } from './batch.js'
import { runTransaction, type Transaction, type TransactionOptions } from './transaction.js'
import { Snapshot, checkSnapshot } from './snapshot.js'
import { DbIterator, openIterator, project } from './iterator.js'
import { type RangeSync, type RangeItem, openRangeSync } from './range.js'
import { Stream } from './stream.js'

// Multi-gets (a tick's gets, or one getMany call) of one handle in the engine's reader
// queue at once; more wait in the handle, in call order, as pending promises (reading the
// state as of their call). Keeps one handle far below the process-wide READER_QUEUE_JOBS_MAX.
const DB_READS_IN_FLIGHT_MAX = 16

const SCRATCH_BYTES = 16 * 1024

// Two-phase commit records (batch.rs).
const PREPARE_TAG = 0xb2
const COMMIT_TAG = 0xb3
const ROLLBACK_TAG = 0xb4
export { TXID_BYTES_MAX } from './batch.js'

/** One operation of a {@link PreparedTransaction} (keys and values as Buffers). */
export type PreparedOperation =
  | { type: 'put'; key: Buffer; value: Buffer }
  | { type: 'del'; key: Buffer }
  /** An append; its seq is assigned when the commit is applied. */
  | { type: 'append'; stream: string; value: Buffer }

/** A prepared transaction, as {@link Db.preparedTransactions} lists it. */
export interface PreparedTransaction {
  /** The txid given to {@link Db.prepare}. */
  txid: string
  /** When it was prepared, in ms since the epoch (the preparing process's clock). */
  preparedAt: number
  /** Its operations, in order. */
  ops: PreparedOperation[]
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
  // Pending writes in completion order.
  readonly #queue = new CompletionQueue()
  #closing = false
  #closed: Promise<void> | undefined
  readonly #iterators = new Set<{ _abort(): Promise<void> }>()
  readonly #ranges = new Set<RangeSync<unknown>>()
  readonly #recovery: DbRecovery
  // Staged, waiting and parked writes on their way to the engine.
  readonly #writes: DbWrites
  #scratch: Buffer | undefined
  // Multi-gets in the reader queue, and those waiting for a place (see DB_READS_IN_FLIGHT_MAX).
  readonly #reads = new ReadGate(DB_READS_IN_FLIGHT_MAX)
  // Gets staged in this tick.
  readonly #gets: GetStager

  /** @internal */
  constructor(handle: native.NativeDb, dir: string, sync: boolean, recovery: DbRecovery, maxPendingBytes: number) {
    this.#writes = new DbWrites(handle, this.#queue, sync, maxPendingBytes, () => this.#closing)
    this.#native = handle
    this.#dir = dir
    this.#sync = sync
    this.#maxBatchBytes = handle.maxBatchBytes
    this.#recovery = recovery
    this.#gets = new GetStager(handle, this.#reads)
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
    return this.#closing ? closedError('database') : invalidArgument(message)
  }

  /** @internal Bytes of the writes this handle holds that have not completed (tests). */
  get _pendingBytes(): number {
    return this.#queue.pendingBytes
  }

  /** @internal Writes waiting for room under maxPendingBytes (tests). */
  get _waitingWrites(): number {
    return this.#writes.waiting
  }

  /** @internal */
  _forget(it: object): void {
    this.#iterators.delete(it as { _abort(): Promise<void> })
    this.#ranges.delete(it as RangeSync<unknown>)
  }

  /**
   * @internal Receives completions from the engine (one call per commit group), or, with
   * no outcome, word that parked writes may be retried.
   */
  _complete(seqs: Float64Array | null, failed: number, error: native.NativeError | null): void {
    this.#writes.complete(seqs, failed, error)
  }

  /** @internal Logs one encoded batch (a chained batch's); resolves with its sequence number. */
  _write(payload: Buffer, options: WriteOptions | undefined): Promise<number> {
    return this.#writes.write(payload, options)
  }

  /**
   * Sets `key` to `value`. Resolves (with the write's sequence number) once it is durable.
   * Never blocks: when `maxPendingBytes`, the commit queue or a write stall's bounded queue
   * is full, the write waits, in order, as a pending promise — so do not modify a Buffer key
   * or value until the promise settles (a waiting write reads it when it is handed over).
   * `options.signal` cancels the write while it waits or is staged (see {@link WriteOptions}).
   */
  put(key: Bytes, value: Bytes, options?: WriteOptions): Promise<void> {
    return this.#writes.single(1, key, value, options) as Promise<unknown> as Promise<void>
  }

  /** Deletes `key` (not an error if it is absent). */
  del(key: Bytes, options?: WriteOptions): Promise<void> {
    return this.#writes.single(0, key, undefined, options) as Promise<unknown> as Promise<void>
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
        const signal = checkSignal(options)
        if (this.#closing) throw closedError('database')
        if (signal?.aborted === true) throw new AbortError(signal.reason)
        return Promise.resolve()
      }
      return this.#writes.write(encodeOperations(operations).bytes(), options) as Promise<unknown> as Promise<void>
    } catch (err) {
      return Promise.reject(toUringdbError(err))
    }
  }

  /**
   * Prepares `operations` as the transaction `txid` (the first phase of a two-phase commit).
   * Resolves once the prepare is durable (one log record holding the txid and the
   * operations). Prepared writes are invisible to reads until {@link Db.commitPrepared}.
   *
   * From the call on, the transaction locks its keys: a `put`, `del`, `batch` or `prepare`
   * (from any handle) that writes one of them rejects at once with `ERR_URINGDB_CONFLICT`,
   * naming the txid (`error.txid`), until the commit or rollback is applied. A write called
   * before the prepare is ordered before it. Prepared transactions survive restarts
   * ({@link Db.preparedTransactions}); the oldest one pins the log (see `stats()`'s
   * `oldestPreparedAgeMs`), so finish every prepare.
   *
   * Rejects with `ERR_URINGDB_TXN_EXISTS` if `txid` is already prepared, and with
   * `ERR_URINGDB_INVALID_ARGUMENT` naming the field for a `txid` that is not a string of
   * 1..256 bytes of UTF-8 or an empty or malformed `operations` list;
   * `ERR_URINGDB_RECORD_TOO_LARGE` if the record exceeds the largest batch.
   */
  prepare(txid: string, operations: readonly BatchOperation[], options?: WriteOptions): Promise<void> {
    try {
      if (this.#closing) throw closedError('database')
      const t = txidBytes(txid)
      if (!Array.isArray(operations)) throw invalidArgument(`operations must be an array, got ${describe(operations)}`)
      if (operations.length === 0) throw invalidArgument('operations must hold at least one operation')
      const ops = encodeOperations(operations).bytes().subarray(1)
      const payload = Buffer.allocUnsafe(11 + t.length + ops.length)
      payload[0] = PREPARE_TAG
      payload.writeBigUInt64LE(BigInt(Date.now()), 1)
      payload.writeUInt16LE(t.length, 9)
      t.copy(payload, 11)
      ops.copy(payload, 11 + t.length)
      if (payload.length > this.#maxBatchBytes) {
        throw new UringdbError('ERR_URINGDB_RECORD_TOO_LARGE', `a prepare of ${payload.length} bytes exceeds the limit of ${this.#maxBatchBytes} bytes`)
      }
      this.#native.reservePrepare(payload)
      return this.#writes.write(payload, options).then(
        () => undefined,
        (err: unknown) => {
          this.#undo(() => this.#native.abandonPrepare(txid))
          throw err
        },
      )
    } catch (err) {
      return Promise.reject(toUringdbError(err))
    }
  }

  /**
   * Commits the prepared transaction `txid`: resolves once the commit record (the txid
   * only) is durable; its operations then become visible atomically, at the commit record's
   * sequence number, and its keys are released. Rejects with `ERR_URINGDB_TXN_NOT_FOUND` if
   * `txid` is not prepared (call it after `prepare` resolved).
   */
  commitPrepared(txid: string, options?: WriteOptions): Promise<void> {
    return this.#finish(txid, true, options)
  }

  /**
   * Rolls back the prepared transaction `txid`: resolves once the rollback record is
   * durable; its operations are dropped and its keys released. Rejects with
   * `ERR_URINGDB_TXN_NOT_FOUND` if `txid` is not prepared.
   */
  rollbackPrepared(txid: string, options?: WriteOptions): Promise<void> {
    return this.#finish(txid, false, options)
  }

  /**
   * Runs `fn` as an optimistic transaction and resolves with its result once the commit is
   * durable. `fn(tx)` reads at a snapshot (`tx.get`, `tx.getMany`, `tx.iterator`, which see
   * its own writes) and buffers writes (`tx.put`, `tx.del`). Its commit is one log record,
   * validated when applied: if a key it read, or a key in a range it iterated, was written
   * by a commit after its snapshot, nothing is applied and `fn` runs again on a fresh
   * snapshot (`options.retries` times, after jittered backoff), then the promise rejects
   * with `ERR_URINGDB_CONFLICT` (`error.conflict` `'read-set'`, `error.key`). A write of a
   * key a prepared transaction holds rejects at once (`'prepared-lock'`). If `fn` throws,
   * nothing is written and the promise rejects with its error.
   */
  transaction<T>(fn: (tx: Transaction) => T | Promise<T>, options?: TransactionOptions): Promise<T> {
    if (this.#closing) return Promise.reject(closedError('database'))
    return runTransaction<T>(this, this.#native, fn, options, this.#sync)
  }

  /**
   * The prepared transactions (durable, not yet committed or rolled back), oldest first:
   * after a restart, the ones a coordinator must still finish.
   */
  preparedTransactions(): PreparedTransaction[] {
    if (this.#closing) throw closedError('database')
    try {
      return this.#native.preparedTransactions().map((t) => ({
        txid: t.txid,
        preparedAt: t.preparedAt,
        ops: t.keys.map((key, i): PreparedOperation => {
          const value = t.values[i]
          const stream = t.streams[i]
          if (typeof stream === 'string') return { type: 'append', stream, value: value ?? Buffer.alloc(0) }
          return value === null || value === undefined ? { type: 'del', key } : { type: 'put', key, value }
        }),
      }))
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  #finish(txid: string, commit: boolean, options: WriteOptions | undefined): Promise<void> {
    try {
      if (this.#closing) throw closedError('database')
      const t = txidBytes(txid)
      this.#native.beginFinish(txid)
      const payload = Buffer.allocUnsafe(3 + t.length)
      payload[0] = commit ? COMMIT_TAG : ROLLBACK_TAG
      payload.writeUInt16LE(t.length, 1)
      t.copy(payload, 3)
      return this.#writes.write(payload, options).then(
        () => undefined,
        (err: unknown) => {
          this.#undo(() => this.#native.abandonFinish(txid))
          throw err
        },
      )
    } catch (err) {
      return Promise.reject(toUringdbError(err))
    }
  }

  // Undoes a reservation after its record failed to reach the log (nothing to undo once closed).
  #undo(f: () => void): void {
    try {
      f()
    } catch {
      // Closed: the table is gone with the handle.
    }
  }

  /**
   * Reads the value of `key` (`undefined` if absent), off the JavaScript thread. The gets
   * of one tick cross to the engine together.
   */
  get(key: Bytes, options?: GetOptions<'buffer'>): Promise<Buffer | undefined>
  get(key: Bytes, options: GetOptions<'utf8'>): Promise<string | undefined>
  get(key: Bytes, options?: GetOptions<Encoding>): Promise<Buffer | string | undefined> {
    try {
      if (this.#closing) throw closedError('database')
      checkOptions('options', options)
      const enc = checkEncoding('options.encoding', options?.encoding)
      const k = keyBytes('key', key)
      const snap = options?.snapshot
      checkSnapshot(snap)
      if (snap !== undefined && snap !== null) {
        return this.getMany([k], { snapshot: snap, encoding: enc } as GetOptions<'buffer'>).then((v) => v[0])
      }
      const p = this.#gets.add(k)
      return enc === 'utf8' ? p.then((b) => b?.toString('utf8')) : p
    } catch (err) {
      return Promise.reject(toUringdbError(err))
    }
  }

  /** Reads several keys at one consistent state; `undefined` for absent ones. */
  getMany(keys: readonly Bytes[], options?: GetOptions<'buffer'>): Promise<Array<Buffer | undefined>>
  getMany(keys: readonly Bytes[], options: GetOptions<'utf8'>): Promise<Array<string | undefined>>
  async getMany(keys: readonly Bytes[], options?: GetOptions<Encoding>): Promise<Array<Buffer | string | undefined>> {
    if (this.#closing) throw closedError('database')
    checkOptions('options', options)
    if (!Array.isArray(keys)) throw invalidArgument(`keys must be an array, got ${describe(keys)}`)
    const enc = checkEncoding('options.encoding', options?.encoding)
    const bufs = keys.map((k, i) => keyBytes(`keys[${i}]`, k))
    const lens = new Uint32Array(bufs.length)
    for (let i = 0; i < bufs.length; i++) lens[i] = bufs[i].length
    const given = checkSnapshot(options?.snapshot)
    // A call that must wait for a place still reads the state as of now (or its snapshot,
    // even if the caller releases it meanwhile).
    const own = this.#reads.full ? (given === null ? this.#native.snapshot() : given.dup()) : null
    const data = Buffer.concat(bufs)
    let b: native.NativeBatch
    try {
      b = await this.#reads.run(() => this.#native.getMany(data, lens, own ?? given))
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
    if (this.#closing) throw closedError('database')
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
    if (this.#closing) throw closedError('database')
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

  /**
   * A synchronous scan of a range at a consistent snapshot: iterate it with `for … of`
   * (see {@link RangeSync}). Each step yields `[key, value]`, the key alone with
   * `values: false`, or the value alone with `keys: false`. The range options are those of
   * {@link Db.iterator}; `views: true` yields Buffers that are valid only until the next
   * step (no buffer allocated per batch).
   *
   * For hot scans (the engine is read on the calling thread, a batch of up to 4096 entries
   * per crossing, no promise); {@link Db.iterator} reads off the JS thread.
   *
   * @example
   * ```ts
   * for (const key of db.rangeSync({ gte: 'a', lt: 'b', values: false })) console.log(key)
   * ```
   * @throws {@link UringdbError} `ERR_URINGDB_INVALID_ARGUMENT` naming the bad option,
   * `ERR_URINGDB_CLOSED`.
   */
  rangeSync<const O extends RangeSyncOptions = Record<never, never>>(options?: O): RangeSync<RangeItem<O>> {
    if (this.#closing) throw closedError('database')
    const r = openRangeSync(this.#native, this, options)
    this.#ranges.add(r)
    return r as RangeSync<RangeItem<O>>
  }

  /**
   * The stream `name` of this database: its `firstSeq` and `lastSeq`, and `read()` of its
   * entries. Entries are appended by `batch` operations `{ type: 'append', stream, value }`.
   * Throws `ERR_URINGDB_INVALID_ARGUMENT` naming `stream` for a name that is not 1..128
   * ASCII letters, digits and `. _ : / -` starting with a letter or digit.
   */
  stream(name: string): Stream {
    if (this.#closing) throw closedError('database')
    return new Stream(this.#native, this, name)
  }

  /** @internal Tracks a stream reader, closed with the database. */
  _track(it: { _abort(): Promise<void> }): void {
    this.#iterators.add(it)
  }

  /** @internal The raw iterator with its key/value selection (for the level adapter). */
  _iterator(options: IteratorOptions, keys: boolean, values: boolean): DbIterator<unknown, unknown> {
    return this.#iterator(options, keys, values)
  }

  #iterator(options: IteratorOptions, keys: boolean, values: boolean): DbIterator<unknown, unknown> {
    if (this.#closing) throw closedError('database')
    const it = openIterator(this.#native, this, options, keys, values)
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
            await this.#writes.write(e.bytes(), { sync })
            e = new BatchEncoder(4096)
          }
          e.del(key)
        }
        if (chunk.length === 0) break
      }
      if (e.count > 0) await this.#writes.write(e.bytes(), { sync })
    } finally {
      await it.close()
    }
  }

  /** Writes the memtable to a table; resolves when everything written before is in tables. */
  async flush(): Promise<void> {
    if (this.#closing) throw closedError('database')
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
    if (this.#closing) throw closedError('database')
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
    if (this.#closing) throw closedError('database')
    try {
      return this.#native.stats()
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
    // Synchronous ranges end now: a step after this throws ERR_URINGDB_CLOSED.
    for (const r of [...this.#ranges]) r._abort()
    this.#writes.flushStaged()
    this.#gets.flush()
    this.#closed = closeHandle(this.#queue, this.#native, this.#iterators)
    return this.#closed
  }

  /** Same as {@link Db.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
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
  checkDir(dir)
  const o = parseOptions(DbOptionsSchema, options)
  let db: Db | undefined
  const onComplete = (seqs: Float64Array | null, failed: number, error: native.NativeError | null): void => {
    db?._complete(seqs, failed, error)
  }
  let handle: native.NativeDb
  try {
    handle = await native.openDb(dir, nativeDbOptions(o), onComplete, (event) => onDbEvent(dir, event))
  } catch (e) {
    throw toUringdbError(e)
  }
  const recovery: DbRecovery = { dir, ...handle.recovery }
  db = new Db(handle, dir, o.sync, recovery, o.maxPendingBytes)
  if (dbChannels.recovery.hasSubscribers) dbChannels.recovery.publish(recovery)
  return db
}
