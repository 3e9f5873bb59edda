import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createStore, ledgerState, loadMigrations, migrate, MIGRATIONS_DIR } from '../../src/store/migrate.js';
import { openStore } from '../../src/store/open.js';
import { REPO_ROOT, useTempDir } from '../helpers/tmp.js';

const tempDir = useTempDir();

function sqlite(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();
}

/** An archive another tool wrote: a `tweets` table without the default columns (no author_id), in rollback-journal mode. */
function foreignArchive(dir: string): string {
  const file = path.join(dir, 'archive.db');
  sqlite(
    file,
    `CREATE TABLE users (id INTEGER PRIMARY KEY, screen_name TEXT);
     CREATE TABLE tweets (id INTEGER PRIMARY KEY, "user" INTEGER REFERENCES users(id), full_text TEXT);
     CREATE INDEX tweets_user ON tweets("user");
     INSERT INTO users VALUES (1, 'a'); INSERT INTO tweets VALUES (10, 1, 'hello');`,
  );
  return file;
}

/** The schema objects that are not the ledger's, as the sqlite3 shell sees them. */
function nonLedgerSchema(file: string): string {
  return sqlite(file, "SELECT type, name, sql FROM sqlite_schema WHERE tbl_name NOT LIKE 'cs\\_%' ESCAPE '\\' ORDER BY name");
}

function copyMigrations(dir: string): string {
  const migrations = path.join(dir, 'migrations');
  mkdirSync(migrations);
  cpSync(MIGRATIONS_DIR, migrations, { recursive: true });
  return migrations;
}

