import type { Config } from '../../config/load.js';
import type { Logger } from '../../log.js';
import type { ActionTotals } from '../../store/auditCounts.js';
import type { ChangesByTable } from '../../store/changeCounts.js';
import type { Db } from '../../store/open.js';
import type { Id, JobType } from '../../types.js';

export interface ApplyOptions {
  db: Db;
  config: Config;
  type: JobType;
  file: string;
  logger: Logger;
  /** Resume this cs_apply_runs row from its checkpoint_line; else a new run is created. */
  runId?: number;
  /** Set when the file is a cycle's shard (pipeline/shard.ts); `apply FILE` has none. */
  shard?: ShardScope;
  confirmDeletions?: boolean;
  /** Nothing is written: no run row, no rejects file; each batch runs in a transaction that is rolled back. */
  dryRun?: boolean;
  /** Stops after the current batch with the checkpoint consistent; the summary's state is then 'interrupted'. */
  signal?: AbortSignal;
  /** Called per batch (and per pass of the safety gate, with phase 'scan'). */
  onProgress?: (p: { bytesRead: number; linesRead: number; phase: 'scan' | 'apply' }) => void;
  /** The clock (as_of). */
  now?: () => Date;
  /** Milliseconds, for `reconcile.maxLockMs` (default performance.now): tests inject one to make cuts deterministic. */
  clock?: () => number;
  /**
   * Called after each commit: `cut` is set when the transaction ended inside a batch (the bound on time);
   * `sweepPending` when the embedded-copies sweep is left to the next transaction (cut by time too).
   */
  onCommit?: (commit: { checkpointLine: number; cut: Cut | null; sweepPending: boolean }) => void;
}

/** What a cycle's shard adds to an apply: its ledger row, its ID range and its size. */
export interface ShardScope {
  /** Recorded on the run. */
  id: number;
  /** Records whose id is outside are rejected as 'outside_shard'. */
  idRange: { first: Id; last: Id };
  /** The safety gate's denominator: the IDs submitted in the shard (default without a shard: stored rows of the type). */
  submittedIds: number;
}

/**
 * Where a batch was cut by `reconcile.maxLockMs`: the batch ending at `line` has its first `records` records (in the
 * batch's ID order) applied, and the next record may be part-done: some of a user's tweets deleted, some of a row's
 * dependents deleted, or — `after` set — a user's mark or geo scrub applied to their tweets up to that tweet ID. The
 * checkpoint line stays at the batch's start; a resumed run re-reads the same lines, sorts them the same way, and
 * goes on.
 */
export interface Cut {
  line: number;
  records: number;
  after?: Id;
}

/**
 * The run's totals. Committed with each checkpoint: lines, records and rejects as counts_json, what was done as the
 * audit (from which `applied`, `notFound` and `cascaded` are derived) and `changes` as cs_change_counts, so a resumed
 * run reports the whole file.
 */
export interface Totals extends ActionTotals {
  linesRead: number;
  records: number;
  rejected: Record<string, number>;
  /** Every row changed, per table, kind and cause (FK actions, the cascade and the store's triggers included). */
  changes: ChangesByTable;
}

export interface ApplySummary extends Totals {
  runId: number | null;
  state: 'done' | 'held' | 'interrupted';
  /** Deletions of stored rows the file causes (held or dry run: would cause). */
  wouldDelete: number;
  elapsedMs: number;
  rejectsFile: string | null;
}
