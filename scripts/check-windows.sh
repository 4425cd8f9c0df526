#!/usr/bin/env bash
# Compiles the engine crates (uring, wal, lsm: the I/O layer and everything above it up to
# the binding) and their tests for Windows, without running them:
#
#   scripts/check-windows.sh        (npm run check:windows)
#
# `cargo check --target x86_64-pc-windows-gnu --lib --tests` (with Debian's mingw-w64 C
# compiler for zstd's C code; rustup adds the target on first use). It shows that the
# Windows branches behind the `cfg` gates compile: positional WriteFile/ReadFile writes and
# reads, an exclusive open as the LOCK, FlushFileBuffers as the durability point, no table
# mapping, no directory sync. It does not run anything (no Windows here), and the binding
# crate is not checked: napi-rs's Windows build needs the MSVC toolchain (or libnode.dll
# for the -gnu target), which these machines lack. Test files that exercise Unix-only
# behaviour (symlinks, rlimits, /proc) are compiled on Unix only; the examples are Linux
# tools. The output goes to target/windows-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
triple=x86_64-pc-windows-gnu
if ! rustup target list --installed | grep -qx "$triple"; then
  echo "check-windows.sh: rustup target add $triple" >&2
  rustup target add "$triple" >&2
fi
if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  echo "check-windows.sh: apt-get install gcc-mingw-w64-x86-64 (zstd's C code)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-mingw-w64-x86-64 >&2
fi
CARGO_TARGET_DIR=target/windows-check cargo check --target "$triple" \
  -p uringdb-uring -p uringdb-wal -p uringdb-lsm --lib --tests
echo "check-windows.sh: uring, wal and lsm (libraries and tests) compile for $triple"
