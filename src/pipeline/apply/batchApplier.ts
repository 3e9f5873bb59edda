import { setImmediate } from 'node:timers/promises';
import type { Logger } from '../../log.js';
import { runRolledBack, type ApplyRuns, type BatchRecord } from '../../store/applyRuns.js';
import { actionTotalsOf, type AuditCounts } from '../../store/auditCounts.js';
import { addChanges, type ChangeCount } from '../../store/changeCounts.js';
import type { ContentStatements } from '../../store/contentStatements.js';
import { cutAfterMs, lockReleased, lockTurn } from '../../store/lockPace.js';
import { translateSqliteError, withForeignKeysRelaxed, type Db } from '../../store/open.js';
import type { WalCheckpoints } from '../../store/walCheckpoints.js';
import { compareIds } from '../../types.js';
import type { RejectKind, ResultRecord } from '../resultRecords.js';
import type { RejectsWriter } from '../rejects.js';
import { applyRecords, auditFollowUps, foundCounted, type Reached } from './records.js';
import { addTotals, emptyTotals } from './totals.js';
import type { ApplyOptions, Cut, Totals } from './types.js';

export interface BatchApplierSetup {
  db: Db;
  statements: ContentStatements;
  relaxForeignKeys: boolean;
  /** The run each transaction is recorded on; null for a dry run: nothing is recorded. */
  ledger: { runs: ApplyRuns; runId: number } | null;
  rejects: RejectsWriter | null;
  /** Told of each commit (null: the connection checkpoints the WAL itself). */
  checkpoints: WalCheckpoints | null;
  asOf: string;
  /** The run's totals so far (a resumed run's); the applier adds each commit's to them. */
  totals: Totals;
  /** Lines up to this one are applied. */
  checkpoint: number;
  /** A batch a transaction ended inside of, to go on with. */
  resumeCut: Cut | null;
  logger: Logger;
  options: Pick<ApplyOptions, 'dryRun' | 'signal' | 'onProgress' | 'onCommit' | 'clock' | 'config'>;
}

/**
 * The batch applier: collects a file's records and rejects into batches of `reconcile.batchSize` lines and applies
 * each in as many transactions as `reconcile.maxLockMs` asks for (usually one), each committed with the run's
 * checkpoint, totals, audit and change counts. Its state: the batch being collected, the run's totals, the last
 * committed line, and the cut a resumed run goes on from.
 */
export class BatchApplier {
  readonly totals: Totals;
  /** The last line of the last batch wholly committed. */
  committedLine: number;
  private batch: ResultRecord[] = [];
  private batchRejects: { line: number; kind: RejectKind }[] = [];
  private resumeCut: Cut | null;
  private bytesRead = 0;
  private readonly loggedKinds = new Set<string>();
  // A dry run rolls back each transaction, so work cut there would never be seen done: it is not cut.
  private readonly maxLockMs: number;
  private readonly clock: () => number;
  /** The last transaction's untimed tail: from the end of its sweep to the end of its commit. */
  private lastTailMs = 0;

  constructor(private readonly setup: BatchApplierSetup) {
    this.totals = setup.totals;
    this.committedLine = setup.checkpoint;
    this.resumeCut = setup.resumeCut;
    this.maxLockMs = setup.options.dryRun ? Infinity : setup.options.config.reconcile.maxLockMs;
    this.clock = setup.options.clock ?? (() => performance.now());
  }

  /** How far the file has been read, for progress. */
  set bytes(n: number) {
    this.bytesRead = n;
  }

  addRecord(record: ResultRecord): void {
    this.batch.push(record);
  }

  addReject(line: number, kind: RejectKind, text: string): void {
    this.batchRejects.push({ line, kind });
    this.setup.rejects?.add(line, kind, text);
  }

  /** The batch ends at `line`: full, or — a cut batch re-read — exactly where it ended, whatever batchSize says now. */
  isBatchEnd(line: number): boolean {
    if (this.resumeCut) return line === this.resumeCut.line;
    return this.batch.length + this.batchRejects.length >= this.setup.options.config.reconcile.batchSize;
  }

