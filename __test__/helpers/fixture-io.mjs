// The child side of the fixtures' stdout protocol (helpers/child.mjs reads it, and
// helpers/kill-loop.mjs for the crash children): one synchronous write per line, so whatever a
// child reported is in the pipe before it goes on, and survives a SIGKILL or abort.

import fs from 'node:fs';

/** Writes `text` to fd 1 with fs.writeSync: synchronous regardless of what process.stdout is. */
export const out = (text) => fs.writeSync(1, text);

/** An error as reported on a line: { code, causeCode, message } (null for no error). */
export const errorInfo = (err, messageChars = Infinity) =>
  err ? { code: err.code ?? null, causeCode: err.cause?.code ?? null, message: String(err.message).slice(0, messageChars) } : null;

/** A rejection handler that reports `E {code, message}` (message prefixed by `where`) and exits with code 3. */
export const failAndExit = (where) => (err) => {
  out(`E ${JSON.stringify({ code: err?.code ?? null, message: `${where}: ${String(err?.message ?? err)}` })}\n`);
  process.exit(3);
};

/** Never outlive the test that forgot to kill us: exit with code 4 after `ms` (unref'd unless `hold`). */
export function exitUnlessKilledWithin(name, ms, { hold = false } = {}) {
  const timer = setTimeout(() => {
    process.stderr.write(`${name}: not killed within ${ms / 1000} s, exiting\n`);
    process.exit(4);
  }, ms);
  if (!hold) timer.unref();
}

/**
 * `promise`, or `HANG {what, ...detail()}` and exit code 5 when it has not settled within 10 s
 * (an operation after an injected fault must settle, never hang).
 */
export function guard(promise, what, detail = () => ({})) {
  let timer;
  return Promise.race([
    promise,
    new Promise(() => {
      timer = setTimeout(() => {
        out(`HANG ${JSON.stringify({ what, ...detail() })}\n`);
        process.exit(5);
      }, 10_000);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** What writeAfterFault reports when the write after the failure succeeded (a test then fails). */
export const RESOLVED = Object.freeze({ code: 'RESOLVED', message: 'the write after the failure succeeded' });

/**
 * The fault children's write loop (URINGDB_FAULT_VFS injects the failure): issues
 * `write(i)` for i = 0, 1, ... `inFlight` at a time until one rejects or `count` were issued,
 * each group under guard(). `write(i)` resolves with the acknowledgement to record.
 * Returns { acks (in order of resolution), firstError (null if none failed) }.
 */
export async function writeUntilFault({ count, inFlight, write, label }) {
  const acks = [];
  let firstError = null;
  for (let i = 0; i < count && !firstError; i += inFlight) {
    const group = [];
    for (let j = i; j < i + inFlight; j++) {
      group.push(write(j).then((ack) => acks.push(ack), (err) => {
        firstError ??= err;
      }));
    }
    await guard(Promise.all(group), label(i, i + inFlight - 1), () => ({ acks: acks.length }));
  }
  return { acks, firstError };
}

/** The error a write after the failure rejects with (RESOLVED if it succeeded), under guard(). */
export function writeAfterFault(promise, what, detail) {
  return guard(promise.then(() => RESOLVED, (err) => err), what, detail);
}
