import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { fromSqliteError, StoreError } from '../errors.js';
import { createPrivateFile } from '../privateFiles.js';

export type Db = Database.Database;

export interface OpenStoreOptions {
  /** Open an existing store read-only (no WAL switch, no migrations). */
  readonly?: boolean;
  /** How long a statement waits for another writer before SQLITE_BUSY. */
  busyTimeoutMs?: number;
  /** Leave the journal mode as the store has it (a dry run must not switch a store to WAL); the store must exist. */
  keepJournalMode?: boolean;
}

/**
 * Opens the SQLite store the way every part of the tool expects: WAL (so the owner's ingester keeps writing while a
 * cycle runs), a busy timeout, foreign keys, and 64-bit integers as bigint — never as rounded numbers.
 */
export function openStore(file: string, options: OpenStoreOptions = {}): Db {
  const readonly = options.readonly ?? false;
  const keepJournal = readonly || (options.keepJournalMode ?? false);
  if (!keepJournal) {
    mkdirSync(path.dirname(file), { recursive: true });
    createPrivateFile(file);
  }
  let db: Db;
  try {
    db = new Database(file, { readonly, fileMustExist: keepJournal });
  } catch (err) {
    throw new StoreError('store_open', `cannot open the store ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: readonly ? 'check store.path; run `compliance-sync migrate` to create a new store' : 'check store.path and the permissions of its folder',
    });
  }
  try {
    db.defaultSafeIntegers(true);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
    db.pragma('foreign_keys = ON');
    if (!keepJournal) {
      const mode = String(db.pragma('journal_mode = WAL', { simple: true })).toLowerCase();
      if (mode !== 'wal') {
        throw new StoreError('store_wal', `the store ${file} could not switch to WAL mode (journal_mode is ${mode})`, {
          hint: 'put the store on a local file system that supports shared memory (not a network share)',
        });
      }
      // WAL + NORMAL is durable against process crashes, which is what resumability needs.
      db.pragma('synchronous = NORMAL');
    }
    return db;
  } catch (err) {
    db.close();
    throw translateSqliteError(err, file);
  }
}

/** Maps SQLite's busy/locked/full/readonly/not-a-database failures to errors that say what to do (src/errors.ts). */
export function translateSqliteError(err: unknown, file: string): Error {
  return fromSqliteError(err, file) ?? (err instanceof Error ? err : new Error(String(err)));
}
