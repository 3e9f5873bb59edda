import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How work shares SQLite's write lock with another writer (reconcile.maxLockMs). A transaction stops taking rows at
 * half the bound: the row under way and the commit (WAL write and fsync) must fit in the other half. Between two
 * write transactions of this process the lock is left free for a while: a writer waiting in SQLite's busy handler
 * does not queue, it sleeps and retries (1, 2, 5, 10, 15, 20, 25, 25 ms… up to 100 ms apart), so a release of a few
 * microseconds is nearly never seen, and our next transaction — of this cycle or of the other type's, which runs in
 * the same process — would take the lock again before it.
 */
export function cutAfterMs(maxLockMs: number): number {
  return maxLockMs / 2;
}

let releasedAt = -Infinity;
/** When the current paced transaction's turn came (null: none under way, as in a dry run's unpaced batches). */
let takenAt: number | null = null;

/** This process's paced transactions so far: how many, how long they held the lock, how long it was left free. */
export interface LockPacing {
  transactions: number;
  /** From each lockTurn's end to the transaction's lockReleased: the transaction, its commit included. */
  heldMs: number;
  /** Slept in lockTurn, leaving the lock to another writer. */
  gapMs: number;
  /** The longest of them. */
  maxHeldMs: number;
}

const pacing: LockPacing = { transactions: 0, heldMs: 0, gapMs: 0, maxHeldMs: 0 };

/** Waits until the lock has been free of this process's transactions for 25 ms (at the default bound). */
export async function lockTurn(maxLockMs: number): Promise<void> {
  const gap = Math.min(25, maxLockMs / 8);
  const wait = releasedAt + gap - performance.now();
  if (wait > 0) {
    await sleep(wait);
    pacing.gapMs += wait;
  }
  takenAt = performance.now();
}

/** Called after each commit (or rollback) of a paced transaction. */
export function lockReleased(): void {
  releasedAt = performance.now();
  if (takenAt === null) return;
  const held = releasedAt - takenAt;
  takenAt = null;
  pacing.transactions++;
  pacing.heldMs += held;
  pacing.maxHeldMs = Math.max(pacing.maxHeldMs, held);
}

/** What the paced transactions of this process did so far (for the debug log: bench/ingester.mjs reads it). */
export function lockPacing(): LockPacing {
  return { ...pacing, heldMs: Math.round(pacing.heldMs), gapMs: Math.round(pacing.gapMs), maxHeldMs: Math.round(pacing.maxHeldMs) };
}
