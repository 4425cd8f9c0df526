// The kernel matrix's table (scripts/kernels/run.sh step 5), from the result files the guests
// wrote over their second serial port (the line protocol is in guest-init.sh):
//
//   node scripts/kernels/report.mjs --tests ci|full --runs target/kernels/runs [--host]
//     [--list FILE (the test binaries each guest must report; default: the initramfs's)] SUITE...
//
// Checks, each one failure when it does not hold:
//   - the guest finished (an @@done line) within its time box;
//   - every listed test binary reported, exited 0, and its libtest summary has 0 failed and
//     at least one passed;
//   - the probe printed; the durable bench succeeded with each backend the kernel offers and
//     reopened every acknowledged record;
//   - with kernel.io_uring_disabled=2 (where the sysctl exists): ioBackend 'auto' chose the
//     portable backend and named the sysctl, its bench ran on portable, and ioBackend
//     'io_uring' was refused (the bench's exit 2, a clear error);
//   - under the seccomp filter (examples/deny_io_uring): 'auto' chose portable, naming seccomp.
// The last line, "kernel-matrix result: N passed; M failed", counts the guests' Rust tests plus
// these checks (scripts/test.sh adds it to the totals). Exit status 1 on any failure.
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'

const argv = process.argv.slice(2)
let tests = 'full'
let runs = 'target/kernels/runs'
let host = false
let listFile = null
const suites = []
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--tests') tests = argv[++i]
  else if (argv[i] === '--runs') runs = argv[++i]
  else if (argv[i] === '--host') host = true
  else if (argv[i] === '--list') listFile = argv[++i]
  else suites.push(argv[i])
}
listFile ??= join(runs, '..', 'initramfs', 'uringdb', `tests-${tests}.txt`)
const expectedTests = readFileSync(listFile, 'utf8').split('\n').filter(Boolean)

/** Parses one results file into phases: normal, disabled, seccomp. */
function parse(file) {
  const run = { kernel: null, done: false, errors: [], boot: null, phases: { normal: newPhase() } }
  if (!existsSync(file)) {
    run.errors.push(`no results file ${file}`)
    return run
  }
  let phase = run.phases.normal
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.replace(/\r$/, '')
    if (!line.startsWith('@@')) continue
    const sp = line.indexOf(' ')
    const tag = sp < 0 ? line.slice(2) : line.slice(2, sp)
    const rest = sp < 0 ? '' : line.slice(sp + 1)
    if (tag === 'kernel') run.kernel = rest
    else if (tag === 'done') run.done = true
    else if (tag === 'error') run.errors.push(rest)
    else if (tag === 'boot') run.boot = Number(rest.split(' ')[0])
    else if (tag === 'phase') {
      const name = rest.startsWith('io_uring_disabled=') ? 'disabled' : rest
      phase = run.phases[name] = newPhase()
      phase.label = rest
    } else if (tag === 'probe') phase.probe = json(rest, run, 'probe')
    else if (tag === 'bench') {
      const b = json(rest, run, 'bench')
      if (b) phase.bench[b.requested] = b
    } else if (tag === 'test') {
      const [name, rc, passed, failed, seconds] = rest.split(' ')
      phase.tests.push({ name, rc: Number(rc), passed: Number(passed), failed: Number(failed), seconds: Number(seconds) })
    }
  }
  return run
}

function newPhase() {
  return { probe: null, bench: {}, tests: [] }
}

function json(text, run, what) {
  try {
    return JSON.parse(text)
  } catch {
    run.errors.push(`${what} printed no JSON: ${JSON.stringify(text.slice(0, 200))}`)
    return null
  }
}

let passed = 0
let failed = 0
const failures = []
function check(ok, row, what) {
  if (ok) passed++
  else {
    failed++
    failures.push(`${row}: ${what}`)
  }
  return ok
}

const rows = []
const notes = []
const hostRun = host ? parse(join(runs, 'host.results')) : null
const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : '-')
const ops = (b, loop) => b?.[loop]?.opsPerSec ?? null
const fmt = (n) => (n == null ? '-' : n >= 10000 ? `${(n / 1000).toFixed(0)}k` : n.toFixed(0))

