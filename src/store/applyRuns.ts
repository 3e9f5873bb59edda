import { StoreError } from '../errors.js';
import type { AuditAction, JobType } from '../types.js';
import { addToActionTotals, emptyActionTotals, type ActionTotals, type AuditCounts } from './auditCounts.js';
import { addChanges, type ChangeCause, type ChangeCount, type ChangeKind, type ChangesByTable } from './changeCounts.js';
import { applyRunCountsSchema, parseLedgerJson, type ApplyRunCounts } from './ledgerJson.js';
import type { Db } from './open.js';
import { perConnection } from './perConnection.js';

/** A run's state in cs_apply_runs: `running` is also what an interrupted run looks like (it resumes from its checkpoint). */
export const APPLY_RUN_STATES = ['running', 'done', 'held', 'failed'] as const;
export type ApplyRunState = (typeof APPLY_RUN_STATES)[number];

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
  /** What the run has read, committed with each checkpoint (null before the first batch). */
  counts: ApplyRunCounts | null;
}

/** Everything a run has committed: what it read (counts_json), what it did (the audit) and the rows it changed. */
export interface ApplyRunTotals extends ActionTotals {
  counts: ApplyRunCounts | null;
  changes: ChangesByTable;
}

/** One batch's record in the ledger, committed in the batch's own transaction. */
export interface BatchRecord {
  checkpointLine: number;
  counts: ApplyRunCounts;
  audit: AuditCounts;
  changes: readonly ChangeCount[];
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

const RUN_COLUMNS = 'id, type, source, source_identity, shard_id, state, as_of, checkpoint_line, counts_json';

const toRun = (row: RunRow): ApplyRun => ({
  id: Number(row.id),
  type: row.type,
  source: row.source,
  sourceIdentity: row.source_identity,
  shardId: row.shard_id === null ? null : Number(row.shard_id),
  state: row.state,
  asOf: row.as_of,
  checkpointLine: Number(row.checkpoint_line),
  counts: row.counts_json === null ? null : parseLedgerJson(applyRunCountsSchema, row.counts_json, `cs_apply_runs.counts_json of run ${row.id}`),
});

/** counts_json as written: the schema's fields only, whatever else the caller's object carries. */
const countsJson = (counts: ApplyRunCounts): string =>
  JSON.stringify({ linesRead: counts.linesRead, records: counts.records, rejected: counts.rejected, ...(counts.cut ? { cut: counts.cut } : {}) });

function prepareStatements(db: Db) {
  return {
    insert: db.prepare<[type: JobType, source: string, sourceIdentity: string, shardId: number | null, asOf: string, startedAt: string]>(
      "INSERT INTO cs_apply_runs (type, source, source_identity, shard_id, state, as_of, started_at) VALUES (?, ?, ?, ?, 'running', ?, ?)",
    ),
    byId: db.prepare<[id: number], RunRow>(`SELECT ${RUN_COLUMNS} FROM cs_apply_runs WHERE id = ?`),
    resumable: db.prepare<[type: JobType, source: string], RunRow>(
      `SELECT ${RUN_COLUMNS} FROM cs_apply_runs WHERE type = ? AND source = ? AND state = 'running' ORDER BY id DESC LIMIT 1`,
    ),
    latestOfShard: db.prepare<[shardId: number], RunRow>(`SELECT ${RUN_COLUMNS} FROM cs_apply_runs WHERE shard_id = ? ORDER BY id DESC LIMIT 1`),
    reopenHeld: db.prepare<[id: number]>("UPDATE cs_apply_runs SET state = 'running', finished_at = NULL WHERE id = ? AND state = 'held'"),
    finish: db.prepare<[state: Exclude<ApplyRunState, 'running'>, countsJson: string, finishedAt: string, id: number]>(
      'UPDATE cs_apply_runs SET state = ?, counts_json = ?, finished_at = ? WHERE id = ?',
    ),
    giveUp: db.prepare<[finishedAt: string, id: number]>(
      "UPDATE cs_apply_runs SET state = 'failed', finished_at = ? WHERE id = ? AND state IN ('running', 'held')",
    ),
    confirm: db.prepare<[at: string, id: number]>('UPDATE cs_apply_runs SET confirmed_at = ? WHERE id = ? AND confirmed_at IS NULL'),
    checkpoint: db.prepare<[line: number, countsJson: string, id: number]>('UPDATE cs_apply_runs SET checkpoint_line = ?, counts_json = ? WHERE id = ?'),
    addAudit: db.prepare<[runId: number, reason: string, action: AuditAction, count: number]>(
      `INSERT INTO cs_audit_counts (run_id, reason, action_taken, count) VALUES (?, ?, ?, ?)
       ON CONFLICT (run_id, reason, action_taken) DO UPDATE SET count = count + excluded.count`,
    ),
    addChanges: db.prepare<[runId: number, table: string, cause: ChangeCause, kind: ChangeKind, count: number]>(
      `INSERT INTO cs_change_counts (run_id, table_name, cause, kind, count) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (run_id, table_name, cause, kind) DO UPDATE SET count = count + excluded.count`,
    ),
    audit: db.prepare<[runId: number], { reason: string; action_taken: AuditAction; count: bigint }>(
      'SELECT reason, action_taken, count FROM cs_audit_counts WHERE run_id = ? ORDER BY reason, action_taken',
    ),
    changes: db.prepare<[runId: number], { table_name: string; cause: ChangeCause; kind: ChangeKind; count: bigint }>(
      'SELECT table_name, cause, kind, count FROM cs_change_counts WHERE run_id = ? ORDER BY table_name, kind, cause',
    ),
  };
}

/**
 * The apply runs of one connection (cs_apply_runs with their audit and change counts), prepared on first use. Not
 * asked for by a dry run: the store it reads may have no ledger yet.
 */
export const applyRunsOf = perConnection((db) => new ApplyRuns(db));

/** Every statement on cs_apply_runs, cs_audit_counts and cs_change_counts; get one with applyRunsOf. */
export class ApplyRuns {
  private readonly statements;
  private readonly commitInTransaction;

