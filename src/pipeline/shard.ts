import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { markApplyRunConfirmed } from '../store/applyRuns.js';
import type { CycleRecord, ShardRecord, ShardState } from '../store/ledger.js';
import type { StoredIds } from '../store/storedIds.js';
import type { Id } from '../types.js';
import { AppError } from '../errors.js';
import { XApiError } from '../xapi/errors.js';
import { VisibleWait } from '../xapi/rateBudget.js';
import type { ComplianceJob } from '../xapi/types.js';
import { resultFile, shardFile, type CycleContext } from './context.js';
import { exportShard } from './export.js';
import { newJobName, parseJobName } from './jobNames.js';
import { applyResultsFile, type ApplySummary } from './apply/applyFile.js';

export type ShardOutcome = 'applied' | 'failed' | 'held' | 'interrupted';

const TERMINAL: ReadonlySet<ShardState> = new Set(['applied', 'failed']);
/** Consecutive temporary failures (5xx, network, 429 past the client's own retries) before the cycle gives up. */
const MAX_TEMPORARY_FAILURES = 8;
/** Times a complete job's results may be missing before the attempt counts as failed. */
const MAX_MISSING_RESULTS = 5;

/**
 * Drives one shard through its states — planned → exported → job_created → uploaded → complete → downloaded → applied
 * (or held by the safety gate) — committing each transition before the next side effect, so a crash anywhere resumes
 * at the step it was in. Failed and expired jobs, refused uploads, expired upload windows and expired results send
 * the shard back to `exported` for a new job, until `jobs.maxAttempts` jobs were used; then the shard is `failed`
 * and the cycle goes on.
 */
export class ShardRunner {
  /** The job as X last returned it, with its signed URLs: kept in memory only, never in the ledger or the logs. */
  private liveJob: ComplianceJob | null = null;
  private missingResults = 0;
  readonly dryRunSummaries: ApplySummary[] = [];

  constructor(
    private readonly ctx: CycleContext,
    private readonly cycle: CycleRecord,
    private readonly ids: StoredIds,
    private readonly dryRun: boolean,
  ) {}

  async run(shardId: number): Promise<ShardOutcome> {
    const { ctx } = this;
    let temporaryFailures = 0;
    // An outage (unreachable API, 5xx, rate limit past the client's retries) is reported while it lasts.
    let outage: VisibleWait | null = null;
    for (;;) {
      if (ctx.signal.aborted) return 'interrupted';
      const shard = ctx.ledger.shard(shardId);
      if (TERMINAL.has(shard.state)) return shard.state as ShardOutcome;
      if (shard.state === 'held' && !ctx.confirmDeletions) return 'held';
      try {
        await this.step(shard);
        temporaryFailures = 0;
        outage?.over();
        outage = null;
      } catch (err) {
        if (ctx.signal.aborted) return 'interrupted';
        if (err instanceof XApiError && err.temporary && ++temporaryFailures <= MAX_TEMPORARY_FAILURES) {
          const now = ctx.now().getTime();
          const waitMs = err.retryAt ? Math.max(1000, err.retryAt - now) : Math.min(60_000, 1000 * 2 ** temporaryFailures);
          this.log(shard).warn({ code: err.code, err: err.message, waitMs, attempt: temporaryFailures }, 'temporary API failure; retrying the step');
          outage ??= new VisibleWait(this.log(shard), err.code === 'rate_limited' ? 'the rate limit to reset' : 'the API to answer again', () => ctx.now().getTime(), { code: err.code });
          await outage.sleep(ctx.sleep, waitMs, ctx.signal, now + waitMs).catch(() => undefined);
          continue;
        }
        throw err;
      }
    }
  }

  private async step(shard: ShardRecord): Promise<void> {
    switch (shard.state) {
      case 'planned':
        return this.export(shard);
      case 'exported':
        return this.createJob(shard);
      case 'job_created':
        return this.upload(shard);
      case 'uploaded':
        return this.poll(shard);
      case 'complete':
        return this.download(shard);
      case 'downloaded':
      case 'held':
        return this.apply(shard);
      default:
        throw new Error(`shard ${shard.id} is in an unknown state ${shard.state}`);
    }
  }

