#!/usr/bin/env bash
# Installs npm dependencies when they are missing or older than package.json / package-lock.json.
#
#   scripts/ensure-deps.sh [DIR]     (DIR defaults to the repo root; benchmark/ has its own)
#
# Run by `prestart` and `pretest`, so that `npm start` and `npm test` work on a fresh clone.
# It uses `npm install`, not `npm ci`: the lockfile still pins every version, but npm 11
# leaves out of the lockfile the optional platform packages of @napi-rs/cli's own dependencies
# that are unpublished or need a newer Node (e.g. @napi-rs/tar-android-arm64@1.1.3), and
# `npm ci` then refuses the lockfile as "out of sync" while `npm install` accepts it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.}
cd "$dir"
[[ -f package.json ]] || { echo "ensure-deps.sh: no package.json in $dir" >&2; exit 2; }

marker=node_modules/.package-lock.json
if [[ -f $marker && $marker -nt package.json && ( ! -f package-lock.json || $marker -nt package-lock.json ) ]]; then
  exit 0
fi
echo "ensure-deps.sh: installing npm dependencies in $dir"
npm install --no-audit --no-fund
# npm leaves the marker untouched when nothing changed; touch it so the next run skips.
if [[ -f $marker ]]; then touch "$marker"; fi
