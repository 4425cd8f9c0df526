#!/usr/bin/env bash
# The fuzz harness (crates/fuzz; its crate documentation says what it checks and why).
#
#   npm run fuzz -- --list                      the targets
#   npm run fuzz -- <target> [seconds]          one target, 60 s by default, a fresh seed
#   npm run fuzz -- all <seconds> --seed N      every target (the CI stage: all 6 --seed 1)
#   npm run fuzz -- <target> --replay FILE...   saved inputs, once
#
# Builds the debug binary (integer overflow and debug assertions checked, as in the tests;
# it shares target/debug with cargo test, so after the test stage this is a relink at most)
# and runs it with the arguments given. Failing inputs go to crates/fuzz/crashes/ (ignored
# by git); the output names the file and the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p uringdb-fuzz
exec target/debug/uringdb-fuzz "$@"
