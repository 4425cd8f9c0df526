#!/usr/bin/env bash
# The kernel matrix (issue 13): the uring and wal crates' tests, the io_uring feature probe and
# a durable-write benchmark, run on Debian's cloud kernels booted under qemu (TCG emulation).
#
#   npm run kernels                    every kernel below, every test binary
#   npm run kernels -- --ci            CI's subset: 5.10 and 6.12, the quicker test binaries
#   npm run kernels -- --kernels bookworm,sid [--tests full|ci] [--refresh] [--no-host]
#
# Kernels (Debian suites, the linux-image-cloud-amd64 each serves; the version is whatever the
# registry has at the time): bullseye (5.10, with Debian's io_uring backport), bookworm (6.1),
# trixie (6.12), sid (the newest). The host's kernel is the extra row "host" (probe and bench
# natively; its tests are the cargo-test stage's).
#
# Steps, all cached under target/kernels/ (gitignored):
#   1. fetch.sh: apt-get download of each kernel package through a private apt state (the
#      system's sources and lists are not touched); the vmlinuz is kept in cache/<suite>/.
#   2. cargo test --no-run and the probe/durable_bench/deny_io_uring examples, built static for
#      x86_64-unknown-linux-musl (opt-level 1, no debug info; debug assertions stay on);
#   3. an initramfs: static busybox, guest-init.sh as /init, the binaries in /uringdb, the
#      wal fixtures at the path the tests were compiled with;
#   4. per kernel: a fresh sparse ext4 image on an emulated NVMe disk, one boot under
#      qemu-system-x86_64 -accel tcg, bounded by a timeout; the console goes to
#      runs/<suite>.console.log, the results (second serial port) to runs/<suite>.results;
#   5. report.mjs prints the table and exits non-zero on any failure or missing result
#      (report.test.mjs, run first, shows that each kind of failure does fail it).
#
# Emulated timings prove function, not speed: the table marks them so.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=scripts/kernels

ci=0
refresh=0
host=1
tests=""
kernels=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ci) ci=1 ;;
    --refresh) refresh=1 ;;
    --no-host) host=0 ;;
    --tests) tests=${2:?--tests needs ci or full}; shift ;;
    --kernels) kernels=${2:?--kernels needs a comma-separated list of suites}; shift ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "kernels: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [[ $ci == 1 ]]; then
  kernels=${kernels:-bullseye,trixie}
  tests=${tests:-ci}
fi
kernels=${kernels:-bullseye,bookworm,trixie,sid}
tests=${tests:-full}
case "$tests" in ci | full) ;; *) echo "kernels: --tests must be ci or full" >&2; exit 2 ;; esac
IFS=, read -r -a suites <<<"$kernels"

# Bounds (seconds): a hung guest or test fails the run instead of eating CI's time.
if [[ $tests == ci ]]; then
  test_timeout_s=240
  boot_timeout_s=600
  bench_ms=1000
else
  test_timeout_s=1200
  boot_timeout_s=5400
  bench_ms=2000
fi

out=target/kernels
mkdir -p "$out/runs"
# One run at a time: two would overwrite each other's build outputs, initramfs and results.
exec 9>"$out/lock"
if ! flock -n 9; then
  echo "kernels: another run holds $out/lock" >&2
  exit 1
fi