function row(label, run, isHost) {
  const name = `${label} ${run.kernel ?? '?'}`
  for (const e of run.errors) check(false, name, e)
  check(run.done, name, 'the guest did not finish (no @@done)')
  const n = run.phases.normal
  let testCell = isHost ? 'cargo-test stage' : ''
  if (!isHost) {
    let p = 0
    let f = 0
    for (const t of expectedTests) {
      const r = n.tests.find((x) => x.name === t)
      if (!r) {
        f++
        failed++
        failures.push(`${name}: test binary ${t} reported nothing`)
        continue
      }
      p += r.passed
      f += r.failed
      passed += r.passed
      failed += r.failed
      if (r.rc !== 0 && r.failed === 0) {
        f++
        failed++
        failures.push(`${name}: ${t} exited ${r.rc} (${r.rc === 137 ? 'killed by the time box' : 'crashed'}) without a failed test`)
      } else if (r.failed > 0) failures.push(`${name}: ${t}: ${r.failed} failed`)
      if (r.rc === 0 && r.passed === 0) {
        f++
        failed++
        failures.push(`${name}: ${t} ran no test`)
      }
    }
    testCell = `${p} pass, ${f} fail`
  }
  const auto = n.probe?.auto
  check(!!auto, name, 'the probe printed nothing')
  const extra = n.probe?.extra
  const newer = extra ? extra.features.length + extra.missing.length : 0
  const features = auto ? `${auto.features.length} used; newer ${extra?.features.length ?? 0}/${newer}` : '-'
  if (extra?.missing?.length) notes.push(`${name} lacks: ${extra.missing.join(' ')}`)
  else if (extra && extra.setup !== 'ok') notes.push(`${name}: newer features not probed: ${extra.setup}`)
  const io = n.bench.io_uring
  const pt = n.bench.portable
  if (auto?.backend === 'io_uring') check(io && !io.error, name, `io_uring bench: ${io?.error ?? 'missing'}`)
  check(pt && !pt.error, name, `portable bench: ${pt?.error ?? 'missing'}`)
  const hostIo = hostRun?.phases.normal.bench.io_uring
  // The fallback phases (guests only).
  let fallback = '-'
  if (!isHost) {
    const d = run.phases.disabled
    if (d?.label === 'io_uring_disabled=unsupported') fallback = 'sysctl n/a (<6.6)'
    else if (d) {
      const pa = d.probe?.auto
      const ok1 = check(pa?.backend === 'portable' && /io_uring_disabled/.test(pa?.fallbackReason ?? ''), name,
        `io_uring_disabled=2: auto chose ${pa?.backend} (${pa?.fallbackReason})`)
      const ba = d.bench.auto
      const ok2 = check(ba && !ba.error && ba.backend === 'portable', name,
        `io_uring_disabled=2: auto bench ${ba?.error ?? ba?.backend}`)
      const bi = d.bench.io_uring
      const ok3 = check(bi?.error && /unavailable/.test(bi.error), name,
        `io_uring_disabled=2: an explicit io_uring request was not refused (${bi?.error ?? bi?.backend})`)
      fallback = ok1 && ok2 && ok3 ? 'disabled=2: portable OK' : 'disabled=2: FAILED'
    } else check(false, name, 'no io_uring_disabled phase')
    const s = run.phases.seccomp?.probe?.auto
    const ok = check(s?.backend === 'portable' && /seccomp/.test(s?.fallbackReason ?? ''), name,
      `seccomp: auto chose ${s?.backend} (${s?.fallbackReason})`)
    fallback += ok ? ', seccomp OK' : ', seccomp FAILED'
  }
  rows.push([
    name,
    auto?.backend ?? '-',
    features,
    testCell,
    `${fmt(ops(io, 'serial'))} / ${fmt(ops(pt, 'serial'))}`,
    `${ratio(ops(io, 'serial'), ops(pt, 'serial'))} / ${ratio(ops(io, 'grouped'), ops(pt, 'grouped'))}`,
    isHost ? '1.00' : ratio(ops(io, 'grouped'), ops(hostIo, 'grouped')),
    fallback,
    isHost ? 'native' : `${run.boot ?? '?'}s TCG`,
  ])
}

if (hostRun) row('host', hostRun, true)
for (const s of suites) row(s, parse(join(runs, `${s}.results`)), false)

const head = ['kernel', 'auto', 'io_uring features', `tests (${tests})`,
  'serial ops/s io/port', 'io÷port ser/grp', 'grp÷host', 'fallback', 'run']
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd()
console.log()
console.log('Kernel matrix: emulated (qemu TCG) — these timings show function, not speed.')
console.log('  ops/s: durable 100-byte appends (sync: true), "serial" one in flight, "grp" up to 64;')
console.log('  io÷port: io_uring over portable in the same guest; grp÷host: guest io_uring over the host\'s.')
console.log(line(head))
console.log(line(widths.map((w) => '-'.repeat(w))))
for (const r of rows) console.log(line(r))
console.log()
console.log('io_uring features: "used" are those the engine probes and reports (stats().ioFeatures);')
console.log('"newer" are later ones it does not use, probed for this table (kernel that added each):')
for (const n of notes) console.log(`  ${n}`)
if (failures.length) {
  console.log()
  for (const f of failures) console.log(`FAIL ${f}`)
}
console.log()
console.log(`kernel-matrix result: ${passed} passed; ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)
