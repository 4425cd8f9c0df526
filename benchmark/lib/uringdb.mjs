// Loads the uringdb package from this repository's build output (dist/index.js), the way
// `npm start` and the benchmarks use it: no benchmark dependency is involved.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
// URINGDB_ENTRY points the benchmarks at another build of the package (for example an
// installed node_modules/uringdb/dist/index.js) instead of this repository's dist/.
export const distEntry = process.env.URINGDB_ENTRY
  ? path.resolve(process.env.URINGDB_ENTRY)
  : path.join(repoRoot, 'dist', 'index.js')

let loaded = null

/** @returns {Promise<typeof import('../../dist/index.js')>} */
export async function loadUringdb() {
  if (loaded) return loaded
  if (!fs.existsSync(distEntry)) {
    throw new Error(`uringdb is not built: ${distEntry} is missing (run \`npm run build\` in ${repoRoot})`)
  }
  const m = await import(pathToFileURL(distEntry).href)
  // dist/index.js is CommonJS: its exports are named exports when Node can detect them, and
  // always the default export.
  const api = typeof m.openLog === 'function' ? m : m.default
  if (!api || typeof api.openLog !== 'function') throw new Error(`${distEntry} does not export openLog`)
  loaded = api
  return api
}

/** The uringdb package version, from the repository's package.json. */
export function uringdbVersion() {
  try {
    return JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version
  } catch {
    return 'unknown'
  }
}

/**
 * 'release' or 'debug' as recorded by scripts/build.sh for this repository's build, or
 * 'unknown' (another build chosen with URINGDB_ENTRY, or no stamp). A debug build's numbers
 * say nothing about uringdb's speed.
 */
export function buildProfile() {
  if (process.env.URINGDB_ENTRY) {
    const stamp = path.join(path.dirname(distEntry), '..', 'uringdb-build.stamp')
    try {
      return fs.readFileSync(stamp, 'utf8').trim()
    } catch {
      return 'unknown'
    }
  }
  try {
    return fs.readFileSync(path.join(repoRoot, 'target', 'uringdb-build.stamp'), 'utf8').trim()
  } catch {
    return 'unknown'
  }
}
