import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { outcomeFor } from '../../src/emulator/outcomes.js';
import { api, createJob, get, idsFile, manualClock, put, records, useEmulators } from './helpers.js';

const start = useEmulators();
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** The results a job must hold, computed independently of the emulator from the pure outcome function. */
function expected(type: 'tweets' | 'users', ids: string[], seed = 'compliance-sync'): Map<string, { action: string; reason: string }> {
  const map = new Map<string, { action: string; reason: string }>();
  for (const id of ids) {
    const outcome = outcomeFor(type, id, seed);
    if (outcome) map.set(id, outcome);
  }
  return map;
}

describe('emulator job lifecycle', () => {
  for (const type of ['tweets', 'users'] as const) {
    it(`${type}: create → upload → in_progress → complete → download the expected results`, async () => {
      const clock = manualClock();
      const emulator = await start({ clock: clock.now, processingMs: 30_000 });
      const job = await createJob(emulator, { type });
      expect(job).toMatchObject({ type, status: 'created', resumable: false });
      expect(job).not.toHaveProperty('name');
      expect(job.created_at).toBe('2026-09-25T12:00:00.000Z');
      expect(job.upload_expires_at).toBe('2026-09-25T12:15:00.000Z');
      expect(job.download_expires_at).toBe('2026-10-02T12:00:00.000Z');
      const bucket = type === 'tweets' ? 'twttr-tweet-compliance' : 'twttr-user-compliance';
      expect(job.upload_url).toMatch(
        new RegExp(
          `^${emulator.url}/${bucket}/${job.id}/submission/\\d{19}_${job.id}\\?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=[^&]+%2F20260925%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20260925T120000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=content-type%3Bhost&X-Goog-Signature=[0-9a-f]{64}$`,
        ),
      );
      expect(job.download_url).toContain(`/${bucket}/${job.id}/delivery/`);
      expect(job.download_url).toContain('X-Goog-Expires=604800&X-Goog-SignedHeaders=host&');

      const { ids, body } = idsFile(2000, type === 'tweets' ? 1460716588177498114n : 1101688072863993857n);
      const early = await get(job.download_url);
      expect(early.status).toBe(404);
      expect(early.text).toContain('<Code>NoSuchKey</Code>');

      const uploaded = await put(job.upload_url, body);
      expect(uploaded.status).toBe(200);
      expect(uploaded.text).toBe('');
      expect(uploaded.headers.get('etag')).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
      expect(uploaded.headers.get('x-goog-stored-content-length')).toBe(String(body.length));
      expect(uploaded.headers.get('x-goog-hash')).toMatch(/^crc32c=[A-Za-z0-9+/=]{8},md5=[A-Za-z0-9+/=]{24}$/);

      expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('in_progress');
      expect((await get(job.download_url)).status).toBe(404);
      clock.advance(30_000);
      const done = await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`);
      expect(done.json.data.status).toBe('complete');
      // URLs are not re-signed on later reads (docs/x-api.md#signed-urls).
      expect(done.json.data.upload_url).toBe(job.upload_url);
      expect(done.json.data.download_url).toBe(job.download_url);

      const results = await get(job.download_url);
      expect(results.status).toBe(200);
      expect(results.headers.get('content-type')).toBe('application/octet-stream');
      expect(results.headers.get('content-length')).toBe(String(results.bytes.length));
      expect(results.headers.get('accept-ranges')).toBe('bytes');
      expect(results.headers.get('etag')).toBe(`"${createHash('md5').update(results.bytes).digest('hex')}"`);
      expect(results.headers.get('last-modified')).toBe(new Date(clock.now()).toUTCString());
      expect(results.headers.get('content-encoding')).toBeNull();

      const want = expected(type, ids);
      const got = records(results.text);
      expect(got.length).toBe(want.size);
      expect(want.size).toBeGreaterThan(100); // ~10% of 2000
      for (const record of got) {
        expect(want.get(record.id)).toEqual({ action: record.action, reason: record.reason });
        expect(record.created_at).toMatch(type === 'tweets' ? /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ : /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
      }
      expect(emulator.stats().jobsCreated).toEqual({ tweets: type === 'tweets' ? 1 : 0, users: type === 'users' ? 1 : 0 });
      expect(emulator.jobs()).toEqual([{ id: job.id, type, status: 'complete', uploadedIds: 2000 }]);
    });
  }

  it('names are echoed only when given; one active job per type; lists are newest first and filter by status', async () => {
    const clock = manualClock();
    const emulator = await start({ clock: clock.now, processingMs: 0 });
    const first = await createJob(emulator, { type: 'tweets', name: 'shard-1', resumable: true });
    expect(first).toMatchObject({ name: 'shard-1', resumable: true });
    expect((await api(emulator, 'POST', '/2/compliance/jobs', { type: 'tweets' })).status).toBe(409);
    const users = await createJob(emulator, { type: 'users' }); // the other type runs concurrently
    await put(first.upload_url, idsFile(3).body);
    clock.advance(1000);
    // in_progress is still active until a read sees it complete; processingMs 0 completes it now.
    const second = await createJob(emulator, { type: 'tweets', name: 'shard-2' });
    clock.advance(16 * MINUTE); // second's upload window passes
    const third = await createJob(emulator, { type: 'tweets' });
    const list = await api(emulator, 'GET', '/2/compliance/jobs?type=tweets');
    expect(list.json.data.map((job: { id: string }) => job.id)).toEqual([third.id, second.id, first.id]);
    expect(list.json.data.map((job: { status: string }) => job.status)).toEqual(['created', 'expired', 'complete']);
    expect(list.json.meta).toEqual({ result_count: 3 });
    const expired = await api(emulator, 'GET', '/2/compliance/jobs?type=tweets&status=expired');
    expect(expired.json.data.map((job: { id: string }) => job.id)).toEqual([second.id]);
    const usersList = await api(emulator, 'GET', '/2/compliance/jobs?type=users&status=created');
    expect(usersList.json.data).toBeUndefined(); // users' job expired too
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${users.id}`)).json.data.status).toBe('expired');
  });

  it('the conflict status code is configurable', async () => {
    const emulator = await start({ conflictStatus: 400 });
    await createJob(emulator, { type: 'users' });
    const again = await api(emulator, 'POST', '/2/compliance/jobs', { type: 'users' });
    expect(again.status).toBe(400);
    expect(again.json.type).toBe('https://api.twitter.com/2/problems/conflict');
  });

  it('expiry on the injected clock: created → expired after 15 min, upload URL 400 ExpiredToken, download URL dead after 7 days', async () => {
    const clock = manualClock();
    const emulator = await start({ clock: clock.now });
    const late = await createJob(emulator, { type: 'tweets' });
    clock.advance(15 * MINUTE); // exactly at upload_expires_at: still valid
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${late.id}`)).json.data.status).toBe('created');
    clock.advance(1000);
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${late.id}`)).json.data.status).toBe('expired');
    const refused = await put(late.upload_url, idsFile(3).body);
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('<Code>ExpiredToken</Code>');

    const job = await createJob(emulator, { type: 'tweets' });
    expect((await put(job.upload_url, idsFile(30).body)).status).toBe(200);
    clock.advance(7 * DAY - 1000);
    expect((await get(job.download_url)).status).toBe(200);
    clock.advance(2000);
    const dead = await get(job.download_url);
    expect(dead.status).toBe(400);
    expect(dead.text).toContain('<Code>ExpiredToken</Code>');
  });

  it('serves the API under any base path and host name', async () => {
    const emulator = await start();
    const reply = await api(emulator, 'GET', '/some/prefix/2/compliance/jobs?type=tweets');
    expect(reply.status).toBe(200);
    const res = await fetch(`${emulator.url.replace('127.0.0.1', 'localhost')}/2/compliance/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${emulator.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'users' }),
    }).catch(() => null);
    // Where localhost resolves to 127.0.0.1, signed URLs point back at the host name the client used.
    if (res) expect(((await res.json()) as { data: { upload_url: string } }).data.upload_url).toMatch(/^http:\/\/localhost:\d+\//);
    expect((await api(emulator, 'GET', '/2/other')).status).toBe(404);
  });
});

describe('results file quirks', () => {
  it('shuffled, a blank third line, per-type timestamps, redacted_at only on deletions, stable across restarts', async () => {
    const { ids, body } = idsFile(5000);
    const run = async (seed?: string) => {
      const emulator = await start(seed ? { seed } : {});
      const job = await createJob(emulator, { type: 'tweets' });
      await put(job.upload_url, body);
      await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`);
      const text = (await get(job.download_url)).text;
      await emulator.close();
      return text;
    };
    const text = await run();
    const lines = text.split('\n');
    expect(lines[2]).toBe('');
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toContain('\r');
    const got = records(text);
    const uploadOrder = ids.filter((id) => got.some((r) => r.id === id));
    expect(got.map((r) => r.id)).not.toEqual(uploadOrder);
    for (const record of got) {
      const deletion = record.action === 'delete' && (record.reason === 'deleted' || record.reason === 'deactivated');
      expect('redacted_at' in record).toBe(deletion);
      expect(Object.keys(record)).toEqual(deletion ? ['id', 'action', 'created_at', 'redacted_at', 'reason'] : ['id', 'action', 'created_at', 'reason']);
      if (deletion) expect(Date.parse(record.redacted_at)).toBeGreaterThanOrEqual(Date.parse(record.created_at));
    }
    expect(new Set(got.map((r) => r.reason))).toEqual(new Set(['deleted', 'protected', 'suspended', 'deactivated', 'scrub_geo']));
    expect(got.filter((r) => r.reason === 'scrub_geo').every((r) => r.action === 'scrub_geo')).toBe(true);

    const sorted = (t: string) => records(t).map((r) => `${r.id} ${r.action} ${r.reason} ${r.created_at}`).sort();
    expect(sorted(await run())).toEqual(sorted(text)); // a restarted emulator agrees
    expect(sorted(await run('another seed'))).not.toEqual(sorted(text));
  });

  it('created_at is the snowflake time, as in the real samples', async () => {
    const rules = new Map([
      ['1160164553482756096', { action: 'delete', reason: 'suspended' }],
      ['1101688072863993857', { action: 'delete', reason: 'deleted', redacted_at: '2021-06-15T07:32:10+00:00' }],
    ]);
    const emulator = await start({ rules });
    for (const [type, id, line] of [
      ['tweets', '1160164553482756096', '{"id":"1160164553482756096","action":"delete","created_at":"2019-08-10T12:22:39.022Z","reason":"suspended"}'],
      ['users', '1101688072863993857', '{"id":"1101688072863993857","action":"delete","created_at":"2019-03-02T03:37:59+00:00","redacted_at":"2021-06-15T07:32:10+00:00","reason":"deleted"}'],
    ] as const) {
      const job = await createJob(emulator, { type });
      await put(job.upload_url, `${id}\n`);
      await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`);
      expect((await get(job.download_url)).text).toBe(`${line}\n`);
    }
  });

  it('parses uploads tolerantly: CRLF, whitespace, blank lines, a BOM, leading zeros, duplicates, junk lines', async () => {
    const emulator = await start({ mix: { deleted: 1, protected: 0, suspended: 0, deactivated: 0, scrub_geo: 0 } });
    const job = await createJob(emulator, { type: 'users' });
    const upload = '\ufeff 12 \r\n\r\n\t0034\r\n12\nnot_an_id\n99999999999999999999\n  \n56';
    expect((await put(job.upload_url, upload)).status).toBe(200);
    await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`);
    const got = records((await get(job.download_url)).text);
    expect(got.map((r) => r.id).sort()).toEqual(['12', '34', '56']);
    expect(emulator.jobs()[0]!.uploadedIds).toBe(4); // 12 twice, 34, 56; junk ignored in the GCS flow
  });

  it('an empty upload completes with an empty results file', async () => {
    const emulator = await start();
    const job = await createJob(emulator, { type: 'tweets' });
    expect((await put(job.upload_url, '')).status).toBe(200);
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('complete');
    const results = await get(job.download_url);
    expect(results.status).toBe(200);
    expect(results.bytes.length).toBe(0);
  });
});
