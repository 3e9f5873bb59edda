import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { Db } from './open.js';

/**
 * The worker's code, run as a CommonJS script (`eval`, as vacuumWorker.ts does, so the same text works from src/ and
 * dist/). On each message it runs one PASSIVE checkpoint on a connection of its own and answers with its result or
 * error. PASSIVE never waits for a lock and never blocks a writer or reader
 * (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let db;
try {
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('wal_autocheckpoint = 0');
} catch (err) {
  parentPort.postMessage({ ok: false, message: String((err && err.message) || err) });
  parentPort.close();
}
if (db) {
  parentPort.on('message', (message) => {
    if (message === 'stop') {
      db.close();
      parentPort.close();
      return;
    }
    try {
      const [row] = db.pragma('wal_checkpoint(PASSIVE)');
      parentPort.postMessage({ ok: true, frames: Number(row.checkpointed) });
    } catch (err) {
      parentPort.postMessage({ ok: false, message: String((err && err.message) || err) });
    }
  });
}
`;

const driverPath = createRequire(import.meta.url).resolve('better-sqlite3');

type Reply = { ok: true; frames: number } | { ok: false; message: string };

/**
 * The WAL checkpoints of a long run of write transactions (an apply), done by a worker thread instead of the writing
 * connection. SQLite's automatic checkpoint runs on the connection that committed, inside its COMMIT call, once the
 * WAL holds 1,000 pages: an apply's transaction writes several thousand pages, so every COMMIT also copied them into
 * the database file (measured: a sixth of a 200k apply's time on a collector's store, bench/README.md). Here the
 * writer's automatic checkpoint is off while a worker checkpoints after each commit, on the other core; the
 * writer's transactions end sooner and the next begins sooner. After a commit that arrives while a checkpoint runs,
 * one more follows it. `stop` waits for the last one and gives the writer its automatic checkpoint back. When the
 * worker cannot open the store or a checkpoint fails, the writer's automatic checkpoint is back at once: the WAL never
 * grows without bound.
 */
export class WalCheckpoints {
  private busy = false;
  private again = false;
  private failed = false;
  private stopped = false;
  private idle: (() => void) | null = null;

  private constructor(
    private readonly db: Db,
    private readonly worker: Worker,
    private readonly autocheckpoint: number,
    private readonly logger: Logger,
  ) {
    worker.on('message', (reply: Reply) => this.replied(reply));
    worker.on('error', (err) => this.fail(err.message));
    worker.on('exit', () => {
      if (!this.stopped) this.fail('the checkpoint worker exited');
      this.settle();
    });
    // Only a checkpoint under way keeps the process alive: an error that skips `stop` must not leave it running.
    worker.unref();
  }

  /** Starts checkpointing `db`'s store in a worker; null (the automatic checkpoint stays) for a store not in WAL mode. */
  static start(db: Db, logger: Logger): WalCheckpoints | null {
    if (db.memory || String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') return null;
    const autocheckpoint = Number(db.pragma('wal_autocheckpoint', { simple: true }));
    if (autocheckpoint <= 0) return null;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver: driverPath, file: db.name } });
    db.pragma('wal_autocheckpoint = 0');
    return new WalCheckpoints(db, worker, autocheckpoint, logger);
  }

  /** After each commit of the writer: a checkpoint now, or right after the one under way. */
  committed(): void {
    if (this.failed || this.stopped) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.worker.ref();
    this.worker.postMessage('checkpoint');
  }

  /** Waits for the checkpoint under way (and the one asked for after it), ends the worker, restores the writer's own. */
  async stop(): Promise<void> {
    if (this.busy) await new Promise<void>((resolve) => (this.idle = resolve));
    this.stopped = true;
    this.restore();
    this.worker.postMessage('stop');
  }

  private replied(reply: Reply): void {
    this.busy = false;
    if (!reply.ok) return this.fail(reply.message);
    if (this.again && !this.stopped && !this.failed) {
      this.again = false;
      this.busy = true;
      this.worker.postMessage('checkpoint');
      return;
    }
    this.settle();
  }

  private settle(): void {
    this.busy = false;
    this.worker.unref();
    const idle = this.idle;
    this.idle = null;
    idle?.();
  }

  private fail(message: string): void {
    if (this.failed) return;
    this.failed = true;
    this.restore();
    this.logger.warn({ err: message }, 'apply: WAL checkpoints in a worker failed; the writing connection checkpoints again itself');
    this.settle();
  }

  private restore(): void {
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${this.autocheckpoint}`);
  }
}
