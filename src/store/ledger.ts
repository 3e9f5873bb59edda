import { randomBytes } from 'node:crypto';
import type { AuditAction, JobType } from '../types.js';
import { applyRunsOf, type ApplyRuns } from './applyRuns.js';
import { abandonedCycleSchema, applyRunCountsSchema, cycleSummarySchema, parseLedgerJson, type AbandonedCycle, type ApplyRunCounts, type CycleSummary } from './ledgerJson.js';
import type { Db } from './open.js';
import { perConnection } from './perConnection.js';

/** A shard's position in the pipeline; every transition is committed before the next side effect. */
export const SHARD_STATES = ['planned', 'exported', 'job_created', 'uploaded', 'complete', 'downloaded', 'applied', 'held', 'failed'] as const;
export type ShardState = (typeof SHARD_STATES)[number];

/** A cycle is `planning` until its shards are recorded, `running` until every shard is applied or failed. */
export const CYCLE_STATES = ['planning', 'running', 'closed', 'abandoned'] as const;
export type CycleState = (typeof CYCLE_STATES)[number];

/**
 * What started a cycle: the daemon's `schedule`, a `catch-up` of a run missed while down (or retried after the store
 * was busy), an operator's `manual` run (`reconcile --now`, `demo`, SIGUSR1), or a `dry-run` (never counted as a check).
 */
export const CYCLE_TRIGGERS = ['schedule', 'catch-up', 'manual', 'dry-run'] as const;
export type CycleTrigger = (typeof CYCLE_TRIGGERS)[number];

export interface CycleRecord {
  id: number;
  type: JobType;
  state: CycleState;
  trigger: CycleTrigger;
  startedAt: string;
  maxId: string | null;
  idCount: number | null;
  shardCount: number | null;
  finishedAt: string | null;
}

export interface ShardRecord {
  id: number;
  cycleId: number;
  seq: number;
  firstId: string;
  lastId: string;
  idCount: number;
  state: ShardState;
  attempts: number;
  jobId: string | null;
  applyRunId: number | null;
  error: string | null;
  /** The name of the job the shard was about to create, recorded before the create call. */
  pendingJobName: string | null;
}

export interface CycleWithSummary extends CycleRecord {
  summary: CycleSummary | AbandonedCycle | null;
}

export interface JobRecord {
  id: string;
  shardId: number;
  attempt: number;
  type: JobType;
  name: string;
  status: string;
  createdAt: string;
  uploadExpiresAt: string;
  downloadExpiresAt: string;
  polls: number;
  error: string | null;
}

interface CycleRow {
  id: bigint;
  type: JobType;
  state: CycleState;
  trigger: CycleTrigger;
  started_at: string;
  max_id: bigint | null;
  id_count: bigint | null;
  shard_count: bigint | null;
  finished_at: string | null;
  summary_json: string | null;
}

interface ShardRow {
  id: bigint;
  cycle_id: bigint;
  seq: bigint;
  first_id: bigint;
  last_id: bigint;
  id_count: bigint;
  state: ShardState;
  attempts: bigint;
  job_id: string | null;
  apply_run_id: bigint | null;
  error: string | null;
  pending_job_name: string | null;
}

interface JobRow {
  id: string;
  shard_id: bigint;
  attempt: bigint;
  type: JobType;
  name: string;
  status: string;
  created_at: string;
  upload_expires_at: string;
  download_expires_at: string;
  polls: bigint;
  error: string | null;
}

interface ScheduleRow {
  last_started_at: string | null;
  last_success_at: string | null;
  next_run_at: string | null;
}

const CYCLE_COLUMNS = 'id, type, state, trigger, started_at, max_id, id_count, shard_count, finished_at, summary_json';

const toCycle = (row: CycleRow): CycleRecord => ({
  id: Number(row.id),
  type: row.type,
  state: row.state,
  trigger: row.trigger,
  startedAt: row.started_at,
  maxId: row.max_id === null ? null : String(row.max_id),
  idCount: row.id_count === null ? null : Number(row.id_count),
  shardCount: row.shard_count === null ? null : Number(row.shard_count),
  finishedAt: row.finished_at,
});

