import { statSync } from 'node:fs';
import type { Config } from '../config/load.js';
import { JOB_TYPES, type JobType } from '../types.js';
import type { Db } from './open.js';

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
const ROW_CHANGES: Record<string, JobType | 'own'> = {
  delete: 'own',
  mark: 'own',
  scrub_geo: 'own',
  cascade_delete: 'tweets',
  cascade_mark: 'tweets',
  cascade_scrub_geo: 'tweets',
};

/** Reads the operational figures of every type; cheap (ledger tables only, grouped). */
export function readOperations(db: Db, config: Config): Record<JobType, TypeOperations> {
  const lastSuccess = db
    .prepare("SELECT max(finished_at) FROM cs_cycles WHERE type = ? AND state = 'closed' AND trigger <> 'dry-run'")
    .pluck();
  const shardStates = db.prepare(
    `SELECT state, count(*) AS n FROM cs_shards WHERE cycle_id =
       (SELECT max(id) FROM cs_cycles WHERE type = ? AND trigger <> 'dry-run' AND state <> 'abandoned') GROUP BY state`,
  );
  const jobs = db.prepare(
    "SELECT count(*) AS created, sum(status = 'failed') AS failed, sum(status = 'expired') AS expired FROM cs_jobs WHERE type = ?",
  );
  const audit = db.prepare(
    `SELECT a.reason, a.action_taken, sum(a.count) AS n FROM cs_audit_counts a JOIN cs_apply_runs r ON r.id = a.run_id
     WHERE r.type = ? GROUP BY a.reason, a.action_taken ORDER BY a.reason, a.action_taken`,
  );
  const lastRun = db.prepare(
    `SELECT counts_json, started_at, finished_at FROM cs_apply_runs
     WHERE type = ? AND state = 'done' AND counts_json IS NOT NULL ORDER BY id DESC LIMIT 1`,
  );
  const result = {} as Record<JobType, TypeOperations>;
  for (const type of JOB_TYPES) {
    const finished = lastSuccess.get(type) as string | null;
    const shards: Record<string, number> = {};
    for (const row of shardStates.all(type) as { state: string; n: bigint }[]) shards[row.state] = Number(row.n);
    const j = jobs.get(type) as { created: bigint; failed: bigint | null; expired: bigint | null };
    const resultLines = (audit.all(type) as { reason: string; action_taken: string; n: bigint }[]).map((row) => ({
      reason: row.reason,
      action: row.action_taken,
      count: Number(row.n),
    }));
    const changed = new Map<string, number>();
    for (const line of resultLines) {
      const owner = ROW_CHANGES[line.action];
      if (!owner) continue;
      const key = `${config.store.tables[owner === 'own' ? type : owner].table}\u0000${line.action}`;
      changed.set(key, (changed.get(key) ?? 0) + line.count);
    }
    const run = lastRun.get(type) as { counts_json: string; started_at: string; finished_at: string | null } | undefined;
    let applyRowsPerSecond: number | null = null;
    if (run?.finished_at) {
      const seconds = (Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000;
      const lines = Number((JSON.parse(run.counts_json) as { linesRead?: number }).linesRead ?? 0);
      // A run shorter than the clock's resolution has no meaningful rate.
      applyRowsPerSecond = seconds > 0 ? lines / seconds : null;
    }
    result[type] = {
      lastSuccessTimestampSeconds: finished ? Date.parse(finished) / 1000 : null,
      shards,
      jobs: { created: Number(j.created), failed: Number(j.failed ?? 0), expired: Number(j.expired ?? 0) },
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
