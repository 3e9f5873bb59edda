import { readdir, rm } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import type { CycleRecord, CycleTrigger } from '../store/ledger.js';
import { missedRun } from '../scheduler/schedule.js';
import { clearStaleMarks } from '../store/marks.js';
import { auditActionsOf } from '../store/auditCounts.js';
import { lockPacing } from '../store/lockPace.js';
import { purgeStore } from '../store/purge.js';
import { assertPreflight } from '../store/preflight.js';
import { StoredIds } from '../store/storedIds.js';
import type { Id, JobType } from '../types.js';
import { deliverPendingHooks, recordHookDeliveries } from '../hooks/deliverHooks.js';
import { cycleWorkDir, resultFile, type CycleContext } from './context.js';
import type { CycleSummary } from './events.js';
import { ShardRunner } from './shard.js';
import type { ApplySummary } from './apply/applyFile.js';

export interface CycleOptions {
  trigger: CycleTrigger;
  dryRun?: boolean;
  /**
   * A run someone waits on (`reconcile --now`, `demo`): a cycle that closed in a run stopped before it reported is
   * taken as this run's result instead of starting a new one — unless a scheduled run fell due since it started.
   * The caller marks the summaries it reported (Ledger.markCyclesReported).
   */
  recover?: boolean;
}

/**
 * One cycle of one type: plan (or resume) the shards, run them one job at a time, and close the cycle when every shard
 * is applied or failed. Returns the summary; a cycle with held shards or an interruption stays open for the next run.
 */
export async function runCycle(ctx: CycleContext, type: JobType, options: CycleOptions): Promise<CycleSummary> {
  const dryRun = options.dryRun ?? false;
  try {
    const summary = await runCycleSteps(ctx, type, options);
    ctx.events.emit('cycle:ended', { type, outcome: summary.state, dryRun });
    return summary;
  } catch (err) {
    ctx.events.emit('cycle:ended', { type, outcome: 'failed', dryRun });
    throw err;
  }
}

