/**
 * The level adapter: {@link UringLevel}, the key-value database as an abstract-level
 * database (the entry `uringdb/level`, the root level.ts, re-exports it).
 *
 * @module
 */
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import {
  AbstractLevel,
  AbstractIterator,
  AbstractKeyIterator,
  AbstractValueIterator,
  AbstractSnapshot,
  type AbstractDatabaseOptions,
} from 'abstract-level'
import { open, type Db } from './db.js'
import { DbOptionsSchema, type DbOptions, type IteratorOptions, type ClearOptions, type Range } from './options.js'
import type { DbIterator } from './iterator.js'
import type { Snapshot } from './snapshot.js'

/** A key or value as the private API sees it: already encoded by abstract-level. */
/** The forms keys and values take between the adapter and abstract-level. */
export type Data = Buffer | Uint8Array | string

/** The formats this adapter declares (abstract-level's private-API encodings). */
type Format = 'buffer' | 'view' | 'utf8'

/**
 * The file whose presence means "a database exists in this directory": the engine writes it
 * when it creates a database (`CURRENT` names the live manifest, as in LevelDB). Only the
 * `createIfMissing` and `errorIfExists` checks look at it.
 */
const EXISTS_MARKER = 'CURRENT'

/**
 * Options of {@link UringLevel}: the façade's {@link DbOptions} (validated by {@link open},
 * errors naming the field) plus abstract-level's `keyEncoding`, `valueEncoding`,
 * `createIfMissing` (default true) and `errorIfExists` (default false). Options may also be
 * given to `db.open()`. Other keys are left to abstract-level and postopen hooks.
 *
 * Writes default to the façade's `sync: true` (resolve only once durable); pass
 * `sync: false` here, or `{ sync }` per `put`, `del` and `batch`, to trade that for speed.
 */
export type UringLevelOptions<K = string, V = string> = DbOptions & AbstractDatabaseOptions<K, V>

/**
 * What abstract-level's `open()` hands `_open()`: the constructor's options (less the
 * encodings) and `open()`'s, with both flags always set. Userland keys may be among them.
 */
interface PrivateOpenOptions extends Record<string, unknown> {
  createIfMissing: boolean
  errorIfExists: boolean
}

/**
 * The façade's option names, from its schema. Only these are passed to {@link open}: the
 * others are abstract-level's or userland's (abstract-level hands every option to `open()`
 * and to postopen hooks, so an unknown key is not an error here, as in classic-level).
 */
const DB_OPTION_KEYS: ReadonlySet<string> = new Set(Object.keys(DbOptionsSchema.shape))

/** The façade options among `options`. */
function dbOptions(options: Record<string, unknown>): DbOptions {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(options)) if (DB_OPTION_KEYS.has(key)) out[key] = options[key]
  return out as DbOptions
}

/** Options of the private point reads (`_get`, `_getMany`, `_getSync`, `_has`, `_hasMany`). */
interface PrivateReadOptions {
  valueEncoding?: Format
  snapshot?: AbstractSnapshot
}

/** Options of the private writes (`_put`, `_del`, `_batch`): `sync` is forwarded. */
interface PrivateWriteOptions {
  sync?: boolean
}

/** One operation of `_batch()`: encoded, with its formats (which the façade does not need). */
type PrivateBatchOperation = { type: 'put'; key: Data; value: Data } | { type: 'del'; key: Data }

/** Options of `_iterator()`, `_keys()`, `_values()` and `_clear()`: encoded range, formats. */
interface PrivateRangeOptions extends PrivateWriteOptions {
  gt?: Data
  gte?: Data
  lt?: Data
  lte?: Data
  reverse: boolean
  limit: number
  keyEncoding: Format
  valueEncoding?: Format
  snapshot?: AbstractSnapshot
}

/** A façade iterator's entry as abstract-level's private API yields it. */
type Entry = [Data | undefined, Data | undefined]

/**
 * The error codes the Level ecosystem branches on, for the façade's codes that have one
 * (`rave-level`, for one, waits for `LEVEL_LOCKED`). The one place errors are mapped: the
 * original `UringdbError` stays reachable as `cause`, with its file, offset and errno.
 */
