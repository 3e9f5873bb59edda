import { setTimeout as realDelay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock.js';

describe('the system clock', () => {
  it('fires a timer once, and not once cancelled', async () => {
    const fired: string[] = [];
    systemClock.timer(5, () => fired.push('kept'));
    const cancel = systemClock.timer(5, () => fired.push('cancelled'));
    cancel();
    await realDelay(50);
    expect(fired).toEqual(['kept']);
  });

  it('rejects a sleep with the reason its signal aborts with', async () => {
    const controller = new AbortController();
    const reason = new Error('daemon stopping');
    const sleeping = systemClock.sleep(60_000, controller.signal);
    controller.abort(reason);
    await expect(sleeping).rejects.toBe(reason);
    await expect(systemClock.sleep(1, controller.signal)).rejects.toBe(reason);
  });
});
