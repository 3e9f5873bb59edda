import { Option, type Command } from 'commander';
import { EXIT, StoreBusyError, UsageError } from '../errors.js';
import type { CycleSummary } from '../pipeline/events.js';
import { acquireRunLock, waitForRunLock } from '../store/runLock.js';
import { JOB_TYPES, type JobType } from '../types.js';
import { configFromOptions, print, printJson, withConfigOption } from './context.js';
import { everyShardApplied, foregroundLogger, runCyclesInForeground } from './foreground.js';
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
      await runCyclesInForeground(
        {
          config,
          logger: foregroundLogger(config.log.level, interactive),
          interactive,
          takeLock: (signal) =>
            options.wait ? waitForRunLock(config.store.path, 'reconcile --now', signal) : takeLock(config.store.path, options),
          types: options.type ? [options.type] : config.schedule.types,
          cycle: { trigger: 'manual', dryRun: options.dryRun },
          confirmDeletions: options.confirmDeletions,
        },
        (summaries) => {
          if (options.json) printJson(summaries);
          else print(formatCycleSummaries(summaries));
          const ok = everyShardApplied(summaries);
          if (!ok && !options.json) process.stderr.write(whatToDoNext(summaries));
          process.exitCode = ok ? EXIT.ok : EXIT.failure;
        },
      );
    });
}

/** The error and `Try:` lines of a run that did not apply every shard. */
function whatToDoNext(summaries: readonly CycleSummary[]): string {
  if (summaries.some((summary) => summary.state === 'interrupted')) {
    return 'compliance-sync: interrupted; the ledger is consistent\nTry: rerun `compliance-sync reconcile --now` to resume\n';
  }
  if (summaries.some((summary) => summary.state === 'held')) {
    return 'compliance-sync: shards are held by the safety gate (implausible share of deletions)\nTry: check the results files named in the log, then rerun with --confirm-deletions\n';
  }
  return 'compliance-sync: some shards failed after every attempt\nTry: see the failures above; the next cycle checks them again\n';
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
