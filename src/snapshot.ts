/**
 * Snapshots of the key-value database.
 *
 * @module
 */
import type * as native from '../binding.js'
import { invalidArgument } from './errors.js'

/**
 * A consistent point-in-time view: reads given it see exactly the writes that had resolved
 * before it was taken. Release it when done (compaction keeps old versions while it lives).
 */
export class Snapshot implements Disposable {
  /** @internal */
  readonly _native: native.NativeSnapshot
  /** @internal */
  constructor(n: native.NativeSnapshot) {
    this._native = n
  }
  /** The sequence number the snapshot reads at (-1 once released). */
  get seq(): number {
    return this._native.seq
  }
  /** Releases the snapshot (idempotent). Reads given it afterwards reject. */
  release(): void {
    this._native.release()
  }
  /** Same as {@link Snapshot.release}, for `using`. */
  [Symbol.dispose](): void {
    this.release()
  }
}

/** The native snapshot of an optional `snapshot` argument; throws if it is not a {@link Snapshot}. */
export function checkSnapshot(s: unknown): native.NativeSnapshot | null {
  if (s === undefined || s === null) return null
  if (!(s instanceof Snapshot)) throw invalidArgument('snapshot must come from db.snapshot()')
  return s._native
}
