// Durability of the key-value database under SIGKILL: a child writes atomic batches from many
// lanes with 64 KiB memtables (so flushes and compactions run all the time) and is killed at a
// random moment; after each kill the database is reopened in this process and must hold every
// acknowledged batch, whole batches only, a prefix of the batches in call order, and exactly
// the state those batches produce (helpers/db-verify.mjs). Each iteration continues on the
// same directory, so recovery runs over what earlier kills left (also kills during recovery).
//
// Variants: sync:true batches; the same with URINGDB_FAULT_VFS=drop-unsynced in the child (the
// I/O layer keeps every write in memory until fdatasync, so the kill loses every unsynced byte
// of the log, the tables and the manifest); and mixed sync:true / sync:false batches, where
// only the sync:true acknowledgements must survive. The crash points inside flush and
// compaction are in failpoint.test.mjs.

import test from 'ava';
import { iterations } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { runDbKillLoop } from '../helpers/db-verify.mjs';

const COUNT = iterations(12);

const variants = [
  { title: 'sync:true batches survive SIGKILL during flushes and compactions', mode: 'sync', env: {} },
  { title: 'sync:true batches survive SIGKILL with the drop-unsynced fault VFS', mode: 'sync', env: { URINGDB_FAULT_VFS: 'drop-unsynced' } },
  { title: 'mixed sync/no-sync batches: the sync:true ones survive SIGKILL with the drop-unsynced fault VFS', mode: 'mixed', env: { URINGDB_FAULT_VFS: 'drop-unsynced' } },
];

for (const { title, mode, env } of variants) {
  test.serial(title, async (t) => {
    t.timeout(60_000 + COUNT * 8_000);
    const dir = tmpDir(t, 'uringdb-dbkill-');
    const r = await runDbKillLoop(t, { dir, count: COUNT, mode, env });
    if (r.failed) return;
    // The loop must have exercised something.
    t.true(r.acks > 0, `no batch was acknowledged in ${COUNT} iterations: the test exercised nothing`);
    t.true(r.required > 0, 'no acknowledged batch was required to survive');
    t.true(r.present > 0, 'no batch was recovered');
    t.true(r.flushes > 0, 'the children never flushed a memtable');
    t.true(r.compactions > 0, 'the children never compacted');
    t.log(`${COUNT} kills: ${r.acks} acks (${r.required} required), ${r.present} batches recovered, ${r.flushes} flushes, ${r.compactions} compactions, backend ${[...r.backends].join('/')}`);
    const final = await r.verifier.writeAndCompact(t, COUNT + 1);
    t.deepEqual(final.problems, [], 'after the loop: writes, flush and compaction work and the result verifies');
  });
}
