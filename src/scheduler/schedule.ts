import cron, { type ScheduledTask } from 'node-cron';
import { systemClock, type Clock } from '../clock.js';
import type { Logger } from '../log.js';

/** node-cron's own walker from a given time (its public getNextRuns always starts from the real now). */
interface TimeMatcher {
  getNextMatch(after: Date): Date;
}

function timeMatcherOf(task: ScheduledTask): TimeMatcher {
  const matcher = (task as unknown as { timeMatcher?: Partial<TimeMatcher> }).timeMatcher;
  if (typeof matcher?.getNextMatch !== 'function') {
    throw new Error('this node-cron version does not expose its time matcher (known to work: 4.6); src/scheduler/schedule.ts must be adapted');
  }
  return matcher as TimeMatcher;
}

/** When a cron expression fires, in its time zone. The expression must be valid (the config schema checks it). */
export class CronTimes {
  private readonly matcher: TimeMatcher;

  constructor(
    readonly expression: string,
    readonly timezone: string,
  ) {
    // An unstarted task never fires; it only carries node-cron's parsed expression and matcher.
    const task = cron.createTask(expression, () => undefined, { timezone });
    try {
      this.matcher = timeMatcherOf(task);
    } finally {
      void task.destroy();
    }
  }

  /** The first firing strictly after `after` (to the second), or null if there is none in the years node-cron looks ahead. */
  next(after: Date): Date | null {
    try {
      return this.matcher.getNextMatch(after);
    } catch {
      // node-cron gives up after a bounded walk (an expression such as "0 0 30 2 *" never fires).
      return null;
    }
  }
}

/**
 * A cron schedule that calls `onTick` on `clock`; replaced whole on reload. The wait for the next run is taken in
 * steps of at most a minute, because timers follow a monotonic clock: after the wall clock jumps forward (NTP, a
 * resumed VM) a run must not wait for the whole of the old delay.
 */
export class Schedule {
  private readonly times: CronTimes;
  private next: Date | null;
  private cancel: () => void = () => undefined;
  private stopped = false;

  constructor(
    readonly expression: string,
    readonly timezone: string,
    private readonly onTick: () => void,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.times = new CronTimes(expression, timezone);
    this.next = this.times.next(clock.now());
    this.arm();
  }

  nextRun(): Date | null {
    return this.stopped ? null : this.next;
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private arm(): void {
    if (this.stopped || !this.next) return;
    const wait = Math.min(RECHECK_MS, this.next.getTime() - this.clock.now().getTime());
    this.cancel = this.clock.timer(Math.max(0, wait), () => this.wake());
  }

  private wake(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    if (this.next && now >= this.next) {
      // One tick however many runs a jump skipped; the daemon's per-type guard keeps ticks from overlapping cycles.
      this.next = this.times.next(now);
      try {
        this.onTick();
      } catch (err) {
        // A timer callback that throws would end the process; the next tick tries again.
        this.logger.error({ err }, 'scheduled tick failed');
      }
    }
    this.arm();
  }
}

const RECHECK_MS = 60_000;

/**
 * Whether the schedule had a run after `since` and up to `now` — i.e. one that was due while the daemon was
 * down — looking at most `maxDays` back.
 */
export function missedRun(expression: string, timezone: string, since: Date, now: Date, maxDays = 62): boolean {
  const from = new Date(Math.max(since.getTime(), now.getTime() - maxDays * 86_400_000));
  const next = new CronTimes(expression, timezone).next(from);
  return next !== null && next <= now;
}
