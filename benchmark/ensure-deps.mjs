#!/usr/bin/env node
// `node ensure-deps.mjs`: install benchmark/'s dependencies when missing (used by its npm scripts).
import { ensureDeps } from './lib/ensure-deps.mjs'

const stillMissing = ensureDeps()
if (stillMissing.length > 0) {
  process.stderr.write(`benchmark: still missing after npm install: ${stillMissing.join(', ')}\n`)
}
