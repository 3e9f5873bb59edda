import { describe, expect, it } from 'vitest';
import { api, createJob, get, idsFile, manualClock, put, rawRequest, useEmulators } from './helpers.js';

const start = useEmulators();

describe('signed storage URLs (GCS flow)', () => {
  it('a tampered URL answers 403 SignatureDoesNotMatch', async () => {
    const emulator = await start();
    const job = await createJob(emulator, { type: 'tweets' });
    const url = new URL(job.upload_url);
    const signature = url.searchParams.get('X-Goog-Signature')!;
    const tampered = [
      job.upload_url.replace(signature, `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`),
      job.upload_url.replace('X-Goog-Expires=900', 'X-Goog-Expires=9000'),
      job.upload_url.replace(/X-Goog-Date=\d{8}T\d{6}Z/, 'X-Goog-Date=20300101T000000Z'),
      job.upload_url.replace(`/${job.id}/submission/`, `/${BigInt(job.id) + 1n}/submission/`).replace(`_${job.id}?`, `_${BigInt(job.id) + 1n}?`),
      job.upload_url.replace(/&X-Goog-Signature=[^&]+/, ''),
      job.download_url.replace('/delivery/', '/submission/'),
    ];
    for (const target of tampered) {
      const reply = await put(target, idsFile(3).body);
      expect(reply.status, target).toBe(403);
      expect(reply.text).toMatch(/^<\?xml version='1.0' encoding='UTF-8'\?><Error><Code>SignatureDoesNotMatch<\/Code><Message>/);
      expect(reply.text).not.toContain(signature);
    }
    const download = await get(job.download_url.replace('X-Goog-Expires=604800', 'X-Goog-Expires=6048000'));
    expect(download.status).toBe(403);
    expect((await put(job.upload_url, idsFile(3).body)).status).toBe(200); // the real URL still works
  });

  it('the upload needs Content-Type exactly text/plain', async () => {
    const emulator = await start();
    const job = await createJob(emulator, { type: 'users' });
    for (const contentType of ['text/plain;charset=UTF-8', 'application/octet-stream', 'text/plain; charset=utf-8', null]) {
      const reply = await put(job.upload_url, idsFile(3).body, contentType);
      expect(reply.status, String(contentType)).toBe(403);
      expect(reply.text).toContain('<Code>SignatureDoesNotMatch</Code>');
    }
    // fetch adds ";charset=UTF-8" to a string body: the real pitfall of docs/x-api.md#simple-upload-gcs.
    const pitfall = await fetch(job.upload_url, { method: 'PUT', body: '1\n2\n' });
    expect(pitfall.status).toBe(403);
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('created');
    expect((await put(job.upload_url, idsFile(3).body, 'text/plain')).status).toBe(200);
  });

  it('a lenient emulator (strictContentType false) takes any Content-Type', async () => {
    const emulator = await start({ strictContentType: false });
    const job = await createJob(emulator, { type: 'users' });
    expect((await put(job.upload_url, idsFile(3).body, 'application/octet-stream')).status).toBe(200);
  });

  it('a repeated upload answers 200 and the job is processed once', async () => {
    const clock = manualClock();
    const emulator = await start({ clock: clock.now, processingMs: 10_000 });
    const job = await createJob(emulator, { type: 'tweets' });
    expect((await put(job.upload_url, idsFile(10).body)).status).toBe(200);
    clock.advance(5000);
    expect((await put(job.upload_url, idsFile(20).body)).status).toBe(200);
    clock.advance(5000);
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('complete');
    expect(emulator.jobs()[0]!.uploadedIds).toBe(10);
  });

  it('resumable session: start, chunk, interrupted chunk, status query, resume, complete', async () => {
    const emulator = await start();
    const plain = await createJob(emulator, { type: 'users' });
    const refused = await rawRequest(plain.upload_url, { method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': 0, 'x-goog-resumable': 'start' } });
    expect(refused.status).toBe(403); // not created with resumable: true

    const job = await createJob(emulator, { type: 'tweets', resumable: true });
    const started = await rawRequest(job.upload_url, { method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': 0, 'x-goog-resumable': 'start' } });
    expect(started.status).toBe(201);
    const session = started.headers.location!;
    expect(session.startsWith(`${job.upload_url}&upload_id=`)).toBe(true);

    const { body } = idsFile(1000); // 20,000 bytes
    const total = body.length;
    const cut = 8192;
    const first = await rawRequest(session, { method: 'PUT', headers: { 'content-range': `bytes 0-${cut - 1}/${total}` }, body: body.subarray(0, cut) });
    expect(first.status).toBe(308);
    expect(first.headers.range).toBe(`bytes=0-${cut - 1}`);

    // The next chunk is cut off mid-body: nothing of it is kept.
    await rawRequest(session, {
      method: 'PUT',
      headers: { 'content-range': `bytes ${cut}-${total - 1}/${total}`, 'content-length': total - cut },
      body: body.subarray(cut),
      abortAfterBytes: 3000,
    });
    const status = await rawRequest(session, { method: 'PUT', headers: { 'content-range': `bytes */${total}`, 'content-length': 0 } });
    expect(status.status).toBe(308);
    expect(status.headers.range).toBe(`bytes=0-${cut - 1}`);
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('created');

    const gap = await rawRequest(session, { method: 'PUT', headers: { 'content-range': `bytes ${cut + 10}-${total - 1}/${total}` }, body: body.subarray(cut + 10) });
    expect(gap.status).toBe(400);

    const rest = await rawRequest(session, { method: 'PUT', headers: { 'content-range': `bytes ${cut}-${total - 1}/${total}` }, body: body.subarray(cut) });
    expect(rest.status).toBe(200);
    expect(rest.headers['x-goog-stored-content-length']).toBe(String(total));
    const after = await rawRequest(session, { method: 'PUT', headers: { 'content-range': `bytes */${total}`, 'content-length': 0 } });
    expect(after.status).toBe(200);
    expect(emulator.jobs().find((j) => j.id === job.id)).toMatchObject({ uploadedIds: 1000 });
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('complete');

    const unknown = await rawRequest(`${job.upload_url}&upload_id=nope`, { method: 'PUT', headers: { 'content-range': `bytes */${total}`, 'content-length': 0 } });
    expect(unknown.status).toBe(404);
  });

  it('a resumable session starting with an empty status query reports nothing stored', async () => {
    const emulator = await start();
    const job = await createJob(emulator, { type: 'users', resumable: true });
    const started = await rawRequest(job.upload_url, { method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': 0, 'x-goog-resumable': 'start' } });
    const status = await rawRequest(started.headers.location!, { method: 'PUT', headers: { 'content-range': 'bytes */*', 'content-length': 0 } });
    expect(status.status).toBe(308);
    expect(status.headers.range).toBeUndefined();
    // The whole file in one PUT without Content-Range, as the docs' sample does.
    const whole = await rawRequest(started.headers.location!, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: idsFile(7).body });
    expect(whole.status).toBe(200);
  });

  it('Range downloads: 206 with Content-Range, suffix ranges, 416 past the end', async () => {
    const emulator = await start();
    const job = await createJob(emulator, { type: 'tweets' });
    await put(job.upload_url, idsFile(3000).body);
    await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`);
    const full = await get(job.download_url);
    const size = full.bytes.length;
    const tail = await get(job.download_url, { range: 'bytes=100-' });
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(`bytes 100-${size - 1}/${size}`);
    expect(tail.headers.get('content-length')).toBe(String(size - 100));
    expect(Buffer.concat([full.bytes.subarray(0, 100), tail.bytes]).equals(full.bytes)).toBe(true);
    const middle = await get(job.download_url, { range: 'bytes=10-19' });
    expect(middle.bytes.equals(full.bytes.subarray(10, 20))).toBe(true);
    const suffix = await get(job.download_url, { range: 'bytes=-5' });
    expect(suffix.bytes.equals(full.bytes.subarray(size - 5))).toBe(true);
    const beyond = await get(job.download_url, { range: `bytes=${size}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${size}`);
    const head = await rawRequest(job.download_url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(size));
  });

  it('cutDownload: the body stops mid-way under a full Content-Length; a Range request resumes it', async () => {
    const emulator = await start({ faults: { cutDownload: 1 } });
    const job = await createJob(emulator, { type: 'users' });
    await put(job.upload_url, idsFile(3000).body);
    await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`);
    const cut = await rawRequest(job.download_url, {});
    expect(cut.status).toBe(200);
    const size = Number(cut.headers['content-length']);
    expect(cut.complete).toBe(false);
    expect(cut.body.length).toBeGreaterThan(0);
    expect(cut.body.length).toBeLessThan(size);
    const rest = await rawRequest(job.download_url, { headers: { range: `bytes=${cut.body.length}-` } });
    expect(rest.status).toBe(206);
    expect(rest.complete).toBe(true);
    const whole = Buffer.concat([cut.body, rest.body]);
    expect(whole.length).toBe(size);
    expect(whole.equals((await get(job.download_url)).bytes)).toBe(true);
    expect(emulator.stats().faults).toEqual({ cutDownload: 1 });
  });

  it('storage requests are neither authenticated nor rate limited', async () => {
    const emulator = await start({ rateLimit: { limit: 1 } });
    const job = await createJob(emulator, { type: 'tweets' });
    const reply = await put(job.upload_url, idsFile(3).body, 'text/plain', { authorization: 'Bearer something-else' });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('x-rate-limit-limit')).toBeNull();
    for (let i = 0; i < 3; i++) expect((await get(job.download_url)).status).toBe(200);
  });
});
