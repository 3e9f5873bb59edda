/**
 * How long the daemon waits before trying again a cycle that found the store taken, whoever took it: another
 * process holding the run lock (a `reconcile --now`, RunLockGate) or a writer holding SQLite's lock past the busy
 * timeout (an ingester's long transaction, Daemon). The wait doubles from `firstMs` up to `maxMs`.
 */
export interface StoreBusyBackoff {
  firstMs: number;
  maxMs: number;
}

export const STORE_BUSY_BACKOFF: StoreBusyBackoff = { firstMs: 5_000, maxMs: 5 * 60_000 };

/** The wait before try number `attempt + 1`, after `attempt` (1, 2, …) tries found the store taken. */
export function busyRetryDelayMs(policy: StoreBusyBackoff, attempt: number): number {
  return Math.min(policy.maxMs, policy.firstMs * 2 ** Math.max(0, attempt - 1));
}
