// Every table used to keep a file descriptor open, with no cap: under `ulimit -n 256` the
// database stopped and could not be reopened (issue 8, item 5). With the table-file cache
// (`maxOpenFiles`, also capped at half the open-file limit) a child under `ulimit -n 256`
// writes 300 tables, reads them all, reopens and reads them again — with the default options
// and with an explicit `maxOpenFiles`. Both real backends now map each table into memory and
// keep no descriptor for it at all (the cap still bounds the files of a backend that cannot
// map: crates/lsm/src/db/table_files.rs tests it).

import test from 'ava';
import { backend } from '../helpers/uringdb.mjs';
import { tmpDir } from '../helpers/util.mjs';
import { spawnChild, parseTagged } from '../helpers/child.mjs';

const ULIMIT = ['bash', '-c', 'ulimit -n 256 && exec "$0" "$@"'];

for (const [cap, most] of [['default', 128], ['32', 32]]) {
  test(`300 tables under ulimit -n 256 keep working and reopen (maxOpenFiles: ${cap})`, async (t) => {
    t.timeout(180_000);
    const child = spawnChild(t, 'db-many-tables-child.mjs', [tmpDir(t), backend(), 300, cap], { wrapper: ULIMIT });
    const { code } = await child.closed;
    const err = child.lines.find((l) => l.startsWith('E '));
    t.is(err, undefined, `the child failed: ${err}\n${child.stderr()}`);
    t.is(code, 0, `exit code; stderr:\n${child.stderr()}`);
    const line = child.lines.find((l) => l.startsWith('RESULT '));
    if (!line) return t.fail(`no result; stdout:\n${child.lines.join('\n')}`);
    const r = parseTagged(line, 'RESULT');
    t.is(r.l0, 300, 'every flush made a table');
    t.true(r.most <= most, `at most ${most} table files open (saw ${r.most})`);
    t.is(r.most, 0, 'mapped tables keep no descriptor open');
  });
}
