/**
 * The promise plumbing shared by the Log and the Db: the queue of pending
 * operations the engine completes in order (CompletionQueue), the staging of one tick's
 * writes for one crossing (TickStager), the writes parked while the engine is full
 * (ParkedQueue), the bound on one handle's reads in the reader queue (ReadGate), and the
 * staging of one tick's gets for one multi-get (GetStager).
 *
 * @module
 */
import type * as native from '../binding.js'
import { UringdbError, AbortError, toUringdbError, fromNative } from './errors.js'

/**
 * Pending operations in completion order: the engine completes a handle's writes in the
 * order they were handed over, so the i-th outcome settles the i-th promise. An entry's
 * count is 0 for an operation that resolves with one number (append, sync, put, ...) and
 * n >= 1 for one that resolves with an array of n numbers (appendMany). Each entry also
 * holds its bytes (of records or write payloads): {@link CompletionQueue.pendingBytes} is
 * what the handle holds and the engine has not completed (see {@link WriteGate}).
 */
export class CompletionQueue {
  #resolves: Array<(v: never) => void> = []
  #rejects: Array<(e: UringdbError) => void> = []
  #counts: number[] = []
  #bytes: number[] = []
  #pendingBytes = 0
  #head = 0
  // Called once pending operations settled (bytes were freed): see WriteGate.
  onFreed: (() => void) | undefined
  // The numbers of a multi-record operation received so far.
  #partial: number[] = []
  #idle: (() => void) | undefined
  // Parked operations the engine refused, waiting for the `ahead` operations before them.
  #doom: { ahead: number; count: number; err: UringdbError } | undefined

  /** Operations not settled yet. */
  get pending(): number {
    return this.#counts.length - this.#head
  }

  /** Bytes of the pending operations. */
  get pendingBytes(): number {
    return this.#pendingBytes
  }

  /** A new pending operation of `bytes` bytes, the newest. */
  enqueue<T>(count = 0, bytes = 0): Promise<T> {
    this.#pendingBytes += bytes
    this.#bytes.push(bytes)
    return new Promise<T>((resolve, reject) => {
      this.#resolves.push(resolve as (v: never) => void)
      this.#rejects.push(reject)
      this.#counts.push(count)
    })
  }

