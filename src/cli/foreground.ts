import type { Config } from '../config/load.js';
import { createLogger, logDestination, type Logger } from '../log.js';
import type { CycleOptions } from '../pipeline/cycle.js';
import type { CycleSummary } from '../pipeline/events.js';
import type { Runtime } from '../pipeline/runtime.js';
import { requireExistingStore } from '../store/open.js';
import type { RunLock } from '../store/runLock.js';
import type { JobType } from '../types.js';
import { showProgress } from './progress.js';
import { onStopSignals } from './signals.js';
import { metricsFor } from '../metrics/serveMetrics.js';
import type { MetricsServer } from '../metrics/server.js';

/**
 * The logger of a command a person runs: on a terminal the progress display speaks and logs keep only warnings;
 * otherwise one log line per state change. Logs go to stderr so that stdout carries only the command's output.
 */
export function foregroundLogger(level: Config['log']['level'], interactive: boolean): Logger {
  return createLogger(interactive ? 'warn' : level, logDestination(2));
}

export interface ForegroundCycles {
  config: Config;
  logger: Logger;
  interactive: boolean;
  /** The environment the bearer token is read from. */
  env?: NodeJS.ProcessEnv;
  /** Takes the store's run lock (it may wait, until the signal aborts). */
  takeLock: (signal: AbortSignal) => RunLock | Promise<RunLock>;
  types: readonly JobType[];
  cycle: CycleOptions;
  confirmDeletions?: boolean;
}

/**
 * Runs cycles in the foreground, as `reconcile --now` and `demo` do: stop signals, the run lock, the runtime and the
 * live progress, all released afterwards whatever happens. `report` sees the summaries while the store is still open,
 * and whether every shard of every cycle applied (what the exit code of a foreground run says).
 */
export async function runCyclesInForeground<T>(
  run: ForegroundCycles,
  report: (summaries: CycleSummary[], runtime: Runtime, everyShardApplied: boolean) => T,
): Promise<T> {
  // The pipeline and the API client (got) load only here, so the CLI's other commands and --help start fast.
  const [{ cycleSucceeded, runCycles }, { openRuntime }] = await Promise.all([import('../pipeline/cycle.js'), import('../pipeline/runtime.js')]);
  const controller = new AbortController();
  const stopSignals = onStopSignals(controller, run.logger);
  let lock: RunLock | undefined;
  let runtime: Runtime | undefined;
  let stopProgress: (() => void) | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    requireExistingStore(run.config); // before the lock file: a mistyped store.path leaves nothing behind
    lock = await run.takeLock(controller.signal);
    const served = await metricsFor(run.config);
    runtime = openRuntime(run.config, run.logger, run.env, { types: run.types, observer: served.metrics?.observer });
    metricsServer = await served.start(runtime, () => run.config, run.logger);
    if (run.interactive) stopProgress = showProgress(runtime.events);
    const summaries = await runCycles(runtime.context(controller.signal, { confirmDeletions: run.confirmDeletions }), run.types, { ...run.cycle, recover: true });
    stopProgress?.();
    stopProgress = undefined;
    const reported = report(summaries, runtime, summaries.every(cycleSucceeded));
    // Only now has the run's outcome reached its caller; a rerun after a stop before this point reports these cycles.
    runtime.ledger.markCyclesReported(summaries.map((summary) => summary.cycleId), new Date());
    return reported;
  } finally {
    stopProgress?.();
    await metricsServer?.close();
    runtime?.close();
    lock?.release();
    stopSignals();
  }
}
