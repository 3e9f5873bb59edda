/** The client against the emulator over real HTTP on loopback; time is a fake clock shared by both sides. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/server.js';
import type { JobType } from '../../src/types.js';
import { ComplianceClient, type ComplianceClientOptions } from '../../src/xapi/client.js';
import { XApiError } from '../../src/xapi/errors.js';
import type { ComplianceJob } from '../../src/xapi/types.js';

const START = Date.parse('2026-10-01T08:00:00.000Z');

/** A fake clock; sleeping advances it, so rate-limit resets and processing delays pass instantly. */
function fakeTime() {
  const time = { now: START };
  return {
    time,
    clock: () => time.now,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      time.now += ms;
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

let dir: string;
let emulators: Emulator[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xapi-emu-'));
});
afterEach(async () => {
  await Promise.all(emulators.map((e) => e.close()));
  emulators = [];
  await rm(dir, { recursive: true, force: true });
});

async function setup(emulatorOptions: EmulatorOptions = {}, clientOptions: Partial<ComplianceClientOptions> = {}) {
  const t = fakeTime();
  const emulator = await startEmulator({ port: 0, clock: t.clock, processingMs: 30_000, ...emulatorOptions });
  emulators.push(emulator);
  const client = new ComplianceClient({ baseUrl: emulator.url, token: emulator.token, clock: t.clock, sleep: t.sleep, ...clientOptions });
  return { ...t, emulator, client };
}

function ids(count: number, from = 1_500_000_000_000_000_000n): string[] {
  return Array.from({ length: count }, (_, i) => (from + BigInt(i) * 7919n).toString());
}

async function idFile(list: string[], name = 'ids.txt'): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `${list.join('\n')}\n`);
  return file;
}

async function pollUntilDone(client: ComplianceClient, sleep: (ms: number) => Promise<void>, id: string): Promise<ComplianceJob> {
  for (let i = 0; i < 200; i++) {
    const job = await client.getJob(id);
    if (job.status !== 'created' && job.status !== 'in_progress') return job;
    await sleep(10_000);
  }
  throw new Error(`job ${id} never finished`);
}

async function failure(promise: Promise<unknown>): Promise<XApiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(XApiError);
  return error as XApiError;
}

