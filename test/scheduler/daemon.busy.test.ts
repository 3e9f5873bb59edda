import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { useInProcessDaemons } from '../helpers/daemon.js';

const daemonFor = useInProcessDaemons();

describe('the daemon and a store locked by another writer', () => {
  it('retries the cycle with the store-busy backoff instead of waiting for the next scheduled run, and closes it once the lock is gone', async () => {
    // A schedule that does not fire during the test: only the trigger and the retries start cycles.
    const d = await daemonFor({ tweets: 500, users: 10, config: { schedule: { cron: '0 3 1 1 *', types: ['tweets'] } } }, { backoff: { firstMs: 5_000, maxMs: 12_000 } });
    // The daemon's connection gives up on SQLite's lock after 50 ms instead of 10 s, so the test does not wait for it.
    d.runtime.db.pragma('busy_timeout = 50');
    const ingester = new Database(d.world.storePath);
    try {
      d.daemon.start();
      ingester.exec('BEGIN IMMEDIATE');
      const started = d.clock.now().getTime();
      d.daemon.trigger();
      const retries = () => d.lines.filter((line) => line.msg === 'the store is locked by another writer; retrying the cycle');
      await d.clock.until(() => retries().length >= 4, 'four retries', { maxStepMs: 60_000 });
      expect(retries().map((line) => line.attempt)).toEqual([1, 2, 3, 4]);
      // Each retry comes the policy's wait after the previous one failed: 5 s, 10 s, then the 12 s ceiling.
      const offsets = retries().map((line) => Date.parse(String(line.retryAt)) - started);
      expect(offsets.map((ms, i) => ms - (i === 0 ? 0 : offsets[i - 1]!))).toEqual([5_000, 10_000, 12_000, 12_000]);
      expect(d.lines.some((line) => line.msg.startsWith('cycle failed'))).toBe(false);
      ingester.exec('ROLLBACK');
      await d.clock.until(() => d.count('cycle closed') === 1, 'the cycle to close', { maxStepMs: 60_000 });
      expect(d.runtime.ledger.recentCycles(1)[0]).toMatchObject({ type: 'tweets', state: 'closed' });
    } finally {
      if (ingester.inTransaction) ingester.exec('ROLLBACK');
      ingester.close();
    }
  });
});
