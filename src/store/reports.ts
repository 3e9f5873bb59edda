import type { Config } from '../config/load.js';
import { JOB_TYPES, snowflakeTime, type JobType } from '../types.js';
import { addChanges, type ChangeCount, type ChangesByTable } from './changeCounts.js';
import { lastAudit, type RecordedAudit } from './audit.js';
import type { Db } from './open.js';
import { quoteIdent } from './schemaInfo.js';

export interface CycleProgress {
  type: JobType;
  cycleId: number;
  trigger: string;
  startedAt: string;
  shardsDone: number;
  shardsTotal: number;
  shardsHeld: number;
  activeShard: { seq: number; state: string; job: { id: string; status: string } | null } | null;
}

/** The unfinished cycles: how far each has come and what its active shard is doing. */
export function cyclesInProgress(db: Db): CycleProgress[] {
  const cycles = db
    .prepare("SELECT id, type, trigger, started_at, shard_count FROM cs_cycles WHERE state IN ('planning', 'running') ORDER BY type")
    .all() as { id: bigint; type: JobType; trigger: string; started_at: string; shard_count: bigint | null }[];
  const counts = db.prepare(
    `SELECT sum(state IN ('applied', 'failed')) AS done, sum(state = 'held') AS held FROM cs_shards WHERE cycle_id = ?`,
  );
  const active = db.prepare(
    `SELECT s.seq, s.state, j.id AS job_id, j.status AS job_status FROM cs_shards s LEFT JOIN cs_jobs j ON j.id = s.job_id
     WHERE s.cycle_id = ? AND s.state NOT IN ('applied', 'failed', 'held', 'planned') ORDER BY s.seq LIMIT 1`,
  );
  return cycles.map((cycle) => {
    const c = counts.get(cycle.id) as { done: bigint | null; held: bigint | null };
    const a = active.get(cycle.id) as { seq: bigint; state: string; job_id: string | null; job_status: string | null } | undefined;
    return {
      type: cycle.type,
      cycleId: Number(cycle.id),
      trigger: cycle.trigger,
      startedAt: cycle.started_at,
      shardsDone: Number(c.done ?? 0),
      shardsTotal: Number(cycle.shard_count ?? 0),
      shardsHeld: Number(c.held ?? 0),
      activeShard: a
        ? { seq: Number(a.seq), state: a.state, job: a.job_id ? { id: a.job_id, status: a.job_status ?? 'unknown' } : null }
        : null,
    };
  });
}

export interface TypeReport {
  type: JobType;
  cyclesClosed: number;
  idsChecked: number;
  jobsRun: number;
  actionsByReason: Record<string, Record<string, number>>;
  /** Rows changed by this type's runs, per table → kind (deleted, updated, marked, inserted) → cause. */
  tables: ChangesByTable;
  failures: { cycleId: number; seq: number; firstId: string; lastId: string; error: string; resolution: string }[];
  coverage: { storedRows: number; checkedRows: number; share: number; oldestUnchecked: { id: string; createdAt: string | null } | null };
}

export interface ComplianceReport {
  since: string;
  until: string;
  types: TypeReport[];
  /** The last `compliance-sync audit` (whenever it ran), or null when none is recorded. */
  lastAudit: RecordedAudit | null;
}

/**
 * What an archive owner files: per type, what was checked in the period, which jobs ran, what was done per reason,
 * what failed and what became of it, and how much of the store the period's checks covered.
 */
