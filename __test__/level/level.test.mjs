// uringdb/level: abstract-level's own compliance suite (run under tape in a child process,
// judged by its TAP output), then the adapter's behaviour on the paths users take: sublevels,
// encodings, ranges, snapshots, reopen, the open flags, and what it passes to the façade.

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot, backend, pkg } from '../helpers/uringdb.mjs';
import { UringLevel, openTestLevel } from '../helpers/level.mjs';
import { spawnChild } from '../helpers/child.mjs';
import { tmpDir, withTimeout, collect } from '../helpers/util.mjs';

const require = createRequire(import.meta.url);

/** The whole suite takes 10-30 s (release build); this is a hang guard. */
const SUITE_TIMEOUT_MS = 10 * 60_000;

const MiB = 1 << 20;

/**
 * The most disk one suite database may take (allocated blocks, measured open just before each
 * close and again at the end): issue 10's bound for an empty database with default options
 * (open + put + close <= 4 MiB). The suite's databases hold at most a few hundred small keys,
 * so they are empty databases for this purpose; with the segment sizing each takes ~0.26 MiB
 * (a 256 KiB first log segment), where a 64 MiB preallocated segment once filled a disk.
 */
const DB_BYTES_BOUND = 4 * MiB;

/**
 * The most disk the whole run may take (the sum of every database's footprint, ~970
 * databases): ~240 MiB today; the run filled 80 GB.
 */
const RUN_BYTES_BOUND = 1024 * MiB;

/**
 * The most roots open at the end of a suite test. The helper closes the roots of the suite's
 * sublevel pass once their sublevel is closed (about 20 are open at a time); without that,
 * ~490 databases stay open until the end, with ~6 engine threads each.
 */
const MAX_OPEN_BOUND = 64;

/**
 * Reads tape's TAP: every `ok`/`not ok` line (with the `# name` of the test it belongs to),
 * the plan `1..N`, the `# pass`/`# fail` summary, and the helper's stats line (see
 * __test__/helpers/level-suite.mjs). The plan, summary and stats are printed only when tape
 * finishes, so a crash or an early exit leaves them out.
 */
