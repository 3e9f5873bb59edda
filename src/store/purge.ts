import { statfsSync, statSync } from 'node:fs';
import path from 'node:path';
import { cutAfterMs, inLockTurn } from './lockPace.js';
import type { Db } from './open.js';
import { quoteIdent, SchemaInfo, type FtsFact } from './schemaInfo.js';
import { vacuumInWorker } from './vacuumWorker.js';

/**
 * Deleted content is overwritten with zeros instead of left in free space and free pages (SQLite's secure_delete),
 * for everything this connection deletes or rewrites from now on: rows, index entries, FTS segments, overflow pages.
 */
export function enableSecureDelete(db: Db): void {
  db.pragma('secure_delete = ON');
}

export interface PurgeOptions {
  /**
   * Rebuild the file (VACUUM). secure_delete zeroes what is deleted from now on, but SQLite leaves copies of cells in
   * the free space of pages it rebalanced earlier (while the ingester wrote them, long before the deletion): only a
   * rebuild rewrites every page. Costs a full copy of the store and an exclusive lock while it runs. It runs in a
   * worker thread on a connection of its own (vacuumInWorker), so the caller's timers and signals keep running.
   */
  vacuum?: boolean;
  /**
   * reconcile.maxLockMs: FTS5 indexes are merged in transactions that hold the write lock about this long at most
   * (mergeFts5), and the TRUNCATE checkpoint waits for readers no longer than this while it keeps writers out: past
   * it, the WAL stays (walBusy) until the next purge. Without it, each index is merged by one `optimize` statement,
   * and the checkpoint waits up to the connection's busy timeout.
   */
  maxLockMs?: number;
}

export interface PurgeResult {
  /** FTS tables whose segments were merged (deleted entries dropped). */
  ftsOptimized: string[];
  vacuumed: boolean;
  /** The WAL was not emptied because another connection was reading: its old page versions stay until the next purge. */
  walBusy: boolean;
  elapsedMs: number;
}

/**
 * What a cycle leaves behind once its rows are gone, cleared: every FTS3/4/5 index of the store is optimized (its
 * segments merged into one, so a deleted row's terms and delete markers leave the older segments; the store's
 * triggers may feed any of them), with secure_delete on so the freed segment pages are zeroed; then the WAL is
 * checkpointed into the main file and truncated, so old versions of the changed pages do not linger there. With
 * `vacuum` the file is rebuilt in between (see PurgeOptions).
 */
export async function purgeStore(db: Db, options: PurgeOptions = {}): Promise<PurgeResult> {
  const started = performance.now();
  enableSecureDelete(db);
  const ftsOptimized: string[] = [];
  for (const fts of new SchemaInfo(db).ftsTables()) {
    if (fts.module === 'fts5' && options.maxLockMs !== undefined) await mergeFts5(db, fts, options.maxLockMs);
    else db.prepare(`INSERT INTO ${quoteIdent(fts.name)} (${quoteIdent(fts.name)}) VALUES ('optimize')`).run();
    ftsOptimized.push(fts.name);
  }
  if (options.vacuum) {
    // An in-memory store has no file another connection could open (and no file to shrink).
    if (db.memory) db.exec('VACUUM');
    else await vacuumInWorker(db.name, Number(db.pragma('busy_timeout', { simple: true })));
  }
  let walBusy = false;
  if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal') {
    // TRUNCATE holds the write lock while it copies the WAL into the file (an ingester waits meanwhile): after a cycle
    // that can be hundreds of MB. A PASSIVE checkpoint copies it without blocking writers, so TRUNCATE is left only
    // what was written since.
    db.pragma('wal_checkpoint(PASSIVE)');
    // TRUNCATE then keeps writers out while it waits, in the busy handler, for readers of the WAL to finish.
    const busyTimeout = Number(db.pragma('busy_timeout', { simple: true }));
    if (options.maxLockMs !== undefined) db.pragma(`busy_timeout = ${Math.min(busyTimeout, Math.ceil(options.maxLockMs))}`);
    try {
      const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number | bigint }[];
      walBusy = Number(row?.busy ?? 0) !== 0;
    } finally {
      db.pragma(`busy_timeout = ${busyTimeout}`);
    }
  }
  return { ftsOptimized, vacuumed: options.vacuum ?? false, walBusy, elapsedMs: Math.round(performance.now() - started) };
}

/** Output pages of one FTS5 'merge' statement (a statement finishes the doclist it is in, however long). */
const MERGE_PAGES = 16;

/**
 * What `optimize` does to an FTS5 index (every segment merged into one, so that deleted rows' terms and the delete
 * markers leave it), done in pieces: FTS5's 'merge' command with a negative count puts the segments of every level on
 * one and starts merging them into a single segment, about MERGE_PAGES pages per statement; with a positive count it
 * goes on with the merge under way. A call that changes fewer than two rows found nothing to merge
 * (https://www.sqlite.org/fts5.html, "The 'merge' Command"). Only the first statement is negative: a negative merge
 * restarts when it finds a new segment, and the ingester writes one in each gap between our transactions, so a loop
 * of negative merges never ended beside it. The statements run in write transactions paced as the apply's are
 * (lockTurn), each stopping at half of `maxLockMs`, or sooner when the slowest statement so far would take it past
 * that. A statement writes at least the whole doclist of the term it is in, so a term of nearly every row makes a long
 * one. One `optimize` rewrote the whole index in one statement while it held the write lock, growing with the index
 * (both measured in bench/README.md, "A foreign layout").
 */
async function mergeFts5(db: Db, fts: FtsFact, maxLockMs: number): Promise<void> {
  const name = quoteIdent(fts.name);
  const merge = (pages: number) => db.prepare(`INSERT INTO ${name} (${name}, rank) VALUES ('merge', ${pages})`);
  const start = merge(-MERGE_PAGES);
  const goOn = merge(MERGE_PAGES);
  const totalChanges = db.prepare('SELECT total_changes()').pluck();
  let first = true;
  let more = true;
  let slowest = 0;
  while (more) {
    await inLockTurn(maxLockMs, () =>
      db
        .transaction(() => {
          const started = performance.now();
          do {
            const before = Number(totalChanges.get());
            const from = performance.now();
            (first ? start : goOn).run();
            first = false;
            slowest = Math.max(slowest, performance.now() - from);
            more = Number(totalChanges.get()) - before >= 2;
          } while (more && performance.now() - started + slowest < cutAfterMs(maxLockMs));
        })
        .immediate(),
    );
  }
}

export interface VacuumSpace {
  /** Twice the main file: VACUUM builds the new file as a temporary copy, then writes it back through the WAL. */
  needBytes: number;
  /** Free to this process on the store's file system. */
  freeBytes: number;
}

/** Whether the disk holding the store has room for a VACUUM (a window is skipped when it has not). */
export function vacuumSpace(storePath: string): VacuumSpace {
  const { bavail, bsize } = statfsSync(path.dirname(storePath));
  return { needBytes: 2 * statSync(storePath).size, freeBytes: bavail * bsize };
}
