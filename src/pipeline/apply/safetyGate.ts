import type { ContentStatements } from '../../store/contentStatements.js';
import type { Id } from '../../types.js';
import { countFileLines } from '../lineCount.js';
import { BadLine, readResultLines } from '../resultLines.js';
import { toResultRecord } from '../resultRecords.js';
import type { ApplyOptions } from './types.js';

/** How many deletions a file may cause before it is held (reconcile.maxDeleteFraction of what it concerns). */
export interface DeletionLimits {
  /** Rows of the file's own type. */
  rows: number;
  /** Tweets deleted because their author is (a users file with reconcile.cascadeUsers); Infinity without a cascade. */
  cascaded: number;
}

export function deletionLimits(options: ApplyOptions, statements: ContentStatements): DeletionLimits {
  const fraction = options.config.reconcile.maxDeleteFraction;
  return {
    rows: fraction * (options.shard?.submittedIds ?? statements.countRows()),
    // A users file also deletes the tweets of the users it deletes (cascadeUsers): those count against the tweets.
    cascaded: statements.cascade ? fraction * statements.cascade.countTweets() : Infinity,
  };
}

export type GateVerdict = { pass: true } | { pass: false; deletions: number; cascaded: number; lines: number } | 'interrupted';

/**
 * The safety gate, before anything is applied: counts the deletions the file would cause, and says whether they stay
 * within the limits. Held: the caller records the run as held and applies nothing.
 */
export async function checkSafetyGate(file: string, statements: ContentStatements, limits: DeletionLimits, options: ApplyOptions): Promise<GateVerdict> {
  const gate = await countDeletions(file, statements, limits.rows, options);
  if (gate === 'interrupted') return gate;
  if (gate.deletions > limits.rows || gate.cascaded > limits.cascaded) return { pass: false, ...gate };
  return { pass: true };
}

/**
 * The safety gate's count of the deletions a file would cause: validated records whose action taken is delete, of
 * IDs stored (and in range). Cheap first, in constant memory: the file's line count bounds it; then the delete
 * records found by parsing bound it; only when those exceed the limit is the store asked which of them exist, per
 * chunk of 50,000 (a repeated ID is counted once per chunk, so the figure can only err high — towards holding).
 */
async function countDeletions(
  file: string,
  statements: ContentStatements,
  limit: number,
  options: ApplyOptions,
): Promise<{ deletions: number; cascaded: number; lines: number } | 'interrupted'> {
  // One users line can delete many tweets: with a cascade, only the store-checked scan can tell.
  if (!statements.cascade) {
    const lineCount = await countFileLines(file);
    if (lineCount <= limit) return { deletions: 0, cascaded: 0, lines: lineCount };
    const candidates = await scanDeletes(file, options, null);
    if (candidates === 'interrupted' || candidates.deletions <= limit) return candidates;
  }
  return scanDeletes(file, options, statements);
}

/** Counts delete records (checked against the store when `statements` is given). */
async function scanDeletes(
  file: string,
  options: ApplyOptions,
  statements: ContentStatements | null,
): Promise<{ deletions: number; cascaded: number; lines: number } | 'interrupted'> {
  const policy = options.config.reconcile.policy;
  let deletions = 0;
  let cascaded = 0;
  let pending: Id[] = [];
  const resolve = () => {
    const unique = [...new Set(pending)];
    deletions += statements ? statements.countExisting(unique) : 0;
    cascaded += statements?.cascade ? statements.cascade.countByAuthors(unique) : 0;
    pending = [];
  };
  let bytesRead = 0;
  const read = await readResultLines(
    file,
    (line, value) => {
      if (line % 50_000 === 0) {
        options.onProgress?.({ bytesRead, linesRead: line, phase: 'scan' });
        if (options.signal?.aborted) return true;
      }
      if (value instanceof BadLine) return;
      const record = toResultRecord(value, line, policy, options.shard?.idRange);
      if (typeof record === 'string' || record.taken !== 'delete') return;
      if (!statements) {
        deletions++;
        return;
      }
      pending.push(record.id);
      if (pending.length >= 50_000) resolve();
    },
    (bytes) => (bytesRead = bytes),
  );
  if (read.stopped) return 'interrupted';
  resolve();
  return { deletions, cascaded, lines: read.lines };
}