function parseTap(lines) {
  let current = '(before any test)';
  const ok = [];
  const notOk = [];
  let plan;
  let pass;
  let fail = 0;
  let stats;
  for (const line of lines) {
    let m;
    if (line.startsWith('uringdb-level-suite-stats ')) {
      stats = JSON.parse(line.slice('uringdb-level-suite-stats '.length));
    } else if ((m = /^# (pass|fail)\s+(\d+)$/.exec(line))) {
      if (m[1] === 'pass') pass = Number(m[2]);
      else fail = Number(m[2]);
    } else if (/^# (tests \d+|ok)$/.test(line)) {
      // summary lines, not test names
    } else if (line.startsWith('# ')) {
      current = line.slice(2);
    } else if ((m = /^ok \d+/.exec(line))) {
      ok.push(current);
    } else if (/^not ok \d+/.test(line)) {
      notOk.push(`${current}: ${line}`);
    } else if ((m = /^1\.\.(\d+)$/.exec(line))) {
      plan = Number(m[1]);
    }
  }
  return { ok, notOk, plan, pass, fail, stats };
}

test('abstract-level compliance suite with default options: every assertion passes, within the disk bound', async (t) => {
  t.timeout(SUITE_TIMEOUT_MS + 30_000);
  const started = performance.now();
  const runDir = tmpDir(t, 'uringdb-level-suite-');
  const child = spawnChild(t, path.join(repoRoot, '__test__', 'helpers', 'level-suite.mjs'), [runDir], {
    env: { URINGDB_TEST_BACKEND: backend() },
  });
  const exit = await withTimeout(child.closed, SUITE_TIMEOUT_MS, 'the abstract-level suite to finish');
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const tap = parseTap(child.lines);
  t.log(`abstract-level suite on ${backend()}, default options: ${tap.ok.length} passed, ${tap.notOk.length} failed (${new Set(tap.ok).size} tests) in ${seconds} s`);
  t.log(`suite stats: ${JSON.stringify(tap.stats)}`);
  for (const failure of tap.notOk.slice(0, 50)) t.log(`not ok: ${failure}`);
  const stderr = child.stderr().trim();
  if (stderr !== '') t.log(`suite stderr:\n${stderr.slice(0, 4000)}`);

  t.deepEqual(tap.notOk, [], 'failed assertions');
  t.is(exit.signal, null, 'the suite process was not killed');
  t.is(exit.code, 0, 'the suite process exit code');
  t.not(tap.plan, undefined, 'tape printed its plan (it finished rather than crashed)');
  t.is(tap.plan, tap.ok.length + tap.notOk.length, 'plan = assertions seen');
  t.is(tap.pass, tap.ok.length, '# pass agrees');
  t.is(tap.fail, 0, '# fail');
  // abstract-level 3.1 has ~5000 assertions here; far fewer means tests were skipped
  // (a manifest flag turned off) or the run stopped early.
  t.true(tap.ok.length > 4000, `only ${tap.ok.length} assertions passed`);

  const { stats } = tap;
  t.not(stats, undefined, 'the helper printed its stats line');
  if (stats === undefined) return;
  // ~970: both passes make a database per test; far fewer means the factory was bypassed.
  t.true(stats.databases > 900, `only ${stats.databases} databases were made`);
  t.true(stats.maxDbBytes > 0, 'the footprints were measured');
  t.true(stats.maxDbBytes <= DB_BYTES_BOUND, `a database took ${(stats.maxDbBytes / MiB).toFixed(2)} MiB (${stats.maxDbPath}), over ${DB_BYTES_BOUND / MiB} MiB`);
  t.true(stats.totalBytes <= RUN_BYTES_BOUND, `the run took ${(stats.totalBytes / MiB).toFixed(0)} MiB, over ${RUN_BYTES_BOUND / MiB} MiB`);
  t.true(stats.maxOpen <= MAX_OPEN_BOUND, `${stats.maxOpen} databases were open at once`);
  // The suite locks one database on purpose (abstract-level refuses to close it).
  t.true(stats.leftOpen <= 2, `${stats.leftOpen} databases were left open`);
});

test('supports: the manifest declares exactly what the adapter implements', async (t) => {
  const db = await openTestLevel(t);
  const s = db.supports;
  t.like(s, {
    permanence: true,
    seek: true,
    implicitSnapshots: true,
    snapshots: true,
    explicitSnapshots: true,
    getSync: true,
    has: true,
    createIfMissing: true,
    errorIfExists: true,
    deferredOpen: true,
    streams: false,
  });
  // The formats the private API speaks natively (the transcoder adds json, hex, ...).
  t.like(s.encodings, { buffer: true, view: true, utf8: true, json: true });
  t.deepEqual(s.signals, {}, 'iterators do not take an AbortSignal');
});

test('sublevels: put/get/iterate are isolated by prefix and batches span sublevels atomically', async (t) => {
  const db = await openTestLevel(t);
  const users = db.sublevel('users', { valueEncoding: 'json' });
  const posts = db.sublevel('posts');
  const drafts = posts.sublevel('drafts');

  await users.put('ada', { born: 1815 });
  await posts.put('1', 'hello');
  await drafts.put('1', 'draft one');
  await db.put('top', 'level');
  await db.batch([
    { type: 'put', sublevel: users, key: 'alan', value: { born: 1912 } },
    { type: 'put', sublevel: posts, key: '2', value: 'world' },
    { type: 'del', sublevel: posts, key: '1' },
  ]);

  t.deepEqual(await users.get('ada'), { born: 1815 });
  t.is(await posts.get('1'), undefined);
  t.is(await drafts.get('1'), 'draft one', 'a nested sublevel is separate from its parent');
  t.is(await db.get('ada'), undefined, 'the root does not see sublevel keys unprefixed');

  t.deepEqual(await users.iterator().all(), [
    ['ada', { born: 1815 }],
    ['alan', { born: 1912 }],
  ]);
  // A nested sublevel's keys are inside its parent's range (prefixed by its own name).
  t.deepEqual(await posts.keys().all(), ['!drafts!1', '2']);
  t.deepEqual(await drafts.iterator().all(), [['1', 'draft one']]);
  t.deepEqual(await users.values({ reverse: true }).all(), [{ born: 1912 }, { born: 1815 }]);
  // The root sees every key, prefixed: '!' sorts before letters, so sublevel keys come first.
  t.deepEqual(await db.keys().all(), ['!posts!!drafts!1', '!posts!2', '!users!ada', '!users!alan', 'top']);

  await users.clear();
  t.deepEqual(await users.keys().all(), []);
  t.is(await posts.get('2'), 'world', "clearing a sublevel leaves the others' keys");
});

test('encodings: utf8, json, buffer and view keys and values round-trip', async (t) => {
  const db = await openTestLevel(t);
  const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff]);

  await db.put('text', 'żółć €');
  t.is(await db.get('text'), 'żółć €', 'utf8 by default');
  t.deepEqual(await db.get('text', { valueEncoding: 'buffer' }), Buffer.from('żółć €'));

  await db.put(bytes, bytes, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  t.deepEqual(await db.get(bytes, { keyEncoding: 'buffer', valueEncoding: 'buffer' }), bytes);
  const view = await db.get(new Uint8Array(bytes), { keyEncoding: 'view', valueEncoding: 'view' });
  t.true(view instanceof Uint8Array);
  t.deepEqual([...view], [...bytes]);
  t.deepEqual(db.getSync(bytes, { keyEncoding: 'buffer', valueEncoding: 'buffer' }), bytes);

  const json = db.sublevel('json', { keyEncoding: 'json', valueEncoding: 'json' });
  await json.put([1, 'a'], { deep: [true, null] });
  await json.put([1, 'b'], 'str');
  t.deepEqual(await json.get([1, 'a']), { deep: [true, null] });
  t.deepEqual(await json.iterator().all(), [
    [[1, 'a'], { deep: [true, null] }],
    [[1, 'b'], 'str'],
  ]);
  t.deepEqual(await json.getMany([[1, 'b'], [2]]), ['str', undefined]);

  await t.throwsAsync(db.put('bad', {}, { valueEncoding: 'nope' }), { code: 'LEVEL_ENCODING_NOT_FOUND' });
});