/** A cycle with what it reported: the summary of a closed cycle, or why an abandoned one was given up. */
const toCycleWithSummary = (row: CycleRow): CycleWithSummary => {
  const cycle = toCycle(row);
  if (row.summary_json === null) return { ...cycle, summary: null };
  const where = `cs_cycles.summary_json of cycle ${cycle.id}`;
  return cycle.state === 'abandoned'
    ? { ...cycle, summary: parseLedgerJson(abandonedCycleSchema, row.summary_json, where) }
    : { ...cycle, summary: parseLedgerJson(cycleSummarySchema, row.summary_json, where) };
};

const toShard = (row: ShardRow): ShardRecord => ({
  id: Number(row.id),
  cycleId: Number(row.cycle_id),
  seq: Number(row.seq),
  firstId: String(row.first_id),
  lastId: String(row.last_id),
  idCount: Number(row.id_count),
  state: row.state,
  attempts: Number(row.attempts),
  jobId: row.job_id,
  applyRunId: row.apply_run_id === null ? null : Number(row.apply_run_id),
  error: row.error,
  pendingJobName: row.pending_job_name,
});

const toJob = (row: JobRow): JobRecord => ({
  id: row.id,
  shardId: Number(row.shard_id),
  attempt: Number(row.attempt),
  type: row.type,
  name: row.name,
  status: row.status,
  createdAt: row.created_at,
  uploadExpiresAt: row.upload_expires_at,
  downloadExpiresAt: row.download_expires_at,
  polls: Number(row.polls),
  error: row.error,
});

