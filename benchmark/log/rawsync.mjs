// Builds and runs crates/uring/examples/rawsync (a plain Rust write+fdatasync loop), the
// device yardstick of the workload report.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { repoRoot } from '../lib/uringdb.mjs'

const source = path.join(repoRoot, 'crates', 'uring', 'examples', 'rawsync.rs')
const BUILD_TIMEOUT_MS = 10 * 60 * 1000

function fresh(binary) {
  try {
    return fs.statSync(binary).mtimeMs >= fs.statSync(source).mtimeMs
  } catch {
    return false
  }
}

/**
 * Returns the path of a rawsync binary: cargo's release example if it is fresh or cargo can
 * build it, else a direct `rustc` build of the (std-only) file into the temp dir.
 * @param {(msg: string) => void} log
 */
export function buildRawsync(log) {
  const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(repoRoot, 'target')
  const cargoBinary = path.join(targetDir, 'release', 'examples', 'rawsync')
  if (fresh(cargoBinary)) return cargoBinary
  log('building rawsync: cargo build --release -p uringdb-uring --example rawsync')
  const cargo = spawnSync('cargo', ['build', '--release', '-p', 'uringdb-uring', '--example', 'rawsync'], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    timeout: BUILD_TIMEOUT_MS,
  })
  if (cargo.status === 0 && fs.existsSync(cargoBinary)) return cargoBinary
  const why = cargo.error?.message ?? (cargo.stderr ?? '').trim().split('\n').slice(-3).join(' | ')
  log(`cargo build of rawsync failed (${why}); falling back to rustc on the std-only source`)
  const direct = path.join(os.tmpdir(), `uringdb-rawsync-${Math.floor(fs.statSync(source).mtimeMs)}`)
  if (fresh(direct)) return direct
  const rustc = spawnSync('rustc', ['--edition', '2021', '-O', source, '-o', direct], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    timeout: BUILD_TIMEOUT_MS,
  })
  if (rustc.status === 0) return direct
  throw new Error(`cannot build rawsync: ${rustc.error?.message ?? rustc.stderr}`)
}

/**
 * @param {string} binary
 * @param {{dir: string, sizes: number[], modes: string[], durationMs: number, warmupMs: number, regionBytes?: number}} o
 * @returns {Array<{mode: string, bytesPerWrite: number, writes: number, seconds: number, writesPerSec: number, p50Us: number, p99Us: number, p999Us: number, maxUs: number, MBps: number}>}
 */
export function runRawsync(binary, { dir, sizes, modes, durationMs, warmupMs, regionBytes }) {
  const args = [
    '--dir', dir,
    '--sizes', sizes.join(','),
    '--modes', modes.join(','),
    '--duration-ms', String(Math.round(durationMs)),
    '--warmup-ms', String(Math.round(warmupMs)),
  ]
  if (regionBytes) args.push('--region-bytes', String(regionBytes))
  const r = spawnSync(binary, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24 })
  if (r.status !== 0) throw new Error(`rawsync failed (${r.status ?? r.signal}): ${r.error?.message ?? r.stderr.trim()}`)
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l))
}
