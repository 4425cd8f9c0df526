// Keys of the clear() tests: fixed length, so that the number of deletions per write is
// known (one write holds floor((maxBatchBytes - 1) / (5 + CLEAR_KEY_BYTES)) deletions).

export const CLEAR_KEY_BYTES = 12;
export const CLEAR_VALUE = 'v';

/** The i-th key (keys sort in index order). */
export function clearKey(i) {
  return `clr/${String(i).padStart(CLEAR_KEY_BYTES - 4, '0')}`;
}

/** Deletions in one write of at most `maxBatchBytes`. */
export function deletesPerWrite(maxBatchBytes) {
  return Math.floor((maxBatchBytes - 1) / (5 + CLEAR_KEY_BYTES));
}