  constructor(db: Db) {
    this.statements = prepareStatements(db);
    this.commitInTransaction = db.transaction((runId: number, work: () => BatchRecord): BatchRecord => {
      const record = work();
      this.recordBatch(runId, record);
      return record;
    });
  }

  create(run: { type: JobType; source: string; sourceIdentity: string; shardId?: number; asOf: string; startedAt: string }): ApplyRun {
    const info = this.statements.insert.run(run.type, run.source, run.sourceIdentity, run.shardId ?? null, run.asOf, run.startedAt);
    return this.get(Number(info.lastInsertRowid))!;
  }

  get(id: number): ApplyRun | null {
    const row = this.statements.byId.get(id);
    return row ? toRun(row) : null;
  }

  /** The latest unfinished run of this file and type: what `apply` continues after a crash or Ctrl-C. */
  findResumable(type: JobType, source: string): ApplyRun | null {
    const row = this.statements.resumable.get(type, source);
    return row ? toRun(row) : null;
  }

  /**
   * The shard's latest run, whatever its state: a crash can fall between the run's end and the shard's transition,
   * and a finished run must then be recognised rather than applied again.
   */
  latestOfShard(shardId: number): ApplyRun | null {
    const row = this.statements.latestOfShard.get(shardId);
    return row ? toRun(row) : null;
  }

  /** Loads a run to continue it; a finished run cannot be, and a held one starts again (the gate is checked anew). */
  reopen(id: number, type: JobType): ApplyRun {
    const run = this.get(id);
    if (!run) throw new StoreError('apply_run_missing', `apply run ${id} does not exist in this store`);
    if (run.type !== type) throw new StoreError('apply_run_type', `apply run ${id} applies ${run.type}, not ${type}`);
    if (run.state === 'done' || run.state === 'failed') {
      throw new StoreError('apply_run_finished', `apply run ${id} is already ${run.state}`, { hint: 'start a new run for the file' });
    }
    this.statements.reopenHeld.run(id);
    return { ...run, state: 'running' };
  }

  finish(id: number, state: Exclude<ApplyRunState, 'running'>, counts: ApplyRunCounts, finishedAt: string): void {
    this.statements.finish.run(state, countsJson(counts), finishedAt, id);
  }

  /**
   * Gives up an unfinished run (running, or held by the safety gate) whose checkpoint no longer means anything: the
   * results file it counts lines of is gone or was replaced. The next apply of that file starts over. A finished
   * run (done or failed) is left as it is.
   */
  giveUp(id: number, finishedAt: string): void {
    this.statements.giveUp.run(finishedAt, id);
  }

  /** Records that a held run was applied on an operator's confirmation (--confirm-deletions). */
  markConfirmed(id: number, at: string): void {
    this.statements.confirm.run(at, id);
  }

  /**
   * Runs one batch's `work` (the content changes) and records what it returns — the checkpoint, the counts, the
   * audit and the rows changed — in one IMMEDIATE transaction: they move together with the rows they describe, so a
   * crash never counts a batch twice. `work` must be synchronous.
   */
  commitBatch(runId: number, work: () => BatchRecord): BatchRecord {
    return this.commitInTransaction.immediate(runId, work);
  }

  /** A run's audit, per reason and audit action. */
  auditCounts(runId: number): { reason: string; actionTaken: AuditAction; count: number }[] {
    return this.statements.audit.all(runId).map((row) => ({ reason: row.reason, actionTaken: row.action_taken, count: Number(row.count) }));
  }

  /** A run's rows changed per table, cause and kind. */
  changeCounts(runId: number): ChangeCount[] {
    return this.statements.changes.all(runId).map((row) => ({ table: row.table_name, cause: row.cause, kind: row.kind, count: Number(row.count) }));
  }

  /** Everything the run has committed, to carry on from (a resumed run reports the whole file). */
  totals(run: ApplyRun): ApplyRunTotals {
    const actions = emptyActionTotals();
    for (const row of this.auditCounts(run.id)) addToActionTotals(actions, row.actionTaken, row.count);
    return { ...actions, counts: run.counts, changes: addChanges({}, this.changeCounts(run.id)) };
  }

  private recordBatch(runId: number, record: BatchRecord): void {
    this.statements.checkpoint.run(record.checkpointLine, countsJson(record.counts), runId);
    for (const [reason, byAction] of record.audit) {
      for (const [action, n] of byAction) if (n > 0) this.statements.addAudit.run(runId, reason, action, n);
    }
    for (const change of record.changes) if (change.count > 0) this.statements.addChanges.run(runId, change.table, change.cause, change.kind, change.count);
  }
}

/**
 * A dry run's batch: `work` runs inside a transaction that is always rolled back, so it sees its own changes (a
 * cascade finds the rows a delete left) and leaves nothing behind.
 */
export function runRolledBack<T>(db: Db, work: () => T): T {
  db.exec('BEGIN');
  try {
    return work();
  } finally {
    db.exec('ROLLBACK');
  }
}

/** What identifies a results file's content cheaply: size, modification time and inode. */
export function fileIdentity(stats: { size: number; mtimeMs: number; ino: number }): string {
  return `${stats.size}:${Math.round(stats.mtimeMs)}:${stats.ino}`;
}
