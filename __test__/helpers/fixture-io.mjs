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
