// A/B of the durable write path between two builds of uringdb, in one run, so that a change
// shows its table before and after measured side by side on the same (noisy) machine.
//
//   node benchmark/ab.mjs <root A> <root B> [--rounds N] [--tiny] [--long] [--flush]
//
// A root is a checkout whose package is built (`npm run build`: dist/index.js and the .node
// binary), e.g. a `git worktree` of the base commit and this checkout. Each round runs A then
// B, each in a child process of its own on a fresh temporary directory, with default options:
//
//   put 1024        durable random puts (16-byte keys, 100-byte values), 1024 in flight
//   put 64          the same, 64 in flight
//   append 1024     durable log appends of 100 bytes, 1024 in flight
//   append 1024 long  (with --long) the same, 2,000,000 appends (~260 MB of log): past the
//                   growth of a new log's segments (256 KiB doubling up to 64 MiB), into
//                   steady state on full-size preallocated segments
//   put 1024 flush  (with --flush) durable random puts as above, 1,500,000 of them (~230 MB
//                   of log): the memtable (64 MiB) flushes several times, and each flush
//                   truncates the log, so freed segments are deleted (or, with recycling,
//                   reused). The child watches the log directory and reports how many segments
//                   it saw carry the RECYCLED header flag, and the pool files (*.wal.free).
//
// Disk bytes per operation are the child's write_bytes (/proc/self/io: bytes this process
// caused to be written to storage, zero-fill included) over the case's operations.
// It prints the median ops/s and CPU µs per operation (user + system of the child) of each
// case and build, and B/A. Rounds alternate A and B so that drifting load hits both; the
// spread between rounds is printed too: on a shared 2-core VM single rounds differ by tens of
// percent, so read small ratios as noise. `--tiny` runs a few hundred operations (CI runs it
// so that the script cannot rot).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const CASES = [
  { name: 'put 1024', kind: 'put', inflight: 1024, n: 200_000 },
  { name: 'put 64', kind: 'put', inflight: 64, n: 50_000 },
  { name: 'append 1024', kind: 'append', inflight: 1024, n: 400_000 },
];
const LONG = { name: 'append 1024 long', kind: 'append', inflight: 1024, n: 2_000_000 };
if (process.argv.includes('--long')) CASES.push(LONG);
const FLUSH = { name: 'put 1024 flush', kind: 'put', inflight: 1024, n: 1_500_000, fresh: true };
if (process.argv.includes('--flush')) CASES.push(FLUSH);

