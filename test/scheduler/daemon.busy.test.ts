import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { openRuntime } from '../../src/pipeline/runtime.js';
import { Daemon } from '../../src/scheduler/daemon.js';
import { useTempDir } from '../helpers/tmp.js';
import { makeWorld } from '../helpers/world.js';

const tempDir = useTempDir();

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!predicate()) throw new Error(`timed out waiting for ${what}`);
}

describe('the daemon and a store locked by another writer', () => {
  it('retries the cycle with backoff instead of waiting for the next scheduled run, and closes it once the lock is gone', async () => {
    // A schedule that does not fire during the test: only the trigger and the retries start cycles.
    const world = await makeWorld(tempDir(), { tweets: 500, users: 10, config: { schedule: { cron: '0 3 1 1 *', types: ['tweets'] } } });
    const messages: { msg: string; attempt?: number; retryAt?: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) messages.push(JSON.parse(line) as { msg: string });
        done();
      },
    });
    const logger = createLogger('info', sink);
    const runtime = openRuntime(world.config, logger, world.env);
    // The daemon's connection gives up on the lock after 50 ms instead of 10 s, so the test does not wait for it.
    runtime.db.pragma('busy_timeout = 50');
    const daemon = new Daemon({ config: world.config, runtime, logger, busyRetryMs: 100 });
    const ingester = new Database(world.storePath);
    try {
      daemon.start();
      ingester.exec('BEGIN IMMEDIATE');
      daemon.trigger();
      const retries = () => messages.filter((m) => m.msg === 'the store is locked by another writer; retrying the cycle');
      await until(() => retries().length >= 3, 'three retries');
      expect(retries().map((m) => m.attempt)).toEqual([1, 2, 3]);
      expect(messages.some((m) => m.msg.startsWith('cycle failed'))).toBe(false);
      ingester.exec('ROLLBACK');
      await until(() => messages.some((m) => m.msg === 'cycle closed'), 'the cycle to close');
      expect(runtime.ledger.recentCycles(1)[0]).toMatchObject({ type: 'tweets', state: 'closed' });
    } finally {
      if (ingester.inTransaction) ingester.exec('ROLLBACK');
      ingester.close();
      await daemon.stop(5000);
      runtime.close();
      await world.close();
    }
  });
});
