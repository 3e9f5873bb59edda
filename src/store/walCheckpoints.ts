import type { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { Db } from './open.js';
import { storeWorker } from './storeWorker.js';

/**
 * The worker's code (storeWorker.ts). On each message it runs one PASSIVE checkpoint on a connection of its own and
 * answers with its result or error. PASSIVE never waits for a lock and never blocks a writer or reader
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
      parentPort.postMessage({ ok: true, log: Number(row.log) });
    } catch (err) {
      parentPort.postMessage({ ok: false, message: String((err && err.message) || err) });
    }
  });
}
`;

type Reply = { ok: true; log: number } | { ok: false; message: string };

/**
 * SQLite starts the WAL over only when a write transaction begins with every frame already copied into the store:
 * with the checkpoint running beside the next transaction that is rarely so, and the WAL kept growing (to the store's
 * own size in a 200k apply). Past this many frames (~40 MiB of 4 KiB pages) the next transaction waits for the
 * checkpoint under way, and so begins a fresh WAL.
 */
const RESTART_WAL_FRAMES = 10_000;

/**
 * The WAL checkpoints of a long run of write transactions (an apply), done by a worker thread instead of the writing
 * connection. SQLite's automatic checkpoint runs on the connection that committed, inside its COMMIT call, once the
 * WAL holds 1,000 pages: an apply's transaction writes several thousand pages, so every COMMIT also copied them into
 * the database file (measured: a sixth of a 200k apply's time on a collector's store, bench/README.md). Here the
 * writer's automatic checkpoint is off while a worker checkpoints after each commit, on the other core; the
 * writer's transactions end sooner and the next begins sooner. After a commit that arrives while a checkpoint runs,
 * one more follows it; once the WAL is long, the next transaction waits for them (RESTART_WAL_FRAMES). `stop` waits
 * for the last one and gives the writer its automatic checkpoint back. When the worker cannot open the store or a
 * checkpoint fails, the writer's automatic checkpoint is back at once: the WAL never grows without bound.
 */
export class WalCheckpoints {
  private busy = false;
  private again = false;
  private failed = false;
  private stopping: Promise<void> | null = null;
  /** Frames in the WAL when the last checkpoint ended. */
  private walFrames = 0;
  private idle: (() => void)[] = [];
  private readonly exited: Promise<void>;

  private constructor(
    private readonly db: Db,
    private readonly worker: Worker,
    private readonly autocheckpoint: number,
    private readonly logger: Logger,
  ) {
    worker.on('message', (reply: Reply) => this.replied(reply));
    worker.on('error', (err: unknown) => this.fail(err instanceof Error ? err.message : String(err)));
    this.exited = new Promise((resolve) =>
      worker.on('exit', () => {
        if (!this.stopping) this.fail('the checkpoint worker exited');
        this.settle();
        resolve();
      }),
    );
    // Only a checkpoint under way (or a stop) keeps the process alive: an error that skips `stop` must not hang it.
    worker.unref();
  }

  /** Starts checkpointing `db`'s store in a worker; null (the automatic checkpoint stays) for a store not in WAL mode. */
  static start(db: Db, logger: Logger): WalCheckpoints | null {
    if (db.memory || String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') return null;
    const autocheckpoint = Number(db.pragma('wal_autocheckpoint', { simple: true }));
    if (autocheckpoint <= 0) return null;
    const worker = storeWorker(WORKER_SOURCE, { file: db.name });
    db.pragma('wal_autocheckpoint = 0');
    return new WalCheckpoints(db, worker, autocheckpoint, logger);
  }

  /** After each commit of the writer: a checkpoint now, or right after the one under way. */
  committed(): void {
    if (this.failed || this.stopping) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.worker.ref();
    this.worker.postMessage('checkpoint');
  }

  /** Before the writer's next transaction: when the WAL has grown long, the checkpoint under way is waited for. */
  async beforeTransaction(): Promise<void> {
    if (this.busy && this.walFrames >= RESTART_WAL_FRAMES) await this.settled();
  }

  /**
   * Waits for the checkpoint under way (and the one asked for after it), restores the writer's own and waits for the
   * worker to close its connection (the writer's close is then the last, which removes the WAL and shared memory).
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.settled();
      this.restore();
      this.worker.ref();
      this.worker.postMessage('stop');
      await this.exited;
    })();
    return this.stopping;
  }

  private settled(): Promise<void> {
    return this.busy ? new Promise((resolve) => this.idle.push(resolve)) : Promise.resolve();
  }

  private replied(reply: Reply): void {
    if (!reply.ok) return this.fail(reply.message);
    this.walFrames = reply.log;
    if (this.again) {
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
    for (const resolve of this.idle.splice(0)) resolve();
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