export function complianceReport(db: Db, config: Config, since: Date, until: Date): ComplianceReport {
  const from = since.toISOString();
  const to = until.toISOString();
  const types = JOB_TYPES.map((type): TypeReport => {
    const { table, id } = config.store.tables[type];
    const closed = db
      .prepare("SELECT summary_json FROM cs_cycles WHERE type = ? AND state = 'closed' AND trigger <> 'dry-run' AND finished_at >= ? AND finished_at <= ?")
      .pluck()
      .all(type, from, to) as string[];
    const idsChecked = closed.reduce((sum, json) => sum + Number((JSON.parse(json) as { idsChecked?: number }).idsChecked ?? 0), 0);
    const jobsRun = Number(
      db.prepare('SELECT count(*) FROM cs_jobs WHERE type = ? AND created_at >= ? AND created_at <= ?').pluck().get(type, from, to),
    );
    const actionsByReason: Record<string, Record<string, number>> = {};
    const audit = db
      .prepare(
        `SELECT a.reason, a.action_taken, sum(a.count) AS n FROM cs_audit_counts a JOIN cs_apply_runs r ON r.id = a.run_id
         WHERE r.type = ? AND r.started_at >= ? AND r.started_at <= ? GROUP BY a.reason, a.action_taken ORDER BY a.reason, a.action_taken`,
      )
      .all(type, from, to) as { reason: string; action_taken: string; n: bigint }[];
    for (const row of audit) (actionsByReason[row.reason] ??= {})[row.action_taken] = Number(row.n);
    const changed = db
      .prepare(
        `SELECT c.table_name, c.cause, c.kind, sum(c.count) AS n FROM cs_change_counts c JOIN cs_apply_runs r ON r.id = c.run_id
         WHERE r.type = ? AND r.started_at >= ? AND r.started_at <= ? GROUP BY c.table_name, c.cause, c.kind ORDER BY c.table_name, c.kind, c.cause`,
      )
      .all(type, from, to) as { table_name: string; cause: ChangeCount['cause']; kind: ChangeCount['kind']; n: bigint }[];
    const tables = addChanges({}, changed.map((row) => ({ table: row.table_name, cause: row.cause, kind: row.kind, count: Number(row.n) })));

    const applied = db
      .prepare(
        `SELECT s.first_id, s.last_id, c.id AS cycle_id FROM cs_shards s JOIN cs_cycles c ON c.id = s.cycle_id
         WHERE c.type = ? AND c.trigger <> 'dry-run' AND s.state = 'applied' AND c.started_at >= ? AND c.started_at <= ?
         ORDER BY s.first_id`,
      )
      .all(type, from, to) as { first_id: bigint; last_id: bigint; cycle_id: bigint }[];
    const failed = db
      .prepare(
        `SELECT s.first_id, s.last_id, s.seq, s.error, c.id AS cycle_id FROM cs_shards s JOIN cs_cycles c ON c.id = s.cycle_id
         WHERE c.type = ? AND c.trigger <> 'dry-run' AND s.state = 'failed' AND c.started_at >= ? AND c.started_at <= ? ORDER BY c.id, s.seq`,
      )
      .all(type, from, to) as { first_id: bigint; last_id: bigint; seq: bigint; error: string | null; cycle_id: bigint }[];
    const failures = failed.map((shard) => {
      const later = applied.find((a) => a.cycle_id > shard.cycle_id && a.first_id <= shard.first_id && a.last_id >= shard.last_id);
      return {
        cycleId: Number(shard.cycle_id),
        seq: Number(shard.seq),
        firstId: String(shard.first_id),
        lastId: String(shard.last_id),
        error: shard.error ?? 'unknown',
        resolution: later ? `checked again by cycle #${later.cycle_id}` : 'not checked again yet; the next cycle includes it',
      };
    });

    // Covered = rows inside the period's applied shard ranges (merged); the oldest unchecked row is the smallest ID
    // in a gap between them, found by one index lookup per gap rather than a table scan.
    const merged: { first: bigint; last: bigint }[] = [];
    for (const range of applied) {
      const top = merged[merged.length - 1];
      if (top && range.first_id <= top.last + 1n) top.last = range.last_id > top.last ? range.last_id : top.last;
      else merged.push({ first: range.first_id, last: range.last_id });
    }
    const [t, c] = [quoteIdent(table), quoteIdent(id)];
    const countIn = db.prepare(`SELECT count(*) FROM ${t} WHERE ${c} BETWEEN ? AND ?`).pluck();
    const firstAbove = db.prepare(`SELECT min(${c}) FROM ${t} WHERE ${c} > ? AND ${c} < ?`).pluck();
    const storedRows = Number(db.prepare(`SELECT count(*) FROM ${t}`).pluck().get());
    const checkedRows = merged.reduce((sum, r) => sum + Number(countIn.get(r.first, r.last)), 0);
    const firstAfter = db.prepare(`SELECT min(${c}) FROM ${t} WHERE ${c} > ?`).pluck();
    let oldest: bigint | null = null;
    let below = -1n;
    for (const range of merged) {
      oldest = firstAbove.get(below, range.first) as bigint | null;
      if (oldest !== null) break;
      below = range.last;
    }
    oldest ??= firstAfter.get(below) as bigint | null;
    return {
      type,
      cyclesClosed: closed.length,
      idsChecked,
      jobsRun,
      actionsByReason,
      tables,
      failures,
      coverage: {
        storedRows,
        checkedRows,
        share: storedRows ? checkedRows / storedRows : 1,
        oldestUnchecked: oldest === null ? null : { id: oldest.toString(), createdAt: snowflakeTime(oldest.toString())?.toISOString() ?? null },
      },
    };
  });
  return { since: from, until: to, types, lastAudit: lastAudit(db) };
}
