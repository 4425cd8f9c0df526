/**
 * The database's write path in the façade: a handle's staged, waiting and parked writes
 * (the tick stager, the maxPendingBytes gate and cancellation, the queue of writes parked
 * while the engine is full) on their way into the engine's commit queue, and their
 * completions. {@link Db} owns one; the batch format is in `batch.ts`.
 *
 * @module
 */
import type * as native from '../binding.js'
import { UringdbError, toUringdbError, closedError, acceptedBefore } from './errors.js'
import { CompletionQueue, bytesIn, without, type Tokens } from './pending.js'
import { TickStager } from './stager.js'
import { ParkedQueue, WriteGate } from './parked.js'
import { KEY_BYTES_MAX, keyBytes, valueBytes, checkSync, checkSignal } from './args.js'
import { MiB, type WriteOptions } from './options.js'
import { BATCH_TAG, encodeSingle, opBytes } from './batch.js'

const DB_STAGE_BYTES = 1 * MiB
const DB_STAGE_WRITES = 256
// #reserve's answer when the write must park (see ParkedDbWrite).
const PARK = -2

// A Db write parked while the engine is full (see ParkedQueue): a refused staging run's
// tail (bytes), or one write not yet encoded (`encode` writes its payload; keys and values
// are read then, not copied now). Tokens identify writes an AbortSignal may cancel (WriteGate).
type ParkedDbWrite =
  | { kind: 'run'; data: Buffer; lens: Uint32Array; syncs: Uint8Array; tokens: Tokens }
  | { kind: 'one'; len: number; sync: boolean; encode: (b: Buffer, at: number) => void; token: object | undefined }
type ParkedOne = Extract<ParkedDbWrite, { kind: 'one' }>
type ParkedRun = Extract<ParkedDbWrite, { kind: 'run' }>

/** A database handle's writes on their way to the engine. */
export class DbWrites {
  readonly #native: native.NativeDb
  readonly #queue: CompletionQueue
  readonly #sync: boolean
  readonly #maxBatchBytes: number
  readonly #isClosing: () => boolean
  // Writes staged in this tick: bytes, lengths, and one sync flag per write.
  readonly #stage = new TickStager(DB_STAGE_BYTES, new Uint8Array(DB_STAGE_WRITES), () => this.flushStaged())
  // Writes waiting for room in the engine, in call order; the newest writes of the queue.
  // Nothing is staged while any is parked.
  readonly #parked: ParkedQueue<ParkedDbWrite>
  // The bound on pending bytes (maxPendingBytes), and cancellation before the ring.
  readonly #gate: WriteGate
  // [0] is 1 while a prepared transaction locks any key of the database (the engine updates
  // it in place): only then do writes cross to check their keys (see Db.prepare).
  readonly #locked: Uint32Array

  constructor(handle: native.NativeDb, queue: CompletionQueue, sync: boolean, maxPendingBytes: number, isClosing: () => boolean) {
    this.#native = handle
    this.#queue = queue
    this.#sync = sync
    this.#maxBatchBytes = handle.maxBatchBytes
    this.#isClosing = isClosing
    this.#parked = new ParkedQueue<ParkedDbWrite>(queue)
    this.#gate = new WriteGate(queue, maxPendingBytes, (token) => this.#cancel(token))
    this.#locked = handle.lockFlag() ?? Uint32Array.of(1)
  }

  /** Writes waiting for room under maxPendingBytes (tests). */
  get waiting(): number {
    return this.#gate.waiting
  }

