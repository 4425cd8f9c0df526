/**
 * Streams in the database: {@link Stream} (`db.stream(name)`) and its reader.
 *
 * A stream is an ordered log of entries kept inside the database. A `batch` operation
 * `{ type: 'append', stream, value }` appends an entry; the engine gives it the stream's next
 * seq when it applies the batch, so seqs are gapless and in commit order, and the batch's
 * state and stream operations are one log record (one fdatasync, all or nothing across a
 * crash). This module only checks arguments and turns the engine's batches into entries.
 *
 * @module
 */
import './polyfill.js'
import type * as native from '../binding.js'
import { type UringdbError, toUringdbError, invalidArgument, closedError } from './errors.js'
import { checkOptions, describe } from './args.js'
import { MiB } from './options.js'
import { streamNameBytes } from './batch.js'

/**
 * @internal The database a stream belongs to (an interface, so that this module does not
 * import db.ts).
 */
export interface StreamOwner {
  _closedOr(message: string): UringdbError
  _forget(it: object): void
  _track(it: { _abort(): Promise<void> }): void
}

/** One entry of a stream. */
export interface StreamEntry {
  /** The entry's seq: 1 for a stream's first entry, then gapless. */
  seq: number
  /** The appended value. */
  data: Buffer
}

/** Options of {@link Stream.read}. */
export interface StreamReadOptions {
  /** The first seq to read (default: the stream's {@link Stream.firstSeq}). */
  from?: number
  /** Most entries to read (default: all, as of the moment `read` is called). */
  limit?: number
}

/** Options of {@link Stream.tail}. */
export interface StreamTailOptions {
  /** The first seq to yield (default: the next one appended, `lastSeq + 1`). */
  from?: number
  /** Ends the iteration (normally, like closing it) when aborted. */
  signal?: AbortSignal
}

/** A seq argument: a positive safe integer (an error names `field`). */
function seqArg(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw invalidArgument(`${field} must be a positive integer, got ${String(v)}`)
  }
  return v
}

/**
 * A stream of the database, from {@link Db.stream}. The handle is cheap: it holds the
 * name, and every property reads the engine's current state.
 */
export class Stream {
  /** The stream's name. */
  readonly name: string
  readonly #native: native.NativeDb
  readonly #owner: StreamOwner
  readonly #bytes: Buffer

  /** @internal */
  constructor(handle: native.NativeDb, owner: StreamOwner, name: string) {
    this.#bytes = streamNameBytes('stream', name)
    this.name = name
    this.#native = handle
    this.#owner = owner
  }

  #info(): native.NativeStreamInfo {
    try {
      return this.#native.streamInfo(this.#bytes)
    } catch (e) {
      throw toUringdbError(e)
    }
  }

  /** The first seq the stream holds (1 for a stream never truncated). */
  get firstSeq(): number {
    return this.#info().firstSeq
  }

  /**
   * The last seq appended (0 for a stream never written), as visible to reads: a batch
   * whose promise resolved is counted.
   */
  get lastSeq(): number {
    return this.#info().lastSeq
  }

  /**
   * Reads the entries from `from` (default {@link Stream.firstSeq}) on, at most `limit`,
   * from a snapshot taken now (entries appended later are not included). An async iterable
   * of {@link StreamEntry}, fetched from the engine in batches.
   */
  read(options?: StreamReadOptions): StreamReader {
    checkOptions('options', options)
    const o = options ?? {}
    const from = o.from === undefined ? this.firstSeq : seqArg('from', o.from)
    let limit = -1
    if (o.limit !== undefined && o.limit !== Infinity) {
      if (typeof o.limit !== 'number' || !Number.isSafeInteger(o.limit) || o.limit < 0) {
        throw invalidArgument(`limit must be a non-negative integer or Infinity, got ${String(o.limit)}`)
      }
      limit = o.limit
    }
    let n: native.NativeStreamIterator
    try {
      n = this.#native.streamIterator(this.#bytes, from, limit, null)
    } catch (e) {
      throw toUringdbError(e)
    }
    const r = new StreamReader(this.#owner, n)
    this.#owner._track(r)
    return r
  }

  /**
   * Yields the entries from `from` on (default: only entries appended from now on), then
   * waits for new ones as batches that append to this stream are applied, until `signal`
   * aborts, the tail is closed (`return()`, `close()`, leaving a `for await` loop) or the
   * database closes; the iteration then ends normally. The wait is woken by the engine when
   * the stream grows (no polling).
   */
  tail(options?: StreamTailOptions): StreamTail {
    checkOptions('options', options)
    const o = options ?? {}
    const signal = o.signal
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw invalidArgument(`options.signal must be an AbortSignal, got ${describe(signal)}`)
    }
    const from = o.from === undefined ? this.lastSeq + 1 : seqArg('from', o.from)
    let waiter: native.NativeStreamWaiter
    try {
      waiter = this.#native.streamWaiter(this.#bytes)
    } catch (e) {
      throw toUringdbError(e)
    }
    const t = new StreamTail(this.#owner, waiter, (at) => this.#open(at), from, signal)
    this.#owner._track(t)
    return t
  }

  #open(from: number): StreamReader {
    try {
      return new StreamReader(this.#owner, this.#native.streamIterator(this.#bytes, from, -1, null))
    } catch (e) {
      throw toUringdbError(e)
    }
  }
}

/**
 * The entries of one {@link Stream.tail}: async-iterable; never done until it is closed, its
 * signal aborts or the database closes.
 */
