#!/usr/bin/env bash
# Makes sure zig and cargo-zigbuild are installed, then prints the directories to put first
# on PATH (one line, colon-separated). Everything else goes to stderr.
#
#   PATH="$(bash scripts/ensure-zig.sh):$PATH"
#
# Why: the release addon is linked by zig against glibc 2.17's symbol versions
# (`--target x86_64-unknown-linux-gnu.2.17`, see scripts/build.sh), so that the binary we
# ship loads on Debian 11, Ubuntu 20.04, RHEL 8 and Amazon Linux 2, not only on glibc 2.34+.
#
# Both tools come from PyPI (the `ziglang` wheel carries the zig toolchain, the
# `cargo-zigbuild` wheel the cargo subcommand), pinned below, installed with
# `pip install --target` into a cache directory shared by every clone on the machine:
#   ${URINGDB_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/uringdb}/zig-<ziglang>-<cargo-zigbuild>/
# Present: this script only checks that both binaries run (well under a second). Absent:
# one pip install (about 50 MB, a few seconds here). The install goes to a temporary
# directory that is renamed into place, so that two builds running at once cannot see half
# an install. A failed install exits non-zero with a message; it never falls back silently.
set -euo pipefail

ziglang_version=0.17.1
cargo_zigbuild_version=0.24.1

tools_dir=${URINGDB_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/uringdb}
dir=$tools_dir/zig-$ziglang_version-$cargo_zigbuild_version
# The ziglang wheel puts the zig executable (with its lib/ beside it) under ziglang/;
# the cargo-zigbuild wheel puts its executable under bin/.
path_dirs=$dir/ziglang:$dir/bin

works() {
  [[ -x $dir/ziglang/zig && -x $dir/bin/cargo-zigbuild ]] &&
    "$dir/ziglang/zig" version >/dev/null 2>&1 &&
    "$dir/bin/cargo-zigbuild" --version >/dev/null 2>&1
}

if works; then
  echo "$path_dirs"
  exit 0
fi

python=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -m pip --version >/dev/null 2>&1; then
    python=$candidate
    break
  fi
done
if [[ -z $python ]]; then
  echo "ensure-zig.sh: no python3 with pip on PATH: cannot install ziglang and cargo-zigbuild." >&2
  echo "ensure-zig.sh: the release addon needs them (it must need no glibc newer than 2.17)." >&2
  exit 1
fi

echo "ensure-zig.sh: installing ziglang==$ziglang_version cargo-zigbuild==$cargo_zigbuild_version into $dir" >&2
mkdir -p "$tools_dir"
# A broken earlier install (interrupted, or a wheel that does not run here) is replaced.
if [[ -e $dir ]]; then rm -rf "$dir"; fi
tmp=$(mktemp -d "$tools_dir/.zig-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if ! "$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
  --target "$tmp" "ziglang==$ziglang_version" "cargo-zigbuild==$cargo_zigbuild_version" >&2; then
  echo "ensure-zig.sh: pip could not install ziglang==$ziglang_version and cargo-zigbuild==$cargo_zigbuild_version." >&2
  echo "ensure-zig.sh: the release addon needs them (it must need no glibc newer than 2.17)." >&2
  exit 1
fi
# Another build may have finished the same install meanwhile: keep the first one.
if ! mv -T "$tmp" "$dir" 2>/dev/null && ! works; then
  echo "ensure-zig.sh: could not move the install into $dir" >&2
  exit 1
fi
if ! works; then
  echo "ensure-zig.sh: installed, but $dir/ziglang/zig or $dir/bin/cargo-zigbuild does not run" >&2
  exit 1
fi
echo "ensure-zig.sh: zig $("$dir/ziglang/zig" version), $("$dir/bin/cargo-zigbuild" --version)" >&2
echo "$path_dirs"
