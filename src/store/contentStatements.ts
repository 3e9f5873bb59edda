import type { Config } from '../config/load.js';
import { ConfigError, StoreError } from '../errors.js';
import type { Id, JobType } from '../types.js';
import type { Db } from './open.js';

type Tables = Config['store']['tables'];

/**
 * A set of IDs as one bound parameter: a JSON array expanded by `json_each` inside the statement (one bind for a whole
 * chunk). IDs stay decimal text end to end: JSON numbers for INTEGER columns (SQLite's JSON reads them as exact 64-bit
 * integers), JSON strings for TEXT columns (where a number would never equal the stored text).
 */
export interface IdList {
  readonly json: string;
  readonly size: number;
}

/** What one column stores IDs as: decides how an ID is bound (see IdList and bindId). */
export type IdEncoding = 'number' | 'text';

export function idList(ids: readonly Id[], encoding: IdEncoding): IdList {
  const json = encoding === 'number' ? `[${ids.join(',')}]` : JSON.stringify(ids);
  return { json, size: ids.length };
}

/**
 * The statements the reconciler runs on one type's table, one row per call, each returning the rows changed (so 0
 * means not found). The reconciler calls them over a batch sorted by ID: measured on 1M rows, one sorted pass of
 * per-row statements beat one set-based `IN (SELECT …)` statement per action and reason, because each extra pass
 * walks the whole table's pages again.
 */
export interface ContentStatements {
  readonly type: JobType;
  /** Stored rows of this type: the safety gate's denominator for a plain `apply`. */
  countRows(): number;
  /** How many of the IDs are stored (the safety gate's exact count). */
  countExisting(ids: readonly Id[]): number;
  delete(id: Id): number;
  mark(id: Id, state: string, reason: string, at: string): number;
  /** Geo columns to NULL and geo paths out of the raw JSON; for users (no geo of their own) it finds the row. */
  scrubGeo(id: Id): number;
  /** Cascades from users onto the tweets they wrote; null when the cascade is off. */
  readonly cascade: CascadeStatements | null;
}

export interface CascadeStatements {
  /** Stored tweets: the safety gate's denominator for deletions that cascade from users. */
  countTweets(): number;
  /** Tweets written by any of these authors: what deleting them would delete too. */
  countByAuthors(authors: readonly Id[]): number;
  deleteByAuthor(author: Id): number;
  /** Marks the author's tweets, except those carrying a mark of their own (see the SQL). */
  markByAuthor(author: Id, state: string, reason: string, at: string): number;
  scrubGeoByAuthor(author: Id): number;
}

/** A cascaded mark's compliance_reason starts with this, so the tweets cycle can tell its own marks from them. */
export const CASCADE_REASON_PREFIX = 'author_';

interface ColumnInfo {
  name: string;
  type: string;
}

/**
 * Checks that every table and column the mapping names exists in the real schema, so a wrong mapping fails at start
 * with the config key to change, not halfway through a file.
 */
export function checkContentSchema(db: Db, tables: Tables, type: JobType, cascadeUsers: boolean): void {
  if (type === 'users' && cascadeUsers && tables.tweets.authorId === null) {
    throw new ConfigError('reconcile.cascadeUsers is on but store.tables.tweets.authorId is null, so a user\'s tweets cannot be found', {
      hint: 'map store.tables.tweets.authorId to the column holding the author ID, or set reconcile.cascadeUsers to false',
    });
  }
  const check = (key: 'tweets' | 'users') => {
    const mapping = tables[key] as Record<string, string | null>;
    const columns = tableColumns(db, mapping.table!);
    if (!columns) {
      throw new StoreError('store_schema', `the store has no table "${mapping.table}" (store.tables.${key}.table)`, {
        hint: `set store.tables.${key}.table to the table holding ${key}, or run \`compliance-sync migrate\` on a new store`,
      });
    }
    for (const [configKey, column] of Object.entries(mapping)) {
      if (configKey === 'table' || column === null) continue;
      if (!columns.some((c) => c.name.toLowerCase() === column.toLowerCase())) {
        const nullable = key === 'tweets' && ['authorId', 'geoLat', 'geoLon', 'placeId', 'rawJson'].includes(configKey);
        throw new StoreError('store_schema', `table "${mapping.table}" has no column "${column}" (store.tables.${key}.${configKey})`, {
          hint: `set store.tables.${key}.${configKey} to the column's real name${nullable ? ', or to null if the store has no such column' : ''}`,
        });
      }
    }
  };
  check(type);
  if (type === 'users' && cascadeUsers) check('tweets');
}

function tableColumns(db: Db, table: string): ColumnInfo[] | null {
  const rows = db.prepare(`SELECT name, type FROM pragma_table_info(?)`).all(table) as ColumnInfo[];
  return rows.length ? rows : null;
}

/** SQLite's affinity rule 2: a declared type containing CHAR, CLOB or TEXT is TEXT. */
function encodingOf(db: Db, table: string, column: string): IdEncoding {
  const info = tableColumns(db, table)?.find((c) => c.name.toLowerCase() === column.toLowerCase());
  return info && /CHAR|CLOB|TEXT/i.test(info.type) ? 'text' : 'number';
}

