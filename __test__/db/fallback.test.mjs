// io_uring fallback of the key-value database: in a child whose io_uring_setup is refused by a
// seccomp filter (target/debug/examples/deny_io_uring, which installs the filter and execs
// node), ioBackend 'auto' opens on the portable backend and says why, 'io_uring' is refused
// with ERR_URINGDB_IO_URING_UNAVAILABLE, and the database crash check (kill loop) passes.
//
// The helper is built by `cargo build -p uringdb-uring --examples` (npm test does it first).

import test from 'ava';
import path from 'node:path';
import { iterations } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { denyIoUring, requireHelper, openReport as runOpenReport, assertRefused, assertFellBack, assertAutoPicked } from '../helpers/fallback.mjs';
import { runDbKillLoop } from '../helpers/db-verify.mjs';

const openReport = (t, dir, ioBackend, wrapper) => runOpenReport(t, 'db-open-report.mjs', dir, ioBackend, wrapper);

test('under the seccomp filter, a Db with ioBackend auto falls back to portable and says why', async (t) => {
  if (!requireHelper(t)) return;
  const ok = assertFellBack(t, await openReport(t, tmpDir(t), 'auto', [denyIoUring]));
  if (!ok) return;
  t.is(ok.logBackend, 'portable', "the log's stats agree");
  t.is(ok.readBack, 'value', 'the portable backend writes, flushes and reads');
  t.true(ok.flushes >= 1);
});

test("under the seccomp filter, a Db with ioBackend 'io_uring' rejects with ERR_URINGDB_IO_URING_UNAVAILABLE", async (t) => {
  if (!requireHelper(t)) return;
  const dir = path.join(tmpDir(t), 'db');
  const result = await openReport(t, dir, 'io_uring', [denyIoUring]);
  assertRefused(t, result);
});

test('without the filter, a Db with ioBackend auto picks io_uring on this machine (or names why not)', async (t) => {
  assertAutoPicked(t, await openReport(t, tmpDir(t), 'auto', []));
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
