// io_uring fallback of the key-value database: in a child whose io_uring_setup is refused by a
// seccomp filter (target/debug/examples/deny_io_uring, which installs the filter and execs
// node), ioBackend 'auto' opens on the portable backend and says why, 'io_uring' is refused
// with ERR_URINGDB_IO_URING_UNAVAILABLE, and the database crash check (kill loop) passes.
//
// The helper is built by `cargo build -p uringdb-uring --examples` (npm test does it first).

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, iterations } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { spawnChild, parseTagged } from '../helpers/child.mjs';
import { runDbKillLoop } from '../helpers/db-verify.mjs';

const denyIoUring = path.join(repoRoot, 'target', 'debug', 'examples', 'deny_io_uring');

function requireHelper(t) {
  if (!fs.existsSync(denyIoUring)) {
    t.fail(`${denyIoUring} is missing: build it with \`cargo build -p uringdb-uring --examples\` (npm test does this before ava)`);
    return false;
  }
  return true;
}

async function openReport(t, dir, ioBackend, wrapper) {
  const child = spawnChild(t, 'db-open-report.mjs', [dir, ioBackend], { wrapper });
  const line = await child.waitFor((l) => l.startsWith('OK ') || l.startsWith('E '), 30_000, 'OK or E');
  await child.closed;
  return line.startsWith('OK ') ? { ok: parseTagged(line, 'OK'), stderr: child.stderr() } : { error: parseTagged(line, 'E'), stderr: child.stderr() };
}

test('under the seccomp filter, a Db with ioBackend auto falls back to portable and says why', async (t) => {
  if (!requireHelper(t)) return;
  const result = await openReport(t, tmpDir(t), 'auto', [denyIoUring]);
  if (!result.ok) {
    t.fail(`open with 'auto' under deny_io_uring failed: ${JSON.stringify(result.error)}\n${result.stderr}`);
    return;
  }
  t.is(result.ok.backend, 'portable', 'db.recovery.backend');
  t.is(result.ok.logBackend, 'portable', "the log's stats agree");
  t.is(typeof result.ok.fallbackReason, 'string', 'fallbackReason is set');
  t.regex(result.ok.fallbackReason ?? '', /EPERM|seccomp/i, `fallbackReason names the cause: ${result.ok.fallbackReason}`);
  t.is(result.ok.readBack, 'value', 'the portable backend writes, flushes and reads');
  t.true(result.ok.flushes >= 1);
});

test("under the seccomp filter, a Db with ioBackend 'io_uring' rejects with ERR_URINGDB_IO_URING_UNAVAILABLE", async (t) => {
  if (!requireHelper(t)) return;
  const dir = path.join(tmpDir(t), 'db');
  const result = await openReport(t, dir, 'io_uring', [denyIoUring]);
  if (!result.error) {
    t.fail(`open with 'io_uring' under deny_io_uring succeeded with backend ${result.ok.backend}`);
    return;
  }
  t.is(result.error.code, 'ERR_URINGDB_IO_URING_UNAVAILABLE', `got ${JSON.stringify(result.error)}`);
  t.regex(result.error.message, /EPERM|seccomp/i, 'the message says why');
});

test('without the filter, a Db with ioBackend auto picks io_uring on this machine (or names why not)', async (t) => {
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
    t.is(result.ok.backend, 'portable');
    t.regex(result.ok.fallbackReason ?? '', /io_uring_disabled|EPERM/i);
  } else {
    t.is(result.ok.backend, 'io_uring', `auto picked ${result.ok.backend} (fallbackReason: ${result.ok.fallbackReason})`);
    t.is(result.ok.fallbackReason, null);
  }
});

test.serial('the database kill loop passes under the seccomp filter (auto → portable), with the drop-unsynced fault VFS', async (t) => {
  if (!requireHelper(t)) return;
  const count = iterations(5);
  t.timeout(60_000 + count * 8_000);
  const dir = tmpDir(t, 'uringdb-dbkill-');
  const r = await runDbKillLoop(t, {
    dir,
    count,
    mode: 'sync',
    wrapper: [denyIoUring],
    childBackend: 'auto',
    envFor: (i) => (i % 2 === 0 ? { URINGDB_FAULT_VFS: 'drop-unsynced' } : {}),
  });
  if (r.failed) return;
  t.deepEqual([...r.backends], ['portable'], 'every child ran on the portable backend');
  t.true(r.acks > 0, 'batches were acknowledged');
  t.true(r.present > 0, 'batches were recovered');
  t.true(r.flushes > 0, 'the children flushed');
  t.log(`${count} kills: ${r.acks} acks, ${r.present} batches recovered, ${r.flushes} flushes, ${r.compactions} compactions`);
});
