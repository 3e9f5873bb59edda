import { Option, type Command } from 'commander';
import { EXIT, UsageError } from '../errors.js';
import type { CycleSummary } from '../pipeline/events.js';
import { acquireRunLock, describeHolder, waitForRunLock, type LockHolder } from '../store/runLock.js';
import { JOB_TYPES, type JobType } from '../types.js';
import { configFromOptions, print, printJson, withConfigOption } from './context.js';
import { foregroundLogger, runCyclesInForeground } from './foreground.js';
import { formatCycleSummaries } from './summary.js';

interface ReconcileOptions {
  config?: string;
  now?: boolean;
  type?: JobType;
  dryRun?: boolean;
  confirmDeletions?: boolean;
  wait?: boolean | string;
  json?: boolean;
}

export function registerReconcile(program: Command): void {
  withConfigOption(program.command('reconcile'))
    .description('run a full compliance cycle now (or resume the unfinished one) and exit: 0 when every shard applied, 1 otherwise')
    .option('--now', 'run now (required: scheduled runs belong to `compliance-sync run`)')
    .addOption(new Option('--type <type>', 'only this type (default: schedule.types)').choices(JOB_TYPES))
    .option('--dry-run', 'run the jobs but apply nothing; report what would change')
    .option('--confirm-deletions', 'apply shards held by the safety gate (reconcile.maxDeleteFraction)')
    .option('--wait [seconds]', `wait for the store’s run lock instead of exiting 75 when it is held, up to SECONDS (default ${DEFAULT_WAIT_SECONDS}), saying what it waits for`)
    .option('--json', 'print the summary as JSON')
    .action(async (options: ReconcileOptions) => {
      if (!options.now) throw new UsageError('reconcile needs --now', { hint: 'compliance-sync reconcile --now (the daemon `run` schedules cycles)' });
      const waitMs = waitTimeoutMs(options.wait);
      const config = configFromOptions(options);
      const interactive = process.stderr.isTTY === true && !options.json;
      await runCyclesInForeground(
        {
          config,
          logger: foregroundLogger(config.log.level, interactive),
          interactive,
          takeLock: (signal) =>
            waitMs === null
              ? acquireRunLock(config.store.path, 'reconcile --now')
              : waitForRunLock(config.store.path, 'reconcile --now', { signal, timeoutMs: waitMs, onWaiting: sayWaiting(config.store.path, waitMs) }),
          types: options.type ? [options.type] : config.schedule.types,
          cycle: { trigger: 'manual', dryRun: options.dryRun },
          confirmDeletions: options.confirmDeletions,
        },
        (summaries, _runtime, everyShardApplied) => {
          if (options.json) printJson(summaries);
          else print(formatCycleSummaries(summaries));
          const ok = everyShardApplied;
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

/** A bare --wait waits this long: a cycle that runs longer is stuck or huge, and a oneshot unit must not hang for ever. */
const DEFAULT_WAIT_SECONDS = 3600;

/** --wait's limit in ms, or null without --wait. */
function waitTimeoutMs(wait: ReconcileOptions['wait']): number | null {
  if (wait === undefined || wait === false) return null;
  if (wait === true) return DEFAULT_WAIT_SECONDS * 1000;
  const seconds = Number(wait);
  if (!/^\d+(\.\d+)?$/.test(wait) || !(seconds > 0)) {
    throw new UsageError(`--wait takes a number of seconds (got "${wait}")`, { hint: 'compliance-sync reconcile --now --wait 600' });
  }
  return seconds * 1000;
}

/** One line on stderr when the wait begins and every 30 s: what it waits for, who holds it, how long it will wait. */
function sayWaiting(storePath: string, waitMs: number) {
  return (holder: LockHolder | null, waitedMs: number) => {
    const who = holder ? describeHolder(holder) : 'another process';
    process.stderr.write(
      `compliance-sync: waiting for the run lock of ${storePath}, held by ${who}; waited ${Math.round(waitedMs / 1000)} s of at most ${Math.round(waitMs / 1000)} s\n`,
    );
  };
}
