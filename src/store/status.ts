import type { Db } from './open.js';

export interface MigrationRow {
  version: number;
  name: string;
  appliedAt: string;
}

export interface StoreStatus {
  storeId: string;
  schemaVersion: number;
  migrations: MigrationRow[];
  tables: { name: string; rows: string }[];
}

/** What `status` shows about the store itself: identity, schema and row counts (the ledger tells the cycles). */
export function readStoreStatus(db: Db, contentTables: readonly string[]): StoreStatus {
  const storeId = (db.prepare('SELECT store_id FROM cs_store').get() as { store_id: string }).store_id;
  const migrations = (
    db.prepare('SELECT version, name, applied_at FROM cs_migrations ORDER BY version').all() as {
      version: bigint;
      name: string;
      applied_at: string;
    }[]
  ).map((row) => ({ version: Number(row.version), name: row.name, appliedAt: row.applied_at }));
  const existing = new Set(
    (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as { name: string }[]).map((row) => row.name),
  );
  // Table names come from validated config (plain identifiers) and are checked to exist before being spliced in.
  const tables = contentTables
    .filter((name) => existing.has(name))
    .map((name) => ({
      name,
      rows: String((db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: bigint }).n),
    }));
  return { storeId, schemaVersion: Number(db.pragma('user_version', { simple: true })), migrations, tables };
}