/** Keys k00..k19 with values v0..v19. */
async function fill(db, n = 20) {
  const keys = Array.from({ length: n }, (_, i) => `k${String(i).padStart(2, '0')}`);
  await db.batch(keys.map((key, i) => ({ type: 'put', key, value: `v${i}` })));
  return keys;
}

test('ranges: gt/gte/lt/lte, reverse, limit on iterator, keys, values and clear', async (t) => {
  const db = await openTestLevel(t);
  const keys = await fill(db);

  t.deepEqual(await db.keys({ gt: 'k03', lt: 'k07' }).all(), ['k04', 'k05', 'k06']);
  t.deepEqual(await db.keys({ gte: 'k03', lte: 'k07' }).all(), ['k03', 'k04', 'k05', 'k06', 'k07']);
  t.deepEqual(await db.keys({ gt: 'k03', lt: 'k07', reverse: true }).all(), ['k06', 'k05', 'k04']);
  t.deepEqual(await db.keys({ gte: 'k10', limit: 3 }).all(), ['k10', 'k11', 'k12']);
  t.deepEqual(await db.keys({ lt: 'k10', reverse: true, limit: 2 }).all(), ['k09', 'k08']);
  t.deepEqual(await db.values({ gte: 'k18' }).all(), ['v18', 'v19']);
  t.deepEqual(await db.iterator({ gt: 'k17', limit: 2 }).all(), [['k18', 'v18'], ['k19', 'v19']]);
  t.deepEqual(await db.keys({ gt: 'k19' }).all(), [], 'an empty range');
  t.deepEqual(await db.keys({ gt: 'k05', lt: 'k05' }).all(), [], 'an inverted range');
  t.deepEqual(await db.keys({ limit: 0 }).all(), []);
  // abstract-level: gte wins over gt, lte over lt.
  t.deepEqual(await db.keys({ gt: 'k05', gte: 'k03', lt: 'k04', lte: 'k06' }).all(), ['k03', 'k04', 'k05', 'k06']);

  // Stream-ish consumption: for await, nextv in chunks, seek.
  t.deepEqual(await collect(db.keys({ gte: 'k15' })), ['k15', 'k16', 'k17', 'k18', 'k19']);
  const it = db.iterator({ gte: 'k02', lt: 'k12' });
  t.deepEqual((await it.nextv(3)).map(([k]) => k), ['k02', 'k03', 'k04']);
  it.seek('k09');
  t.deepEqual(await it.next(), ['k09', 'v9']);
  it.seek('k00'); // before the range: lands on its start
  t.deepEqual((await it.nextv(2)).map(([k]) => k), ['k02', 'k03']);
  it.seek('k99'); // past the range: the end
  t.deepEqual(await it.nextv(5), []);
  await it.close();

  const reverse = db.keys({ reverse: true });
  reverse.seek('k10x');
  t.deepEqual(await reverse.nextv(2), ['k10', 'k09'], 'reverse seek lands at or before the target');
  await reverse.close();

  await db.clear({ gte: 'k05', lt: 'k15', limit: 3 });
  t.deepEqual(await db.keys({ gte: 'k04', lt: 'k10' }).all(), ['k04', 'k08', 'k09']);
  await db.clear({ reverse: true, limit: 2 });
  t.deepEqual((await db.keys().all()).slice(-2), ['k16', 'k17'], 'reverse clear with a limit deletes the last keys');
  await db.clear();
  t.deepEqual(await db.keys().all(), []);
  t.is(keys.length, 20);
});

