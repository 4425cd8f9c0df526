// A small tmpfs per test, for the disk-full tests of the log and the database (needs root:
// mount). With URINGDB_TEST_NO_MOUNT=1 the tests do without (noMount).

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

/** URINGDB_TEST_NO_MOUNT=1: no tmpfs may be mounted here. */
export const noMount = process.env.URINGDB_TEST_NO_MOUNT === '1';

/**
 * Mounts a tmpfs of `size` on a fresh directory named `prefix`...; unmounts and removes it at
 * teardown. `instead` says what URINGDB_TEST_NO_MOUNT=1 does for this test (in the error).
 */
export function mountTmpfs(t, size, { prefix = 'uringdb-enospc-', instead }) {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', prefix));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmdirSync(dir);
    throw new Error(`cannot mount a tmpfs on ${dir} (${String(err.stderr ?? err.message).trim()}); run as root, or set URINGDB_TEST_NO_MOUNT=1 to ${instead}`);
  }
  t.teardown(() => {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    }
    fs.rmdirSync(dir);
  });
  return dir;
}

/** Bytes an unprivileged writer can still use on the file system of `dir`. */
export function freeBytes(dir) {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Leaves about `bytes` free on the tmpfs at `mnt` (a file `filler` takes the rest); returns its path. */
export function fillTo(mnt, bytes) {
  const filler = path.join(mnt, 'filler');
  fs.writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes(mnt) - bytes), 0xee));
  return filler;
}
