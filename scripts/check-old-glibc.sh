#!/usr/bin/env bash
# Loads the built addon under an older glibc than the build machine's, and uses it: Debian
# 11's glibc 2.31 (with its libstdc++ and libgcc_s, which this machine's Node also needs),
# run through that glibc's own loader (ld-2.31.so --library-path ...), so that Node, the
# addon and every library they pull in resolve against 2.31. A binary that needs
# GLIBC_2.34 fails here with "version `GLIBC_2.32' not found"; the zig build (glibc 2.17)
# opens a log and a database and reads back what it wrote.
#
#   scripts/check-old-glibc.sh       (npm run check:old-glibc; builds the release addon if stale)
#
# Why 2.31 and not 2.17: 2.31 (bullseye) is the oldest glibc Debian's registry still serves
# (buster's suite is gone), and the official Node.js 20 binary itself needs 2.28. Below that
# the evidence is the symbol-version check (scripts/check-glibc.mjs). Not run by `npm test`:
# it depends on Debian still serving bullseye. The .debs are cached in target/old-glibc/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

suite=bullseye
dir=$root/target/old-glibc
sysroot=$dir/$suite

bash scripts/build.sh --release --if-stale

if [[ ! -x $sysroot/lib/x86_64-linux-gnu/libc.so.6 ]]; then
  [[ $(uname -m) == x86_64 ]] || { echo "check-old-glibc.sh: x86_64 only" >&2; exit 2; }
  echo "check-old-glibc.sh: fetching $suite's libc6, libstdc++6 and libgcc-s1 into $dir"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/debs"
  cat >"$dir/sources.list" <<LIST
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
LIST
  # A private apt configuration: the machine's own sources and lists are left alone.
  apt_opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  for package in libc6 libstdc++6 libgcc-s1; do
    version=$(apt-cache "${apt_opts[@]}" madison "$package" |
      awk -F'|' -v suite="$suite" '$3 ~ suite { gsub(/ /, "", $2); print $2; exit }')
    [[ -n $version ]] || { echo "check-old-glibc.sh: $suite serves no $package" >&2; exit 1; }
    (cd "$dir/debs" && apt-get "${apt_opts[@]}" download -qq "$package=$version")
  done
  rm -rf "$sysroot.tmp" && mkdir -p "$sysroot.tmp"
  for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$sysroot.tmp"; done
  rm -rf "$sysroot" && mv "$sysroot.tmp" "$sysroot"
fi

loader=$(find "$sysroot/lib/x86_64-linux-gnu" -name 'ld-*.so*' -type f | head -n 1)
old() {
  "$loader" --library-path "$sysroot/lib/x86_64-linux-gnu:$sysroot/usr/lib/x86_64-linux-gnu" "$@"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/uringdb-old-glibc.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/smoke.cjs" <<'JS'
'use strict'
const assert = require('node:assert/strict')
const { join } = require('node:path')
const [root, dir] = process.argv.slice(2)
const glibc = process.report.getReport().header.glibcVersionRuntime
const { openLog, open } = require(join(root, 'dist', 'index.js'))
;(async () => {
  const log = await openLog(join(dir, 'log'), { sync: true })
  assert.deepEqual(await log.appendMany(['a', 'b', 'c']), [1, 2, 3])
  const seen = []
  for await (const record of log.read()) seen.push(record.data.toString())
  assert.deepEqual(seen, ['a', 'b', 'c'])
  const backend = log.stats().backend
  await log.close()
  const db = await open(join(dir, 'db'))
  await db.put('key', 'value')
  assert.equal(String(await db.get('key')), 'value')
  await db.close()
  const addons = Object.keys(require.cache).filter((file) => file.endsWith('.node'))
  console.log(`check-old-glibc: under glibc ${glibc}: loaded ${addons.join(', ')}; log (${backend}) and db read back`)
})().catch((error) => {
  console.error(error)
  process.exit(1)
})
JS

if old "$(node -p process.execPath)" "$work/smoke.cjs" "$root" "$work"; then
  echo "check-old-glibc: PASS ($suite's glibc $(basename "$loader"))"
else
  echo "check-old-glibc: FAIL: the addon does not work under $suite's glibc" >&2
  exit 1
fi
