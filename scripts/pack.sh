#!/usr/bin/env bash
# Packs the two npm packages of this machine's platform into OUT_DIR:
#   uringdb-<version>.tgz                        the façade: dist/, binding.js, binding.d.ts,
#                                                README.md, LICENSE (no .node file)
#   uringdb-uringdb-linux-x64-gnu-<version>.tgz  the addon: uringdb.linux-x64-gnu.node
#
#   scripts/pack.sh [OUT_DIR] [--no-build]      (OUT_DIR defaults to target/npm-pack)
#
# Each package is staged in a temporary directory and packed from there, so nothing is
# written into the work tree: the platform package gets the built .node file and the
# LICENSE, the main package gets the optionalDependencies on every platform package
# (scripts/pack-manifest.mjs). A glibc platform's .node must need no glibc newer than 2.17
# (scripts/check-glibc.mjs): a native build (URINGDB_NATIVE_RELEASE=1) is refused.
# Prints the two tarball paths last, one per line.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

out_dir=target/npm-pack
build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -*) echo "pack.sh: unknown option '$arg'" >&2; exit 2 ;;
    *) out_dir=$arg ;;
  esac
done
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)

if [[ $build == 1 ]]; then
  bash scripts/build.sh --release --if-stale >&2
fi

platform=$(node scripts/pack-manifest.mjs platform)
node_file=uringdb.$platform.node
platform_dir=npm/$platform
for f in "$node_file" binding.js binding.d.ts dist/index.js dist/index.d.ts dist/binding.js "$platform_dir/package.json"; do
  [[ -f $f ]] || { echo "pack.sh: missing $f (run npm run build; is $platform a supported platform?)" >&2; exit 1; }
done

if [[ $platform == *-gnu ]] && ! node scripts/check-glibc.mjs "$node_file" >&2; then
  echo "pack.sh: $node_file needs a glibc newer than 2.17: not packing it (build it with npm run build)" >&2
  exit 1
fi

version=$(node -p "require('./package.json').version")
platform_version=$(node -p "require('./$platform_dir/package.json').version")
if [[ $version != "$platform_version" ]]; then
  echo "pack.sh: version mismatch: package.json has $version, $platform_dir/package.json has $platform_version" >&2
  exit 1
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/uringdb-pack.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# The platform package.
mkdir -p "$stage/platform"
cp "$platform_dir/package.json" "$platform_dir/README.md" LICENSE "$stage/platform/"
cp "$node_file" "$stage/platform/"
platform_tgz=$(cd "$stage/platform" && npm pack --silent --pack-destination "$out_dir" | tail -n 1)

# The main package.
mkdir -p "$stage/main"
cp -R dist binding.js binding.d.ts README.md LICENSE "$stage/main/"
node scripts/pack-manifest.mjs main "$stage/main/package.json"
main_tgz=$(cd "$stage/main" && npm pack --silent --pack-destination "$out_dir" | tail -n 1)

# The split must hold: the addon only in the platform package.
if tar -tzf "$out_dir/$main_tgz" | grep -q '\.node$'; then
  echo "pack.sh: $main_tgz contains a .node file; it belongs in the platform package" >&2
  exit 1
fi
if ! tar -tzf "$out_dir/$platform_tgz" | grep -qx "package/$node_file"; then
  echo "pack.sh: $platform_tgz lacks $node_file" >&2
  exit 1
fi

echo "pack.sh: $main_tgz:" >&2
tar -tzvf "$out_dir/$main_tgz" | awk '{ print "  " $3 "\t" $6 }' >&2
echo "pack.sh: $platform_tgz:" >&2
tar -tzvf "$out_dir/$platform_tgz" | awk '{ print "  " $3 "\t" $6 }' >&2
echo "$out_dir/$main_tgz"
echo "$out_dir/$platform_tgz"
