import { setImmediate } from 'node:timers/promises';
import type { Config } from '../config/load.js';
import { ConfigError } from '../errors.js';
import type { JobType } from '../types.js';
import type { Db } from './open.js';
import { quoteIdent, SchemaInfo } from './schemaInfo.js';

export interface ShardPlan {
  /** The highest stored ID when planned: the cycle covers IDs up to it. Null for an empty table. */
  maxId: string | null;
  idCount: number;
  shards: { firstId: string; lastId: string; idCount: number }[];
}

/**
 * Reads the stored IDs of one type in order by keyset pagination: no open iterator is held across awaits (writing on
 * a connection with an open iterator throws), and each page is one index range scan.
 */
export class StoredIds {
  private readonly boundary;
  private readonly page;
  private readonly count;
  private readonly max;

  constructor(db: Db, config: Config, type: JobType) {
    const mapping = config.store.tables[type];
    // Shards are numeric ID ranges: a TEXT column would order "100" before "42" and split ranges wrongly.
    const declared = new SchemaInfo(db).column(mapping.table, mapping.id)?.type;
    if (declared === undefined || !/INT/i.test(declared)) {
      throw new ConfigError(
        `store.tables.${type}.id: cycles need an INTEGER id column, but "${mapping.table}"."${mapping.id}" is ${declared === undefined ? 'missing' : `declared "${declared}"`}`,
        { hint: 'map an INTEGER column (or a view with CAST(id AS INTEGER)); `apply` works with text IDs, cycles do not' },
      );
    }
    const t = quoteIdent(mapping.table);
    const id = quoteIdent(mapping.id);
    // OFFSET steps through the rowid B-tree in order (reading its pages); it never sorts.
    this.boundary = db.prepare(`SELECT ${id} FROM ${t} WHERE ${id} > ? ORDER BY ${id} LIMIT 1 OFFSET ?`).pluck();
    this.page = db.prepare(`SELECT ${id} FROM ${t} WHERE ${id} > ? AND ${id} <= ? ORDER BY ${id} LIMIT ?`).pluck();
    this.count = db.prepare(`SELECT count(*) FROM ${t} WHERE ${id} > ? AND ${id} <= ?`).pluck();
    this.max = db.prepare(`SELECT max(${id}) FROM ${t}`).pluck();
  }

  /**
   * Splits the stored IDs, ordered, into contiguous shards of at most `shardSize`. Each boundary query steps through
   * one shard's worth of rows; yielding between them keeps the event loop (and systemd's watchdog) alive on big stores.
   */
  async plan(shardSize: number): Promise<ShardPlan> {
    const max = this.max.get() as bigint | null;
    if (max === null) return { maxId: null, idCount: 0, shards: [] };
    const shards: ShardPlan['shards'] = [];
    // IDs are non-negative, so -1 is below every one of them.
    let after: bigint = -1n;
    let idCount = 0;
    while (after < max) {
      const first = this.boundary.get(after, 0) as bigint;
      const last = (this.boundary.get(after, shardSize - 1) as bigint | undefined) ?? max;
      const size = last === max ? Number(this.count.get(after, last)) : shardSize;
      shards.push({ firstId: first.toString(), lastId: last.toString(), idCount: size });
      idCount += size;
      after = last;
      await setImmediate();
    }
    return { maxId: max.toString(), idCount, shards };
  }

  /** Up to `limit` IDs in (after, last], ascending. */
  pageAfter(after: bigint, last: bigint, limit: number): bigint[] {
    return this.page.all(after, last, limit) as bigint[];
  }
}
