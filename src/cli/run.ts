import { once } from 'node:events';
import type { Command } from 'commander';
import { describeError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { openRuntime } from '../pipeline/runtime.js';
import { Daemon } from '../scheduler/daemon.js';
import { requireExistingStore } from '../store/open.js';
import { acquireRunLock } from '../store/runLock.js';
import { configFromOptions, withConfigOption } from './context.js';
import { onStopSignals } from './signals.js';
import { SystemdNotifier } from './systemd.js';
import { metricsFor } from '../metrics/serveMetrics.js';
import type { MetricsServer } from '../metrics/server.js';

/** Below the unit's TimeoutStopSec=90, so a stop always ends on our terms. */
const STOP_DEADLINE_MS = 60_000;

export function registerRun(program: Command): void {
  withConfigOption(program.command('run'))
    .description('the daemon: run cycles on schedule.cron; SIGHUP or a config edit reloads, SIGUSR1 runs a cycle now, SIGTERM stops')
    .action(async (options: { config?: string }) => {
      // Node's default on SIGHUP is to exit, and on SIGUSR1 to start the inspector: take both before anything can
      // fail or wait. Signals that come before the daemon is up are remembered and handled once it is.
      const early: NodeJS.Signals[] = [];
      const remember = (signal: NodeJS.Signals) => early.push(signal);
      process.on('SIGHUP', remember);
      process.on('SIGUSR1', remember);

      const config = configFromOptions(options);
      const logger = createLogger(config.log.level);
      const notifier = new SystemdNotifier();
      requireExistingStore(config); // before the lock file: a mistyped store.path leaves nothing behind
      const lock = acquireRunLock(config.store.path, 'run');
      let runtime: ReturnType<typeof openRuntime> | undefined;
      let daemon: Daemon | undefined;
      let metricsServer: MetricsServer | undefined;
      let removeStopHandlers: (() => void) | undefined;
      try {
        const served = await metricsFor(config);
        runtime = openRuntime(config, logger, process.env, { observer: served.metrics?.observer });
        const started = new Daemon({ config, runtime, logger, onStatus: (status) => notifier.status(status) });
        daemon = started;
        metricsServer = await served.start(runtime, () => started.currentConfig, logger);

        // The shared two-stage stop: the first signal lets cycles finish their step, a second exits at once.
        const stopRequested = new AbortController();
        removeStopHandlers = onStopSignals(stopRequested, logger);
        const reload = guarded(logger, 'reload', () => {
          notifier.reloading();
          started.reload('SIGHUP');
          notifier.ready(`reloaded; next run ${started.nextRun()?.toISOString() ?? 'none'}`);
        });
        const trigger = guarded(logger, 'trigger', () => started.trigger());
        process.off('SIGHUP', remember);
        process.off('SIGUSR1', remember);
        process.on('SIGHUP', reload);
        process.on('SIGUSR1', trigger);

        started.start();
        logger.info(
          {
            pid: process.pid,
            config: config.configPath,
            store: config.store.path,
            types: config.schedule.types,
            cron: config.schedule.cron,
            timezone: config.schedule.timezone,
            nextRun: started.nextRun()?.toISOString() ?? null,
          },
          'daemon started',
        );
        notifier.ready(`idle; next run ${started.nextRun()?.toISOString() ?? 'none'}`);
        for (const signal of early) (signal === 'SIGHUP' ? reload : trigger)();

        await once(stopRequested.signal, 'abort');
        logger.info({ deadlineMs: STOP_DEADLINE_MS }, 'stopping: cycles finish their current step');
        notifier.stopping();
        await started.stop(STOP_DEADLINE_MS);
        logger.info('daemon stopped');
      } finally {
        // Also on a failed start: nothing may keep the process alive or the store locked.
        await daemon?.stop(0);
        await metricsServer?.close();
        runtime?.close();
        lock.release();
        removeStopHandlers?.();
      }
    });
}

/** A signal handler that logs its failure (a busy store, say) instead of crashing the daemon. */
function guarded(logger: Logger, what: string, handler: () => void): () => void {
  return () => {
    try {
      handler();
    } catch (err) {
      logger.error({ err: describeError(err) }, `${what} failed`);
    }
  };
}
