/**
 * uringdb/pino: a pino destination that writes compressed, time-indexed, durable log
 * stores, and the readers of those stores.
 *
 * ```ts
 * import pino from 'pino'
 * import { destination, readLogs } from 'uringdb/pino'
 *
 * const logger = pino(destination({ dir: './logs', sync: 'interval' }))
 * logger.info({ req: 1 }, 'hello')
 * // or off the main thread: pino(pino.transport({ target: 'uringdb/pino', options: { dir: './logs' } }))
 *
 * for await (const line of readLogs('./logs', { since: '10m', level: 'warn' })) console.log(line)
 * ```
 *
 * The default export is the `pino.transport` target (it resolves once the store is open).
 *
 * @packageDocumentation
 */
import { transport } from './src/pino.js'

export {
  LogDestination,
  LogDestinationOptionsSchema,
  SamplingOptionsSchema,
  destination,
  transport,
  type LogDestinationOptions,
  type LogDestinationStats,
} from './src/pino.js'
export { readLogs, readLogLines, logStoreStats, parseTime, parseLevel, LEVELS, type ReadLogsOptions, type LogStoreStats } from './src/log-store.js'

export default transport
