// Fails when a built addon needs a glibc newer than the oldest one we promise (2.17).
//
//   node scripts/check-glibc.mjs [--max 2.17] [FILE.node ...]
//
// Without files it checks every uringdb.*-gnu.node at the repo root (what scripts/build.sh
// writes). For each file it reads the ELF dynamic symbol table and its GNU version
// sections itself (no objdump or readelf needed): .gnu.version_r lists each version a
// library must provide (GLIBC_2.17, GLIBC_2.34, ...), and .gnu.version says which version
// each imported symbol asks for. A version newer than --max fails the check and names the
// symbols that ask for it, e.g. `dlopen@GLIBC_2.34 (libc.so.6)`: those are the symbols that
// make the loader refuse the file on an older system ("version `GLIBC_2.34' not found").
//
// Why 2.17: the release build links with zig against glibc 2.17's symbol versions (see
// scripts/build.sh), the oldest glibc that napi-rs and Rust's std support; a native build on
// Debian 12 needs 2.34. Run by scripts/pack.sh (a package is never packed around a binary
// that fails it) and by scripts/pack-check.sh, so by `npm test`.
//
// Exit status: 0 all files pass, 1 a file needs a newer glibc, 2 usage or unreadable file.
import { readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

const SHT_DYNSYM = 11
const SHT_GNU_VERNEED = 0x6ffffffe
const SHT_GNU_VERSYM = 0x6fffffff
const VERSYM_HIDDEN = 0x8000
const ELF64_SHDR_BYTES = 64
const ELF64_SYM_BYTES = 24

class UsageError extends Error {}

/** "2.17" -> [2, 17], for comparing versions numerically (2.9 < 2.17). */
function parseVersion(text) {
  if (!/^\d+(\.\d+)*$/.test(text)) throw new UsageError(`not a version: '${text}'`)
  return text.split('.').map(Number)
}

function compareVersions(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/**
 * The versioned symbols an ELF64 little-endian shared object imports:
 * [{ symbol, version, file }], e.g. { symbol: 'dlopen', version: 'GLIBC_2.34', file: 'libc.so.6' }.
 * Also returns every version the file's .gnu.version_r requires, with or without a symbol.
 */
export function versionedImports(bytes, name = 'file') {
  const fail = (why) => {
    throw new UsageError(`${name}: ${why}`)
  }
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) fail('not an ELF file')
  if (bytes[4] !== 2 || bytes[5] !== 1) fail('only 64-bit little-endian ELF files are supported')
  const shoff = Number(bytes.readBigUInt64LE(0x28))
  const shentsize = bytes.readUInt16LE(0x3a)
  const shnum = bytes.readUInt16LE(0x3c)
  if (shoff === 0 || shnum === 0) fail('no section headers')
  if (shentsize !== ELF64_SHDR_BYTES) fail(`unexpected section header size ${shentsize}`)
  if (shoff + shnum * shentsize > bytes.length) fail('section headers past the end of the file')

  const sections = []
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize
    const section = {
      type: bytes.readUInt32LE(at + 4),
      offset: Number(bytes.readBigUInt64LE(at + 0x18)),
      size: Number(bytes.readBigUInt64LE(at + 0x20)),
      link: bytes.readUInt32LE(at + 0x28),
    }
    if (section.offset + section.size > bytes.length && section.type !== 8 /* SHT_NOBITS */) {
      fail(`section ${i} runs past the end of the file`)
    }
    sections.push(section)
  }
  const cstring = (table, offset) => {
    const start = table.offset + offset
    const end = bytes.indexOf(0, start)
    if (offset >= table.size || end < 0) fail('string table offset out of range')
    return bytes.toString('latin1', start, end)
  }
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM)
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM)
  const verneed = sections.find((s) => s.type === SHT_GNU_VERNEED)
  if (!dynsym) fail('no dynamic symbol table (.dynsym): not a shared object?')
  if (!verneed || !versym) return { imports: [], required: [] } // imports no versioned symbols

  // .gnu.version_r: a chain of Elf64_Verneed (one per library), each with a chain of
  // Elf64_Vernaux (one per version needed from it). vna_other is the index .gnu.version uses.
  const byIndex = new Map()
  const required = []
  const verneedStrings = sections[verneed.link]
  let need = verneed.offset
  for (let guard = 0; guard < 1024; guard++) {
    const count = bytes.readUInt16LE(need + 2)
    const file = cstring(verneedStrings, bytes.readUInt32LE(need + 4))
    let aux = need + bytes.readUInt32LE(need + 8)
    for (let j = 0; j < count; j++) {
      const other = bytes.readUInt16LE(aux + 6)
      const version = cstring(verneedStrings, bytes.readUInt32LE(aux + 8))
      byIndex.set(other, { version, file })
      required.push({ version, file })
      const next = bytes.readUInt32LE(aux + 12)
      if (next === 0) break
      aux += next
    }
    const next = bytes.readUInt32LE(need + 12)
    if (next === 0) break
    need += next
  }

  // .dynsym and .gnu.version are parallel arrays: one 16-bit version index per symbol.
  const symbolStrings = sections[dynsym.link]
  const symbolCount = Math.floor(dynsym.size / ELF64_SYM_BYTES)
  const imports = []
  for (let i = 1; i < symbolCount; i++) {
    const index = bytes.readUInt16LE(versym.offset + 2 * i) & ~VERSYM_HIDDEN
    const needed = byIndex.get(index)
    if (!needed) continue // local, unversioned or a version this file defines
    const symbol = cstring(symbolStrings, bytes.readUInt32LE(dynsym.offset + i * ELF64_SYM_BYTES))
    imports.push({ symbol, ...needed })
  }
  return { imports, required }
}

