/**
 * The synchronous range: {@link RangeSync}, a hot scan over a key range without a promise
 * per batch.
 *
 * @module
 */
import './polyfill.js'
import type * as native from '../binding.js'
import { toUringdbError, invalidArgument, closedError } from './errors.js'
import { describe } from './args.js'
import type { Encoding, RangeSyncOptions } from './options.js'
import { EntryBatch } from './entries.js'
import { type Entry, type IteratorOwner, checkRange, openNative } from './iterator.js'

// Entries per fill: the first fill is small (a range read for its first few entries pays
// little), later ones double up to ENTRIES_MAX. Bytes per fill: BYTES_PER_ENTRY per entry, at
// least BYTES_MIN; a larger entry is fetched into a buffer of its size.
const ENTRIES_FIRST = 64
const ENTRIES_MAX = 4096
const BYTES_PER_ENTRY = 128
const BYTES_MIN = 8 * 1024

/**
 * What each step of a {@link RangeSync} opened with options `O` yields: `[key, value]`;
 * the key alone with `values: false`; the value alone with `keys: false`. A Buffer, or a
 * string with the `utf8` encoding. (A flag that is a `boolean` not known to the compiler
 * gives the union of both shapes.)
 */
export type RangeItem<O extends RangeSyncOptions> = O extends {
  readonly values?: infer VF
  readonly keys?: infer KF
  readonly keyEncoding?: infer KE
  readonly valueEncoding?: infer VE
}
  ?
      | (VF extends false ? (KE extends 'utf8' ? string : Buffer) : never)
      | (VF extends false ? never : KF extends false ? (VE extends 'utf8' ? string : Buffer) : never)
      | (VF extends false ? never : KF extends false ? never : Entry<KE extends 'utf8' ? string : Buffer, VE extends 'utf8' ? string : Buffer>)
  : never

// What a step yields.
const ENTRY = 0
const KEY = 1
const VALUE = 2

/**
 * A synchronous, single-pass scan of a key range at a consistent snapshot, made by
 * {@link Db.rangeSync}. Iterable with `for … of` (leaving the loop early releases it); also
 * `next()`, `close()` and `[Symbol.dispose]` (for `using`).
 *
 * Each native call fills one buffer with many entries (up to 4096), so a scan crosses into
 * the engine once per batch, not per key, and never waits for a thread or a promise. A
 * step that needs a new batch reads the engine on the calling thread: keep ranges that may
 * read cold tables off latency-sensitive code, or use the async {@link DbIterator}.
 *
 * The snapshot is taken (or the given one pinned) when the range is made, and released
 * when the range ends, is closed, or its database closes; a step after the database closed
 * throws `ERR_URINGDB_CLOSED`.
 */
export class RangeSync<T> implements IterableIterator<T>, Disposable {
  #native: native.NativeIterator | undefined
  readonly #db: IteratorOwner
  readonly #batch = new EntryBatch()
  readonly #shape: typeof ENTRY | typeof KEY | typeof VALUE
  readonly #keyEnc: Encoding
  readonly #valueEnc: Encoding
  readonly #views: boolean
  // The lengths of a fill (reused: read only while the fill is decoded), and in views mode
  // the one data buffer.
  readonly #lens = new Int32Array(2 * ENTRIES_MAX)
  #data: Buffer | undefined
  #entries = ENTRIES_FIRST
  #done = false
  #aborted = false

  /** @internal */
  constructor(db: IteratorOwner, n: native.NativeIterator, shape: typeof ENTRY | typeof KEY | typeof VALUE, keyEnc: Encoding, valueEnc: Encoding, views: boolean) {
    this.#db = db
    this.#native = n
    this.#shape = shape
    this.#keyEnc = keyEnc
    this.#valueEnc = valueEnc
    this.#views = views
  }

  // Fetches the next batch; false at the end.
  #fill(): boolean {
    if (this.#done) return false
    const n = this.#native
    if (n === undefined) throw this.#db._closedOr('the range is closed')
    const entries = this.#entries
    this.#entries = Math.min(entries * 2, ENTRIES_MAX)
    const bytes = Math.max(BYTES_MIN, entries * BYTES_PER_ENTRY)
    let data = this.#views && this.#data !== undefined && this.#data.length >= bytes ? this.#data : Buffer.allocUnsafeSlow(bytes)
    const lens = entries === ENTRIES_MAX ? this.#lens : this.#lens.subarray(0, 2 * entries)
    for (;;) {
      let f: native.NativeFill
      try {
        f = n.nextBatchInto(data, lens)
      } catch (e) {
        throw toUringdbError(e)
      }
      if (f.needBytes > 0) {
        // The next entry is larger than the buffer: it waits in the engine for a larger one.
        data = Buffer.allocUnsafeSlow(Math.max(f.needBytes, 2 * data.length))
        continue
      }
      if (this.#views) this.#data = data
      this.#batch.load(data, lens, f.entries)
      this.#done = f.done
      return f.entries > 0
    }
  }

  /** The next item, or `{ done: true }` at the end (the range is then released). */
  next(): IteratorResult<T, undefined> {
    if (this.#aborted) throw closedError('database', 'was closed while this range was open')
    const b = this.#batch
    if (!b.more && !this.#fill()) {
      this.close()
      return { done: true, value: undefined }
    }
    b.step()
    const value = this.#shape === KEY ? b.key(this.#keyEnc) : this.#shape === VALUE ? b.value(this.#valueEnc) : [b.key(this.#keyEnc), b.value(this.#valueEnc)]
    return { done: false, value: value as T }
  }

  /** Releases the range when a `for … of` loop exits early. */
  return(): IteratorResult<T, undefined> {
    this.close()
    return { done: true, value: undefined }
  }

  /** Releases the range's snapshot and engine iterator (idempotent); later steps end. */
  close(): void {
    const n = this.#native
    this.#native = undefined
    this.#done = true
    this.#batch.clear()
    this.#data = undefined
    if (n !== undefined) {
      n.close()
      this.#db._forget(this)
    }
  }

  /** @internal Closed because its database closed: later steps throw, not end quietly. */
  _abort(): void {
    if (this.#native !== undefined) this.#aborted = true
    this.close()
  }

  [Symbol.iterator](): this {
    return this
  }

  /** Same as {@link RangeSync.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close()
  }
}

function checkFlag(name: string, v: unknown): boolean {
  if (v === undefined) return true
  if (typeof v !== 'boolean') throw invalidArgument(`${name} must be a boolean, got ${describe(v)}`)
  return v
}

/**
 * @internal Opens the synchronous range of `options` (checked here: an error names the
 * field).
 */
export function openRangeSync(handle: native.NativeDb, owner: IteratorOwner, options: RangeSyncOptions | undefined): RangeSync<unknown> {
  const r = checkRange(options)
  const keys = checkFlag('keys', options?.keys)
  const values = checkFlag('values', options?.values)
  const views = options?.views === undefined ? false : checkFlag('views', options.views)
  if (!keys && !values) throw invalidArgument('keys and values cannot both be false')
  const shape = !values ? KEY : !keys ? VALUE : ENTRY
  return new RangeSync<unknown>(owner, openNative(handle, r, values), shape, r.keyEnc, r.valueEnc, views)
}
