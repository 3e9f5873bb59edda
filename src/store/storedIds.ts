import { setImmediate } from 'node:timers/promises';
import type { Config } from '../config/load.js';
import { ConfigError } from '../errors.js';
import type { JobType } from '../types.js';
import type { Db } from './open.js';
import { createIndexStatement, quoteIdent, SchemaInfo } from './schemaInfo.js';

export interface ShardPlan {
  /** The highest stored ID when planned: the cycle covers IDs up to it. Null for an empty table. */
  maxId: string | null;
  idCount: number;
  shards: { firstId: string; lastId: string; idCount: number }[];
}

/** The largest 64-bit ID: with 0, a range that keeps an INTEGER column's stray text values (sorted after integers) out. */
const MAX_ID = '9223372036854775807';

/** Where a type's IDs to check are read from: the mapped id column, and the store.dependents columns with `check`. */
export interface IdSource {
  table: string;
  column: string;
  /** The config entry that names the column (store.tables.tweets, store.dependents[0]) and the column's own key. */
  entry: string;
  key: string;
  /** Not the table's own key: its values may repeat, be NULL, or be stray non-integers, all left out. */
  foreign: boolean;
}

/** The store.dependents columns whose IDs are checked for this type (entries with `check`). */
export function checkedColumns(config: Config, type: JobType): IdSource[] {
  return config.store.dependents.flatMap((d, i) =>
    d.check && d.references === type ? [{ table: d.table, column: d.column, entry: `store.dependents[${i}]`, key: `store.dependents[${i}].column`, foreign: true }] : [],
  );
}

/**
 * Why a cycle cannot read IDs from this column, or null: shards are numeric ID ranges, and a TEXT column would order
 * "100" before "42" and split ranges wrongly.
 */
export function idColumnProblem(schema: SchemaInfo, source: IdSource): { message: string; hint: string } | null {
  const declared = schema.column(source.table, source.column)?.type;
  if (declared !== undefined && /INT/i.test(declared)) return null;
  return {
    message: `cycles need an INTEGER id column, but "${source.table}"."${source.column}" is ${declared === undefined ? 'missing' : `declared "${declared}"`}`,
    hint: source.foreign
      ? `set ${source.entry}.check to false, or check the IDs of an INTEGER column`
      : 'map an INTEGER column (or a view with CAST(id AS INTEGER)); `apply` works with text IDs, cycles do not',
  };
}

/**
 * Reads the IDs of one type to check, in order, by keyset pagination: no open iterator is held across awaits (writing
 * on a connection with an open iterator throws), and each page is one index range scan per source. The IDs are the
 * mapped table's, and those of the store.dependents columns marked `check` (IDs a collector keeps without a row of
 * the mapped table, e.g. twint's retweets.retweet_id): their index range scans are merged in ID order (SQLite's
 * MERGE (UNION) of a compound SELECT with ORDER BY), without a sort or a temporary table.
 */
export class StoredIds {
  private readonly boundary;
  private readonly page;
  private readonly count;
  private readonly maxOf;

  constructor(db: Db, config: Config, type: JobType) {
    const mapping = config.store.tables[type];
    const sources: IdSource[] = [
      { table: mapping.table, column: mapping.id, entry: `store.tables.${type}`, key: `store.tables.${type}.id`, foreign: false },
      ...checkedColumns(config, type),
    ];
    const schema = new SchemaInfo(db);
    for (const source of sources) {
      const problem = idColumnProblem(schema, source);
      if (problem) throw new ConfigError(`${source.key}: ${problem.message}`, { hint: problem.hint });
      // Without an index, each of the queries below would read and sort the whole column (preflight asks for it too).
      if (source.foreign && !schema.hasLeadingIndex(source.table, source.column)) {
        throw new ConfigError(`${source.key}: "${source.table}"."${source.column}" has no index, so its IDs cannot be read in order without sorting them all`, {
          hint: `compliance-sync migrate --create-indexes, or: ${createIndexStatement(source.table, source.column)}`,
        });
      }
    }
    const arm = (s: IdSource, upTo: boolean) => {
      const c = quoteIdent(s.column);
      const only = s.foreign ? ` AND ${c} BETWEEN 0 AND ${MAX_ID} AND typeof(${c}) = 'integer'` : '';
      return `SELECT ${c} FROM ${quoteIdent(s.table)} WHERE ${c} > @after${upTo ? ` AND ${c} <= @last` : ''}${only}`;
    };
    // UNION drops an ID held by more than one source (or twice in one); ORDER BY makes it a merge of ordered scans.
    const ids = (upTo: boolean) => `${sources.map((s) => arm(s, upTo)).join(' UNION ')} ORDER BY 1`;
    // OFFSET steps through the index B-trees in order (reading their pages); it never sorts. IDs come back as BigInt.
    this.boundary = db.prepare(`${ids(false)} LIMIT 1 OFFSET @skip`).pluck().safeIntegers(true);
    this.page = db.prepare(`${ids(true)} LIMIT @limit`).pluck().safeIntegers(true);
    this.count = db.prepare(`SELECT count(*) FROM (${ids(true)})`).pluck().safeIntegers(true);
    this.maxOf = sources.map((s) => {
      const c = quoteIdent(s.column);
      const sql = s.foreign
        ? `SELECT ${c} FROM ${quoteIdent(s.table)} WHERE ${c} BETWEEN 0 AND ${MAX_ID} AND typeof(${c}) = 'integer' ORDER BY ${c} DESC LIMIT 1`
        : `SELECT max(${c}) FROM ${quoteIdent(s.table)}`;
      return db.prepare(sql).pluck().safeIntegers(true);
    });
  }

  /** The highest ID of any source; null when there is none. */
  private max(): bigint | null {
    let max: bigint | null = null;
    for (const stmt of this.maxOf) {
      const value = (stmt.get() as bigint | null | undefined) ?? null;
      if (value !== null && (max === null || value > max)) max = value;
    }
    return max;
  }

  /**
   * Splits the stored IDs, ordered, into contiguous shards of at most `shardSize`. Each boundary query steps through
   * one shard's worth of rows; yielding between them keeps the event loop (and systemd's watchdog) alive on big stores.
   */
  async plan(shardSize: number): Promise<ShardPlan> {
    const max = this.max();
    if (max === null) return { maxId: null, idCount: 0, shards: [] };
    const shards: ShardPlan['shards'] = [];
    // IDs are non-negative, so -1 is below every one of them.
    let after: bigint = -1n;
    let idCount = 0;
    while (after < max) {
      const first = this.boundary.get({ after, skip: 0 }) as bigint;
      const last = (this.boundary.get({ after, skip: shardSize - 1 }) as bigint | undefined) ?? max;
      const size = last === max ? Number(this.count.get({ after, last })) : shardSize;
      shards.push({ firstId: first.toString(), lastId: last.toString(), idCount: size });
      idCount += size;
      after = last;
      await setImmediate();
    }
    return { maxId: max.toString(), idCount, shards };
  }

  /** Up to `limit` IDs in (after, last], ascending. */
  pageAfter(after: bigint, last: bigint, limit: number): bigint[] {
    return this.page.all({ after, last, limit }) as bigint[];
  }
}
