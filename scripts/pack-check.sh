#!/usr/bin/env bash
# Proves that the packed packages work for a user who has Node and npm but no Rust:
#   1. packs both packages (scripts/pack.sh; builds the release addon if stale),
#   2. installs the two tarballs into a fresh temporary project with a PATH that holds no
#      cargo or rustc, and checks that nothing from the repo is loaded,
#   3. (a) compiles an ESM TypeScript consumer (check.mts) with tsc --strict, NodeNext, and
#          runs it: open a log, append, appendMany, read back, reopen, close, `await using`;
#      (b) runs the same through require() from CommonJS (check.cjs);
#      (c) compiles a file that passes wrong option types and requires tsc to reject every
#          marked line (the types are real, not `any`);
#      (d) compiles the ```ts examples of the packed README.md against the installed types,
#      (e) on glibc platforms: the installed .node needs no glibc newer than 2.17, and the
#          check that says so (scripts/check-glibc.mjs) rejects a natively linked library.
# Prints PASS/FAIL per check; exits non-zero when any check fails.
#
#   scripts/pack-check.sh [--keep]     (--keep leaves the temporary project for inspection)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

keep=0
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    *) echo "pack-check.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/uringdb-pack-check.XXXXXX")
if [[ $keep == 0 ]]; then trap 'rm -rf "$work"' EXIT; else echo "pack-check: keeping $work"; fi

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

mapfile -t tarballs < <(bash scripts/pack.sh "$work/tarballs")
[[ ${#tarballs[@]} == 2 ]] || { echo "FAIL: scripts/pack.sh did not print two tarballs"; exit 1; }
pass "packed $(basename "${tarballs[0]}") and $(basename "${tarballs[1]}")"

# The versions of the consumer's own tools: the repo's, so that the check is repeatable.
ts_version=$(node -p "require('./node_modules/typescript/package.json').version")
types_node_version=$(node -p "require('./node_modules/@types/node/package.json').version")

# A PATH without any directory that holds cargo or rustc, and no rustup/cargo variables.
clean_path=""
IFS=: read -r -a path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
  [[ -n $d && ! -e $d/cargo && ! -e $d/rustc ]] || continue
  clean_path=${clean_path:+$clean_path:}$d
done
no_rust() { env -u CARGO_HOME -u RUSTUP_HOME -u RUSTUP_TOOLCHAIN -u CARGO PATH="$clean_path" "$@"; }
if no_rust bash -c 'command -v cargo || command -v rustc' >/dev/null; then
  fail "could not hide cargo/rustc from PATH"
else
  pass "no cargo or rustc on the consumer's PATH"
fi

project=$work/project
mkdir -p "$project"
cd "$project"
cat >package.json <<'JSON'
{ "name": "uringdb-pack-check", "version": "1.0.0", "private": true }
JSON
cat >tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2022", "ESNext.Disposable"],
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "types": ["node"],
    "strict": true,
    "skipLibCheck": false,
    "outDir": "out"
  },
  "files": ["check.mts"]
}
JSON

if no_rust npm install --no-audit --no-fund --prefer-offline "${tarballs[@]}" \
  "typescript@$ts_version" "@types/node@$types_node_version" >"$work/install.log" 2>&1; then
  pass "npm install of both tarballs without a Rust toolchain"
else
  cat "$work/install.log"
  fail "npm install of both tarballs without a Rust toolchain"
  exit 1
fi

# The addon must come from the platform package, not from a .node file in the main package
# and not from the repo.
if find node_modules/uringdb -name '*.node' | grep -q .; then
  fail "node_modules/uringdb contains a .node file"
else
  pass "node_modules/uringdb carries no .node file"
fi

cat >check.mts <<'TS'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openLog, type LogOptions } from 'uringdb'

