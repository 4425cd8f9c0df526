// One engine per child process: each case group of an engine runs in a fresh `node`
// process, so that its /proc/self/io counters, its memory and its background threads
// (RocksDB's and LevelDB's compactions, lmdb-js's writer thread, uringdb's committer) are
// its own and are gone before the next engine starts.
//
// Protocol (Node's IPC channel): the child receives its spec as argv[2] (JSON), may send
// any number of { type: 'progress', ... } messages, then exactly one { type: 'result',
// result } or { type: 'error', error }, and exits. Its stdout/stderr are the parent's.

import { fork } from 'node:child_process'

export class ChildError extends Error {
  constructor(message, { code, stack } = {}) {
    super(message)
    this.name = 'ChildError'
    if (code) this.code = code
    if (stack) this.childStack = stack
  }
}

/**
 * Runs `script` with `spec`; resolves with the child's result.
 * @param {string} script
 * @param {object} spec
 * @param {{ timeoutMs: number, onMessage?: (msg: object) => void, env?: object }} o
 */
export function runChild(script, spec, { timeoutMs, onMessage, env }) {
  return new Promise((resolve, reject) => {
    const child = fork(script, [JSON.stringify(spec)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: env ?? process.env,
    })
    let outcome = null
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('message', (msg) => {
      if (msg?.type === 'result' || msg?.type === 'error') outcome = msg
      else onMessage?.(msg)
    })
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (outcome?.type === 'result') return resolve(outcome.result)
      if (outcome?.type === 'error') return reject(new ChildError(outcome.error.message, outcome.error))
      if (timedOut) return reject(new ChildError(`did not finish within ${timeoutMs / 1000} s (killed)`, { code: 'ERR_BENCH_TIMEOUT' }))
      reject(new ChildError(`child exited without a result (${signal ? `signal ${signal}` : `exit code ${code}`})`))
    })
  })
}

/**
 * The child's side: runs `main(spec, send)` and reports its result or error, then exits
 * (engines may leave threads behind that would keep the process alive).
 * @param {(spec: object, send: (msg: object) => void) => Promise<object>} main
 */
export async function childMain(main) {
  const spec = JSON.parse(process.argv[2])
  const send = (msg) => process.send?.(msg)
  let msg
  try {
    msg = { type: 'result', result: await main(spec, send) }
  } catch (err) {
    msg = { type: 'error', error: { message: err?.message ?? String(err), code: err?.code, stack: err?.stack } }
  }
  if (!process.send) {
    process.stdout.write(JSON.stringify(msg, null, 2) + '\n')
    process.exit(msg.type === 'result' ? 0 : 1)
  }
  process.send(msg, () => process.exit(msg.type === 'result' ? 0 : 1))
}