  /**
   * Applies the batch ending at `line`, committed with its checkpoint, yielding to the event loop between
   * transactions. A sweep left pending (by a transaction cut by time, or by a run that stopped) is finished by
   * transactions that only sweep before any more records are taken, and before the batch counts as done. Resolves to
   * true when interrupted (the checkpoint then says exactly what is done; a pending sweep is in the ledger).
   */
  async flush(line: number): Promise<boolean> {
    const { options, logger, rejects } = this.setup;
    rejects?.flush();
    // ID order: one pass over the table's pages (see applyRecords); the sort is stable, so a resumed run sees the
    // batch in the same order and can skip what a cut committed.
    this.batch.sort((a, b) => compareIds(a.id, b.id));
    const resumed = this.resumeCut?.line === line ? this.resumeCut : null;
    let done: Reached = resumed ? { records: resumed.records, after: resumed.after ?? null } : { records: 0, after: null };
    /** The cut as last committed; null once the batch's records are all applied (its lines counted). */
    let cut: Cut | null = resumed;
    let counted = false;
    this.resumeCut = null;
    for (;;) {
      const sweep = await this.sweepWhilePending(counted ? line : this.committedLine, cut);
      if (sweep === 'interrupted') return true;
      if (counted) break;
      if (sweep === 'swept' && options.signal?.aborted) return true;
      await this.turn();
      const { reached, swept } = this.commitFrom(line, { from: done });
      done = reached;
      counted = reached.records === this.batch.length;
      cut = counted ? null : cutAt(line, reached);
      options.onCommit?.({ checkpointLine: counted ? line : this.committedLine, cut, sweepPending: !swept });
      if (counted && swept) break;
      if (!swept) logger.debug({ line }, 'apply: sweep of embedded copies cut by reconcile.maxLockMs');
      else logger.debug({ line, records: reached.records, after: reached.after, of: this.batch.length }, 'apply: batch cut by reconcile.maxLockMs');
      // The ingester's writes and this process's own timers (polls, the watchdog) get their turn (lockTurn).
      if (options.signal?.aborted) return true;
    }
    for (const r of this.batchRejects) {
      if (this.loggedKinds.has(r.kind)) continue;
      this.loggedKinds.add(r.kind);
      logger.warn({ kind: r.kind, line: r.line }, 'apply: rejected line(s) of this kind; see the rejects file');
    }
    logger.debug({ line, records: this.batch.length, rejected: this.batchRejects.length }, 'apply: batch committed');
    this.committedLine = line;
    this.batch = [];
    this.batchRejects = [];
    options.onProgress?.({ bytesRead: this.bytesRead, linesRead: line, phase: 'apply' });
    await setImmediate();
    return options.signal?.aborted ?? false;
  }

  /**
   * Finishes a sweep still pending once every batch is committed (left by a run that stopped after its last batch's
   * records), in paced transactions that only sweep: a run is never done with one pending. Resolves to true when
   * interrupted.
   */
  async finishSweep(): Promise<boolean> {
    return (await this.sweepWhilePending(this.committedLine, null)) === 'interrupted';
  }

  /**
   * Transactions that only sweep, paced, while a sweep is pending; each commits the checkpoint and cut as they are.
   * Resolves to 'idle' when none was pending, 'swept' when it is done, 'interrupted' when stopped half-way.
   */
  private async sweepWhilePending(checkpointLine: number, cut: Cut | null): Promise<'idle' | 'swept' | 'interrupted'> {
    const { options, logger, statements } = this.setup;
    if (!statements.sweepPending()) return 'idle';
    for (;;) {
      await this.turn();
      const { swept } = this.commitFrom(checkpointLine, { checkpointLine, cut });
      options.onCommit?.({ checkpointLine, cut, sweepPending: !swept });
      if (swept) return 'swept';
      logger.debug({ line: checkpointLine }, 'apply: sweep of embedded copies cut by reconcile.maxLockMs');
      if (options.signal?.aborted) return 'interrupted';
    }
  }

  /** Waits for the next transaction's turn at the lock (none in a dry run); first for a fresh WAL when it grew long. */
  private async turn(): Promise<void> {
    if (this.setup.options.dryRun) return;
    await this.setup.checkpoints?.beforeTransaction();
    await lockTurn(this.maxLockMs);
  }