  /** Hands this tick's staged writes to the engine (at the end of the tick, or when the run is full, or at close). */
  flushStaged(): void {
    const run = this.#stage.take()
    if (run === undefined) return
    const { data, lens, words: syncs, tokens } = run
    const n = lens.length
    try {
      const taken = this.#native.writePacked(data, lens, syncs)
      if (taken < n) {
        // The refused tail's bytes stay in the staging buffer, which nothing else writes
        // while anything is parked (#packParked reuses it once this run is taken); its
        // lengths are copied (their arrays are reused).
        const at = bytesIn(lens, taken)
        this.#parked.push(
          { kind: 'run', data: data.subarray(at), lens: lens.slice(taken), syncs: syncs.slice(taken), tokens: tokens?.slice(taken) },
          n - taken,
        )
      }
    } catch (e) {
      this.#queue.rejectNewest(n - acceptedBefore(e), toUringdbError(e))
    }
  }

  #park(len: number, sync: boolean, encode: (b: Buffer, at: number) => void, token: object | undefined): Promise<number> {
    this.#parked.push({ kind: 'one', len, sync, encode, token })
    return this.#queue.enqueue(0, len)
  }

  /**
   * Removes the staged or parked write of `token` (an abort): returns how many pending
   * writes come after it, -1 if it is not staged or parked (in the ring, or settled).
   */
  #cancel(token: object): number {
    const staged = this.#stage.cancel(token)
    if (staged >= 0) return staged
    return this.#parked.cancel(
      token,
      (op) => (op.kind === 'run' ? op.lens.length : 1),
      (op, t) => (op.kind === 'run' ? (op.tokens?.indexOf(t) ?? -1) : op.token === t ? 0 : -1),
      (op, j) => {
        const run = op as ParkedRun
        const off = bytesIn(run.lens, j)
        run.data = Buffer.concat([run.data.subarray(0, off), run.data.subarray(off + run.lens[j])])
        run.lens = without(run.lens, j)
        run.syncs = without(run.syncs, j)
        ;(run.tokens as object[]).splice(j, 1)
      },
    )
  }

  /**
   * Hands parked writes to the engine in order (see ParkedQueue.pump), packed into
   * staging-sized runs (one crossing each).
   */
  #pump(): void {
    this.#parked.pump((head) => {
      const op = head.kind === 'one' ? this.#packParked() : head
      let taken: number
      try {
        taken = this.#native.writePacked(op.data, op.lens, op.syncs)
      } catch (e) {
        this.#parked.handed(acceptedBefore(e))
        throw e
      }
      this.#parked.handed(taken)
      if (taken === op.lens.length) return true
      op.data = op.data.subarray(bytesIn(op.lens, taken))
      op.lens = op.lens.subarray(taken)
      op.syncs = op.syncs.subarray(taken)
      op.tokens = op.tokens?.slice(taken)
      return false
    })
  }

  /** Encodes the parked writes at the head into one run (one staging run's worth at most). */
  #packParked(): ParkedRun {
    return this.#parked.pack(
      (op): op is ParkedOne => op.kind === 'one',
      (op) => op.len,
      DB_STAGE_WRITES,
      DB_STAGE_BYTES,
      (ops, bytes) => {
        const k = ops.length
        // Into the staging buffer (see #flushStaged): no buffer per run during a long wait.
        const data = bytes <= DB_STAGE_BYTES ? this.#stage.buffer().subarray(0, bytes) : Buffer.allocUnsafe(bytes)
        const lens = new Uint32Array(k)
        const syncs = new Uint8Array(k)
        let tokens: Tokens
        let at = 0
        for (let i = 0; i < k; i++) {
          const op = ops[i]
          op.encode(data, at)
          at += op.len
          lens[i] = op.len
          syncs[i] = op.sync ? 1 : 0
          if (op.token !== undefined) (tokens ??= new Array<object | undefined>(k))[i] = op.token
        }
        const run: ParkedRun = { kind: 'run', data, lens, syncs, tokens }
        return run
      },
    )
  }

  /**
   * Receives completions from the engine (one call per commit group), or, with
   * no outcome (null seqs, 0 failed), word that parked writes may be retried.
   */
  complete(seqs: Float64Array | null, failed: number, error: native.NativeError | null): void {
    if (seqs === null && failed === 0) {
      this.#pump()
      return
    }
    if (seqs !== null) this.#queue.resolve(seqs)
    if (failed > 0) this.#queue.fail(failed, error)
  }

  /** Logs one encoded batch; resolves with its sequence number. */
  write(payload: Buffer, options: WriteOptions | undefined): Promise<number> {
    if (this.#isClosing()) return Promise.reject(closedError('database'))
    let sync: boolean
    let signal: AbortSignal | undefined
    try {
      sync = checkSync(options, this.#sync)
      signal = checkSignal(options)
    } catch (e) {
      return Promise.reject(e)
    }
    const len = payload.length
    if (len > this.#maxBatchBytes) {
      return Promise.reject(
        new UringdbError('ERR_URINGDB_RECORD_TOO_LARGE', `a write of ${len} bytes exceeds the limit of ${this.#maxBatchBytes} bytes`),
      )
    }
    // A batch writing a key a prepared transaction holds is refused now, before it is
    // staged (prepare and finish records were checked when they were reserved).
    if (payload[0] === BATCH_TAG && this.#locked[0] !== 0) {
      try {
        this.#native.checkLocks(payload)
      } catch (e) {
        return Promise.reject(toUringdbError(e))
      }
    }
    if (signal === undefined && this.#gate.open(len)) return this.#enterPayload(payload, sync, undefined)
    return this.#gate.enter(len, signal, (token) => this.#enterPayload(payload, sync, token))
  }

  // Apart from #single so that it captures nothing in a closure (V8 would then allocate a
  // context for its variables on every call, also on the fast path).
  #singleLater(kind: 0 | 1, k: Uint8Array, v: Uint8Array | undefined, len: number, sync: boolean, signal: AbortSignal | undefined): Promise<number> {
    return this.#gate.enter(len, signal, (token) => this.#enterSingle(kind, k, v, len, sync, token))
  }

  /** Stages, hands over or parks one encoded write (it passed the gate). */
  #enterPayload(payload: Buffer, sync: boolean, token: object | undefined): Promise<number> {
    const len = payload.length
    const at = this.#parked.any ? PARK : this.#reserve(len)
    if (at === PARK) return this.#park(len, sync, (b, to) => payload.copy(b, to), token)
    if (at < 0) {
      // Crosses alone (copied once, by the engine).
      const p = this.#queue.enqueue<number>(0, len)
      try {
        const lens = Uint32Array.of(len)
        const syncs = Uint8Array.of(sync ? 1 : 0)
        if (this.#native.writePacked(payload, lens, syncs) === 0) {
          this.#parked.push({ kind: 'run', data: payload, lens, syncs, tokens: token === undefined ? undefined : [token] })
        }
      } catch (e) {
        this.#queue.rejectNewest(1, toUringdbError(e))
      }
      return p
    }
    payload.copy(this.#stage.buffer(), at)
    return this.#commitStaged(len, sync, token)
  }

  /**
   * Reserves `len` bytes of this tick's staging buffer for one write (flushing the run first
   * if it is full) and returns their offset, -1 if the write must cross on its own, or
   * PARK if flushing the run parked some of it (the write then parks behind it).
   */
  #reserve(len: number): number {
    if (this.#stage.full(len)) {
      this.flushStaged()
      if (this.#parked.any) return PARK
    }
    if (len > DB_STAGE_BYTES) return -1
    return this.#stage.reserve(len)
  }

  #commitStaged(len: number, sync: boolean, token: object | undefined): Promise<number> {
    this.#stage.commit(len, sync ? 1 : 0, token)
    return this.#queue.enqueue(0, len)
  }

  /** Stages one put or delete, encoded straight into the staging buffer. */
  single(kind: 0 | 1, key: unknown, value: unknown, options: WriteOptions | undefined): Promise<number> {
    if (this.#isClosing()) return Promise.reject(closedError('database'))
    try {
      let sync = this.#sync
      let signal: AbortSignal | undefined
      if (options !== undefined) {
        sync = checkSync(options, this.#sync)
        signal = checkSignal(options)
      }
      const k = typeof key === 'string' || !(key instanceof Uint8Array) ? keyBytes('key', key) : key
      if (k.byteLength > KEY_BYTES_MAX) keyBytes('key', k)
      let v: Uint8Array | undefined
      if (kind === 1) v = value instanceof Uint8Array ? value : valueBytes('value', value)
      const len = 1 + opBytes(k, v)
      if (len > this.#maxBatchBytes) {
        throw new UringdbError('ERR_URINGDB_RECORD_TOO_LARGE', `a write of ${len} bytes exceeds the limit of ${this.#maxBatchBytes} bytes`)
      }
      // Refused now if a prepared transaction holds the key (see `Db.prepare`).
      if (this.#locked[0] !== 0) this.#native.checkKey(k)
      if (signal === undefined && this.#gate.open(len)) return this.#enterSingle(kind, k, v, len, sync, undefined)
      return this.#singleLater(kind, k, v, len, sync, signal)
    } catch (err) {
      return Promise.reject(toUringdbError(err))
    }
  }

  // Apart from #enterSingle, which then captures nothing in a closure (see #singleLater).
  #parkSingle(kind: 0 | 1, k: Uint8Array, v: Uint8Array | undefined, len: number, sync: boolean, token: object | undefined): Promise<number> {
    return this.#park(len, sync, (b, to) => encodeSingle(b, to, kind, k, v), token)
  }

  /** Stages, hands over or parks one put or delete (it passed the gate). */
  #enterSingle(kind: 0 | 1, k: Uint8Array, v: Uint8Array | undefined, len: number, sync: boolean, token: object | undefined): Promise<number> {
    const at = this.#parked.any ? PARK : this.#reserve(len)
    if (at === PARK) return this.#parkSingle(kind, k, v, len, sync, token)
    if (at < 0) {
      const payload = Buffer.allocUnsafe(len)
      encodeSingle(payload, 0, kind, k, v)
      return this.#enterPayload(payload, sync, token)
    }
    encodeSingle(this.#stage.buffer(), at, kind, k, v)
    return this.#commitStaged(len, sync, token)
  }
}
