import { randomBytes } from 'node:crypto';
import type { JobType } from '../types.js';
import type { Db } from './open.js';

/** A shard's position in the pipeline; every transition is committed before the next side effect. */
export const SHARD_STATES = ['planned', 'exported', 'job_created', 'uploaded', 'complete', 'downloaded', 'applied', 'held', 'failed'] as const;
export type ShardState = (typeof SHARD_STATES)[number];

export type CycleState = 'planning' | 'running' | 'closed' | 'abandoned';
export type CycleTrigger = 'schedule' | 'catch-up' | 'manual' | 'dry-run';

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

type Row = Record<string, unknown>;

const toCycle = (row: Row): CycleRecord => ({
  id: Number(row.id),
  type: row.type as JobType,
  state: row.state as CycleState,
  trigger: row.trigger as CycleTrigger,
  startedAt: row.started_at as string,
  maxId: row.max_id === null ? null : String(row.max_id),
  idCount: row.id_count === null ? null : Number(row.id_count),
  shardCount: row.shard_count === null ? null : Number(row.shard_count),
  finishedAt: (row.finished_at as string | null) ?? null,
});

const toShard = (row: Row): ShardRecord => ({
  id: Number(row.id),
  cycleId: Number(row.cycle_id),
  seq: Number(row.seq),
  firstId: String(row.first_id),
  lastId: String(row.last_id),
  idCount: Number(row.id_count),
  state: row.state as ShardState,
  attempts: Number(row.attempts),
  jobId: (row.job_id as string | null) ?? null,
  applyRunId: row.apply_run_id === null ? null : Number(row.apply_run_id),
  error: (row.error as string | null) ?? null,
  pendingJobName: (row.pending_job_name as string | null) ?? null,
});

const toJob = (row: Row): JobRecord => ({
  id: row.id as string,
  shardId: Number(row.shard_id),
  attempt: Number(row.attempt),
  type: row.type as JobType,
  name: row.name as string,
  status: row.status as string,
  createdAt: row.created_at as string,
  uploadExpiresAt: row.upload_expires_at as string,
  downloadExpiresAt: row.download_expires_at as string,
  polls: Number(row.polls),
  error: (row.error as string | null) ?? null,
});

/** Every statement on the cycle, shard, job and schedule tables, prepared once per connection. */
export class Ledger {
  private readonly s;

