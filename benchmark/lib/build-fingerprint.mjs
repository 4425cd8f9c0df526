// A fingerprint of the uringdb build a run loads (size and mtime of the JavaScript entry and
// of every native addon beside the package root), taken at the start and at the end of a
// run: a build replaced while a long benchmark runs would silently mix two builds' numbers.

import fs from 'node:fs'
import path from 'node:path'

import { distEntry } from './uringdb.mjs'

export function buildFingerprint() {
  const root = path.resolve(path.dirname(distEntry), '..')
  const files = [distEntry]
  try {
    for (const f of fs.readdirSync(root)) if (f.endsWith('.node')) files.push(path.join(root, f))
  } catch {
    // no package root to list: the entry alone
  }
  return files
    .map((f) => {
      try {
        const st = fs.statSync(f)
        return `${path.basename(f)}:${st.size}:${Math.round(st.mtimeMs)}`
      } catch {
        return `${path.basename(f)}:missing`
      }
    })
    .join(' ')
}