describe('openStore', () => {
  it('opens an existing store with foreign keys and 64-bit integers as bigint, leaving its journal mode alone', () => {
    const file = foreignArchive(tempDir());
    const db = openStore(file);
    expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1n);
    expect(db.prepare('SELECT 9007199254740993 AS n').get()).toEqual({ n: 9007199254740993n });
    db.close();
  });

  it('refuses a missing store and creates no file and no folder', () => {
    const dir = tempDir();
    const file = path.join(dir, 'typo', 'store.db');
    expect(() => openStore(file)).toThrow(/there is no store at .*typo\/store\.db/);
    expect(() => openStore(file, { readonly: true })).toThrow(/there is no store/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('createStore', () => {
  it('makes the folder, the default content tables and the ledger in WAL mode; migrate is then a no-op', () => {
    const file = path.join(tempDir(), 'new', 'store.db');
    const db = createStore(file);
    expect(migrate(db)).toMatchObject({ applied: [] });
    db.close();
    expect(sqlite(file, 'PRAGMA journal_mode')).toBe('wal');
    expect(sqlite(file, "SELECT group_concat(name) FROM pragma_table_info('tweets')")).toContain('author_id');
    expect(sqlite(file, "SELECT name FROM pragma_index_list('tweets')")).toBe('tweets_author_id');
    expect(sqlite(file, 'SELECT store_id FROM cs_store')).toMatch(/^[0-9a-f]{12}$/);
    expect(Number(sqlite(file, 'PRAGMA user_version'))).toBe(loadMigrations().length);
  });

  it('refuses a path where a file exists (an archive is migrated, never given tables)', () => {
    const file = foreignArchive(tempDir());
    const before = readFileSync(file);
    expect(() => createStore(file)).toThrow(/a file already exists/);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('leaves no file and no folder behind when the ledger cannot be made', () => {
    const dir = tempDir();
    const migrations = copyMigrations(dir);
    const next = String(loadMigrations(migrations).length + 1).padStart(4, '0');
    writeFileSync(path.join(migrations, `${next}_broken.sql`), 'THIS IS NOT SQL;\n');
    const file = path.join(dir, 'sub', 'store.db');
    expect(() => createStore(file, loadMigrations(migrations))).toThrow();
    expect(existsSync(path.join(dir, 'sub'))).toBe(false);
  });
});

describe('migrate', () => {
  it('adds only cs_* objects to an archive whose tables differ from the defaults (no "no such column: author_id")', () => {
    const file = foreignArchive(tempDir());
    const before = nonLedgerSchema(file);
    const db = openStore(file);
    const result = migrate(db);
    expect(migrate(db)).toMatchObject({ from: result.to, to: result.to, applied: [] });
    db.close();
    expect(result).toMatchObject({ from: 0, to: loadMigrations().length });
    expect(nonLedgerSchema(file)).toBe(before);
    expect(sqlite(file, 'SELECT count(*) FROM tweets')).toBe('1');
    expect(sqlite(file, 'PRAGMA journal_mode')).toBe('wal');
  });

  it('every shipped ledger migration creates cs_* objects only', () => {
    for (const migration of loadMigrations()) {
      const created = [
        ...migration.sql.matchAll(/CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|VIEW|TRIGGER)\s+(?:IF\s+NOT\s+EXISTS\s+)?["`[]?(\w+)/gi),
        // A later migration may add columns to a ledger table.
        ...migration.sql.matchAll(/^\s*ALTER\s+TABLE\s+["`[]?(\w+)/gim),
      ].map((m) => m[1]!);
      expect(created.length, migration.name).toBeGreaterThan(0);
      for (const name of created) expect(name, `${migration.name} creates ${name}`).toMatch(/^cs_/);
    }
  });

  it('writes nothing when a pending migration fails: no ledger table, same version, same journal mode', () => {
    const dir = tempDir();
    const migrations = copyMigrations(dir);
    const next = String(loadMigrations(migrations).length + 1).padStart(4, '0');
    writeFileSync(path.join(migrations, `${next}_broken.sql`), 'CREATE TABLE cs_half (x);\nTHIS IS NOT SQL;\n');
    const file = foreignArchive(dir);
    const before = readFileSync(file);
    const db = openStore(file);
    expect(() => migrate(db, loadMigrations(migrations))).toThrow();
    db.close();
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(sqlite(file, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'cs%'")).toBe('0');
    expect(sqlite(file, 'PRAGMA journal_mode')).toBe('delete');
  });

  it('refuses a store from a newer version, naming both versions, and changes nothing', () => {
    const file = path.join(tempDir(), 'store.db');
    createStore(file).close();
    sqlite(file, 'PRAGMA user_version = 99');
    const db = openStore(file);
    expect(() => migrate(db)).toThrow(/schema version 99, newer than this compliance-sync supports \(version \d+\)/);
    db.close();
  });

  it('detects an applied migration that was edited afterwards', () => {
    const dir = tempDir();
    const migrations = copyMigrations(dir);
    const file = foreignArchive(dir);
    const db = openStore(file);
    migrate(db, loadMigrations(migrations));
    const first = readdirSync(migrations).filter((f) => f.endsWith('.sql')).sort()[0]!;
    writeFileSync(path.join(migrations, first), '-- edited\nCREATE TABLE cs_sneaky (x);\n');
    expect(() => migrate(db, loadMigrations(migrations))).toThrow(/was changed after it was applied/);
    db.close();
  });

  it('accepts a store migrated by the earlier 0001, which also made the default tables, and brings it up to date', () => {
    const dir = tempDir();
    const old = path.join(dir, 'old-migrations');
    mkdirSync(old);
    cpSync(path.join(REPO_ROOT, 'test/fixtures/migrations/0001_initial.sql'), path.join(old, '0001_initial.sql'));
    const file = path.join(dir, 'store.db');
    new Database(file).close();
    const db = openStore(file);
    migrate(db, loadMigrations(old));
    // What the shipped version recorded: the checksum of that text as shipped (the fixture's first comment was reworded since).
    db.prepare("UPDATE cs_migrations SET checksum = '187829abaea73d120d3bfa5e7e8bc6dc71df87c360af81c70c0a796d2d7b13bd' WHERE version = 1").run();
    db.prepare('INSERT INTO tweets (id, author_id) VALUES (1, 2)').run();
    expect(() => migrate(db)).not.toThrow();
    expect(ledgerState(db)).toMatchObject({ version: loadMigrations().length, pending: [] });
    db.close();
    expect(sqlite(file, 'SELECT author_id FROM tweets')).toBe('2');
  });
});
