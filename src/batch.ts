/**
 * The batch format and its encoder, and {@link ChainedBatch}.
 *
 * @module
 */
import { toUringdbError, invalidArgument } from './errors.js'
import { keyBytes, valueBytes } from './args.js'
import type { Bytes, WriteOptions } from './options.js'

export const BATCH_TAG = 0xb1

/** Encodes a put (kind 1) or delete (kind 0) batch payload of one entry at `at`. */
export function encodeSingle(b: Buffer, at: number, kind: 0 | 1, k: Uint8Array, v: Uint8Array | undefined): void {
  const head = kind === 1 ? 9 : 5
  b[at] = BATCH_TAG
  b[at + 1] = kind
  b.writeUInt32LE(k.byteLength, at + 2)
  if (kind === 1) b.writeUInt32LE((v as Uint8Array).byteLength, at + 6)
  b.set(k, at + 1 + head)
  if (v !== undefined) b.set(v, at + 1 + head + k.byteLength)
}

/** Encodes batch operations (the format of `uringdb_lsm::db::batch`; validated again natively). */
export class BatchEncoder {
  buf: Buffer
  len = 1
  count = 0
  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity)
    this.buf[0] = BATCH_TAG
  }
  #reserve(n: number): void {
    if (this.len + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n))
    this.buf.copy(next, 0, 0, this.len)
    this.buf = next
  }
  put(k: Buffer, v: Buffer): void {
    this.#reserve(9 + k.length + v.length)
    const b = this.buf
    b[this.len] = 1
    b.writeUInt32LE(k.length, this.len + 1)
    b.writeUInt32LE(v.length, this.len + 5)
    k.copy(b, this.len + 9)
    v.copy(b, this.len + 9 + k.length)
    this.len += 9 + k.length + v.length
    this.count++
  }
  del(k: Buffer): void {
    this.#reserve(5 + k.length)
    const b = this.buf
    b[this.len] = 0
    b.writeUInt32LE(k.length, this.len + 1)
    k.copy(b, this.len + 5)
    this.len += 5 + k.length
    this.count++
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.len)
  }
}

/**
 * @internal What a {@link ChainedBatch} writes through: the {@link Db} (an interface, so that
 * this module does not import db.ts).
 */
export interface BatchWriter {
  _write(payload: Buffer, options: WriteOptions | undefined): Promise<number>
}

/** A chained batch: collect operations, then {@link ChainedBatch.write} them atomically. */
export class ChainedBatch {
  readonly #db: BatchWriter
  #enc = new BatchEncoder()
  #written = false
  /** @internal */
  constructor(db: BatchWriter) {
    this.#db = db
  }
  /** Adds a put. */
  put(key: Bytes, value: Bytes): this {
    this.#check()
    this.#enc.put(keyBytes('key', key), valueBytes('value', value))
    return this
  }
  /** Adds a delete. */
  del(key: Bytes): this {
    this.#check()
    this.#enc.del(keyBytes('key', key))
    return this
  }
  /** Removes every operation added so far. */
  clear(): this {
    this.#check()
    this.#enc = new BatchEncoder()
    return this
  }
  /** Operations added. */
  get length(): number {
    return this.#enc.count
  }
  /** Writes all operations atomically (all or nothing, also across a crash). */
  write(options?: WriteOptions): Promise<void> {
    try {
      this.#check()
      this.#written = true
      if (this.#enc.count === 0) return Promise.resolve()
      return this.#db._write(this.#enc.bytes(), options).then(() => undefined)
    } catch (e) {
      return Promise.reject(toUringdbError(e))
    }
  }
  #check(): void {
    if (this.#written) throw invalidArgument('the batch was already written')
  }
}
