import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../../src/store/migrate.js';
import { openStore } from '../../src/store/open.js';
import { useTempDir } from '../helpers/tmp.js';

const tempDir = useTempDir();

function sqlite(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();
}

describe('openStore', () => {
  it('opens in WAL mode with foreign keys and 64-bit integers as bigint', () => {
    const db = openStore(path.join(tempDir(), 'sub', 'store.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1n);
    expect(db.prepare('SELECT 9007199254740993 AS n').get()).toEqual({ n: 9007199254740993n });
    db.close();
  });
});

describe('migrate', () => {
  it('creates the default content tables and the ledger, and is a no-op the second time', () => {
    const file = path.join(tempDir(), 'store.db');
    const db = openStore(file);
    const first = migrate(db);
    expect(first).toMatchObject({ from: 0, applied: loadMigrations().map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`) });
    expect(first.applied[0]).toBe('0001_initial');
    expect(migrate(db)).toMatchObject({ from: first.to, to: first.to, applied: [] });
    db.close();
    expect(sqlite(file, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'cs_%'")).not.toBe('0');
    expect(sqlite(file, 'SELECT store_id FROM cs_store')).toMatch(/^[0-9a-f]{12}$/);
  });

  it('refuses a store from a newer version, naming both versions', () => {
    const file = path.join(tempDir(), 'store.db');
    const db = openStore(file);
    migrate(db);
    db.pragma('user_version = 99');
    expect(() => migrate(db)).toThrow(/schema version 99, newer than this compliance-sync supports \(version \d+\)/);
    db.close();
  });

  it('detects an applied migration that was edited afterwards', () => {
    const dir = tempDir();
    const migrations = path.join(dir, 'migrations');
    mkdirSync(migrations);
    cpSync(MIGRATIONS_DIR, migrations, { recursive: true });
    const db = openStore(path.join(dir, 'store.db'));
    migrate(db, loadMigrations(migrations));
    const first = readdirSync(migrations).sort()[0]!;
    writeFileSync(path.join(migrations, first), '-- edited\nCREATE TABLE sneaky (x);\n');
    expect(() => migrate(db, loadMigrations(migrations))).toThrow(/was changed after it was applied/);
    db.close();
  });

  it('rolls back a failing migration whole and leaves the version where it was', () => {
    const dir = tempDir();
    const migrations = path.join(dir, 'migrations');
    mkdirSync(migrations);
    cpSync(MIGRATIONS_DIR, migrations, { recursive: true });
    const next = String(loadMigrations(migrations).length + 1).padStart(4, '0');
    writeFileSync(path.join(migrations, `${next}_broken.sql`), 'CREATE TABLE half (x);\nTHIS IS NOT SQL;\n');
    const db = openStore(path.join(dir, 'store.db'));
    expect(() => migrate(db, loadMigrations(migrations))).toThrow();
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'half'").get()).toEqual({ n: 0n });
    expect(Number(db.pragma('user_version', { simple: true }))).toBe(Number(next) - 1);
    db.close();
  });
});
