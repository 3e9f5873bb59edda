import { describe, expect, it } from 'vitest';
import { CronTimes, missedRun, Schedule } from '../../src/scheduler/schedule.js';
import { capturedLogger } from '../helpers/daemon.js';
import { FakeClock } from '../helpers/fakeClock.js';

describe('cron times', () => {
  it('finds the next firing strictly after a time, in the schedule’s time zone, across a DST change', () => {
    const berlin = new CronTimes('30 2 * * *', 'Europe/Berlin');
    expect(berlin.next(new Date('2026-06-01T00:29:59Z'))?.toISOString()).toBe('2026-06-01T00:30:00.000Z');
    expect(berlin.next(new Date('2026-06-01T00:30:00Z'))?.toISOString()).toBe('2026-06-02T00:30:00.000Z');
    // 25 October 2026: clocks go back from 03:00 CEST to 02:00 CET; the run at 02:30 local is 01:30 UTC in winter.
    expect(berlin.next(new Date('2026-10-26T00:00:00Z'))?.toISOString()).toBe('2026-10-26T01:30:00.000Z');
    expect(new CronTimes('*/20 * * * * *', 'UTC').next(new Date('2026-06-01T00:00:00.500Z'))?.toISOString()).toBe('2026-06-01T00:00:20.000Z');
  });

  it('says whether a run fell due between the last start and now, looking back at most the given days', () => {
    expect(missedRun('0 3 * * *', 'UTC', new Date('2026-06-01T03:00:04Z'), new Date('2026-06-02T02:59:59Z'))).toBe(false);
    expect(missedRun('0 3 * * *', 'UTC', new Date('2026-06-01T03:00:04Z'), new Date('2026-06-02T03:00:00Z'))).toBe(true);
    expect(missedRun('0 3 1 1 *', 'UTC', new Date('2025-01-01T03:00:04Z'), new Date('2026-06-01T00:00:00Z'), 62)).toBe(false);
    expect(missedRun('0 3 1 1 *', 'UTC', new Date('2025-01-01T03:00:04Z'), new Date('2026-06-01T00:00:00Z'), 400)).toBe(true);
  });
});

describe('a schedule on a clock', () => {
  it('ticks at each run and not before, once after a jump that skipped several, and never after stop', async () => {
    const clock = new FakeClock(new Date('2026-06-01T02:00:00Z'));
    const ticks: string[] = [];
    const schedule = new Schedule('0 3 * * *', 'UTC', () => ticks.push(clock.now().toISOString()), capturedLogger().logger, clock);
    expect(schedule.nextRun()?.toISOString()).toBe('2026-06-01T03:00:00.000Z');
    await clock.advanceTo(new Date('2026-06-01T02:59:59Z'));
    expect(ticks).toEqual([]);
    await clock.advanceTo(new Date('2026-06-02T03:00:00Z'));
    expect(ticks).toEqual(['2026-06-01T03:00:00.000Z', '2026-06-02T03:00:00.000Z']);
    // Timers follow a monotonic clock; when the wall clock jumps three days at once, the run comes within a minute.
    clock.jump(new Date('2026-06-05T12:00:00Z').getTime() - clock.now().getTime());
    await clock.advance(60_000);
    expect(ticks.at(-1)?.startsWith('2026-06-05T12:0')).toBe(true);
    expect(ticks).toHaveLength(3);
    expect(schedule.nextRun()?.toISOString()).toBe('2026-06-06T03:00:00.000Z');
    schedule.stop();
    expect(schedule.nextRun()).toBeNull();
    await clock.advance(7 * 86_400_000);
    expect(ticks).toHaveLength(3);
    expect(clock.pending()).toEqual([]);
  });

  it('logs a tick that throws and keeps the schedule', async () => {
    const clock = new FakeClock(new Date('2026-06-01T02:59:00Z'));
    const { logger, lines } = capturedLogger();
    let ticks = 0;
    const schedule = new Schedule('0 3 * * *', 'UTC', () => {
      ticks++;
      throw new Error('the store is locked');
    }, logger, clock);
    await clock.advance(2 * 86_400_000);
    expect(ticks).toBe(2);
    expect(lines.filter((line) => line.msg === 'scheduled tick failed')).toHaveLength(2);
    schedule.stop();
  });
});
