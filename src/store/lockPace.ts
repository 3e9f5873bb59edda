import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How work shares SQLite's write lock with another writer (reconcile.maxLockMs). A transaction stops taking rows at
 * half the bound: the row under way and the commit (WAL write and fsync) must fit in the other half (an apply stops
 * sooner when its last commit took longer, BatchApplier.budget). Between two
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
/** Resolves when the turn taken at `takenAt` is over (lockReleased). */
let endTurn: () => void = () => {};
let turnOver: Promise<void> = Promise.resolve();

/** This process's paced transactions so far: how many, how long they held the lock, how long it was left free. */
export interface LockPacing {
  transactions: number;
  /** From each lockTurn's end to the transaction's lockReleased: the transaction, its commit included. */
  heldMs: number;
  /** The lock left free before each paced transaction that had to wait for its turn (at most the gap each). */
  gapMs: number;
  /** The longest of them. */
  maxHeldMs: number;
}

const pacing: LockPacing = { transactions: 0, heldMs: 0, gapMs: 0, maxHeldMs: 0 };

/**
 * Waits until the lock has been free of this process's transactions for 25 ms (at the default bound). Several paced
 * workers share one process (the tweets and users flows, an index fill beside an apply): each checks again after its
 * sleep, because another may have taken and released the lock meanwhile, and starting right after that release
 * would leave the lock free for microseconds only — an ingester waiting in its busy handler would starve (measured:
 * two fills alternating back to back kept an ingester out for its whole 5 s busy timeout).
 */
export async function lockTurn(maxLockMs: number): Promise<void> {
  const gap = Math.min(25, maxLockMs / 8);
  let slept = false;
  for (;;) {
    // Another worker's turn is taken and its transaction not yet done (a turn is taken before an `await` resolves).
    if (takenAt !== null) {
      await turnOver;
      continue;
    }
    const wait = releasedAt + gap - performance.now();
    if (wait <= 0) break;
    await sleep(wait);
    slept = true;
  }
  takenAt = performance.now();
  turnOver = new Promise((resolve) => (endTurn = resolve));
  // What pacing cost: the gap left since the last release, when this turn had to wait for it.
  if (slept) pacing.gapMs += Math.min(gap, takenAt - releasedAt);
}

/** Called after each commit (or rollback) of a paced transaction. */
export function lockReleased(): void {
  releasedAt = performance.now();
  endTurn();
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

/**
 * One paced transaction's turn: waits for it (lockTurn), runs `work` (which holds the write lock, in a transaction of
 * its own), and marks the lock released, whether `work` returned or threw.
 */
export async function inLockTurn<T>(maxLockMs: number, work: () => T): Promise<T> {
  await lockTurn(maxLockMs);
  try {
    return work();
  } finally {
    lockReleased();
  }
}
