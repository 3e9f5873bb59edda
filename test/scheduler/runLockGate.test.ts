import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLockGate } from '../../src/scheduler/runLockGate.js';
import { acquireRunLock, currentLockHolder } from '../../src/store/runLock.js';
import { quietLogger } from '../helpers/world.js';
import { useTempDir } from '../helpers/tmp.js';

const tempDir = useTempDir();

/** A gate whose sleeps are recorded and resolved by the test (no real time passes). */
function gateWithFakeSleep(storePath: string) {
  const sleeps: { ms: number; wake: () => void }[] = [];
  const changes: number[] = [];
  const gate = new RunLockGate({
    storePath,
    logger: quietLogger(),
    firstRetryMs: 5_000,
    maxRetryMs: 12_000,
    onChange: () => changes.push(sleeps.length),
    now: () => new Date('2026-06-01T00:00:00Z'),
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        sleeps.push({ ms, wake: resolve });
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
  });
  return { gate, sleeps, changes };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('the daemon run-lock gate', () => {
  it('holds the run lock only while work runs, once for overlapping cycles', async () => {
    const store = path.join(tempDir(), 'store.db');
    const { gate } = gateWithFakeSleep(store);
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
    const { gate, sleeps } = gateWithFakeSleep(store);
    let ran = false;
    const cycle = gate.whileHeld(new AbortController().signal, async () => {
      ran = true;
      return 'done';
    });
    for (let i = 0; i < 3; i++) {
      while (sleeps.length <= i) await tick();
      expect(gate.waiting?.holder?.command).toBe('reconcile --now');
      if (i < 2) sleeps[i]!.wake();
    }
    expect(sleeps.map((s) => s.ms)).toEqual([5_000, 10_000, 12_000]);
    expect(gate.waiting?.nextTryAt.toISOString()).toBe('2026-06-01T00:00:12.000Z');
    expect(ran).toBe(false);
    other.release();
    sleeps[2]!.wake();
    expect(await cycle).toBe('done');
    expect(gate.waiting).toBeNull();
    expect(currentLockHolder(store)).toBeNull();
  });

  it('gives up the wait without running the work when the daemon stops', async () => {
    const store = path.join(tempDir(), 'store.db');
    const other = acquireRunLock(store, 'reconcile --now');
    const { gate, sleeps } = gateWithFakeSleep(store);
    const controller = new AbortController();
    let ran = false;
    const cycle = gate.whileHeld(controller.signal, async () => (ran = true));
    while (sleeps.length === 0) await tick();
    controller.abort(new Error('daemon stopping'));
    expect(await cycle).toBeNull();
    expect(ran).toBe(false);
    expect(gate.waiting).toBeNull();
    expect(currentLockHolder(store)?.command).toBe('reconcile --now');
    other.release();
  });
});
