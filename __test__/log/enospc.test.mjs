// Disk full: on a small tmpfs, appends reject with code ENOSPC, nothing acknowledged is lost, the
// log reopens cleanly, and appends succeed again once space is freed.
//
// Needs root (mount). With URINGDB_TEST_NO_MOUNT=1 the disk-full condition is injected by the
// fault VFS in a child process instead (URINGDB_FAULT_VFS=...,errno=ENOSPC).

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { openTestLog, backend } from '../helpers/uringdb.mjs';
import { tmpDir, readAll, withTimeout } from '../helpers/util.mjs';
import { spawnChild, faultResult } from '../helpers/child.mjs';
import { noMount, mountTmpfs as mountTmpfsAt, freeBytes, fillTo } from '../helpers/tmpfs.mjs';
import { indexedRecord as recordFor } from '../helpers/records.mjs';

const MiB = 1 << 20;
const RECORD_BYTES = 32 * 1024;
const MAX_APPENDS = 2000; // 62 MiB of records: far more than the 8 MiB file system holds

const mountTmpfs = (t, size) => mountTmpfsAt(t, size, { prefix: 'uringdb-enospc-', instead: 'inject ENOSPC through the fault VFS instead' });

/** Checks that every acknowledged [seq, index] is in `records` with its bytes, seqs contiguous from 1. */
function checkAcked(t, records, acks, what) {
  t.deepEqual(records.map((r) => r.seq), records.map((_, i) => i + 1), `${what}: seqs contiguous from 1`);
  const bySeq = new Map(records.map((r) => [r.seq, r.data]));
  let missing = 0;
  for (const [seq, index] of acks) {
    const data = bySeq.get(seq);
    if (!data || !data.equals(recordFor(index, RECORD_BYTES))) missing++;
  }
  t.is(missing, 0, `${what}: all ${acks.length} acknowledged records present byte-exact`);
  // Anything beyond the acknowledgements must be one of the records that was attempted.
  for (const r of records) {
    const index = r.data.length === RECORD_BYTES ? r.data.readUInt32LE(0) : -1;
    if (index < 0 || !r.data.equals(recordFor(index, RECORD_BYTES))) {
      t.fail(`${what}: record seq ${r.seq} is not a record that was appended`);
      break;
    }
  }
}

