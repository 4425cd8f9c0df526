// io_uring fallback: in a child whose io_uring_setup is refused by a seccomp filter
// (target/debug/examples/deny_io_uring, which installs the filter and execs node), 'auto' picks
// the portable backend and says why, 'io_uring' is refused with a clear error, and the
// durability kill loop passes. Without the filter, 'auto' picks io_uring on this machine.
//
// The helper is built by `cargo build -p uringdb-uring --examples` (npm test does it first).

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, iterations } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { spawnChild, parseTagged } from '../helpers/child.mjs';
import { runLogKillLoop } from '../helpers/log-verify.mjs';

const denyIoUring = path.join(repoRoot, 'target', 'debug', 'examples', 'deny_io_uring');

function requireHelper(t) {
  if (!fs.existsSync(denyIoUring)) {
    t.fail(`${denyIoUring} is missing: build it with \`cargo build -p uringdb-uring --examples\` (npm test does this before ava)`);
    return false;
  }
  return true;
}

async function openReport(t, dir, ioBackend, wrapper) {
  const child = spawnChild(t, 'open-report.mjs', [dir, ioBackend], { wrapper });
  const line = await child.waitFor((l) => l.startsWith('OK ') || l.startsWith('E '), 30_000, 'OK or E');
  await child.closed;
  return line.startsWith('OK ') ? { ok: parseTagged(line, 'OK'), stderr: child.stderr() } : { error: parseTagged(line, 'E'), stderr: child.stderr() };
}

test('under the seccomp filter, ioBackend auto falls back to portable and says why', async (t) => {
  if (!requireHelper(t)) return;
  const result = await openReport(t, tmpDir(t), 'auto', [denyIoUring]);
  if (!result.ok) {
    t.fail(`open with 'auto' under deny_io_uring failed: ${JSON.stringify(result.error)}\n${result.stderr}`);
    return;
  }
  t.is(result.ok.backend, 'portable');
  t.is(typeof result.ok.fallbackReason, 'string', 'fallbackReason is set');
  t.regex(result.ok.fallbackReason ?? '', /EPERM|seccomp/i, `fallbackReason names the cause: ${result.ok.fallbackReason}`);
  t.is(result.ok.seq, 1);
  t.deepEqual(result.ok.readBack, ['probe'], 'the portable backend appends and reads');
});

test("under the seccomp filter, ioBackend 'io_uring' rejects with ERR_URINGDB_IO_URING_UNAVAILABLE", async (t) => {
  if (!requireHelper(t)) return;
  const result = await openReport(t, tmpDir(t), 'io_uring', [denyIoUring]);
  if (!result.error) {
    t.fail(`open with 'io_uring' under deny_io_uring succeeded with backend ${result.ok.backend}`);
    return;
  }
  t.is(result.error.code, 'ERR_URINGDB_IO_URING_UNAVAILABLE', `got ${JSON.stringify(result.error)}`);
  t.regex(result.error.message, /EPERM|seccomp/i, 'the message says why');
});

test('without the filter, ioBackend auto picks io_uring on this machine', async (t) => {
  let disabled = 0;
  try {
    disabled = Number(fs.readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim());
  } catch {
    // Older kernels have no such sysctl: io_uring is not disabled by it.
  }
  const result = await openReport(t, tmpDir(t), 'auto', []);
  if (!result.ok) {
    t.fail(`open with 'auto' failed: ${JSON.stringify(result.error)}\n${result.stderr}`);
    return;
  }
  if (disabled !== 0) {
    // The sysctl refuses io_uring here: auto must fall back and name it.
    t.is(result.ok.backend, 'portable');
    t.regex(result.ok.fallbackReason ?? '', /io_uring_disabled|EPERM/i);
  } else {
    t.is(result.ok.backend, 'io_uring', `auto picked ${result.ok.backend} (fallbackReason: ${result.ok.fallbackReason})`);
    t.is(result.ok.fallbackReason, null);
    t.true(result.ok.features.length > 0, 'probed io_uring features are listed');
  }
});

test.serial('the durability kill loop passes under the seccomp filter (auto → portable)', async (t) => {
  if (!requireHelper(t)) return;
  const count = Math.max(5, Math.ceil(iterations(5)));
  t.timeout(60_000 + count * 10_000);
  const dir = tmpDir(t);
  const result = await runLogKillLoop(t, { dir, count, mode: 'sync', wrapper: [denyIoUring], childBackend: 'auto' });
  if (result.failed) return;
  t.deepEqual([...result.backends], ['portable'], 'every child ran on the portable backend');
  t.true(result.acks > 0, 'appends were acknowledged');
  t.true(result.lastSeq > 0);
});

test.serial('drop-unsynced kill loop passes under the seccomp filter', async (t) => {
  if (!requireHelper(t)) return;
  const count = Math.max(5, Math.ceil(iterations(5)));
  t.timeout(60_000 + count * 10_000);
  const dir = tmpDir(t);
  const result = await runLogKillLoop(t, {
    dir,
    count,
    mode: 'mixed',
    wrapper: [denyIoUring],
    childBackend: 'auto',
    env: { URINGDB_FAULT_VFS: 'drop-unsynced' },
  });
  if (result.failed) return;
  t.deepEqual([...result.backends], ['portable']);
  t.true(result.acks > 0);
});
