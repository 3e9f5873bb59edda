import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLockGate } from '../../src/scheduler/runLockGate.js';
import { acquireRunLock, currentLockHolder } from '../../src/store/runLock.js';
import { FakeClock } from '../helpers/fakeClock.js';
import { quietLogger } from '../helpers/world.js';
import { useTempDir } from '../helpers/tmp.js';

const tempDir = useTempDir();

/** A gate on a fake clock: its waits pass only when the test moves the clock. */
function gateOnFakeClock(storePath: string) {
  const clock = new FakeClock(new Date('2026-06-01T00:00:00Z'));
  const gate = new RunLockGate({ storePath, logger: quietLogger(), backoff: { firstMs: 5_000, maxMs: 12_000 }, clock });
  return { gate, clock };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('the daemon run-lock gate', () => {
  it('holds the run lock only while work runs, once for overlapping cycles', async () => {
    const store = path.join(tempDir(), 'store.db');
    const { gate } = gateOnFakeClock(store);
    const controller = new AbortController();
    let finishTweets!: () => void;
    const tweets = gate.whileHeld(controller.signal, () => new Promise<string>((resolve) => (finishTweets = () => resolve('tweets'))));
    await tick();
    expect(currentLockHolder(store)?.command).toBe('run');
    const users = gate.whileHeld(controller.signal, async () => 'users');
    expect(await users).toBe('users');
    // The tweets cycle still runs: the lock stays.
    expect(currentLockHolder(store)?.command).toBe('run');
    finishTweets();
    expect(await tweets).toBe('tweets');
    expect(currentLockHolder(store)).toBeNull();
  });

  it('waits for another holder with a growing delay, says so, then runs', async () => {
    const store = path.join(tempDir(), 'store.db');
    const other = acquireRunLock(store, 'reconcile --now');
    const { gate, clock } = gateOnFakeClock(store);
    let ran = false;
    const cycle = gate.whileHeld(new AbortController().signal, async () => {
      ran = true;
      return 'done';
    });
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      while (clock.pending().length === 0) await tick();
      expect(gate.waiting?.holder?.command).toBe('reconcile --now');
      waits.push(clock.pending()[0]!);
      if (i < 2) await clock.advance(clock.pending()[0]!);
    }
    expect(waits).toEqual([5_000, 10_000, 12_000]);
    expect(gate.waiting?.nextTryAt.toISOString()).toBe('2026-06-01T00:00:27.000Z');
    expect(ran).toBe(false);
    other.release();
    await clock.advance(12_000);
    expect(await cycle).toBe('done');
    expect(gate.waiting).toBeNull();
    expect(currentLockHolder(store)).toBeNull();
  });

  it('gives up the wait without running the work when the daemon stops', async () => {
    const store = path.join(tempDir(), 'store.db');
    const other = acquireRunLock(store, 'reconcile --now');
    const { gate, clock } = gateOnFakeClock(store);
    const controller = new AbortController();
    let ran = false;
    const cycle = gate.whileHeld(controller.signal, async () => (ran = true));
    while (clock.pending().length === 0) await tick();
    controller.abort(new Error('daemon stopping'));
    expect(await cycle).toBeNull();
    expect(ran).toBe(false);
    expect(gate.waiting).toBeNull();
    expect(currentLockHolder(store)?.command).toBe('reconcile --now');
    other.release();
  });
});
