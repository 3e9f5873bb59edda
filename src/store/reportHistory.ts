import { CASCADE_ACTIONS, type JobType } from '../types.js';
import { cycleSummarySchema, parseLedgerJson, type CycleSummary } from './ledgerJson.js';
import type { Db } from './open.js';
import { perConnection } from './perConnection.js';

/** The audit actions that delete a stored row: a result's own, and its author's tweets by the cascade. */
const DELETING_ACTIONS = ['delete', CASCADE_ACTIONS.delete].map((action) => `'${action}'`).join(', ');

export interface ClosedCycle {
  id: number;
  trigger: string;
  startedAt: string;
  finishedAt: string;
  summary: CycleSummary | null;
}

export interface ProblemJob {
  jobId: string;
  cycleId: number;
  seq: number;
  status: string;
  error: string | null;
  createdAt: string;
  /** What became of the shard: its state now and the job that came after this one, if any. */
  shardState: string;
  nextJob: { id: string; status: string } | null;
}

export interface Hold {
  cycleId: number;
  seq: number;
  idCount: number;
  reason: string | null;
  since: string;
}

export interface Confirmation {
  cycleId: number | null;
  seq: number | null;
  confirmedAt: string;
  rowsDeleted: number;
}

type Period = [type: JobType, from: string, to: string];

const statementsOf = perConnection((db: Db) => ({
  closedCycles: db.prepare<Period, { id: bigint; trigger: string; started_at: string; finished_at: string; summary_json: string | null }>(
    `SELECT id, trigger, started_at, finished_at, summary_json FROM cs_cycles
     WHERE type = ? AND state = 'closed' AND trigger <> 'dry-run' AND finished_at >= ? AND finished_at <= ? ORDER BY finished_at, id`,
  ),
  jobStatuses: db.prepare<Period, { status: string; n: bigint }>(
    'SELECT status, count(*) AS n FROM cs_jobs WHERE type = ? AND created_at >= ? AND created_at <= ? GROUP BY status',
  ),
  nextJob: db.prepare<[shardId: bigint, attempt: bigint], { id: string; status: string }>(
    'SELECT id, status FROM cs_jobs WHERE shard_id = ? AND attempt > ? ORDER BY attempt LIMIT 1',
  ),
  problemJobs: db.prepare<
    Period,
    { id: string; shard_id: bigint; attempt: bigint; status: string; error: string | null; created_at: string; seq: bigint; cycle_id: bigint; shard_state: string }
  >(
    `SELECT j.id, j.shard_id, j.attempt, j.status, j.error, j.created_at, s.seq, s.cycle_id, s.state AS shard_state
     FROM cs_jobs j JOIN cs_shards s ON s.id = j.shard_id
     WHERE j.type = ? AND j.status IN ('failed', 'expired') AND j.created_at >= ? AND j.created_at <= ? ORDER BY j.created_at`,
  ),
  holds: db.prepare<[type: JobType], { cycle_id: bigint; seq: bigint; id_count: bigint; error: string | null; updated_at: string }>(
    `SELECT s.cycle_id, s.seq, s.id_count, s.error, s.updated_at FROM cs_shards s JOIN cs_cycles c ON c.id = s.cycle_id
     WHERE c.type = ? AND s.state = 'held' ORDER BY s.cycle_id, s.seq`,
  ),
  confirmations: db.prepare<Period, { cycle_id: bigint | null; seq: bigint | null; confirmed_at: string; deleted: bigint }>(
    `SELECT s.cycle_id, s.seq, r.confirmed_at,
            (SELECT coalesce(sum(a.count), 0) FROM cs_audit_counts a WHERE a.run_id = r.id AND a.action_taken IN (${DELETING_ACTIONS})) AS deleted
     FROM cs_apply_runs r LEFT JOIN cs_shards s ON s.id = r.shard_id
     WHERE r.type = ? AND r.confirmed_at >= ? AND r.confirmed_at <= ? ORDER BY r.confirmed_at`,
  ),
}));

/** The ledger's history of one type over a period, as the HTML report draws it. */
export function readReportHistory(db: Db, type: JobType, from: string, to: string) {
  const ledger = statementsOf(db);
  const cycles = ledger.closedCycles.all(type, from, to).map(
    (row): ClosedCycle => ({
      id: Number(row.id),
      trigger: row.trigger,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      summary: row.summary_json === null ? null : parseLedgerJson(cycleSummarySchema, row.summary_json, `cs_cycles.summary_json of cycle ${row.id}`),
    }),
  );
  const jobStatuses = Object.fromEntries(ledger.jobStatuses.all(type, from, to).map((row) => [row.status, Number(row.n)])) as Record<string, number>;
  const problemJobs = ledger.problemJobs.all(type, from, to).map((row): ProblemJob => {
    const next = ledger.nextJob.get(row.shard_id, row.attempt);
    return {
      jobId: row.id,
      cycleId: Number(row.cycle_id),
      seq: Number(row.seq),
      status: row.status,
      error: row.error,
      createdAt: row.created_at,
      shardState: row.shard_state,
      nextJob: next ?? null,
    };
  });
  const holds = ledger.holds
    .all(type)
    .map((row): Hold => ({ cycleId: Number(row.cycle_id), seq: Number(row.seq), idCount: Number(row.id_count), reason: row.error, since: row.updated_at }));
  const confirmations = ledger.confirmations.all(type, from, to).map(
    (row): Confirmation => ({
      cycleId: row.cycle_id === null ? null : Number(row.cycle_id),
      seq: row.seq === null ? null : Number(row.seq),
      confirmedAt: row.confirmed_at,
      rowsDeleted: Number(row.deleted),
    }),
  );
  return { cycles, jobStatuses, problemJobs, holds, confirmations };
}

export type ReportHistory = ReturnType<typeof readReportHistory>;
