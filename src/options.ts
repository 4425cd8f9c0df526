/**
 * Options: the zod schemas validated at open ({@link LogOptionsSchema},
 * {@link DbOptionsSchema}) and the types of the per-call options.
 *
 * @module
 */
import { z } from 'zod'
import { UringdbError, type AbortError } from './errors.js'
import type * as native from '../binding.js'
import type { Snapshot } from './snapshot.js'

export const MiB = 1024 * 1024


// The options of the write-ahead log, shared by the two schemas (each lists them in its own
// order, which decides the field an error names first).
const ioBackendOption = z.enum(['auto', 'io_uring', 'portable']).default('auto')
const segmentBytesOption = z
  .number()
  .int()
  .min(1 * MiB)
  .max(4096 * MiB)
  .multipleOf(8)
  .default(64 * MiB)
const ringBytesOption = z
  .number()
  .int()
  .min(1 * MiB)
  .max(1024 * MiB)
  .refine((n) => (n & (n - 1)) === 0, { message: 'must be a power of two' })
  .default(32 * MiB)
const commitDelayUsOption = z.number().int().min(0).max(100_000).default(0)
const recoveryOption = z.enum(['strict', 'tolerant']).default('strict')
// A bound of the façade alone (it is not an engine option: the engine bounds its own queues
// by ringBytes; this bounds what a handle holds besides, staged and parked in JavaScript).
// The default is twice the default ring: a handle may fill the ring and hold as much again,
// so it never waits on this bound where it would not wait on the ring anyway.
const maxPendingBytesOption = z
  .number()
  .int()
  .min(1)
  .max(2 ** 40)
  .default(64 * MiB)

/**
 * Options of {@link openLog}, as a zod schema: validated at open; unknown keys are
 * rejected. The TypeScript type {@link LogOptions} is inferred from it.
 */
export const LogOptionsSchema = z
  .object({
    /** Default for {@link Log.append}: resolve only after fdatasync covered the record. */
    sync: z.boolean().default(true),
    /** I/O backend: `auto` probes io_uring at open and falls back to `portable`. */
    ioBackend: ioBackendOption,
    /** Preallocated size of one segment file, in bytes (a multiple of 8). */
    segmentBytes: segmentBytesOption,
    /** Largest record, in bytes. Default: 8 MiB, or less when `segmentBytes`/`ringBytes` are small. */
    maxRecordBytes: z.number().int().min(1).optional(),
    /** Capacity of the commit queue in bytes, a power of two. Appends wait (back-pressure) when it is full. */
    ringBytes: ringBytesOption,
    /** Extra wait, in microseconds, before writing a group that started on an idle log. */
    commitDelayUs: commitDelayUsOption,
    /** `strict`: damage followed by valid records is an error; `tolerant`: cut the log at the damage. */
    recovery: recoveryOption,
    /**
     * Bytes of appends this handle holds that have not completed (staged, waiting for the
     * commit queue, or being written) at most; more appends wait as pending promises, in
     * order. A record larger than this is taken when nothing else is pending.
     */
    maxPendingBytes: maxPendingBytesOption,
  })
  .strict()

/** Options of {@link openLog} (all optional). */
export type LogOptions = z.input<typeof LogOptionsSchema>

/** Validates options against `schema`; the error names the first offending field. */
export function parseOptions<S extends z.ZodType>(schema: S, options: unknown): z.output<S> {
  const parsed = schema.safeParse(options ?? {})
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const field = issue.path.length > 0 ? String(issue.path[0]) : (issue.code === 'unrecognized_keys' ? String(issue.keys[0]) : 'options')
    throw new UringdbError('ERR_URINGDB_INVALID_OPTION', `invalid option ${field}: ${issue.message}`, { field })
  }
  return parsed.data
}

const compressionEnum = z.enum(['none', 'lz4', 'zstd'])

/**
 * Options of {@link open}, as a zod schema: validated at open; unknown keys are rejected
 * and errors name the field. The TypeScript type {@link DbOptions} is inferred from it.
 */
