/**
 * The promise plumbing shared by the Log and the Db: the queue of pending operations the
 * engine completes in order (CompletionQueue) and the close of a handle. The staging of a
 * tick's writes is in `stager.ts`, waiting and parked writes in `parked.ts`, reads in
 * `reads.ts`.
 *
 * @module
 */
import type * as native from '../binding.js'
import { UringdbError, toUringdbError, fromNative } from './errors.js'

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