async function runCycleSteps(ctx: CycleContext, type: JobType, options: CycleOptions): Promise<CycleSummary> {
  const dryRun = options.dryRun ?? false;
  // Before any API call or ledger write: the store may have changed since the process started (and a reloaded
  // config may map it differently). A failure throws a ConfigError naming the key; no cycle is opened.
  assertPreflight(ctx.db, ctx.config, [type]);
  const now = ctx.now();
  let cycle = ctx.ledger.openCycle(type);
  if (cycle && (cycle.trigger === 'dry-run') !== dryRun) {
    if (dryRun) {
      throw new UsageError(`a ${type} cycle (#${cycle.id}) is in progress; a dry run now would disturb it`, {
        hint: 'let it finish with `compliance-sync reconcile --now`, then dry-run',
      });
    }
    // A dry run changed nothing in the content tables: a real cycle may simply replace it.
    ctx.ledger.abandonCycle(cycle.id, 'replaced by a real cycle', now);
    await rm(cycleWorkDir(ctx.config, cycle.id), { recursive: true, force: true });
    cycle = null;
  }
  await sweepFinishedCycleFiles(ctx);
  if (!cycle && options.recover) {
    const recovered = recoverClosedCycle(ctx, type, dryRun, now);
    if (recovered) return recovered;
  }
  const resumed = cycle !== null;
  cycle ??= ctx.ledger.startCycle(type, dryRun ? 'dry-run' : options.trigger, now);
  const ids = new StoredIds(ctx.db, ctx.config, type);
  if (cycle.state === 'planning') {
    ctx.ledger.recordPlan(cycle.id, await ids.plan(ctx.config.jobs.shardSize), ctx.now());
    cycle = ctx.ledger.cycle(cycle.id);
  }
  const log = ctx.logger.child({ type, cycle: cycle.id });
  log.info({ shards: cycle.shardCount, ids: cycle.idCount, maxId: cycle.maxId, resumed, dryRun }, resumed ? 'cycle resumed' : 'cycle started');
  ctx.events.emit('cycle:started', { type, cycleId: cycle.id, shards: cycle.shardCount ?? 0, ids: cycle.idCount ?? 0, resumed });

  const runner = new ShardRunner(ctx, cycle, ids, dryRun);
  for (const shard of ctx.ledger.shards(cycle.id)) {
    if (ctx.signal.aborted) break;
    await runner.run(shard.id);
  }

  const shards = ctx.ledger.shards(cycle.id);
  const open = shards.filter((shard) => shard.state !== 'applied' && shard.state !== 'failed');
  if (open.length > 0) {
    const state = ctx.signal.aborted ? 'interrupted' : 'held';
    const summary = summarize(ctx, cycle, state, dryRun, runner.dryRunSummaries, 0);
    log.warn({ state, open: open.length }, state === 'held' ? 'cycle held: shards wait for confirmation' : 'cycle interrupted; the next run resumes it');
    return summary;
  }
  const applied = shards.filter((shard) => shard.state === 'applied');
  // Marks are cleared before the cycle is closed: a crash in between clears again (idempotently) on resume, and a
  // closed cycle has always cleared its marks. The files go last; a crash there leaves them for the sweep.
  log.debug({}, 'close-out: clearing stale marks');
  const cleared = dryRun ? 0 : await clearStaleMarks(ctx.db, ctx.config, type, applied, cycle.startedAt);
  const summary = summarize(ctx, cycle, 'closed', dryRun, runner.dryRunSummaries, cleared);
  // The hooks' deliveries are recorded before the close (the deleted IDs are read from the results files, which go
  // with the close) and delivered after it; a delivery never fails the cycle.
  if (!dryRun) {
    const results = applied
      .filter((shard) => shard.applyRunId !== null)
      .map((shard) => ({ file: resultFile(ctx.config, cycle.id, shard.seq), first: shard.firstId as Id, last: shard.lastId as Id }));
    await recordHookDeliveries(ctx, summary, results);
  }
  ctx.ledger.closeCycle(cycle.id, summary, ctx.now());
  if (!dryRun && ctx.config.reconcile.purge) {
    log.debug({}, 'purge: start');
    const purge = await purgeStore(ctx.db, { vacuum: ctx.config.reconcile.vacuum === 'cycle', maxLockMs: ctx.config.reconcile.maxLockMs });
    log[purge.walBusy ? 'warn' : 'info'](purge, purge.walBusy ? 'purge: FTS optimized; the WAL is in use by a reader and stays until the next purge' : 'purge: FTS optimized, WAL truncated');
  }
  await rm(cycleWorkDir(ctx.config, cycle.id), { recursive: true, force: true });
  log.debug(lockPacing(), 'lock pacing of this process so far (reconcile.maxLockMs)');
  log.info({ idsChecked: summary.idsChecked, jobs: summary.jobsUsed, actions: summary.actions, failed: summary.shards.failed, marksCleared: cleared }, 'cycle closed');
  ctx.events.emit('cycle:closed', { type, cycleId: cycle.id, summary });
  if (!dryRun) await deliverPendingHooks(ctx);
  return summary;
}

/**
 * The summary of the type's last cycle when it closed in a run that was stopped before reporting it (a crash, a kill
 * after the close): rerunning that run must not pay for the same cycle again. Not when a scheduled run fell due
 * since the cycle started, or it was of the other kind (dry run or real): then it is marked superseded and null
 * returned, and a new cycle starts.
 */
function recoverClosedCycle(ctx: CycleContext, type: JobType, dryRun: boolean, now: Date): CycleSummary | null {
  const closed = ctx.ledger.unreportedCycle(type);
  if (!closed) return null;
  const { cron, timezone } = ctx.config.schedule;
  const due = missedRun(cron, timezone, new Date(closed.startedAt), now);
  if (due || (closed.trigger === 'dry-run') !== dryRun || closed.summary === null) {
    ctx.ledger.markCyclesReported([closed.id], now);
    return null;
  }
  ctx.logger
    .child({ type, cycle: closed.id })
    .info({ finishedAt: closed.finishedAt }, 'this cycle closed in a run that was stopped before reporting it; reporting it instead of starting a new one');
  return closed.summary;
}