export const DbOptionsSchema = z
  .object({
    /** Default durability of writes: resolve only after fdatasync covered them. */
    sync: z.boolean().default(true),
    /** I/O backend: `auto` probes io_uring at open and falls back to `portable`. */
    ioBackend: ioBackendOption,
    /** `strict`: damage in the log followed by valid records is an error; `tolerant`: cut there. */
    recovery: recoveryOption,
    /** Preallocated size of one log segment, in bytes. */
    segmentBytes: segmentBytesOption,
    /** Capacity of the commit queue in bytes, a power of two. */
    ringBytes: ringBytesOption,
    /** Extra wait, in microseconds, before writing a group that started on an idle log. */
    commitDelayUs: commitDelayUsOption,
    /** Memtable size at which it is flushed to a table, in bytes. */
    memtableBytes: z.number().int().min(64 * 1024).max(4096 * MiB).default(64 * MiB),
    /** Memtables waiting for flush at which writes stop. */
    maxImmutableMemtables: z.number().int().min(1).max(16).default(2),
    /** Level-0 tables that trigger a compaction into level 1. */
    l0CompactionTrigger: z.number().int().min(1).max(1000).default(4),
    /** Level-0 tables at which writes are slowed. */
    l0SlowdownTrigger: z.number().int().min(1).max(1000).default(12),
    /** Level-0 tables at which writes stop until compaction catches up. */
    l0StopTrigger: z.number().int().min(1).max(1000).default(20),
    /** Target size of level 1 in bytes; each deeper level is `levelMultiplier` times larger. */
    levelBaseBytes: z.number().int().min(1 * MiB).max(2 ** 40).default(256 * MiB),
    /** Size ratio between adjacent levels. */
    levelMultiplier: z.number().int().min(2).max(100).default(10),
    /** Size of one table written by compaction, in bytes. */
    targetFileBytes: z.number().int().min(64 * 1024).max(4096 * MiB).default(64 * MiB),
    /** Block compression: one for all levels, or one per level (the last applies below). */
    compression: z
      .union([compressionEnum, z.array(compressionEnum).min(1).max(7)])
      .default(['none', 'none', 'lz4']),
    /** Bloom filter bits per key (0 disables filters). */
    bloomBitsPerKey: z.number().int().min(0).max(32).default(10),
    /** Target size of a data block, in bytes. */
    blockBytes: z.number().int().min(256).max(16 * MiB).default(4096),
    /** Block cache capacity, in bytes (0 disables it). */
    cacheBytes: z.number().int().min(0).max(2 ** 40).default(64 * MiB),
    /** Background compaction threads. */
    compactionThreads: z.number().int().min(1).max(64).default(1),
    /** Bytes per second flush and compaction may write (0: unlimited). */
    compactionRateBytesPerSec: z
      .number()
      .int()
      .min(0)
      .max(2 ** 50)
      .refine((n) => n === 0 || n >= MiB, { message: 'must be 0 (unlimited) or at least 1048576' })
      .default(0),
    /**
     * Table files kept open at most (the least recently used beyond it are closed and
     * reopened when read); also at most half the process's open-file limit (`ulimit -n`).
     */
    maxOpenFiles: z.number().int().min(16).max(2 ** 20).default(1000),
    /**
     * Bytes of writes this handle holds that have not completed (staged, waiting for the
     * commit queue, or being written) at most; more writes wait as pending promises, in
     * order. A write larger than this is taken when nothing else is pending.
     */
    maxPendingBytes: maxPendingBytesOption,
    /**
     * Threads serving async reads (`get`, `getMany`, iterator batches) off the JavaScript
     * thread; 0: one per core but one (the JavaScript thread keeps a core), at least 1 and
     * at most 4. The pool is shared by every database and log of
     * the process and grows to the largest count any open asked for.
     */
    readerThreads: z.number().int().min(0).max(64).default(0),
  })
  .strict()

/** Options of {@link open} (all optional). */
export type DbOptions = z.input<typeof DbOptionsSchema>

/** The parsed options of a log as the engine takes them. */
export function nativeLogOptions(o: z.output<typeof LogOptionsSchema>): native.NativeLogOptions {
  return {
    ioBackend: o.ioBackend,
    segmentBytes: o.segmentBytes,
    ringBytes: o.ringBytes,
    ...(o.maxRecordBytes === undefined ? {} : { maxRecordBytes: o.maxRecordBytes }),
    commitDelayUs: o.commitDelayUs,
    recovery: o.recovery,
  }
}

/**
 * Parsed database options as the engine takes them: the same names, less `sync` and
 * `maxPendingBytes` (the façade's own).
 */
export function nativeDbOptions(o: z.output<typeof DbOptionsSchema>): native.NativeDbOptions {
  const { sync: _sync, maxPendingBytes: _maxPendingBytes, compression, ...rest } = o
  return { ...rest, compression: typeof compression === 'string' ? [compression] : compression }
}

/**
 * `true` exactly when `A` and `B` are the same type: the compiler checks the façade's types
 * against the generated binding.d.ts with it (`const _x: Same<A, B> = true`).
 */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false

// The enum options are the binding's string enums.
const _ioBackend: Same<z.output<typeof ioBackendOption>, native.IoBackend> = true
const _recovery: Same<z.output<typeof recoveryOption>, native.Recovery> = true
const _compression: Same<z.output<typeof compressionEnum>, native.Compression> = true
void [_ioBackend, _recovery, _compression]

