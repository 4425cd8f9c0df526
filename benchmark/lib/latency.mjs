// Per-operation latency samples in a preallocated Float64Array (microseconds), percentiles by
// sort. No allocation per sample; past `capacity` samples the recorder keeps a uniform random
// sample of all operations (reservoir sampling), so a long run cannot grow memory.

export class LatencyRecorder {
  /** @param {number} capacity samples kept at most */
  constructor(capacity) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity}`)
    this.samplesUs = new Float64Array(capacity)
    this.kept = 0
    this.seen = 0
  }

  /** @param {number} us */
  record(us) {
    const seen = this.seen++
    if (this.kept < this.samplesUs.length) {
      this.samplesUs[this.kept++] = us
      return
    }
    const slot = Math.floor(Math.random() * (seen + 1))
    if (slot < this.samplesUs.length) this.samplesUs[slot] = us
  }

  /** Sorts the samples in place and returns the nearest-rank percentiles, microseconds. */
  summary() {
    const sorted = this.samplesUs.subarray(0, this.kept).sort()
    const at = (p) => {
      if (sorted.length === 0) return 0
      const rank = Math.ceil((p / 100) * sorted.length)
      return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1]
    }
    return { count: this.seen, sampled: this.kept, p50Us: at(50), p99Us: at(99), p999Us: at(99.9), maxUs: at(100) }
  }
}
