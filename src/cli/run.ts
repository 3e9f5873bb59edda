import type { Command } from 'commander';
import { createLogger } from '../log.js';
import { openRuntime } from '../pipeline/runtime.js';
import { Daemon } from '../scheduler/daemon.js';
import { acquireRunLock } from '../store/runLock.js';
import { configFromOptions, withConfigOption } from './context.js';
import { SystemdNotifier } from './systemd.js';

/** Below the unit's TimeoutStopSec=90, so a stop always ends on our terms. */
const STOP_DEADLINE_MS = 60_000;

export function registerRun(program: Command): void {
  withConfigOption(program.command('run'))
    .description('the daemon: run cycles on schedule.cron; SIGHUP or a config edit reloads, SIGUSR1 runs a cycle now, SIGTERM stops')
    .action(async (options: { config?: string }) => {
      // Node's default on SIGHUP is to exit: take the signal before anything else can fail or wait.
      const early = () => undefined;
      process.on('SIGHUP', early);

      const config = configFromOptions(options);
      const logger = createLogger(config.log.level);
      const notifier = new SystemdNotifier();
      const lock = acquireRunLock(config.store.path, 'run');
      const runtime = (() => {
        try {
          return openRuntime(config, logger);
        } catch (err) {
          lock.release();
          throw err;
        }
      })();
      const daemon = new Daemon({ config, runtime, logger, onStatus: (status) => notifier.status(status) });

      let stopping = false;
      let markStopped: () => void = () => undefined;
      const stopped = new Promise<void>((resolve) => {
        markStopped = resolve;
      });
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) {
          logger.warn({ signal }, 'second stop signal: exiting now');
          process.exit(signal === 'SIGINT' ? 130 : 143);
        }
        stopping = true;
        logger.info({ signal, deadlineMs: STOP_DEADLINE_MS }, 'stopping: cycles finish their current step');
        notifier.stopping();
        void daemon.stop(STOP_DEADLINE_MS).then(markStopped);
      };
      process.off('SIGHUP', early);
      process.on('SIGHUP', () => {
        notifier.reloading();
        daemon.reload('SIGHUP');
        notifier.ready(`reloaded; next run ${daemon.nextRun()?.toISOString() ?? 'none'}`);
      });
      process.on('SIGUSR1', () => daemon.trigger());
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);

      daemon.start();
      logger.info(
        { pid: process.pid, config: config.configPath, store: config.store.path, types: config.schedule.types, cron: config.schedule.cron, timezone: config.schedule.timezone, nextRun: daemon.nextRun()?.toISOString() ?? null },
        'daemon started',
      );
      notifier.ready(`idle; next run ${daemon.nextRun()?.toISOString() ?? 'none'}`);

      await stopped;
      runtime.close();
      lock.release();
      logger.info('daemon stopped');
    });
}