/** Checks one file; returns the lines to print and whether it passed. */
export function checkFile(path, max) {
  const { imports, required } = versionedImports(readFileSync(path), path)
  const glibc = (version) => /^GLIBC_\d+(\.\d+)*$/.test(version)
  const numbers = (version) => parseVersion(version.slice('GLIBC_'.length))
  const versions = [...new Set(required.map((r) => r.version).filter(glibc))].sort((a, b) =>
    compareVersions(numbers(a), numbers(b)),
  )
  const tooNew = versions.filter((v) => compareVersions(numbers(v), max) > 0)
  const highest = versions.at(-1) ?? 'no GLIBC_ version'
  if (tooNew.length === 0) {
    return { ok: true, lines: [`ok: ${basename(path)} needs ${highest} at most (limit GLIBC_${max.join('.')})`] }
  }
  const lines = [`FAIL: ${basename(path)} needs ${highest}; the limit is GLIBC_${max.join('.')}. Symbols that need more:`]
  for (const version of tooNew) {
    const symbols = imports.filter((i) => i.version === version)
    const files = [...new Set(required.filter((r) => r.version === version).map((r) => r.file))]
    const names = symbols.length ? symbols.map((s) => `${s.symbol}@${s.version} (${s.file})`) : [`(no symbol) ${version} (${files.join(', ')})`]
    for (const name of names) lines.push(`  ${name}`)
  }
  lines.push('  Build the release addon with scripts/build.sh --release (zig, glibc 2.17), not natively.')
  return { ok: false, lines }
}

function main(argv) {
  let max = parseVersion('2.17')
  const files = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--max') {
      if (i + 1 >= argv.length) throw new UsageError('--max needs a version, e.g. --max 2.17')
      max = parseVersion(argv[++i])
    } else if (argv[i].startsWith('-')) {
      throw new UsageError(`unknown option '${argv[i]}'`)
    } else {
      files.push(argv[i])
    }
  }
  if (files.length === 0) {
    files.push(...readdirSync(root).filter((f) => /^uringdb\..*-gnu\.node$/.test(f)).map((f) => join(root, f)))
    if (files.length === 0) throw new UsageError('no uringdb.*-gnu.node at the repo root: run npm run build first')
  }
  let ok = true
  for (const file of files) {
    const result = checkFile(file, max)
    for (const line of result.lines) console.log(`check-glibc: ${line}`)
    ok &&= result.ok
  }
  return ok ? 0 : 1
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    process.exitCode = main(process.argv.slice(2))
  } catch (error) {
    // A RangeError is a read past the end of a truncated or malformed file.
    if (!(error instanceof UsageError || error instanceof RangeError) && error?.code !== 'ENOENT') throw error
    console.error(`check-glibc: ${error instanceof RangeError ? `malformed ELF file (${error.message})` : error.message}`)
    console.error('usage: node scripts/check-glibc.mjs [--max 2.17] [FILE.node ...]')
    process.exitCode = 2
  }
}
