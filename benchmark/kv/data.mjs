// Keys and values of the key-value benchmarks, reproducible from a seed so that a child
// process can regenerate exactly the keys its parent (or an earlier phase) loaded without
// shipping them around.
//
// Keys are 16 random bytes. Values are windows of a 4 MiB pool of random bytes at an offset
// derived from (key index, version): distinct, incompressible values (one shared buffer for
// every key would compress to nothing in engines that compress blocks, and flatter their
// space numbers), with no allocation per operation. Every engine copies keys and values at
// the call, so handing out subarrays of shared buffers is safe.

export const KEY_BYTES = 16
const POOL_BYTES = 4 << 20

/** A small, fast 32-bit PRNG (splitmix32). */
export function prng(seed) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) | 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }
}

/** `n` random 16-byte keys, back to back in one buffer; key i is `keyAt(keys, i)`. */
export function makeKeys(n, seed) {
  const next = prng(seed)
  const buf = Buffer.allocUnsafe(n * KEY_BYTES)
  for (let off = 0; off < buf.length; off += 4) buf.writeUInt32LE(next(), off)
  return buf
}

export const keyAt = (keys, i) => keys.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES)

/** A fresh random 16-byte key per call (for the put case, where every put is a new key). */
export function randomKeySource(seed) {
  const next = prng(seed)
  return () => {
    const k = Buffer.allocUnsafe(KEY_BYTES)
    k.writeUInt32LE(next(), 0)
    k.writeUInt32LE(next(), 4)
    k.writeUInt32LE(next(), 8)
    k.writeUInt32LE(next(), 12)
    return k
  }
}

/** Values of `valueBytes` bytes: `at(i, version)` is distinct per (i, version), incompressible. */
export function valueSource(valueBytes, seed) {
  const next = prng(seed ^ 0x5bd1e995)
  const pool = Buffer.allocUnsafe(POOL_BYTES + valueBytes)
  for (let off = 0; off + 4 <= pool.length; off += 4) pool.writeUInt32LE(next(), off)
  const span = POOL_BYTES
  return {
    at(i, version = 0) {
      const h = Math.imul((i + 1) ^ Math.imul(version + 1, 0x27d4eb2d), 0x9e3779b1) >>> 0
      const off = h % span
      return pool.subarray(off, off + valueBytes)
    },
  }
}

/** A random permutation of 0..n-1 (Fisher–Yates). */
export function permutation(n, seed) {
  const next = prng(seed)
  const p = new Uint32Array(n)
  for (let i = 0; i < n; i++) p[i] = i
  for (let i = n - 1; i > 0; i--) {
    const j = next() % (i + 1)
    const t = p[i]
    p[i] = p[j]
    p[j] = t
  }
  return p
}

/** The smallest and largest of `n` keys (a full ordered scan must start and end there). */
export function keyBounds(keys, n) {
  let min = keyAt(keys, 0)
  let max = min
  for (let i = 1; i < n; i++) {
    const k = keyAt(keys, i)
    if (Buffer.compare(k, min) < 0) min = k
    if (Buffer.compare(k, max) > 0) max = k
  }
  return { min, max }
}
