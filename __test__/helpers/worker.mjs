// worker_threads fixtures (fixtures/worker-appender.mjs, fixtures/db-worker.mjs): each posts
// { type: 'opened', ... } once it has opened the shared directory and { type: 'done', ... }
// before it exits.

import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fixturesDir } from './child.mjs';

/**
 * Starts `fixture` as a worker thread with `workerData` (terminated at test teardown).
 * Returns { worker, opened, done }: `opened` resolves with the 'opened' message (null if the
 * worker exited first); `done` with the 'done' message, and rejects when the worker threw or
 * exited without one or with a non-zero code.
 */
export function startWorker(t, fixture, workerData) {
  const worker = new Worker(path.join(fixturesDir, fixture), { workerData });
  t.teardown(() => worker.terminate());
  let onOpened;
  const opened = new Promise((resolve) => (onOpened = resolve));
  const done = new Promise((resolve, reject) => {
    let result = null;
    worker.on('message', (m) => {
      if (m.type === 'opened') onOpened(m);
      if (m.type === 'done') result = m;
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      onOpened(null);
      if (code !== 0) reject(new Error(`worker ${workerData.tag} exited with code ${code}`));
      else if (!result) reject(new Error(`worker ${workerData.tag} exited without reporting`));
      else resolve(result);
    });
  });
  return { worker, opened, done };
}