const LEVEL_CODES: Readonly<Record<string, string>> = {
  ERR_URINGDB_LOCKED: 'LEVEL_LOCKED',
  ERR_URINGDB_CORRUPTION: 'LEVEL_CORRUPTION',
  ERR_URINGDB_IO: 'LEVEL_IO_ERROR',
  EIO: 'LEVEL_IO_ERROR',
}

/** An error with a Level code, wrapping `cause`. */
function levelError(code: string, message: string, cause?: unknown): Error & { code: string } {
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code })
}

/** Re-throws a façade error, under its Level code if it has one. */
function rethrow(e: unknown): never {
  const code = (e as { code?: unknown } | null)?.code
  const level = typeof code === 'string' ? LEVEL_CODES[code] : undefined
  if (level === undefined) throw e
  throw levelError(level, (e as Error).message, e)
}

/** The façade's output encoding for a private-API format (`view` is served as `Buffer`s). */
function outputEncoding(format: Format | undefined): 'buffer' | 'utf8' {
  return format === 'utf8' ? 'utf8' : 'buffer'
}

/**
 * AbstractSnapshot's constructor takes `{ owner }` (the database that closes the snapshot
 * with itself; a sublevel passes itself), but abstract-level's typings omit it.
 */
const SnapshotBase = AbstractSnapshot as unknown as new (options: { owner: object }) => AbstractSnapshot

/** An explicit snapshot: abstract-level's reference counting around a façade {@link Snapshot}. */
class UringSnapshot extends SnapshotBase {
  /** The façade snapshot reads are given. */
  readonly handle: Snapshot
  /** The root database that took it (a snapshot is only valid there). */
  readonly root: UringLevel<unknown, unknown>

  constructor(options: { owner: object }, root: UringLevel<unknown, unknown>, handle: Snapshot) {
    super(options)
    this.root = root
    this.handle = handle
  }

  /** Whether {@link UringSnapshot._close} ran (abstract-level closes it once). */
  released = false

  /** Called once, after every read that used the snapshot has settled. */
  async _close(): Promise<void> {
    this.released = true
    this.handle.release()
  }
}

/**
 * The bounds of a private range. abstract-level documents that `gte` and `lte` take
 * precedence over `gt` and `lt`; the façade would prefer `gt`/`lt`, so only one of each
 * pair is passed on.
 */
function bounds(o: PrivateRangeOptions): Range {
  const out: Range = {}
  if (o.gte !== undefined) out.gte = o.gte
  else if (o.gt !== undefined) out.gt = o.gt
  if (o.lte !== undefined) out.lte = o.lte
  else if (o.lt !== undefined) out.lt = o.lt
  return out
}

/** Entries of a façade iterator. The façade fetches them from the engine in batches. */
class UringIterator extends AbstractIterator<UringLevel<unknown, unknown>, Data, Data> {
  readonly #it: DbIterator<unknown, unknown>

  constructor(db: UringLevel<unknown, unknown>, options: PrivateRangeOptions, it: DbIterator<unknown, unknown>) {
    super(db, options as never)
    this.#it = it
  }

