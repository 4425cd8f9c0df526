// The kernel matrix's checker must be able to fail: scripts/kernels/run.sh runs this before
// it boots anything. A good guest result passes report.mjs; each broken variant (a failed
// test, a crashed or missing test binary, a hang, a fallback not taken, an explicit io_uring
// request not refused, a failed bench) makes it exit 1 and name the problem.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))

const probe = (backend, reason, disabled = null) => JSON.stringify({
  kernel: '6.12.0-test', ioUringDisabled: disabled,
  auto: { backend, fallbackReason: reason, features: backend === 'io_uring' ? ['op:WRITEV', 'op:FSYNC'] : [] },
  ioUring: backend === 'io_uring' ? { ok: true, error: null } : { ok: false, error: `ioBackend 'io_uring' unavailable: ${reason}` },
  extra: { setup: 'ok', features: ['FEAT_CQE_SKIP(5.17)'], missing: ['FEAT_NO_IOWAIT(6.15)'] },
})
const loop = { records: 10, seconds: 1, opsPerSec: 10, groups: 10, verified: true }
const bench = (requested, backend) => JSON.stringify({ requested, backend, fallbackReason: null, recordBytes: 100, serial: loop, grouped: loop })
const refused = JSON.stringify({ requested: 'io_uring', error: "open: ioBackend 'io_uring' unavailable: kernel.io_uring_disabled=2" })
const disabledReason = 'io_uring_setup failed with EPERM: kernel.io_uring_disabled=2: io_uring is disabled for every process'
const seccompReason = 'io_uring_setup failed with EPERM: refused by a seccomp filter'

const good = [
  '@@kernel 6.12.0-test',
  `@@probe ${probe('io_uring', null)}`,
  '@@test wal.a 0 5 0 1',
  '@@test uring.b 0 3 0 1',
  `@@bench ${bench('io_uring', 'io_uring')}`,
  `@@bench ${bench('portable', 'portable')}`,
  '@@phase io_uring_disabled=2',
  `@@probe ${probe('portable', disabledReason, 2)}`,
  `@@bench ${bench('auto', 'portable')}`,
  `@@bench ${refused}`,
  '@@phase seccomp',
  `@@probe ${probe('portable', seccompReason)}`,
  '@@done',
  '@@boot 10 0',
]

const dir = mkdtempSync(join(tmpdir(), 'uringdb-kernels-report-'))
writeFileSync(join(dir, 'list.txt'), 'wal.a\nuring.b\n')
function report(lines) {
  writeFileSync(join(dir, 'k.results'), lines.join('\n') + '\n')
  const r = spawnSync(process.execPath, [join(here, 'report.mjs'), '--tests', 'ci',
    '--runs', dir, '--list', join(dir, 'list.txt'), 'k'], { encoding: 'utf8' })
  return { status: r.status, out: r.stdout + r.stderr }
}
const replace = (from, to) => good.map((l) => (l.startsWith(from) ? to : l))
const without = (prefix) => good.filter((l) => !l.startsWith(prefix))

try {
  const ok = report(good)
  assert.equal(ok.status, 0, ok.out)
  assert.match(ok.out, /kernel-matrix result: 16 passed; 0 failed/)
  assert.match(ok.out, /emulated \(qemu TCG\)/)

  const broken = {
    'a failed test': [replace('@@test wal.a', '@@test wal.a 101 4 1 1'), /wal\.a: 1 failed/],
    'a crashed binary': [replace('@@test uring.b', '@@test uring.b 134 0 0 1'), /uring\.b exited 134/],
    'a binary killed by the time box': [replace('@@test uring.b', '@@test uring.b 137 0 0 1'), /killed by the time box/],
    'a binary that ran no test': [replace('@@test uring.b', '@@test uring.b 0 0 0 1'), /uring\.b ran no test/],
    'a missing binary': [without('@@test uring.b'), /uring\.b reported nothing/],
    'a hang (no @@done)': [without('@@done'), /did not finish/],
    'no fallback with the sysctl': [good.map((l, i) => (i === 7 ? `@@probe ${probe('io_uring', null, 2)}` : l)), /io_uring_disabled=2: auto chose io_uring/],
    'an io_uring request not refused': [good.map((l, i) => (i === 9 ? `@@bench ${bench('io_uring', 'io_uring')}` : l)), /was not refused/],
    'no seccomp fallback': [good.map((l, i) => (i === 11 ? `@@probe ${probe('io_uring', null)}` : l)), /seccomp: auto chose io_uring/],
    'a failed bench': [good.map((l, i) => (i === 5 ? '@@bench {"requested":"portable","error":"grouped: reopen found 3 records, 9 were acknowledged"}' : l)), /portable bench: grouped: reopen found/],
    'a bench that printed nothing': [good.map((l, i) => (i === 4 ? '@@bench ' : l)), /bench printed no JSON/],
  }
  for (const [what, [lines, message]] of Object.entries(broken)) {
    const r = report(lines)
    assert.equal(r.status, 1, `${what}: report.mjs passed:\n${r.out}`)
    assert.match(r.out, message, what)
    assert.match(r.out, /kernel-matrix result: \d+ passed; [1-9]\d* failed/, what)
  }
  console.log(`report.test.mjs: the checker passes a good result and fails ${Object.keys(broken).length} broken ones`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
