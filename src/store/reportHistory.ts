import type { JobType } from '../types.js';
import type { Db } from './open.js';

export interface ClosedCycle {
  id: number;
  trigger: string;
  startedAt: string;
  finishedAt: string;
  summary: { idsChecked?: number; byReason?: Record<string, Record<string, number>>; shards?: { failed: number } } | null;
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

/** The ledger's history of one type over a period, as the HTML report draws it. */
export function readReportHistory(db: Db, type: JobType, from: string, to: string) {
  const cycles = (
    db
      .prepare(
        `SELECT id, trigger, started_at, finished_at, summary_json FROM cs_cycles
         WHERE type = ? AND state = 'closed' AND trigger <> 'dry-run' AND finished_at >= ? AND finished_at <= ? ORDER BY finished_at, id`,
      )
      .all(type, from, to) as { id: bigint; trigger: string; started_at: string; finished_at: string; summary_json: string | null }[]
  ).map(
    (row): ClosedCycle => ({
      id: Number(row.id),
      trigger: row.trigger,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      summary: row.summary_json ? (JSON.parse(row.summary_json) as ClosedCycle['summary']) : null,
    }),
  );
  const jobStatuses = Object.fromEntries(
    (
      db.prepare('SELECT status, count(*) AS n FROM cs_jobs WHERE type = ? AND created_at >= ? AND created_at <= ? GROUP BY status').all(type, from, to) as {
        status: string;
        n: bigint;
      }[]
    ).map((row) => [row.status, Number(row.n)]),
  ) as Record<string, number>;
  const nextJob = db.prepare('SELECT id, status FROM cs_jobs WHERE shard_id = ? AND attempt > ? ORDER BY attempt LIMIT 1');
  const problemJobs = (
    db
      .prepare(
        `SELECT j.id, j.shard_id, j.attempt, j.status, j.error, j.created_at, s.seq, s.cycle_id, s.state AS shard_state
         FROM cs_jobs j JOIN cs_shards s ON s.id = j.shard_id
         WHERE j.type = ? AND j.status IN ('failed', 'expired') AND j.created_at >= ? AND j.created_at <= ? ORDER BY j.created_at`,
      )
      .all(type, from, to) as {
      id: string;
      shard_id: bigint;
      attempt: bigint;
      status: string;
      error: string | null;
      created_at: string;
      seq: bigint;
      cycle_id: bigint;
      shard_state: string;
    }[]
  ).map((row): ProblemJob => {
    const next = nextJob.get(row.shard_id, row.attempt) as { id: string; status: string } | undefined;
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
  const holds = (
    db
      .prepare(
        `SELECT s.cycle_id, s.seq, s.id_count, s.error, s.updated_at FROM cs_shards s JOIN cs_cycles c ON c.id = s.cycle_id
         WHERE c.type = ? AND s.state = 'held' ORDER BY s.cycle_id, s.seq`,
      )
      .all(type) as { cycle_id: bigint; seq: bigint; id_count: bigint; error: string | null; updated_at: string }[]
  ).map((row): Hold => ({ cycleId: Number(row.cycle_id), seq: Number(row.seq), idCount: Number(row.id_count), reason: row.error, since: row.updated_at }));
  const confirmations = (
    db
      .prepare(
        `SELECT s.cycle_id, s.seq, r.confirmed_at,
                (SELECT coalesce(sum(a.count), 0) FROM cs_audit_counts a WHERE a.run_id = r.id AND a.action_taken IN ('delete', 'cascade_delete')) AS deleted
         FROM cs_apply_runs r LEFT JOIN cs_shards s ON s.id = r.shard_id
         WHERE r.type = ? AND r.confirmed_at >= ? AND r.confirmed_at <= ? ORDER BY r.confirmed_at`,
      )
      .all(type, from, to) as { cycle_id: bigint | null; seq: bigint | null; confirmed_at: string; deleted: bigint }[]
  ).map(
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
