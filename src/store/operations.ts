import { statSync } from 'node:fs';
import type { Config } from '../config/load.js';
import { ACTIONS_TAKEN, CASCADE_ACTIONS, JOB_TYPES, type AuditAction, type JobType } from '../types.js';
import { applyRunCountsSchema, parseLedgerJson } from './ledgerJson.js';
import type { Db } from './open.js';
import { perConnection } from './perConnection.js';

/** What the ledger says about one type's operation, in the units the metrics use. */
export interface TypeOperations {
  /** Finish time of the latest real (non-dry-run) closed cycle, epoch seconds; null if none. */
  lastSuccessTimestampSeconds: number | null;
  /** Shards per state of the type's latest real cycle (open or closed). */
  shards: Record<string, number>;
  /** Jobs created over the store's life, and how many of them ended failed or expired. */
  jobs: { created: number; failed: number; expired: number };
  /** Result lines applied, per reason and action taken (cs_audit_counts over every run of the type). */
  resultLines: { reason: string; action: string; count: number }[];
  /** Rows the runs of this type changed, per table and cause (the action; cascades change the tweets table). */
  rowsChanged: { table: string; cause: string; count: number }[];
  /** Result lines per second of the latest finished apply run of the type; null before the first. */
  applyRowsPerSecond: number | null;
}

/** Audit actions that change rows, and the type whose table they change (cascades reach the tweets). */
const ROW_CHANGES = new Map<AuditAction, JobType | 'own'>([
  ...ACTIONS_TAKEN.filter((action) => action !== 'ignore').map((action) => [action, 'own'] as const),
  ...Object.values(CASCADE_ACTIONS).map((action) => [action, 'tweets'] as const),
]);

const statementsOf = perConnection((db: Db) => ({
  lastSuccess: db
    .prepare<[type: JobType], string | null>("SELECT max(finished_at) FROM cs_cycles WHERE type = ? AND state = 'closed' AND trigger <> 'dry-run'")
    .pluck(),
  shardStates: db.prepare<[type: JobType], { state: string; n: bigint }>(
    `SELECT state, count(*) AS n FROM cs_shards WHERE cycle_id =
       (SELECT max(id) FROM cs_cycles WHERE type = ? AND trigger <> 'dry-run' AND state <> 'abandoned') GROUP BY state`,
  ),
  jobs: db.prepare<[type: JobType], { created: bigint; failed: bigint | null; expired: bigint | null }>(
    "SELECT count(*) AS created, sum(status = 'failed') AS failed, sum(status = 'expired') AS expired FROM cs_jobs WHERE type = ?",
  ),
  audit: db.prepare<[type: JobType], { reason: string; action_taken: AuditAction; n: bigint }>(
    `SELECT a.reason, a.action_taken, sum(a.count) AS n FROM cs_audit_counts a JOIN cs_apply_runs r ON r.id = a.run_id
     WHERE r.type = ? GROUP BY a.reason, a.action_taken ORDER BY a.reason, a.action_taken`,
  ),
  lastRun: db.prepare<[type: JobType], { id: bigint; counts_json: string; started_at: string; finished_at: string | null }>(
    `SELECT id, counts_json, started_at, finished_at FROM cs_apply_runs
     WHERE type = ? AND state = 'done' AND counts_json IS NOT NULL ORDER BY id DESC LIMIT 1`,
  ),
}));

/** Reads the operational figures of every type; cheap (ledger tables only, grouped). */
export function readOperations(db: Db, config: Config): Record<JobType, TypeOperations> {
  const { lastSuccess, shardStates, jobs, audit, lastRun } = statementsOf(db);
  const result = {} as Record<JobType, TypeOperations>;
  for (const type of JOB_TYPES) {
    const finished = lastSuccess.get(type) ?? null;
    const shards: Record<string, number> = {};
    for (const row of shardStates.all(type)) shards[row.state] = Number(row.n);
    const jobCounts = jobs.get(type)!;
    const resultLines = audit.all(type).map((row) => ({
      reason: row.reason,
      action: row.action_taken,
      count: Number(row.n),
    }));
    const changed = new Map<string, number>();
    for (const line of resultLines) {
      const owner = ROW_CHANGES.get(line.action);
      if (!owner) continue;
      const key = `${config.store.tables[owner === 'own' ? type : owner].table}\u0000${line.action}`;
      changed.set(key, (changed.get(key) ?? 0) + line.count);
    }
    const run = lastRun.get(type);
    let applyRowsPerSecond: number | null = null;
    if (run?.finished_at) {
      const seconds = (Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000;
      const { linesRead } = parseLedgerJson(applyRunCountsSchema, run.counts_json, `cs_apply_runs.counts_json of run ${run.id}`);
      // A run shorter than the clock's resolution has no meaningful rate.
      applyRowsPerSecond = seconds > 0 ? linesRead / seconds : null;
    }
    result[type] = {
      lastSuccessTimestampSeconds: finished ? Date.parse(finished) / 1000 : null,
      shards,
      jobs: { created: Number(jobCounts.created), failed: Number(jobCounts.failed ?? 0), expired: Number(jobCounts.expired ?? 0) },
      resultLines,
      rowsChanged: [...changed].map(([key, count]) => {
        const [table, cause] = key.split('\u0000') as [string, string];
        return { table, cause, count };
      }),
      applyRowsPerSecond,
    };
  }
  return result;
}

/** Bytes the store takes on disk: the database file and its write-ahead log. */
export function storeSizeBytes(storePath: string): number {
  const size = (file: string) => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  };
  return size(storePath) + size(`${storePath}-wal`);
}
