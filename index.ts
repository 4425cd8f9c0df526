/**
 * uringdb: durable embedded storage for Node.js services.
 *
 * This module is the typed façade over the native engine: it validates options with
 * exported schemas, encodes records, turns the engine's completions into promises and its
 * reads into async iterators, and maps errors to {@link UringdbError}. It holds no engine
 * logic: ordering, durability, recovery and group commit all live in the Rust core.
 *
 * The entry only re-exports the hand-written modules under `src/`: errors, options,
 * diagnostics, log, db, snapshot, iterator, range, batch, stream and transaction.
 *
 * @packageDocumentation
 */
export { UringdbError, AbortError, type UringdbErrorCode } from './src/errors.js'
export {
  LogOptionsSchema,
  DbOptionsSchema,
  type LogOptions,
  type DbOptions,
  type AppendOptions,
  type ReadOptions,
  type TailOptions,
  type Bytes,
  type Encoding,
  type WriteOptions,
  type GetOptions,
  type BatchOperation,
  type Range,
  type IteratorOptions,
  type RangeSyncOptions,
  type ClearOptions,
} from './src/options.js'
export type { Percentiles, WalStats, LogStats, CommitEvent, RecoveryEvent, LevelStats, DbStats, DbRecovery } from './src/diagnostics.js'
export { Log, openLog, type RecordInput } from './src/log.js'
export type { LogRecord } from './src/log-read.js'
export { Db, open, TXID_BYTES_MAX, type PreparedTransaction, type PreparedOperation } from './src/db.js'
export { Snapshot } from './src/snapshot.js'
export { DbIterator, type Entry } from './src/iterator.js'
export { RangeSync, type RangeItem } from './src/range.js'
export { ChainedBatch, STREAM_NAME_BYTES_MAX } from './src/batch.js'
export { Stream, StreamReader, StreamTail, type StreamEntry, type StreamReadOptions, type StreamTailOptions } from './src/stream.js'
export { Transaction, TRANSACTION_RETRIES_DEFAULT, TRANSACTION_RETRIES_MAX, type TransactionOptions, type TransactionIteratorOptions } from './src/transaction.js'
