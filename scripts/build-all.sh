#!/usr/bin/env bash
# Cross-builds the release addon for every target declared in package.json's
# napi.targets (or those named), with zig (scripts/ensure-zig.sh), into target/build-all/:
#
#   scripts/build-all.sh [--if-stale] [TRIPLE ...]     (npm run build:all)
#
#   x86_64-unknown-linux-gnu   -> target/build-all/uringdb.linux-x64-gnu.node    (glibc >= 2.17)
#   aarch64-unknown-linux-gnu  -> target/build-all/uringdb.linux-arm64-gnu.node  (glibc >= 2.17)
#   x86_64-unknown-linux-musl  -> target/build-all/uringdb.linux-x64-musl.node
#   aarch64-unknown-linux-musl -> target/build-all/uringdb.linux-arm64-musl.node
#   aarch64-apple-darwin       -> target/build-all/uringdb.darwin-arm64.node     (macOS >= 11)
#   x86_64-apple-darwin        -> target/build-all/uringdb.darwin-x64.node       (macOS >= 11)
#
# Each is what the npm/<platform>/ package ships (scripts/pack.sh packs the host's from the
# repo root; the release workflow packs each from here). glibc targets are linked against
# glibc 2.17's symbol versions (`<triple>.2.17`); musl targets are built as cdylibs with a
# dynamically linked musl libc (`-C target-feature=-crt-static`: Node on musl loads addons
# with dlopen, which a static musl binary cannot serve). The Rust standard library of each
# target comes from `rustup target add` (run here when missing). macOS builds link against
# the libSystem stubs zig carries (no Xcode SDK here; the linker's "xcrun failed" warning is
# expected); they cannot run here (scripts/check-macho.mjs checks them statically). The binding's JS and .d.ts
# are not regenerated (scripts/build.sh owns them). scripts/cross-check.sh checks the results.
#
# --if-stale skips a target whose .node is newer than every input (crates, Cargo.*).
set -euo pipefail
cd "$(dirname "$0")/.."

if_stale=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --if-stale) if_stale=1 ;;
    -*) echo "build-all.sh: unknown option '$arg'" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
if [[ ${#targets[@]} == 0 ]]; then
  mapfile -t targets < <(node -p "require('./package.json').napi.targets.join('\n')")
fi

platform_of() {
  case "$1" in
    x86_64-unknown-linux-gnu) echo linux-x64-gnu ;;
    aarch64-unknown-linux-gnu) echo linux-arm64-gnu ;;
    x86_64-unknown-linux-musl) echo linux-x64-musl ;;
    aarch64-unknown-linux-musl) echo linux-arm64-musl ;;
    aarch64-apple-darwin) echo darwin-arm64 ;;
    x86_64-apple-darwin) echo darwin-x64 ;;
    *) return 1 ;;
  esac
}

out=target/build-all
mkdir -p "$out"
zig_path=$(bash scripts/ensure-zig.sh)
export PATH=$zig_path:$PATH
installed=$(rustup target list --installed)

for triple in "${targets[@]}"; do
  platform=$(platform_of "$triple") || { echo "build-all.sh: unsupported target '$triple'" >&2; exit 2; }
  file=$out/uringdb.$platform.node
  if [[ $if_stale == 1 && -f $file ]] &&
    [[ -z $(find Cargo.toml Cargo.lock crates \( -path '*/target' -prune \) -o \( -type f -newer "$file" -print \) | head -n 1) ]]; then
    echo "build-all.sh: $file is up to date"
    continue
  fi
  if ! grep -qx "$triple" <<<"$installed"; then
    echo "build-all.sh: rustup target add $triple" >&2
    rustup target add "$triple" >&2
  fi
  zig_target=$triple
  rustflags=${RUSTFLAGS:-}
  case "$triple" in
    *-gnu) zig_target=$triple.2.17 ;;
    *-musl) rustflags="$rustflags -C target-feature=-crt-static" ;;
  esac
  # macOS: the oldest macOS that Node 22 and 24 run on (zig would otherwise target the newest).
  export MACOSX_DEPLOYMENT_TARGET=11.0
  start=$SECONDS
  echo "build-all.sh: $triple -> $file" >&2
  RUSTFLAGS="$rustflags" npx --no-install napi build --platform --release --no-js \
    --manifest-path crates/node/Cargo.toml --output-dir "$out" --dts "$out/tmp/binding.d.ts" \
    --cross-compile --target "$zig_target" >&2
  [[ -f $file ]] || { echo "build-all.sh: $file was not written" >&2; exit 1; }
  echo "build-all.sh: $file built in $((SECONDS - start)) s"
done