# apt_need PACKAGE... : installs the Debian packages that are missing (root, as on CI here).
apt_need() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [[ ${#missing[@]} == 0 ]] && return 0
  echo "kernels: apt-get install ${missing[*]}" >&2
  apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
apt_need qemu-system-x86 busybox-static cpio e2fsprogs
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl
fi

# The checker must be able to fail (a good result passes, broken ones fail): seconds.
node "$here/report.test.mjs"

# 1. Kernels. One that cannot be fetched is reported (and fails the run); the others still run.
fetched=()
for suite in "${suites[@]}"; do
  args=("$suite")
  [[ $refresh == 1 ]] && args+=(--refresh)
  rm -f "$out/runs/$suite.results" "$out/runs/$suite.console.log"
  if bash "$here/fetch.sh" "${args[@]}"; then
    fetched+=("$suite")
  else
    echo "kernels: could not fetch $suite's kernel: it is not run" >&2
    echo "@@error could not fetch the $suite kernel from the Debian registry (see the log above)" \
      >"$out/runs/$suite.results"
  fi
done

# 2. Static guest binaries. The test list: every test binary of the two crates for `full`;
# for `ci` those that finish in seconds natively (the long seeded crash models, segment
# growth, corruption and recycling suites take minutes under emulation; the full matrix runs
# them). Kept in one place: tests-ci.txt names the CI subset.
musl=x86_64-unknown-linux-musl
export CARGO_PROFILE_DEV_OPT_LEVEL=1 CARGO_PROFILE_DEV_DEBUG=0
build_log=$out/build.log
echo "kernels: building the static test binaries and examples ($musl)"
cargo test --no-run --target "$musl" -p uringdb-uring -p uringdb-wal --lib --tests \
  --message-format=json 2>"$build_log" >"$out/build.json" || {
  tail -30 "$build_log" >&2
  exit 1
}
cargo build --target "$musl" -p uringdb-uring -p uringdb-wal \
  --example probe --example deny_io_uring --example durable_bench 2>>"$build_log" || {
  tail -30 "$build_log" >&2
  exit 1
}

stage=$out/initramfs
rm -rf "$stage"
mkdir -p "$stage"/{bin,dev,proc,sys,mnt,tmp,uringdb/deps,uringdb/examples}
cp /bin/busybox "$stage/bin/busybox"
cp "$here/guest-init.sh" "$stage/init"
chmod +x "$stage/init"
# "test binary name": <crate>.<target>, e.g. wal.crash, uring.uringdb_uring (unit tests).
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean)
  for (const l of lines) {
    const m = JSON.parse(l)
    if (m.reason !== "compiler-artifact" || !m.profile.test || !m.executable) continue
    const crate = m.package_id.includes("crates/uring") ? "uring" : "wal"
    console.log(`${crate}.${m.target.name} ${m.executable}`)
  }' "$out/build.json" >"$out/tests.txt"
all_tests=()
while read -r name exe; do
  cp "$exe" "$stage/uringdb/deps/$name"
  all_tests+=("$name")
done <"$out/tests.txt"
for ex in probe deny_io_uring durable_bench; do
  cp "target/$musl/debug/examples/$ex" "$stage/uringdb/examples/$ex"
done
printf '%s\n' "${all_tests[@]}" >"$stage/uringdb/tests-full.txt"
grep -v '^#' "$here/tests-ci.txt" | sed '/^$/d' >"$stage/uringdb/tests-ci.txt"
for t in $(cat "$stage/uringdb/tests-ci.txt"); do
  [[ -e $stage/uringdb/deps/$t ]] || { echo "kernels: tests-ci.txt names $t, which was not built" >&2; exit 1; }
done
# format_fixtures reads env!("CARGO_MANIFEST_DIR")/tests/fixtures, a path fixed at compile time.
mkdir -p "$stage$root/crates/wal/tests"
cp -r crates/wal/tests/fixtures "$stage$root/crates/wal/tests/fixtures"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initramfs.cpio.gz"
echo "kernels: initramfs $(du -h "$out/initramfs.cpio.gz" | cut -f1), tests: $tests ($(wc -l <"$stage/uringdb/tests-$tests.txt") binaries)"

# 3. The host's row: probe and bench natively (no tests: the cargo-test stage runs them).
if [[ $host == 1 ]]; then
  host_tmp=$out/runs/host-tmp
  rm -rf "$host_tmp"
  mkdir -p "$host_tmp"
  {
    echo "@@kernel $(uname -r)"
    echo "@@probe $("target/$musl/debug/examples/probe")"
    for backend in io_uring portable; do
      echo "@@bench $("target/$musl/debug/examples/durable_bench" --dir "$host_tmp" --backend "$backend" --duration-ms "$bench_ms")"
    done
    echo "@@done"
  } >"$out/runs/host.results" || true
  rm -rf "$host_tmp"
fi

# 4. Boots.
for suite in "${fetched[@]}"; do
  vmlinuz=$out/cache/$suite/vmlinuz
  disk=$out/runs/$suite.disk.img
  rm -f "$disk"
  truncate -s 4G "$disk"
  mkfs.ext4 -F -q "$disk"
  console=$out/runs/$suite.console.log
  results=$out/runs/$suite.results
  : >"$results"
  echo "kernels: booting $suite ($(cat "$out/cache/$suite/version")) under TCG, at most ${boot_timeout_s}s"
  start=$SECONDS
  rc=0
  # -no-reboot: a guest panic (panic=-1 reboots at once) ends qemu instead of looping.
  timeout --kill-after=10 "$boot_timeout_s" qemu-system-x86_64 -accel tcg -m 2048 -smp 2 \
    -display none -no-reboot -monitor none \
    -serial "file:$console" -serial "file:$results" \
    -kernel "$vmlinuz" -initrd "$out/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet uringdb.tests=tests-$tests.txt uringdb.test_timeout=$test_timeout_s uringdb.bench_ms=$bench_ms uringdb.threads=2" \
    -drive "file=$disk,if=none,id=d0,format=raw,cache=unsafe" -device nvme,drive=d0,serial=uringdb \
    </dev/null || rc=$?
  echo "kernels: $suite finished in $((SECONDS - start))s (qemu exit $rc)"
  if [[ $rc == 124 || $rc == 137 ]]; then
    echo "@@error the guest did not finish within ${boot_timeout_s}s (hung?); console: $console" >>"$results"
  fi
  echo "@@boot $((SECONDS - start)) $rc" >>"$results"
  rm -f "$disk"
done

# 5. The table.
report=(--tests "$tests" --runs "$out/runs")
[[ $host == 1 ]] && report+=(--host)
node "$here/report.mjs" "${report[@]}" "${suites[@]}"
