/**
 * uringdb/level: the uringdb key-value store as an
 * [abstract-level](https://github.com/Level/abstract-level) database, so the Level ecosystem
 * (sublevels, encodings, hooks, read streams, `level-*` plugins) runs on it.
 *
 * A thin mapping of abstract-level's private API onto the façade's {@link index!Db | Db}: every read,
 * write, range and snapshot is the engine's; this module only renames options, forwards
 * them, and maps error codes. The private API works in the `buffer`, `view` and `utf8`
 * formats, which the façade accepts as input (`Uint8Array` or string) and produces as output
 * (`Buffer`, a `Uint8Array`, or string); abstract-level's transcoder does every other
 * encoding (json, hex, custom) on top.
 *
 * ```ts
 * import { UringLevel } from 'uringdb/level'
 * const db = new UringLevel<string, { n: number }>('./data', { valueEncoding: 'json' })
 * await db.put('a', { n: 1 })
 * for await (const [key, value] of db.iterator({ gte: 'a', limit: 10 })) console.log(key, value)
 * await db.close()
 * ```
 *
 * @packageDocumentation
 */
export { UringLevel, type UringLevelOptions, type Data } from './src/level.js'
