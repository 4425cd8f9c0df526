// Helpers for scripts/pack.sh.
//
//   node scripts/pack-manifest.mjs platform
//     prints this machine's napi platform name (e.g. linux-x64-gnu), the suffix of the .node
//     file and of the npm/<platform>/ directory.
//   node scripts/pack-manifest.mjs main <out-package.json>
//     writes the manifest of the published main package: the repo's package.json plus
//     optionalDependencies on every platform package of napi.targets at the same version,
//     minus what only the repo needs (scripts, devDependencies, the ava config).
//
// The optional dependencies are added here and not kept in the repo's package.json because
// npm refuses to install a package.json whose dependencies are not published yet.
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readNapiConfig } from '@napi-rs/cli'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const [command, outPath] = process.argv.slice(2)

function localPlatform() {
  const { platform, arch } = process
  if (platform !== 'linux') return `${platform}-${arch}`
  // Node reports the glibc version it runs on; musl has none.
  const header = /** @type {any} */ (process.report.getReport()).header
  return `${platform}-${arch}-${header.glibcVersionRuntime ? 'gnu' : 'musl'}`
}

if (command === 'platform') {
  console.log(localPlatform())
} else if (command === 'main' && outPath) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const { packageName, targets } = await readNapiConfig(join(root, 'package.json'))
  const optional = {}
  // readNapiConfig has already parsed each triple (e.g. into platformArchABI 'linux-arm64-musl').
  for (const { platformArchABI } of targets) {
    optional[`${packageName}-${platformArchABI}`] = pkg.version
  }
  pkg.optionalDependencies = { ...pkg.optionalDependencies, ...optional }
  delete pkg.scripts
  delete pkg.devDependencies
  delete pkg.ava
  writeFileSync(outPath, JSON.stringify(pkg, null, 2) + '\n')
} else {
  console.error('usage: node scripts/pack-manifest.mjs platform | main <out-package.json>')
  process.exit(2)
}
