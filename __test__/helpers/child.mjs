// Spawning child processes (fixtures) and reading their stdout line by line.
//
// Fixtures write one line per event with a single synchronous write (process.stdout is
// synchronous for pipes on Linux), so whatever a child wrote before a SIGKILL is already in the
// pipe and is still read here after the kill.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './uringdb.mjs';

export const fixturesDir = path.join(repoRoot, '__test__', 'fixtures');

/**
 * Spawns `node <fixture> ...args` (optionally behind `wrapper`, e.g. the seccomp helper, which
 * execs node so that the PID is node's). Returns a handle:
 *   lines      every complete stdout line so far (and the last partial one once stdout ends)
 *   stderr()   everything written to stderr so far
 *   waitFor(predicate, ms, what)   resolves with the first line (past or future) matching
 *   closed     resolves with { code, signal } once the process exited and its pipes are drained
 *   kill(sig)  sends a signal if the process is still running
 * The child is SIGKILLed at test teardown if it is still running.
 */
export function spawnChild(t, fixture, args = [], { env = {}, wrapper = [], stdin = 'ignore' } = {}) {
  const script = path.isAbsolute(fixture) ? fixture : path.join(fixturesDir, fixture);
  const argv = [...wrapper, process.execPath, script, ...args.map(String)];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: [stdin, 'pipe', 'pipe'],
  });

  const lines = [];
  const listeners = new Set();
  let partial = '';
  let stderrText = '';
  let exited = false;

  const emit = (line) => {
    lines.push(line);
    for (const listener of listeners) listener(line);
  };

  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    partial += chunk;
    let nl;
    while ((nl = partial.indexOf('\n')) !== -1) {
      emit(partial.slice(0, nl));
      partial = partial.slice(nl + 1);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    // Bounded: a runaway child must not eat the parent's memory.
    if (stderrText.length < 1 << 20) stderrText += chunk;
  });

  const closed = new Promise((resolve) => {
    child.on('error', (err) => {
      exited = true;
      stderrText += `\n[spawn error] ${err.message}`;
      resolve({ code: null, signal: null, error: err });
    });
    child.on('close', (code, signal) => {
      exited = true;
      if (partial !== '') {
        emit(partial);
        partial = '';
      }
      for (const listener of listeners) listener(null);
      resolve({ code, signal });
    });
  });

  const handle = {
    child,
    pid: child.pid,
    lines,
    stderr: () => stderrText,
    closed,
    get exited() {
      return exited;
    },
    kill(signal = 'SIGKILL') {
      if (!exited) child.kill(signal);
    },
    /** The first line matching `predicate` (already received or future). */
    waitFor(predicate, ms, what) {
      const found = lines.find(predicate);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const done = (fn, value) => {
          clearTimeout(timer);
          listeners.delete(listener);
          fn(value);
        };
        const listener = (line) => {
          if (line === null) {
            done(reject, new Error(`child ${fixture} exited before ${what}; stderr:\n${stderrText}\nstdout tail:\n${lines.slice(-5).join('\n')}`));
          } else if (predicate(line)) {
            done(resolve, line);
          }
        };
        const timer = setTimeout(
          () => done(reject, new Error(`child ${fixture} did not report ${what} within ${ms} ms; stderr:\n${stderrText}`)),
          ms,
        );
        listeners.add(listener);
        if (exited) listener(null);
      });
    },
  };

  t.teardown(async () => {
    handle.kill('SIGKILL');
    await closed;
  });
  return handle;
}

/** Parses a `TAG {json}` line written by a fixture. */
export function parseTagged(line, tag) {
  if (!line.startsWith(`${tag} `)) throw new Error(`expected a ${tag} line, got ${JSON.stringify(line)}`);
  return JSON.parse(line.slice(tag.length + 1));
}

/**
 * Waits for a fault child's one result line (RESULT, HANG or E; helpers/fixture-io.mjs) and
 * returns the parsed RESULT. On HANG (an operation never settled) or E (the child failed) it
 * fails the test, naming `what`, and returns null.
 */
export async function faultResult(t, child, ms, what) {
  const line = await child.waitFor((l) => /^(RESULT|HANG|E) /.test(l), ms, 'RESULT');
  if (line.startsWith('HANG ')) {
    const hang = parseTagged(line, 'HANG');
    t.fail(`${what}: ${hang.what} never settled${hang.acks === undefined ? '' : ` (after ${hang.acks} acknowledged writes)`}`);
    return null;
  }
  if (line.startsWith('E ')) {
    t.fail(`${what}: the child failed: ${line}\n${child.stderr()}`);
    return null;
  }
  return parseTagged(line, 'RESULT');
}

/**
 * Waits for a child's `READY {json}` line and returns it parsed; when the child reports
 * `E {code, message}` instead it fails the test (the child could not open `what`) and
 * returns null.
 */
export async function waitReady(t, child, what, ms = 30_000) {
  const line = await child.waitFor((l) => l.startsWith('READY ') || l.startsWith('E '), ms, 'READY');
  if (line.startsWith('E ')) {
    t.fail(`the child could not open ${what}: ${line}\n${child.stderr()}`);
    return null;
  }
  return parseTagged(line, 'READY');
}
