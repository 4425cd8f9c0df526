// io_uring fallback: in a child whose io_uring_setup is refused by a seccomp filter
// (target/debug/examples/deny_io_uring, which installs the filter and execs node), 'auto' picks
// the portable backend and says why, 'io_uring' is refused with a clear error, and the
// durability kill loop passes. Without the filter, 'auto' picks io_uring on this machine.
//
// The helper is built by `cargo build -p uringdb-uring --examples` (npm test does it first).

import test from 'ava';
import { iterations } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { denyIoUring, requireHelper, openReport as runOpenReport, assertRefused, assertFellBack, assertAutoPicked } from '../helpers/fallback.mjs';
import { runLogKillLoop } from '../helpers/log-verify.mjs';

const openReport = (t, dir, ioBackend, wrapper) => runOpenReport(t, 'open-report.mjs', dir, ioBackend, wrapper);

test('under the seccomp filter, ioBackend auto falls back to portable and says why', async (t) => {
  if (!requireHelper(t)) return;
  const ok = assertFellBack(t, await openReport(t, tmpDir(t), 'auto', [denyIoUring]));
  if (!ok) return;
  t.is(ok.seq, 1);
  t.deepEqual(ok.readBack, ['probe'], 'the portable backend appends and reads');
});

test("under the seccomp filter, ioBackend 'io_uring' rejects with ERR_URINGDB_IO_URING_UNAVAILABLE", async (t) => {
  if (!requireHelper(t)) return;
  const result = await openReport(t, tmpDir(t), 'io_uring', [denyIoUring]);
  assertRefused(t, result);
});

test('without the filter, ioBackend auto picks io_uring on this machine', async (t) => {
  const ok = assertAutoPicked(t, await openReport(t, tmpDir(t), 'auto', []));
  if (ok) t.true(ok.features.length > 0, 'probed io_uring features are listed');
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