test('snapshots: implicit per iterator, explicit for get/getMany/getSync/has/iterator/clear', async (t) => {
  const db = await openTestLevel(t);
  await fill(db, 3);

  const it = db.iterator();
  const snapshot = db.snapshot();
  await db.put('k00', 'changed');
  await db.del('k01');
  await db.put('k99', 'new');

  t.deepEqual(await it.all(), [['k00', 'v0'], ['k01', 'v1'], ['k02', 'v2']], 'an iterator reads as of its creation');
  t.is(await db.get('k00', { snapshot }), 'v0');
  t.is(db.getSync('k01', { snapshot }), 'v1');
  t.deepEqual(await db.getMany(['k00', 'k01', 'k99'], { snapshot }), ['v0', 'v1', undefined]);
  t.deepEqual(await db.hasMany(['k01', 'k99'], { snapshot }), [true, false]);
  t.deepEqual(await db.hasMany(['k01', 'k99']), [false, true]);
  t.true(await db.has('k99'));
  t.deepEqual(await db.keys({ snapshot }).all(), ['k00', 'k01', 'k02']);

  // clear({ snapshot }) deletes what the snapshot has, not what was written since.
  await db.clear({ snapshot });
  t.deepEqual(await db.iterator().all(), [['k99', 'new']]);
  await snapshot.close();
  await t.throwsAsync(db.get('k00', { snapshot }), { code: 'LEVEL_SNAPSHOT_NOT_OPEN' });

  // A snapshot belongs to the database that took it.
  const other = await openTestLevel(t);
  const foreign = other.snapshot();
  t.teardown(() => foreign.close());
  await t.throwsAsync(db.get('k99', { snapshot: foreign }), { code: 'LEVEL_NOT_SUPPORTED' });
  t.throws(() => db.iterator({ snapshot: foreign }), { code: 'LEVEL_NOT_SUPPORTED' });
});

// abstract-level's implicit snapshots: a get() must not see a write scheduled after it. The
// façade takes one snapshot per tick's staged gets when the first of them is called
// (NativeDb.snapshot), and getMany() pins one in the binding on the JS thread.
test('get() does not see a put issued after it (implicit snapshot at call time)', async (t) => {
  const db = await openTestLevel(t, { sync: false });
  const filler = Array.from({ length: 50_000 }, (_, i) => `filler${i}`);
  await db.batch(filler.map((key) => ({ type: 'put', key, value: 'v' })));
  for (let round = 0; round < 5; round++) {
    await db.put('k', 'old');
    const busy = db.getMany(filler); // occupies the reader thread
    const got = db.get('k');
    const put = db.put('k', 'new'); // scheduled after the get, not awaited
    t.is(await got, 'old', `round ${round}`);
    await Promise.all([put, busy]);
  }
});

test('data survives close and reopen, of the same object and of a new one', async (t) => {
  const dir = tmpDir(t, 'uringdb-level-');
  const db = await openTestLevel(t, { valueEncoding: 'json' }, dir);
  t.is(db.location, dir);
  const sub = db.sublevel('s', { valueEncoding: 'json' });
  await db.put('a', { n: 1 });
  await sub.put('b', [2]);
  await db.batch().put('c', 3).del('a').write();
  await db.close();
  t.is(db.status, 'closed');

  await db.open();
  t.deepEqual(await db.iterator().all(), [['!s!b', [2]], ['c', 3]]);
  // A sublevel closes with its parent; a new one (or sub.open()) works after the reopen.
  t.deepEqual(await db.sublevel('s', { valueEncoding: 'json' }).get('b'), [2]);
  await db.close();

  const again = await openTestLevel(t, { valueEncoding: 'json' }, dir);
  t.deepEqual(await again.sublevel('s', { valueEncoding: 'json' }).get('b'), [2]);
  t.is(await again.get('c'), 3);
  t.is(await again.get('a'), undefined, 'the batch delete persisted');
});