/** Identifiers are validated by the config schema; quoting keeps reserved words usable as names. */
const q = (name: string) => `"${name}"`;
const IN_LIST = 'IN (SELECT value FROM json_each(?))';

/** Prepares, once per apply run, every statement for one type from the table mapping. */
export function prepareContentStatements(db: Db, tables: Tables, type: JobType, cascadeUsers: boolean): ContentStatements {
  const t = tables[type];
  const table = q(t.table);
  const id = q(t.id);
  const idEncoding = encodingOf(db, t.table, t.id);
  const count = (sql: string) => {
    const stmt = db.prepare(sql).pluck();
    return (...params: unknown[]) => Number(stmt.get(...params) as bigint);
  };
  /** A per-row statement whose last parameter is an ID, bound as its column wants it (never as a JS number). */
  const byId = (sql: string, encoding: IdEncoding) => {
    const stmt = db.prepare(sql);
    return encoding === 'number'
      ? (key: Id, ...params: unknown[]) => stmt.run(...params, BigInt(key)).changes
      : (key: Id, ...params: unknown[]) => stmt.run(...params, key).changes;
  };
  const countIn = count(`SELECT count(*) FROM ${table} WHERE ${id} IN (SELECT value FROM json_each(?))`);
  const existsStmt = db.prepare(`SELECT 1 FROM ${table} WHERE ${id} = ?`).pluck();
  const exists = (key: Id) => (existsStmt.get(idEncoding === 'number' ? BigInt(key) : key) === undefined ? 0 : 1);
  const mark = byId(`UPDATE ${table} SET ${q(t.complianceState)} = ?, ${q(t.complianceReason)} = ?, ${q(t.complianceAt)} = ? WHERE ${id} = ?`, idEncoding);
  const deleteRow = byId(`DELETE FROM ${table} WHERE ${id} = ?`, idEncoding);
  const tw = tables.tweets;
  const scrubSet = tweetScrubAssignments(tw);
  const scrubTweet = type === 'tweets' && scrubSet ? byId(`UPDATE ${q(tw.table)} SET ${scrubSet} WHERE ${q(tw.id)} = ?`, idEncoding) : null;

  let cascade: CascadeStatements | null = null;
  if (type === 'users' && cascadeUsers && tw.authorId) {
    const tweets = q(tw.table);
    const author = `${q(tw.authorId)} = ?`;
    const authorEncoding = encodingOf(db, tw.table, tw.authorId);
    const reason = q(tw.complianceReason);
    const scrubByAuthor = scrubSet ? byId(`UPDATE ${tweets} SET ${scrubSet} WHERE ${author}`, authorEncoding) : () => 0;
    const countTweets = count(`SELECT count(*) FROM ${tweets}`);
    const countByAuthors = count(`SELECT count(*) FROM ${tweets} WHERE ${q(tw.authorId)} ${IN_LIST}`);
    cascade = {
      countTweets: () => countTweets(),
      countByAuthors: (authors) => (authors.length ? countByAuthors(idList(authors, authorEncoding).json) : 0),
      deleteByAuthor: byId(`DELETE FROM ${tweets} WHERE ${author}`, authorEncoding),
      // A tweet's own mark (set by the tweets cycle: suspended, protected…) outranks its author's: overwriting it would
      // let the users cycle's close-out clear a mark it did not set. `edited` is only a refetch hint, so it yields.
      markByAuthor: byId(
        `UPDATE ${tweets} SET ${q(tw.complianceState)} = ?, ${reason} = ?, ${q(tw.complianceAt)} = ?` +
          ` WHERE (${reason} IS NULL OR substr(${reason}, 1, ${CASCADE_REASON_PREFIX.length}) = '${CASCADE_REASON_PREFIX}'` +
          ` OR ${q(tw.complianceState)} = 'edited') AND ${author}`,
        authorEncoding,
      ),
      scrubGeoByAuthor: scrubByAuthor,
    };
  }

  return {
    type,
    countRows: count(`SELECT count(*) FROM ${table}`),
    countExisting: (ids) => (ids.length ? countIn(idList(ids, idEncoding).json) : 0),
    delete: (key) => deleteRow(key),
    mark: (key, state, reason, at) => mark(key, state, reason, at),
    // A store without geo columns or raw JSON (and the users table) has nothing to scrub: finding the row is all.
    scrubGeo: (key) => (scrubTweet ? scrubTweet(key) : exists(key)),
    cascade,
  };
}

/** The SET list of a geo scrub, from the columns the mapping has; null when it has none. */
function tweetScrubAssignments(tw: Tables['tweets']): string | null {
  const sets = [tw.geoLat, tw.geoLon, tw.placeId].filter((c): c is string => c !== null).map((c) => `${q(c)} = NULL`);
  if (tw.rawJson) {
    const raw = q(tw.rawJson);
    // Only valid JSON is rewritten (json_remove would throw on anything else and abort the batch); other keys keep
    // their values, numbers keep their exact text (SQLite ≥ 3.45 stores JSON numbers as text).
    sets.push(`${raw} = CASE WHEN json_valid(${raw}) THEN json_remove(${raw}, '$.geo', '$.coordinates', '$.place') ELSE ${raw} END`);
  }
  return sets.length ? sets.join(', ') : null;
}
