import { once } from 'node:events';
import type { Command } from 'commander';
import { describeError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import type { Runtime } from '../pipeline/runtime.js';
import type { Daemon, ReloadOutcome } from '../scheduler/daemon.js';
import { requireExistingStore } from '../store/open.js';
import { acquireDaemonLock, type ReloadAck } from '../store/runLock.js';
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
      // One daemon per store, for its whole life; the run lock it takes only while a cycle runs (see Daemon).
      const lock = acquireDaemonLock(config.store.path);
      let runtime: Runtime | undefined;
      let daemon: Daemon | undefined;
      let metricsServer: MetricsServer | undefined;
      let removeStopHandlers: (() => void) | undefined;
      try {
        // The pipeline, the scheduler and the API client (got) load only here, so other commands start fast.
        const [{ openRuntime }, { Daemon }] = await Promise.all([import('../pipeline/runtime.js'), import('../scheduler/daemon.js')]);
        const served = await metricsFor(config);
        runtime = openRuntime(config, logger, process.env, { observer: served.metrics?.observer });
        const started = new Daemon({
          config,
          runtime,
          logger,
          onStatus: (status) => {
            void notifier.status(status);
            lock.describe({ state: status });
          },
        });
        daemon = started;
        metricsServer = await served.start(runtime, () => started.currentConfig, logger);

        // The shared two-stage stop: the first signal lets cycles finish their step, a second exits at once.
        const stopRequested = new AbortController();
        removeStopHandlers = onStopSignals(stopRequested, logger);
        // One reload at a time, each bracketed by RELOADING=1 … READY=1 and then acknowledged in the daemon's lock
        // record, where `compliance-sync reload` (the unit's ExecReload) waits for it: `systemctl reload` returns
        // once the reload is done, and fails when it was refused. SIGHUPs that arrive while a reload waits to start
        // are answered by that one reload, which reads the file after all of them.
        const answer: ReloadAck = { requested: 0, done: 0, ok: true, message: 'started' };
        let reloads = Promise.resolve();
        let queued = false;
        const reload = () => {
          answer.requested += 1;
          lock.describe({ reload: { ...answer } });
          if (queued) return;
          queued = true;
          reloads = reloads
            .then(async () => {
              queued = false;
              const upTo = answer.requested;
              await notifier.reloading();
              const outcome = guardedReload(logger, () => started.reload('SIGHUP'));
              const next = `next run ${started.nextRun()?.toISOString() ?? 'none'}`;
              await notifier.ready(outcome.ok ? `reloaded (${outcome.message}); ${next}` : `reload refused (the previous config stays in force); ${next}`);
              Object.assign(answer, { done: upTo, ok: outcome.ok, message: outcome.message });
              lock.describe({ reload: { ...answer } });
            })
            // A failure here (the record unwritable) must not end the chain, or every later reload would be skipped.
            .catch((err: unknown) => logger.error({ err: describeError(err) }, 'reload failed'));
        };
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
        lock.describe({ reload: { ...answer } });
        void notifier.ready(`idle; next run ${started.nextRun()?.toISOString() ?? 'none'}`);
        for (const signal of early) (signal === 'SIGHUP' ? reload : trigger)();

        await once(stopRequested.signal, 'abort');
        logger.info({ deadlineMs: STOP_DEADLINE_MS }, 'stopping: cycles finish their current step');
        void notifier.stopping();
        await started.stop(STOP_DEADLINE_MS);
        await notifier.flushed();
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

function guardedReload(logger: Logger, reload: () => ReloadOutcome): ReloadOutcome {
  try {
    return reload();
  } catch (err) {
    logger.error({ err: describeError(err) }, 'reload failed');
    return { ok: false, message: `failed: ${describeError(err)}` };
  }
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
