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

/** Waits until the lock has been free of this process's transactions for 25 ms (at the default bound). */
export async function lockTurn(maxLockMs: number): Promise<void> {
  const gap = Math.min(25, maxLockMs / 8);
  const wait = releasedAt + gap - performance.now();
  if (wait > 0) await sleep(wait);
}

/** Called after each commit (or rollback) of a paced transaction. */
export function lockReleased(): void {
  releasedAt = performance.now();
}
