/**
 * Optimistic transactions: {@link Db.transaction}'s {@link Transaction} (reads at a
 * snapshot, buffered writes, read-your-writes) and the retry loop. The engine validates
 * the read set when it applies the transaction's record (see the README, "Optimistic
 * transactions"); this module only encodes the record and retries.
 *
 * @module
 */
import type * as native from '../binding.js'
import { UringdbError, toUringdbError, invalidArgument } from './errors.js'
import { describe, checkOptions, keyBytes, valueBytes, checkEncoding, checkSync } from './args.js'
import { BatchEncoder, streamNameBytes } from './batch.js'
import { Snapshot } from './snapshot.js'
import { checkRange, type CheckedRange } from './iterator.js'
import type { Bytes, Encoding, GetOptions, IteratorOptions, WriteOptions } from './options.js'

/** Default of {@link TransactionOptions.retries}. */
export const TRANSACTION_RETRIES_DEFAULT = 5
/** Largest {@link TransactionOptions.retries}. */
export const TRANSACTION_RETRIES_MAX = 1000
// Backoff before retry n (1-based): a random time in [0.5, 1.5) × min(BASE × 2^(n-1), MAX).
const BACKOFF_BASE_MS = 1
const BACKOFF_MAX_MS = 64

const OPTIMISTIC_TAG = 0xb5
const READ_KEY = 0
const READ_RANGE = 1

/** Options of {@link Db.transaction}. */
export interface TransactionOptions {
  /**
   * How many times a conflicting attempt is run again, each with a fresh snapshot, after a
   * jittered exponential backoff (default 5, at most 1000). Then the transaction rejects with
   * `ERR_URINGDB_CONFLICT`.
   */
  retries?: number
  /** Override the database's `sync` default for the commit. */
  sync?: boolean
}

/** Options of {@link Transaction.iterator}: a range, order, limit and encodings. */
export type TransactionIteratorOptions = Omit<IteratorOptions, 'snapshot'>

/** @internal What a transaction reads and writes through (the {@link Db}; an interface so that this module does not import db.ts). */
export interface TransactionOwner {
  getMany(keys: readonly Bytes[], options: GetOptions<'buffer'>): Promise<Array<Buffer | undefined>>
  iterator(options: IteratorOptions & { keyEncoding: 'buffer'; valueEncoding: 'buffer' }): AsyncIterableIterator<[Buffer, Buffer]> & {
    close(): Promise<void>
  }
  _write(payload: Buffer, options: WriteOptions | undefined): Promise<number>
}

type Written = { key: Buffer; value: Buffer | undefined }

function decode(b: Buffer, e: Encoding): Buffer | string {
  return e === 'utf8' ? b.toString('utf8') : b
}

/**
 * One attempt of an optimistic transaction, given to the function passed to
 * {@link Db.transaction}. Reads see the snapshot taken when the attempt started, plus the
 * attempt's own writes; writes are buffered and committed atomically, in one log record,
 * when the function's promise resolves. Do not keep it past the function's end.
 */
export class Transaction {
  readonly #db: TransactionOwner
  readonly #snapshot: Snapshot
  // Own writes by key (latin1 of the bytes: one character per byte).
  readonly #writes = new Map<string, Written>()
  // Own appends, in call order (stream name bytes, value).
  readonly #appends: [Buffer, Buffer][] = []
  readonly #reads: Buffer[] = []
  #readBytes = 0
  #finished = false

  /** @internal */
  constructor(db: TransactionOwner, snapshot: Snapshot) {
    this.#db = db
    this.#snapshot = snapshot
  }

  /** The sequence number this attempt reads at. */
  get snapshotSeq(): number {
    return this.#snapshot.seq
  }

  #live(): void {
    if (this.#finished) throw invalidArgument('the transaction has ended: use it only inside its function')
  }

