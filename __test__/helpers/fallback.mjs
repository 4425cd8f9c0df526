// The io_uring fallback tests of the log and the database: the seccomp helper that refuses
// io_uring_setup in a child (target/debug/examples/deny_io_uring installs the filter and execs
// node), and the open-report children (fixtures/open-report.mjs, fixtures/db-open-report.mjs).

import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './uringdb.mjs';
import { spawnChild, parseTagged } from './child.mjs';

export const denyIoUring = path.join(repoRoot, 'target', 'debug', 'examples', 'deny_io_uring');

/** Fails the test and returns false when the seccomp helper is not built. */
export function requireHelper(t) {
  if (!fs.existsSync(denyIoUring)) {
    t.fail(`${denyIoUring} is missing: build it with \`cargo build -p uringdb-uring --examples\` (npm test does this before ava)`);
    return false;
  }
  return true;
}

/** Runs an open-report `fixture` on `dir`: { ok: {...}, stderr } or { error: {code, message}, stderr }. */
export async function openReport(t, fixture, dir, ioBackend, wrapper) {
  const child = spawnChild(t, fixture, [dir, ioBackend], { wrapper });
  const line = await child.waitFor((l) => l.startsWith('OK ') || l.startsWith('E '), 30_000, 'OK or E');
  await child.closed;
  return line.startsWith('OK ') ? { ok: parseTagged(line, 'OK'), stderr: child.stderr() } : { error: parseTagged(line, 'E'), stderr: child.stderr() };
}

/** kernel.io_uring_disabled (0 where the kernel has no such sysctl). */
export function ioUringDisabled() {
  try {
    return Number(fs.readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim());
  } catch {
    return 0; // Older kernels have no such sysctl: io_uring is not disabled by it.
  }
}

/** Asserts that `error` is the refusal of ioBackend 'io_uring' under the seccomp filter. */
export function assertRefused(t, result) {
  if (!result.error) {
    t.fail(`open with 'io_uring' under deny_io_uring succeeded with backend ${result.ok.backend}`);
    return;
  }
  t.is(result.error.code, 'ERR_URINGDB_IO_URING_UNAVAILABLE', `got ${JSON.stringify(result.error)}`);
  t.regex(result.error.message, /EPERM|seccomp/i, 'the message says why');
}

/**
 * Asserts that `result` opened on the portable backend and names why io_uring was refused
 * (under the seccomp filter); returns the OK report, or null after failing the test.
 */
export function assertFellBack(t, result) {
  if (!result.ok) {
    t.fail(`open with 'auto' under deny_io_uring failed: ${JSON.stringify(result.error)}\n${result.stderr}`);
    return null;
  }
  t.is(result.ok.backend, 'portable', 'the backend in use');
  t.is(typeof result.ok.fallbackReason, 'string', 'fallbackReason is set');
  t.regex(result.ok.fallbackReason ?? '', /EPERM|seccomp/i, `fallbackReason names the cause: ${result.ok.fallbackReason}`);
  return result.ok;
}

/**
 * Without the filter, 'auto' picks io_uring, or (kernel.io_uring_disabled set) falls back
 * naming the sysctl. Returns the OK report when io_uring was picked, else null.
 */
export function assertAutoPicked(t, result) {
  if (!result.ok) {
    t.fail(`open with 'auto' failed: ${JSON.stringify(result.error)}\n${result.stderr}`);
    return null;
  }
  if (ioUringDisabled() !== 0) {
    // The sysctl refuses io_uring here: auto must fall back and name it.
    t.is(result.ok.backend, 'portable');
    t.regex(result.ok.fallbackReason ?? '', /io_uring_disabled|EPERM/i);
    return null;
  }
  t.is(result.ok.backend, 'io_uring', `auto picked ${result.ok.backend} (fallbackReason: ${result.ok.fallbackReason})`);
  t.is(result.ok.fallbackReason, null);
  return result.ok;
}
