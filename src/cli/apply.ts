import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { EXIT, UsageError } from '../errors.js';
import type { ApplySummary } from '../pipeline/apply/applyFile.js';
import { purgeStore } from '../store/purge.js';
import { applyRunsOf, fileIdentity } from '../store/applyRuns.js';
import type { Db } from '../store/open.js';
import { assertPreflight } from '../store/preflight.js';
import { acquireRunLock } from '../store/runLock.js';
import { JOB_TYPES, type JobType } from '../types.js';
import { configFromOptions, openCheckedStore, openMigratedStore, print, printJson, table, withConfigOption } from './context.js';
import { foregroundLogger } from './foreground.js';
import { showApplyProgress } from './progress.js';
import { onStopSignals } from './signals.js';

interface ApplyCliOptions {
  config?: string;
  type: JobType;
  dryRun?: boolean;
  confirmDeletions?: boolean;
  json?: boolean;
}

const RESUME_HELP = `
Results files may come from any tool (twarc2 compliance-job, a script). Each result deletes, marks or scrubs the geo
of its row as reconcile.policy says (users: and their tweets, with reconcile.cascadeUsers); lines that cannot be
used are counted and written to FILE.rejects.ndjson.

Resuming: an apply stopped by Ctrl-C, SIGTERM or a crash leaves its run open with a checkpoint. Running the same
command again (same --type and the same file path) continues that run after the last committed batch, with the same
compliance_at time; the safety gate is not asked again.

Exit status: 0 applied (or dry run), 1 held by the safety gate, interrupted or failed, 78 bad config.`;

export function registerApply(program: Command): void {
  withConfigOption(program.command('apply'))
    .description('apply a compliance results file (NDJSON) to the store')
    .argument('<file>', 'the results file of a tweets or users compliance job')
    .addOption(new Option('--type <type>', 'which job type the file is the result of').choices(JOB_TYPES).makeOptionMandatory())
    .option('--dry-run', 'apply nothing; report what would change')
    .option('--confirm-deletions', 'apply even when the deletions exceed reconcile.maxDeleteFraction of the stored rows')
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', RESUME_HELP)
    .action(async (fileArg: string, options: ApplyCliOptions) => {
      // The apply pipeline loads only for this command, so the CLI's other commands and --help start fast.
      const { applyResultsFile } = await import('../pipeline/apply/applyFile.js');
      const config = configFromOptions(options);
      const file = path.resolve(fileArg);
      if (isFolder(file)) {
        throw new UsageError(`${file} is a folder; apply takes one results file`, {
          hint: `pass one results file: compliance-sync apply --type ${options.type} ${path.join(fileArg, '<results>.ndjson')}`,
        });
      }
      const interactive = process.stdout.isTTY === true && !options.json;
      const logger = foregroundLogger(config.log.level, interactive);
      // The preflight runs before anything is written. A dry run writes nothing at all: no migration, no switch to
      // WAL, no ledger (its batches are rolled back).
      const check = (db: Db) => assertPreflight(db, config, [options.type]);
      const db = options.dryRun ? openCheckedStore(config, check) : openMigratedStore(config, check).db;
      // Two applies of one file would both resume its run and apply the same lines: one at a time per file.
      let fileLock;
      try {
        fileLock = options.dryRun ? null : acquireRunLock(applyLockBase(config.store.path, file), `apply ${file}`);
      } catch (err) {
        db.close();
        throw err;
      }
      const controller = new AbortController();
      const stopSignals = onStopSignals(controller, logger);
      const bar = interactive ? showApplyProgress(sizeOf(file)) : null;
      try {
        let resumable = options.dryRun ? null : applyRunsOf(db).findResumable(options.type, file);
        if (resumable && resumable.sourceIdentity !== identityOf(file)) {
          // Same path, another file (this week's results over last week's): its checkpoint means nothing here.
          applyRunsOf(db).giveUp(resumable.id, new Date().toISOString());
          if (!options.json) print(`apply run #${resumable.id} was of an earlier file at this path; starting over`);
          resumable = null;
        }
        if (resumable && !options.json) print(`resuming apply run #${resumable.id} of ${file} after line ${resumable.checkpointLine}`);
        const summary = await applyResultsFile({
          db,
          config,
          type: options.type,
          file,
          logger,
          runId: resumable?.id,
          confirmDeletions: options.confirmDeletions ?? false,
          dryRun: options.dryRun ?? false,
          signal: controller.signal,
          onProgress: bar ? (p) => bar.update(p.bytesRead, p.phase === 'scan' ? 'checking' : 'applying') : undefined,
        });
        bar?.stop();
        if (!options.dryRun && config.reconcile.purge && summary.state === 'done') {
          const purge = await purgeStore(db, { vacuum: config.reconcile.vacuum === 'cycle', maxLockMs: config.reconcile.maxLockMs });
          logger[purge.walBusy ? 'warn' : 'info'](purge, purge.walBusy ? 'purge: FTS optimized; the WAL is in use by a reader and stays until the next purge' : 'purge: FTS optimized, WAL truncated');
        }
        if (options.json) printJson(summary);
        else print(formatApplySummary(summary, options.type, options.dryRun ?? false));
        process.exitCode = reportOutcome(summary, options, config.reconcile.maxDeleteFraction);
      } finally {
        bar?.stop();
        stopSignals();
        db.close();
        fileLock?.release();
      }
    });
}

