// Facts about the machine a run was measured on, printed with every report.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

function read(file) {
  try {
    return fs.readFileSync(file, 'utf8').trim()
  } catch {
    return null
  }
}

/** The mount (from /proc/mounts) holding `dir`: longest mount point that prefixes it. */
export function mountOf(dir) {
  const real = fs.realpathSync(dir)
  const mounts = (read('/proc/mounts') ?? '').split('\n').map((line) => {
    const [source, target, type, options] = line.split(' ')
    // /proc/mounts escapes spaces as \040.
    return { source, target: (target ?? '').replace(/\\040/g, ' '), type, options }
  })
  let best = null
  for (const m of mounts) {
    if (!m.target) continue
    const inside = real === m.target || real.startsWith(m.target.endsWith('/') ? m.target : m.target + '/')
    if (inside && (!best || m.target.length >= best.target.length)) best = m
  }
  return best
}

/** Block-device queue facts (rotational, scheduler, write cache) for a /dev/* source. */
function blockDevice(source) {
  if (!source || !source.startsWith('/dev/')) return null
  let name = path.basename(fs.realpathSync(source))
  // A partition's queue lives on its parent disk.
  if (!fs.existsSync(`/sys/block/${name}`)) {
    const parent = fs.readdirSync('/sys/block').find((d) => fs.existsSync(`/sys/block/${d}/${name}`))
    if (!parent) return { name }
    name = parent
  }
  const q = `/sys/block/${name}/queue`
  return {
    name,
    model: read(`/sys/block/${name}/device/model`),
    rotational: read(`${q}/rotational`) === '1',
    scheduler: read(`${q}/scheduler`),
    writeCache: read(`${q}/write_cache`),
    fua: read(`${q}/fua`),
  }
}

/** @param {string} dataDir */
export function machineFacts(dataDir) {
  const cpus = os.cpus()
  const mount = mountOf(dataDir)
  let device = null
  try {
    device = blockDevice(mount?.source)
  } catch {
    device = null
  }
  return {
    kernel: `${os.type()} ${os.release()}`,
    kernelVersion: os.version(),
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    dataDir,
    fs: mount ? { type: mount.type, source: mount.source, mountPoint: mount.target, options: mount.options } : null,
    device,
    ioUringDisabled: read('/proc/sys/kernel/io_uring_disabled'),
    // A shared machine: the load when the run started says how quiet it was.
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  }
}
