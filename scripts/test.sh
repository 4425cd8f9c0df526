#!/usr/bin/env bash
# The whole test suite, run by `npm test` (and so by CI through .ci/run).
#
# Stages, in order; every stage runs even when an earlier one failed (except that the
# JavaScript stages need the build), so one run shows every problem:
#   cargo-test       cargo nextest run --workspace (+ doctests), or cargo test --workspace
#   loom             the commit ring's ownership protocol and the memtable skiplist's
#                    publication protocol, model-checked with loom (crates/wal/src/ring.rs,
#                    crates/lsm/src/memtable/skiplist/mod.rs; own target dir, --cfg loom, release)
#   fuzz             scripts/fuzz.sh all: every fuzz target (crates/fuzz) for a few seconds
#                    with a fixed seed, after its seeds and kept regressions; one test each
#   build            scripts/build.sh --release: the addon that ships, linked with zig against
#                    glibc 2.17 (it installs zig from PyPI on first use), which the JS tests
#                    and the pack check use; and cargo build -p uringdb-uring --examples
#                    (deny_io_uring, for the JS tests)
#   ava-io_uring     ava with URINGDB_TEST_BACKEND=io_uring
#   ava-portable     ava with URINGDB_TEST_BACKEND=portable
#   ava-node24       ava again under Node 24 (and ava-node22 under Node 22): official builds
#                    from the npm registry's node-linux-<arch> packages, cached in target/node/
#   lint             scripts/lint.sh (rustfmt, clippy -D warnings, tsc --strict)
#   typedoc          API docs, warnings are errors
#   pack-check       scripts/pack-check.sh (installs the packed tarballs without Rust; checks
#                    that the addon needs no glibc newer than 2.17)
#   cross            scripts/cross-check.sh --build linux-arm64-gnu linux-x64-musl: the arm64
#                    glibc addon (zig cross build) runs the API smoke test under qemu-user with
#                    Node 22 for arm64; the x64 musl addon loads under musl's loader
#   kernels          scripts/kernels/run.sh --ci (npm run kernels -- --ci): the uring and wal
#                    crates' quicker test binaries, the io_uring probe and the durable bench in
#                    Debian's 5.10 and 6.12 cloud kernels under qemu TCG, and the fallback with
#                    kernel.io_uring_disabled=2 and under seccomp; kernels and binaries cached in
#                    target/kernels/, each boot time-boxed
#   bench-tiny       npm run bench:tiny: every benchmark code path in tiny mode, so that the
#                    benchmarks cannot rot (STYLE.md habit 12); installs benchmark/'s own deps
#
# The last line is "N passed, N failed": N passed counts the Rust tests and the ava tests of
# both backend runs; N failed counts the failed tests plus one for each stage that failed
# without a failed test to show for it (a build, lint, docs or pack failure, a crashed
# runner). The exit status is non-zero when anything failed. Logs: target/test-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

log_dir=target/test-logs
mkdir -p "$log_dir"
export NEXTEST_HIDE_PROGRESS_BAR=1

# Upper bounds on each runner, in seconds, so that a hang fails the run instead of eating
# CI's 90 minutes. Each test also has its own limit (ava: "timeout" in package.json).
cargo_timeout_s=1800
ava_timeout_s=900

tests_passed=0
tests_failed=0
stage_failures=0
summary_rows=()
built=0