  /**
   * How long the next transaction may take records, and sweep. Half and three quarters of reconcile.maxLockMs, the
   * commit keeping the rest: its sweep usually takes a few milliseconds, and cut at the records' limit nearly every
   * transaction left a sweep pending and needed a sweep-only one after it (measured: twice the transactions of a
   * 200k apply). What comes after the sweep is not cut: the ledger writes and the commit, whose WAL write grows with
   * the pages a transaction touched (80–135 ms in a 2M-tweet store, bench/README.md). When the last transaction's
   * tail would not fit, both limits shrink to leave it room with a quarter to spare, to an eighth of the bound at
   * least, so that every transaction gets on.
   */
  private budget(): { records: number; sweep: number } {
    const half = cutAfterMs(this.maxLockMs);
    const room = this.maxLockMs - 1.25 * this.lastTailMs;
    const sweep = Math.max(this.maxLockMs / 8, Math.min(half * 1.5, room));
    return { records: Math.min(half, sweep), sweep };
  }

  /**
   * One transaction: the batch ending at `line` from `from` on, until it ends or the transaction has held the lock
   * for half of reconcile.maxLockMs, then the sweeps (until three quarters of it); with it, the checkpoint (this batch's
   * start while it is cut), the totals, the audit and the change counts. Given a checkpoint and cut instead, the
   * transaction only sweeps, and commits them as they are. Returns where the records stopped and whether the sweep
   * was done.
   */
  private commitFrom(line: number, work: { from: Reached } | { checkpointLine: number; cut: Cut | null }): { reached: Reached; swept: boolean } {
    const { db, statements, ledger } = this.setup;
    const batch = this.batch;
    const budget = this.budget();
    let sweepEnded = 0;
    let reached = 'from' in work ? work.from : { records: batch.length, after: null };
    let swept = true;
    let next = this.totals;
    const apply = (): BatchRecord => {
      const started = this.clock();
      const overTime = () => this.clock() - started >= budget.records;
      const sweepOverTime = () => this.clock() - started >= budget.sweep;
      const audit: AuditCounts = new Map();
      if ('from' in work) reached = applyRecords(batch, work.from, statements, this.setup.asOf, audit, overTime);
      // Copies, embedded copies and orphans the transaction's deletions left: gone in the same transaction, or what
      // the time did not allow left pending with it (and with its cause, committed here).
      swept = statements.sweep(this.setup.asOf, sweepOverTime);
      sweepEnded = this.clock();
      foundCounted(audit, statements.drainFound());
      const delta: Totals = { ...emptyTotals(), ...actionTotalsOf(audit) };
      let checkpointLine: number;
      let cut: Cut | null;
      if ('from' in work) {
        if (reached.records === batch.length) {
          // The batch's lines are counted once, with its last transaction that applies records.
          delta.linesRead = line - this.committedLine;
          delta.records = batch.length;
          for (const r of this.batchRejects) delta.rejected[r.kind] = (delta.rejected[r.kind] ?? 0) + 1;
        }
        cut = reached.records < batch.length ? cutAt(line, reached) : null;
        checkpointLine = cut ? this.committedLine : line;
      } else {
        ({ checkpointLine, cut } = work);
      }
      const changes: ChangeCount[] = statements.drainChanges();
      auditFollowUps(audit, changes);
      addChanges(delta.changes, changes);
      next = addTotals(this.totals, delta);
      return { checkpointLine, counts: cut ? { ...next, cut } : next, audit, changes };
    };
    try {
      withForeignKeysRelaxed(db, this.setup.relaxForeignKeys, () => {
        if (ledger) ledger.runs.commitBatch(ledger.runId, apply);
        else runRolledBack(db, apply);
      });
      this.lastTailMs = this.clock() - sweepEnded;
    } catch (err) {
      throw translateSqliteError(statements.explainCommitFailure(err), db.name);
    } finally {
      lockReleased();
    }
    this.setup.checkpoints?.committed();
    Object.assign(this.totals, next);
    return { reached, swept };
  }
}

function cutAt(line: number, reached: Reached): Cut {
  return reached.after === null ? { line, records: reached.records } : { line, records: reached.records, after: reached.after };
}
