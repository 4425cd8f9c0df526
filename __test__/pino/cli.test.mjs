// The `uringdb logs` command, run as a user runs it: the package's bin, spawned.

import test from 'ava';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpDir, sleep } from '../helpers/util.mjs';
import { binPath, openDest, endDest } from '../helpers/pino.mjs';
import { repoRoot } from '../helpers/uringdb.mjs';

const run = promisify(execFile);

async function uringdb(...args) {
  try {
    const { stdout, stderr } = await run(process.execPath, [binPath, ...args], { cwd: repoRoot });
    return { code: 0, stdout, stderr };
  } catch (e) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const now = Date.now();
/** Lines an hour back to now, one a minute; every tenth a warning, every 30th an error. */
function fixtureLines() {
  return Array.from({ length: 61 }, (_, k) => {
    const level = k % 30 === 0 ? 50 : k % 10 === 0 ? 40 : 30;
    return `{"level":${level},"time":${now - (60 - k) * 60_000},"k":${k},"msg":"${k === 42 ? 'needle in here' : 'hay'}"}`;
  });
}

test.serial('logs prints NDJSON filtered by --since, --until, --level and --grep; stats sums the store', async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir, { blockBytes: 4096 });
  const lines = fixtureLines();
  for (const l of lines) d.write(l + '\n');
  await endDest(d);

  const all = await uringdb('logs', dir);
  t.is(all.code, 0, all.stderr);
  t.deepEqual(all.stdout.trimEnd().split('\n'), lines);

  const recent = await uringdb('logs', dir, '--since', '9.5m');
  t.deepEqual(recent.stdout.trimEnd().split('\n'), lines.slice(51));

  const until = await uringdb('logs', dir, '--until', new Date(now - 55 * 60_000).toISOString());
  t.deepEqual(until.stdout.trimEnd().split('\n'), lines.slice(0, 6));

  const warn = await uringdb('logs', dir, '--level', 'warn');
  t.deepEqual(warn.stdout.trimEnd().split('\n'), lines.filter((_, k) => k % 10 === 0));
  const errors = await uringdb('logs', dir, '--level', '50');
  t.deepEqual(errors.stdout.trimEnd().split('\n'), lines.filter((_, k) => k % 30 === 0));

  const grep = await uringdb('logs', dir, '--grep', 'needle');
  t.deepEqual(grep.stdout.trimEnd().split('\n'), [lines[42]]);

  const stats = await uringdb('logs', 'stats', dir);
  t.is(stats.code, 0, stats.stderr);
  const s = JSON.parse(stats.stdout);
  t.is(s.lines, 61);
  t.is(s.rawBytes, lines.join('\n').length + 1);
  t.is(s.minTime, now - 60 * 60_000);
  t.is(s.maxTime, now);
  t.true(s.compressionRatio > 0);
  t.deepEqual(s.drops, {});
});

test.serial('logs stats sums the drops the sampler recorded in the store', async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir, { sampling: { tickMs: 3_600_000, debug: { first: 2, thereafter: 0 }, summaryIntervalMs: 100 } });
  for (let i = 0; i < 50; i++) d.write(`{"level":20,"msg":"noisy","i":${i}}\n`);
  d.flushSync();
  await sleep(250);
  d.write('{"level":30,"msg":"wake the writer for its summary"}\n');
  await sleep(150);
  await endDest(d);
  const stats = await uringdb('logs', 'stats', dir);
  t.is(stats.code, 0, stats.stderr);
  t.deepEqual(JSON.parse(stats.stdout).drops, { debug: { sampling: 48 } });
});

test.serial('usage errors exit 2; a missing store exits 1 naming ENOENT; a bad level names the field', async (t) => {
  const none = await uringdb();
  t.is(none.code, 2);
  t.regex(none.stderr, /usage:/);
  const unknown = await uringdb('logs', '/tmp/x', '--colour');
  t.is(unknown.code, 2);
  const missing = await uringdb('logs', '/nonexistent/uringdb-logs');
  t.is(missing.code, 1);
  t.regex(missing.stderr, /ENOENT/);
  const dir = tmpDir(t);
  const d = await openDest(dir);
  await endDest(d);
  const level = await uringdb('logs', dir, '--level', 'loud');
  t.is(level.code, 1);
  t.regex(level.stderr, /ERR_URINGDB_INVALID_OPTION: invalid option level/);
  const since = await uringdb('logs', dir, '--since', 'yesterday-ish');
  t.regex(since.stderr, /invalid option since/);
});

test.serial('--follow prints lines written after it started, from a store being written', async (t) => {
  const dir = tmpDir(t);
  const d = await openDest(dir, { sync: 'always' });
  d.write('{"level":30,"n":0}\n');
  d.flushSync();
  const child = spawn(process.execPath, [binPath, 'logs', dir, '--follow'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  const closed = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  t.teardown(() => child.kill('SIGKILL'));
  const waitFor = async (n) => {
    for (let i = 0; i < 200 && out.split('\n').length - 1 < n; i++) await sleep(25);
  };
  await waitFor(1);
  for (let n = 1; n <= 50; n++) d.write(`{"level":30,"n":${n}}\n`);
  d.flushSync();
  await waitFor(51);
  const before = out;
  child.kill('SIGTERM');
  await closed;
  await endDest(d);
  // Printed as they came, before the command was stopped.
  t.deepEqual(before.trimEnd().split('\n').map((l) => JSON.parse(l).n), Array.from({ length: 51 }, (_, n) => n));
  t.is(out, before);
});
