import type { Id, JobType } from '../types.js';
import type { Db } from './open.js';

/** An ID deleted for compliance, as cs_tombstones keeps it: no content. */
export interface Tombstone {
  type: JobType;
  id: Id;
  reason: string;
  deletedAt: string;
}

/**
 * The tombstones of one type (or both), deleted at or after `since`, in (type, ID) order. Streams: a store can hold
 * millions. Read on its own connection (a read-only one in the CLI), so nothing writes while it iterates.
 */
export function* readTombstones(db: Db, filter: { type?: JobType; since?: string }): Generator<Tombstone> {
  const stmt = db
    .prepare(
      `SELECT type, id, reason, deleted_at FROM cs_tombstones
       WHERE (@type IS NULL OR type = @type) AND (@since IS NULL OR deleted_at >= @since) ORDER BY type, id`,
    )
    .safeIntegers(true);
  for (const row of stmt.iterate({ type: filter.type ?? null, since: filter.since ?? null }) as Iterable<{ type: JobType; id: bigint; reason: string; deleted_at: string }>) {
    yield { type: row.type, id: row.id.toString() as Id, reason: row.reason, deletedAt: row.deleted_at };
  }
}
