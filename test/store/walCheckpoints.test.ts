import { renameSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { openStore, useWal, type Db } from '../../src/store/open.js';
import { WalCheckpoints } from '../../src/store/walCheckpoints.js';
import { capturedLogger } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tmp.js';

/**
 * The apply's WAL checkpoints in a worker thread: while they run, the writer does not checkpoint on its own; after
 * stop, every frame committed before it is in the database file and the writer checkpoints itself again; when the
 * worker cannot work, the writer's own checkpoint is back.
 */

const tempDir = useTempDir();

/** A new empty SQLite file, opened as the tool opens a store. */
function emptyStore(): Db {
  const file = path.join(tempDir(), 'store.db');
  new Database(file).close();
  return openStore(file);
}

function walStore(): Db {
  const db = emptyStore();
  useWal(db);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)');
  return db;
}

/** Commits `n` transactions of 300 pages each (over the 1,000-page automatic checkpoint in all). */
function commitMany(db: Db, n: number, checkpoints: WalCheckpoints | null): void {
  const insert = db.prepare("INSERT INTO t (body) VALUES (printf('%.3000c', 'x'))");
  for (let i = 0; i < n; i++) {
    db.transaction(() => {
      for (let row = 0; row < 300; row++) insert.run();
    })();
    checkpoints?.committed();
  }
}

/** Pages in the database file itself: what checkpoints copied there, the WAL's frames left out. */
const filePages = (db: Db) => statSync(db.name).size / 4096;

describe('WAL checkpoints in a worker', () => {
  it('turns the writer’s own checkpoint off while it runs, and has every committed frame in the file after stop', async () => {
    const db = walStore();
    const { logger, lines } = capturedLogger();
    const checkpoints = WalCheckpoints.start(db, logger)!;
    expect(checkpoints).not.toBeNull();
    expect(Number(db.pragma('wal_autocheckpoint', { simple: true }))).toBe(0);
    commitMany(db, 8, checkpoints);
    await checkpoints.stop();
    expect(Number(db.pragma('wal_autocheckpoint', { simple: true }))).toBe(1000);
    // The writer never checkpointed (its own was off): the worker copied the 2,400 pages into the file.
    expect(filePages(db)).toBeGreaterThan(2400);
    expect(lines.filter((line) => line.level === 'warn')).toEqual([]);
    db.close();
  });

  it('without it, with the writer’s own checkpoint off, the pages stay in the WAL', () => {
    const db = walStore();
    db.pragma('wal_autocheckpoint = 0');
    commitMany(db, 8, null);
    expect(filePages(db)).toBeLessThan(10);
    db.close();
  });

  it('gives the writer its own checkpoint back when the worker cannot open the store, and says so', async () => {
    const db = walStore();
    const { logger, lines } = capturedLogger();
    // The writer keeps its open file; the worker, opening by name, finds none.
    renameSync(db.name, `${db.name}.moved`);
    const checkpoints = WalCheckpoints.start(db, logger)!;
    expect(Number(db.pragma('wal_autocheckpoint', { simple: true }))).toBe(0);
    checkpoints.committed();
    // Restored when the failure is known, not only at stop.
    await vi.waitFor(() => expect(lines.find((line) => line.level === 'warn')?.msg).toMatch(/checkpoints in a worker failed/));
    expect(Number(db.pragma('wal_autocheckpoint', { simple: true }))).toBe(1000);
    await checkpoints.stop();
    db.close();
  });

  it('leaves a store that is not in WAL mode to its own journal', () => {
    const db = emptyStore();
    const { logger } = capturedLogger();
    expect(WalCheckpoints.start(db, logger)).toBeNull();
    db.close();
  });
});
