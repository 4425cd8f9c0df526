// A planted symlink under one of the engine's file names used to be followed: a CURRENT.N.tmp
// link made the engine truncate and overwrite a file outside the database (issue 8, item 5).
// Now no engine file is opened through a link: a link under the name of a temporary or new
// file (CURRENT.N.tmp, MANIFEST-N about to be written, a stale table) is removed like a stale
// file — unlinking removes the link, not its target — and the database works; a link where
// the engine must read one of its files (a MANIFEST-N in a directory without CURRENT) fails
// with ELOOP naming the file. The file outside is never touched. (Every kind of file on both backends: crates/lsm/tests/db_symlink.rs.)

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir, collect } from '../helpers/util.mjs';
import { openSmallDb } from '../helpers/db.mjs';
import { expectError } from '../helpers/expect.mjs';

function plant(dir, outside, names) {
  for (const name of names) fs.symlinkSync(path.join(outside, 'victim'), path.join(dir, name));
}

test('a new database: CURRENT.N.tmp links are replaced and it works; MANIFEST-N links fail with ELOOP naming the file; the target is untouched', async (t) => {
  const root = tmpDir(t);
  const outside = path.join(root, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'victim'), 'precious');
  for (const [kind, names] of [
    ['CURRENT.N.tmp', Array.from({ length: 8 }, (_, n) => `CURRENT.${n}.tmp`)],
    ['MANIFEST-N', Array.from({ length: 8 }, (_, n) => `MANIFEST-${String(n).padStart(6, '0')}`)],
  ]) {
    const dir = path.join(root, kind);
    fs.mkdirSync(dir);
    plant(dir, outside, names);
    if (kind === 'CURRENT.N.tmp') {
      const db = await openSmallDb(dir);
      await db.put('a', '1');
      t.is(String(await db.get('a')), '1', `${kind}: the database works`);
      await db.close();
    } else {
      // Without CURRENT, a file named like a manifest may be an old database's: the open
      // reads it (never through the link) instead of starting a new database over it.
      const err = await expectError(t, () => openSmallDb(dir), 'ELOOP', `open with ${kind} links`);
      t.true(String(err?.message).includes(dir), `${kind}: the error names the file: ${err?.message}`);
    }
    t.is(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'precious', `${kind}: the file outside is untouched`);
    t.deepEqual(fs.readdirSync(outside), ['victim'], `${kind}: nothing created outside`);
  }
});

// Links under future names of an existing database (tables, the next CURRENT.N.tmp or
// MANIFEST-N): removed like stale files when the engine gets to those names, and the
// database keeps working; nothing outside is written.
for (const kind of ['table', 'CURRENT.N.tmp', 'MANIFEST-N']) {
  test(`an existing database with ${kind} links under future names keeps working and writes nothing outside`, async (t) => {
    const root = tmpDir(t);
    const outside = path.join(root, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'victim'), 'precious');
    const dir = path.join(root, 'db');
    const options = { memtableBytes: 64 * 1024, l0CompactionTrigger: 2 };
    let db = await openSmallDb(dir, options);
    await db.put('a', '1');
    await db.close();
    const existing = new Set(fs.readdirSync(dir));
    const names = Array.from({ length: 40 }, (_, n) =>
      kind === 'table' ? `${String(n).padStart(6, '0')}.sst` : kind === 'MANIFEST-N' ? `MANIFEST-${String(n).padStart(6, '0')}` : `CURRENT.${n}.tmp`,
    ).filter((n) => !existing.has(n));
    plant(dir, outside, names);
    let err = null;
    try {
      db = await openSmallDb(dir, options);
      for (let i = 0; i < 200; i++) await db.put(`k${i}`, 'x'.repeat(2000));
      await db.flush();
      await db.compactRange();
      t.is((await collect(db.keys())).length, 201);
    } catch (e) {
      err = e;
    } finally {
      await db.close();
    }
    t.is(err, null, `the database keeps working: ${err?.message}`);
    t.is(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'precious', 'the file outside is untouched');
    t.deepEqual(fs.readdirSync(outside), ['victim'], 'nothing created outside');
  });
}
