#!/usr/bin/env node
// Reads a Mach-O addon (the macOS builds of scripts/build-all.sh, which cannot run here) and
// checks what can be checked without a Mac:
//
//   node scripts/check-macho.mjs FILE arm64|x64
//
// - a 64-bit Mach-O of the wanted architecture, a bundle or dylib (what Node's dlopen loads);
// - it links only system libraries (/usr/lib/libSystem, libc++, libiconv, libresolv): no
//   library a user's Mac would lack;
// - its undefined symbols include `_fcntl` (through which the portable backend calls
//   F_FULLFSYNC; std imports it too, so this shows the call is possible, not that it is made:
//   the release workflow's tests on macOS runners check the behaviour) and no Linux-only call
//   (`_fdatasync`, `_io_uring_*`, `_fallocate`, `_syscall`);
// - the minimum macOS version it declares (LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX) is at
//   most 11.0, the oldest macOS that Node 22 and 24 support (build-all.sh sets
//   MACOSX_DEPLOYMENT_TARGET; without it zig targets the newest macOS).
// Prints one line per check; exits 1 if any failed. This is a static check: no code runs.
import fs from 'node:fs'

const [file, arch] = process.argv.slice(2)
if (!file || !['arm64', 'x64'].includes(arch)) {
  console.error('usage: node scripts/check-macho.mjs FILE arm64|x64')
  process.exit(2)
}
const b = fs.readFileSync(file)
let failed = false
const pass = (m) => console.log(`PASS ${m}`)
const fail = (m) => {
  console.log(`FAIL ${m}`)
  failed = true
}

const MH_MAGIC_64 = 0xfeedfacf
const CPU = { arm64: 0x0100000c, x64: 0x01000007 }
const FILETYPES = { 6: 'dylib', 8: 'bundle' }
const LC_SYMTAB = 0x2
const LC_LOAD_DYLIB = 0xc
const LC_VERSION_MIN_MACOSX = 0x24
const LC_BUILD_VERSION = 0x32
const LC_REQ_DYLD = 0x80000000

if (b.length < 32 || b.readUInt32LE(0) !== MH_MAGIC_64) {
  fail(`${file}: not a 64-bit little-endian Mach-O (magic 0x${b.readUInt32LE(0).toString(16)})`)
  process.exit(1)
}
const cputype = b.readUInt32LE(4)
if (cputype === CPU[arch]) pass(`architecture ${arch} (cputype 0x${cputype.toString(16)})`)
else fail(`cputype 0x${cputype.toString(16)}, want ${arch} (0x${CPU[arch].toString(16)})`)
const filetype = b.readUInt32LE(12)
if (FILETYPES[filetype]) pass(`file type ${FILETYPES[filetype]}`)
else fail(`file type ${filetype}, want a dylib (6) or bundle (8)`)

const ncmds = b.readUInt32LE(16)
const cstr = (off) => b.toString('latin1', off, b.indexOf(0, off))
const version = (v) => `${v >>> 16}.${(v >>> 8) & 0xff}.${v & 0xff}`
const dylibs = []
let symtab = null
let minOs = null
let off = 32
for (let i = 0; i < ncmds; i++) {
  const cmd = b.readUInt32LE(off) & ~LC_REQ_DYLD
  const size = b.readUInt32LE(off + 4)
  if (cmd === LC_LOAD_DYLIB) dylibs.push(cstr(off + b.readUInt32LE(off + 8)))
  else if (cmd === LC_SYMTAB) {
    symtab = { symoff: b.readUInt32LE(off + 8), nsyms: b.readUInt32LE(off + 12), stroff: b.readUInt32LE(off + 16) }
  } else if (cmd === LC_BUILD_VERSION) minOs = version(b.readUInt32LE(off + 12))
  else if (cmd === LC_VERSION_MIN_MACOSX) minOs = version(b.readUInt32LE(off + 8))
  off += size
}

const systemLib = /^\/usr\/lib\/(libSystem|libc\+\+|libiconv|libcharset|libresolv|libobjc)[.\w]*\.dylib$|^\/System\/Library\/Frameworks\//
const foreign = dylibs.filter((d) => !systemLib.test(d))
if (dylibs.length > 0 && foreign.length === 0) pass(`links only system libraries: ${dylibs.join(', ')}`)
else fail(`links libraries a Mac may lack: ${foreign.join(', ') || '(no libraries at all)'}`)

if (!symtab) fail('no symbol table')
else {
  const undefinedSyms = new Set()
  for (let i = 0; i < symtab.nsyms; i++) {
    const e = symtab.symoff + i * 16
    const type = b.readUInt8(e + 4)
    // External (N_EXT) and undefined (N_TYPE == N_UNDF), not a debugging entry (N_STAB).
    if ((type & 0xe0) === 0 && (type & 0x0e) === 0 && (type & 0x01) === 1) undefinedSyms.add(cstr(symtab.stroff + b.readUInt32LE(e)))
  }
  if (undefinedSyms.has('_fcntl')) pass('imports _fcntl (F_FULLFSYNC goes through it)')
  else fail('does not import _fcntl: the F_FULLFSYNC durability point is missing')
  const linuxOnly = [...undefinedSyms].filter((s) => /^_(fdatasync|fallocate|io_uring_|syscall$|epoll_|eventfd)/.test(s))
  if (linuxOnly.length === 0) pass(`${undefinedSyms.size} imported symbols, none Linux-only`)
  else fail(`imports Linux-only symbols: ${linuxOnly.join(', ')}`)
}
const MIN_OS_MAX = [11, 0, 0]
if (!minOs) fail('declares no minimum macOS version')
else {
  const v = minOs.split('.').map(Number)
  const newer = v[0] !== MIN_OS_MAX[0] ? v[0] > MIN_OS_MAX[0] : v[1] > MIN_OS_MAX[1]
  if (newer) fail(`requires macOS ${minOs}: newer than ${MIN_OS_MAX.join('.')} (Node 22 and 24 run on macOS 11+)`)
  else pass(`minimum macOS ${minOs}`)
}
process.exit(failed ? 1 : 0)
