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
import { UringdbError, toUringdbError, fromNative } from './errors.js'

/**
 * Pending operations in completion order: the engine completes a handle's writes in the
 * order they were handed over, so the i-th outcome settles the i-th promise. An entry's
 * count is 0 for an operation that resolves with one number (append, sync, put, ...) and
 * n >= 1 for one that resolves with an array of n numbers (appendMany).
 */
export class CompletionQueue {
  #resolves: Array<(v: never) => void> = []
  #rejects: Array<(e: UringdbError) => void> = []
  #counts: number[] = []
  #head = 0
  // The numbers of a multi-record operation received so far.
  #partial: number[] = []
  #idle: (() => void) | undefined
  // Parked operations the engine refused, waiting for the `ahead` operations before them.
  #doom: { ahead: number; count: number; err: UringdbError } | undefined

  /** Operations not settled yet. */
  get pending(): number {
    return this.#counts.length - this.#head
  }

  /** A new pending operation, the newest. */
  enqueue<T>(count = 0): Promise<T> {
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

  /** Rejects the newest `k` operations (they were never handed to the engine). */
  rejectNewest(k: number, err: UringdbError): void {
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

  /** Records the call whose `len` bytes were just reserved, and queues the flush. */
  commit(len: number, word: number): void {
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
  take(): { data: Buffer; lens: Uint32Array; words: W } | undefined {
    this.#flushQueued = false
    const n = this.#staged
    if (n === 0) return undefined
    const data = (this.#stage as Buffer).subarray(0, this.#stageBytes)
    this.#staged = 0
    this.#stageBytes = 0
    return { data, lens: this.#lens.subarray(0, n), words: this.#words.subarray(0, n) as W }
  }
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
  if (queue.pending > 0) await queue.idle()
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