function isFolder(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The exit code, with a line on stderr saying what to do when it is not 0. */
function reportOutcome(summary: ApplySummary, options: ApplyCliOptions, fraction: number): number {
  if (summary.state === 'held') {
    const stored = options.type;
    process.stderr.write(
      `compliance-sync: ${options.dryRun ? 'would be held' : 'held'}: the file would delete ${summary.wouldDelete} stored ${stored}, ` +
        `more than reconcile.maxDeleteFraction (${fraction}) of them; ${options.dryRun ? 'dry run' : 'nothing applied'}\n` +
        'Try: rerun with --confirm-deletions after checking the file\n',
    );
    return options.dryRun ? EXIT.ok : EXIT.failure;
  }
  if (summary.state === 'interrupted') {
    process.stderr.write(
      `compliance-sync: interrupted after line ${summary.linesRead}; what was applied is committed\n` +
        'Try: rerun the same command to resume\n',
    );
    return EXIT.failure;
  }
  return EXIT.ok;
}

/** The end-of-apply table: what was read, what each action did, what was rejected and why, how fast. */
function formatApplySummary(summary: ApplySummary, type: JobType, dryRun: boolean): string {
  const verb = dryRun ? 'would be ' : '';
  const seconds = summary.elapsedMs / 1000;
  const rows: [string, string][] = [
    ['state', dryRun ? `${summary.state} (dry run: nothing written)` : summary.state],
    ['run', summary.runId === null ? '-' : `#${summary.runId}`],
    ['lines read', String(summary.linesRead)],
    ['records', String(summary.records)],
    [`${verb}deleted`, String(summary.applied.delete)],
    [`${verb}marked`, String(summary.applied.mark)],
    [`${verb}geo scrubbed`, String(summary.applied.scrub_geo)],
    ['ignored by policy', String(summary.applied.ignore)],
    [`not in store`, String(summary.notFound)],
  ];
  if (type === 'users') {
    rows.push(
      [`tweets ${verb}deleted (cascade)`, String(summary.cascaded.deleted)],
      [`tweets ${verb}marked (cascade)`, String(summary.cascaded.marked)],
      [`tweets ${verb}geo scrubbed (cascade)`, String(summary.cascaded.scrubbed)],
    );
  }
  for (const [kind, n] of Object.entries(summary.rejected).sort()) rows.push([`rejected: ${kind}`, String(n)]);
  if (summary.rejectsFile) rows.push(['rejects file', summary.rejectsFile]);
  rows.push(['elapsed', `${seconds.toFixed(1)} s`], ['rows/s', seconds > 0 ? String(Math.round(summary.records / seconds)) : '-']);
  return table(rows);
}

/** The file's identity, or null when it cannot be read (applyResultsFile then says so). */
function identityOf(file: string): string | null {
  try {
    return fileIdentity(statSync(file));
  } catch {
    return null;
  }
}

/** The lock of one results file's apply, beside the store (whose folder is writable, unlike maybe the file's). */
export function applyLockBase(storePath: string, file: string): string {
  return `${storePath}.apply-${createHash('sha256').update(file).digest('hex').slice(0, 16)}`;
}
