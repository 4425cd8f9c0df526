/**
 * The staging of one tick's writes for one crossing into the engine (TickStager), shared by
 * the Log and the Db.
 *
 * @module
 */
import { bytesIn, type Tokens } from './pending.js'
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

