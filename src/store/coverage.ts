import type { Config } from '../config/load.js';
import { snowflakeTime, type JobType } from '../types.js';
import type { Db } from './open.js';
import { quoteIdent } from './schemaInfo.js';

export interface Coverage {
  storedRows: number;
  /** Stored rows inside a shard that a closed cycle applied since `checkedSince`. */
  checkedRows: number;
  /** checkedRows / storedRows; 1 for an empty table (nothing is unchecked). */
  share: number;
  /** The smallest unchecked IDs (smallest = oldest, for snowflakes), with the time their ID encodes. */
  oldestUnchecked: { id: string; createdAt: string | null }[];
}

/**
 * How much of one type's store was checked recently: the applied shard ranges of real cycles closed since
 * `checkedSince`, merged, counted with one index range count each; the oldest unchecked rows are the smallest IDs in
 * the gaps between them, found by index lookups rather than a table scan.
 */
export function coverageOf(db: Db, config: Config, type: JobType, checkedSince: Date, oldestLimit = 5): Coverage {
  const { table, id } = config.store.tables[type];
  const ranges = db
    .prepare(
      `SELECT s.first_id, s.last_id FROM cs_shards s JOIN cs_cycles c ON c.id = s.cycle_id
       WHERE c.type = ? AND c.state = 'closed' AND c.trigger <> 'dry-run' AND s.state = 'applied' AND c.finished_at >= ?
       ORDER BY s.first_id`,
    )
    .all(type, checkedSince.toISOString()) as { first_id: bigint; last_id: bigint }[];
  const merged: { first: bigint; last: bigint }[] = [];
  for (const range of ranges) {
    const top = merged[merged.length - 1];
    if (top && range.first_id <= top.last + 1n) top.last = range.last_id > top.last ? range.last_id : top.last;
    else merged.push({ first: range.first_id, last: range.last_id });
  }
  const [t, i] = [quoteIdent(table), quoteIdent(id)];
  const countIn = db.prepare(`SELECT count(*) FROM ${t} WHERE ${i} BETWEEN ? AND ?`).pluck();
  const idsBetween = db.prepare(`SELECT ${i} FROM ${t} WHERE ${i} > ? AND ${i} < ? ORDER BY ${i} LIMIT ?`).pluck();
  const idsAbove = db.prepare(`SELECT ${i} FROM ${t} WHERE ${i} > ? ORDER BY ${i} LIMIT ?`).pluck();
  const storedRows = Number(db.prepare(`SELECT count(*) FROM ${t}`).pluck().get());
  const checkedRows = merged.reduce((sum, range) => sum + Number(countIn.get(range.first, range.last)), 0);

  const oldest: bigint[] = [];
  // IDs are non-negative, so -1 is below every one of them.
  let below = -1n;
  for (const range of merged) {
    if (oldest.length >= oldestLimit) break;
    oldest.push(...(idsBetween.all(below, range.first, oldestLimit - oldest.length) as bigint[]));
    below = range.last;
  }
  if (oldest.length < oldestLimit) oldest.push(...(idsAbove.all(below, oldestLimit - oldest.length) as bigint[]));
  return {
    storedRows,
    checkedRows,
    share: storedRows ? checkedRows / storedRows : 1,
    oldestUnchecked: oldest.map((value) => {
      const text = value.toString();
      return { id: text, createdAt: snowflakeTime(text)?.toISOString() ?? null };
    }),
  };
}
