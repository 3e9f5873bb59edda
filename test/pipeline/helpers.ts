import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig, type Config } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { applyResultsFile, type ApplyOptions, type ApplySummary } from '../../src/pipeline/apply/applyFile.js';
import { createStore } from '../../src/store/migrate.js';
import type { Db } from '../../src/store/open.js';
import type { JobType } from '../../src/types.js';
import { writeJson } from '../helpers/tmp.js';

export const quiet = createLogger('silent');
export const AS_OF = '2026-01-02T03:04:05.000Z';
export const fixedNow = () => new Date(AS_OF);

/** A config file in `dir` (for the CLI too) and its parsed form; the store is `dir/store.db` unless overridden. */
export function makeConfig(dir: string, raw: Record<string, unknown> = {}): Config {
  const file = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db' }, log: { level: 'warn' }, ...raw });
  return parseConfig(JSON.parse(JSON.stringify({ store: { path: 'store.db' }, log: { level: 'warn' }, ...raw })), file);
}

/** A store with the default schema, made by the project's own migrations. */
export function makeStore(dir: string, raw: Record<string, unknown> = {}): { config: Config; db: Db } {
  const config = makeConfig(dir, raw);
  const db = createStore(config.store.path);
  return { config, db };
}

export interface TweetRow {
  id: string;
  author_id?: string | null;
  text?: string | null;
  geo_lat?: number | null;
  geo_lon?: number | null;
  place_id?: string | null;
  raw_json?: string | null;
  compliance_state?: string | null;
  compliance_reason?: string | null;
  compliance_at?: string | null;
}

export function insertTweets(db: Db, rows: TweetRow[]): void {
  const stmt = db.prepare(
    `INSERT INTO tweets (id, author_id, text, geo_lat, geo_lon, place_id, raw_json, compliance_state, compliance_reason, compliance_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (const r of rows) {
      stmt.run(BigInt(r.id), r.author_id ? BigInt(r.author_id) : null, r.text ?? `text of ${r.id}`, r.geo_lat ?? null, r.geo_lon ?? null,
        r.place_id ?? null, r.raw_json ?? null, r.compliance_state ?? null, r.compliance_reason ?? null, r.compliance_at ?? null);
    }
  })();
}

export function insertUsers(db: Db, ids: string[]): void {
  const stmt = db.prepare(`INSERT INTO users (id, username) VALUES (?, ?)`);
  db.transaction(() => ids.forEach((id) => stmt.run(BigInt(id), `user${id}`)))();
}

/** Every row of a table keyed by decimal ID (bigints as strings), for comparing whole stores. */
export function rowsOf(db: Db, table: string): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const row of db.prepare(`SELECT * FROM ${table} ORDER BY id`).all() as Record<string, unknown>[]) {
    const clean = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));
    out[String(clean.id)] = clean;
  }
  return out;
}

/** A results file: objects become JSON lines, strings are written as they are. Lines end with `eol`. */
export function writeResults(dir: string, name: string, lines: (object | string)[], eol = '\n'): string {
  const file = path.join(dir, name);
  writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join(eol) + eol);
  return file;
}

export const result = (id: string, reason: string, action = 'delete') => ({ id, action, created_at: '2019-08-10T12:22:39.022Z', reason });

export function apply(db: Db, config: Config, type: JobType, file: string, extra: Partial<ApplyOptions> = {}): Promise<ApplySummary> {
  return applyResultsFile({ db, config, type, file, logger: quiet, now: fixedNow, confirmDeletions: true, ...extra });
}
