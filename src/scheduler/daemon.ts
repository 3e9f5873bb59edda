import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../clock.js';
import { loadConfig, type Config } from '../config/load.js';
import { resolveBearerToken } from '../config/token.js';
import { describeError, explainError, type AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { cycleSucceeded, runCycle } from '../pipeline/cycle.js';
import type { CycleSummary } from '../pipeline/events.js';
import type { Runtime } from '../pipeline/runtime.js';
import type { CycleTrigger } from '../store/ledger.js';
import { vacuumSpace, purgeStore } from '../store/purge.js';
import { currentLockHolder, describeHolder, tryAcquireRunLock } from '../store/runLock.js';
import type { JobType } from '../types.js';
import { busyRetryDelayMs, STORE_BUSY_BACKOFF, type StoreBusyBackoff } from './backoff.js';
import { RunLockGate } from './runLockGate.js';
import { missedRun, Schedule } from './schedule.js';
import { deliverPendingHooks } from '../hooks/deliverHooks.js';

export interface DaemonOptions {
  config: Config;
  runtime: Runtime;
  logger: Logger;
  /** Called whenever what the daemon is doing changes (for systemd's STATUS= line). */
  onStatus?: (status: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Waits before a cycle that found the store taken tries again (default STORE_BUSY_BACKOFF). */
  backoff?: StoreBusyBackoff;
}

/** What became of a reload: applied, found unchanged, or refused (the previous config stays in force). */
export interface ReloadOutcome {
  ok: boolean;
  message: string;
}

/** Settings that a reload cannot change in place: the open store and the API client are built from them. */
const RESTART_ONLY = ['store', 'api.baseUrl', 'api.timeoutSeconds', 'paths.work', 'metrics.listen', 'metrics.allowNonLoopback'];

/**
 * The scheduler loop: cycles start on the cron schedule, on SIGUSR1, and at start for a run missed while down or a
 * cycle left unfinished. One cycle per type at a time; the store's run lock is held while a cycle runs (and only
 * then, so a `reconcile --now` between cycles runs). Reload swaps config and schedule in place; a running cycle keeps
 * the config it began with.
 */
export class Daemon {
  private config: Config;
  private schedule: Schedule | null = null;
  private vacuumWindow: Schedule | null = null;
  private watcher: FSWatcher | null = null;
  private cancelReload: () => void = () => undefined;
  private readonly running = new Map<JobType, Promise<void>>();
  /** The VACUUM window's rebuild while it runs (in a worker thread): a stop waits for it like for a cycle. */
  private vacuuming: Promise<void> | null = null;
  /** Cycles that found the store locked by another writer: how often in a row, and the timer of the next try. */
  private readonly busyRetries = new Map<JobType, { attempts: number; cancel?: () => void }>();
  private readonly controller = new AbortController();
  private readonly log: Logger;
  private readonly env: NodeJS.ProcessEnv;
  /** What each running cycle is doing, and how each type's last cycle ended: the STATUS= line says both. */
  private readonly activity = new Map<JobType, string>();
  private readonly lastEnded = new Map<JobType, string>();
  private readonly runLock: RunLockGate;
  private readonly clock: Clock;
  private readonly backoff: StoreBusyBackoff;
  /** Content hashes of the config file last loaded and last tried: one edit seen by the file watch and SIGHUP loads once. */
  private loadedHash: string | null;
  private triedHash: string | null;

  constructor(private readonly options: DaemonOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.env = options.env ?? process.env;
    this.clock = options.runtime.clock;
    this.backoff = options.backoff ?? STORE_BUSY_BACKOFF;
    this.loadedHash = contentHash(this.config.configPath);
    this.triedHash = this.loadedHash;
    this.runLock = new RunLockGate({
      storePath: this.config.store.path,
      logger: this.log,
      onChange: () => this.publishStatus(),
      backoff: this.backoff,
      clock: this.clock,
    });
  }

  /** Schedules cycles, resumes unfinished ones and catches up a missed run. */
  start(): void {
    this.followActivity();
    this.installSchedule();
    this.installVacuumWindow();
    this.watchConfigFile();
    // Deliveries a crash or a stop left pending (their cycles are closed).
    deliverPendingHooks({ ...this.options.runtime.context(this.controller.signal), config: this.config }).catch((err: unknown) =>
      this.log.error({ err: describeError(err) }, 'pending hook deliveries could not be read'),
    );
    const now = this.clock.now();
    for (const type of this.config.schedule.types) {
      const open = this.options.runtime.ledger.openCycle(type);
      const { lastStartedAt } = this.options.runtime.ledger.scheduleState(type);
      // A dry run left open belongs to whoever asked for it; the next real cycle replaces it.
      if (open && open.trigger !== 'dry-run') {
        this.log.info({ type, cycle: open.id }, 'resuming the unfinished cycle');
        this.startCycle(type, open.trigger === 'schedule' ? 'schedule' : 'catch-up');
      } else if (lastStartedAt && missedRun(this.config.schedule.cron, this.config.schedule.timezone, new Date(lastStartedAt), now)) {
        this.log.info({ type, lastStartedAt }, 'a scheduled run was missed while the daemon was down; running it now');
        this.startCycle(type, 'catch-up');
      }
    }
    this.publishStatus();
  }

  /** SIGUSR1: run every configured type now (types already running are left alone). */
  trigger(): void {
    if (this.controller.signal.aborted) return;
    this.log.info('cycle requested (SIGUSR1)');
    for (const type of this.config.schedule.types) this.startCycle(type, 'manual');
  }

  /** Schedules a reload soon; several file events in a burst (editors write in steps) become one. */
  requestReload(reason: string): void {
    if (this.controller.signal.aborted) return;
    this.cancelReload();
    this.cancelReload = this.clock.timer(300, () => this.reload(reason, { onlyIfChanged: true }));
  }

  /**
   * Re-reads and validates the config; applies it if valid, keeps the old one (and says why) if not. With
   * `onlyIfChanged` (the file watch), a content already tried is left alone; SIGHUP always re-reads the token.
   */
  reload(reason: string, options: { onlyIfChanged?: boolean } = {}): ReloadOutcome {
    // After a stop began, a reload must not bring the schedule back to life.
    if (this.controller.signal.aborted) return { ok: false, message: 'the daemon is stopping' };
    // A SIGHUP cancels a reload the file watch has pending: it reads the same file.
    this.cancelReload();
    const hash = contentHash(this.config.configPath);
    if (options.onlyIfChanged && hash !== null && hash === this.triedHash) return { ok: true, message: 'config unchanged' };
    this.triedHash = hash;
    let next: Config;
    try {
      next = loadConfig(this.config.configPath, this.env);
    } catch (err) {
      this.log.error({ reason, err: describeError(err) }, 'config reload refused; the previous config stays in force');
      return { ok: false, message: `refused, the previous config stays in force: ${describeError(err)}` };
    }
    const unchangedFile = hash !== null && hash === this.loadedHash;
    this.loadedHash = hash;
    const changed = diffKeys(this.config, next);
    const needRestart = changed.filter((key) => RESTART_ONLY.some((prefix) => key === prefix || key.startsWith(`${prefix}.`)));
    if (needRestart.length) this.log.warn({ keys: needRestart }, 'these settings take effect only after a restart');
    try {
      const { token, warning } = resolveBearerToken(next, this.env);
      if (warning) this.log.warn(warning);
      this.options.runtime.client.setToken(token);
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'the bearer token could not be re-read; keeping the previous one');
    }
    const scheduleChanged = next.schedule.cron !== this.config.schedule.cron || next.schedule.timezone !== this.config.schedule.timezone;
    const vacuumChanged = next.reconcile.vacuum !== this.config.reconcile.vacuum || next.schedule.timezone !== this.config.schedule.timezone;
    this.config = withRestartOnly(next, this.config);
    this.log.level = next.log.level;
    if (scheduleChanged || !this.schedule) this.installSchedule();
    if (vacuumChanged) this.installVacuumWindow();
    this.log.info(
      { reason, changed, nextRun: this.schedule?.nextRun()?.toISOString() ?? null },
      unchangedFile ? 'config already loaded; token re-read' : changed.length ? 'config reloaded' : 'config reloaded, nothing changed',
    );
    this.publishStatus();
    return { ok: true, message: unchangedFile ? 'the config file as it is now was already in force' : changed.length ? `changed: ${changed.join(', ')}` : 'nothing changed' };
  }

  /** First stop: running cycles finish their current step and stop; resolves when they have (or after `deadlineMs`). */
  async stop(deadlineMs: number): Promise<void> {
    this.schedule?.stop();
    this.schedule = null;
    this.vacuumWindow?.stop();
    this.vacuumWindow = null;
    this.watcher?.close();
    this.cancelReload();
    this.controller.abort(new Error('daemon stopping'));
    for (const retry of this.busyRetries.values()) retry.cancel?.();
    this.persistNextRun(null);
    // A VACUUM cannot be interrupted part-way: the stop waits for it. Its worker thread keeps the process alive past
    // the deadline until it ends; a kill before then (a second signal, systemd's TimeoutStopSec) leaves the file as it
    // was before the VACUUM began (SQLite rolls an unfinished VACUUM back).
    if (this.vacuuming) this.log.info('stopping: waiting for the VACUUM window\'s rebuild to finish');
    const all = Promise.allSettled([...this.running.values(), ...(this.vacuuming ? [this.vacuuming] : [])]);
    let cancelDeadline = () => undefined as void;
    const deadline = new Promise<'deadline'>((resolve) => {
      cancelDeadline = this.clock.timer(deadlineMs, () => resolve('deadline'));
    });
    const outcome = await Promise.race([all, deadline]);
    cancelDeadline();
    if (outcome === 'deadline') {
      this.log.warn(
        { deadlineMs },
        this.vacuuming
          ? 'the VACUUM did not finish within the stop deadline; the process ends when it does (killed before, SQLite rolls it back: the store stays as it was before it)'
          : 'cycles did not stop in time; exiting anyway (the ledger resumes them)',
      );
    }
  }

  get currentConfig(): Config {
    return this.config;
  }

  nextRun(): Date | null {
    return this.schedule?.nextRun() ?? null;
  }

  private installSchedule(): void {
    this.schedule?.stop();
    this.schedule = new Schedule(this.config.schedule.cron, this.config.schedule.timezone, () => this.onTick(), this.log, this.clock);
    this.persistNextRun(this.schedule.nextRun());
  }

  /** `reconcile.vacuum` as a cron expression: the store file is rebuilt in that window, not at each cycle's close. */
  private installVacuumWindow(): void {
    this.vacuumWindow?.stop();
    this.vacuumWindow = null;
    const { vacuum } = this.config.reconcile;
    if (vacuum === 'off' || vacuum === 'cycle') return;
    this.vacuumWindow = new Schedule(vacuum, this.config.schedule.timezone, () => this.startVacuumWindow(), this.log, this.clock);
  }

  /**
   * Rebuilds the store file (VACUUM, with the rest of the purge) holding the run lock, so no cycle of this daemon or
   * of another process runs meanwhile. A window that finds a cycle running, the run lock held, or too little free
   * disk for the copy is skipped with a log line: the next window tries again. The rebuild runs in a worker thread, so
   * the watchdog pings, the metrics endpoint and signals are served meanwhile; a cycle due meanwhile waits for the run
   * lock like behind any other holder.
   */
  private startVacuumWindow(): void {
    if (this.controller.signal.aborted || this.vacuuming) return;
    this.vacuuming = this.onVacuumWindow()
      .catch((err: unknown) => this.log.error({ err: describeError(err) }, 'VACUUM window failed; the next window tries again'))
      .finally(() => {
        this.vacuuming = null;
      });
  }

  private async onVacuumWindow(): Promise<void> {
    const nextWindow = this.vacuumWindow?.nextRun()?.toISOString() ?? null;
    const skip = (reason: string, fields: Record<string, unknown> = {}) => this.log.warn({ reason, nextWindow, ...fields }, 'VACUUM window skipped');
    if (this.running.size) return skip(`a ${[...this.running.keys()].join(' and ')} cycle is running`);
    const space = vacuumSpace(this.config.store.path);
    if (space.freeBytes < space.needBytes) return skip('not enough free disk for a rebuilt copy of the store', { ...space });
    const lock = tryAcquireRunLock(this.config.store.path, 'run (VACUUM window)');
    if (!lock) {
      const holder = currentLockHolder(this.config.store.path);
      return skip(`the store run lock is held by ${holder ? describeHolder(holder) : 'another process'}`);
    }
    try {
      this.log.info('VACUUM window: rebuilding the store file');
      const { elapsedMs, walBusy } = await purgeStore(this.options.runtime.db, { vacuum: true, maxLockMs: this.config.reconcile.maxLockMs });
      this.log.info({ elapsedMs, walBusy, nextWindow }, 'VACUUM window: store file rebuilt');
    } catch (err) {
      this.log.error({ err: describeError(err), nextWindow }, 'VACUUM window failed; the next window tries again');
    } finally {
      lock.release();
    }
  }

  private onTick(): void {
    for (const type of this.config.schedule.types) this.startCycle(type, 'schedule');
    this.persistNextRun(this.schedule?.nextRun() ?? null);
  }

  private startCycle(type: JobType, trigger: CycleTrigger): void {
    if (this.controller.signal.aborted) return;
    if (this.running.has(type)) {
      this.log.info({ type, trigger }, 'a cycle of this type is still running; not starting another');
      return;
    }
    const { runtime } = this.options;
    const config = this.config;
    const context = { ...runtime.context(this.controller.signal), config };
    // Inside the gate's promise: a store locked at the scheduled minute must reach the retry below, not the cron
    // library (which swallows what its callbacks throw).
    const run = this.runLock
      .whileHeld(this.controller.signal, () => {
        runtime.ledger.recordScheduleStart(type, this.clock.now());
        return runCycle(context, type, { trigger });
      })
      .then((summary: CycleSummary | null) => {
        this.busyRetries.get(type)?.cancel?.();
        this.busyRetries.delete(type);
        if (summary) {
          // The daemon's log is where its cycles are reported.
          runtime.ledger.markCyclesReported([summary.cycleId], this.clock.now());
          // Success means every shard was checked and applied: a closed cycle with failed shards left rows unchecked.
          if (cycleSucceeded(summary)) runtime.ledger.recordScheduleSuccess(type, this.clock.now());
          else if (summary.state === 'closed') this.log.warn({ type, cycle: summary.cycleId, failed: summary.shards.failed }, 'cycle closed with failed shards; not recorded as a success');
        }
      })
      .catch((err: unknown) => {
        const known = explainError(err);
        if (known?.code === 'store_busy' && !this.controller.signal.aborted) return this.retryWhenBusy(type, known);
        this.log.error({ type, err: describeError(err), code: (err as { code?: string }).code }, 'cycle failed; the next run resumes it');
      })
      .finally(() => {
        this.running.delete(type);
        this.publishStatus();
      });
    this.running.set(type, run);
    this.publishStatus();
  }

  /**
   * The store was locked by another writer (an ingester's long transaction): try again soon, with the same backoff as
   * a wait for the run lock (STORE_BUSY_BACKOFF), instead of leaving the cycle for the next scheduled run. The retry is recorded as the type's next run for
   * `status` when the store can be written (often it cannot yet: the log line says when).
   */
  private retryWhenBusy(type: JobType, err: AppError): void {
    const retry = this.busyRetries.get(type) ?? { attempts: 0 };
    retry.attempts += 1;
    const delayMs = busyRetryDelayMs(this.backoff, retry.attempts);
    const at = new Date(this.clock.now().getTime() + delayMs);
    this.log.warn({ type, attempt: retry.attempts, retryAt: at.toISOString(), err: err.message }, 'the store is locked by another writer; retrying the cycle');
    try {
      this.options.runtime.ledger.recordNextRun(type, at.toISOString());
    } catch {
      // Still locked: the log line says when the retry comes.
    }
    retry.cancel = this.clock.timer(delayMs, () => this.startCycle(type, 'catch-up'));
    this.busyRetries.set(type, retry);
  }

  private persistNextRun(next: Date | null): void {
    for (const type of ['tweets', 'users'] as const) {
      this.options.runtime.ledger.recordNextRun(type, this.config.schedule.types.includes(type) ? (next?.toISOString() ?? null) : null);
    }
  }

  private publishStatus(): void {
    const running = [...this.running.keys()];
    const next = this.schedule?.nextRun()?.toISOString() ?? 'none';
    const wait = this.runLock.waiting;
    if (wait) {
      const holder = wait.holder ? describeHolder(wait.holder) : 'another process';
      this.options.onStatus?.(`waiting for the store run lock held by ${holder} (${running.join(' and ')} cycle due; next try ${wait.nextTryAt.toISOString()}); next run ${next}`);
      return;
    }
    const doing = running.map((type) => `${type} ${this.activity.get(type) ?? 'cycle starting'}`);
    const last = [...this.lastEnded].map(([type, ended]) => `${type} ${ended}`);
    const parts = [running.length ? doing.join('; ') : 'idle', ...(last.length && !running.length ? [`last: ${last.join(', ')}`] : []), `next run ${next}`];
    this.options.onStatus?.(parts.join('; '));
  }

  /** Keeps the STATUS= line current as cycles move (one update per shard transition, not per batch). */
  private followActivity(): void {
    const events = this.options.runtime.events;
    events.on('cycle:started', ({ type, cycleId, shards, ids, resumed }) => {
      this.activity.set(type, `cycle #${cycleId} ${resumed ? 'resumed' : 'started'}: ${ids} IDs in ${shards} shards`);
      this.publishStatus();
    });
    events.on('shard:state', ({ type, cycleId, seq, shards, state }) => {
      this.activity.set(type, `cycle #${cycleId}: shard ${seq}/${shards} ${state}`);
      this.publishStatus();
    });
    events.on('job:status', ({ type, cycleId, seq, jobId, status }) => {
      this.activity.set(type, `cycle #${cycleId}: shard ${seq} job ${jobId} ${status}`);
      this.publishStatus();
    });
    events.on('cycle:ended', ({ type, outcome, dryRun }) => {
      if (dryRun) return;
      this.activity.delete(type);
      this.lastEnded.set(type, `${outcome} ${this.clock.now().toISOString().slice(0, 19)}Z`);
    });
  }

  private watchConfigFile(): void {
    // Watch the folder, not the file: editors replace files by rename, which ends a watch on the file itself.
    const file = this.config.configPath;
    try {
      this.watcher = watch(path.dirname(file), (_event, name) => {
        if (name === path.basename(file)) this.requestReload('config file changed');
      });
      this.watcher.on('error', (err) => this.log.warn({ err: describeError(err) }, 'watching the config file stopped; SIGHUP still reloads'));
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'cannot watch the config file; reload with SIGHUP');
    }
  }
}

function contentHash(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}

/** Dotted paths of the leaves that differ between two configs. */
export function diffKeys(a: unknown, b: unknown, prefix = ''): string[] {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) || Array.isArray(b)) {
    return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((key) =>
    diffKeys((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], prefix ? `${prefix}.${key}` : key),
  );
}

/** The new config, except the settings that need a restart, which keep their running values. */
function withRestartOnly(next: Config, current: Config): Config {
  return Object.freeze({
    ...next,
    store: current.store,
    api: { ...next.api, baseUrl: current.api.baseUrl, timeoutSeconds: current.api.timeoutSeconds },
    paths: current.paths,
  }) as Config;
}