export class StreamTail implements AsyncIterableIterator<StreamEntry>, AsyncDisposable {
  readonly #owner: StreamOwner
  #waiter: native.NativeStreamWaiter | undefined
  readonly #open: (from: number) => StreamReader
  #reader: StreamReader | undefined
  #next: number
  readonly #signal: AbortSignal | undefined
  readonly #onAbort: () => void
  #busy = false

  /** @internal */
  constructor(owner: StreamOwner, waiter: native.NativeStreamWaiter, open: (from: number) => StreamReader, from: number, signal: AbortSignal | undefined) {
    this.#owner = owner
    this.#waiter = waiter
    this.#open = open
    this.#next = from
    this.#signal = signal
    this.#onAbort = () => this.#waiter?.cancel()
    signal?.addEventListener('abort', this.#onAbort, { once: true })
  }

  /** AsyncIterator protocol: the next entry, waiting for it if need be. */
  async next(): Promise<IteratorResult<StreamEntry>> {
    if (this.#busy) throw invalidArgument('the stream tail is busy: wait for the previous call to settle')
    this.#busy = true
    try {
      for (;;) {
        const waiter = this.#waiter
        if (waiter === undefined || this.#stopped()) break
        this.#reader ??= this.#open(this.#next)
        const r = await this.#reader.next()
        if (r.done !== true) {
          this.#next = r.value.seq + 1
          return r
        }
        this.#reader = undefined
        // Checked synchronously right before the wait is registered: an abort or a close
        // that happened while reading must not leave a wait nobody cancels.
        if (this.#stopped()) break
        let last: number
        try {
          last = await waiter.wait(this.#next - 1)
        } catch (e) {
          const err = toUringdbError(e)
          if (err.code === 'ERR_URINGDB_CLOSED') break
          throw err
        }
        if (last < 0) break // cancelled (abort, close) or the database closed
      }
      await this.close()
      return { done: true, value: undefined }
    } finally {
      this.#busy = false
    }
  }

  /** Whether the tail was closed or its signal aborted. */
  #stopped(): boolean {
    return this.#waiter === undefined || this.#signal?.aborted === true
  }

  /** Ends the iteration when a `for await` loop exits early. */
  async return(): Promise<IteratorResult<StreamEntry>> {
    await this.close()
    return { done: true, value: undefined }
  }

  /** Ends the tail (idempotent): a pending `next()` resolves as done. */
  async close(): Promise<void> {
    const w = this.#waiter
    this.#waiter = undefined
    this.#signal?.removeEventListener('abort', this.#onAbort)
    const r = this.#reader
    this.#reader = undefined
    if (w !== undefined) {
      w.close()
      this.#owner._forget(this)
    }
    await r?.close()
  }

  /** @internal The database is closing: the tail ends. */
  _abort(): Promise<void> {
    return this.close()
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  /** Same as {@link StreamTail.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}

/**
 * The entries of one {@link Stream.read}: async-iterable, also `next()` and `close()`
 * (`for await` closes it when the loop exits).
 */
export class StreamReader implements AsyncIterableIterator<StreamEntry>, AsyncDisposable {
  #native: native.NativeStreamIterator | undefined
  readonly #owner: StreamOwner
  #batch: native.NativeStreamBatch | undefined
  #index = 0
  #offset = 0
  #done = false
  #size = 64
  #aborted = false
  #busy = false

  /** @internal */
  constructor(owner: StreamOwner, n: native.NativeStreamIterator) {
    this.#owner = owner
    this.#native = n
  }

  async #fill(): Promise<boolean> {
    if (this.#aborted) throw closedError('database', 'was closed while this stream reader was open')
    const b = this.#batch
    if (b !== undefined && this.#index < b.seqs.length) return true
    while (!this.#done) {
      const n = this.#native
      if (n === undefined) throw this.#owner._closedOr('the stream reader is closed')
      let next: native.NativeStreamBatch
      try {
        next = await n.nextBatch(this.#size, 1 * MiB)
      } catch (e) {
        throw toUringdbError(e)
      }
      this.#size = Math.min(this.#size * 2, 4096)
      this.#batch = next
      this.#index = 0
      this.#offset = 0
      this.#done = next.done
      if (next.seqs.length > 0) return true
    }
    return false
  }

  /** AsyncIterator protocol: the next entry. */
  async next(): Promise<IteratorResult<StreamEntry>> {
    if (this.#busy) throw invalidArgument('the stream reader is busy: wait for the previous call to settle')
    this.#busy = true
    try {
      if (!(await this.#fill())) {
        await this.close()
        return { done: true, value: undefined }
      }
      const b = this.#batch as native.NativeStreamBatch
      const i = this.#index++
      const len = b.lens[i]
      const data = b.data.subarray(this.#offset, this.#offset + len)
      this.#offset += len
      return { done: false, value: { seq: b.seqs[i], data } }
    } finally {
      this.#busy = false
    }
  }

  /** Closes the reader when a `for await` loop exits early. */
  async return(): Promise<IteratorResult<StreamEntry>> {
    await this.close()
    return { done: true, value: undefined }
  }

  /** Releases the reader (idempotent). */
  async close(): Promise<void> {
    const n = this.#native
    this.#native = undefined
    this.#done = true
    this.#batch = undefined
    if (n !== undefined) {
      n.close()
      this.#owner._forget(this)
    }
  }

  /** @internal Closed because its database closed: later reads reject, not end quietly. */
  async _abort(): Promise<void> {
    if (this.#native !== undefined) this.#aborted = true
    await this.close()
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  /** Same as {@link StreamReader.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