function parseResults(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe.each(['tweets', 'users'] as JobType[])('full lifecycle of a %s job', (type) => {
  it('creates, uploads, polls until complete, downloads and parses the results', async () => {
    const { client, sleep, emulator } = await setup();
    const uploaded = ids(2000);
    const job = await client.createJob({ type, name: `shard-${type}` });
    expect(job).toMatchObject({ type, name: `shard-${type}`, status: 'created', resumable: false });
    expect(job.id).toMatch(/^\d{1,19}$/);

    expect(await client.upload(job, await idFile(uploaded))).toEqual({ bytes: uploaded.join('\n').length + 1 });
    const done = await pollUntilDone(client, sleep, job.id);
    expect(done.status).toBe('complete');
    expect((await client.listJobs(type)).map((j) => j.id)).toContain(job.id);

    const dest = join(dir, `${type}.ndjson`);
    const { bytes } = await client.download(done, dest);
    const text = await readFile(dest, 'utf8');
    expect(Buffer.byteLength(text)).toBe(bytes);
    const records = parseResults(text);
    expect(records.length).toBeGreaterThan(0);
    const set = new Set(uploaded);
    for (const record of records) {
      expect(set.has(record.id as string)).toBe(true);
      expect(typeof record.action).toBe('string');
      expect(typeof record.reason).toBe('string');
    }
    expect(emulator.stats().maxPerWindow.get).toBeLessThanOrEqual(150);
  });
});

describe('API errors', () => {
  it('maps a second active job of a type to conflict (409), the other type still free', async () => {
    const { client } = await setup();
    await client.createJob({ type: 'tweets' });
    const error = await failure(client.createJob({ type: 'tweets' }));
    expect(error).toMatchObject({ code: 'conflict', status: 409, title: 'Conflict' });
    expect(error.hint).toMatch(/one job per type/);
    await expect(client.createJob({ type: 'users' })).resolves.toMatchObject({ type: 'users' });
  });

  it('maps a wrong token to unauthorized (401) without retrying, and setToken fixes it', async () => {
    const { client, emulator } = await setup({}, { token: 'not-the-token' });
    const error = await failure(client.listJobs('tweets'));
    expect(error).toMatchObject({ code: 'unauthorized', status: 401 });
    expect(error.hint).toMatch(/bearer token/);
    client.setToken(emulator.token);
    await expect(client.listJobs('tweets')).resolves.toEqual([]);
  });

  it('reports an unknown job as not_found, in the 200+errors form and the 404 form', async () => {
    for (const unknownJobStatus of [200, 404] as const) {
      const { client } = await setup({ unknownJobStatus });
      const error = await failure(client.getJob('1234567890123456789'));
      expect(error.code).toBe('not_found');
      expect(error.jobId).toBe('1234567890123456789');
    }
  });

  it('waits for x-rate-limit-reset after a 429 (another process spent the window), then succeeds', async () => {
    const windowMs = 10 * 60_000;
    const { client, emulator, time, clock, sleep } = await setup({ rateLimit: { limit: 3, windowMs } });
    for (let i = 0; i < 3; i++) await client.listJobs('users');
    // A second process of the same App: its own budget knows nothing of the calls above.
    const other = new ComplianceClient({ baseUrl: emulator.url, token: emulator.token, clock, sleep });
    await expect(other.listJobs('users')).resolves.toEqual([]);
    expect(emulator.stats().rateLimited).toBe(1);
    expect(emulator.stats().maxPerWindow.list).toBe(4); // 3 allowed + the one 429
    // The window opened at START with the first call; the retry waited for its reset, not for Retry-After.
    expect(time.now).toBeGreaterThanOrEqual(START + windowMs);
  });

  it('aborts a call that is waiting for the rate-limit window', async () => {
    const emulator = await startEmulator({ port: 0, rateLimit: { limit: 1, windowMs: 10 * 60_000 } });
    emulators.push(emulator);
    // Real clock and sleep: the wait would last ten minutes unless the abort ends it.
    const client = new ComplianceClient({ baseUrl: emulator.url, token: emulator.token });
    await client.listJobs('tweets');
    const controller = new AbortController();
    const waiting = client.listJobs('tweets', undefined, controller.signal);
    setTimeout(() => controller.abort(new Error('shutdown requested')), 50);
    await expect(waiting).rejects.toThrow('shutdown requested');
  });

  it('retries after a 429 storm', async () => {
    const { client, emulator } = await setup({ faults: { rate429: { count: 2 } } });
    await expect(client.listJobs('users')).resolves.toEqual([]);
    expect(emulator.stats().rateLimited).toBe(2);
  });

  it('gives up after the bounded 429 retries with rate_limited and retryAt', async () => {
    const { client } = await setup({ faults: { rate429: { count: 5 } } }, { rateLimitRetries: 1 });
    const error = await failure(client.listJobs('users'));
    expect(error.code).toBe('rate_limited');
    expect(error.retryAt).toBeGreaterThan(START);
  });

  it('keeps two pollers within a small server limit without a single 429', async () => {
    const { client, emulator } = await setup({ rateLimit: { limit: 5, windowMs: 60_000 } });
    const [a, b] = [await client.createJob({ type: 'tweets' }), await client.createJob({ type: 'users' })];
    await Promise.all([a!, b!].map(async (job) => {
      for (let i = 0; i < 12; i++) await client.getJob(job.id);
    }));
    const stats = emulator.stats();
    expect(stats.requests.get).toBe(24);
    expect(stats.maxPerWindow.get).toBeLessThanOrEqual(5);
    expect(stats.rateLimited).toBe(0);
  });

  it('retries a GET after 5xx answers', async () => {
    const { client, emulator } = await setup({ faults: { api5xx: { count: 2 } } });
    await expect(client.listJobs('tweets')).resolves.toEqual([]);
    expect(emulator.stats().faults.api5xx).toBe(2);
  });

  it('does not retry a create after a 5xx, and says to look for the job', async () => {
    const { client, emulator } = await setup({ faults: { api5xx: { count: 1 } } });
    const error = await failure(client.createJob({ type: 'tweets' }));
    expect(error.code).toBe('server_error');
    expect(error.hint).toMatch(/list the created jobs/);
    expect(emulator.stats().requests.create).toBe(1);
  });

  it('gives up with server_error when 5xx persist', async () => {
    const { client } = await setup({ faults: { api5xx: { rate: 1 } } }, { retries: 2 });
    const error = await failure(client.listJobs('tweets'));
    expect(error.code).toBe('server_error');
    expect(error.temporary).toBe(true);
  });
});

describe('uploads', () => {
  it('refuses an expired upload URL without a request', async () => {
    const { client, time } = await setup();
    const job = await client.createJob({ type: 'tweets' });
    time.now += 16 * 60_000;
    const error = await failure(client.upload(job, await idFile(ids(3))));
    expect(error).toMatchObject({ code: 'upload_expired', jobId: job.id });
  });

  it('maps the storage 400 ExpiredToken to upload_expired when the local clock lags', async () => {
    const t = fakeTime();
    const skew = { ms: 0 };
    const emulator = await startEmulator({ port: 0, clock: () => t.time.now + skew.ms });
    emulators.push(emulator);
    // The client's clock is behind the server's: its own expiry check passes, the server's does not.
    const client = new ComplianceClient({ baseUrl: emulator.url, token: emulator.token, clock: t.clock, sleep: t.sleep });
    const job = await client.createJob({ type: 'tweets' });
    skew.ms = 16 * 60_000;
    const error = await failure(client.upload(job, await idFile(ids(3))));
    expect(error).toMatchObject({ code: 'upload_expired', status: 400, jobId: job.id });
  });

  it('maps a tampered signature to signature_mismatch', async () => {
    const { client } = await setup();
    const job = await client.createJob({ type: 'tweets' });
    const url = new URL(job.upload_url);
    const signature = url.searchParams.get('X-Goog-Signature')!;
    url.searchParams.set('X-Goog-Signature', `${signature.slice(0, -2)}${signature.endsWith('00') ? '11' : '00'}`);
    const error = await failure(client.upload({ ...job, upload_url: url.toString() }, await idFile(ids(3))));
    expect(error).toMatchObject({ code: 'signature_mismatch', status: 403, jobId: job.id });
    expect(error.hint).toMatch(/text\/plain/);
  });

  it('maps a wrong content type to signature_mismatch', async () => {
    const { client } = await setup({}, { uploadContentType: 'text/plain; charset=utf-8' });
    const job = await client.createJob({ type: 'tweets' });
    const error = await failure(client.upload(job, await idFile(ids(3))));
    expect(error).toMatchObject({ code: 'signature_mismatch', status: 403 });
  });

  it('retries a simple upload the storage refused with 503, reopening the file', async () => {
    const { client, sleep, emulator } = await setup({ faults: { uploadReject: { count: 2 } } });
    const job = await client.createJob({ type: 'users' });
    await client.upload(job, await idFile(ids(50)));
    expect(emulator.stats().faults.uploadReject).toBe(2);
    expect((await pollUntilDone(client, sleep, job.id)).status).toBe('complete');
    expect(emulator.jobs().find((j) => j.id === job.id)?.uploadedIds).toBe(50);
  });

  it('maps a storage 403 refusal to upload_rejected', async () => {
    const { client } = await setup({ faults: { uploadReject: { count: 1, status: 403 } } });
    const job = await client.createJob({ type: 'users' });
    const error = await failure(client.upload(job, await idFile(ids(5))));
    expect(error).toMatchObject({ code: 'upload_rejected', status: 403 });
  });

  it('uploads resumably, resuming from the stored offset after interrupted chunks', async () => {
    const { client, sleep, emulator } = await setup({}, { uploadChunkBytes: 256 * 1024 });
    const uploaded = ids(60_000); // 1.2 MB: five chunks
    const job = await client.createJob({ type: 'tweets', resumable: true });
    expect(job.resumable).toBe(true);
    emulator.setFaults({ uploadReject: { count: 2 } });
    await client.upload(job, await idFile(uploaded));
    expect(emulator.stats().faults.uploadReject).toBe(2);
    const done = await pollUntilDone(client, sleep, job.id);
    expect(done.status).toBe('complete');
    expect(emulator.jobs().find((j) => j.id === job.id)?.uploadedIds).toBe(uploaded.length);
  });
});

describe('downloads and job outcomes', () => {
  it('resumes a cut download with Range and gets the same bytes', async () => {
    const { client, sleep, emulator } = await setup();
    const job = await client.createJob({ type: 'tweets' });
    await client.upload(job, await idFile(ids(3000)));
    const done = await pollUntilDone(client, sleep, job.id);
    const clean = join(dir, 'clean.ndjson');
    await client.download(done, clean);
    emulator.setFaults({ cutDownload: { count: 2 } });
    const cut = join(dir, 'cut.ndjson');
    await client.download(done, cut);
    expect(emulator.stats().faults.cutDownload).toBe(2);
    expect((await readFile(cut)).equals(await readFile(clean))).toBe(true);
  });

  it('says results are not ready when downloading too early', async () => {
    const { client } = await setup();
    const job = await client.createJob({ type: 'tweets' });
    await client.upload(job, await idFile(ids(10)));
    const error = await failure(client.download(job, join(dir, 'early.ndjson')));
    expect(error).toMatchObject({ code: 'not_found', status: 404, jobId: job.id });
    expect(error.hint).toMatch(/not ready/);
  });

  it('refuses a download past its window without a request', async () => {
    const { client, time } = await setup();
    const job = await client.createJob({ type: 'tweets' });
    time.now += 8 * 86_400_000;
    const error = await failure(client.download(job, join(dir, 'late.ndjson')));
    expect(error.code).toBe('download_expired');
  });

  it('reports a failed job with its error', async () => {
    const { client, sleep } = await setup({ faults: { jobFail: { count: 1 } } });
    const job = await client.createJob({ type: 'users' });
    await client.upload(job, await idFile(ids(10)));
    const done = await pollUntilDone(client, sleep, job.id);
    expect(done.status).toBe('failed');
    expect(typeof done.error).toBe('string');
  });
});

describe('byte-path mode (2026 api.x.com URLs)', () => {
  it('runs a job through the byte paths and cancels another', async () => {
    const { client, sleep } = await setup({ transfer: 'bytepath' });
    const job = await client.createJob({ type: 'tweets' });
    expect(new URL(job.upload_url).pathname).toBe(`/2/compliance/jobs/${job.id}/upload`);
    const uploaded = ids(500);
    await client.upload(job, await idFile(uploaded));
    const done = await pollUntilDone(client, sleep, job.id);
    expect(done.status).toBe('complete');
    const dest = join(dir, 'bytepath.ndjson');
    await client.download(done, dest);
    const set = new Set(uploaded);
    for (const record of parseResults(await readFile(dest, 'utf8'))) {
      if (typeof record.id === 'string') expect(set.has(record.id)).toBe(true);
    }
    const other = await client.createJob({ type: 'users' });
    const cancelled = await client.cancelJob(other.id);
    expect(cancelled.status).toBe('failed');
  });

  it('refuses resumable jobs as an invalid request', async () => {
    const { client } = await setup({ transfer: 'bytepath' });
    const error = await failure(client.createJob({ type: 'tweets', resumable: true }));
    expect(error).toMatchObject({ code: 'invalid_request', status: 400 });
  });
});
