import type { Config } from '../config/load.js';
import { JOB_TYPES, snowflakeTime, type AuditAction, type JobType } from '../types.js';
import { lastAudit, type RecordedAudit } from './audit.js';
import { addChanges, type ChangeCause, type ChangeKind, type ChangesByTable } from './changeCounts.js';
import { cycleSummarySchema, parseLedgerJson } from './ledgerJson.js';
import type { Db } from './open.js';
import { perConnection } from './perConnection.js';
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
  const { openCycles, shardCounts, activeShard } = statementsOf(db);
  return openCycles.all().map((cycle) => {
    const shards = shardCounts.get(cycle.id)!;
    const active = activeShard.get(cycle.id);
    return {
      type: cycle.type,
      cycleId: Number(cycle.id),
      trigger: cycle.trigger,
      startedAt: cycle.started_at,
      shardsDone: Number(shards.done ?? 0),
      shardsTotal: Number(cycle.shard_count ?? 0),
      shardsHeld: Number(shards.held ?? 0),
      activeShard: active
        ? { seq: Number(active.seq), state: active.state, job: active.job_id ? { id: active.job_id, status: active.job_status ?? 'unknown' } : null }
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
  const ledger = statementsOf(db);
  const types = JOB_TYPES.map((type): TypeReport => {
    const { table, id } = config.store.tables[type];
    const closed = ledger.closedSummaries.all(type, from, to);
    const idsChecked = closed.reduce(
      (sum, row) =>
        sum + (row.summary_json === null ? 0 : parseLedgerJson(cycleSummarySchema, row.summary_json, `cs_cycles.summary_json of cycle ${row.id}`).idsChecked),
      0,
    );
    const jobsRun = Number(ledger.jobsCreated.get(type, from, to));
    const actionsByReason: Record<string, Record<string, number>> = {};
    for (const row of ledger.auditOfPeriod.all(type, from, to)) (actionsByReason[row.reason] ??= {})[row.action_taken] = Number(row.n);
    const changed = ledger.changesOfPeriod.all(type, from, to);
    const tables = addChanges({}, changed.map((row) => ({ table: row.table_name, cause: row.cause, kind: row.kind, count: Number(row.n) })));

    const applied = ledger.appliedShards.all(type, from, to);
    const failed = ledger.failedShards.all(type, from, to);
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
    const [mappedTable, idColumn] = [quoteIdent(table), quoteIdent(id)];
    const countIn = db.prepare(`SELECT count(*) FROM ${mappedTable} WHERE ${idColumn} BETWEEN ? AND ?`).pluck();
    const firstAbove = db.prepare(`SELECT min(${idColumn}) FROM ${mappedTable} WHERE ${idColumn} > ? AND ${idColumn} < ?`).pluck();
    const storedRows = Number(db.prepare(`SELECT count(*) FROM ${mappedTable}`).pluck().get());
    const checkedRows = merged.reduce((sum, r) => sum + Number(countIn.get(r.first, r.last)), 0);
    const firstAfter = db.prepare(`SELECT min(${idColumn}) FROM ${mappedTable} WHERE ${idColumn} > ?`).pluck();
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

type Period = [type: JobType, from: string, to: string];

const statementsOf = perConnection((db: Db) => ({
  openCycles: db.prepare<[], { id: bigint; type: JobType; trigger: string; started_at: string; shard_count: bigint | null }>(
    "SELECT id, type, trigger, started_at, shard_count FROM cs_cycles WHERE state IN ('planning', 'running') ORDER BY type",
  ),
  shardCounts: db.prepare<[cycleId: bigint], { done: bigint | null; held: bigint | null }>(
    `SELECT sum(state IN ('applied', 'failed')) AS done, sum(state = 'held') AS held FROM cs_shards WHERE cycle_id = ?`,
  ),
  activeShard: db.prepare<[cycleId: bigint], { seq: bigint; state: string; job_id: string | null; job_status: string | null }>(
    `SELECT s.seq, s.state, j.id AS job_id, j.status AS job_status FROM cs_shards s LEFT JOIN cs_jobs j ON j.id = s.job_id
     WHERE s.cycle_id = ? AND s.state NOT IN ('applied', 'failed', 'held', 'planned') ORDER BY s.seq LIMIT 1`,
  ),
  closedSummaries: db.prepare<Period, { id: bigint; summary_json: string | null }>(
    "SELECT id, summary_json FROM cs_cycles WHERE type = ? AND state = 'closed' AND trigger <> 'dry-run' AND finished_at >= ? AND finished_at <= ?",
  ),
  jobsCreated: db.prepare<Period, bigint>('SELECT count(*) FROM cs_jobs WHERE type = ? AND created_at >= ? AND created_at <= ?').pluck(),
  auditOfPeriod: db.prepare<Period, { reason: string; action_taken: AuditAction; n: bigint }>(
    `SELECT a.reason, a.action_taken, sum(a.count) AS n FROM cs_audit_counts a JOIN cs_apply_runs r ON r.id = a.run_id
     WHERE r.type = ? AND r.started_at >= ? AND r.started_at <= ? GROUP BY a.reason, a.action_taken ORDER BY a.reason, a.action_taken`,
  ),
  changesOfPeriod: db.prepare<Period, { table_name: string; cause: ChangeCause; kind: ChangeKind; n: bigint }>(
    `SELECT c.table_name, c.cause, c.kind, sum(c.count) AS n FROM cs_change_counts c JOIN cs_apply_runs r ON r.id = c.run_id
     WHERE r.type = ? AND r.started_at >= ? AND r.started_at <= ? GROUP BY c.table_name, c.cause, c.kind ORDER BY c.table_name, c.kind, c.cause`,
  ),
  appliedShards: db.prepare<Period, { first_id: bigint; last_id: bigint; cycle_id: bigint }>(
    `SELECT s.first_id, s.last_id, c.id AS cycle_id FROM cs_shards s JOIN cs_cycles c ON c.id = s.cycle_id
     WHERE c.type = ? AND c.trigger <> 'dry-run' AND s.state = 'applied' AND c.started_at >= ? AND c.started_at <= ?
     ORDER BY s.first_id`,
  ),
  failedShards: db.prepare<Period, { first_id: bigint; last_id: bigint; seq: bigint; error: string | null; cycle_id: bigint }>(
    `SELECT s.first_id, s.last_id, s.seq, s.error, c.id AS cycle_id FROM cs_shards s JOIN cs_cycles c ON c.id = s.cycle_id
     WHERE c.type = ? AND c.trigger <> 'dry-run' AND s.state = 'failed' AND c.started_at >= ? AND c.started_at <= ? ORDER BY c.id, s.seq`,
  ),
}));
