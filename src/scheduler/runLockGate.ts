import { systemClock, type Clock } from '../clock.js';
import type { Logger } from '../log.js';
import { currentLockHolder, describeHolder, tryAcquireRunLock, type LockHolder, type RunLock } from '../store/runLock.js';
import { busyRetryDelayMs, STORE_BUSY_BACKOFF, type StoreBusyBackoff } from './backoff.js';

export interface LockWait {
  holder: LockHolder | null;
  nextTryAt: Date;
}

export interface RunLockGateOptions {
  storePath: string;
  logger: Logger;
  /** Called when the gate starts or stops waiting, so the daemon can say so (STATUS=, `status`). */
  onChange?: () => void;
  backoff?: StoreBusyBackoff;
  clock?: Clock;
}

/**
 * The daemon's hold on the store's run lock: taken when its first cycle starts and released when its last one ends,
 * so a `reconcile --now` between cycles runs, and one started during a cycle waits only for that cycle. A cycle due
 * while another process holds the lock waits, retrying with the daemon's busy-store backoff (logged, and shown by
 * `status`).
 */
export class RunLockGate {
  private lock: RunLock | null = null;
  private users = 0;
  private wait: LockWait | null = null;
  private readonly backoff: StoreBusyBackoff;
  private readonly clock: Clock;

  constructor(private readonly options: RunLockGateOptions) {
    this.backoff = options.backoff ?? STORE_BUSY_BACKOFF;
    this.clock = options.clock ?? systemClock;
  }

  /** What the daemon is waiting for, if a cycle is due and another process holds the lock. */
  get waiting(): LockWait | null {
    return this.wait;
  }

  /**
   * Runs `work` while holding the run lock, taking it first if no other cycle of this daemon holds it. Resolves to
   * null without running `work` when `signal` aborts during the wait (the daemon is stopping).
   */
  async whileHeld<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T | null> {
    if (!(await this.enter(signal))) return null;
    try {
      return await work();
    } finally {
      this.leave();
    }
  }

  private async enter(signal: AbortSignal): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return this.giveUp();
      this.lock ??= tryAcquireRunLock(this.options.storePath, 'run');
      if (this.lock) {
        this.users++;
        if (this.wait) {
          this.options.logger.info('took the store run lock; the cycle starts');
          this.wait = null;
          this.options.onChange?.();
        }
        return true;
      }
      const holder = currentLockHolder(this.options.storePath);
      const delayMs = busyRetryDelayMs(this.backoff, attempt);
      const nextTryAt = new Date(this.clock.now().getTime() + delayMs);
      this.options.logger.warn(
        { holder: holder ? describeHolder(holder) : 'unknown', retryInMs: delayMs },
        'a cycle is due but another process holds the store run lock; retrying',
      );
      this.wait = { holder, nextTryAt };
      this.options.onChange?.();
      try {
        await this.clock.sleep(delayMs, signal);
      } catch {
        return this.giveUp();
      }
    }
  }

  private giveUp(): false {
    this.wait = null;
    return false;
  }

  private leave(): void {
    this.users--;
    if (this.users === 0 && this.lock) {
      this.lock.release();
      this.lock = null;
    }
  }
}
