import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as realDelay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import type { CycleContext } from '../../src/pipeline/context.js';
import { runCycle } from '../../src/pipeline/cycle.js';
import { openRuntime } from '../../src/pipeline/runtime.js';
import { ComplianceClient } from '../../src/xapi/client.js';
import { XApiError } from '../../src/xapi/errors.js';
import { RateBudget } from '../../src/xapi/rateBudget.js';
import { useTempDir } from '../helpers/tmp.js';
import { makeWorld, TOKEN, useOpenWorlds } from '../helpers/world.js';

const tempDir = useTempDir();
const open = useOpenWorlds();

interface LogLine {
  level: string;
  msg: string;
  since?: string;
  until?: string;
  waitedS?: number;
  [key: string]: unknown;
}

/** A logger whose lines the test reads back. */
function capturedLogger() {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

/** A clock that only sleeps move (each sleep also yields a few real ms, so servers on loopback keep answering). */
function fakeTime(start = Date.now()) {
  const time = { now: start, sleeps: 0 };
  return {
    time,
    clock: () => time.now,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      time.sleeps++;
      time.now += ms;
      await realDelay(5);
    },
  };
}

/**
 * The lines of one wait (up to its "done" line): every one says since when, and no two are more than `gapS` of
 * waiting apart.
 */
function expectReportedEvery30s(lines: LogLine[], what: string, gapS = 30): LogLine[] {
  const done = lines.findIndex((line) => line.msg === `done waiting for ${what}`);
  const waiting = lines.slice(0, done === -1 ? undefined : done).filter((line) => line.msg === `waiting for ${what}`);
  expect(waiting.length, JSON.stringify(lines.map((l) => l.msg))).toBeGreaterThanOrEqual(2);
  expect(new Set(waiting.map((line) => line.since)).size).toBe(1);
  for (let i = 1; i < waiting.length; i++) expect(waiting[i]!.waitedS! - waiting[i - 1]!.waitedS!).toBeLessThanOrEqual(gapS);
  return waiting;
}

async function setup(options: Parameters<typeof makeWorld>[1]) {
  const world = await makeWorld(tempDir(), options);
  const { logger, lines } = capturedLogger();
  const runtime = openRuntime(world.config, logger, world.env);
  open.push({ world, runtime });
  return { world, runtime, logger, lines };
}

describe('waiting is visible', () => {
  it('a rate-limit reset 5 minutes away is logged at once and every 30 s, with until, and when it is over', async () => {
    const { clock, sleep } = fakeTime();
    const { logger, lines } = capturedLogger();
    const budget = new RateBudget({ clock, sleep });
    budget.block('get', clock() + 5 * 60_000);
    await budget.acquire('get', undefined, logger);
    const waiting = expectReportedEvery30s(lines, 'the rate limit of the get endpoint to reset');
    expect(waiting[0]!.waitedS).toBe(0);
    expect(waiting[0]!.until).toBe(new Date(clock()).toISOString());
    expect(waiting.at(-1)!.waitedS).toBeGreaterThanOrEqual(270);
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'done waiting for the rate limit of the get endpoint to reset', waitedS: 300 });
  });

  it('the client shows its wait when the emulator grants a small window (3 calls per 3 min)', async () => {
    const fake = fakeTime();
    const world = await makeWorld(tempDir(), { tweets: 10, users: 5, emulator: { clock: fake.clock, rateLimit: { limit: 3, windowMs: 3 * 60_000 } } });
    try {
      const { logger, lines } = capturedLogger();
      const client = new ComplianceClient({ baseUrl: world.emulator.url, token: TOKEN, clock: fake.clock, sleep: fake.sleep, logger });
      const job = await client.createJob({ type: 'tweets' });
      for (let i = 0; i < 5; i++) expect((await client.getJob(job.id)).id).toBe(job.id);
      // The budget spaces the calls to what the server states: ~90 s apart, each wait reported as it goes.
      const waiting = expectReportedEvery30s(lines, "a share of the get endpoint's rate limit");
      expect(waiting[0]!.until).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(lines.filter((line) => line.msg === "done waiting for a share of the get endpoint's rate limit").length).toBeGreaterThanOrEqual(2);
    } finally {
      await world.close();
    }
  });

  it('waiting for a job slot held by a foreign job (409) is logged every 30 s until the slot frees', async () => {
    const { world, runtime, lines } = await setup({ tweets: 500, users: 10, config: { jobs: { shardSize: 1000, pollIntervalSeconds: 20 } } });
    // Another tool of the same App holds the tweets slot until its upload is processed.
    const other = new ComplianceClient({ baseUrl: world.emulator.url, token: TOKEN });
    const foreign = await other.createJob({ type: 'tweets', name: 'someone-elses-job' });
    const fake = fakeTime();
    const ids = path.join(world.dir, 'foreign.ids');
    writeFileSync(ids, '1460716588177498114\n');
    const sleep = async (ms: number, signal?: AbortSignal) => {
      await fake.sleep(ms, signal);
      if (fake.time.sleeps === 6) await other.upload(foreign, ids);
    };
    const ctx: CycleContext = { ...runtime.context(new AbortController().signal), now: () => new Date(fake.clock()), sleep };
    const summary = await runCycle(ctx, 'tweets', { trigger: 'manual' });
    expect(summary.state).toBe('closed');
    expectReportedEvery30s(lines, `a tweets job slot (job ${foreign.id} is active)`);
    expect(lines.some((line) => line.msg === `done waiting for a tweets job slot (job ${foreign.id} is active)`)).toBe(true);
  });

  it('an unreachable API is reported while the step is retried, then the cycle stops with a temporary error', async () => {
    const { world, runtime, logger, lines } = await setup({ tweets: 500, users: 10 });
    const fake = fakeTime();
    // Nothing listens on port 9 (discard) of loopback: every request is refused.
    const client = new ComplianceClient({ baseUrl: 'http://127.0.0.1:9', token: TOKEN, clock: fake.clock, sleep: fake.sleep, logger });
    const ctx: CycleContext = { ...runtime.context(new AbortController().signal), client, now: () => new Date(fake.clock()), sleep: fake.sleep };
    const error = (await runCycle(ctx, 'tweets', { trigger: 'manual' }).catch((err: unknown) => err)) as XApiError;
    expect(error).toBeInstanceOf(XApiError);
    expect(error.code).toBe('network');
    expect(error.exitCode).toBe(75);
    // Lines come between attempts: at most 30 s of waiting apart, plus the attempt itself (here the client's own
    // three quick retries, 1 + 2 + 4 s with up to 25% jitter).
    const waiting = expectReportedEvery30s(lines, 'the API to answer again', 30 + 9);
    expect(waiting.at(-1)!.waitedS).toBeGreaterThan(120);
    expect(world.emulator.stats().jobsCreated.tweets ?? 0).toBe(0);
  });

  it('a download URL answered 403 is replaced by fetching the job again, without a new job', async () => {
    const { world, runtime, lines } = await setup({ tweets: 2000, users: 10, config: { jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 } }, emulator: { faults: { downloadForbidden: 1 } } });
    const summary = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual' });
    expect(summary.state).toBe('closed');
    expect(summary.shards).toMatchObject({ total: 2, applied: 2, failed: 0 });
    expect(summary.jobsUsed).toBe(2);
    expect(world.emulator.stats().faults.downloadForbidden).toBe(1);
    expect(lines.filter((line) => line.msg === 'the download URL was refused; fetching the job again for a fresh URL')).toHaveLength(1);
  });
});
