/**
 * The batch format and its encoder, and {@link ChainedBatch}.
 *
 * @module
 */
import { toUringdbError, invalidArgument } from './errors.js'
import { keyBytes, valueBytes, describe } from './args.js'
import type { Bytes, WriteOptions } from './options.js'

/**
 * The write-batch format: the payload of one write-ahead-log record, defined by
 * `crates/lsm/src/db/batch.rs` (`uringdb_lsm::db::batch`), which validates every byte of it
 * again before it is logged. A put, a delete or a batch of them is one record, so it is
 * atomic; within one batch a later operation on the same key wins.
 *
 * ```text
 * record payload:
 * +------+------------------------------------------------------------+
 * | 0xB1 | op op op ...                                               |
 * +------+------------------------------------------------------------+
 * op (put):    | 1 | klen u32 LE | vlen u32 LE | key (klen) | value (vlen) |
 * op (delete): | 0 | klen u32 LE | key (klen)                              |
 * op (append): | 2 | slen u32 LE | vlen u32 LE | appended_at u64 LE | stream | value |
 * ```
 * (The operations' home is `crates/lsm/src/db/op.rs`; kinds 3 and 4, cursor and truncate,
 * are not written yet.)
 */
/** First byte of a version-1 batch (`BATCH_TAG` in batch.rs). */
export const BATCH_TAG = 0xb1
/** Operation kinds (`OP_PUT`, `OP_DELETE` in batch.rs). */
const OP_PUT = 1
const OP_DELETE = 0
const OP_APPEND = 2

/** Longest stream name, in bytes (`STREAM_NAME_BYTES_MAX` in limits.rs). */
export const STREAM_NAME_BYTES_MAX = 128
const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/

/**
 * @internal A stream name's bytes, checked against the engine's rules (op.rs: 1..128 ASCII
 * letters, digits and `. _ : / -`, a letter or digit first); an error names `field`.
 */
export function streamNameBytes(field: string, name: unknown): Buffer {
  if (typeof name !== 'string') throw invalidArgument(`${field} must be a string, got ${describe(name)}`)
  if (name.length === 0 || name.length > STREAM_NAME_BYTES_MAX) {
    throw invalidArgument(`${field} must be 1..${STREAM_NAME_BYTES_MAX} characters, got ${name.length}`)
  }
  if (!STREAM_NAME.test(name)) {
    throw invalidArgument(`${field} must be ASCII letters, digits and . _ : / - starting with a letter or digit, got ${JSON.stringify(name)}`)
  }
  return Buffer.from(name, 'latin1')
}

/** Bytes of one operation: its header (kind and lengths) and its key and value. */
export function opBytes(k: Uint8Array, v: Uint8Array | undefined): number {
  return (v === undefined ? 5 : 9) + k.byteLength + (v?.byteLength ?? 0)
}

/**
 * Writes one operation at `at` — a put of `k` to `v`, or a delete of `k` when `v` is
 * undefined — and returns its length. The one place the operation layout is written.
 */
function writeOp(b: Buffer, at: number, k: Uint8Array, v: Uint8Array | undefined): number {
  const head = v === undefined ? 5 : 9
  b[at] = v === undefined ? OP_DELETE : OP_PUT
  b.writeUInt32LE(k.byteLength, at + 1)
  if (v !== undefined) b.writeUInt32LE(v.byteLength, at + 5)
  b.set(k, at + head)
  if (v !== undefined) b.set(v, at + head + k.byteLength)
  return head + k.byteLength + (v?.byteLength ?? 0)
}

/**
 * Encodes the payload of a batch of one put (kind 1) or delete (kind 0) at `at`: the tag
 * and one operation (1 + {@link opBytes} bytes).
 */
export function encodeSingle(b: Buffer, at: number, kind: 0 | 1, k: Uint8Array, v: Uint8Array | undefined): void {
  b[at] = BATCH_TAG
  writeOp(b, at + 1, k, kind === 1 ? (v as Uint8Array) : undefined)
}

/** Encodes a batch of operations into a growing buffer. */
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
    this.#reserve(opBytes(k, v))
    this.len += writeOp(this.buf, this.len, k, v)
    this.count++
  }
  del(k: Buffer): void {
    this.#reserve(opBytes(k, undefined))
    this.len += writeOp(this.buf, this.len, k, undefined)
    this.count++
  }
  /** An append of `v` to stream `s` (checked bytes), stamped with this process's clock. */
  append(s: Buffer, v: Buffer): void {
    this.#reserve(17 + s.length + v.length)
    const b = this.buf
    const at = this.len
    b[at] = OP_APPEND
    b.writeUInt32LE(s.length, at + 1)
    b.writeUInt32LE(v.length, at + 5)
    b.writeBigUInt64LE(BigInt(Date.now()), at + 9)
    b.set(s, at + 17)
    b.set(v, at + 17 + s.length)
    this.len += 17 + s.length + v.length
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

/** Largest txid, in bytes of UTF-8 (`TXID_BYTES_MAX` in batch.rs). */
export const TXID_BYTES_MAX = 256

/** @internal A txid's bytes, checked (an error names the field). */
export function txidBytes(txid: unknown): Buffer {
  if (typeof txid !== 'string') throw invalidArgument(`txid must be a string, got ${describe(txid)}`)
  const b = keyBytes('txid', txid)
  if (b.length === 0 || b.length > TXID_BYTES_MAX) {
    throw invalidArgument(`txid must be 1..${TXID_BYTES_MAX} bytes of UTF-8, got ${b.length}`)
  }
  return b
}

/**
 * @internal `operations` encoded as a batch (an error names the operation and field);
 * `appends`: whether `append` operations are accepted.
 */
export function encodeOperations(operations: readonly unknown[], appends = true): BatchEncoder {
  const e = new BatchEncoder(1024)
  for (let i = 0; i < operations.length; i++) {
    const op: unknown = operations[i]
    if (typeof op !== 'object' || op === null) throw invalidArgument(`operations[${i}] must be an object, got ${describe(op)}`)
    const o = op as { type?: unknown; key?: unknown; value?: unknown; stream?: unknown }
    if (o.type === 'put') e.put(keyBytes(`operations[${i}].key`, o.key), valueBytes(`operations[${i}].value`, o.value))
    else if (o.type === 'del') e.del(keyBytes(`operations[${i}].key`, o.key))
    else if (o.type === 'append' && appends) e.append(streamNameBytes(`operations[${i}].stream`, o.stream), valueBytes(`operations[${i}].value`, o.value))
    else if (o.type === 'append') throw invalidArgument(`operations[${i}].type 'append' is not supported here yet`)
    else throw invalidArgument(`operations[${i}].type must be 'put', 'del' or 'append', got ${String(o.type)}`)
  }
  return e
}
