#!/usr/bin/env bash
# fetch.sh SUITE [--refresh]: puts Debian SUITE's cloud kernel (linux-image-cloud-amd64, the
# version the registry serves now) in target/kernels/cache/SUITE/: vmlinuz, version (the
# package version) and package (the package the vmlinuz came from). Nothing to do when it is
# there already, unless --refresh.
#
# apt runs with a private state under target/kernels/apt/ (its own sources list, lists and
# cache; no dpkg status), so the system's sources and package lists are not touched: the
# "temporary sources entry" is a file there, and only the suites asked for are in it. The
# mirror is the system's (the first URIs of /etc/apt/sources.list.d/debian.sources).
set -euo pipefail
cd "$(dirname "$0")/../.."

suite=${1:?usage: fetch.sh SUITE [--refresh]}
refresh=${2:-}
case "$suite" in
  bullseye | bookworm | bookworm-backports | trixie | forky | sid) ;;
  *) echo "fetch.sh: unknown suite '$suite' (bullseye, bookworm, bookworm-backports, trixie, forky, sid)" >&2; exit 2 ;;
esac
cache=target/kernels/cache/$suite
if [[ -s $cache/vmlinuz && $refresh != --refresh ]]; then
  echo "kernels: $suite: cached $(cat "$cache/version")"
  exit 0
fi

apt_dir=$PWD/target/kernels/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/debs"
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$keyring] $mirror $suite main" >"$apt_dir/sources-$suite.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources-$suite.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir"
  -o Dir::Cache::Archives="$apt_dir/archives"
  -o Dir::State::status=/dev/null
  -o APT::Get::List-Cleanup=false
  -o Acquire::Languages=none
  -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
)
echo "kernels: $suite: apt-get update (private state in $apt_dir)"
if ! apt-get "${apt_opts[@]}" update -qq >"$apt_dir/update-$suite.log" 2>&1; then
  cat "$apt_dir/update-$suite.log" >&2
  echo "fetch.sh: could not read $suite's package index from $mirror" >&2
  exit 1
fi
# The meta package depends on the versioned image (linux-image-<abi>-cloud-amd64 (= ver)).
meta=$(apt-cache "${apt_opts[@]}" show "linux-image-cloud-amd64/$suite" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
if [[ -z $meta ]]; then
  echo "fetch.sh: $suite serves no linux-image-cloud-amd64" >&2
  exit 1
fi
image=$(apt-cache "${apt_opts[@]}" show "linux-image-cloud-amd64=$meta" 2>/dev/null |
  sed -n 's/^Depends: //p' | head -1 | tr ',' '\n' | grep -o 'linux-image-[^ ]*-cloud-amd64' | head -1)
if [[ -z $image ]]; then
  echo "fetch.sh: cannot tell the image package from linux-image-cloud-amd64 $meta" >&2
  exit 1
fi
# Newer suites split the image: the vmlinuz is in linux-binary-<abi> (under /usr/lib/modules).
candidates=("$image" "${image/linux-image-/linux-binary-}")
mkdir -p "$cache"
found=""
for pkg in "${candidates[@]}"; do
  apt-cache "${apt_opts[@]}" show "$pkg=$meta" >/dev/null 2>&1 || continue
  (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download -qq "$pkg=$meta" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  deb=$(ls -t "$apt_dir/debs/${pkg}_"*.deb 2>/dev/null | head -1)
  [[ -n $deb ]] || continue
  path=$(dpkg-deb -c "$deb" | awk '{ print $NF }' | grep -E '(^|/)vmlinuz(-[^/]*)?$' | head -1 || true)
  if [[ -n $path ]]; then
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "$path" >"$cache/vmlinuz.tmp"
    mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
    found=$pkg
    break
  fi
done
if [[ -z $found ]]; then
  echo "fetch.sh: no vmlinuz in ${candidates[*]} ($meta)" >&2
  exit 1
fi
echo "$meta" >"$cache/version"
echo "$found" >"$cache/package"
rm -f "$apt_dir/debs/"*.deb
echo "kernels: $suite: $found $meta ($(du -h "$cache/vmlinuz" | cut -f1))"
