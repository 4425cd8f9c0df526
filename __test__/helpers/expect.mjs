// Error assertions shared by the log and the database tests: what a call throws or rejects
// with, and that it is a uringdb error with a stable code.

import { UringdbError } from './uringdb.mjs';
import { assertCode } from './util.mjs';

/**
 * The error `fn()` throws synchronously or rejects with; null if it succeeds. An async
 * iterable's argument errors may surface only at its first next(), so one is started.
 */
export async function errorOf(fn) {
  try {
    const value = fn();
    if (value && typeof value.then === 'function') await value;
    else if (value && typeof value[Symbol.asyncIterator] === 'function') {
      const it = value[Symbol.asyncIterator]();
      await it.next();
      await it.return?.();
    }
    return null;
  } catch (err) {
    return err;
  }
}

/** Asserts `fn()` throws or rejects with a UringdbError of `code` that has a message; returns the error. */
export async function expectError(t, fn, code, what) {
  const err = await errorOf(fn);
  assertCode(t, err, code, what);
  if (err) {
    t.true(err instanceof UringdbError, `${what}: is a UringdbError (got ${err?.constructor?.name})`);
    t.true(err instanceof Error, `${what}: is an Error`);
    t.true(typeof err.message === 'string' && err.message.length > 0, `${what}: has a message`);
  }
  return err;
}

/** Asserts `fn()` throws synchronously (not a rejected promise) with `code`. */
export function expectThrowSync(t, fn, code, what) {
  let err = null;
  let value;
  try {
    value = fn();
  } catch (e) {
    err = e;
  }
  if (value && typeof value.then === 'function') value.catch(() => {});
  assertCode(t, err, code, `${what} (thrown synchronously)`);
  return err;
}

/** Values that are not bytes (a string, Buffer or TypedArray), for a record, a key or a value. */
export const NOT_BYTES = Object.freeze([
  ['number', 123],
  ['object', { a: 1 }],
  ['null', null],
  ['undefined', undefined],
  ['boolean', true],
  ['array of numbers', [1, 2, 3]],
  ['function', () => {}],
  ['symbol', Symbol('x')],
  ['bigint', 10n],
]);

/** The error `p` rejects with, or undefined if it resolves. */
export async function rejects(p) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
}

/** The error `f()` throws, or undefined if it returns. */
export function catches(f) {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}
