import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import { createPrivateFile } from '../privateFiles.js';
import { translateSqliteError, useWal, type Db } from './open.js';
import { SchemaInfo } from './schemaInfo.js';

/** The migrations shipped with this code: `migrations/NNNN_name.sql`, from both src/ (tests) and dist/ (installed). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  from: number;
  to: number;
  applied: string[];
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file, index) => {
      const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
      if (!match) throw new Error(`migration file name must be NNNN_name.sql: ${file}`);
      const version = Number(match[1]);
      if (version !== index + 1) throw new Error(`migrations must be numbered 1, 2, 3… without gaps: ${file}`);
      const sql = readFileSync(`${dir}/${file}`, 'utf8');
      return { version, name: match[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
  return migrations;
}

/**
 * Checksums of earlier texts of shipped migrations that stores may have recorded, accepted as that migration.
 * 0001_initial used to create the default content tables too (`tweets`, `users`, the author index): that broke every
 * archive whose tables differ ("no such column: author_id"), so those moved to content/default_tables.sql, which only a
 * new store gets. A store migrated by the old text has those tables already and needs nothing more.
 */
const EARLIER_CHECKSUMS: Readonly<Record<number, readonly string[]>> = {
  1: ['187829abaea73d120d3bfa5e7e8bc6dc71df87c360af81c70c0a796d2d7b13bd'],
};

/** The default content tables of a new store (docs/architecture.md#the-store-tables): only `createStore` runs this, never a ledger migration. */
const DEFAULT_CONTENT_SQL_FILE = `${MIGRATIONS_DIR}content/default_tables.sql`;

export interface MigrateOptions {
  /** SQL run first in the same transaction: the default content tables of a new store. */
  contentSql?: string;
}

/**
 * Brings the store's ledger up to this code's version. The checks come first and write nothing: a store newer than the
 * code, or one whose applied migrations were edited, is refused as it is. Then every pending migration (and the
 * ledger's own bookkeeping table) runs in ONE immediate transaction, so a failure leaves the store exactly as it was;
 * only after the commit does the store switch to WAL.
 */
export function migrate(db: Db, migrations = loadMigrations(), options: MigrateOptions = {}): MigrationResult {
  const known = migrations.length;
  try {
    const from = Number(db.pragma('user_version', { simple: true }));
    if (from > known) {
      throw new StoreError(
        'store_too_new',
        `the store is at schema version ${from}, newer than this compliance-sync supports (version ${known})`,
        { hint: 'upgrade compliance-sync to the version that last wrote this store' },
      );
    }
    for (const row of recordedMigrations(db)) {
      const migration = migrations[row.version - 1];
      if (migration && migration.checksum !== row.checksum && !EARLIER_CHECKSUMS[row.version]?.includes(row.checksum)) {
        throw new StoreError(
          'migration_edited',
          `migration ${String(row.version).padStart(4, '0')}_${row.name} was changed after it was applied to this store`,
          { hint: 'restore the original migration file and add the change as a new migration' },
        );
      }
    }
    const pending = migrations.slice(from);
    if (pending.length > 0 || options.contentSql) {
      db.exec('BEGIN IMMEDIATE');
      try {
        if (options.contentSql) db.exec(options.contentSql);
        db.exec(`CREATE TABLE IF NOT EXISTS cs_migrations (
          version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`);
        const record = db.prepare('INSERT INTO cs_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)');
        for (const migration of pending) {
          db.exec(migration.sql);
          record.run(migration.version, migration.name, migration.checksum, new Date().toISOString());
        }
        db.pragma(`user_version = ${Math.max(from, known)}`);
        db.exec('COMMIT');
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    }
    useWal(db);
    return { from, to: Math.max(from, known), applied: pending.map(migrationName) };
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw translateSqliteError(err, db.name);
  }
}

export interface LedgerState {
  /** PRAGMA user_version: 0 for a store no compliance-sync has migrated yet. */
  version: number;
  /** Migrations of this code the store has not had yet (NNNN_name). */
  pending: string[];
  /** The store is newer than this code. */
  tooNew: boolean;
}

/** Where a store's ledger stands, read without writing (for `status`, `report`, `check-config`). */
export function ledgerState(db: Db, migrations = loadMigrations()): LedgerState {
  const version = Number(db.pragma('user_version', { simple: true }));
  return { version, pending: migrations.slice(version).map(migrationName), tooNew: version > migrations.length };
}

function recordedMigrations(db: Db): { version: number; name: string; checksum: string }[] {
  if (!new SchemaInfo(db).table('cs_migrations')) return [];
  return (db.prepare('SELECT version, name, checksum FROM cs_migrations ORDER BY version').all() as { version: bigint; name: string; checksum: string }[]).map(
    (row) => ({ version: Number(row.version), name: row.name, checksum: row.checksum }),
  );
}

export function migrationName(migration: Migration): string {
  return `${String(migration.version).padStart(4, '0')}_${migration.name}`;
}

/**
 * Makes a new store, the only way one comes to be (`migrate --create`, `demo`): the folder, the file, the default
 * content tables and the ledger in one transaction, then WAL. Refuses a path where a file already exists (that is an
 * archive to migrate, not to create). If anything fails, the file is removed again.
 */
export function createStore(file: string, migrations = loadMigrations()): Db {
  if (existsSync(file)) {
    throw new StoreError('store_exists', `a file already exists at ${file}`, { hint: 'run `compliance-sync migrate` to bring an existing store up to date' });
  }
  const createdDir = mkdirSync(path.dirname(file), { recursive: true });
  let db: Db | undefined;
  try {
    // 0600 whatever the umask; SQLite gives the -wal and -shm files the same mode.
    createPrivateFile(file);
    db = new Database(file);
    db.defaultSafeIntegers(true);
    db.pragma('busy_timeout = 10000');
    db.pragma('foreign_keys = ON');
    migrate(db, migrations, { contentSql: readFileSync(DEFAULT_CONTENT_SQL_FILE, 'utf8') });
    return db;
  } catch (err) {
    db?.close();
    for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
    if (createdDir) rmSync(createdDir, { recursive: true, force: true });
    throw err instanceof StoreError ? err : translateSqliteError(err, file);
  }
}
