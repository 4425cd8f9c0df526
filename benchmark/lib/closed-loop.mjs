// The closed-loop driver every engine runs under: `clients` concurrent async callers, each
// issuing one operation, awaiting it, recording its latency, and issuing the next, until the
// deadline. "In flight" is therefore exactly `clients` (minus those between two operations).
// The deadline is checked against the clock after every operation (not with a timer), so an
// engine whose promises resolve as microtasks cannot starve the stop signal.
//
// A watchdog fails the loop with a StallError when no operation has completed for `stallMs`:
// an engine that loses a completion must fail the benchmark, not hang it (or CI) forever. The
// stuck operations are abandoned, so after a stall the engine must be treated as unusable.

import { LatencyRecorder } from './latency.mjs'

export class StallError extends Error {
  constructor(stallMs, ops, clients) {
    super(`stalled: no operation completed for ${stallMs / 1000} s (${ops} completed, ${clients} in flight)`)
    this.name = 'StallError'
    this.code = 'ERR_BENCH_STALLED'
  }
}

/**
 * @param {object} o
 * @param {number} o.clients          concurrent callers
 * @param {number} o.durationMs       how long callers keep issuing operations
 * @param {(client: number) => unknown} o.op  one operation (may return a promise)
 * @param {number} [o.samplesMax]     latency samples kept (reservoir beyond)
 * @param {(opsSoFar: number) => void} [o.onProgress]
 * @param {number} [o.stallMs]        fail when no operation completed for this long (default 30 s)
 * @returns {Promise<{ops: number, seconds: number, opsPerSec: number, latency: ReturnType<LatencyRecorder['summary']>}>}
 */
export async function closedLoop({ clients, durationMs, op, samplesMax = 1 << 22, onProgress, stallMs = 30_000 }) {
  const recorder = new LatencyRecorder(samplesMax)
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(Math.round(durationMs * 1e6))
  let ops = 0
  let failure = null

  async function client(id) {
    while (failure === null) {
      const t0 = process.hrtime.bigint()
      await op(id)
      const t1 = process.hrtime.bigint()
      recorder.record(Number(t1 - t0) / 1e3)
      ops++
      if (t1 >= deadline) return
    }
  }

  let timer = null
  if (onProgress) timer = setInterval(() => onProgress(ops), 200)
  let watchdog = null
  const stalled = new Promise((resolve) => {
    let seen = -1
    let since = Date.now()
    watchdog = setInterval(() => {
      if (ops !== seen) {
        seen = ops
        since = Date.now()
      } else if (Date.now() - since >= stallMs) {
        if (failure === null) failure = new StallError(stallMs, ops, clients)
        resolve()
      }
    }, Math.min(1000, stallMs / 4))
  })
  try {
    const runners = []
    for (let i = 0; i < clients; i++) {
      runners.push(
        client(i).catch((err) => {
          // The first failure stops every client; it is rethrown below.
          if (failure === null) failure = err
        }),
      )
    }
    await Promise.race([Promise.all(runners), stalled])
  } finally {
    if (timer) clearInterval(timer)
    clearInterval(watchdog)
  }
  if (failure !== null) throw failure
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return { ops, seconds, opsPerSec: ops / seconds, latency: recorder.summary() }
}
