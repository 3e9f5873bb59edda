import type { Db } from './open.js';

export interface MigrationRow {
  version: number;
  name: string;
  appliedAt: string;
}

export interface CycleRow {
  id: number;
  type: string;
  state: string;
  trigger: string;
  startedAt: string;
  finishedAt: string | null;
  shardCount: number | null;
  idCount: string | null;
  summary: unknown;
}

export interface StoreStatus {
  storeId: string;
  schemaVersion: number;
  migrations: MigrationRow[];
  tables: { name: string; rows: string }[];
  lastCycles: CycleRow[];
}

/** What `status` shows about the store: identity, schema, row counts and the latest cycles. */
export function readStoreStatus(db: Db, contentTables: readonly string[], cycleLimit = 10): StoreStatus {
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
  const lastCycles = (
    db
      .prepare(
        `SELECT id, type, state, trigger, started_at, finished_at, shard_count, id_count, summary_json
         FROM cs_cycles ORDER BY id DESC LIMIT ?`,
      )
      .all(cycleLimit) as {
      id: bigint;
      type: string;
      state: string;
      trigger: string;
      started_at: string;
      finished_at: string | null;
      shard_count: bigint | null;
      id_count: bigint | null;
      summary_json: string | null;
    }[]
  ).map((row) => ({
    id: Number(row.id),
    type: row.type,
    state: row.state,
    trigger: row.trigger,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    shardCount: row.shard_count === null ? null : Number(row.shard_count),
    idCount: row.id_count === null ? null : String(row.id_count),
    summary: row.summary_json ? JSON.parse(row.summary_json) : null,
  }));
  return { storeId, schemaVersion: Number(db.pragma('user_version', { simple: true })), migrations, tables, lastCycles };
}