function prepareStatements(db: Db) {
  return {
    storeId: db.prepare<[], { store_id: string }>('SELECT store_id FROM cs_store'),
    identity: db.prepare<[], { store_id: string; bound_path: string | null; bound_file: string | null }>('SELECT store_id, bound_path, bound_file FROM cs_store'),
    bindIdentity: db.prepare<[storeId: string, path: string, file: string]>('UPDATE cs_store SET store_id = ?, bound_path = ?, bound_file = ?'),
    setPendingJobName: db.prepare<[name: string, at: string, shardId: number]>('UPDATE cs_shards SET pending_job_name = ?, updated_at = ? WHERE id = ?'),
    openCycle: db.prepare<[type: JobType], CycleRow>(`SELECT ${CYCLE_COLUMNS} FROM cs_cycles WHERE type = ? AND state IN ('planning', 'running')`),
    cycle: db.prepare<[id: number], CycleRow>(`SELECT ${CYCLE_COLUMNS} FROM cs_cycles WHERE id = ?`),
    insertCycle: db.prepare<[type: JobType, trigger: CycleTrigger, at: string]>(
      "INSERT INTO cs_cycles (type, state, trigger, started_at) VALUES (?, 'planning', ?, ?)",
    ),
    planCycle: db.prepare<[maxId: string | null, idCount: number, shardCount: number, id: number]>(
      "UPDATE cs_cycles SET state = 'running', max_id = ?, id_count = ?, shard_count = ? WHERE id = ?",
    ),
    closeCycle: db.prepare<[at: string, summaryJson: string, id: number]>(
      "UPDATE cs_cycles SET state = 'closed', finished_at = ?, summary_json = ? WHERE id = ?",
    ),
    abandonCycle: db.prepare<[at: string, summaryJson: string, id: number]>(
      "UPDATE cs_cycles SET state = 'abandoned', finished_at = ?, summary_json = ? WHERE id = ?",
    ),
    recentCycles: db.prepare<[limit: number], CycleRow>(`SELECT ${CYCLE_COLUMNS} FROM cs_cycles ORDER BY id DESC LIMIT ?`),
    unreportedCycle: db.prepare<[type: JobType], CycleRow>(
      `SELECT ${CYCLE_COLUMNS} FROM cs_cycles WHERE type = ? AND state = 'closed' AND reported_at IS NULL ORDER BY id DESC LIMIT 1`,
    ),
    markReported: db.prepare<[at: string, id: number]>('UPDATE cs_cycles SET reported_at = ? WHERE id = ? AND reported_at IS NULL'),
    insertShard: db.prepare<[cycleId: number, seq: number, firstId: string, lastId: string, idCount: number, at: string]>(
      "INSERT INTO cs_shards (cycle_id, seq, first_id, last_id, id_count, state, updated_at) VALUES (?, ?, ?, ?, ?, 'planned', ?)",
    ),
    shards: db.prepare<[cycleId: number], ShardRow>('SELECT * FROM cs_shards WHERE cycle_id = ? ORDER BY seq'),
    shard: db.prepare<[id: number], ShardRow>('SELECT * FROM cs_shards WHERE id = ?'),
    setShard: db.prepare<[state: ShardState, error: string | null, at: string, id: number]>(
      'UPDATE cs_shards SET state = ?, error = ?, updated_at = ? WHERE id = ?',
    ),
    setShardCount: db.prepare<[idCount: number, at: string, id: number]>('UPDATE cs_shards SET id_count = ?, updated_at = ? WHERE id = ?'),
    // max(): adopting an orphan named for an earlier attempt must not hand back attempts already spent.
    setShardJob: db.prepare<[jobId: string, attempt: number, at: string, id: number]>(
      "UPDATE cs_shards SET state = 'job_created', job_id = ?, attempts = max(attempts, ?), error = NULL, updated_at = ? WHERE id = ?",
    ),
    setShardRun: db.prepare<[runId: number, at: string, id: number]>('UPDATE cs_shards SET apply_run_id = ?, updated_at = ? WHERE id = ?'),
    insertJob: db.prepare<
      [
        id: string,
        shardId: number,
        attempt: number,
        type: JobType,
        name: string,
        status: string,
        createdAt: string,
        uploadExpiresAt: string,
        downloadExpiresAt: string,
        at: string,
      ]
    >(
      `INSERT INTO cs_jobs (id, shard_id, attempt, type, name, status, created_at, upload_expires_at, download_expires_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at`,
    ),
    job: db.prepare<[id: string], JobRow>('SELECT * FROM cs_jobs WHERE id = ?'),
    setJob: db.prepare<[status: string, error: string | null, polls: number, at: string, id: string]>(
      'UPDATE cs_jobs SET status = ?, error = ?, polls = polls + ?, updated_at = ? WHERE id = ?',
    ),
    jobsOfCycle: db.prepare<[cycleId: number], JobRow>(
      'SELECT j.* FROM cs_jobs j JOIN cs_shards s ON s.id = j.shard_id WHERE s.cycle_id = ? ORDER BY j.created_at',
    ),
    runCounts: db
      .prepare<[cycleId: number], { id: bigint; counts_json: string }>(
        `SELECT r.id, r.counts_json FROM cs_apply_runs r JOIN cs_shards s ON s.apply_run_id = r.id
         WHERE s.cycle_id = ? AND r.counts_json IS NOT NULL`,
      ),
    auditOfCycle: db.prepare<[cycleId: number], { reason: string; action_taken: AuditAction; n: bigint }>(
      `SELECT a.reason, a.action_taken, sum(a.count) AS n FROM cs_audit_counts a
       JOIN cs_shards s ON s.apply_run_id = a.run_id WHERE s.cycle_id = ? GROUP BY a.reason, a.action_taken`,
    ),
    schedule: db.prepare<[type: JobType], ScheduleRow>('SELECT last_started_at, last_success_at, next_run_at FROM cs_schedule WHERE type = ?'),
    scheduleStarted: db.prepare<[type: JobType, at: string]>(
      'INSERT INTO cs_schedule (type, last_started_at) VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET last_started_at = excluded.last_started_at',
    ),
    scheduleNext: db.prepare<[type: JobType, at: string | null]>(
      'INSERT INTO cs_schedule (type, next_run_at) VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET next_run_at = excluded.next_run_at',
    ),
    scheduleSucceeded: db.prepare<[type: JobType, at: string]>(
      'INSERT INTO cs_schedule (type, last_success_at) VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET last_success_at = excluded.last_success_at',
    ),
  };
}

/** The ledger of one connection, its statements prepared on first use and kept with it. */
export const ledgerOf = perConnection((db) => new Ledger(db));

/**
 * Every statement on the cycle, shard, job and schedule tables, prepared once per connection (get it with ledgerOf);
 * the apply runs are `runs`. A step that changes several rows is one method owning its transaction.
 */
export class Ledger {
  private readonly statements;

  constructor(private readonly db: Db) {
    this.statements = prepareStatements(db);
  }

