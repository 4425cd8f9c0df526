/**
 * Diagnostics: statistics and recovery types, and the `diagnostics_channel` channels the
 * products publish on.
 *
 * @module
 */
import { channel } from 'node:diagnostics_channel'
import type * as native from '../binding.js'
import type { Same } from './options.js'

/** Latency percentiles in microseconds. */
export interface Percentiles {
  count: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

/** Counters of a write-ahead log, as the engine keeps them (a database's: {@link DbStats.log}). */
export interface WalStats {
  /** The I/O backend in use. */
  backend: 'io_uring' | 'portable'
  /** Why io_uring is not used, when it is not. */
  fallbackReason: string | null
  /** Kernel features probed at open (e.g. `op:WRITEV`, `IORING_FEAT_NODROP`). */
  features: string[]
  /** Records appended. */
  appends: number
  /** Payload bytes appended. */
  appendBytes: number
  /** Commit groups written. */
  groups: number
  /** fdatasync calls. */
  fsyncs: number
  /** Bytes written to segment files. */
  bytesWritten: number
  /** First readable sequence number (0 when empty). */
  firstSeq: number
  /** Last durable sequence number (0 when empty). */
  lastSeq: number
  /** Segment files in use. */
  segments: number
  /**
   * Segments rolled to since open that reused a recycled file (a database keeps the segments
   * its flushes free, up to two, and reuses them instead of zero-filling new ones).
   */
  recycledSegments: number
  /** Segments rolled to since open that were new, zero-filled files. */
  freshSegments: number
  /** Recycled segment files waiting for reuse now (`wal/*.wal.free`; always 0 for a standalone log). */
  poolSegments: number
  /** Per commit group: time its oldest record waited in the queue (microseconds). */
  queueWait: Percentiles
  /** Per commit group: time the write took. */
  write: Percentiles
  /** Per commit group: time the fdatasync took. */
  fsync: Percentiles
  /** Per commit group: from its oldest record's arrival to completion. */
  total: Percentiles
}

/** Statistics of a log (see {@link Log.stats}): its {@link WalStats}, the latencies grouped. */
export interface LogStats extends Omit<WalStats, 'queueWait' | 'write' | 'fsync' | 'total'> {
  /** Mean records per commit group. */
  recordsPerGroup: number
  /** Per commit group, measured from the group's oldest record (microseconds). */
  latencyUs: { queueWait: Percentiles; write: Percentiles; fsync: Percentiles; total: Percentiles }
}

/** Message published on `uringdb:log:commit` for each commit group. */
export interface CommitEvent {
  /** The log's directory. */
  dir: string
  /** Records in the group (from every handle and thread). */
  records: number
  /** Bytes written by the group. */
  bytes: number
  /** First and last sequence number of the group (0 when it held only sync requests). */
  firstSeq: number
  lastSeq: number
  /** Stage latencies of the group in microseconds. */
  queueWaitUs: number
  writeUs: number
  fsyncUs: number
  /** Whether the group was covered by fdatasync. */
  synced: boolean
}

/** Message published on `uringdb:log:recovery` when a handle opens. */
export interface RecoveryEvent {
  dir: string
  /** Whether this handle opened the engine (false: it joined one open in this process). */
  opened: boolean
  segments: number
  /** Records in the log after recovery. */
  records: number
  firstSeq: number
  lastSeq: number
  /** Bytes cut from a torn tail. */
  truncatedBytes: number
  durationUs: number
}

/** Statistics of one level of the tree. */
export interface LevelStats {
  /** Level number (0 = newest). */
  level: number
  /** Table files. */
  files: number
  /** Bytes in those files. */
  bytes: number
  /** Target size (0 for level 0, which is bounded by file count). */
  targetBytes: number
}

/** Statistics of a database; every counter is cumulative since open. */
export interface DbStats {
  /** Per level. */
  levels: LevelStats[]
  /** Bytes of user keys and values written. */
  userBytesWritten: number
  /** Put operations applied. */
  puts: number
  /** Delete operations applied. */
  deletes: number
  /** Memtable flushes. */
  flushes: number
  /** Bytes written by flushes. */
  flushBytesWritten: number
  /** Compactions. */
  compactions: number
  /** Bytes read by compactions. */
  compactionBytesRead: number
  /** Bytes written by compactions. */
  compactionBytesWritten: number
  /** (log + flush + compaction bytes written) / user bytes written. */
  writeAmplification: number
  /** Bytes of all tables / bytes of the last non-empty level. */
  spaceAmplification: number
  /** Times writes were held back (slowdowns and stops). */
  stalls: number
  /** Times writes were slowed. */
  slowdowns: number
  /** Times writes were stopped. */
  stops: number
  /** Total time writes were held back, in microseconds. */
  stallUs: number
  /** Payload bytes held by a write stall now (bounded by `stallQueueLimitBytes` plus one write). */
  stallQueueBytes: number
  /** The stall queue's bound (`STALL_QUEUE_BYTES_MAX`). */
  stallQueueLimitBytes: number
  /** The process-wide reader queue: jobs now, the most there have been, and its bound. */
  readerQueue: { jobs: number; peakJobs: number; limitJobs: number }
  /** Block cache. */
  cache: { hits: number; misses: number; hitRate: number; usedBytes: number; capacityBytes: number; entries: number; evictions: number }
  /** Bloom filters: table lookups that consulted one, and those it answered "absent". */
  bloom: { checked: number; useful: number; usefulRate: number }
  /** Point reads. */
  gets: number
  /** Table files open now (at most `maxOpenFiles`). */
  openTableFiles: number
  /** Bytes in the active memtable. */
  memtableBytes: number
  /** Memtables waiting for flush. */
  immutableMemtables: number
  /** Newest visible sequence number. */
  visibleSeq: number
  /** Sequence number up to which everything is in tables. */
  flushedSeq: number
  /** Live snapshots. */
  snapshots: number
  /** Prepared transactions not yet committed or rolled back (see `Db.prepare`). */
  preparedTransactions: number
  /**
   * Age of the oldest prepared transaction, in ms (0 if none). The oldest prepare pins the
   * log: segments from its record on are kept until it is committed or rolled back.
   */
  oldestPreparedAgeMs: number
  /** Background failures so far. */
  backgroundErrors: number
  /** The current background failure (writes are refused while set), or null. */
  backgroundError: string | null
  /** The write-ahead log's statistics. */
  log: WalStats
}

/** What {@link open} found (published on `uringdb:db:recovery`, also {@link Db.recovery}). */
export interface DbRecovery {
  /** The directory. */
  dir: string
  /** Whether this handle opened the engine (false: it joined one already open). */
  opened: boolean
  /** Whether the database was created by this open. */
  created: boolean
  /** Sequence number up to which everything was in tables. */
  flushedSeq: number
  /** Log records replayed into the memtable. */
  replayedRecords: number
  /** Tables in the manifest. */
  tables: number
  /** Unreferenced table files removed (left by a crash during flush or compaction). */
  orphansRemoved: number
  /** Manifest edits replayed. */
  manifestEdits: number
  /** Bytes of a torn manifest tail cut. */
  manifestTornBytes: number
  /** Log segments found. */
  logSegments: number
  /** Bytes cut from a torn log tail. */
  logTruncatedBytes: number
  /** Last sequence number. */
  lastSeq: number
  /** Time open took, in microseconds. */
  durationUs: number
  /** I/O backend in use. */
  backend: 'io_uring' | 'portable'
  /** Why io_uring is not used, or null. */
  fallbackReason: string | null
}

// Published by Log.
export const commitChannel = channel('uringdb:log:commit')
export const recoveryChannel = channel('uringdb:log:recovery')

export const dbChannels = {
  flush: channel('uringdb:db:flush'),
  compaction: channel('uringdb:db:compaction'),
  stall: channel('uringdb:db:stall'),
  recovery: channel('uringdb:db:recovery'),
  error: channel('uringdb:db:error'),
} as const

/** Publishes an engine event on its `uringdb:db:<kind>` channel (the facts, with `dir`). */
export function onDbEvent(dir: string, event: native.NativeDbEvent): void {
  const ch = dbChannels[event.kind]
  if (!ch.hasSubscribers) return
  const { kind: _kind, ...facts } = event
  ch.publish({ dir, ...facts })
}

// The public types above are the binding's generated ones (binding.d.ts), checked both ways
// by the compiler: a field added, removed or retyped in Rust fails the build until it is
// documented here.
const _dbStats: Same<DbStats, native.NativeDbStats> = true
const _dbRecovery: Same<Omit<DbRecovery, 'dir'>, native.NativeDbRecovery> = true
const _percentiles: Same<Percentiles, native.NativePercentiles> = true
const _levelStats: Same<LevelStats, native.NativeLevelStats> = true
const _walStats: Same<WalStats, native.NativeLogStats> = true
const _commit: Same<Omit<CommitEvent, 'dir'>, native.NativeCommitGroup> = true
void [_dbStats, _dbRecovery, _percentiles, _levelStats, _walStats, _commit]
