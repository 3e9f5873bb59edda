import { setImmediate as turn, setTimeout as realDelay } from 'node:timers/promises';
import type { Clock } from '../../src/clock.js';

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A Clock that moves only when the test says so. Real I/O (SQLite, the emulator over loopback HTTP) still runs in
 * real time; only what the code under test reads from or waits on its Clock is faked. Start it at the real now when
 * an emulator on another clock is involved, or give the emulator `() => clock.now().getTime()`.
 */
export class FakeClock implements Clock {
  private ms: number;
  private seq = 0;
  private readonly timers = new Map<number, FakeTimer>();

  constructor(start: Date | number = Date.now()) {
    this.ms = typeof start === 'number' ? start : start.getTime();
  }

  now = (): Date => new Date(this.ms);

  timer = (ms: number, fn: () => void): (() => void) => {
    const seq = ++this.seq;
    this.timers.set(seq, { at: this.ms + Math.max(0, ms), seq, fn });
    return () => this.timers.delete(seq);
  };

  sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const aborted = () => {
        cancel();
        reject(signal!.reason);
      };
      const cancel = this.timer(ms, () => {
        signal?.removeEventListener('abort', aborted);
        resolve();
      });
      signal?.addEventListener('abort', aborted, { once: true });
    });

  /** Milliseconds from now of each pending timer and sleep, soonest first. */
  pending(): number[] {
    return this.ordered().map((timer) => timer.at - this.ms);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way in order, each after the work of the previous one settled. */
  async advance(ms: number): Promise<void> {
    const end = this.ms + ms;
    for (;;) {
      await settle();
      const next = this.ordered()[0];
      if (!next || next.at > end) break;
      this.fire(next);
    }
    this.ms = Math.max(this.ms, end);
    await settle();
  }

  /**
   * The wall clock jumps by `ms` (NTP, a resumed VM) while pending timers stay as far from firing as they were:
   * real timers follow a monotonic clock.
   */
  jump(ms: number): void {
    this.ms += ms;
    for (const timer of this.timers.values()) timer.at += ms;
  }

  /** Moves time forward to `date` (see advance). */
  advanceTo(date: Date): Promise<void> {
    return this.advance(date.getTime() - this.ms);
  }

  /**
   * Lets the code run until `predicate` holds: real I/O gets real time, and whenever a timer of at most `maxStepMs`
   * is pending (a poll interval, a backoff) time jumps to it. Longer waits (the next cron run) are the test's to
   * cross with advance(), so time never runs far ahead of what the test means. Fails after `realTimeoutMs` of real time.
   */
  async until(predicate: () => boolean, what: string, options: { maxStepMs?: number; realTimeoutMs?: number } = {}): Promise<void> {
    const maxStepMs = options.maxStepMs ?? 10_000;
    const giveUpAt = performance.now() + (options.realTimeoutMs ?? 30_000);
    for (;;) {
      await settle();
      if (predicate()) return;
      if (performance.now() > giveUpAt) throw new Error(`timed out waiting for ${what} (fake time ${this.now().toISOString()}, pending timers in ms: ${this.pending().join(', ') || 'none'})`);
      const next = this.ordered()[0];
      if (next && next.at - this.ms <= maxStepMs) this.fire(next);
      else await realDelay(2);
    }
  }

  /** Drives the clock as until() does while `work` runs; resolves or rejects as it does. */
  async run<T>(work: Promise<T>, what: string, options: { maxStepMs?: number; realTimeoutMs?: number } = {}): Promise<T> {
    let settled = false;
    const done = work.finally(() => (settled = true));
    // Reported by `await done` below, not here.
    done.catch(() => undefined);
    await this.until(() => settled, what, options);
    return done;
  }

  private fire(timer: FakeTimer): void {
    this.timers.delete(timer.seq);
    this.ms = Math.max(this.ms, timer.at);
    timer.fn();
  }

  private ordered(): FakeTimer[] {
    return [...this.timers.values()].sort((a, b) => a.at - b.at || a.seq - b.seq);
  }
}

/** Lets promise jobs and already-queued callbacks run (a few turns of the real event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await turn();
}
