import { statfsSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { vacuumSpace } from '../../src/store/purge.js';
import { acquireRunLock, currentLockHolder } from '../../src/store/runLock.js';
import { useInProcessDaemons } from '../helpers/daemon.js';

const daemonFor = useInProcessDaemons();

describe('the daemon on a fake clock', () => {
  it('runs each type on its cron schedule, records it, and schedules the next run', async () => {
    const d = await daemonFor({
      start: new Date('2026-06-01T02:58:30Z'),
      tweets: 600,
      users: 60,
      config: { schedule: { cron: '0 3 * * *', timezone: 'UTC' }, jobs: { shardSize: 400, pollIntervalSeconds: 0.1 } },
    });
    d.daemon.start();
    expect(d.daemon.nextRun()?.toISOString()).toBe('2026-06-01T03:00:00.000Z');
    await d.clock.advance(60_000);
    expect(d.count('cycle started')).toBe(0);
    await d.clock.advanceTo(new Date('2026-06-01T03:00:00Z'));
    await d.clock.until(() => d.count('cycle closed') === 2, 'the first scheduled cycles to close');
    expect(d.runtime.ledger.scheduleState('tweets')).toMatchObject({ nextRunAt: '2026-06-02T03:00:00.000Z' });
    expect(d.runtime.ledger.scheduleState('users').lastSuccessAt).not.toBeNull();
    expect(d.daemon.nextRun()?.toISOString()).toBe('2026-06-02T03:00:00.000Z');

    // A day later the second runs find the store already compliant.
    await d.clock.advanceTo(new Date('2026-06-02T03:00:00Z'));
    await d.clock.until(() => d.count('cycle closed') === 4, 'the second scheduled cycles to close');
    const cycles = d.runtime.ledger.recentCycles(4);
    expect(cycles.map((cycle) => cycle.trigger)).toEqual(['schedule', 'schedule', 'schedule', 'schedule']);
    expect(cycles.every((cycle) => cycle.state === 'closed')).toBe(true);
    expect(d.runtime.ledger.scheduleState('tweets').lastStartedAt?.startsWith('2026-06-02T03:00')).toBe(true);
  });

  it('runs once at start a cycle that was due while it was down, and nothing when none was', async () => {
    const d = await daemonFor({ start: new Date('2026-06-03T12:00:00Z'), tweets: 200, users: 20, config: { schedule: { cron: '0 3 * * *' } } });
    d.runtime.ledger.recordScheduleStart('tweets', new Date('2026-06-01T03:00:05Z'));
    d.runtime.ledger.recordScheduleStart('users', new Date('2026-06-03T03:00:05Z'));
    d.daemon.start();
    await d.clock.until(() => d.count('cycle closed') === 1, 'the missed tweets cycle to close');
    expect(d.lines.filter((line) => line.msg.includes('missed while the daemon was down')).map((line) => line.type)).toEqual(['tweets']);
    expect(d.runtime.ledger.recentCycles(5).map((cycle) => [cycle.type, cycle.trigger])).toEqual([['tweets', 'catch-up']]);
  });

  it('a cycle due while another process holds the run lock waits with the store-busy backoff, says so, then runs', async () => {
    const d = await daemonFor({ tweets: 300, users: 20, config: { schedule: { cron: '0 3 1 1 *', types: ['tweets'] } } }, { backoff: { firstMs: 5_000, maxMs: 12_000 } });
    d.daemon.start();
    const manual = acquireRunLock(d.world.storePath, 'reconcile --now');
    const tries = () => d.lines.filter((line) => line.msg === 'a cycle is due but another process holds the store run lock; retrying');
    try {
      d.daemon.trigger();
      await d.clock.until(() => tries().length === 4, 'four tries', { maxStepMs: 60_000 });
      expect(tries().map((line) => line.retryInMs)).toEqual([5_000, 10_000, 12_000, 12_000]);
      expect(d.statuses.at(-1)).toMatch(new RegExp(`^waiting for the store run lock held by reconcile --now \\(pid ${process.pid} on .*tweets cycle due; next try `));
      expect(d.count('cycle started')).toBe(0);
    } finally {
      manual.release();
    }
    await d.clock.until(() => d.count('cycle closed') === 1, 'the cycle to close', { maxStepMs: 60_000 });
    expect(d.count('took the store run lock; the cycle starts')).toBe(1);
    expect(d.statuses.at(-1)).toMatch(/^idle; last: tweets closed /);
  });

  it('records no success for a cycle whose every shard failed, and one for a cycle that applied every shard', async () => {
    const failing = await daemonFor({
      tweets: 300,
      users: 10,
      emulator: { faults: { jobFail: { rate: 1 } } },
      config: { schedule: { types: ['tweets'] }, jobs: { shardSize: 1000, pollIntervalSeconds: 0.1, maxAttempts: 1 } },
    });
    failing.daemon.trigger();
    await failing.clock.until(() => failing.count('cycle closed with failed shards; not recorded as a success') === 1, 'the failed cycle to close');
    expect(failing.runtime.ledger.recentCycles(1)[0]!.state).toBe('closed');
    expect(failing.runtime.ledger.scheduleState('tweets').lastSuccessAt).toBeNull();

    const healthy = await daemonFor({ tweets: 300, users: 10, config: { schedule: { types: ['tweets'] }, jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 } } });
    healthy.daemon.trigger();
    await healthy.clock.until(() => healthy.runtime.ledger.scheduleState('tweets').lastSuccessAt !== null, 'the healthy cycle to be recorded');
    expect(healthy.runtime.ledger.recentCycles(1)[0]!.state).toBe('closed');
  });
});