if (!noMount) {
  test.serial('ENOSPC on a full tmpfs: acknowledged records survive, reopen works, appends resume after space is freed', async (t) => {
    const mnt = mountTmpfs(t, '8m');
    const dir = path.join(mnt, 'log');
    const filler = path.join(mnt, 'filler');
    const log = await openTestLog(dir, { segmentBytes: MiB });
    // Leave about 3 MiB free after the log's first segment: room for a couple more segments.
    t.true(freeBytes(mnt) > 3 * MiB, `the tmpfs has room for a filler (free ${freeBytes(mnt)})`);
    fillTo(mnt, 3 * MiB);

    const acks = [];
    const errors = [];
    for (let i = 0; i < MAX_APPENDS && errors.length === 0; i += 4) {
      const batch = [0, 1, 2, 3].map((j) => log.append(recordFor(i + j, RECORD_BYTES)).then(
        (seq) => acks.push([seq, i + j]),
        (err) => errors.push(err),
      ));
      await withTimeout(Promise.all(batch), 30_000, `appends ${i}..${i + 3} to settle (disk ${freeBytes(mnt)} bytes free)`);
    }
    if (errors.length === 0) {
      t.fail(`${MAX_APPENDS} appends of ${RECORD_BYTES} bytes fit on an 8 MiB tmpfs: no ENOSPC ever surfaced`);
      await log.close();
      return;
    }
    t.true(acks.length > 0, 'some appends succeeded before the disk filled');
    t.is(errors[0].code, 'ENOSPC', `the first failed append rejects with code ENOSPC (got ${errors[0].code}: ${errors[0].message})`);
    for (const err of errors) {
      t.true(['ENOSPC', 'ERR_URINGDB_FAILED'].includes(err.code), `appends in flight reject with ENOSPC or FAILED (got ${err.code})`);
    }

    // While the disk is still full, further appends fail too. Either the log latched (a failed
    // write: every later write rejects with ERR_URINGDB_FAILED until reopened, README), or the
    // ENOSPC came from preparing the next segment, which fails that group only and leaves the
    // log usable (crates/wal/src/committer/) — then the later append fails with ENOSPC again.
    // (An unlatched log may still fit a single record in its active segment: keep appending
    // one at a time until one fails; a 1 MiB segment holds fewer than 32 such records.)
    let later = null;
    for (let i = 0; i < 40 && later === null; i++) {
      const r = await withTimeout(log.append(recordFor(3000 + i, RECORD_BYTES)).then((seq) => ({ seq }), (err) => ({ err })), 30_000, 'an append after ENOSPC to settle');
      if (r.err) later = r.err;
      else acks.push([r.seq, 3000 + i]);
    }
    t.truthy(later, 'appends after ENOSPC (disk still full) fail again within one segment');
    t.true(['ERR_URINGDB_FAILED', 'ENOSPC'].includes(later?.code), `an append after ENOSPC rejects with ERR_URINGDB_FAILED or ENOSPC (got ${later?.code}: ${later?.message})`);
    const latched = later?.code === 'ERR_URINGDB_FAILED';
    t.log(`${acks.length} appends acknowledged; after ENOSPC the log ${latched ? 'latched (ERR_URINGDB_FAILED)' : 'stayed usable (ENOSPC again)'}`);
    if (latched) t.is(later?.cause?.code, 'ENOSPC', 'the latched failure has the original ENOSPC as its cause');

    // Reads continue on the failed log.
    checkAcked(t, await readAll(log), acks, 'read on the failed log');

    // Free the space: a latched log still refuses (no silent retry); an unlatched one appends again.
    fs.rmSync(filler);
    const afterFree = await withTimeout(log.append(recordFor(4000, RECORD_BYTES)).then((seq) => ({ seq }), (err) => ({ err })), 30_000, 'an append after freeing space');
    if (latched) {
      t.is(afterFree.err?.code, 'ERR_URINGDB_FAILED', `a latched log refuses writes until reopened, even with space (got ${afterFree.err?.code ?? `seq ${afterFree.seq}`})`);
    } else {
      t.is(afterFree.err, undefined, `the log was not latched (later append got ENOSPC), so with space it appends again (got ${afterFree.err?.code}: ${afterFree.err?.message})`);
      if (afterFree.seq !== undefined) acks.push([afterFree.seq, 4000]);
    }
    await withTimeout(log.close(), 20_000, 'close() of a log that hit ENOSPC');

    // Fill the disk again (all but 64 KiB) and reopen on it.
    fillTo(mnt, 64 * 1024);

    // Reopen while the disk is still full.
    const reopened = await withTimeout(openTestLog(dir, { segmentBytes: MiB }), 20_000, 'reopen on a full disk');
    checkAcked(t, await readAll(reopened), acks, 'after reopen on a full disk');
    const lastSeq = reopened.lastSeq;
    t.true(lastSeq >= Math.max(...acks.map(([s]) => s)), 'lastSeq covers every acknowledged record');

    // Free the space again: appends succeed on the reopened log.
    fs.rmSync(filler);
    const seq = await withTimeout(reopened.append(recordFor(5000, RECORD_BYTES)), 30_000, 'an append after freeing space');
    t.is(seq, lastSeq + 1, 'numbering continues after the failure');
    const more = await reopened.appendMany([5001, 5002, 5003].map((i) => recordFor(i, RECORD_BYTES)));
    t.deepEqual(more, [lastSeq + 2, lastSeq + 3, lastSeq + 4]);
    await reopened.close();

    const final = await openTestLog(dir, { segmentBytes: MiB });
    t.teardown(() => final.close());
    const records = await readAll(final);
    checkAcked(t, records, [...acks, [seq, 5000], [more[0], 5001], [more[1], 5002], [more[2], 5003]], 'after freeing space');
    await final.close();
  });
} else {
  test.serial('ENOSPC injected by the fault VFS: acknowledged records survive, reopen works, appends resume', async (t) => {
    const dir = tmpDir(t);
    const child = spawnChild(t, 'enospc-child.mjs', [dir, backend(), RECORD_BYTES, MAX_APPENDS], {
      env: { URINGDB_FAULT_VFS: `drop-unsynced,fail_write_after_bytes=${3 * MiB},errno=ENOSPC` },
    });
    const result = await faultResult(t, child, 60_000, 'with the injected ENOSPC');
    if (result === null) return;
    t.truthy(result.firstError, `no ENOSPC within ${MAX_APPENDS} appends with fail_write_after_bytes=3 MiB`);
    t.is(result.firstError?.code, 'ENOSPC', `first failure has code ENOSPC (${JSON.stringify(result.firstError)})`);
    t.is(result.laterError?.code, 'ERR_URINGDB_FAILED', `later append on the failed log: ${JSON.stringify(result.laterError)}`);
    t.true(result.acks.length > 0, 'some appends succeeded first');
    t.true(result.readable >= result.acks.length, 'reads continue on the failed log');
    const { code } = await child.closed;
    t.is(code, 0, `the child closed the failed log and exited cleanly (stderr: ${child.stderr()})`);

    const log = await openTestLog(dir, { segmentBytes: MiB });
    t.teardown(() => log.close());
    checkAcked(t, await readAll(log), result.acks, 'after reopen');
    const lastSeq = log.lastSeq;
    t.is(await log.append(recordFor(5000, RECORD_BYTES)), lastSeq + 1, 'appends succeed after reopen without the fault');
  });
}
