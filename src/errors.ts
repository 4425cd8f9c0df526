/**
 * Errors: {@link UringdbError}, its codes, and the one place where native errors become
 * UringdbErrors.
 *
 * @module
 */
import type * as native from '../binding.js'

/** Stable error codes (besides OS error names such as `ENOSPC` and `EIO`). */
export type UringdbErrorCode =
  | 'ERR_URINGDB_INVALID_OPTION'
  | 'ERR_URINGDB_INVALID_ARGUMENT'
  | 'ERR_URINGDB_RECORD_TOO_LARGE'
  | 'ERR_URINGDB_CLOSED'
  /** `flushSync()` on a log destination whose store is still opening (wait for `ready`). */
  | 'ERR_URINGDB_NOT_READY'
  | 'ERR_URINGDB_LOCKED'
  | 'ERR_URINGDB_CORRUPTION'
  | 'ERR_URINGDB_FAILED'
  | 'ERR_URINGDB_TRUNCATED'
  | 'ERR_URINGDB_IO_URING_UNAVAILABLE'
  | 'ERR_URINGDB_PANIC'
  | 'ERR_URINGDB_IO'
  /** A bug in uringdb (an engine state the binding did not expect); please report it. */
  | 'ERR_URINGDB_INTERNAL'
  /**
   * Retryable: the process-wide reader queue is full (`READER_QUEUE_JOBS_MAX`, 1024 jobs).
   * Each handle keeps its own multi-gets far below that (the excess waits), so this needs
   * many handles or concurrent readers at once; retry once earlier reads have completed.
   */
  | 'ERR_URINGDB_BUSY'
  /**
   * A write (`put`, `del`, `batch`, `prepare`, a `transaction`'s commit) of a key that a
   * prepared transaction holds ({@link UringdbError.conflict} `'prepared-lock'`;
   * {@link UringdbError.txid} names the holder: retry after it is committed or rolled
   * back), or a `transaction` whose every attempt read a key that another commit wrote
   * after the attempt's snapshot (`'read-set'`). {@link UringdbError.key} names the key.
   */
  | 'ERR_URINGDB_CONFLICT'
  /** `prepare` with a txid that is already prepared; {@link UringdbError.txid} names it. */
  | 'ERR_URINGDB_TXN_EXISTS'
  /**
   * `commitPrepared` or `rollbackPrepared` of a txid that is not prepared (unknown, already
   * finished or being finished, or its `prepare` was not yet handed to the log: await it
   * first); {@link UringdbError.txid} names it.
   */
  | 'ERR_URINGDB_TXN_NOT_FOUND'
  /** A write cancelled by its `AbortSignal` (an {@link AbortError}). */
  | 'ABORT_ERR'

/**
 * Every error uringdb throws or rejects with. `code` is stable; the other properties are
 * present where they apply.
 */
export class UringdbError extends Error {
  /** A {@link UringdbErrorCode} or an OS error name such as `ENOSPC` or `EIO`. */
  readonly code: UringdbErrorCode | (string & {})
  /** For `ERR_URINGDB_INVALID_OPTION`: the option's name. */
  readonly field?: string
  /** For `ERR_URINGDB_CORRUPTION`: the damaged file. */
  readonly file?: string
  /** For `ERR_URINGDB_CORRUPTION`: the byte offset of the damage in {@link UringdbError.file}. */
  readonly offset?: number
  /** For OS errors: the errno. */
  readonly errno?: number
  /** For `ERR_URINGDB_CONFLICT` (the holder), `ERR_URINGDB_TXN_EXISTS`, `ERR_URINGDB_TXN_NOT_FOUND`: the txid. */
  readonly txid?: string
  /** For `ERR_URINGDB_CONFLICT`: the key. */
  readonly key?: Buffer
  /**
   * For `ERR_URINGDB_CONFLICT`: `'prepared-lock'` (a prepared transaction holds the key) or
   * `'read-set'` (a transaction read the key, and another commit wrote it after the
   * snapshot).
   */
  readonly conflict?: 'prepared-lock' | 'read-set'

  /** @internal */
  constructor(
    code: string,
    message: string,
    details: {
      field?: string
      file?: string
      offset?: number
      errno?: number
      txid?: string
      key?: Buffer
      conflict?: 'prepared-lock' | 'read-set'
      cause?: unknown
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'UringdbError'
    this.code = code
    if (details.field !== undefined) this.field = details.field
    if (details.file !== undefined) this.file = details.file
    if (details.offset !== undefined) this.offset = details.offset
    if (details.errno !== undefined) this.errno = details.errno
    if (details.txid !== undefined) this.txid = details.txid
    if (details.key !== undefined) this.key = details.key
    if (details.conflict !== undefined) this.conflict = details.conflict
  }
}

/**
 * A write cancelled by its `signal` before it entered the commit ring, as Node's APIs
 * reject: `name` is `'AbortError'`, `code` is `'ABORT_ERR'`, and `cause` is the signal's
 * reason. Nothing of the write was logged. Also a {@link UringdbError}.
 */
export class AbortError extends UringdbError {
  /** @internal */
  constructor(reason: unknown) {
    super('ABORT_ERR', 'The operation was aborted', { cause: reason })
    this.name = 'AbortError'
  }
}

/** The `name` of the errors the binding throws (errors.rs `NATIVE_ERROR_NAME`). */
const NATIVE_ERROR_NAME = 'UringdbNativeError'

/** A {@link UringdbError} from the binding's typed error (a callback's or a thrown one's). */
export function fromNative(n: native.NativeError): UringdbError {
  return new UringdbError(n.code, n.message, {
    field: n.field,
    file: n.file,
    offset: n.offset,
    errno: n.errno,
    txid: n.txid,
    key: n.key === undefined || n.key === null ? undefined : Buffer.from(n.key),
    conflict: n.conflict === 'read-set' || n.conflict === 'prepared-lock' ? n.conflict : undefined,
    cause: n.cause === undefined ? undefined : fromNative(n.cause),
  })
}

function isNative(e: unknown): e is Error & native.NativeError {
  return e instanceof Error && e.name === NATIVE_ERROR_NAME && typeof (e as { code?: unknown }).code === 'string'
}

/** The one place where native errors become {@link UringdbError}s. */
export function toUringdbError(e: unknown): UringdbError {
  if (e instanceof UringdbError) return e
  if (isNative(e)) return fromNative(e)
  // Argument conversion errors raised by the binding layer itself.
  return new UringdbError('ERR_URINGDB_INVALID_ARGUMENT', e instanceof Error ? e.message : String(e), { cause: e })
}

export function invalidArgument(message: string): UringdbError {
  return new UringdbError('ERR_URINGDB_INVALID_ARGUMENT', message)
}

/** ERR_URINGDB_CLOSED (the one place it is built): `the log is closed`, `the database is closed`. */
export function closedError(what: 'log' | 'database', state = 'is closed'): UringdbError {
  return new UringdbError('ERR_URINGDB_CLOSED', `the ${what} ${state}`)
}

/** How many entries of a packed write the engine accepted before the error `e` (0 if it says nothing). */
export function acceptedBefore(e: unknown): number {
  return isNative(e) && typeof e.accepted === 'number' ? e.accepted : 0
}