/** Options of one append. */
export interface AppendOptions {
  /** Override the log's `sync` default for this call. */
  sync?: boolean
  /**
   * Cancels the append while it has not entered the commit queue (staged in this tick,
   * parked behind a full queue, or waiting for `maxPendingBytes` room): it then rejects
   * with an {@link AbortError} and nothing of it is logged. Once in the commit queue it is
   * written whole (or fails whole) and the signal is ignored. An already aborted signal
   * rejects at once.
   */
  signal?: AbortSignal
}

/** Options of {@link Log.read}. */
export interface ReadOptions {
  /** First sequence number (inclusive). Default: the first record in the log. */
  from?: number
  /** End (exclusive). Default: one past the last durable record when the read starts. */
  to?: number
  /** Records fetched per crossing into the engine. Default 1024. */
  batchSize?: number
}

/** Options of {@link Log.tail}. */
export interface TailOptions {
  /** First sequence number (inclusive). Default: the next record to be appended. */
  from?: number
  /** Ends the iteration when aborted. */
  signal?: AbortSignal
  /** Records fetched per crossing into the engine. Default 1024. */
  batchSize?: number
}


/** A key or value: bytes, or a string (encoded as UTF-8). */
export type Bytes = Uint8Array | string

/** How values (and keys, for iterators) come out: `buffer` (default) or `utf8` strings. */
export type Encoding = 'buffer' | 'utf8'

/** Options of one write. */
export interface WriteOptions {
  /** Override the database's `sync` default for this write. */
  sync?: boolean
  /**
   * Cancels the write while it has not entered the commit queue (staged in this tick,
   * parked behind a full queue, or waiting for `maxPendingBytes` room): it then rejects
   * with an {@link AbortError} and leaves no trace. Once in the commit queue it commits or
   * fails whole and the signal is ignored. An already aborted signal rejects at once.
   */
  signal?: AbortSignal
}

/** Options of a point read. */
export interface GetOptions<E extends Encoding = 'buffer'> {
  /** Read at this snapshot instead of the current state. */
  snapshot?: Snapshot
  /** `utf8` returns strings. */
  encoding?: E
}

/** One operation of {@link Db.batch}. */
export type BatchOperation =
  | { type: 'put'; key: Bytes; value: Bytes }
  | { type: 'del'; key: Bytes }
  /**
   * Appends `value` to the stream `stream` (see {@link Db.stream}); the entry's seq is the
   * stream's next, assigned when the batch is applied (in a `prepare`: when its
   * `commitPrepared` is applied; a rollback assigns none). Accepted by `batch` and `prepare`
   * (not yet by a transaction). The state and stream operations of one batch are one log
   * record: durable under one fdatasync, all or nothing across a crash.
   */
  | { type: 'append'; stream: string; value: Bytes }

/** A key range: any of `gt`/`gte` and `lt`/`lte` (absent: unbounded). */
export interface Range {
  /** Keys greater than this. */
  gt?: Bytes
  /** Keys greater than or equal to this. */
  gte?: Bytes
  /** Keys less than this. */
  lt?: Bytes
  /** Keys less than or equal to this. */
  lte?: Bytes
}

/** Options of {@link Db.iterator}, {@link Db.keys} and {@link Db.values}. */
export interface IteratorOptions extends Range {
  /** Descending key order. */
  reverse?: boolean
  /** At most this many entries (-1 or Infinity: no limit). */
  limit?: number
  /** Read at this snapshot (otherwise the iterator takes its own at creation). */
  snapshot?: Snapshot
  /** Key encoding of the entries returned. */
  keyEncoding?: Encoding
  /** Value encoding of the entries returned. */
  valueEncoding?: Encoding
}

/**
 * Options of {@link Db.rangeSync}: the range options of {@link Db.iterator}, and what each
 * step yields.
 */
export interface RangeSyncOptions extends IteratorOptions {
  /**
   * Yield keys (default `true`). With `keys: false` each step yields the value alone
   * (`keys` and `values` cannot both be `false`).
   */
  keys?: boolean
  /**
   * Yield values (default `true`). With `values: false` each step yields the key alone and
   * the engine does not copy values out (the fastest key scan).
   */
  values?: boolean
  /**
   * Yield Buffers that are views of one batch buffer that the range reuses (default
   * `false`): no buffer is allocated per batch, but a yielded Buffer is valid only until
   * the next step of the range (copy it to keep it). Strings (`utf8`) are unaffected.
   * Without `views`, each yielded Buffer stays valid (it is a view of a batch buffer that is
   * never reused, which it keeps alive).
   */
  views?: boolean
}

/** Options of {@link Db.clear}. */
export interface ClearOptions extends Range {
  /** Override the database's `sync` default for the deletions. */
  sync?: boolean
  /** Delete keys from the high end (only matters with `limit`). */
  reverse?: boolean
  /** Delete at most this many keys. */
  limit?: number
  /** Delete the keys in the range as of this snapshot (keys written later are kept). */
  snapshot?: Snapshot
}

