import { Option, type Command } from 'commander';
import pino from 'pino';
import { EXIT, StoreBusyError, UsageError } from '../errors.js';
import { createLogger } from '../log.js';
import { runCycles } from '../pipeline/cycle.js';
import { openRuntime } from '../pipeline/runtime.js';
import { acquireRunLock, waitForRunLock } from '../store/runLock.js';
import { JOB_TYPES, type JobType } from '../types.js';
import { configFromOptions, print, printJson, withConfigOption } from './context.js';
import { showProgress } from './progress.js';
import { onStopSignals } from './signals.js';
import { formatCycleSummaries } from './summary.js';

interface ReconcileOptions {
  config?: string;
  now?: boolean;
  type?: JobType;
  dryRun?: boolean;
  confirmDeletions?: boolean;
  wait?: boolean;
  json?: boolean;
}

export function registerReconcile(program: Command): void {
  withConfigOption(program.command('reconcile'))
    .description('run a full compliance cycle now (or resume the unfinished one) and exit: 0 when every shard applied, 1 otherwise')
    .option('--now', 'run now (required: scheduled runs belong to `compliance-sync run`)')
    .addOption(new Option('--type <type>', 'only this type (default: schedule.types)').choices(JOB_TYPES))
    .option('--dry-run', 'run the jobs but apply nothing; report what would change')
    .option('--confirm-deletions', 'apply shards held by the safety gate (reconcile.maxDeleteFraction)')
    .option('--wait', 'wait for the store’s run lock instead of exiting 75 when it is held')
    .option('--json', 'print the summary as JSON')
    .action(async (options: ReconcileOptions) => {
      if (!options.now) throw new UsageError('reconcile needs --now', { hint: 'compliance-sync reconcile --now (the daemon `run` schedules cycles)' });
      const config = configFromOptions(options);
      const interactive = process.stderr.isTTY === true && !options.json;
      // On a terminal the progress bars speak; logs keep only warnings. Otherwise one log line per state change.
      // Logs go to stderr so that stdout carries only the summary (or its JSON).
      const logger = createLogger(interactive ? 'warn' : config.log.level, pino.destination({ dest: 2, sync: true }));
      const controller = new AbortController();
      const stopSignals = onStopSignals(controller, logger);
      const lock = options.wait
        ? await waitForRunLock(config.store.path, 'reconcile --now', controller.signal)
        : takeLock(config.store.path, options);
      let runtime;
      try {
        runtime = openRuntime(config, logger);
        const stopProgress = interactive ? showProgress(runtime.events) : () => undefined;
        const types = options.type ? [options.type] : config.schedule.types;
        let summaries;
        try {
          summaries = await runCycles(runtime.context(controller.signal, { confirmDeletions: options.confirmDeletions }), types, {
            trigger: 'manual',
            dryRun: options.dryRun,
          });
        } finally {
          stopProgress();
        }
        if (options.json) printJson(summaries);
        else print(formatCycleSummaries(summaries));
        const ok = summaries.every((summary) => summary.state === 'closed' && summary.shards.failed === 0);
        if (!ok && !options.json) {
          const held = summaries.some((summary) => summary.state === 'held');
          const interrupted = summaries.some((summary) => summary.state === 'interrupted');
          process.stderr.write(
            interrupted
              ? 'compliance-sync: interrupted; the ledger is consistent\nTry: rerun `compliance-sync reconcile --now` to resume\n'
              : held
                ? 'compliance-sync: shards are held by the safety gate (implausible share of deletions)\nTry: check the results files named in the log, then rerun with --confirm-deletions\n'
                : 'compliance-sync: some shards failed after every attempt\nTry: see the failures above; the next cycle checks them again\n',
          );
        }
        process.exitCode = ok ? EXIT.ok : EXIT.failure;
      } finally {
        runtime?.close();
        lock.release();
        stopSignals();
      }
    });
}

/** The run lock; when the daemon holds it, the hint says what the daemon can do for this run and what it cannot. */
function takeLock(storePath: string, options: ReconcileOptions) {
  try {
    return acquireRunLock(storePath, 'reconcile --now');
  } catch (err) {
    if (err instanceof StoreBusyError && (options.dryRun || options.confirmDeletions) && /in use by run /.test(err.message)) {
      throw new StoreBusyError(err.message, {
        hint: `the daemon cannot ${options.dryRun ? 'dry-run' : 'confirm deletions'}: stop it (systemctl stop compliance-sync), run this, then start it again; or pass --wait`,
      });
    }
    throw err;
  }
}
