// Durability under SIGKILL: a child appends with many calls in flight and is killed at a random
// moment; after each kill the log is reopened in this process and every acknowledged record must
// be there with its exact seq and bytes, seqs contiguous from 1, and nothing beyond the
// acknowledgements but whole records the child was in the middle of appending. Each iteration
// continues on the same directory, so recovery runs over tails cut by earlier kills.
//
// Variants: sync:true; sync:true with URINGDB_FAULT_VFS=drop-unsynced in the child (the I/O layer
// keeps every write in memory until fdatasync, so the kill loses every unsynced byte); and mixed
// sync:true / sync:false appends plus sync() calls, where only sync:true acks and everything a
// completed sync() covered must survive.

import test from 'ava';
import { iterations } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { runLogKillLoop } from '../helpers/log-verify.mjs';

const COUNT = iterations(20);

const variants = [
  { title: 'sync:true appends survive SIGKILL', mode: 'sync', env: {} },
  { title: 'sync:true appends survive SIGKILL with drop-unsynced fault VFS', mode: 'sync', env: { URINGDB_FAULT_VFS: 'drop-unsynced' } },
  { title: 'mixed sync/no-sync appends: synced ones survive SIGKILL with drop-unsynced fault VFS', mode: 'mixed', env: { URINGDB_FAULT_VFS: 'drop-unsynced' } },
  { title: 'mixed sync/no-sync appends: synced ones survive SIGKILL', mode: 'mixed', env: {} },
];

test.serial('sync:true appends survive SIGKILL while truncateBefore keeps deleting old segments', async (t) => {
  t.timeout(60_000 + COUNT * 10_000);
  const dir = tmpDir(t);
  // Small records' worth of 1 MiB segments fill in a few iterations; truncation trails by 2000.
  const result = await runLogKillLoop(t, { dir, count: COUNT, mode: 'truncate', env: { URINGDB_FAULT_VFS: 'drop-unsynced' } });
  if (result.failed) return;
  t.true(result.acks > 0, 'appends were acknowledged');
  t.true(result.firstSeq > 1, `truncation happened (final firstSeq ${result.firstSeq}, lastSeq ${result.lastSeq})`);
  t.log(`${COUNT} kills, ${result.acks} acks, final firstSeq ${result.firstSeq}, lastSeq ${result.lastSeq}`);
});

for (const { title, mode, env } of variants) {
  test.serial(title, async (t) => {
    t.timeout(60_000 + COUNT * 10_000);
    const dir = tmpDir(t);
    const result = await runLogKillLoop(t, { dir, count: COUNT, mode, env });
    if (result.failed) return;
    // The loop must have exercised something: acknowledged (and required) records exist.
    t.true(result.acks > 0, `no append was acknowledged in ${COUNT} iterations: the test exercised nothing`);
    t.true(result.required > 0, `no acknowledged record was required to survive in ${COUNT} iterations`);
    t.true(result.lastSeq > 0, 'the recovered log is empty after all iterations');
    t.log(`${COUNT} kills, ${result.acks} acks (${result.required} required), final lastSeq ${result.lastSeq}, backend ${[...result.backends].join('/')}`);
  });
}
