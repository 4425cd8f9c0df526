// Crash points inside flush and compaction: with URINGDB_FAILPOINT=<name>:<n> the engine aborts
// the writer child the n-th time it reaches <name> (n from 1 to 6); the database is reopened in
// this process and checked as after a SIGKILL (helpers/db-verify.mjs: every acknowledged batch,
// whole batches, a prefix in call order, exactly the expected state, no orphaned tables). Every
// other iteration runs the child on the drop-unsynced fault VFS, so the abort also loses every
// byte no fdatasync covered. The manifest failpoints cover its append and every step of its
// rewrite and CURRENT switch. After the loop the reopened database must still take writes,
// flush and compact.

import test from 'ava';
import { iterations } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { runDbKillLoop } from '../helpers/db-verify.mjs';
import { openTestDb, backend } from '../helpers/uringdb.mjs';
import { spawnChild, parseTagged } from '../helpers/child.mjs';
import { CHURN, seqKey, bigValue as valueOf } from '../helpers/db.mjs';

const COUNT = iterations(4);

const FAILPOINTS = [
  'flush.table_written',
  'flush.installed',
  'manifest.before_append',
  'manifest.after_append',
  'compaction.outputs_written',
  'compaction.installed',
  // The manifest rewrite (ManifestWriter::create): the new manifest written, CURRENT about to
  // be renamed, renamed but the directory not fsynced, switched but the old manifest not yet
  // removed. URINGDB_TEST_MANIFEST_REWRITE_BYTES=1 makes every flush and compaction rewrite
  // the manifest, so the n-th time is reached within the run (n = 1 is the open's own).
  'manifest.written',
  'manifest.before_current',
  'manifest.after_current',
  'manifest.switched',
];

/** Every install rewrites the manifest for the manifest failpoints (and the append ones). */
const rewriteEnv = (failpoint) => (failpoint.startsWith('manifest.') ? { URINGDB_TEST_MANIFEST_REWRITE_BYTES: '1' } : {});

for (const failpoint of FAILPOINTS) {
  test.serial(`crash at ${failpoint}: recovery keeps every acknowledged batch and the database works on`, async (t) => {
    t.timeout(60_000 + COUNT * 12_000);
    const dir = tmpDir(t, 'uringdb-dbfail-');
    const r = await runDbKillLoop(t, {
      dir,
      count: COUNT,
      failpoint,
      maxBatches: 20_000,
      env: rewriteEnv(failpoint),
      envFor: (i) => (i % 2 === 1 ? { URINGDB_FAULT_VFS: 'drop-unsynced' } : {}),
    });
    if (r.failed) return;
    t.true(r.fired > 0, `the failpoint ${failpoint} never fired in ${COUNT} runs`);
    t.true(r.acks > 0, 'batches were acknowledged before the crashes');
    t.true(r.present > 0, 'batches were recovered');
    if (failpoint === 'flush.table_written' || failpoint === 'compaction.outputs_written') {
      t.true(r.orphansRemoved > 0, `a crash after writing a table but before installing it leaves an orphan that recovery removes (removed ${r.orphansRemoved})`);
    }
    t.log(`${failpoint}: fired ${r.fired}/${COUNT}, ${r.acks} acks, ${r.present} batches recovered, ${r.flushes} flushes, ${r.compactions} compactions, ${r.orphansRemoved} orphans removed`);
    const final = await r.verifier.writeAndCompact(t, COUNT + 1);
    t.deepEqual(final.problems, [], 'after the crashes: writes, flush and compaction work and the result verifies');
  });
}

// "The sync failed but the bytes reached the disk" at every sync of the first flushes and
// compactions, each followed by a manifest rewrite: the fault VFS (sync_fail_persists) fails the
// K-th fdatasync of the child after persisting its bytes; the child sees the error (a refused
// write), closes and exits (every byte no sync covered is lost). The database must reopen with
// every acknowledged write.
const SYNC_FAILURES = Number(process.env.URINGDB_TEST_SYNC_FAILURES ?? 40);

test.serial('a failed fdatasync whose bytes persist, at each of the first syncs (log, tables, manifest appends and rewrites): reopen has every acknowledged write', async (t) => {
  t.timeout(60_000 + SYNC_FAILURES * 5_000);
  const kinds = new Map();
  for (let k = 1; k <= SYNC_FAILURES; k++) {
    const dir = tmpDir(t, 'uringdb-syncfail-');
    const child = spawnChild(t, 'db-fault-child.mjs', [dir, backend(), 400], {
      env: {
        URINGDB_FAULT_VFS: `drop-unsynced,sync_fail_persists,fail_sync_nth=${k},errno=EIO`,
        URINGDB_TEST_MANIFEST_REWRITE_BYTES: '1',
      },
    });
    const line = await child.waitFor((l) => /^(RESULT|HANG|E) /.test(l), 30_000, 'RESULT');
    await child.closed;
    if (line.startsWith('HANG ')) {
      t.fail(`sync ${k}: ${parseTagged(line, 'HANG').what} never settled\n${child.stderr()}`);
      return;
    }
    const r = line.startsWith('RESULT ') ? parseTagged(line, 'RESULT') : { acks: [], firstError: parseTagged(line, 'E') };
    const what = r.firstError?.message?.replace(/\/tmp\/\S+/g, '<path>').replace(/ at offset \d+/, '').slice(0, 60) ?? 'none (the failure stayed in the background)';
    kinds.set(what, (kinds.get(what) ?? 0) + 1);
    const db = await openTestDb(dir, CHURN).catch((err) => err);
    if (db instanceof Error) {
      t.fail(`sync ${k} failed (${r.firstError?.message}): reopen failed: ${db.code}: ${db.message}`);
      return;
    }
    const vals = await db.getMany(r.acks.map(seqKey));
    const lost = r.acks.filter((i, n) => !vals[n]?.equals(valueOf(i)));
    await db.put('after', 'x');
    await db.flush();
    await db.close();
    if (lost.length > 0) {
      t.fail(`sync ${k} failed (${r.firstError?.message}): ${lost.length} of ${r.acks.length} acknowledged writes lost`);
      return;
    }
  }
  t.log([...kinds].map(([w, n]) => `${n}x ${w}`).join('\n'));
  t.pass();
});
