import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConfigError, fromSqliteError, StoreError } from '../errors.js';

export type Db = Database.Database;

export interface OpenStoreOptions {
  /** Open read-only: nothing about the file changes (no journal mode switch, no ledger, no migration). */
  readonly?: boolean;
  /** How long a statement waits for another writer before SQLITE_BUSY. */
  busyTimeoutMs?: number;
}

/** The page cache of a writing connection, in KiB (see openStore). */
const WRITER_CACHE_KIB = 16 * 1024;

/**
 * Opens an existing SQLite store the way every part of the tool expects: a busy timeout, foreign keys, and 64-bit
 * integers as bigint — never as rounded numbers. It never creates a file or a folder (a mistyped path must not become
 * a new empty store: `createStore` in migrate.ts is the only way to make one) and never changes the journal mode
 * (`migrate` switches to WAL once the ledger is in place).
 */
export function openStore(file: string, options: OpenStoreOptions = {}): Db {
  const readonly = options.readonly ?? false;
  let db: Db;
  try {
    db = new Database(file, { readonly, fileMustExist: true });
  } catch (err) {
    if (!existsSync(file)) {
      throw new StoreError('store_missing', `there is no store at ${file}`, {
        cause: err,
        hint: 'check store.path; `compliance-sync migrate --create` makes a new store',
      });
    }
    throw new StoreError('store_open', `cannot open the store ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: 'check store.path and the permissions of the file and its folder',
    });
  }
  try {
    db.defaultSafeIntegers(true);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
    db.pragma('foreign_keys = ON');
    // Statement journals (the pages a statement or savepoint inside a transaction changes, kept to undo it) and this
    // connection's temp tables in memory: a grouped deletion's statements wrote over a gigabyte of them to /var/tmp
    // in a 200k apply (bench/README.md, "A foreign layout"). Both are bounded by a transaction, and so by
    // reconcile.maxLockMs. Set at open: changing it later drops the connection's temp tables. SQLite then also sorts in
    // memory only, so a CREATE INDEX over a large table switches back first (sortInTempFiles).
    if (!readonly) db.pragma('temp_store = MEMORY');
    // A page cache of 16 MiB instead of SQLite's 2 MB: an apply's transaction reads and writes thousands of pages
    // spread over the table and each of its indexes, and with 2 MB most reads were system calls into the OS cache
    // (bench/README.md, "A foreign layout": a 200k apply on twitter-to-sqlite 8% faster, a quarter less system time).
    if (!readonly) db.pragma(`cache_size = ${-WRITER_CACHE_KIB}`);
    return db;
  } catch (err) {
    db.close();
    throw translateSqliteError(err, file);
  }
}

/**
 * This connection's sorts in temp files again, as SQLite's default has them: with the temp store in memory (openStore)
 * SQLite sorts in memory only, and the sort of a large table's index would be held there whole. Changing it drops the
 * connection's TEMP tables: only for work that uses none.
 */
export function sortInTempFiles(db: Db): void {
  db.pragma('temp_store = FILE');
}

/**
 * The store a command works on must already exist: only `migrate --create` and `demo` make one. A missing file is a
 * config error (exit 78) naming the path and the command that creates it.
 */
export function requireExistingStore(config: { store: { path: string }; configPath: string }): void {
  if (existsSync(config.store.path)) return;
  throw new ConfigError(`store.path: there is no store at ${config.store.path} (config ${config.configPath})`, {
    hint: `fix store.path if the archive is elsewhere; to start a new store: compliance-sync migrate --create --config ${config.configPath}`,
  });
}

/**
 * WAL lets the owner's ingester keep writing while a cycle runs; WAL + NORMAL is durable against process crashes,
 * which is what resumability needs. Called only after a migration succeeded, so a store that fails to migrate keeps
 * the journal mode it had.
 */
export function useWal(db: Db): void {
  const mode = String(db.pragma('journal_mode = WAL', { simple: true })).toLowerCase();
  if (mode !== 'wal') {
    throw new StoreError('store_wal', `the store ${db.name} could not switch to WAL mode (journal_mode is ${mode})`, {
      hint: 'put the store on a local file system that supports shared memory (not a network share)',
    });
  }
  db.pragma('synchronous = NORMAL');
}

/** Maps SQLite's busy/locked/full/readonly/not-a-database failures to errors that say what to do (src/errors.ts). */
export function translateSqliteError(err: unknown, file: string): Error {
  return fromSqliteError(err, file) ?? (err instanceof Error ? err : new Error(String(err)));
}

/**
 * Runs one batch's transaction with FK enforcement off when the store declares keys SQLite cannot enforce: it raises
 * "foreign key mismatch" on every delete from their parent (the ingester that wrote them ran without enforcement).
 * The relations are still acted on, by us, in the same order. Per batch, not per run: the batch is synchronous, so
 * the other type's apply on the same connection can never see the setting changed.
 */
export function withForeignKeysRelaxed(db: Db, relax: boolean, fn: () => void): void {
  const enforced = relax && Number(db.pragma('foreign_keys', { simple: true })) === 1;
  if (enforced) db.pragma('foreign_keys = OFF');
  try {
    fn();
  } finally {
    if (enforced) db.pragma('foreign_keys = ON');
  }
}