  private async export(shard: ShardRecord): Promise<void> {
    const { ctx } = this;
    const count = await exportShard(this.ids, shard, shardFile(ctx.config, this.cycle.id, shard.seq), ctx.signal);
    const now = ctx.now();
    ctx.db.transaction(() => {
      ctx.ledger.setShardIdCount(shard.id, count, now);
      // Rows deleted since planning can empty a range: nothing to check, nothing to pay for.
      ctx.ledger.setShardState(shard.id, count > 0 ? 'exported' : 'applied', now);
    })();
    this.transition(shard, count > 0 ? 'exported' : 'applied', count);
  }

  private async createJob(shard: ShardRecord): Promise<void> {
    const { ctx } = this;
    if (!existsSync(shardFile(ctx.config, this.cycle.id, shard.seq))) {
      this.setState(shard, 'planned');
      return;
    }
    if (shard.attempts >= ctx.config.jobs.maxAttempts) {
      this.setState(shard, 'failed', `gave up after ${shard.attempts} jobs: ${shard.error ?? 'no result'}`);
      return;
    }
    const attempt = shard.attempts + 1;
    const name = this.nextJobName(shard, attempt);
    // An adopted job bears exactly the name recorded for this attempt: it is this attempt's job.
    const { job, adopted } = await this.createOrAdopt(shard, name);
    ctx.ledger.recordJob(
      shard.id,
      attempt,
      {
        id: job.id,
        type: this.cycle.type,
        name: job.name ?? name,
        status: job.status,
        createdAt: job.created_at,
        uploadExpiresAt: job.upload_expires_at,
        downloadExpiresAt: job.download_expires_at,
      },
      ctx.now(),
    );
    this.liveJob = job;
    ctx.events.emit('job:created', { type: this.cycle.type, cycleId: this.cycle.id, seq: shard.seq, jobId: job.id, attempt, adopted });
    this.log(shard).info({ job: job.id, attempt, adopted }, adopted ? 'adopted our orphaned job' : 'job created');
  }

  /**
   * The name of the shard's next job: the one recorded before a create that a crash may have cut short (so its job
   * can be adopted), else a new one, committed before the create call.
   */
  private nextJobName(shard: ShardRecord, attempt: number): string {
    const { ctx } = this;
    const storeId = ctx.ledger.storeId();
    const recorded = parseJobName(shard.pendingJobName ?? undefined);
    const current =
      recorded?.storeId === storeId && recorded.type === this.cycle.type && recorded.cycleId === this.cycle.id && recorded.seq === shard.seq && recorded.attempt === attempt;
    if (current && shard.pendingJobName) return shard.pendingJobName;
    const name = newJobName({ storeId, type: this.cycle.type, cycleId: this.cycle.id, seq: shard.seq, attempt });
    ctx.ledger.setPendingJobName(shard.id, name, ctx.now());
    return name;
  }

  /**
   * Creates the shard's job. A 409 (or a create that failed in a way that may have created it) means a job of this
   * type is active: if it bears exactly the name this store recorded before creating (orphaned by a crash), adopt
   * it; otherwise wait for it, saying so at least every 30 s.
   */
  private async createOrAdopt(shard: ShardRecord, name: string): Promise<{ job: ComplianceJob; adopted: boolean }> {
    const { ctx } = this;
    const storeId = ctx.ledger.storeId();
    let waitingLogged = false;
    let slot: VisibleWait | null = null;
    for (;;) {
      let failure: XApiError;
      try {
        const job = await ctx.client.createJob({ type: this.cycle.type, name, resumable: ctx.config.jobs.resumableUpload }, ctx.signal);
        slot?.over();
        return { job, adopted: false };
      } catch (err) {
        if (!(err instanceof XApiError) || !(err.code === 'conflict' || err.code === 'server_error' || err.code === 'network')) throw err;
        failure = err;
      }
      const active = (await ctx.client.listJobs(this.cycle.type, undefined, ctx.signal)).filter(
        (job) => job.status === 'created' || job.status === 'in_progress',
      );
      const mine = active.find((job) => {
        // A job we already gave up on (refused upload, window passed) is not an orphan: X just has not expired it yet.
        const retired = ['failed', 'expired'].includes(ctx.ledger.job(job.id)?.status ?? '');
        const uploadable = job.status === 'in_progress' || ctx.now().getTime() < Date.parse(job.upload_expires_at);
        return job.name === name && !retired && uploadable;
      });
      if (mine) {
        slot?.over();
        return { job: mine, adopted: true };
      }
      // No job was created after all: let the step's temporary-failure retry create it again.
      if (failure.code !== 'conflict') throw failure;
      const blocker = active[0];
      const ours = blocker !== undefined && parseJobName(blocker.name)?.storeId === storeId;
      if (!waitingLogged) {
        this.log(shard).warn(
          { job: blocker?.id, jobName: blocker?.name, status: blocker?.status, ours },
          ours
            ? 'an older job of this store is still active (from an abandoned attempt); waiting for it to finish or expire'
            : 'another job of this type is active for this app (another copy of this store, or another program); waiting for it',
        );
        waitingLogged = true;
      }
      slot ??= new VisibleWait(this.log(shard), `a ${this.cycle.type} job slot (job ${blocker?.id ?? 'unknown'} is active)`, () => ctx.now().getTime(), { job: blocker?.id, ours });
      await slot.sleep(ctx.sleep, this.pollDelayMs(0), ctx.signal);
    }
  }

