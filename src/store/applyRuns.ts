import { StoreError } from '../errors.js';
import type { ChangeCount } from './changeCounts.js';
import type { JobType } from '../types.js';
import type { Db } from './open.js';

/** A run's state in cs_apply_runs: `running` is also what an interrupted run looks like (it resumes from its checkpoint). */
export type ApplyRunState = 'running' | 'done' | 'held' | 'failed';

export interface ApplyRun {
  id: number;
  type: JobType;
  source: string;
  /** Size, mtime and inode of the file when the run began: a checkpoint counts lines of that file only. */
  sourceIdentity: string | null;
  shardId: number | null;
  state: ApplyRunState;
  asOf: string;
  checkpointLine: number;
  /** The run's running totals, committed with each checkpoint (null before the first batch). */
  countsJson: string | null;
}

interface RunRow {
  id: bigint;
  type: JobType;
  source: string;
  source_identity: string | null;
  shard_id: bigint | null;
  state: ApplyRunState;
  as_of: string;
  checkpoint_line: bigint;
  counts_json: string | null;
}

const fromRow = (r: RunRow): ApplyRun => ({
  id: Number(r.id),
  type: r.type,
  source: r.source,
  sourceIdentity: r.source_identity,
  shardId: r.shard_id === null ? null : Number(r.shard_id),
  state: r.state,
  asOf: r.as_of,
  checkpointLine: Number(r.checkpoint_line),
  countsJson: r.counts_json,
});

const RUN_COLUMNS = 'id, type, source, source_identity, shard_id, state, as_of, checkpoint_line, counts_json';

export function createApplyRun(
  db: Db,
  run: { type: JobType; source: string; sourceIdentity: string; shardId?: number; asOf: string; startedAt: string },
): ApplyRun {
  const info = db
    .prepare(`INSERT INTO cs_apply_runs (type, source, source_identity, shard_id, state, as_of, started_at) VALUES (?, ?, ?, ?, 'running', ?, ?)`)
    .run(run.type, run.source, run.sourceIdentity, run.shardId ?? null, run.asOf, run.startedAt);
  return getApplyRun(db, Number(info.lastInsertRowid))!;
}

export function getApplyRun(db: Db, id: number): ApplyRun | null {
  const row = db.prepare(`SELECT ${RUN_COLUMNS} FROM cs_apply_runs WHERE id = ?`).get(id) as RunRow | undefined;
  return row ? fromRow(row) : null;
}

/** The latest unfinished run of this file and type: what `apply` continues after a crash or Ctrl-C. */
export function findResumableApplyRun(db: Db, type: JobType, source: string): ApplyRun | null {
  const row = db
    .prepare(`SELECT ${RUN_COLUMNS} FROM cs_apply_runs WHERE type = ? AND source = ? AND state = 'running' ORDER BY id DESC LIMIT 1`)
    .get(type, source) as RunRow | undefined;
  return row ? fromRow(row) : null;
}

/** Loads a run to continue it; a finished run cannot be, and a held one starts again (the gate is checked anew). */
export function reopenApplyRun(db: Db, id: number, type: JobType): ApplyRun {
  const run = getApplyRun(db, id);
  if (!run) throw new StoreError('apply_run_missing', `apply run ${id} does not exist in this store`);
  if (run.type !== type) throw new StoreError('apply_run_type', `apply run ${id} applies ${run.type}, not ${type}`);
  if (run.state === 'done' || run.state === 'failed') {
    throw new StoreError('apply_run_finished', `apply run ${id} is already ${run.state}`, { hint: 'start a new run for the file' });
  }
  if (run.state === 'held') db.prepare(`UPDATE cs_apply_runs SET state = 'running', finished_at = NULL WHERE id = ?`).run(id);
  return { ...run, state: 'running' };
}

export function finishApplyRun(db: Db, id: number, state: Exclude<ApplyRunState, 'running'>, countsJson: string, finishedAt: string): void {
  db.prepare(`UPDATE cs_apply_runs SET state = ?, counts_json = ?, finished_at = ? WHERE id = ?`).run(state, countsJson, finishedAt, id);
}

/** Audit counts of one batch, per reason and action taken (delete | mark | scrub_geo | ignore | not_found | cascade_…). */
export type AuditCounts = Map<string, Map<string, number>>;

/**
 * The per-batch ledger writes, prepared once. `commit` must run inside the batch's own transaction: the checkpoint,
 * the totals and the audit then move together with the rows they describe, so a crash never counts a batch twice.
 */
export function prepareRunLedger(db: Db, runId: number) {
  const checkpoint = db.prepare(`UPDATE cs_apply_runs SET checkpoint_line = ?, counts_json = ? WHERE id = ?`);
  const audit = db.prepare(
    `INSERT INTO cs_audit_counts (run_id, reason, action_taken, count) VALUES (?, ?, ?, ?)
     ON CONFLICT (run_id, reason, action_taken) DO UPDATE SET count = count + excluded.count`,
  );
  const changed = db.prepare(
    `INSERT INTO cs_change_counts (run_id, table_name, cause, kind, count) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (run_id, table_name, cause, kind) DO UPDATE SET count = count + excluded.count`,
  );
  return {
    commit(line: number, countsJson: string, counts: AuditCounts, changes: readonly ChangeCount[] = []): void {
      checkpoint.run(line, countsJson, runId);
      for (const [reason, byAction] of counts) {
        for (const [action, n] of byAction) if (n > 0) audit.run(runId, reason, action, n);
      }
      for (const c of changes) if (c.count > 0) changed.run(runId, c.table, c.cause, c.kind, c.count);
    },
  };
}

/** A run's audit, for reports and tests. */
export function readAuditCounts(db: Db, runId: number): { reason: string; actionTaken: string; count: number }[] {
  const rows = db
    .prepare(`SELECT reason, action_taken, count FROM cs_audit_counts WHERE run_id = ? ORDER BY reason, action_taken`)
    .all(runId) as { reason: string; action_taken: string; count: bigint }[];
  return rows.map((r) => ({ reason: r.reason, actionTaken: r.action_taken, count: Number(r.count) }));
}

/** Gives up a run that cannot be resumed (its file changed): the next apply of that path starts over. */
export function abandonApplyRun(db: Db, id: number, finishedAt: string): void {
  db.prepare("UPDATE cs_apply_runs SET state = 'failed', finished_at = ? WHERE id = ? AND state = 'running'").run(finishedAt, id);
}

/** What identifies a results file's content cheaply: size, modification time and inode. */
export function fileIdentity(stats: { size: number; mtimeMs: number; ino: number }): string {
  return `${stats.size}:${Math.round(stats.mtimeMs)}:${stats.ino}`;
}

/** A run's rows changed per table, cause and kind. */
export function readChangeCounts(db: Db, runId: number): ChangeCount[] {
  const rows = db
    .prepare(`SELECT table_name, cause, kind, count FROM cs_change_counts WHERE run_id = ? ORDER BY table_name, kind, cause`)
    .all(runId) as { table_name: string; cause: ChangeCount['cause']; kind: ChangeCount['kind']; count: bigint }[];
  return rows.map((r) => ({ table: r.table_name, cause: r.cause, kind: r.kind, count: Number(r.count) }));
}

/** Records that a held run was applied on an operator's confirmation (--confirm-deletions). */
export function markApplyRunConfirmed(db: Db, id: number, at: string): void {
  db.prepare('UPDATE cs_apply_runs SET confirmed_at = ? WHERE id = ? AND confirmed_at IS NULL').run(at, id);
}