const dir = mkdtempSync(join(tmpdir(), 'uringdb-check-mts-'))
const options: LogOptions = { sync: true }
try {
  {
    await using log = await openLog(dir, options)
    const first: number = await log.append('hello')
    const rest: number[] = await log.appendMany([Buffer.from('from a Buffer'), new Uint8Array([0x75, 0x38])])
    assert.deepEqual([first, ...rest], [1, 2, 3])
  }
  const log = await openLog(dir)
  const seen: string[] = []
  for await (const record of log.read({ from: 1 })) seen.push(`${record.seq}:${record.data.toString()}`)
  assert.deepEqual(seen, ['1:hello', '2:from a Buffer', '3:u8'])
  console.log(`check.mts: read back ${seen.length} records (backend ${log.stats().backend})`)
  await log.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
TS

if npx --no-install tsc -p tsconfig.json >"$work/tsc.log" 2>&1; then
  pass "tsc --strict (NodeNext) compiles check.mts"
  if no_rust node out/check.mjs; then pass "ESM: node out/check.mjs"; else fail "ESM: node out/check.mjs"; fi
else
  cat "$work/tsc.log"
  fail "tsc --strict (NodeNext) compiles check.mts"
fi

cat >check.cjs <<'JS'
'use strict'
const assert = require('node:assert/strict')
const { mkdtempSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { openLog } = require('uringdb')

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'uringdb-check-cjs-'))
  try {
    const log = await openLog(dir, { sync: true })
    assert.equal(await log.append('hello'), 1)
    assert.deepEqual(await log.appendMany(['a', Buffer.from('b')]), [2, 3])
    const seen = []
    for await (const record of log.read()) seen.push(record.data.toString())
    assert.deepEqual(seen, ['hello', 'a', 'b'])
    await log.close()
    // The addon must be the platform package's, never a file from the repo.
    const addons = Object.keys(require.cache).filter((file) => file.endsWith('.node'))
    assert.equal(addons.length, 1, `loaded addons: ${addons.join(', ')}`)
    assert.match(addons[0], /node_modules\/@uringdb\/uringdb-[^/]+\/uringdb\.[^/]+\.node$/)
    console.log(`check.cjs: read back ${seen.length} records; addon ${addons[0]}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
main().catch((error) => {
  console.error(error)
  process.exit(1)
})
JS
if no_rust node check.cjs; then pass "CommonJS: node check.cjs"; else fail "CommonJS: node check.cjs"; fi

# Every line marked `// must fail` has to be rejected by tsc, and nothing else may be.
cat >bad.mts <<'TS'
import { openLog, type LogOptions } from 'uringdb'

const dir = '/nonexistent'
await openLog(dir, { sync: 'yes' }) // must fail
await openLog(dir, { ioBackend: 'fast' }) // must fail
await openLog(dir, { segmentBytes: '64MiB' }) // must fail
await openLog(dir, { noSuchOption: true }) // must fail
const options: LogOptions = { recovery: 'lenient' } // must fail
await openLog(dir, options)
const log = await openLog(dir)
await log.append(42) // must fail
const seq: string = await log.append('x') // must fail
console.log(seq)
TS
expected=$(grep -n '// must fail' bad.mts | cut -d: -f1 | sort -n | tr '\n' ' ')
npx --no-install tsc --noEmit --strict --target ES2022 --module NodeNext --moduleResolution NodeNext \
  --types node bad.mts >"$work/bad.log" 2>&1 && bad_rc=0 || bad_rc=$?
got=$(sed -nE 's/^bad\.mts\(([0-9]+),[0-9]+\): error.*/\1/p' "$work/bad.log" | sort -nu | tr '\n' ' ')
if [[ $bad_rc != 0 && "$got" == "$expected" ]]; then
  pass "tsc rejects each wrongly typed call in bad.mts (lines $expected)"
else
  cat "$work/bad.log"
  fail "tsc must reject exactly lines $expected of bad.mts; it rejected lines: ${got:-none} (exit $bad_rc)"
fi

# The README's TypeScript examples, from the README inside the installed package, must compile
# against the installed types (the documentation cannot drift from the API).
if node "$root/scripts/readme-examples.mjs" node_modules/uringdb/README.md readme.mts >/dev/null &&
  npx --no-install tsc --noEmit --strict --target ES2022 --module NodeNext --moduleResolution NodeNext \
    --lib ES2022,ESNext.Disposable --types node readme.mts >"$work/readme.log" 2>&1; then
  pass "the README's TypeScript examples compile (tsc --strict)"
else
  cat "$work/readme.log" 2>/dev/null || true
  fail "the README's TypeScript examples compile (tsc --strict); see readme.mts"
fi

# The installed addon loads on glibc 2.17 and later: no imported symbol asks for a newer
# GLIBC_ version (the release build links with zig against 2.17; see scripts/build.sh).
platform=$(node "$root/scripts/pack-manifest.mjs" platform)
if [[ $platform == *-gnu ]]; then
  installed_node=$(find node_modules/@uringdb -name "uringdb.$platform.node" | head -n 1)
  if [[ -z $installed_node ]]; then
    fail "found no uringdb.$platform.node under node_modules/@uringdb"
  elif node "$root/scripts/check-glibc.mjs" "$installed_node"; then
    pass "the installed uringdb.$platform.node needs no glibc newer than 2.17"
  else
    fail "the installed uringdb.$platform.node needs a glibc newer than 2.17"
  fi

  # The check must fail on what a native build on this machine links: a tiny library that
  # calls dlopen and pthread_create, which glibc 2.34 moved into libc.so.6 under GLIBC_2.34.
  host_glibc=$(node -p 'process.report.getReport().header.glibcVersionRuntime')
  if ! command -v cc >/dev/null 2>&1; then
    echo "SKIP: no cc to link a native library for the negative check-glibc test"
  elif [[ $(printf '%s\n' 2.34 "$host_glibc" | sort -V | head -n 1) != 2.34 ]]; then
    echo "SKIP: this machine's glibc $host_glibc is older than 2.34; the negative check-glibc test needs 2.34"
  else
    cat >native.c <<'C'
#include <dlfcn.h>
#include <pthread.h>
static void *run(void *arg) { return arg; }
int probe(void) {
  pthread_t thread;
  if (pthread_create(&thread, 0, run, 0) != 0) return -1;
  pthread_join(thread, 0);
  return dlopen("libc.so.6", RTLD_NOW) != 0;
}
C
    cc -shared -fPIC -O1 -o native.so native.c -pthread -ldl
    if node "$root/scripts/check-glibc.mjs" native.so >"$work/native-check.log" 2>&1; then
      cat "$work/native-check.log"
      fail "check-glibc.mjs accepted a library linked natively against glibc $host_glibc"
    elif grep -q 'dlopen@GLIBC_2.34' "$work/native-check.log" && grep -q 'pthread_create@GLIBC_2.34' "$work/native-check.log"; then
      pass "check-glibc.mjs rejects a natively linked library and names dlopen@GLIBC_2.34, pthread_create@GLIBC_2.34"
    else
      cat "$work/native-check.log"
      fail "check-glibc.mjs rejected the native library without naming dlopen@GLIBC_2.34 and pthread_create@GLIBC_2.34"
    fi
  fi
fi

if ((failures > 0)); then
  echo "pack-check: $failures check(s) FAILED"
  exit 1
fi
echo "pack-check: all checks passed"