  private async upload(shard: ShardRecord): Promise<void> {
    const { ctx } = this;
    const job = await this.currentJob(shard);
    if (!job) return;
    if (job.status === 'in_progress' || job.status === 'complete') {
      // Uploaded before a crash, or by the process we adopted the job from.
      this.setState(shard, 'uploaded');
      return;
    }
    if (job.status !== 'created' || ctx.now().getTime() >= Date.parse(job.upload_expires_at)) {
      await this.retire(shard, job.status === 'created' ? 'expired' : job.status, 'the upload window passed before the upload', job.status === 'created');
      return;
    }
    const file = shardFile(ctx.config, this.cycle.id, shard.seq);
    if (!existsSync(file)) await this.exportAgain(shard, file);
    try {
      const { bytes } = await ctx.client.upload(job, file, ctx.signal);
      this.log(shard).info({ job: job.id, bytes }, 'uploaded');
    } catch (err) {
      if (err instanceof XApiError && ['upload_expired', 'signature_mismatch', 'upload_rejected'].includes(err.code)) {
        await this.retire(shard, err.code === 'upload_expired' ? 'expired' : 'failed', err.message, true);
        return;
      }
      throw err;
    }
    this.setState(shard, 'uploaded');
  }

  /**
   * The work directory was cleared (a cache wipe, a tmp cleaner) after the job was created: the shard's IDs are
   * written again from the store, so the job gets its upload instead of the run failing on a missing file for ever.
   */
  private async exportAgain(shard: ShardRecord, file: string): Promise<void> {
    const { ctx } = this;
    const count = await exportShard(this.ids, shard, file, ctx.signal);
    ctx.ledger.setShardIdCount(shard.id, count, ctx.now());
    this.log(shard).warn({ ids: count }, 'the shard file was gone (work directory cleared); exported it again');
  }

  private async poll(shard: ShardRecord): Promise<void> {
    const { ctx } = this;
    const before = ctx.ledger.job(shard.jobId!);
    const job = await this.fetchJob(shard);
    if (!job) return;
    ctx.ledger.setJobStatus(job.id, job.status, ctx.now(), { polled: true, error: job.error ?? null });
    if (before?.status !== job.status) {
      ctx.events.emit('job:status', { type: this.cycle.type, cycleId: this.cycle.id, seq: shard.seq, jobId: job.id, status: job.status });
      this.log(shard).info({ job: job.id, status: job.status }, 'job status');
    }
    if (job.status === 'complete') {
      this.setState(shard, 'complete');
    } else if (job.status === 'failed' || job.status === 'expired') {
      await this.retire(shard, job.status, job.error ? `job ${job.status}: ${job.error}` : `job ${job.status}`);
    } else {
      await ctx.sleep(this.pollDelayMs(ctx.now().getTime() - Date.parse(job.created_at)), ctx.signal);
    }
  }

