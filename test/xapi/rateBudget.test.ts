import { describe, expect, it } from 'vitest';
import { RateBudget } from '../../src/xapi/rateBudget.js';

/** A fake clock whose sleep advances it, so waits cost no real time and are observable. */
function fakeTime(start = 1_700_000_000_000) {
  const time = { now: start, slept: [] as number[] };
  const clock = () => time.now;
  const sleep = async (ms: number, signal?: AbortSignal) => {
    signal?.throwIfAborted();
    time.slept.push(ms);
    time.now += ms;
  };
  return { time, clock, sleep };
}

describe('RateBudget', () => {
  it('keeps every window of one endpoint within the limit, however many callers poll at once', async () => {
    const { time, clock, sleep } = fakeTime();
    const budget = new RateBudget({ limit: 150, windowMs: 900_000, clock, sleep });
    const starts: number[] = [];
    // Two job pollers (tweets and users) hammering `get` through one budget.
    await Promise.all(
      [0, 1].map(async () => {
        for (let i = 0; i < 200; i++) {
          await budget.acquire('get');
          starts.push(time.now);
        }
      }),
    );
    starts.sort((a, b) => a - b);
    for (let i = 0; i < starts.length; i++) {
      const inWindow = starts.filter((t) => t >= starts[i]! && t < starts[i]! + 900_000).length;
      expect(inWindow).toBeLessThanOrEqual(150);
    }
    expect(starts).toHaveLength(400);
  });

  it('lets a few calls through without waiting', async () => {
    const { time, clock, sleep } = fakeTime();
    const budget = new RateBudget({ clock, sleep });
    for (let i = 0; i < 5; i++) await budget.acquire('create');
    expect(time.slept).toEqual([]);
  });

  it('keeps endpoints apart', async () => {
    const { time, clock, sleep } = fakeTime();
    const budget = new RateBudget({ limit: 2, windowMs: 1000, clock, sleep });
    await budget.acquire('get');
    await budget.acquire('list');
    await budget.acquire('create');
    expect(time.slept).toEqual([]);
  });

  it('waits for x-rate-limit-reset when the server says nothing remains', async () => {
    const { time, clock, sleep } = fakeTime();
    const budget = new RateBudget({ clock, sleep });
    const reset = Math.floor(time.now / 1000) + 600;
    budget.update('get', { 'x-rate-limit-limit': '150', 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': String(reset) });
    await budget.acquire('get');
    expect(time.now).toBeGreaterThanOrEqual(reset * 1000);
    await budget.acquire('list');
  });

  it('blocks until the given time after a 429, reading the reset header and not Retry-After', async () => {
    const { time, clock, sleep } = fakeTime();
    const budget = new RateBudget({ clock, sleep });
    const headers = { 'x-rate-limit-reset': String(Math.floor(time.now / 1000) + 120), 'retry-after': '1' };
    const until = budget.resetAt(headers);
    expect(until).toBeGreaterThanOrEqual(time.now + 119_000);
    budget.block('get', until);
    await budget.acquire('get');
    expect(time.now).toBeGreaterThanOrEqual(until);
  });

  it('adopts a larger server limit, so calls are spaced by what the server grants', async () => {
    const { clock, sleep, time } = fakeTime();
    const budget = new RateBudget({ limit: 150, windowMs: 60_000, clock, sleep });
    budget.update('get', { 'x-rate-limit-limit': '6000', 'x-rate-limit-remaining': '5999' });
    const start = time.now;
    for (let i = 0; i < 1000; i++) await budget.acquire('get');
    // 1000 calls at 6000 per minute take about 10 s, not the ~400 s that 150 per minute would.
    expect(time.now - start).toBeLessThan(15_000);
  });

  it('adopts a smaller server limit', async () => {
    const { time, clock, sleep } = fakeTime();
    const budget = new RateBudget({ limit: 150, windowMs: 60_000, clock, sleep });
    budget.update('get', { 'x-rate-limit-limit': '3', 'x-rate-limit-remaining': '2' });
    const starts: number[] = [];
    for (let i = 0; i < 9; i++) {
      await budget.acquire('get');
      starts.push(time.now);
    }
    for (const t of starts) expect(starts.filter((s) => s >= t && s < t + 60_000).length).toBeLessThanOrEqual(3);
  });

  it('never caps a wait beyond one window for a garbage reset', async () => {
    const { time, clock, sleep } = fakeTime();
    const budget = new RateBudget({ windowMs: 900_000, clock, sleep });
    const start = time.now;
    budget.block('get', start + 10 * 86_400_000);
    await budget.acquire('get');
    expect(time.now - start).toBeLessThanOrEqual(902_000);
  });

  it('aborts a wait', async () => {
    const budget = new RateBudget({ limit: 2, windowMs: 3_600_000 });
    budget.block('get', Date.now() + 3_600_000);
    const controller = new AbortController();
    const waiting = budget.acquire('get', controller.signal);
    controller.abort(new Error('shutting down'));
    await expect(waiting).rejects.toThrow('shutting down');
  });
});