  /** The apply runs (cs_apply_runs, their audit and change counts) of the same connection. */
  get runs(): ApplyRuns {
    return applyRunsOf(this.db);
  }

  storeId(): string {
    return this.statements.storeId.get()!.store_id;
  }

  /**
   * Binds the store's identity to where it lives (its real path and the device:inode of its file). A store found
   * elsewhere than it was bound — a restored backup, a staging copy, a moved file — takes a new identity, so its job
   * names can never be another copy's; its ledger is kept. A store never bound before (new, or from before
   * binding existed) takes a new identity too: copies made before it was bound would otherwise share one.
   * Returns the identity in force and, when it changed, the one before.
   */
  bindIdentity(location: { path: string; file: string }): { storeId: string; previous: string | null; boundPath: string | null } {
    const row = this.statements.identity.get()!;
    if (row.bound_path === location.path && row.bound_file === location.file) return { storeId: row.store_id, previous: null, boundPath: row.bound_path };
    const storeId = randomBytes(6).toString('hex');
    this.statements.bindIdentity.run(storeId, location.path, location.file);
    return { storeId, previous: row.store_id, boundPath: row.bound_path };
  }

  /** Records the name of the job the shard is about to create (see cs_shards.pending_job_name). */
  setPendingJobName(shardId: number, name: string, now: Date): void {
    this.statements.setPendingJobName.run(name, now.toISOString(), shardId);
  }

  openCycle(type: JobType): CycleRecord | null {
    const row = this.statements.openCycle.get(type);
    return row ? toCycle(row) : null;
  }

  cycle(id: number): CycleRecord {
    return toCycle(this.statements.cycle.get(id)!);
  }

  /** A cycle's state, or null if there is no such cycle. */
  cycleState(id: number): CycleState | null {
    return this.statements.cycle.get(id)?.state ?? null;
  }

  recentCycles(limit: number): CycleWithSummary[] {
    return this.statements.recentCycles.all(limit).map(toCycleWithSummary);
  }

  /** The latest closed cycle of the type whose outcome nobody has reported yet (its run was stopped first). */
  unreportedCycle(type: JobType): (CycleRecord & { summary: CycleSummary | null }) | null {
    const row = this.statements.unreportedCycle.get(type);
    return row ? { ...toCycle(row), summary: row.summary_json === null ? null : parseLedgerJson(cycleSummarySchema, row.summary_json, `cs_cycles.summary_json of cycle ${row.id}`) } : null;
  }

  /** The cycles' outcomes reached whoever ran them. */
  markCyclesReported(cycleIds: readonly number[], now: Date): void {
    this.db.transaction(() => {
      for (const id of cycleIds) this.statements.markReported.run(now.toISOString(), id);
    })();
  }

  startCycle(type: JobType, trigger: CycleTrigger, now: Date): CycleRecord {
    const id = Number(this.statements.insertCycle.run(type, trigger, now.toISOString()).lastInsertRowid);
    return this.cycle(id);
  }

  /** Records the plan — the snapshot and every shard — in one transaction, before any API call. */
  recordPlan(cycleId: number, plan: { maxId: string | null; idCount: number; shards: { firstId: string; lastId: string; idCount: number }[] }, now: Date): void {
    this.db.transaction(() => {
      plan.shards.forEach((shard, index) => {
        this.statements.insertShard.run(cycleId, index + 1, shard.firstId, shard.lastId, shard.idCount, now.toISOString());
      });
      this.statements.planCycle.run(plan.maxId, plan.idCount, plan.shards.length, cycleId);
    })();
  }

  closeCycle(cycleId: number, summary: CycleSummary, now: Date): void {
    this.statements.closeCycle.run(now.toISOString(), JSON.stringify(summary), cycleId);
  }

  /** Gives up an open cycle, saying why (its summary_json is `{ abandoned: reason }`). */
  abandonCycle(cycleId: number, reason: string, now: Date): void {
    const summary: AbandonedCycle = { abandoned: reason };
    this.statements.abandonCycle.run(now.toISOString(), JSON.stringify(summary), cycleId);
  }

  shards(cycleId: number): ShardRecord[] {
    return this.statements.shards.all(cycleId).map(toShard);
  }