  private async download(shard: ShardRecord): Promise<void> {
    const { ctx } = this;
    const record = ctx.ledger.job(shard.jobId!);
    if (record && ctx.now().getTime() >= Date.parse(record.downloadExpiresAt)) {
      await this.retire(shard, 'expired', 'the results expired (7 days after the job was created) before they were downloaded');
      return;
    }
    const job = await this.currentJob(shard);
    if (!job) return;
    const file = resultFile(ctx.config, this.cycle.id, shard.seq);
    // The work directory may have been cleared since the cycle began: the download starts afresh in a new one.
    await mkdir(dirname(file), { recursive: true });
    try {
      const { bytes } = await ctx.client.download(job, file, ctx.signal);
      this.log(shard).info({ job: job.id, bytes }, 'results downloaded');
      this.missingResults = 0;
    } catch (err) {
      if (err instanceof XApiError && err.code === 'download_expired') {
        await this.retire(shard, 'expired', err.message);
        return;
      }
      if (err instanceof XApiError && err.code === 'not_found' && ++this.missingResults <= MAX_MISSING_RESULTS) {
        this.log(shard).warn({ job: job.id }, 'the job is complete but its results are not there yet; waiting');
        await ctx.sleep(this.pollDelayMs(0), ctx.signal);
        return;
      }
      if (err instanceof XApiError && err.code === 'not_found') {
        await this.retire(shard, 'failed', 'the job was complete but its results never appeared');
        return;
      }
      throw err;
    }
    this.setState(shard, 'downloaded');
  }

  private async apply(shard: ShardRecord): Promise<void> {
    const { ctx } = this;
    const file = resultFile(ctx.config, this.cycle.id, shard.seq);
    const latest = this.dryRun ? null : ctx.ledger.latestApplyRun(shard.id);
    if (latest?.state === 'done') {
      // The run finished but a crash came before the shard's transition: record it, never apply twice.
      this.finishApply(shard, latest.id, 'applied');
      return;
    }
    if (!existsSync(file)) {
      // The cache was cleared: fetch the results again while the download window lasts. An unfinished run's
      // checkpoint counts lines of the old file (X shuffles results), so it is given up and the new file starts over.
      if (latest && latest.state !== 'failed') ctx.ledger.failApplyRun(latest.id, ctx.now());
      this.setState(shard, 'complete');
      return;
    }
    const resumable = latest && (latest.state === 'running' || latest.state === 'held') ? latest.id : undefined;
    // Confirmation releases only shards that the gate actually held: it is not a licence for every shard of the run.
    const confirm = (ctx.confirmDeletions ?? false) && (shard.state === 'held' || latest?.state === 'held');
    let summary: ApplySummary;
    try {
      summary = await this.applyFile(shard, file, resumable, confirm);
    } catch (err) {
      // X's results for this shard cannot be read (compressed, binary, not JSON lines, every line rejected): nothing
      // was applied, so the shard's IDs are unchecked — a failure the cycle reports, never an "applied" shard.
      if (err instanceof AppError && err.code === 'results_unusable') {
        this.setState(shard, 'failed', err.message);
        return;
      }
      throw err;
    }
    if (this.dryRun) {
      this.dryRunSummaries.push(summary);
      if (summary.state === 'held') {
        // A dry run reports the gate instead of waiting on it: there is nothing to confirm.
        this.log(shard).warn({ wouldDelete: summary.wouldDelete, ids: shard.idCount }, 'a real run would hold this shard (safety gate)');
      }
      if (summary.state !== 'interrupted') this.setState(shard, 'applied');
    } else if (summary.state === 'done') {
      if (confirm) markApplyRunConfirmed(ctx.db, summary.runId!, ctx.now().toISOString());
      this.finishApply(shard, summary.runId!, 'applied');
    } else if (summary.state === 'held') {
      this.finishApply(
        shard,
        summary.runId!,
        'held',
        `the results would delete ${summary.wouldDelete} rows (for ${shard.idCount} IDs, cascades included), beyond reconcile.maxDeleteFraction (${ctx.config.reconcile.maxDeleteFraction})`,
      );
    }
    // 'interrupted': the signal is set; run() returns at the top of its loop.
  }

  private applyFile(shard: ShardRecord, file: string, runId: number | undefined, confirmDeletions: boolean): Promise<ApplySummary> {
    const { ctx } = this;
    return applyResultsFile({
      db: ctx.db,
      config: ctx.config,
      type: this.cycle.type,
      file,
      logger: ctx.logger.child({ cycle: this.cycle.id }),
      runId,
      shard: { id: shard.id, idRange: { first: shard.firstId as Id, last: shard.lastId as Id }, submittedIds: shard.idCount },
      confirmDeletions,
      dryRun: this.dryRun,
      signal: ctx.signal,
      now: ctx.now,
      onProgress: (progress) =>
        ctx.events.emit('apply:batch', { type: this.cycle.type, cycleId: this.cycle.id, seq: shard.seq, ...progress }),
    });
  }

