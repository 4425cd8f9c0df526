// Installs benchmark/'s own dependencies (the peer engines and benny) with `npm install`
// inside benchmark/ when any is missing. They are never dependencies of the uringdb package.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** Names of the dependencies in benchmark/package.json that are not installed. */
export function missingDeps() {
  const pkg = JSON.parse(fs.readFileSync(path.join(benchDir, 'package.json'), 'utf8'))
  return Object.keys(pkg.dependencies ?? {}).filter(
    (name) => !fs.existsSync(path.join(benchDir, 'node_modules', name, 'package.json')),
  )
}

/**
 * Runs `npm install` in benchmark/ if a dependency is missing. Returns the names still
 * missing afterwards (an install that fails leaves the engines it could not install skipped).
 * @param {(msg: string) => void} log
 */
export function ensureDeps(log = (m) => process.stderr.write(m + '\n')) {
  const missing = missingDeps()
  if (missing.length === 0) return []
  log(`benchmark: installing its dependencies (missing: ${missing.join(', ')}) with npm install in ${benchDir}`)
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const r = spawnSync(npm, ['install', '--no-audit', '--no-fund'], { cwd: benchDir, stdio: ['ignore', 2, 2] })
  if (r.status !== 0) log(`benchmark: npm install failed (${r.status ?? r.error?.message}); engines not installed are skipped`)
  return missingDeps()
}
