/**
 * Iterators over a key range of the key-value database.
 *
 * @module
 */
import './polyfill.js'
import type * as native from '../binding.js'
import { type UringdbError, toUringdbError, invalidArgument, closedError } from './errors.js'
import { describe, checkOptions, keyBytes, checkEncoding } from './args.js'
import { MiB, type Bytes, type Encoding, type IteratorOptions } from './options.js'
import { Snapshot } from './snapshot.js'
import { EntryBatch } from './entries.js'


/**
 * @internal The database an iterator belongs to (an interface, so that this module does
 * not import db.ts).
 */
export interface IteratorOwner {
  _closedOr(message: string): UringdbError
  _forget(it: object): void
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
  #db: IteratorOwner
  readonly #batch = new EntryBatch()
  #done = false
  #size = 64
  readonly #keyEnc: Encoding
  readonly #valueEnc: Encoding
  readonly #keys: boolean
  readonly #values: boolean
  #busy = false
  #aborted = false

  /** @internal */
  constructor(db: IteratorOwner, n: native.NativeIterator, keyEnc: Encoding, valueEnc: Encoding, keys: boolean, values: boolean) {
    this.#db = db
    this.#native = n
    this.#keyEnc = keyEnc
    this.#valueEnc = valueEnc
    this.#keys = keys
    this.#values = values
  }

  async #fill(): Promise<boolean> {
    if (this.#aborted) throw closedError('database', 'was closed while this iterator was open')
    if (this.#batch.more) return true
    if (this.#done) return false
    const n = this.#native
    if (n === undefined) throw this.#db._closedOr('the iterator is closed')
    let b: native.NativeBatch
    try {
      b = await n.nextBatch(this.#size, 1 * MiB)
    } catch (e) {
      throw toUringdbError(e)
    }
    this.#size = Math.min(this.#size * 2, 4096)
    this.#batch.load(b.data, b.lens, b.lens.length / 2)
    this.#done = b.done
    return this.#batch.more
  }

  #take(): Entry<K, V> {
    const b = this.#batch
    b.step()
    return [
      (this.#keys ? b.key(this.#keyEnc) : undefined) as K,
      (this.#values ? b.value(this.#valueEnc) : undefined) as V,
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
        while (out.length < size && this.#batch.more) out.push(this.#take())
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
    this.#batch.clear()
    this.#done = false
    this.#size = 64
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
    this.#batch.clear()
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

/** @internal A checked range: what the engine's iterator is opened with. */
export interface CheckedRange {
  readonly lower: readonly [Buffer, boolean] | undefined
  readonly upper: readonly [Buffer, boolean] | undefined
  readonly reverse: boolean
  /** -1: no limit. */
  readonly limit: number
  readonly snapshot: native.NativeSnapshot | null
  readonly keyEnc: Encoding
  readonly valueEnc: Encoding
}

/**
 * @internal Checks the range options of an iterator (an error names the field), shared by
 * {@link openIterator} and the synchronous range.
 */
export function checkRange(options: IteratorOptions | undefined): CheckedRange {
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
  return { lower, upper, reverse: o.reverse === true, limit, snapshot: o.snapshot?._native ?? null, keyEnc, valueEnc }
}

/** @internal Opens the engine's iterator over a checked range; `values`: copy values out. */
export function openNative(handle: native.NativeDb, r: CheckedRange, values: boolean): native.NativeIterator {
  try {
    return handle.iterator(
      r.lower?.[0] ?? null,
      r.lower?.[1] ?? false,
      r.upper?.[0] ?? null,
      r.upper?.[1] ?? false,
      r.reverse,
      r.limit,
      values,
      r.snapshot,
    )
  } catch (e) {
    throw toUringdbError(e)
  }
}

/**
 * @internal Opens the engine's iterator over the range of `options` (checked here) and wraps
 * it; `keys` and `values` select what its entries carry.
 */
export function openIterator(
  handle: native.NativeDb,
  owner: IteratorOwner,
  options: IteratorOptions,
  keys: boolean,
  values: boolean,
): DbIterator<unknown, unknown> {
  const r = checkRange(options)
  const n = openNative(handle, r, values)
  return new DbIterator<unknown, unknown>(owner, n, r.keyEnc, r.valueEnc, keys, values)
}

export function project(it: DbIterator<unknown, unknown>, i: 0 | 1): AsyncIterableIterator<Buffer | string> & { close(): Promise<void> } {
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
