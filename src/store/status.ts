import { quoteIdent, SchemaInfo } from './schemaInfo.js';
import type { Db } from './open.js';

export interface MigrationRow {
  version: number;
  name: string;
  appliedAt: string;
}

export interface StoreStatus {
  /** null for a store no compliance-sync has migrated yet (no ledger). */
  storeId: string | null;
  schemaVersion: number;
  migrations: MigrationRow[];
  tables: { name: string; rows: string }[];
}

/**
 * What `status` shows about the store itself: identity, schema and row counts (the ledger tells the cycles). Only
 * reads, and works on a store without a ledger yet.
 */
export function readStoreStatus(db: Db, contentTables: readonly string[]): StoreStatus {
  const schema = new SchemaInfo(db);
  const existing = new Set(
    schema
      .tables()
      .filter((t) => t.kind !== 'view')
      .map((t) => t.name.toLowerCase()),
  );
  const storeId = existing.has('cs_store') ? readStoreId(db) : null;
  const migrations = (
    (existing.has('cs_migrations') ? db.prepare('SELECT version, name, applied_at FROM cs_migrations ORDER BY version').all() : []) as {
      version: bigint;
      name: string;
      applied_at: string;
    }[]
  ).map((row) => ({ version: Number(row.version), name: row.name, appliedAt: row.applied_at }));
  const tables = contentTables
    .filter((name) => existing.has(name.toLowerCase()))
    .map((name) => ({
      name,
      rows: String((db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(name)}`).get() as { n: bigint }).n),
    }));
  return { storeId, schemaVersion: Number(db.pragma('user_version', { simple: true })), migrations, tables };
}

/** The store's identity (cs_store, written by the first migration); null when the row is missing. */
export function readStoreId(db: Db): string | null {
  const id = db.prepare('SELECT store_id FROM cs_store').pluck().get() as string | undefined;
  return id ?? null;
}
