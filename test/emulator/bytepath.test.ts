import { describe, expect, it } from 'vitest';
import { api, createJob, get, idsFile, manualClock, put, records, useEmulators } from './helpers.js';

const start = useEmulators();

describe('byte-path mode (the 2026 api.x.com flow)', () => {
  it('URLs on the API paths (base prefix kept); single PUT → in_progress job; download of the results', async () => {
    const emulator = await start({ transfer: 'bytepath', mix: { deleted: 0, protected: 0, suspended: 0, deactivated: 0, scrub_geo: 0.5 } });
    const created = await api(emulator, 'POST', '/v/2/compliance/jobs', { type: 'tweets' });
    const job = created.json.data;
    expect(job.upload_url).toMatch(new RegExp(`^${emulator.url}/v/2/compliance/jobs/${job.id}/upload\\?token=[A-Za-z0-9_-]+$`));
    expect(job.download_url).toMatch(new RegExp(`^${emulator.url}/v/2/compliance/jobs/${job.id}/download\\?token=[A-Za-z0-9_-]+$`));
    expect((await get(job.download_url)).status).toBe(404);

    const { body } = idsFile(200);
    const upload = await put(job.upload_url, Buffer.concat([body, Buffer.from('not_a_valid_id\n')]), 'application/octet-stream');
    expect(upload.status).toBe(200);
    expect(upload.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(upload.json.data).toMatchObject({ id: job.id, status: 'in_progress' });

    const results = await get(job.download_url);
    expect(results.status).toBe(200);
    expect(results.headers.get('content-type')).toBe('application/octet-stream');
    const got = records(results.text);
    expect(got).toContainEqual({ id: 'not_a_valid_id', error: 'invalid_id' });
    const geo = got.filter((r) => !r.error);
    expect(geo.length).toBeGreaterThan(50);
    expect(geo.every((r) => r.action === 'scrub_geo' && r.reason === 'geo_scrubbed')).toBe(true);
  });

  it('text/plain with a charset is fine here; other types, bad tokens, expiry and oversize are refused', async () => {
    const clock = manualClock();
    const emulator = await start({ transfer: 'bytepath', clock: clock.now, maxUploadBytes: 1000 });
    const job = await createJob(emulator, { type: 'users' });
    const wrongType = await put(job.upload_url, '1\n', 'application/json');
    expect(wrongType.status).toBe(415);
    const badToken = await put(job.upload_url.replace(/token=.*/, 'token=forged'), '1\n');
    expect(badToken.status).toBe(403);
    expect(badToken.json).toMatchObject({ status: 403, title: 'Forbidden' });
    const downloadToken = new URL(job.download_url).searchParams.get('token')!;
    expect((await put(job.upload_url.replace(/token=.*/, `token=${downloadToken}`), '1\n')).status).toBe(403);
    const tooBig = await put(job.upload_url, idsFile(100).body); // 2,000 bytes > 1,000
    expect(tooBig.status).toBe(413);
    expect(tooBig.json.title).toBe('Payload Too Large');
    clock.advance(15 * 60_000 + 1000);
    const expired = await put(job.upload_url, '1\n', 'text/plain; charset=utf-8');
    expect(expired.status).toBe(400);
    expect(expired.json.type).toBe('https://api.x.com/2/problems/invalid-request');
    const fresh = await createJob(emulator, { type: 'users' });
    expect((await put(fresh.upload_url, '1\n2\n', 'text/plain; charset=utf-8')).status).toBe(200);
  });

  it('resumable: true is refused at create', async () => {
    const emulator = await start({ transfer: 'bytepath' });
    const reply = await api(emulator, 'POST', '/2/compliance/jobs', { type: 'tweets', resumable: true });
    expect(reply.status).toBe(400);
    expect(reply.json.errors[0].parameters).toEqual({ resumable: ['true'] });
    expect((await api(emulator, 'POST', '/2/compliance/jobs', { type: 'tweets', resumable: false })).status).toBe(200);
  });

  it('DELETE cancels an unfinished job (failed, "cancelled"), frees the type, and answers 409 on a finished one', async () => {
    const emulator = await start({ transfer: 'bytepath' });
    const job = await createJob(emulator, { type: 'tweets' });
    const cancelled = await api(emulator, 'DELETE', `/2/compliance/jobs/${job.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.json.data).toMatchObject({ id: job.id, status: 'failed', error: 'cancelled' });
    expect(cancelled.headers.get('x-rate-limit-limit')).toBe('150');
    expect((await put(job.upload_url, '1\n')).status).toBe(409);
    const next = await createJob(emulator, { type: 'tweets' });
    expect((await api(emulator, 'DELETE', `/2/compliance/jobs/${job.id}`)).status).toBe(409);
    await put(next.upload_url, '1\n');
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${next.id}`)).json.data.status).toBe('complete');
    expect((await api(emulator, 'DELETE', `/2/compliance/jobs/${next.id}`)).status).toBe(409);
    expect((await api(emulator, 'DELETE', '/2/compliance/jobs/77')).json.errors[0].resource_id).toBe('77');
    expect(emulator.stats().requests.cancel).toBe(4);
  });

  it('DELETE does not exist in the GCS flow, nor do the byte paths', async () => {
    const emulator = await start();
    const job = await createJob(emulator, { type: 'tweets' });
    expect((await api(emulator, 'DELETE', `/2/compliance/jobs/${job.id}`)).status).toBe(404);
    expect((await put(`${emulator.url}/2/compliance/jobs/${job.id}/upload?token=x`, '1\n')).status).toBe(404);
  });
});
