import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const driverPath = createRequire(import.meta.url).resolve('better-sqlite3');

/**
 * A worker thread for work on a connection of its own to a store (a VACUUM, WAL checkpoints), so that the caller's
 * event loop keeps turning meanwhile. `source` runs as a CommonJS script (`eval`): the same text works from src/ under
 * the test runner and from dist/ as the CLI runs, with no .js file to locate beside the compiled module. It finds the
 * SQLite driver's path at `workerData.driver`, and `data` beside it.
 */
export function storeWorker(source: string, data: Record<string, unknown>): Worker {
  return new Worker(source, { eval: true, workerData: { driver: driverPath, ...data } });
}