  /** Resolves once no operation is pending (call it only while some is). */
  idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#idle = resolve
    })
  }

  /** Settles the oldest pending operation. */
  settle(ok: boolean, value: unknown): void {
    const h = this.#head
    const fn = ok ? this.#resolves[h] : this.#rejects[h]
    this.#pendingBytes -= this.#bytes[h]
    this.#head = h + 1
    if (this.#head === this.#counts.length) {
      this.#head = 0
      this.#resolves.length = 0
      this.#rejects.length = 0
      this.#counts.length = 0
      this.#bytes.length = 0
      if (this.#idle !== undefined) {
        const idle = this.#idle
        this.#idle = undefined
        idle()
      }
    } else if (this.#head > 4096 && this.#head * 2 > this.#counts.length) {
      this.#resolves.splice(0, this.#head)
      this.#rejects.splice(0, this.#head)
      this.#counts.splice(0, this.#head)
      this.#bytes.splice(0, this.#head)
      this.#head = 0
    }
    ;(fn as (v: unknown) => void)(value)
    if (this.#doom !== undefined) this.#stepDoom()
  }

  /** Rejects the newest `k` operations (they were never handed to the engine). */
  rejectNewest(k: number, err: UringdbError): void {
    const start = this.#counts.length - k
    const rejects = this.#rejects.splice(start, k)
    this.#resolves.splice(start, k)
    this.#counts.splice(start, k)
    for (const b of this.#bytes.splice(start, k)) this.#pendingBytes -= b
    this.#idleIfEmpty()
    for (const r of rejects) r(err)
    this.onFreed?.()
  }

  /**
   * Rejects the pending operation that has `after` operations after it (one never handed
   * to the engine: staged or parked, see WriteGate) and forgets it.
   */
  cancel(after: number, err: UringdbError): void {
    const at = this.#counts.length - 1 - after
    const reject = this.#rejects[at]
    this.#rejects.splice(at, 1)
    this.#resolves.splice(at, 1)
    this.#counts.splice(at, 1)
    this.#pendingBytes -= this.#bytes[at]
    this.#bytes.splice(at, 1)
    // (Never one ahead of doomed operations: staged and parked ones are the newest.)
    this.#idleIfEmpty()
    reject(err)
    this.onFreed?.()
  }

  #idleIfEmpty(): void {
    if (this.#head >= this.#counts.length && this.#idle !== undefined) {
      const idle = this.#idle
      this.#idle = undefined
      idle()
    }
  }

  /**
   * The engine refused the newest `n` operations (parked ones; it closed or failed): they
   * are rejected with `err` once the operations ahead of them have settled, so that
   * outcomes keep call order.
   */
  failNewest(n: number, err: UringdbError): void {
    const ahead = this.pending - n
    if (ahead <= 0 || this.#doom !== undefined) this.rejectNewest(n, err)
    else this.#doom = { ahead, count: n, err }
  }

  /** One operation ahead of the refused ones settled; reject them when none is left. */
  #stepDoom(): void {
    const d = this.#doom as { ahead: number; count: number; err: UringdbError }
    if (--d.ahead > 0) return
    this.#doom = undefined
    for (let i = 0; i < d.count; i++) this.settle(false, d.err)
  }

  /** Resolves the oldest operations with the sequence numbers of one commit group. */
  resolve(seqs: Float64Array): void {
    for (let i = 0; i < seqs.length; i++) {
      const count = this.#counts[this.#head]
      if (count === 0) {
        this.settle(true, seqs[i])
      } else {
        this.#partial.push(seqs[i])
        if (this.#partial.length === count) {
          const all = this.#partial
          this.#partial = []
          this.settle(true, all)
        }
      }
    }
    this.onFreed?.()
  }

  /** Rejects the oldest operations covering `failed` records with the engine's error. */
  fail(failed: number, error: native.NativeError | null): void {
    const err = error === null ? new UringdbError('ERR_URINGDB_INTERNAL', 'a write failed without an error') : fromNative(error)
    while (failed > 0) {
      const count = Math.max(1, this.#counts[this.#head]) - this.#partial.length
      this.#partial = []
      failed -= count
      this.settle(false, err)
    }
    this.onFreed?.()
  }
}

/**
 * The staging run of one tick: the writes made in one tick are copied into one buffer and
 * handed to the engine in one crossing at the end of the tick (or earlier, when the run is
 * full). `words` holds one word per staged call, whose meaning is the product's.
 */
export class TickStager<W extends Uint32Array | Uint8Array> {
  readonly #capacity: number
  readonly #max: number
  #stage: Buffer | undefined
  #stageBytes = 0
  readonly #lens: Uint32Array
  readonly #words: W
  #staged = 0
  #flushQueued = false
  readonly #flush: () => void
  // The cancellation token of each staged call that has one (see WriteGate); empty when none has.
  #tokens: Array<object | undefined> = []

  /**
   * `capacity` bytes and `words.length` calls at most per run; `flush` hands the run to
   * the engine (it calls {@link TickStager.take}) and is queued as a microtask.
   */
  constructor(capacity: number, words: W, flush: () => void) {
    this.#capacity = capacity
    this.#max = words.length
    this.#lens = new Uint32Array(words.length)
    this.#words = words
    this.#flush = flush
  }

  /** Whether a write of `len` bytes does not fit the run (it must be flushed first). */
  full(len: number): boolean {
    return this.#staged === this.#max || this.#stageBytes + len > this.#capacity
  }

  /**
   * The staging buffer, allocated on first use. Nothing is staged while writes are
   * parked, so the parked writes may be packed into it meanwhile.
   */
  buffer(): Buffer {
    return (this.#stage ??= Buffer.allocUnsafe(this.#capacity))
  }

  /** Reserves `len` bytes of the run (they must fit) and returns their offset. */
  reserve(len: number): number {
    this.buffer()
    const at = this.#stageBytes
    this.#stageBytes += len
    return at
  }

  /**
   * Records the call whose `len` bytes were just reserved (cancellable by `token` until
   * the run is taken), and queues the flush.
   */
  commit(len: number, word: number, token?: object): void {
    if (token !== undefined) this.#tokens[this.#staged] = token
    this.#lens[this.#staged] = len
    this.#words[this.#staged] = word
    this.#staged++
    if (!this.#flushQueued) {
      this.#flushQueued = true
      queueMicrotask(this.#flush)
    }
  }

  /**
   * Takes the run (views of the staging arrays, valid until the next call stages), leaving
   * an empty one; undefined when nothing is staged.
   */
  take(): { data: Buffer; lens: Uint32Array; words: W; tokens: Tokens } | undefined {
    this.#flushQueued = false
    const n = this.#staged
    if (n === 0) return undefined
    const data = (this.#stage as Buffer).subarray(0, this.#stageBytes)
    this.#staged = 0
    this.#stageBytes = 0
    let tokens: Tokens
    if (this.#tokens.length > 0) {
      tokens = this.#tokens
      tokens.length = n
      this.#tokens = []
    }
    return { data, lens: this.#lens.subarray(0, n), words: this.#words.subarray(0, n) as W, tokens }
  }

  /**
   * Removes the staged call of `token` (its bytes, length and word): returns how many
   * staged calls come after it, or -1 if none is staged with that token.
   */
  cancel(token: object): number {
    const i = this.#tokens.indexOf(token)
    if (i < 0 || i >= this.#staged) return -1
    const off = bytesIn(this.#lens, i)
    const len = this.#lens[i]
    const stage = this.#stage as Buffer
    stage.copyWithin(off, off + len, this.#stageBytes)
    this.#lens.copyWithin(i, i + 1, this.#staged)
    this.#words.copyWithin(i, i + 1, this.#staged)
    this.#tokens.splice(i, 1)
    this.#staged--
    this.#stageBytes -= len
    return this.#staged - i
  }
}

/**
 * The cancellation tokens of the calls of a run, one per call (undefined for a call without
 * one), or undefined when no call of the run has one.
 */
export type Tokens = Array<object | undefined> | undefined

/** `a` without its element `j` (a new array). */
export function without<A extends Uint32Array | Uint8Array>(a: A, j: number): A {
  const out = new (a.constructor as new (n: number) => A)(a.length - 1)
  out.set(a.subarray(0, j))
  out.set(a.subarray(j + 1), j)
  return out
}

/**
 * The close of a handle, once it refuses new calls: aborts its open `iterators` (if any),
 * waits until every pending operation has settled (they are written, not dropped), then
 * closes the native handle (the engine closes with the last handle in the process).
 */
export async function closeHandle(
  queue: CompletionQueue,
  handle: { close(): Promise<void> },
  iterators?: Iterable<{ _abort(): Promise<void> }>,
): Promise<void> {
  if (iterators !== undefined) for (const it of [...iterators]) await it._abort()
  // Writes waiting for room (WriteGate) enter as others complete: wait for them too.
  while (queue.pending > 0) await queue.idle()
  try {
    await handle.close()
  } catch (e) {
    throw toUringdbError(e)
  }
}

/** Bytes of the first `n` records (or writes) of a staged run, whose lengths are `lens`. */
export function bytesIn(lens: Uint32Array, n: number): number {
  let at = 0
  for (let i = 0; i < n; i++) at += lens[i]
  return at
}

/**
 * Operations waiting for room in the engine, in call order. The engine never blocks the
 * JS thread: when its commit queue (or, for the Db, a write stall's bounded queue) is
 * full, a hand-over takes what fits and says how much; the rest, and every operation
 * after it, wait here as pending promises until the engine calls the completion callback
 * with no outcome ("room again"), once per commit group at most. Parked writes are not
 * copied: a parked record or value is read (encoded) when it is handed over, so — as with
 * a stream's write(chunk) — a Buffer passed to a write must not be modified until its
 * promise settles. Only the tail of a refused staging run is kept as bytes, and at most
 * one such run (one staging buffer) is parked at a time, because nothing is staged while
 * anything is parked.
 *
 * The parked operations are the newest {@link ParkedQueue.count} of the owner's
 * {@link CompletionQueue} (a parked run holds several).
 */
export class ParkedQueue<Op> {
  readonly #queue: CompletionQueue
  #ops: Op[] = []
  #head = 0
  #count = 0

  constructor(queue: CompletionQueue) {
    this.#queue = queue
  }

  /** Whether anything is parked. */
  get any(): boolean {
    return this.#ops.length > 0
  }

  /** Parks `op`, which holds `count` operations. */
  push(op: Op, count = 1): void {
    this.#ops.push(op)
    this.#count += count
  }

  /** `n` parked operations were handed to the engine. */
  handed(n: number): void {
    this.#count -= n
  }

  /**
   * Hands parked operations to the engine in order: `step` hands over the one at the head
   * (it may replace it, see {@link ParkedQueue.pack}) and says whether all of it was taken.
   * Stops when the engine is full again (it calls back once it has room) or none is left.
   * An error rejects every parked operation: they come after the failed one and the engine
   * refuses writes from then on (closed or failed).
   */
  pump(step: (op: Op) => boolean): void {
    const q = this.#ops
    try {
      while (this.#head < q.length) {
        if (!step(q[this.#head])) return
        this.#head++
      }
    } catch (e) {
      this.fail(toUringdbError(e))
      return
    }
    this.#ops = []
    this.#head = 0
  }

  /**
   * The engine refused the parked operations (it closed or failed): they are rejected once
   * the operations ahead of them have settled.
   */
  fail(err: UringdbError): void {
    const n = this.#count
    this.#ops = []
    this.#head = 0
    this.#count = 0
    this.#queue.failNewest(n, err)
  }

  /**
   * Removes the parked operation of `token` (see WriteGate): `find` says where it is in
   * one parked op (-1: not there; a run holds `size(op)` operations), `remove` takes
   * element `j` out of a run. Returns how many parked operations come after it, or -1 if
   * none is parked with that token.
   */
  cancel(token: object, size: (op: Op) => number, find: (op: Op, token: object) => number, remove: (op: Op, j: number) => void): number {
    const q = this.#ops
    for (let i = this.#head; i < q.length; i++) {
      const j = find(q[i], token)
      if (j < 0) continue
      const n = size(q[i])
      let after = n - 1 - j
      for (let k = i + 1; k < q.length; k++) after += size(q[k])
      if (n === 1) q.splice(i, 1)
      else remove(q[i], j)
      this.#count--
      if (this.#head >= q.length) {
        this.#ops = []
        this.#head = 0
      }
      return after
    }
    return -1
  }

  /**
   * Packs the run of single parked writes at the head (those `single` accepts) into one
   * staging run's worth at most — `maxOps` writes, and `maxBytes` bytes unless the first is
   * larger — and replaces them with what `pack` makes of them (`bytes` in all).
   */
  pack<One extends Op, Run extends Op>(
    single: (op: Op) => op is One,
    len: (op: One) => number,
    maxOps: number,
    maxBytes: number,
    pack: (ops: One[], bytes: number) => Run,
  ): Run {
    const q = this.#ops
    let end = this.#head
    let bytes = 0
    while (end < q.length && end - this.#head < maxOps) {
      const op = q[end]
      if (!single(op) || (end > this.#head && bytes + len(op) > maxBytes)) break
      bytes += len(op)
      end++
    }
    const run = pack(q.slice(this.#head, end) as One[], bytes)
    // The packed run replaces the head write; the others it took are removed.
    q.splice(this.#head, end - this.#head, run)
    return run
  }
}

/**
 * Bounds the reads of one handle in the engine's reader queue: at most `max` at once; more
 * wait here, in call order, as pending promises.
 */
export class ReadGate {
  readonly #max: number
  #reads = 0
  #queue: Array<() => void> = []
  #head = 0

  constructor(max: number) {
    this.#max = max
  }

  /** Whether a read started now would wait for a place. */
  get full(): boolean {
    return this.#reads >= this.#max
  }

  /** Runs `start` (one reader-queue job) when there is a place for it, in call order. */
  run<T>(start: () => Promise<T>): Promise<T> {
    const run = (): Promise<T> => {
      let p: Promise<T>
      try {
        p = start()
      } catch (e) {
        this.#done()
        return Promise.reject(e)
      }
      return p.finally(() => this.#done())
    }
    if (this.#reads < this.#max) {
      this.#reads++
      return run()
    }
    // The place is handed over by #done (#reads stays as it is).
    return new Promise<void>((resolve) => this.#queue.push(resolve)).then(run)
  }

  #done(): void {
    if (this.#head < this.#queue.length) {
      const next = this.#queue[this.#head]
      this.#head++
      if (this.#head === this.#queue.length) {
        this.#queue = []
        this.#head = 0
      } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head)
        this.#head = 0
      }
      next()
    } else {
      this.#reads--
    }
  }
}

// Gets staged in one tick at most; more are handed over at once.
const GET_STAGE_KEYS = 1024

/**
 * The gets of one tick (current state only; snapshot reads cross on their own), read by
 * one multi-get at the end of the tick.
 */
export class GetStager {
  readonly #native: native.NativeDb
  readonly #reads: ReadGate
  #keys: Buffer[] = []
  #waiters: Array<[(v: Buffer | undefined) => void, (e: UringdbError) => void]> = []
  #queued = false
  // The snapshot the staged gets read at: taken when the first of them was called, so that
  // no get sees a write issued after it.
  #snap: native.NativeSnapshot | null = null

  constructor(handle: native.NativeDb, reads: ReadGate) {
    this.#native = handle
    this.#reads = reads
  }

  /** Stages a get of `k` (copied); resolves with its value, undefined if absent. */
  add(k: Buffer): Promise<Buffer | undefined> {
    if (this.#keys.length === 0) this.#snap = this.#native.snapshot()
    const p = new Promise<Buffer | undefined>((resolve, reject) => {
      this.#keys.push(Buffer.from(k))
      this.#waiters.push([resolve, reject])
    })
    if (this.#keys.length >= GET_STAGE_KEYS) this.flush()
    else if (!this.#queued) {
      this.#queued = true
      queueMicrotask(this.flush)
    }
    return p
  }

  /** Hands the staged gets to the engine as one multi-get. */
  readonly flush = (): void => {
    this.#queued = false
    const keys = this.#keys
    const waiters = this.#waiters
    const snap = this.#snap
    this.#keys = []
    this.#waiters = []
    this.#snap = null
    if (keys.length === 0) return
    const lens = new Uint32Array(keys.length)
    for (let i = 0; i < keys.length; i++) lens[i] = keys[i].length
    // `snap` was taken at the first of these gets, so waiting for a place changes nothing.
    const p = this.#reads.run(() => this.#native.getMany(Buffer.concat(keys), lens, snap))
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
}

type Waiter = {
  len: number
  token: object | undefined
  enter: () => void
  reject: (e: UringdbError) => void
}

/**
 * The entry of a handle's writes: bounds the bytes the handle holds and the engine has not
 * completed (staged, parked, or in the commit ring: {@link CompletionQueue.pendingBytes})
 * to `max`, and cancels writes by `AbortSignal` before they enter the commit ring.
 *
 * A write enters (is staged or handed over) when nothing waits before it and its bytes fit
 * the bound, or nothing is pending at all (so that no write is refused for its size: the
 * bound is exceeded by one write at most). Otherwise it waits here, in call order, as a
 * pending promise, and enters once completions have freed room; a waiting write is not
 * copied.
 *
 * A write with a signal is cancelled by its abort while it waits here, is staged (see
 * {@link TickStager.cancel}) or is parked behind a full ring (see {@link ParkedQueue.cancel}),
 * with an {@link AbortError}; once in the ring the abort is ignored. A handle adds one
 * abort listener per signal, however many of its writes carry it, and removes it once the
 * last of them has settled.
 */
export class WriteGate {
  readonly #queue: CompletionQueue
  readonly #max: number
  readonly #cancel: (token: object) => number
  #waiters: Waiter[] = []
  #head = 0
  #admitting = false
  // The signals of pending writes: the tokens of the writes carrying each, in call order.
  readonly #signals = new Map<AbortSignal, { tokens: Set<object>; onAbort: () => void }>()

  /**
   * `cancel` removes the staged or parked write of a token and says how many pending
   * operations come after it (-1: it is in the ring already, or settled).
   */
  constructor(queue: CompletionQueue, max: number, cancel: (token: object) => number) {
    this.#queue = queue
    this.#max = max
    this.#cancel = cancel
    queue.onFreed = () => this.#admit()
  }

  /** Whether a write of `len` bytes may enter now. */
  open(len: number): boolean {
    if (this.#head < this.#waiters.length) return false
    const b = this.#queue.pendingBytes
    return b === 0 || b + len <= this.#max
  }

  /** Writes waiting for room. */
  get waiting(): number {
    return this.#waiters.length - this.#head
  }

  /**
   * Enters a write of `len` bytes — `enter` stages or hands it over, enqueues it, and
   * returns its promise; its token (present with a signal) is what {@link TickStager} and
   * {@link ParkedQueue} know it by — now or, when the bound is reached, once there is room.
   */
  enter<T>(len: number, signal: AbortSignal | undefined, enter: (token: object | undefined) => Promise<T>): Promise<T> {
    if (signal === undefined) {
      if (this.open(len)) return enter(undefined)
      return new Promise<T>((resolve, reject) => {
        this.#waiters.push({ len, token: undefined, enter: () => resolve(enter(undefined)), reject })
      })
    }
    if (signal.aborted) return Promise.reject(new AbortError(signal.reason))
    const token = {}
    const p = this.open(len)
      ? enter(token)
      : new Promise<T>((resolve, reject) => {
          this.#waiters.push({ len, token, enter: () => resolve(enter(token)), reject })
        })
    let watch = this.#signals.get(signal)
    if (watch === undefined) {
      const tokens = new Set<object>()
      const onAbort = (): void => {
        this.#signals.delete(signal)
        // Newest first, so that no waiting write is admitted only to be cancelled.
        for (const t of [...tokens].reverse()) this.#abort(t, signal.reason)
      }
      watch = { tokens, onAbort }
      this.#signals.set(signal, watch)
      signal.addEventListener('abort', onAbort, { once: true })
    }
    watch.tokens.add(token)
    const off = (): void => {
      const w = this.#signals.get(signal)
      if (w === undefined || !w.tokens.delete(token) || w.tokens.size > 0) return
      this.#signals.delete(signal)
      signal.removeEventListener('abort', w.onAbort)
    }
    p.then(off, off)
    return p
  }

  /** Admits waiting writes, in order, while they fit. */
  #admit(): void {
    if (this.#admitting || this.#head === this.#waiters.length) return
    this.#admitting = true
    try {
      const w = this.#waiters
      while (this.#head < w.length) {
        const b = this.#queue.pendingBytes
        const next = w[this.#head]
        if (b !== 0 && b + next.len > this.#max) break
        this.#head++
        next.enter()
      }
      if (this.#head === w.length) {
        this.#waiters = []
        this.#head = 0
      } else if (this.#head > 1024 && this.#head * 2 > w.length) {
        this.#waiters = w.slice(this.#head)
        this.#head = 0
      }
    } finally {
      this.#admitting = false
    }
  }

  #abort(token: object, reason: unknown): void {
    const w = this.#waiters
    for (let i = this.#head; i < w.length; i++) {
      if (w[i].token !== token) continue
      const [waiter] = w.splice(i, 1)
      waiter.reject(new AbortError(reason))
      // The next one may fit now.
      if (i === this.#head) this.#admit()
      return
    }
    const after = this.#cancel(token)
    if (after >= 0) this.#queue.cancel(after, new AbortError(reason))
  }
}
