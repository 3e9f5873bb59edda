import { setTimeout as delay } from 'node:timers/promises';

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/**
 * Everything that reads or waits on time goes through one of these, so the daemon, its schedule, its backoffs and
 * the pipeline's polls can run on a clock a test moves by hand (test/helpers/fakeClock.ts) instead of real seconds.
 */
export interface Clock {
  now(): Date;
  /** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
  sleep: Sleep;
  /** Calls `fn` once after `ms`; the returned function cancels it (a no-op once it has fired). */
  timer(ms: number, fn: () => void): () => void;
}

/** Sleeps `ms`, rejecting with the signal's reason as soon as it aborts. */
export const abortableSleep: Sleep = async (ms, signal) => {
  try {
    await delay(Math.max(0, ms), undefined, signal ? { signal } : undefined);
  } catch (error) {
    // Callers see the reason they aborted with (as with signal.throwIfAborted), not a generic AbortError.
    throw signal?.aborted ? signal.reason : error;
  }
};

/** Node's setTimeout fires at once for delays above this (about 24.8 days): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: abortableSleep,
  timer(ms, fn) {
    let handle: NodeJS.Timeout;
    const due = Date.now() + Math.max(0, ms);
    const arm = () => {
      const left = due - Date.now();
      handle = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fn, Math.max(0, left));
    };
    arm();
    return () => clearTimeout(handle);
  },
};