/** Runs the cycles of several types side by side (one job at a time per type, as X allows). */
export async function runCycles(ctx: CycleContext, types: readonly JobType[], options: CycleOptions): Promise<CycleSummary[]> {
  const results = await Promise.allSettled(types.map((type) => runCycle(ctx, type, options)));
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) throw failure.reason;
  return results.map((result) => (result as PromiseFulfilledResult<CycleSummary>).value);
}

/** A cycle succeeded when it closed with every shard applied: the whole archive of its type was checked. */
export function cycleSucceeded(summary: CycleSummary): boolean {
  return summary.state === 'closed' && summary.shards.failed === 0 && summary.shards.applied === summary.shards.total;
}

function summarize(
  ctx: CycleContext,
  cycle: CycleRecord,
  state: CycleSummary['state'],
  dryRun: boolean,
  dryRunSummaries: readonly ApplySummary[],
  marksCleared: number,
): CycleSummary {
  const shards = ctx.ledger.shards(cycle.id);
  const finished = ctx.now();
  const actions: Record<string, number> = {};
  const byReason: Record<string, Record<string, number>> = {};
  const rejected: Record<string, number> = {};
  let notFound = 0;
  const add = (into: Record<string, number>, key: string, n: number) => {
    if (n) into[key] = (into[key] ?? 0) + n;
  };
  if (dryRun) {
    for (const run of dryRunSummaries) {
      // The names the audit gives a real run's actions (cs_audit_counts.action_taken).
      for (const [action, n] of Object.entries(auditActionsOf(run))) add(actions, action, n);
      for (const [kind, n] of Object.entries(run.rejected)) add(rejected, kind, n);
      notFound += run.notFound;
    }
  } else {
    for (const row of ctx.ledger.auditOfCycle(cycle.id)) {
      if (row.actionTaken === 'not_found') {
        notFound += row.count;
        continue;
      }
      add(actions, row.actionTaken, row.count);
      add((byReason[row.reason] ??= {}), row.actionTaken, row.count);
    }
    for (const counts of ctx.ledger.applyRunCounts(cycle.id)) {
      for (const [kind, n] of Object.entries(counts.rejected)) add(rejected, kind, n);
    }
  }
  const count = (state: string) => shards.filter((shard) => shard.state === state).length;
  return {
    type: cycle.type,
    cycleId: cycle.id,
    state,
    dryRun,
    startedAt: cycle.startedAt,
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - Date.parse(cycle.startedAt),
    idsChecked: shards.filter((shard) => shard.state === 'applied').reduce((sum, shard) => sum + shard.idCount, 0),
    shards: { total: shards.length, applied: count('applied'), failed: count('failed'), held: count('held') },
    jobsUsed: ctx.ledger.jobsOfCycle(cycle.id).length,
    actions,
    byReason,
    notFound,
    rejected,
    marksCleared,
    failures: shards.filter((shard) => shard.state === 'failed').map((shard) => ({ seq: shard.seq, error: shard.error ?? 'unknown' })),
  };
}

/** Removes the work folders of cycles that are closed or abandoned (left behind by a crash after closing). */
async function sweepFinishedCycleFiles(ctx: CycleContext): Promise<void> {
  const entries = await readdir(ctx.config.paths.work).catch(() => [] as string[]);
  for (const entry of entries) {
    const match = /^cycle-(\d+)$/.exec(entry);
    const state = match ? ctx.ledger.cycleState(Number(match[1])) : null;
    if (state === 'closed' || state === 'abandoned') {
      await rm(cycleWorkDir(ctx.config, Number(match![1])), { recursive: true, force: true });
    }
  }
}
