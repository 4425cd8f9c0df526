/**
 * Errors: {@link UringdbError}, its codes, and the one place where native errors become
 * UringdbErrors.
 *
 * @module
 */

/** Stable error codes (besides OS error names such as `ENOSPC` and `EIO`). */
export type UringdbErrorCode =
  | 'ERR_URINGDB_INVALID_OPTION'
  | 'ERR_URINGDB_INVALID_ARGUMENT'
  | 'ERR_URINGDB_RECORD_TOO_LARGE'
  | 'ERR_URINGDB_CLOSED'
  | 'ERR_URINGDB_LOCKED'
  | 'ERR_URINGDB_CORRUPTION'
  | 'ERR_URINGDB_FAILED'
  | 'ERR_URINGDB_TRUNCATED'
  | 'ERR_URINGDB_IO_URING_UNAVAILABLE'
  | 'ERR_URINGDB_PANIC'
  | 'ERR_URINGDB_IO'
  /**
   * Retryable: the process-wide reader queue is full (`READER_QUEUE_JOBS_MAX`, 1024 jobs).
   * Each handle keeps its own multi-gets far below that (the excess waits), so this needs
   * many handles or concurrent readers at once; retry once earlier reads have completed.
   */
  | 'ERR_URINGDB_BUSY'

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

  /** @internal */
  constructor(
    code: string,
    message: string,
    details: { field?: string; file?: string; offset?: number; errno?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'UringdbError'
    this.code = code
    if (details.field !== undefined) this.field = details.field
    if (details.file !== undefined) this.file = details.file
    if (details.offset !== undefined) this.offset = details.offset
    if (details.errno !== undefined) this.errno = details.errno
  }
}

interface NativeErrorJson {
  code: string
  message: string
  field?: string
  file?: string
  offset?: number
  errno?: number
  cause?: NativeErrorJson
}

function fromJson(j: NativeErrorJson): UringdbError {
  return new UringdbError(j.code, j.message, {
    field: j.field,
    file: j.file,
    offset: j.offset,
    errno: j.errno,
    cause: j.cause === undefined ? undefined : fromJson(j.cause),
  })
}

/** The one place where native errors become {@link UringdbError}s. */
export function toUringdbError(e: unknown): UringdbError {
  if (e instanceof UringdbError) return e
  const message = e instanceof Error ? e.message : String(e)
  if (message.startsWith('{')) {
    try {
      return fromJson(JSON.parse(message) as NativeErrorJson)
    } catch {
      // fall through: not one of ours
    }
  }
  // Argument conversion errors raised by the binding layer itself.
  return new UringdbError('ERR_URINGDB_INVALID_ARGUMENT', message, { cause: e })
}

export function invalidArgument(message: string): UringdbError {
  return new UringdbError('ERR_URINGDB_INVALID_ARGUMENT', message)
}

/** ERR_URINGDB_CLOSED (the one place it is built): `the log is closed`, `the database is closed`. */
export function closedError(what: 'log' | 'database', state = 'is closed'): UringdbError {
  return new UringdbError('ERR_URINGDB_CLOSED', `the ${what} ${state}`)
}

export function nativeDetail(e: unknown, key: string): unknown {
  const message = e instanceof Error ? e.message : ''
  if (!message.startsWith('{')) return undefined
  try {
    return (JSON.parse(message) as Record<string, unknown>)[key]
  } catch {
    return undefined
  }
}