strip_ansi() { sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' "$1"; }

# Sums the numbers captured by a sed -n pattern over a log file.
sum_matches() {
  local file=$1 pattern=$2
  strip_ansi "$file" | sed -nE "s/$pattern/\\1/p" | awk '{ s += $1 } END { print s + 0 }'
}

stage_passed=0
stage_failed=0

# The whole workspace, the binding crate included: its unit tests link outside Node only
# because napi's `dyn-symbols` feature resolves the napi_* symbols at load time (without it
# the test binary fails to link with "undefined symbol: napi_...").
cargo_scope=(--workspace)

stage_cargo_test() {
  local log=$log_dir/cargo-test.log rc=0
  : >"$log"
  if cargo nextest --version >/dev/null 2>&1; then
    timeout "$cargo_timeout_s" cargo nextest run "${cargo_scope[@]}" --no-fail-fast --no-tests=warn 2>&1 |
      tee -a "$log" || rc=1
    # nextest does not run doctests.
    timeout "$cargo_timeout_s" cargo test "${cargo_scope[@]}" --doc 2>&1 | tee -a "$log" || rc=1
    # "Summary [ 1.2s] 12 tests run: 11 passed, 1 failed, 0 skipped"
    stage_passed=$(sum_matches "$log" '^ *Summary .* tests? run: ([0-9]+) passed.*')
    stage_failed=$(($(sum_matches "$log" '^ *Summary .* ([0-9]+) failed.*') +
      $(sum_matches "$log" '^ *Summary .* ([0-9]+) timed out.*')))
  else
    timeout "$cargo_timeout_s" cargo test "${cargo_scope[@]}" --no-fail-fast 2>&1 | tee -a "$log" || rc=1
  fi
  # "test result: ok. 3 passed; 0 failed; ..." (doctests, or every binary without nextest)
  stage_passed=$((stage_passed + $(sum_matches "$log" '^test result: .* ([0-9]+) passed;.*')))
  stage_failed=$((stage_failed + $(sum_matches "$log" '^test result: .* ([0-9]+) failed;.*')))
  return $rc
}

# The ring's model under loom explores every interleaving up to LOOM_MAX_PREEMPTIONS
# preemptions (3 finishes in about a minute here; unbounded does not finish in CI's time).
stage_loom() {
  local log=$log_dir/loom.log rc=0
  RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
    timeout "$cargo_timeout_s" cargo test -p uringdb-wal --release --lib ring::loom 2>&1 |
    tee "$log" || rc=1
  # The memtable skiplist's publication protocol (crates/lsm/src/memtable/skiplist/mod.rs).
  RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
    timeout "$cargo_timeout_s" cargo test -p uringdb-lsm --release --lib memtable 2>&1 |
    tee -a "$log" || rc=1
  stage_passed=$(sum_matches "$log" '^test result: .* ([0-9]+) passed;.*')
  stage_failed=$(sum_matches "$log" '^test result: .* ([0-9]+) failed;.*')
  if [[ $rc == 0 && $stage_passed == 0 ]]; then
    echo "loom: no model ran" >&2
    rc=1
  fi
  return $rc
}

stage_build() {
  local rc=0
  bash scripts/build.sh --release 2>&1 | tee "$log_dir/build.log" && built=1 || rc=1
  # target/debug/examples/deny_io_uring: __test__/log/fallback.test.mjs and db/fallback.test.mjs run
  # children under this seccomp wrapper to prove the fallback from io_uring to the portable backend.
  cargo build -p uringdb-uring --examples 2>&1 | tee -a "$log_dir/build.log" || rc=1
  return $rc
}

# ava over __test__/**/*.test.mjs with one I/O backend; counts come from its TAP trailer
# ("# pass N", "# fail N").
stage_ava() {
  local backend=$1 log=$log_dir/ava-$1.log rc=0
  if [[ $built != 1 ]]; then
    echo "skipped: the build failed" | tee "$log"
    return 1
  fi
  URINGDB_TEST_BACKEND=$backend timeout "$ava_timeout_s" npx --no-install ava --tap 2>&1 |
    tee "$log" || rc=1
  stage_passed=$(sum_matches "$log" '^# pass ([0-9]+).*')
  stage_failed=$(sum_matches "$log" '^# fail ([0-9]+).*')
  return $rc
}

# The Node versions users run (Node 20, this machine's, is past end of life): the official
# builds published on the npm registry as node-linux-<arch>, installed once into
# target/node/<major> (about 7 s and 30 MiB each; nothing is downloaded from anywhere else).
# Prints the node binary's path.
node_for() {
  local major=$1 arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "no node-linux package for $(uname -m)" >&2; return 1 ;;
  esac
  local dir=target/node/$major
  local bin=$dir/node_modules/node-linux-$arch/bin/node
  if [[ ! -x $bin ]]; then
    npm install --no-save --no-audit --no-fund --prefix "$dir" "node-linux-$arch@$major" >&2 || return 1
  fi
  echo "$PWD/$bin"
}

# The whole ava suite again under another Node major (ioBackend auto: io_uring here, the
# fallback where it is refused); the addon is N-API, so the same build serves every version.
# Its node goes first on PATH, so that the child processes the tests spawn run on it too.
stage_ava_node() {
  local major=$1 log=$log_dir/ava-node$1.log rc=0 node
  if [[ $built != 1 ]]; then
    echo "skipped: the build failed" | tee "$log"
    return 1
  fi
  if ! node=$(node_for "$major"); then
    echo "could not install Node $major from the npm registry" | tee "$log"
    return 1
  fi
  echo "Node $("$node" --version) at $node, ioBackend auto" | tee "$log"
  PATH="$(dirname "$node"):$PATH" URINGDB_TEST_BACKEND=auto timeout "$ava_timeout_s" \
    "$node" node_modules/ava/entrypoints/cli.mjs --tap 2>&1 | tee -a "$log" || rc=1
  stage_passed=$(sum_matches "$log" '^# pass ([0-9]+).*')
  stage_failed=$(sum_matches "$log" '^# fail ([0-9]+).*')
  if [[ $rc == 0 && $stage_passed == 0 ]]; then
    echo "ava under Node $major ran no test" | tee -a "$log"
    return 1
  fi
  return $rc
}

# Every fuzz target for fuzz_seconds after its seeds, with a fixed seed, so that CI runs
# the same inputs every time (a longer, fresh-seed run: npm run fuzz -- <target> [seconds]).
# 16 targets x 6 s: about 100 s here. Each target counts as one test: "fuzz result: N passed;
# M failed".
fuzz_seconds=6
stage_fuzz() {
  local log=$log_dir/fuzz.log rc=0
  timeout "$cargo_timeout_s" bash scripts/fuzz.sh all "$fuzz_seconds" --seed 1 2>&1 |
    tee "$log" || rc=1
  stage_passed=$(sum_matches "$log" '^fuzz result: ([0-9]+) passed;.*')
  stage_failed=$(sum_matches "$log" '^fuzz result: .* ([0-9]+) failed.*')
  return $rc
}

stage_lint() { bash scripts/lint.sh 2>&1 | tee "$log_dir/lint.log"; }

stage_typedoc() {
  if [[ ! -f binding.d.ts ]]; then
    echo "skipped: binding.d.ts is missing (the build failed)" | tee "$log_dir/typedoc.log"
    return 1
  fi
  npx --no-install typedoc 2>&1 | tee "$log_dir/typedoc.log"
}

stage_pack_check() {
  if [[ $built != 1 ]]; then
    echo "skipped: the build failed" | tee "$log_dir/pack-check.log"
    return 1
  fi
  bash scripts/pack-check.sh 2>&1 | tee "$log_dir/pack-check.log"
}

# The other Linux targets (issue 13), as far as this x86-64 machine can run them: the arm64
# glibc build (cross-built with zig) passes the API smoke test under qemu-user with Node 22
# for arm64, the x64 musl build loads under musl's loader (scripts/cross-check.sh says what
# each check covers). Each check line counts as one test. The arm64 musl build is left to
# npm run build:all and the release workflow (it adds a third cross build to CI's time).
stage_cross() {
  local log=$log_dir/cross.log rc=0
  if [[ $built != 1 ]]; then
    echo "skipped: the build failed" | tee "$log"
    return 1
  fi
  bash scripts/cross-check.sh --build linux-arm64-gnu linux-x64-musl 2>&1 | tee "$log" || rc=1
  stage_passed=$(grep -c '^cross-check: PASS' "$log" || true)
  stage_failed=$(grep -c '^cross-check: FAIL' "$log" || true)
  if [[ $rc == 0 && $stage_passed == 0 ]]; then
    echo "the cross check ran no check" | tee -a "$log"
    return 1
  fi
  return $rc
}

# The kernel matrix's CI subset (issue 13): two kernels other than the host's. Its counts are
# the guests' Rust tests plus one per check (probe, bench, fallback), from the report's last
# line "kernel-matrix result: N passed; M failed". It needs no addon: it builds its own static
# binaries. Bounded as a whole too (each boot has its own time box inside).
kernels_timeout_s=1200
stage_kernels() {
  local log=$log_dir/kernels.log rc=0
  timeout "$kernels_timeout_s" bash scripts/kernels/run.sh --ci 2>&1 | tee "$log" || rc=1
  stage_passed=$(sum_matches "$log" '^kernel-matrix result: ([0-9]+) passed;.*')
  stage_failed=$(sum_matches "$log" '^kernel-matrix result: .* ([0-9]+) failed.*')
  if [[ $rc == 0 && $stage_passed == 0 ]]; then
    echo "the kernel matrix ran no test" | tee -a "$log"
    return 1
  fi
  return $rc
}

stage_bench_tiny() {
  if [[ $built != 1 ]]; then
    echo "skipped: the build failed" | tee "$log_dir/bench-tiny.log"
    return 1
  fi
  npm run --silent bench:tiny 2>&1 | tee "$log_dir/bench-tiny.log"
}

# run_stage NAME FUNCTION [ARGS...]: runs one stage, times it, and adds its counts.
run_stage() {
  local name=$1 status=ok start=$SECONDS
  shift
  stage_passed=0
  stage_failed=0
  echo
  echo "==> $name"
  # `if` keeps set -e from ending the script when a stage fails.
  if "$@"; then :; else status=FAILED; fi
  local elapsed=$((SECONDS - start))
  tests_passed=$((tests_passed + stage_passed))
  tests_failed=$((tests_failed + stage_failed))
  if [[ $status == FAILED && $stage_failed == 0 ]]; then
    stage_failures=$((stage_failures + 1))
  fi
  local counts=""
  if ((stage_passed + stage_failed > 0)); then
    counts="$stage_passed passed, $stage_failed failed"
  fi
  summary_rows+=("$(printf '%-14s %-7s %6ss  %s' "$name" "$status" "$elapsed" "$counts")")
  echo "<== $name: $status in ${elapsed}s${counts:+ ($counts)}"
}

total_start=$SECONDS
run_stage cargo-test stage_cargo_test
run_stage loom stage_loom
run_stage fuzz stage_fuzz
run_stage build stage_build
run_stage ava-io_uring stage_ava io_uring
run_stage ava-portable stage_ava portable
run_stage ava-node24 stage_ava_node 24
run_stage ava-node22 stage_ava_node 22
run_stage lint stage_lint
run_stage typedoc stage_typedoc
run_stage pack-check stage_pack_check
run_stage cross stage_cross
run_stage kernels stage_kernels
run_stage bench-tiny stage_bench_tiny

echo
echo "Stage          Status     Time  Tests"
printf '%s\n' "${summary_rows[@]}"
echo "total $((SECONDS - total_start))s; logs in $log_dir/"
if ((stage_failures > 0)); then
  echo "$stage_failures stage(s) failed without a failing test (counted once each below)"
fi
echo
echo "$tests_passed passed, $((tests_failed + stage_failures)) failed"
if ((tests_failed + stage_failures > 0)); then
  exit 1
fi
