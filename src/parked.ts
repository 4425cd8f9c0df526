/**
 * Writes that wait, shared by the Log and the Db: parked while the engine is full
 * (ParkedQueue), and waiting at a handle's entry for maxPendingBytes room or cancelled by
 * an AbortSignal before the commit ring (WriteGate).
 *
 * @module
 */
import { UringdbError, AbortError, toUringdbError } from './errors.js'
import type { CompletionQueue } from './pending.js'
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