test('open flags: createIfMissing and errorIfExists look for an existing database', async (t) => {
  const dir = tmpDir(t, 'uringdb-level-');
  const fresh = new UringLevel(path.join(dir, 'db'), { ioBackend: backend(), createIfMissing: false });
  const err = await t.throwsAsync(fresh.open(), { code: 'LEVEL_DATABASE_NOT_OPEN' });
  t.regex(err.cause.message, /does not exist/);
  t.false(fs.existsSync(path.join(dir, 'db')), 'createIfMissing: false created nothing');

  // A database that was created and closed, even with nothing in it, exists.
  const db = await openTestLevel(t, {}, path.join(dir, 'db'));
  await db.close();
  const exists = await t.throwsAsync(db.open({ errorIfExists: true }), { code: 'LEVEL_DATABASE_NOT_OPEN' });
  t.regex(exists.cause.message, /exists/);
  await db.open({ createIfMissing: false });
  t.is(db.status, 'open');
});

test('options: façade options are validated by open(); other keys are left to abstract-level', async (t) => {
  const bad = new UringLevel(tmpDir(t, 'uringdb-level-'), { ioBackend: backend(), memtableBytes: 'big' });
  const err = await t.throwsAsync(bad.open(), { code: 'LEVEL_DATABASE_NOT_OPEN' });
  t.is(err.cause.code, 'ERR_URINGDB_INVALID_OPTION');
  t.is(err.cause.field, 'memtableBytes');

  let seen;
  const db = new UringLevel(tmpDir(t, 'uringdb-level-'), { ioBackend: backend(), userland: 1, sync: false });
  t.teardown(() => db.close());
  db.hooks.postopen.add(async (options) => {
    seen = options;
  });
  await db.open();
  t.like(seen, { userland: 1, sync: false, createIfMissing: true, errorIfExists: false });
  await db.put('k', 'v', { sync: true });
  t.is(await db.get('k'), 'v');

  t.throws(() => new UringLevel(''), { instanceOf: TypeError });
  t.throws(() => new UringLevel(), { instanceOf: TypeError });
});

test('errors: a database locked by another process fails to open with LEVEL_LOCKED', async (t) => {
  const dir = tmpDir(t, 'uringdb-level-');
  const holder = spawnChild(t, path.join(repoRoot, '__test__', 'helpers', 'level-lock-holder.mjs'), [dir]);
  await holder.waitFor((line) => line === 'READY', 30_000, 'READY');
  const db = new UringLevel(dir, { ioBackend: backend() });
  const err = await t.throwsAsync(db.open(), { code: 'LEVEL_DATABASE_NOT_OPEN' });
  t.is(err.cause.code, 'LEVEL_LOCKED', 'the Level code, for rave-level and friends');
  t.is(err.cause.cause.code, 'ERR_URINGDB_LOCKED', "the façade's error stays reachable");
});

test('the root stores keys and values as given: the façade reads the same bytes', async (t) => {
  const db = await openTestLevel(t);
  await db.put('plain', 'value');
  await db.sublevel('sub').put('k', 'v');
  // Opening the directory again in this process joins the same engine.
  const facade = await pkg.open(db.location, { ioBackend: backend() });
  t.teardown(() => facade.close());
  t.is(await facade.get('plain', { encoding: 'utf8' }), 'value');
  t.is(await facade.get('!sub!k', { encoding: 'utf8' }), 'v');
});

test('the package exports uringdb/level (with its types), which depends on abstract-level at run time', (t) => {
  // A package can require itself by name through its own "exports".
  t.is(require.resolve('uringdb/level'), path.join(repoRoot, 'dist', 'level.js'));
  t.is(require('uringdb/level').UringLevel, UringLevel);
  t.true(fs.existsSync(path.join(repoRoot, 'dist', 'level.d.ts')), 'dist/level.d.ts is built');
  const manifest = require(path.join(repoRoot, 'package.json'));
  t.is(manifest.exports['./level'].types, './dist/level.d.ts');
  t.truthy(manifest.dependencies['abstract-level'], 'abstract-level is a runtime dependency');
});
