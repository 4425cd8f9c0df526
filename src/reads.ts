/**
 * A Db handle's reads on their way to the engine: the bound on its reads in the reader
 * queue (ReadGate) and the staging of one tick's gets for one multi-get (GetStager).
 *
 * @module
 */
import type * as native from '../binding.js'
import { UringdbError, toUringdbError } from './errors.js'
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

