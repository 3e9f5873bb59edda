import { describe, expect, it } from 'vitest';
import { lockReleased, lockTurn } from '../../src/store/lockPace.js';

/** Holds the CPU (and, in a real cycle, SQLite's write lock) for `ms`, as a paced transaction does. */
function transaction(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('lockTurn', () => {
  it('leaves the lock free between the transactions of several paced workers of one process, not only of one', async () => {
    // maxLockMs 80: a gap of 10 ms. Two workers (the tweets and users flows, or a fill beside an apply) interleave.
    const maxLockMs = 80;
    const gap = maxLockMs / 8;
    const turns: { from: number; to: number }[] = [];
    const worker = async () => {
      for (let i = 0; i < 6; i++) {
        await lockTurn(maxLockMs);
        const from = performance.now();
        let to = from;
        try {
          transaction(4);
        } finally {
          // Read before the release: read after it, a worker paused there (a busy machine) would shorten the gap seen.
          to = performance.now();
          lockReleased();
        }
        turns.push({ from, to });
      }
    };
    await Promise.all([worker(), worker()]);
    turns.sort((a, b) => a.from - b.from);
    const gaps = turns.slice(1).map((t, i) => t.from - turns[i]!.to);
    // Timers may fire up to a millisecond early (rounding); without the re-check a waiter started right after the other's release.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(gap - 1.5);
  });
});