  shard(id: number): ShardRecord {
    return toShard(this.statements.shard.get(id)!);
  }

  setShardState(shardId: number, state: ShardState, now: Date, error: string | null = null): void {
    this.statements.setShard.run(state, error, now.toISOString(), shardId);
  }

  setShardIdCount(shardId: number, idCount: number, now: Date): void {
    this.statements.setShardCount.run(idCount, now.toISOString(), shardId);
  }

  /** The shard's exported ID count and its next state (`applied` when the range emptied since planning), together. */
  recordExport(shardId: number, idCount: number, state: 'exported' | 'applied', now: Date): void {
    this.db.transaction(() => {
      this.statements.setShardCount.run(idCount, now.toISOString(), shardId);
      this.statements.setShard.run(state, null, now.toISOString(), shardId);
    })();
  }

  /** The shard's apply run and the state it left the shard in (applied, or held by the gate), together. */
  recordApplyOutcome(shardId: number, runId: number, state: 'applied' | 'held', error: string | null, now: Date): void {
    this.db.transaction(() => {
      this.statements.setShardRun.run(runId, now.toISOString(), shardId);
      this.statements.setShard.run(state, error, now.toISOString(), shardId);
    })();
  }

  /** The shard's job ended without results: its final status, and the shard back to `exported` for a new job. */
  retireJob(shardId: number, jobId: string | null, jobStatus: string, error: string, now: Date): void {
    this.db.transaction(() => {
      if (jobId) this.statements.setJob.run(jobStatus, error, 0, now.toISOString(), jobId);
      this.statements.setShard.run('exported', error, now.toISOString(), shardId);
    })();
  }

  /** A new (or adopted) job becomes the shard's current one, in the same transaction as the shard's transition. */
  recordJob(shardId: number, attempt: number, job: Omit<JobRecord, 'shardId' | 'attempt' | 'polls' | 'error'>, now: Date): void {
    this.db.transaction(() => {
      this.statements.insertJob.run(
        job.id, shardId, attempt, job.type, job.name, job.status, job.createdAt, job.uploadExpiresAt, job.downloadExpiresAt, now.toISOString(),
      );
      this.statements.setShardJob.run(job.id, attempt, now.toISOString(), shardId);
    })();
  }

  job(id: string): JobRecord | null {
    const row = this.statements.job.get(id);
    return row ? toJob(row) : null;
  }

  setJobStatus(id: string, status: string, now: Date, options: { error?: string | null; polled?: boolean } = {}): void {
    this.statements.setJob.run(status, options.error ?? null, options.polled ? 1 : 0, now.toISOString(), id);
  }

  jobsOfCycle(cycleId: number): JobRecord[] {
    return this.statements.jobsOfCycle.all(cycleId).map(toJob);
  }

  /** What each shard's apply run read (lines, records, rejects). */
  applyRunCounts(cycleId: number): ApplyRunCounts[] {
    return this.statements.runCounts
      .all(cycleId)
      .map((row) => parseLedgerJson(applyRunCountsSchema, row.counts_json, `cs_apply_runs.counts_json of run ${row.id}`));
  }

  /** Actions taken per reason over the cycle's apply runs. */
  auditOfCycle(cycleId: number): { reason: string; actionTaken: AuditAction; count: number }[] {
    return this.statements.auditOfCycle.all(cycleId).map((row) => ({
      reason: row.reason,
      actionTaken: row.action_taken,
      count: Number(row.n),
    }));
  }

  scheduleState(type: JobType): { lastStartedAt: string | null; lastSuccessAt: string | null; nextRunAt: string | null } {
    const row = this.statements.schedule.get(type);
    return { lastStartedAt: row?.last_started_at ?? null, lastSuccessAt: row?.last_success_at ?? null, nextRunAt: row?.next_run_at ?? null };
  }

  /** The daemon's next scheduled run, for `status`; null when no daemon schedules this type. */
  recordNextRun(type: JobType, at: string | null): void {
    this.statements.scheduleNext.run(type, at);
  }

  recordScheduleStart(type: JobType, at: Date): void {
    this.statements.scheduleStarted.run(type, at.toISOString());
  }

  recordScheduleSuccess(type: JobType, at: Date): void {
    this.statements.scheduleSucceeded.run(type, at.toISOString());
  }
}
