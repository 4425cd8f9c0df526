/**
 * Argument checks shared by the products: each throws ERR_URINGDB_INVALID_ARGUMENT naming
 * the argument.
 *
 * @module
 */
import { invalidArgument } from './errors.js'
import type { Encoding, WriteOptions } from './options.js'

/** Checks the directory argument of an open. */
export function checkDir(dir: unknown): void {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw invalidArgument(`dir must be a non-empty string, got ${describe(dir)}`)
  }
}

export function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
}

// A lone UTF-16 surrogate has no UTF-8 encoding: Buffer.from replaces each with U+FFFD, so
// distinct strings ('\uD800', '\uDBFF') would become the same key or an altered value.
// Strings are therefore rejected rather than encoded lossily. isWellFormed (Node 20+, V8
// 11.3) scans in native code; the regex is the fallback for engines without it.
export const isWellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as string & { isWellFormed(): boolean }).isWellFormed()
    : (s) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s)

/** Throws ERR_URINGDB_INVALID_ARGUMENT naming `name` if `s` holds a lone surrogate. */
export function checkWellFormed(name: string, s: string): void {
  if (!isWellFormed(s)) {
    throw invalidArgument(`${name} is a string with a lone UTF-16 surrogate, which has no UTF-8 encoding; pass a Buffer for binary data`)
  }
}

export function checkSeq(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw invalidArgument(`${name} must be a non-negative safe integer, got ${typeof v === 'number' ? v : typeof v}`)
  }
  return v
}

export function checkOptions(name: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) {
    throw invalidArgument(`${name} must be an object, got ${describe(v)}`)
  }
}

export function checkBatchSize(v: unknown): number {
  if (v === undefined) return 1024
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1_000_000) {
    throw invalidArgument(`batchSize must be an integer between 1 and 1000000, got ${String(v)}`)
  }
  return v
}


export const KEY_BYTES_MAX = 64 * 1024

export function keyBytes(name: string, k: unknown): Buffer {
  let b: Buffer
  if (typeof k === 'string') {
    checkWellFormed(name, k)
    b = Buffer.from(k, 'utf8')
  } else if (k instanceof Uint8Array) b = Buffer.from(k.buffer, k.byteOffset, k.byteLength)
  else throw invalidArgument(`${name} must be a Buffer, Uint8Array or string, got ${describe(k)}`)
  if (b.byteLength > KEY_BYTES_MAX) {
    throw invalidArgument(`${name} of ${b.byteLength} bytes is larger than the limit of ${KEY_BYTES_MAX} bytes`)
  }
  return b
}

export function valueBytes(name: string, v: unknown): Buffer {
  if (typeof v === 'string') {
    checkWellFormed(name, v)
    return Buffer.from(v, 'utf8')
  }
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  throw invalidArgument(`${name} must be a Buffer, Uint8Array or string, got ${describe(v)}`)
}

export function checkEncoding(name: string, e: unknown): Encoding {
  if (e === undefined || e === 'buffer' || e === 'binary' || e === 'view') return 'buffer'
  if (e === 'utf8' || e === 'utf-8') return 'utf8'
  throw invalidArgument(`${name} must be 'buffer' or 'utf8', got ${String(e)}`)
}

export function checkSync(options: WriteOptions | undefined, dflt: boolean): boolean {
  checkOptions('options', options)
  const s: unknown = options?.sync ?? dflt
  if (typeof s !== 'boolean') throw invalidArgument(`options.sync must be a boolean, got ${describe(s)}`)
  return s
}

/** `options.signal`: undefined or an AbortSignal. */
export function checkSignal(options: { signal?: unknown } | undefined): AbortSignal | undefined {
  const s = options?.signal
  if (s === undefined || s instanceof AbortSignal) return s
  throw invalidArgument(`options.signal must be an AbortSignal, got ${describe(s)}`)
}
