import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.js';

let cronLoggerSet = false;

/** node-cron's default logger prints ANSI text to the console; route it to pino once. */
function routeCronLogs(logger: Logger): void {
  if (cronLoggerSet) return;
  cronLoggerSet = true;
  cron.setLogger({
    info: (message) => logger.debug({ component: 'node-cron' }, message),
    warn: (message) => logger.warn({ component: 'node-cron' }, message),
    error: (message, err) => logger.error({ component: 'node-cron', err: err ?? message }, String(message)),
    debug: (message) => logger.trace({ component: 'node-cron' }, String(message)),
  });
}

/** A cron schedule that calls `onTick`; replaced whole on reload. */
export class Schedule {
  private readonly task: ScheduledTask;

  constructor(
    readonly expression: string,
    readonly timezone: string,
    onTick: () => void,
    logger: Logger,
  ) {
    routeCronLogs(logger);
    // The daemon keeps its own per-type "running" guard, so ticks stay cheap and never overlap a cycle.
    this.task = cron.createTask(expression, () => onTick(), { timezone, name: 'compliance-cycle', noOverlap: true });
    this.task.on('execution:failed', (ctx) => logger.error({ err: ctx.execution?.error }, 'scheduled tick failed'));
    void this.task.start();
  }

  nextRun(): Date | null {
    return this.task.getNextRun();
  }

  stop(): void {
    void this.task.destroy();
  }
}

/**
 * Whether the schedule had a run between `since` (exclusive) and `now` — i.e. one that was due while the daemon was
 * down. Walks minute by minute (node-cron has no "previous run"), at most `maxDays` back.
 */
export function missedRun(expression: string, timezone: string, since: Date, now: Date, maxDays = 62): boolean {
  const task = cron.createTask(expression, () => undefined, { timezone });
  try {
    const start = Math.max(since.getTime(), now.getTime() - maxDays * 86_400_000);
    // From the first whole minute after `since`.
    for (let t = Math.floor(start / 60_000) * 60_000 + 60_000; t <= now.getTime(); t += 60_000) {
      if (task.match(new Date(t))) return true;
    }
    return false;
  } finally {
    void task.destroy();
  }
}
