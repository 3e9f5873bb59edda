import { statSync } from 'node:fs';
import path from 'node:path';
import { AppError, StoreError } from '../../errors.js';
import { createApplyRun, fileIdentity, reopenApplyRun, type ApplyRun } from '../../store/applyRuns.js';
import { describeUnusableResults } from '../resultLines.js';
import { emptyTotals } from './totals.js';
import type { ApplyOptions, Cut, Totals } from './types.js';

/** An apply run opened (new) or resumed, and where in the file it stands. */
export interface OpenedRun {
  /** The results file, absolute. */
  file: string;
  fileSize: number;
  /** null for a dry run: nothing is recorded. */
  run: ApplyRun | null;
  /** Totals of what committed transactions applied (all zero for a new run). */
  totals: Totals;
  /** Lines up to this one are applied. */
  checkpoint: number;
  /** A batch a transaction ended inside of (reconcile.maxLockMs), to go on with. */
  resumeCut: Cut | null;
  /** Part of the file (or of a batch) is applied already: the gate ran, and the rejects file holds entries. */
  resumed: boolean;
  /** The run's time, written as the mark and tombstone time: the same on every resume. */
  asOf: string;
}

/**
 * Run open/resume: checks the file, then creates the cs_apply_runs row (or reopens `options.runId`, which must be of
 * the same file, unchanged since it stopped) and reads back its checkpoint, cut and totals.
 */
export function openApplyRun(options: ApplyOptions, now: () => Date): OpenedRun {
  const { db, type } = options;
  const file = path.resolve(options.file);
  const stats = resultsFileStats(file);
  const identity = fileIdentity(stats);
  const unusable = describeUnusableResults(file);
  if (unusable) {
    throw new AppError('results_unusable', `the results file ${file} is ${unusable}`, {
      hint: 'give a results file of JSON lines, one result object per line, as X returns it',
    });
  }
  let run: ApplyRun | null = null;
  if (!options.dryRun) {
    run =
      options.runId !== undefined
        ? reopenApplyRun(db, options.runId, type)
        : createApplyRun(db, {
            type,
            source: file,
            sourceIdentity: identity,
            shardId: options.shard?.id,
            asOf: now().toISOString(),
            startedAt: now().toISOString(),
          });
  }
  if (run && run.source !== file) {
    throw new StoreError('apply_run_source', `apply run ${run.id} applies ${run.source}, not ${file}`, {
      hint: 'resume a run with the file it started with, or start a new run',
    });
  }
  // A checkpoint counts lines of one file: a new file at the same path must not resume it (lines would be skipped).
  if (run && run.checkpointLine > 0 && run.sourceIdentity !== null && run.sourceIdentity !== identity) {
    throw new StoreError('apply_run_source_changed', `apply run ${run.id} stopped at line ${run.checkpointLine} of a different ${file}`, {
      hint: 'the file was replaced since; start a new run of it',
    });
  }
  // Totals carry over only from committed batches; a held run's counts are the gate's scan, not applied lines.
  const saved = run?.countsJson ? (JSON.parse(run.countsJson) as Totals & { cut?: Cut }) : null;
  const resumeCut: Cut | null = saved?.cut ?? null;
  if (saved) delete saved.cut;
  const totals: Totals = saved && (run!.checkpointLine > 0 || resumeCut) ? { ...emptyTotals(), ...saved } : emptyTotals();
  const checkpoint = run?.checkpointLine ?? 0;
  return {
    file,
    fileSize: stats.size,
    run,
    totals,
    checkpoint,
    resumeCut,
    resumed: checkpoint > 0 || resumeCut !== null,
    asOf: run?.asOf ?? now().toISOString(),
  };
}

function resultsFileStats(file: string): { size: number; mtimeMs: number; ino: number } {
  try {
    return statSync(file);
  } catch (err) {
    throw new AppError('results_unreadable', `cannot read the results file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      cause: err,
      hint: 'check the path of the results file',
    });
  }
}
