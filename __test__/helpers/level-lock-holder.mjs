// Holds a uringdb database open in its own process, so that another process's open of the
// same directory meets the lock: opens argv[2] with the backend under test, prints READY,
// and stays open until killed.

import { pkg, backend } from './uringdb.mjs';

const db = await pkg.open(process.argv[2], { ioBackend: backend() });
process.stdout.write('READY\n');
setInterval(() => {}, 1 << 30); // keep the process (and the lock) alive until killed
void db;
