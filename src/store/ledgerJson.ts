import { z } from 'zod';
import { StoreError } from '../errors.js';
import { JOB_TYPES, parseId, type Id } from '../types.js';

/**
 * The JSON the ledger keeps in a column, one schema per column: what is written is what the schema describes, and
 * what is read back goes through it (never a cast), so every reader sees one shape.
 */

const countsByKey = z.record(z.string(), z.number());

/**
 * cs_apply_runs.counts_json: what a run has read so far, committed with each checkpoint. What it did per action and
 * the rows it changed are not here: cs_audit_counts and cs_change_counts hold them, in the same transaction. Rows
 * written before that also carry `applied`, `notFound`, `cascaded` and `changes`; those copies are dropped on read.
 */
export const applyRunCountsSchema = z.object({
  linesRead: z.number().int().nonnegative(),
  records: z.number().int().nonnegative(),
  /** Lines rejected, per kind (see RejectKind). */
  rejected: countsByKey,
  /**
   * Set when the last transaction ended inside a batch (reconcile.maxLockMs): its first `records` are applied, and
   * with `after` the next one is, over its tweets, up to that tweet ID.
   */
  cut: z
    .object({
      line: z.number().int().positive(),
      records: z.number().int().nonnegative(),
      after: z.custom<Id>((value) => typeof value === 'string' && parseId(value) === value, 'must be an ID as a decimal string').optional(),
    })
    .optional(),
});
export type ApplyRunCounts = z.infer<typeof applyRunCountsSchema>;

/** cs_cycles.summary_json of a closed cycle: the cycle's report, as runCycle returned it. */
export const cycleSummarySchema = z.object({
  type: z.enum(JOB_TYPES),
  cycleId: z.number().int(),
  state: z.enum(['closed', 'held', 'interrupted']),
  dryRun: z.boolean(),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number(),
  idsChecked: z.number(),
  shards: z.object({ total: z.number(), applied: z.number(), failed: z.number(), held: z.number() }),
  jobsUsed: z.number(),
  /** Audit actions (see AUDIT_ACTIONS) over every reason. */
  actions: countsByKey,
  /** Reason → audit action → count. */
  byReason: z.record(z.string(), countsByKey),
  notFound: z.number(),
  rejected: countsByKey,
  marksCleared: z.number(),
  failures: z.array(z.object({ seq: z.number(), error: z.string() })),
});
export type CycleSummary = z.infer<typeof cycleSummarySchema>;

/** cs_cycles.summary_json of an abandoned cycle: why it was given up. */
export const abandonedCycleSchema = z.object({ abandoned: z.string() });
export type AbandonedCycle = z.infer<typeof abandonedCycleSchema>;

/** Parses one JSON column through its schema; a row that does not fit is a damaged ledger, named by table and row. */
export function parseLedgerJson<T>(schema: z.ZodType<T>, json: string, where: string): T {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new StoreError('ledger_json', `${where} is not JSON`, { cause: err, hint: 'the ledger was changed by hand; restore the store from a backup' });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StoreError('ledger_json', `${where} does not fit its shape: ${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'unknown'}`, {
      hint: 'the ledger was changed by hand; restore the store from a backup',
    });
  }
  return parsed.data;
}