  async _next(): Promise<Entry | undefined> {
    return (await this.#it.nextEntry()) as Entry | undefined
  }

  async _nextv(size: number): Promise<Entry[]> {
    return (await this.#it.nextv(size)) as Entry[]
  }

  _seek(target: Data): void {
    this.#it.seek(target)
  }

  async _close(): Promise<void> {
    await this.#it.close()
  }
}

/** Keys of a façade iterator that decodes no values. */
class UringKeyIterator extends AbstractKeyIterator<UringLevel<unknown, unknown>, Data> {
  readonly #it: DbIterator<unknown, unknown>

  constructor(db: UringLevel<unknown, unknown>, options: PrivateRangeOptions, it: DbIterator<unknown, unknown>) {
    super(db, options as never)
    this.#it = it
  }

  async _next(): Promise<Data | undefined> {
    return ((await this.#it.nextEntry()) as Entry | undefined)?.[0]
  }

  async _nextv(size: number): Promise<Data[]> {
    return ((await this.#it.nextv(size)) as Entry[]).map((e) => e[0] as Data)
  }

  _seek(target: Data): void {
    this.#it.seek(target)
  }

  async _close(): Promise<void> {
    await this.#it.close()
  }
}

/** Values of a façade iterator that decodes no keys. */
class UringValueIterator extends AbstractValueIterator<UringLevel<unknown, unknown>, Data, Data> {
  readonly #it: DbIterator<unknown, unknown>

  constructor(db: UringLevel<unknown, unknown>, options: PrivateRangeOptions, it: DbIterator<unknown, unknown>) {
    super(db, options as never)
    this.#it = it
  }

  async _next(): Promise<Data | undefined> {
    return ((await this.#it.nextEntry()) as Entry | undefined)?.[1]
  }

  async _nextv(size: number): Promise<Data[]> {
    return ((await this.#it.nextv(size)) as Entry[]).map((e) => e[1] as Data)
  }

  _seek(target: Data): void {
    this.#it.seek(target)
  }

  async _close(): Promise<void> {
    await this.#it.close()
  }
}

/**
 * A uringdb database in `location` as an abstract-level database.
 *
 * Supports (see `db.supports`): durable storage, `seek()`, implicit snapshots (an iterator
 * reads the state as of its creation), explicit snapshots (`db.snapshot()`, honoured by
 * `get`, `getMany`, `getSync`, `has`, `hasMany`, iterators and `clear`), `getSync()`,
 * `has()`/`hasMany()`, and the `createIfMissing`/`errorIfExists` open options. Opening the
 * same directory twice in one process shares one engine (see {@link open}). Every read
 * without an explicit snapshot sees the state as of its call (implicit snapshots).
 *
 * @typeParam KDefault - The type of keys when no `keyEncoding` is given per call.
 * @typeParam VDefault - The type of values when no `valueEncoding` is given per call.
 */
export class UringLevel<KDefault = string, VDefault = string> extends AbstractLevel<Data, KDefault, VDefault> {
  readonly #location: string
  #db: Db | undefined

  /**
   * Creates the database object; it opens itself (deferred open: calls made before it is
   * open wait for it), or call `open()` to await it and see open errors.
   *
   * @param location - The database directory (created if missing, unless `createIfMissing`
   * is false).
   * @param options - Façade options and abstract-level options, see {@link UringLevelOptions}.
   */
  constructor(location: string, options?: UringLevelOptions<KDefault, VDefault>) {
    if (typeof location !== 'string' || location === '') {
      throw new TypeError("The first argument 'location' must be a non-empty string")
    }
    const manifest = {
      encodings: { buffer: true, view: true, utf8: true },
      permanence: true,
      seek: true,
      // Iterators pin their snapshot when created, point reads when called.
      implicitSnapshots: true,
      explicitSnapshots: true,
      getSync: true,
      has: true,
      createIfMissing: true,
      errorIfExists: true,
    }
    super(manifest, options)
    this.#location = location
  }

  /** The database directory. */
  get location(): string {
    return this.#location
  }

  /** The open façade database; abstract-level calls private methods only while open. */
  get #open(): Db {
    const db = this.#db
    if (db === undefined) throw levelError('LEVEL_DATABASE_NOT_OPEN', 'Database is not open')
    return db
  }

  /** The façade snapshot behind an abstract-level snapshot given to a read. */
  #snapshot(snapshot: AbstractSnapshot | undefined): Snapshot | undefined {
    if (snapshot === undefined || snapshot === null) return undefined
    if (!(snapshot instanceof UringSnapshot) || snapshot.root !== (this as UringLevel<unknown, unknown>)) {
      throw levelError('LEVEL_NOT_SUPPORTED', 'The snapshot was not created by this database')
    }
    // Point reads check this themselves (snapshot.ref() throws); creating an iterator does not.
    if (snapshot.released) throw levelError('LEVEL_SNAPSHOT_NOT_OPEN', 'Snapshot is not open: cannot use snapshot after close()')
    return snapshot.handle
  }

  /** @internal */
  async _open(options: PrivateOpenOptions): Promise<void> {
    if (!options.createIfMissing || options.errorIfExists) {
      const exists = await access(join(this.#location, EXISTS_MARKER)).then(
        () => true,
        () => false,
      )
      if (!exists && !options.createIfMissing) {
        throw new Error(`Database ${this.#location} does not exist (and createIfMissing is false)`)
      }
      if (exists && options.errorIfExists) {
        throw new Error(`Database ${this.#location} exists (and errorIfExists is true)`)
      }
    }
    this.#db = await open(this.#location, dbOptions(options)).catch(rethrow)
  }

  /** @internal */
  async _close(): Promise<void> {
    const db = this.#db
    if (db === undefined) return
    await db.close().catch(rethrow)
    this.#db = undefined
  }

  /** @internal */
  async _get(key: Data, options: PrivateReadOptions): Promise<Data | undefined> {
    const snapshot = this.#snapshot(options.snapshot)
    const db = this.#open
    const p = outputEncoding(options.valueEncoding) === 'utf8' ? db.get(key, { snapshot, encoding: 'utf8' }) : db.get(key, { snapshot })
    return p.catch(rethrow)
  }

  /** @internal */
  async _getMany(keys: Data[], options: PrivateReadOptions): Promise<Array<Data | undefined>> {
    const snapshot = this.#snapshot(options.snapshot)
    const db = this.#open
    const p = outputEncoding(options.valueEncoding) === 'utf8' ? db.getMany(keys, { snapshot, encoding: 'utf8' }) : db.getMany(keys, { snapshot })
    return p.catch(rethrow)
  }

  /** @internal */
  _getSync(key: Data, options: PrivateReadOptions): Data | undefined {
    const snapshot = this.#snapshot(options.snapshot)
    const db = this.#open
    try {
      return outputEncoding(options.valueEncoding) === 'utf8' ? db.getSync(key, { snapshot, encoding: 'utf8' }) : db.getSync(key, { snapshot })
    } catch (e) {
      return rethrow(e)
    }
  }

  /** @internal The façade has no value-less existence check: this reads the value. */
  async _has(key: Data, options: PrivateReadOptions): Promise<boolean> {
    return (await this._get(key, { snapshot: options.snapshot })) !== undefined
  }

  /** @internal */
  async _hasMany(keys: Data[], options: PrivateReadOptions): Promise<boolean[]> {
    return (await this._getMany(keys, { snapshot: options.snapshot })).map((v) => v !== undefined)
  }

  /** @internal */
  async _put(key: Data, value: Data, options: PrivateWriteOptions): Promise<void> {
    return this.#open.put(key, value, { sync: options.sync }).catch(rethrow)
  }

  /** @internal */
  async _del(key: Data, options: PrivateWriteOptions): Promise<void> {
    return this.#open.del(key, { sync: options.sync }).catch(rethrow)
  }

  /** @internal Atomic, like the façade's batch. */
  async _batch(operations: PrivateBatchOperation[], options: PrivateWriteOptions): Promise<void> {
    const ops = operations.map((op) => (op.type === 'put' ? { type: 'put' as const, key: op.key, value: op.value } : { type: 'del' as const, key: op.key }))
    return this.#open.batch(ops, { sync: options.sync }).catch(rethrow)
  }

  /** @internal Deletes only keys in the snapshot, when given one (the façade reads from it). */
  async _clear(options: PrivateRangeOptions): Promise<void> {
    const { reverse, limit, sync } = options
    const clear: ClearOptions = { ...bounds(options), reverse, limit, sync, snapshot: this.#snapshot(options.snapshot) }
    return this.#open.clear(clear).catch(rethrow)
  }

  /** Façade iterator options for a private range: a renaming, no filtering done here. */
  #range(o: PrivateRangeOptions): IteratorOptions {
    return {
      ...bounds(o),
      reverse: o.reverse,
      limit: o.limit,
      keyEncoding: outputEncoding(o.keyEncoding),
      valueEncoding: outputEncoding(o.valueEncoding),
      snapshot: this.#snapshot(o.snapshot),
    }
  }

  /** @internal */
  _iterator(options: PrivateRangeOptions): UringIterator {
    const self = this as UringLevel<unknown, unknown>
    return new UringIterator(self, options, this.#open._iterator(this.#range(options), true, true))
  }

  /** @internal */
  _keys(options: PrivateRangeOptions): UringKeyIterator {
    const self = this as UringLevel<unknown, unknown>
    return new UringKeyIterator(self, options, this.#open._iterator(this.#range(options), true, false))
  }

  /** @internal */
  _values(options: PrivateRangeOptions): UringValueIterator {
    const self = this as UringLevel<unknown, unknown>
    return new UringValueIterator(self, options, this.#open._iterator(this.#range(options), false, true))
  }

  /** @internal Taken synchronously: writes made after this call are not in it. */
  _snapshot(options: { owner: object }): AbstractSnapshot {
    return new UringSnapshot(options, this as UringLevel<unknown, unknown>, this.#open.snapshot())
  }
}
