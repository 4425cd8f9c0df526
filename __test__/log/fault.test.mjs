// Injected I/O failures (URINGDB_FAULT_VFS in a child process): a failed write or fdatasync
// rejects the appends it covers with the OS error, every later write rejects with
// ERR_URINGDB_FAILED (cause: the original error) until the log is reopened, reads keep
// working, close() completes, nothing acknowledged is lost, and the log reopens cleanly.
// Nothing may hang.

import test from 'ava';
import { openTestLog, backend } from '../helpers/uringdb.mjs';
import { tmpDir, readAll } from '../helpers/util.mjs';
import { spawnChild, faultResult } from '../helpers/child.mjs';
import { indexedRecord } from '../helpers/records.mjs';

const RECORD_BYTES = 32 * 1024;
const MAX_APPENDS = 200;

const cases = [
  // Opening syncs twice (the 256 KiB first segment's zero fill, its header); the next
  // segment is prepared (in the background, so at no fixed sync) once the first is half full,
  // asked for right after the 4th 32 KiB append is written. So syncs 3 to 5 are the commit
  // fdatasyncs of appends 1 to 3; the 6th is append 4's or the preparer's, whichever thread
  // gets there first (the commit pipeline runs fdatasyncs on a sync thread), so no case
  // counts on it.
  { title: 'a failed fdatasync (4th sync, EIO)', fault: 'drop-unsynced,fail_sync_nth=4,errno=EIO', errno: 'EIO' },
  { title: 'a failed fdatasync (5th sync, EIO)', fault: 'drop-unsynced,fail_sync_nth=5,errno=EIO', errno: 'EIO' },
  // Opening writes 256 KiB + 40 bytes; each append 32,800 bytes (its MARK and frame): the
  // failure hits the 2nd append's write, before any other segment is prepared.
  { title: 'a failed write (EIO)', fault: 'drop-unsynced,fail_write_after_bytes=300000,errno=EIO', errno: 'EIO' },
  { title: 'a failed write (ENOSPC)', fault: 'drop-unsynced,fail_write_after_bytes=300000,errno=ENOSPC', errno: 'ENOSPC' },
];

for (const { title, fault, errno } of cases) {
  test(`${title}: rejects, latches, keeps reads, loses nothing acknowledged`, async (t) => {
    t.timeout(60_000);
    const dir = tmpDir(t);
    const child = spawnChild(t, 'fault-child.mjs', [dir, backend(), MAX_APPENDS], { env: { URINGDB_FAULT_VFS: fault } });
    const result = await faultResult(t, child, 50_000, `with URINGDB_FAULT_VFS=${fault}`);
    if (result === null) return;
    t.truthy(result.firstError, `no append failed within ${MAX_APPENDS} appends: the fault was never injected`);
    t.is(result.firstError?.code, errno, `the failing append rejects with ${errno} (${JSON.stringify(result.firstError)})`);
    t.is(result.laterError?.code, 'ERR_URINGDB_FAILED', `the next append rejects with ERR_URINGDB_FAILED (${JSON.stringify(result.laterError)})`);
    t.is(result.laterError?.causeCode, errno, 'its cause is the original error');
    t.is(result.readError, null, `reads keep working on the failed log (${JSON.stringify(result.readError)})`);
    t.true(result.readable >= result.acks.length, 'every acknowledged record is readable on the failed log');
    const { code } = await child.closed;
    t.is(code, 0, `the child exited cleanly (stderr: ${child.stderr()})`);

    const log = await openTestLog(dir, { segmentBytes: 1 << 20 });
    t.teardown(() => log.close());
    const records = await readAll(log);
    t.deepEqual(records.map((r) => r.seq), records.map((_, i) => i + 1), 'seqs contiguous from 1 after reopen');
    let missing = 0;
    for (const [seq, index] of result.acks) if (!records[seq - 1]?.data.equals(indexedRecord(index, RECORD_BYTES))) missing++;
    t.is(missing, 0, `all ${result.acks.length} acknowledged records survive`);
    t.true(records.length <= result.acks.length + 1, 'at most the failed record beyond the acknowledged ones');
    const seq = await log.append('after reopen');
    t.is(seq, records.length + 1, 'the reopened log appends again');
  });
}
