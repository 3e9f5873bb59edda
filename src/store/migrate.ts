import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StoreError } from '../errors.js';
import { translateSqliteError, type Db } from './open.js';

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
 * Brings the store's schema up to this code's version: each pending migration in its own immediate transaction,
 * recorded with its checksum. Refuses a store newer than the code, and one whose applied migrations were edited.
 */
export function migrate(db: Db, migrations = loadMigrations()): MigrationResult {
  const known = migrations.length;
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS cs_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`);
    const from = Number(db.pragma('user_version', { simple: true }));
    if (from > known) {
      throw new StoreError(
        'store_too_new',
        `the store is at schema version ${from}, newer than this compliance-sync supports (version ${known})`,
        { hint: 'upgrade compliance-sync to the version that last wrote this store' },
      );
    }
    const recorded = db.prepare('SELECT version, name, checksum FROM cs_migrations ORDER BY version').all() as {
      version: bigint;
      name: string;
      checksum: string;
    }[];
    for (const row of recorded) {
      const migration = migrations[Number(row.version) - 1];
      if (migration && migration.checksum !== row.checksum) {
        throw new StoreError(
          'migration_edited',
          `migration ${String(row.version).padStart(4, '0')}_${row.name} was changed after it was applied to this store`,
          { hint: 'restore the original migration file and add the change as a new migration' },
        );
      }
    }
    const applied: string[] = [];
    const record = db.prepare('INSERT INTO cs_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)');
    for (const migration of migrations.slice(from)) {
      db.exec('BEGIN IMMEDIATE');
      try {
        db.exec(migration.sql);
        record.run(migration.version, migration.name, migration.checksum, new Date().toISOString());
        db.pragma(`user_version = ${migration.version}`);
        db.exec('COMMIT');
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
      applied.push(`${String(migration.version).padStart(4, '0')}_${migration.name}`);
    }
    return { from, to: Math.max(from, known), applied };
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw translateSqliteError(err, db.name);
  }
}