  #readKey(k: Buffer): void {
    const item = Buffer.allocUnsafe(5 + k.length)
    item[0] = READ_KEY
    item.writeUInt32LE(k.length, 1)
    k.copy(item, 5)
    this.#reads.push(item)
    this.#readBytes += item.length
  }

  #readRange(r: Pick<CheckedRange, 'lower' | 'upper'>): void {
    const lo = r.lower?.[0] ?? Buffer.alloc(0)
    const hi = r.upper?.[0] ?? Buffer.alloc(0)
    const flags = (r.lower === undefined ? 0 : r.lower[1] ? 3 : 1) | (r.upper === undefined ? 0 : r.upper[1] ? 12 : 4)
    const item = Buffer.allocUnsafe(10 + lo.length + hi.length)
    item[0] = READ_RANGE
    item[1] = flags
    item.writeUInt32LE(lo.length, 2)
    lo.copy(item, 6)
    item.writeUInt32LE(hi.length, 6 + lo.length)
    hi.copy(item, 10 + lo.length)
    this.#reads.push(item)
    this.#readBytes += item.length
  }

  /** Reads `key`: this attempt's own write of it, else its value at the snapshot. */
  get(key: Bytes, options?: Omit<GetOptions<'buffer'>, 'snapshot'>): Promise<Buffer | undefined>
  get(key: Bytes, options: Omit<GetOptions<'utf8'>, 'snapshot'>): Promise<string | undefined>
  async get(key: Bytes, options?: Omit<GetOptions<Encoding>, 'snapshot'>): Promise<Buffer | string | undefined> {
    const [v] = await this.getMany([key], options as Omit<GetOptions<'buffer'>, 'snapshot'>)
    return v
  }

  /** Reads several keys (see {@link Transaction.get}), in one crossing for those not written here. */
  getMany(keys: readonly Bytes[], options?: Omit<GetOptions<'buffer'>, 'snapshot'>): Promise<Array<Buffer | undefined>>
  getMany(keys: readonly Bytes[], options: Omit<GetOptions<'utf8'>, 'snapshot'>): Promise<Array<string | undefined>>
  async getMany(keys: readonly Bytes[], options?: Omit<GetOptions<Encoding>, 'snapshot'>): Promise<Array<Buffer | string | undefined>> {
    this.#live()
    checkOptions('options', options)
    if (!Array.isArray(keys)) throw invalidArgument(`keys must be an array, got ${describe(keys)}`)
    const enc = checkEncoding('options.encoding', options?.encoding)
    const out: Array<Buffer | string | undefined> = new Array(keys.length)
    const ask: Buffer[] = []
    const at: number[] = []
    for (let i = 0; i < keys.length; i++) {
      const k = keyBytes(`keys[${i}]`, keys[i])
      const own = this.#writes.get(k.toString('latin1'))
      if (own !== undefined) {
        out[i] = own.value === undefined ? undefined : decode(own.value, enc)
        continue
      }
      this.#readKey(k)
      ask.push(k)
      at.push(i)
    }
    if (ask.length > 0) {
      const got = await this.#db.getMany(ask, { snapshot: this.#snapshot })
      for (let j = 0; j < got.length; j++) {
        const v = got[j]
        out[at[j]] = v === undefined ? undefined : decode(v, enc)
      }
    }
    return out
  }

  /**
   * Iterates a range at the snapshot merged with this attempt's own writes in it. The
   * whole range is in the read set (as given, whatever part of it is consumed): a key
   * written in it by a commit after the snapshot, also a new one, is a conflict.
   */
  async *iterator(options: TransactionIteratorOptions = {}): AsyncGenerator<[Buffer | string, Buffer | string], void, undefined> {
    this.#live()
    if ((options as IteratorOptions).snapshot !== undefined) throw invalidArgument('options.snapshot: a transaction reads at its own snapshot')
    const r = checkRange(options)
    this.#readRange(r)
    const inRange = (k: Buffer): boolean => {
      if (r.lower !== undefined) {
        const c = Buffer.compare(k, r.lower[0])
        if (c < 0 || (c === 0 && !r.lower[1])) return false
      }
      if (r.upper !== undefined) {
        const c = Buffer.compare(k, r.upper[0])
        if (c > 0 || (c === 0 && !r.upper[1])) return false
      }
      return true
    }
    const dir = r.reverse ? -1 : 1
    const own = [...this.#writes.values()].filter((w) => inRange(w.key)).sort((a, b) => dir * Buffer.compare(a.key, b.key))
    const base = this.#db.iterator({
      gt: options.gt,
      gte: options.gte,
      lt: options.lt,
      lte: options.lte,
      reverse: r.reverse,
      snapshot: this.#snapshot,
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
    })
    let left = r.limit < 0 ? Infinity : r.limit
    let i = 0
    const emit = (k: Buffer, v: Buffer): [Buffer | string, Buffer | string] => [decode(k, r.keyEnc), decode(v, r.valueEnc)]
    try {
      for await (const [k, v] of base) {
        // Own writes that sort before this entry, then this entry unless written here.
        while (i < own.length && dir * Buffer.compare(own[i].key, k) < 0) {
          const w = own[i++]
          if (w.value !== undefined) {
            if (left-- <= 0) return
            yield emit(w.key, w.value)
          }
        }
        if (i < own.length && own[i].key.equals(k)) {
          const w = own[i++]
          if (w.value === undefined) continue
          if (left-- <= 0) return
          yield emit(w.key, w.value)
          continue
        }
        if (left-- <= 0) return
        yield emit(k, v)
      }
      for (; i < own.length; i++) {
        const w = own[i]
        if (w.value === undefined) continue
        if (left-- <= 0) return
        yield emit(w.key, w.value)
      }
    } finally {
      await base.close()
    }
  }

  /** Buffers a put of `key` (committed with the transaction). */
  put(key: Bytes, value: Bytes): void {
    this.#live()
    const k = Buffer.from(keyBytes('key', key))
    this.#writes.set(k.toString('latin1'), { key: k, value: Buffer.from(valueBytes('value', value)) })
  }

  /** Buffers a delete of `key` (committed with the transaction). */
  del(key: Bytes): void {
    this.#live()
    const k = Buffer.from(keyBytes('key', key))
    this.#writes.set(k.toString('latin1'), { key: k, value: undefined })
  }

  /**
   * Buffers an append of `value` to stream `stream`, committed with the transaction: the
   * records get their stream sequence numbers when the transaction commits, in call order;
   * an attempt that conflicts (and is retried) appends nothing. Appends are not read back by
   * the transaction and conflict with nothing.
   */
  append(stream: string, value: Bytes): void {
    this.#live()
    this.#appends.push([streamNameBytes('stream', stream), Buffer.from(valueBytes('value', value))])
  }

  /** @internal Ends the attempt's use (its function returned or threw). */
  _close(): void {
    this.#finished = true
  }

  /** @internal The commit record, or undefined if nothing was written. */
  _record(): Buffer | undefined {
    if (this.#writes.size === 0 && this.#appends.length === 0) return undefined
    const ops = new BatchEncoder(1024)
    for (const w of this.#writes.values()) {
      if (w.value === undefined) ops.del(w.key)
      else ops.put(w.key, w.value)
    }
    for (const [stream, value] of this.#appends) ops.append(stream, value)
    const body = ops.bytes().subarray(1)
    const p = Buffer.allocUnsafe(13 + this.#readBytes + body.length)
    p[0] = OPTIMISTIC_TAG
    p.writeBigUInt64LE(BigInt(this.#snapshot.seq), 1)
    p.writeUInt32LE(this.#readBytes, 9)
    let at = 13
    for (const item of this.#reads) at += item.copy(p, at)
    body.copy(p, at)
    return p
  }
}

function checkTransactionOptions(options: unknown, dflt: boolean): { retries: number; sync: boolean } {
  checkOptions('options', options)
  const o = (options ?? {}) as TransactionOptions
  const retries: unknown = o.retries ?? TRANSACTION_RETRIES_DEFAULT
  if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0 || retries > TRANSACTION_RETRIES_MAX) {
    throw invalidArgument(`options.retries must be an integer in 0..${TRANSACTION_RETRIES_MAX}, got ${typeof retries === 'number' ? retries : describe(retries)}`)
  }
  return { retries, sync: checkSync(o as WriteOptions, dflt) }
}

function backoff(retry: number): Promise<void> {
  const ms = Math.min(BACKOFF_BASE_MS * 2 ** (retry - 1), BACKOFF_MAX_MS) * (0.5 + Math.random())
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** @internal {@link Db.transaction}'s body. */
export async function runTransaction<T>(
  db: TransactionOwner,
  handle: native.NativeDb,
  fn: unknown,
  options: unknown,
  syncDefault: boolean,
): Promise<T> {
  if (typeof fn !== 'function') throw invalidArgument(`fn must be a function, got ${describe(fn)}`)
  const { retries, sync } = checkTransactionOptions(options, syncDefault)
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) await backoff(attempt)
    let a: native.NativeAttempt
    try {
      a = handle.beginOptimistic()
    } catch (e) {
      throw toUringdbError(e)
    }
    const snapshot = new Snapshot(a.snapshot())
    let seq: number | null = null
    let key: Buffer | null = null
    try {
      const tx = new Transaction(db, snapshot)
      let value: T
      try {
        value = await (fn as (tx: Transaction) => T | Promise<T>)(tx)
      } finally {
        tx._close()
      }
      const payload = tx._record()
      if (payload === undefined) return value
      try {
        // A key held by a prepared transaction: refused at once, not retried.
        handle.checkLocks(payload)
      } catch (e) {
        throw toUringdbError(e)
      }
      seq = await db._write(payload, { sync })
      key = handle.endOptimistic(a.id, seq)
      if (key === null) return value
    } finally {
      if (seq === null) handle.endOptimistic(a.id, null)
      snapshot.release()
      a.release()
    }
    if (attempt >= retries) {
      throw new UringdbError(
        'ERR_URINGDB_CONFLICT',
        `the transaction conflicted ${attempt + 1} times (retries: ${retries}); the last time on the key ${JSON.stringify(key.toString('utf8'))}, read and then written by another commit`,
        { key, conflict: 'read-set' },
      )
    }
  }
}