/** Bytes this process caused to be written to storage so far (0 where /proc is absent). */
function writeBytes() {
  try {
    const m = /^write_bytes: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Segment numbers in `walDir` whose header has the RECYCLED flag (bit 0 of the flags at
 * offset 12; format version 3), added to `seen`; and the pool files there now. */
function scanRecycled(walDir, seen) {
  let pool = 0;
  let names = [];
  try {
    names = fs.readdirSync(walDir);
  } catch {
    return 0;
  }
  const header = Buffer.alloc(16);
  for (const name of names) {
    if (name.endsWith('.wal.free')) pool++;
    if (!/^\d{12}\.wal$/.test(name) || seen.has(name)) continue;
    try {
      const fd = fs.openSync(path.join(walDir, name), 'r');
      try {
        if (fs.readSync(fd, header, 0, 16, 0) === 16 && header.readUInt32LE(8) >= 3 && (header.readUInt32LE(12) & 1) === 1) {
          seen.add(name);
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // Truncated away meanwhile.
    }
  }
  return pool;
}

async function child(root, tiny) {
  const require = createRequire(path.join(root, 'package.json'));
  const { open, openLog } = require(path.join(root, 'dist', 'index.js'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uringdb-ab-'));
  const value = crypto.randomBytes(100);
  const out = {};
  const run = async (c, op, stats) => {
    const n = tiny ? 300 : c.n;
    const io0 = writeBytes();
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let issued = 0;
    let done = 0;
    await new Promise((resolve, reject) => {
      const next = () => {
        if (issued >= n) {
          if (done === n) resolve();
          return;
        }
        issued++;
        op().then(() => {
          done++;
          next();
        }, reject);
      };
      for (let i = 0; i < Math.min(c.inflight, n); i++) next();
    });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const diskPerOp = (writeBytes() - io0) / n;
    const s = stats();
    out[c.name] = {
      opsPerSec: n / seconds,
      cpuUsPerOp: (cpu.user + cpu.system) / n,
      diskBytesPerOp: diskPerOp,
      // Commit groups and fdatasyncs per 1000 operations (the log's counters since open).
      groupsPerK: s ? (s.groups / n) * 1000 : NaN,
      fsyncsPerK: s ? (s.fsyncs / n) * 1000 : NaN,
    };
  };
  try {
    const db = await open(path.join(dir, 'db'));
    for (const c of CASES.filter((c) => c.kind === 'put' && !c.fresh)) {
      const before = db.stats().log;
      await run(
        c,
        () => db.put(crypto.randomBytes(16), value),
        () => {
          const now = db.stats().log;
          return now && before ? { groups: now.groups - before.groups, fsyncs: now.fsyncs - before.fsyncs } : null;
        },
      );
    }
    await db.close();
    for (const c of CASES.filter((c) => c.fresh)) {
      // A database of its own, so that its log's whole life (growth, flushes) is in the case.
      const fdir = path.join(dir, 'flush');
      const fdb = await open(fdir);
      const seen = new Set();
      let pool = 0;
      const timer = setInterval(() => {
        pool = Math.max(pool, scanRecycled(path.join(fdir, 'wal'), seen));
      }, 50);
      try {
        await run(
          c,
          () => fdb.put(crypto.randomBytes(16), value),
          () => {
            const s = fdb.stats();
            return s.log ? { groups: s.log.groups, fsyncs: s.log.fsyncs } : null;
          },
        );
      } finally {
        clearInterval(timer);
      }
      pool = Math.max(pool, scanRecycled(path.join(fdir, 'wal'), seen));
      out[c.name].recycledSeen = seen.size;
      out[c.name].poolMax = pool;
      const st = fdb.stats();
      out[c.name].flushes = st.flushes ?? st.flush?.count ?? NaN;
      await fdb.close();
    }
    for (const c of CASES.filter((c) => c.kind === 'append')) {
      // A fresh log per case: each starts from an empty log, as a new user's would.
      const log = await openLog(path.join(dir, c.name.replaceAll(' ', '-')));
      await run(c, () => log.append(value), () => log.stats());
      await log.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1], args.includes('--tiny'));
  const tiny = args.includes('--tiny');
  const roundsAt = args.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : tiny ? 1 : 3;
  const roots = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--rounds');
  if (roots.length !== 2 || !Number.isInteger(rounds) || rounds < 1) {
    console.error('usage: node benchmark/ab.mjs <root A> <root B> [--rounds N] [--tiny] [--long]');
    process.exit(2);
  }
  for (const r of roots) {
    if (!fs.existsSync(path.join(r, 'dist', 'index.js'))) {
      console.error(`${r}: dist/index.js is missing; build it first (npm run build)`);
      process.exit(2);
    }
  }
  const self = fileURLToPath(import.meta.url);
  const results = { A: [], B: [] };
  for (let round = 0; round < rounds; round++) {
    for (const [label, root] of [['A', roots[0]], ['B', roots[1]]]) {
      const flags = [
        ...(tiny ? ['--tiny'] : []),
        ...(args.includes('--long') ? ['--long'] : []),
        ...(args.includes('--flush') ? ['--flush'] : []),
      ];
      const r = spawnSync(process.execPath, [self, '--child', path.resolve(root), ...flags], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (r.status !== 0) {
        console.error(`${label} (${root}) failed with status ${r.status}`);
        process.exit(1);
      }
      results[label].push(JSON.parse(r.stdout.trim().split('\n').pop()));
    }
  }
  console.log(`A = ${roots[0]}\nB = ${roots[1]}\n${rounds} round(s), A then B each round\n`);
  console.log(
    '| case | A ops/s | B ops/s | B/A | A CPU µs/op | B CPU µs/op | A / B disk bytes/op | A / B groups per 1k ops | A / B fsyncs per 1k ops | spread A / B (min-max ops/s) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const c of CASES) {
    const a = results.A.map((x) => x[c.name]);
    const b = results.B.map((x) => x[c.name]);
    const ma = median(a.map((x) => x.opsPerSec));
    const mb = median(b.map((x) => x.opsPerSec));
    const per = (xs, k) => median(xs.map((x) => x[k] ?? NaN)).toFixed(1);
    const spread = (xs) => `${Math.round(Math.min(...xs) / 1000)}k-${Math.round(Math.max(...xs) / 1000)}k`;
    console.log(
      `| ${c.name} | ${Math.round(ma)} | ${Math.round(mb)} | ${(mb / ma).toFixed(2)} | ` +
        `${median(a.map((x) => x.cpuUsPerOp)).toFixed(2)} | ${median(b.map((x) => x.cpuUsPerOp)).toFixed(2)} | ` +
        `${per(a, 'diskBytesPerOp')} / ${per(b, 'diskBytesPerOp')} | ` +
        `${per(a, 'groupsPerK')} / ${per(b, 'groupsPerK')} | ${per(a, 'fsyncsPerK')} / ${per(b, 'fsyncsPerK')} | ` +
        `${spread(a.map((x) => x.opsPerSec))} / ${spread(b.map((x) => x.opsPerSec))} |`,
    );
  }
  if (CASES.includes(FLUSH)) {
    const f = (xs) => xs.map((x) => x[FLUSH.name]);
    const show = (label, xs) =>
      `${label}: recycled segments seen per round ${f(xs).map((x) => x.recycledSeen).join(', ')}; ` +
      `largest pool ${f(xs).map((x) => x.poolMax).join(', ')}; flushes ${f(xs).map((x) => x.flushes).join(', ')}`;
    console.log(`\n${FLUSH.name}:\n  ${show('A', results.A)}\n  ${show('B', results.B)}`);
  }
}

await main();
