/**
 * The domain's words (docs/architecture.md#words) and the types that carry them.
 *
 * - store:   the SQLite database being kept compliant: content tables plus this tool's ledger.
 * - type:    `tweets` or `users`, the two kinds of compliance job.
 * - cycle:   one pass over every stored ID of one type, split into shards.
 * - shard:   a contiguous, ordered range of at most `shardSize` IDs, uploaded as one job.
 * - job:     X's compliance job (id, status, upload/download URLs and their expiry times).
 * - result:  one line of a job's NDJSON results file: {id, action, reason, created_at, redacted_at?, ...}.
 * - action taken: what the reconciler does to the store for one result: delete, scrub geo, mark, or nothing.
 * - ledger:  the tables that record cycles, shards, jobs and progress, so any step resumes after a crash.
 */

export const JOB_TYPES = ['tweets', 'users'] as const;
export type JobType = (typeof JOB_TYPES)[number];

/**
 * A 64-bit snowflake as a canonical decimal string (no sign, no leading zeros beyond "0").
 * IDs exceed 2^53, so they are never JavaScript numbers: strings at the edges, `bigint` where arithmetic is needed.
 */
export type Id = string & { readonly __brand: 'Id' };

export const ID_PATTERN = /^[0-9]{1,19}$/;
const INT64_MAX = 9223372036854775807n;

/** Returns the ID if `value` is a string of 1–19 digits within signed 64-bit range, else null. */
export function parseId(value: unknown): Id | null {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) return null;
  if (value.length === 19 && BigInt(value) > INT64_MAX) return null;
  // Canonical form: SQLite compares INTEGER keys numerically, the shard files and names use decimal text.
  return (value.length > 1 && value[0] === '0' ? BigInt(value).toString() : value) as Id;
}

/** Orders two IDs numerically without converting them: shorter canonical strings are smaller. */
export function compareIds(a: Id, b: Id): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What the reconciler does for one result (also what `reconcile.policy` maps a reason to). */
export const ACTIONS_TAKEN = ['delete', 'mark', 'scrub_geo', 'ignore'] as const;
export type ActionTaken = (typeof ACTIONS_TAKEN)[number];

/** With `reconcile.cascadeUsers`, a users result's action repeated on the author's tweets, as the audit names it. */
export const CASCADE_ACTIONS = { delete: 'cascade_delete', mark: 'cascade_mark', scrub_geo: 'cascade_scrub_geo' } as const;
export type CascadeAction = (typeof CASCADE_ACTIONS)[keyof typeof CASCADE_ACTIONS];

/**
 * What a transaction's deletions leave that its sweep removes (src/store/sweeps.ts), as the audit names it, under the
 * reason of the same name: copies of deleted tweets deleted, embedded copies removed or geo-scrubbed, orphans deleted.
 */
export const FOLLOW_UP_ACTIONS = ['copy_deleted', 'embed_updated', 'orphan_deleted'] as const;
export type FollowUpAction = (typeof FOLLOW_UP_ACTIONS)[number];

/**
 * What the audit counts per reason (cs_audit_counts.action_taken): the action taken on a stored row, `not_found`
 * when the result's row is not stored, the cascade's actions (counted in tweets, not in results), and the follow-ups.
 */
export const AUDIT_ACTIONS = [...ACTIONS_TAKEN, 'not_found', ...Object.values(CASCADE_ACTIONS), ...FOLLOW_UP_ACTIONS] as readonly AuditAction[];
export type AuditAction = ActionTaken | 'not_found' | CascadeAction | FollowUpAction;

/** X's snowflake epoch (2010-11-04T01:42:54.657Z): an ID's top bits are milliseconds since then. */
const TWITTER_EPOCH = 1288834974657n;

/** Snowflake for a moment and a sequence number, as X makes them. */
export function snowflake(ms: bigint, sequence: bigint): bigint {
  return ((ms - TWITTER_EPOCH) << 22n) | (sequence & 0x3fffffn);
}

/** The time an ID was made, for snowflakes (IDs issued before 2010 are plain counters and give null). */
export function snowflakeTime(id: string): Date | null {
  const value = BigInt(id);
  if (value < 1n << 32n) return null;
  return new Date(Number((value >> 22n) + TWITTER_EPOCH));
}