describe('the VACUUM window (reconcile.vacuum as a cron expression)', () => {
  const freePages = (d: { runtime: { db: { pragma(sql: string, options: { simple: true }): unknown } } }) => Number(d.runtime.db.pragma('freelist_count', { simple: true }));

  it('rebuilds the store file at the window holding the run lock, and skips a window while another process holds it', async () => {
    const d = await daemonFor({ start: new Date('2026-06-01T03:59:30Z'), tweets: 600, users: 20, config: { schedule: { cron: '0 3 1 1 *' }, reconcile: { vacuum: '0 4 * * *' } } });
    // Free pages for the VACUUM to reclaim, as deletions leave them.
    d.runtime.db.exec('DELETE FROM tweets WHERE rowid % 2 = 0');
    expect(freePages(d)).toBeGreaterThan(0);
    d.daemon.start();
    await d.clock.advance(29_000);
    expect(d.count('VACUUM window: store file rebuilt')).toBe(0);
    await d.clock.advanceTo(new Date('2026-06-01T04:00:00Z'));
    // The rebuild runs in a worker thread: the window's log line comes when it has finished.
    await d.clock.until(() => d.count('VACUUM window: store file rebuilt') === 1, 'the rebuild to finish');
    expect(freePages(d)).toBe(0);
    expect(currentLockHolder(d.world.storePath)).toBeNull();

    const manual = acquireRunLock(d.world.storePath, 'reconcile --now');
    try {
      await d.clock.advanceTo(new Date('2026-06-02T04:00:00Z'));
    } finally {
      manual.release();
    }
    const skipped = d.lines.filter((line) => line.msg === 'VACUUM window skipped');
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ reason: expect.stringMatching(/^the store run lock is held by reconcile --now \(pid \d+/), nextWindow: '2026-06-03T04:00:00.000Z' });
    expect(d.count('VACUUM window: store file rebuilt')).toBe(1);
  });

  it('a stop during the rebuild waits for it to finish; the file is rebuilt and the run lock released', async () => {
    const d = await daemonFor({ start: new Date('2026-06-01T03:59:30Z'), tweets: 600, users: 20, config: { schedule: { cron: '0 3 1 1 *' }, reconcile: { vacuum: '0 4 * * *' } } });
    d.runtime.db.exec('DELETE FROM tweets WHERE rowid % 2 = 0');
    expect(freePages(d)).toBeGreaterThan(0);
    d.daemon.start();
    await d.clock.advanceTo(new Date('2026-06-01T04:00:00Z'));
    expect(d.count('VACUUM window: rebuilding the store file')).toBe(1);
    expect(d.count('VACUUM window: store file rebuilt')).toBe(0);
    // A long deadline on the fake clock, never advanced here: stop() resolves because the rebuild ended.
    await d.daemon.stop(60_000);
    expect(d.count('stopping: waiting for the VACUUM window\'s rebuild to finish')).toBe(1);
    expect(d.count('VACUUM window: store file rebuilt')).toBe(1);
    expect(freePages(d)).toBe(0);
    expect(d.runtime.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(currentLockHolder(d.world.storePath)).toBeNull();
  });

  it('skips a window that finds a cycle running, and runs none with "cycle" (the purge at the close does it)', async () => {
    const d = await daemonFor({
      start: new Date('2026-06-01T03:58:30Z'),
      tweets: 300,
      users: 20,
      // Jobs take half an hour on the emulator's (fake) clock: the cycle started at 03:59 still runs at 04:00.
      emulator: { processingMs: 30 * 60_000 },
      config: { schedule: { cron: '59 3 * * *', types: ['tweets'] }, reconcile: { vacuum: '0 4 * * *' } },
    });
    d.daemon.start();
    await d.clock.advanceTo(new Date('2026-06-01T03:59:00Z'));
    await d.clock.until(() => d.lines.some((line) => line.msg === 'shard state' || line.msg === 'cycle started'), 'the cycle to start');
    await d.clock.advanceTo(new Date('2026-06-01T04:00:00Z'));
    expect(d.lines.filter((line) => line.msg === 'VACUUM window skipped').map((line) => line.reason)).toEqual(['a tweets cycle is running']);
    expect(d.count('VACUUM window: store file rebuilt')).toBe(0);

    const cycleMode = await daemonFor({ start: new Date('2026-06-01T03:59:30Z'), tweets: 10, users: 1, config: { reconcile: { vacuum: 'cycle' } } });
    cycleMode.daemon.start();
    await cycleMode.clock.advance(86_400_000);
    expect(cycleMode.lines.some((line) => line.msg.startsWith('VACUUM window'))).toBe(false);
  });
});

describe('the disk check before a VACUUM', () => {
  it('asks for twice the store file and reports the free space of its file system', async () => {
    const d = await daemonFor({ tweets: 200, users: 20 });
    const space = vacuumSpace(d.world.storePath);
    expect(space.needBytes).toBe(2 * statSync(d.world.storePath).size);
    // Others write to this disk meanwhile: the free space is only known to lie within the file system's size.
    const { blocks, bsize } = statfsSync(d.world.dir);
    expect(space.freeBytes).toBeGreaterThan(0);
    expect(space.freeBytes).toBeLessThanOrEqual(blocks * bsize);
  });
});