  constructor(private readonly db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      storeId: p('SELECT store_id FROM cs_store'),
      identity: p('SELECT store_id, bound_path, bound_file FROM cs_store'),
      bindIdentity: p('UPDATE cs_store SET store_id = ?, bound_path = ?, bound_file = ?'),
      setPendingJobName: p('UPDATE cs_shards SET pending_job_name = ?, updated_at = ? WHERE id = ?'),
      openCycle: p("SELECT * FROM cs_cycles WHERE type = ? AND state IN ('planning', 'running')"),
      cycle: p('SELECT * FROM cs_cycles WHERE id = ?'),
      insertCycle: p("INSERT INTO cs_cycles (type, state, trigger, started_at) VALUES (?, 'planning', ?, ?)"),
      planCycle: p("UPDATE cs_cycles SET state = 'running', max_id = ?, id_count = ?, shard_count = ? WHERE id = ?"),
      closeCycle: p("UPDATE cs_cycles SET state = 'closed', finished_at = ?, summary_json = ? WHERE id = ?"),
      abandonCycle: p("UPDATE cs_cycles SET state = 'abandoned', finished_at = ?, summary_json = ? WHERE id = ?"),
      recentCycles: p('SELECT * FROM cs_cycles ORDER BY id DESC LIMIT ?'),
      unreportedCycle: p("SELECT * FROM cs_cycles WHERE type = ? AND state = 'closed' AND reported_at IS NULL ORDER BY id DESC LIMIT 1"),
      markReported: p('UPDATE cs_cycles SET reported_at = ? WHERE id = ? AND reported_at IS NULL'),
      insertShard: p(
        "INSERT INTO cs_shards (cycle_id, seq, first_id, last_id, id_count, state, updated_at) VALUES (?, ?, ?, ?, ?, 'planned', ?)",
      ),
      shards: p('SELECT * FROM cs_shards WHERE cycle_id = ? ORDER BY seq'),
      shard: p('SELECT * FROM cs_shards WHERE id = ?'),
      setShard: p('UPDATE cs_shards SET state = ?, error = ?, updated_at = ? WHERE id = ?'),
      setShardCount: p('UPDATE cs_shards SET id_count = ?, updated_at = ? WHERE id = ?'),
      // max(): adopting an orphan named for an earlier attempt must not hand back attempts already spent.
      setShardJob: p("UPDATE cs_shards SET state = 'job_created', job_id = ?, attempts = max(attempts, ?), error = NULL, updated_at = ? WHERE id = ?"),
      setShardRun: p('UPDATE cs_shards SET apply_run_id = ?, updated_at = ? WHERE id = ?'),
      insertJob: p(
        `INSERT INTO cs_jobs (id, shard_id, attempt, type, name, status, created_at, upload_expires_at, download_expires_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at`,
      ),
      job: p('SELECT * FROM cs_jobs WHERE id = ?'),
      setJob: p('UPDATE cs_jobs SET status = ?, error = ?, polls = polls + ?, updated_at = ? WHERE id = ?'),
      jobsOfCycle: p('SELECT j.* FROM cs_jobs j JOIN cs_shards s ON s.id = j.shard_id WHERE s.cycle_id = ? ORDER BY j.created_at'),
      latestRun: p('SELECT id, state FROM cs_apply_runs WHERE shard_id = ? ORDER BY id DESC LIMIT 1'),
      failRun: p("UPDATE cs_apply_runs SET state = 'failed', finished_at = ? WHERE id = ? AND state <> 'done'"),
      runCounts: p(
        `SELECT r.counts_json FROM cs_apply_runs r JOIN cs_shards s ON s.apply_run_id = r.id
         WHERE s.cycle_id = ? AND r.counts_json IS NOT NULL`,
      ).pluck(),
      auditOfCycle: p(
        `SELECT a.reason, a.action_taken, sum(a.count) AS n FROM cs_audit_counts a
         JOIN cs_shards s ON s.apply_run_id = a.run_id WHERE s.cycle_id = ? GROUP BY a.reason, a.action_taken`,
      ),
      schedule: p('SELECT * FROM cs_schedule WHERE type = ?'),
      scheduleStarted: p(
        'INSERT INTO cs_schedule (type, last_started_at) VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET last_started_at = excluded.last_started_at',
      ),
      scheduleNext: p(
        'INSERT INTO cs_schedule (type, next_run_at) VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET next_run_at = excluded.next_run_at',
      ),
      scheduleSucceeded: p(
        'INSERT INTO cs_schedule (type, last_success_at) VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET last_success_at = excluded.last_success_at',
      ),
    };
  }

  storeId(): string {
    return (this.s.storeId.get() as { store_id: string }).store_id;
  }

  /**
   * Binds the store's identity to where it lives (its real path and the device:inode of its file). A store found
   * elsewhere than it was bound — a restored backup, a staging copy, a moved file — takes a new identity, so its job
   * names can never be another copy's; its ledger is kept. A store never bound before (new, or from before
   * binding existed) takes a new identity too: copies made before it was bound would otherwise share one.
   * Returns the identity in force and, when it changed, the one before.
   */
  bindIdentity(location: { path: string; file: string }): { storeId: string; previous: string | null; boundPath: string | null } {
    const row = this.s.identity.get() as { store_id: string; bound_path: string | null; bound_file: string | null };
    if (row.bound_path === location.path && row.bound_file === location.file) return { storeId: row.store_id, previous: null, boundPath: row.bound_path };
    const storeId = randomBytes(6).toString('hex');
    this.s.bindIdentity.run(storeId, location.path, location.file);
    return { storeId, previous: row.store_id, boundPath: row.bound_path };
  }

  /** Records the name of the job the shard is about to create (see cs_shards.pending_job_name). */
  setPendingJobName(shardId: number, name: string, now: Date): void {
    this.s.setPendingJobName.run(name, now.toISOString(), shardId);
  }

  openCycle(type: JobType): CycleRecord | null {
    const row = this.s.openCycle.get(type) as Row | undefined;
    return row ? toCycle(row) : null;
  }

  cycle(id: number): CycleRecord {
    return toCycle(this.s.cycle.get(id) as Row);
  }

  /** A cycle's state, or null if there is no such cycle. */
  cycleState(id: number): CycleState | null {
    const row = this.s.cycle.get(id) as Row | undefined;
    return row ? (row.state as CycleState) : null;
  }

  recentCycles(limit: number): (CycleRecord & { summary: unknown })[] {
    return (this.s.recentCycles.all(limit) as Row[]).map((row) => ({
      ...toCycle(row),
      summary: row.summary_json ? (JSON.parse(row.summary_json as string) as unknown) : null,
    }));
  }

  /** The latest closed cycle of the type whose outcome nobody has reported yet (its run was stopped first). */
  unreportedCycle(type: JobType): (CycleRecord & { summary: unknown }) | null {
    const row = this.s.unreportedCycle.get(type) as Row | undefined;
    return row ? { ...toCycle(row), summary: row.summary_json ? JSON.parse(row.summary_json as string) : null } : null;
  }

  /** The cycles' outcomes reached whoever ran them. */
  markCyclesReported(cycleIds: readonly number[], now: Date): void {
    this.db.transaction(() => {
      for (const id of cycleIds) this.s.markReported.run(now.toISOString(), id);
    })();
  }

  startCycle(type: JobType, trigger: CycleTrigger, now: Date): CycleRecord {
    const id = Number(this.s.insertCycle.run(type, trigger, now.toISOString()).lastInsertRowid);
    return this.cycle(id);
  }

  /** Records the plan — the snapshot and every shard — in one transaction, before any API call. */
  recordPlan(cycleId: number, plan: { maxId: string | null; idCount: number; shards: { firstId: string; lastId: string; idCount: number }[] }, now: Date): void {
    this.db.transaction(() => {
      plan.shards.forEach((shard, index) => {
        this.s.insertShard.run(cycleId, index + 1, shard.firstId, shard.lastId, shard.idCount, now.toISOString());
      });
      this.s.planCycle.run(plan.maxId, plan.idCount, plan.shards.length, cycleId);
    })();
  }

  closeCycle(cycleId: number, summary: unknown, now: Date, abandoned = false): void {
    (abandoned ? this.s.abandonCycle : this.s.closeCycle).run(now.toISOString(), JSON.stringify(summary), cycleId);
  }

  shards(cycleId: number): ShardRecord[] {
    return (this.s.shards.all(cycleId) as Row[]).map(toShard);
  }

  shard(id: number): ShardRecord {
    return toShard(this.s.shard.get(id) as Row);
  }

  setShardState(shardId: number, state: ShardState, now: Date, error: string | null = null): void {
    this.s.setShard.run(state, error, now.toISOString(), shardId);
  }

  setShardIdCount(shardId: number, idCount: number, now: Date): void {
    this.s.setShardCount.run(idCount, now.toISOString(), shardId);
  }

  setShardApplyRun(shardId: number, runId: number, now: Date): void {
    this.s.setShardRun.run(runId, now.toISOString(), shardId);
  }

  /** A new (or adopted) job becomes the shard's current one, in the same transaction as the shard's transition. */
  recordJob(shardId: number, attempt: number, job: Omit<JobRecord, 'shardId' | 'attempt' | 'polls' | 'error'>, now: Date): void {
    this.db.transaction(() => {
      this.s.insertJob.run(
        job.id, shardId, attempt, job.type, job.name, job.status, job.createdAt, job.uploadExpiresAt, job.downloadExpiresAt, now.toISOString(),
      );
      this.s.setShardJob.run(job.id, attempt, now.toISOString(), shardId);
    })();
  }

  job(id: string): JobRecord | null {
    const row = this.s.job.get(id) as Row | undefined;
    return row ? toJob(row) : null;
  }

  setJobStatus(id: string, status: string, now: Date, options: { error?: string | null; polled?: boolean } = {}): void {
    this.s.setJob.run(status, options.error ?? null, options.polled ? 1 : 0, now.toISOString(), id);
  }

  jobsOfCycle(cycleId: number): JobRecord[] {
    return (this.s.jobsOfCycle.all(cycleId) as Row[]).map(toJob);
  }

  /**
   * The shard's latest apply run, whatever its state: a crash can fall between the run's end and the shard's
   * transition, and a finished run must then be recognised rather than applied again.
   */
  latestApplyRun(shardId: number): { id: number; state: string } | null {
    const row = this.s.latestRun.get(shardId) as { id: bigint; state: string } | undefined;
    return row ? { id: Number(row.id), state: row.state } : null;
  }

  /** Gives up an unfinished apply run (its checkpoint refers to a results file that is gone). */
  failApplyRun(runId: number, now: Date): void {
    this.s.failRun.run(now.toISOString(), runId);
  }

  /** The totals each shard's apply run recorded, as JSON objects. */
  applyRunCounts(cycleId: number): Record<string, unknown>[] {
    return (this.s.runCounts.all(cycleId) as string[]).map((json) => JSON.parse(json) as Record<string, unknown>);
  }

  /** Actions taken per reason over the cycle's apply runs. */
  auditOfCycle(cycleId: number): { reason: string; actionTaken: string; count: number }[] {
    return (this.s.auditOfCycle.all(cycleId) as { reason: string; action_taken: string; n: bigint }[]).map((row) => ({
      reason: row.reason,
      actionTaken: row.action_taken,
      count: Number(row.n),
    }));
  }

  scheduleState(type: JobType): { lastStartedAt: string | null; lastSuccessAt: string | null; nextRunAt: string | null } {
    const row = this.s.schedule.get(type) as Row | undefined;
    return {
      lastStartedAt: (row?.last_started_at as string) ?? null,
      lastSuccessAt: (row?.last_success_at as string) ?? null,
      nextRunAt: (row?.next_run_at as string) ?? null,
    };
  }

  /** The daemon's next scheduled run, for `status`; null when no daemon schedules this type. */
  recordNextRun(type: JobType, at: string | null): void {
    this.s.scheduleNext.run(type, at);
  }

  recordScheduleStart(type: JobType, at: Date): void {
    this.s.scheduleStarted.run(type, at.toISOString());
  }

  recordScheduleSuccess(type: JobType, at: Date): void {
    this.s.scheduleSucceeded.run(type, at.toISOString());
  }
}