  /** The shard's run and its transition, in one transaction. */
  private finishApply(shard: ShardRecord, runId: number, state: 'applied' | 'held', error: string | null = null): void {
    const { ctx } = this;
    const now = ctx.now();
    ctx.db.transaction(() => {
      ctx.ledger.setShardApplyRun(shard.id, runId, now);
      ctx.ledger.setShardState(shard.id, state, now, error);
    })();
    this.transition(shard, state, shard.idCount, error ?? undefined);
  }

  /**
   * The job with its signed URLs: from memory, or fetched again (URLs are never stored). Null when X no longer knows
   * the job (it drops old ones): the shard has then been sent back for a new job.
   */
  private async currentJob(shard: ShardRecord): Promise<ComplianceJob | null> {
    if (this.liveJob?.id === shard.jobId) return this.liveJob;
    const job = await this.fetchJob(shard);
    if (job) this.ctx.ledger.setJobStatus(job.id, job.status, this.ctx.now(), { polled: true, error: job.error ?? null });
    return job;
  }

  private async fetchJob(shard: ShardRecord): Promise<ComplianceJob | null> {
    try {
      this.liveJob = await this.ctx.client.getJob(shard.jobId!, this.ctx.signal);
      return this.liveJob;
    } catch (err) {
      if (!(err instanceof XApiError) || err.code !== 'not_found') throw err;
      await this.retire(shard, 'expired', `X no longer knows job ${shard.jobId}`);
      return null;
    }
  }

  /**
   * The shard's job is finished without results: record why and send the shard back for a new job. A job that X
   * may still hold open (our upload was refused, or its window passed by our clock) is cancelled where X supports it,
   * so it stops blocking the type; where it does not, the next create waits for X to expire it.
   */
  private async retire(shard: ShardRecord, jobStatus: string, error: string, cancel = false): Promise<void> {
    const { ctx } = this;
    const now = ctx.now();
    ctx.db.transaction(() => {
      if (shard.jobId) ctx.ledger.setJobStatus(shard.jobId, jobStatus, now, { error });
      ctx.ledger.setShardState(shard.id, 'exported', now, error);
    })();
    this.liveJob = null;
    this.missingResults = 0;
    this.log(shard).warn({ job: shard.jobId, status: jobStatus, err: error }, 'job ended without results; the shard runs again');
    this.transition(shard, 'exported', shard.idCount, error);
    if (cancel && shard.jobId) {
      await ctx.client.cancelJob(shard.jobId, ctx.signal).catch((err: unknown) => {
        this.log(shard).debug({ job: shard.jobId, err: (err as Error).message }, 'cancel not possible; X will expire the job');
      });
    }
  }

  private setState(shard: ShardRecord, state: ShardState, error: string | null = null): void {
    this.ctx.ledger.setShardState(shard.id, state, this.ctx.now(), error);
    this.transition(shard, state, shard.idCount, error ?? undefined);
  }

  private transition(shard: ShardRecord, state: ShardState, ids: number, error?: string): void {
    const { ctx } = this;
    const shards = this.cycle.shardCount ?? 0;
    ctx.events.emit('shard:state', { type: this.cycle.type, cycleId: this.cycle.id, seq: shard.seq, shards, state, ids, ...(error ? { error } : {}) });
    const log = this.log(shard);
    if (state === 'failed' || state === 'held') log.warn({ state, ids, err: error }, `shard ${state}`);
    else log.info({ state, ids }, `shard ${state}`);
  }

  /** Polls start at jobs.pollIntervalSeconds and slow down as the job ages; the rate budget caps them all anyway. */
  private pollDelayMs(ageMs: number): number {
    const base = this.ctx.config.jobs.pollIntervalSeconds * 1000;
    const factor = ageMs < 10 * 60_000 ? 1 : ageMs < 60 * 60_000 ? 2 : ageMs < 6 * 3600_000 ? 4 : 8;
    return Math.min(base * factor, 30 * 60_000);
  }

  private log(shard: ShardRecord) {
    return this.ctx.logger.child({ type: this.cycle.type, cycle: this.cycle.id, shard: shard.seq });
  }
}
