import { describe, expect, it } from 'vitest';
import { api, createJob, idsFile, manualClock, put, useEmulators } from './helpers.js';

const start = useEmulators();

describe('rate limits', () => {
  it('x-rate-limit-* on every API response, a fixed window per endpoint, 429 past the limit, then a new window', async () => {
    const clock = manualClock(Date.parse('2026-09-25T12:00:00.250Z'));
    const emulator = await start({ clock: clock.now, rateLimit: { limit: 3, windowMs: 60_000 } });
    const reset = String(Math.ceil((clock.now() + 60_000) / 1000));
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const reply = await api(emulator, 'GET', '/2/compliance/jobs?type=tweets');
      statuses.push(reply.status);
      expect(reply.headers.get('x-rate-limit-limit')).toBe('3');
      expect(reply.headers.get('x-rate-limit-remaining')).toBe(String(Math.max(0, 2 - i)));
      expect(reply.headers.get('x-rate-limit-reset')).toBe(reset);
      clock.advance(1000);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    // Other endpoints have their own windows; error answers carry the headers too.
    const bad = await api(emulator, 'GET', '/2/compliance/jobs/x');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-rate-limit-remaining')).toBe('2');
    expect((await api(emulator, 'POST', '/2/compliance/jobs', { type: 'users' })).headers.get('x-rate-limit-remaining')).toBe('2');
    clock.advance(60_000);
    const fresh = await api(emulator, 'GET', '/2/compliance/jobs?type=tweets');
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('x-rate-limit-remaining')).toBe('2');
    const stats = emulator.stats();
    expect(stats.requests).toEqual({ create: 1, get: 1, list: 6, cancel: 0 });
    expect(stats.maxPerWindow).toEqual({ create: 1, get: 1, list: 5, cancel: 0 });
    expect(stats.currentWindow.list).toBe(1);
    expect(stats.rateLimited).toBe(2);
  });

  it('unauthenticated requests are refused before counting', async () => {
    const emulator = await start();
    await api(emulator, 'GET', '/2/compliance/jobs?type=tweets', undefined, null);
    expect(emulator.stats().requests.list).toBe(0);
  });
});

describe('fault injection', () => {
  it('api5xx by count: the first N API calls fail with 500/503, then calls succeed', async () => {
    const emulator = await start({ faults: { api5xx: 2 } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await api(emulator, 'GET', '/2/compliance/jobs?type=tweets')).status);
    expect(statuses.slice(0, 2).every((s) => s === 500 || s === 503)).toBe(true);
    expect(statuses.slice(2)).toEqual([200, 200]);
    emulator.setFaults({ api5xx: { rate: 1, status: 503 } });
    const failed = await api(emulator, 'POST', '/2/compliance/jobs', { type: 'tweets' });
    expect(failed.status).toBe(503);
    expect(failed.json).toEqual({ title: 'Service Unavailable', detail: 'Service Unavailable', type: 'about:blank', status: 503 });
    emulator.setFaults({});
    expect((await api(emulator, 'POST', '/2/compliance/jobs', { type: 'tweets' })).status).toBe(200);
    expect(emulator.stats().faults.api5xx).toBe(3);
  });

  it('rate-based faults repeat for a given seed', async () => {
    const pattern = async () => {
      const emulator = await start({ seed: 'repeatable', faults: { api5xx: 0.5 } });
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await api(emulator, 'GET', '/2/compliance/jobs?type=users')).status);
      await emulator.close();
      return statuses;
    };
    const first = await pattern();
    expect(first).toContain(200);
    expect(first.some((s) => s >= 500)).toBe(true);
    expect(await pattern()).toEqual(first);
  });

  it('rate429: a storm of 429s with a reset a second away', async () => {
    const clock = manualClock(Date.parse('2026-09-25T12:00:00.000Z'));
    const emulator = await start({ clock: clock.now, faults: { rate429: 2 } });
    for (let i = 0; i < 2; i++) {
      const reply = await api(emulator, 'GET', '/2/compliance/jobs?type=tweets');
      expect(reply.status).toBe(429);
      expect(reply.headers.get('x-rate-limit-remaining')).toBe('0');
      expect(reply.headers.get('x-rate-limit-reset')).toBe(String(clock.now() / 1000 + 1));
    }
    expect((await api(emulator, 'GET', '/2/compliance/jobs?type=tweets')).status).toBe(200);
    expect(emulator.stats().rateLimited).toBe(2);
  });

  it('jobFail: the job ends failed with an error instead of complete; the download stays missing', async () => {
    const emulator = await start({ faults: { jobFail: 1 } });
    const job = await createJob(emulator, { type: 'tweets' });
    await put(job.upload_url, idsFile(10).body);
    const reply = await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`);
    expect(reply.json.data.status).toBe('failed');
    expect(reply.json.data.error).toMatch(/./);
    expect((await fetch(job.download_url)).status).toBe(404);
    const next = await createJob(emulator, { type: 'tweets' }); // a failed job frees the type
    await put(next.upload_url, idsFile(10).body);
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${next.id}`)).json.data.status).toBe('complete');
  });

  it('slowProcessing: processing takes factor times longer', async () => {
    const clock = manualClock();
    const emulator = await start({ clock: clock.now, processingMs: 2000, faults: { slowProcessing: { count: 1, factor: 5 } } });
    const job = await createJob(emulator, { type: 'users' });
    await put(job.upload_url, idsFile(10).body);
    clock.advance(9999);
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('in_progress');
    clock.advance(1);
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('complete');
  });

  it('uploadReject: 503 (default) or 403, and nothing is stored', async () => {
    const emulator = await start({ faults: { uploadReject: 1 } });
    const job = await createJob(emulator, { type: 'tweets' });
    const refused = await put(job.upload_url, idsFile(10).body);
    expect(refused.status).toBe(503);
    expect(refused.text).toContain('<Error><Code>');
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('created');
    emulator.setFaults({ uploadReject: { count: 1, status: 403 } });
    expect((await put(job.upload_url, idsFile(10).body)).status).toBe(403);
    expect((await put(job.upload_url, idsFile(10).body)).status).toBe(200);
  });

  it('bad fault settings are refused', async () => {
    await expect(start({ faults: { api5xx: { rate: 2 } } })).rejects.toThrow(/rate/);
    await expect(start({ faults: { nope: 1 } as never })).rejects.toThrow(/unknown fault/);
  });
});
