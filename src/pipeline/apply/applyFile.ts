import { existsSync } from 'node:fs';
import { AppError } from '../../errors.js';
import { applyRunsOf } from '../../store/applyRuns.js';
import { WalCheckpoints } from '../../store/walCheckpoints.js';
import { BadLine, readResultLines } from '../resultLines.js';
import { toResultRecord } from '../resultRecords.js';
import { RejectsWriter, rejectsPathFor } from '../rejects.js';
import { BatchApplier } from './batchApplier.js';
import { openApplyRun } from './run.js';
import { checkSafetyGate, deletionLimits } from './safetyGate.js';
import { prepareApplyTarget, resolveApplyTarget } from './target.js';
import type { ApplyOptions, ApplySummary } from './types.js';

export type { ApplyOptions, ApplySummary, Cut, ShardScope } from './types.js';

/** A results file from this size on (about 10,000 lines) is applied with its WAL checkpoints in a worker. */
const BACKGROUND_CHECKPOINTS_FROM_BYTES = 1 << 20;

/**
 * The apply step: applies a results file to the store (docs/architecture.md#from-a-result-line-to-a-row-change),
 * streamed, validated line by line, applied in batches of `reconcile.batchSize`, each batch in transactions bounded
 * by `reconcile.maxLockMs`, each committed together with the run's checkpoint and audit. Nothing is applied when the
 * safety gate trips. Resolves with what was done; throws an AppError when the store or file cannot be used.
 *
 * Its parts, in order: target preparation (target.ts), run open/resume (run.ts), the safety gate (safetyGate.ts),
 * then the file read into the batch applier (batchApplier.ts), which applies each record (records.ts).
 */
export async function applyResultsFile(options: ApplyOptions): Promise<ApplySummary> {
  const started = performance.now();
  const { db, type } = options;
  const target = resolveApplyTarget(options);
  const now = options.now ?? (() => new Date());
  const opened = openApplyRun(options, now);
  const { file, run, totals, checkpoint, resumed } = opened;
  const runs = run ? applyRunsOf(db) : null;
  const { statements, relaxForeignKeys } = await prepareApplyTarget(options, target, run?.id ?? null);
  const logger = options.logger.child({ type, runId: run?.id ?? null, ...(options.shard ? { shard: options.shard.id } : {}) });
  const limits = deletionLimits(options, statements);
  const summary = (state: ApplySummary['state'], wouldDelete: number, rejectsFile: string | null): ApplySummary => ({
    runId: run?.id ?? null,
    state,
    ...totals,
    wouldDelete,
    elapsedMs: Math.round(performance.now() - started),
    rejectsFile,
  });
  logger.info({ file, bytes: opened.fileSize, fromLine: checkpoint, dryRun: options.dryRun ?? false }, 'apply: start');

  // The gate runs before anything is applied; a resumed run (checkpoint > 0) passed it already.
  if (!options.dryRun && !resumed && !options.confirmDeletions) {
    const gate = await checkSafetyGate(file, statements, limits, options);
    if (gate === 'interrupted') return summary('interrupted', 0, null);
    if (!gate.pass) {
      totals.linesRead = gate.lines;
      runs!.finish(run!.id, 'held', totals, now().toISOString());
      logger.warn(
        { wouldDelete: gate.deletions, limit: Math.floor(limits.rows), cascaded: gate.cascaded, cascadeLimit: Math.floor(limits.cascaded) },
        'apply: held by the safety gate, nothing applied',
      );
      return summary('held', gate.deletions + gate.cascaded, null);
    }
  }

  const rejects = options.dryRun ? null : resumed ? await RejectsWriter.resumed(file, checkpoint) : RejectsWriter.fresh(file);
  // A file this large commits transactions of thousands of pages: the WAL is copied into the store by a worker
  // meanwhile (walCheckpoints.ts). A smaller one is not worth a thread; a dry run commits nothing.
  const checkpoints = options.dryRun || opened.fileSize < BACKGROUND_CHECKPOINTS_FROM_BYTES ? null : WalCheckpoints.start(db, logger);
  const applier = new BatchApplier({
    db,
    statements,
    relaxForeignKeys,
    ledger: run ? { runs: applyRunsOf(db), runId: run.id } : null,
    rejects,
    checkpoints,
    asOf: opened.asOf,
    totals,
    checkpoint,
    resumeCut: opened.resumeCut,
    logger,
    options,
  });
  const policy = options.config.reconcile.policy;
  const range = options.shard?.idRange;
  let interrupted = false;
  try {
    const read = await readResultLines(
      file,
      (line, value, text) => {
        if (line <= checkpoint) return;
        if (value instanceof BadLine) {
          if (value.blank) return;
          applier.addReject(line, 'malformed_json', text);
        } else {
          const record = toResultRecord(value, policy, range);
          if (typeof record === 'string') applier.addReject(line, record, text);
          else applier.addRecord(record);
        }
        if (applier.isBatchEnd(line)) return applier.flush(line);
      },
      (bytes) => (applier.bytes = bytes),
    );
    interrupted = read.stopped;
    if (!interrupted && read.lines > applier.committedLine) interrupted = await applier.flush(read.lines);
    // A sweep left pending after the last batch's records (a run stopped there, or another run's): done before this one.
    if (!interrupted) interrupted = await applier.finishSweep();
  } finally {
    try {
      rejects?.close();
    } finally {
      await checkpoints?.stop();
    }
  }

  const rejectsFile = rejects && existsSync(rejectsPathFor(file)) ? rejectsPathFor(file) : null;
  if (interrupted) {
    logger.info({ checkpoint: applier.committedLine }, 'apply: interrupted; rerun to resume from the checkpoint');
    return summary('interrupted', 0, rejectsFile);
  }
  const rejectedLines = Object.values(totals.rejected).reduce((sum, n) => sum + n, 0);
  if (totals.records === 0 && rejectedLines > 0) {
    // Nothing in the file could be used: that is a failed apply, not an empty result.
    if (run) runs!.finish(run.id, 'failed', totals, now().toISOString());
    const kinds = Object.entries(totals.rejected).map(([kind, n]) => `${n} ${kind}`).join(', ');
    throw new AppError('results_unusable', `every line of the results file ${file} was rejected (${kinds}); nothing was applied`, {
      hint: rejectsFile ? `see what was wrong with each line in ${rejectsFile}` : 'check the file: one result object per line, as X returns it',
    });
  }
  if (options.dryRun) {
    const held = (totals.applied.delete > limits.rows || totals.cascaded.deleted > limits.cascaded) && !options.confirmDeletions;
    logger.info({ ...totals, held }, 'apply: dry run finished, nothing written');
    return summary(held ? 'held' : 'done', totals.applied.delete + totals.cascaded.deleted, null);
  }
  runs!.finish(run!.id, 'done', totals, now().toISOString());
  logger.info({ ...totals }, 'apply: done');
  return summary('done', totals.applied.delete + totals.cascaded.deleted, rejectsFile);
}
