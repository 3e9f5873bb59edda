import { translateSqliteError } from './open.js';
import { storeWorker } from './storeWorker.js';

/**
 * The worker's code (storeWorker.ts). It opens its own connection to the store: a VACUUM on the daemon's connection
 * would block the main thread (and with it the watchdog pings, the metrics endpoint and signal handling) for as long
 * as the rebuild takes.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let db;
try {
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
  db.pragma('secure_delete = ON');
  db.exec('VACUUM');
  parentPort.postMessage({ ok: true });
} catch (err) {
  parentPort.postMessage({ ok: false, code: err && err.code, message: String((err && err.message) || err) });
} finally {
  if (db) db.close();
}
`;

interface WorkerReply {
  ok: boolean;
  code?: string;
  message?: string;
}

/**
 * Rebuilds the store file (VACUUM) on a connection of its own in a worker thread; the caller's event loop keeps
 * turning meanwhile. The caller's connection must not be inside a transaction (the VACUUM needs the write lock).
 * SQLite errors come back as the same errors as on the caller's connection (busy, disk full, read-only), naming the
 * store. The VACUUM cannot be interrupted from here (the worker is inside one native call until it returns), so a
 * stop waits for it; if the process is killed anyway, SQLite discards the unfinished rebuild and the file stays as it
 * was before (https://www.sqlite.org/lang_vacuum.html, https://www.sqlite.org/atomiccommit.html).
 */
export function vacuumInWorker(file: string, busyTimeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let reply: WorkerReply | null = null;
    const worker = storeWorker(WORKER_SOURCE, { file, busyTimeoutMs });
    worker.on('message', (message: WorkerReply) => {
      reply = message;
    });
    worker.on('error', (err) => reject(translateSqliteError(err, file)));
    worker.on('exit', (exitCode) => {
      const done = reply as WorkerReply | null;
      if (done?.ok) return resolve();
      if (done) {
        const err = Object.assign(new Error(`VACUUM of ${file} failed: ${done.message ?? 'unknown error'}`), { code: done.code });
        return reject(translateSqliteError(err, file));
      }
      reject(new Error(`the VACUUM worker for ${file} exited (code ${exitCode}) without a result`));
    });
  });
}
