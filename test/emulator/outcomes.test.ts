import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MIX, loadRulesFile, outcomeFor, resolveMix } from '../../src/emulator/outcomes.js';
import { parseUpload, UploadParser } from '../../src/emulator/uploads.js';
import { useTempDir } from '../helpers/tmp.js';
import { api, createJob, get, put, records, useEmulators } from './helpers.js';

const tempDir = useTempDir();
const start = useEmulators();

function sampleIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => (1300000000000000000n + BigInt(i) * 104729n).toString());
}

describe('outcomeFor', () => {
  it('is pure: the same inputs always give the same outcome; seed and type change it', () => {
    const ids = sampleIds(5000);
    const first = ids.map((id) => outcomeFor('tweets', id, 'seed-a'));
    expect(ids.map((id) => outcomeFor('tweets', id, 'seed-a'))).toEqual(first);
    expect(ids.map((id) => outcomeFor('tweets', id, 'seed-b'))).not.toEqual(first);
    expect(ids.map((id) => outcomeFor('users', id, 'seed-a'))).not.toEqual(first);
    // Pinned values: a change to the hash would silently change every test's expected store.
    expect(outcomeFor('tweets', '1460716588177498534', 'compliance-sync')).toEqual({ action: 'delete', reason: 'protected' });
    expect(outcomeFor('tweets', '1460716588177498864', 'compliance-sync')).toEqual({ action: 'scrub_geo', reason: 'scrub_geo' });
  });

  it('follows the mix: default shares within a fraction of a percent over 200k IDs', () => {
    const ids = sampleIds(200_000);
    const counts = new Map<string, number>();
    for (const id of ids) {
      const outcome = outcomeFor('users', id, 'compliance-sync');
      const key = outcome?.reason ?? 'none';
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const [reason, share] of Object.entries(DEFAULT_MIX)) {
      expect(Math.abs((counts.get(reason) ?? 0) / ids.length - share)).toBeLessThan(0.003);
    }
    const only = { deleted: 0, protected: 0, suspended: 1, deactivated: 0, scrub_geo: 0 };
    expect(ids.slice(0, 100).every((id) => outcomeFor('users', id, 's', only)?.reason === 'suspended')).toBe(true);
    const none = { deleted: 0, protected: 0, suspended: 0, deactivated: 0, scrub_geo: 0 };
    expect(ids.slice(0, 100).every((id) => outcomeFor('users', id, 's', none) === null)).toBe(true);
  });

  it('rules pin outcomes (null = compliant); IDs are canonicalised; non-IDs are compliant', () => {
    const id = sampleIds(1)[0]!;
    const rules = new Map([
      [id, { action: 'delete', reason: 'protected' }],
      ['42', null],
    ]);
    const all = { deleted: 1, protected: 0, suspended: 0, deactivated: 0, scrub_geo: 0 };
    expect(outcomeFor('tweets', id, 's', all, rules)).toEqual({ action: 'delete', reason: 'protected' });
    expect(outcomeFor('tweets', '0042', 's', all, rules)).toBeNull();
    expect(outcomeFor('tweets', '007', 's', all)).toEqual(outcomeFor('tweets', '7', 's', all));
    expect(outcomeFor('tweets', 'abc', 's', all)).toBeNull();
    expect(outcomeFor('tweets', '99999999999999999999', 's', all)).toBeNull();
  });

  it('rejects a mix that does not add up', () => {
    expect(() => resolveMix({ deleted: 0.9, protected: 0.2 })).toThrow(/sum/);
    expect(() => resolveMix({ deleted: -0.1 })).toThrow(RangeError);
    expect(() => resolveMix({ bounced: 0.1 } as never)).toThrow(/unknown/);
  });

  it('loadRulesFile reads pinned outcomes and names the bad entry', () => {
    const dir = tempDir();
    const good = path.join(dir, 'rules.json');
    writeFileSync(good, JSON.stringify({ '1460716588177498114': { action: 'delete', reason: 'suspended' }, '12': null, '7': { action: 'rehydrate', reason: 'tweet_edited', created_at: '2020-01-01T00:00:00.000Z' } }));
    const rules = loadRulesFile(good);
    expect(rules.get('1460716588177498114')).toEqual({ action: 'delete', reason: 'suspended' });
    expect(rules.get('12')).toBeNull();
    expect(rules.get('7')?.created_at).toBe('2020-01-01T00:00:00.000Z');
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ '12': { action: 'delete' } }));
    expect(() => loadRulesFile(bad)).toThrow(/12\.reason/);
    writeFileSync(bad, JSON.stringify({ abc: null }));
    expect(() => loadRulesFile(bad)).toThrow(/abc/);
    expect(() => loadRulesFile(path.join(dir, 'missing.json'))).toThrow(/missing\.json/);
  });
});

describe('upload parsing', () => {
  it('agrees with outcomeFor for every line, however the stream is chunked', () => {
    const ids = sampleIds(20_000);
    const text = ids.map((id, i) => (i % 7 === 0 ? ` ${id}\r` : i % 11 === 0 ? `0${id.slice(1)}` : id)).join('\n');
    const body = Buffer.from(text);
    const settings = { type: 'tweets' as const, seed: 'chunks', mix: resolveMix() };
    const whole = parseUpload(body, settings);
    const parser = new UploadParser(settings);
    for (let at = 0; at < body.length; at += 977) parser.write(body.subarray(at, at + 977));
    const chunked = parser.end();
    expect(chunked.events).toEqual(whole.events);
    expect(chunked.ids).toBe(ids.length);
    const expected = ids
      .map((id, i) => (i % 11 === 0 && i % 7 !== 0 ? BigInt(`0${id.slice(1)}`).toString() : id))
      .filter((id) => outcomeFor('tweets', id, 'chunks') !== null);
    expect(whole.events.map((event) => event.id)).toEqual(expected);
    for (const event of whole.events) expect(outcomeFor('tweets', event.id, 'chunks')).toEqual({ action: event.outcome.action, reason: event.outcome.reason });
  });

  it('a job of a million IDs completes and its results match the pure function', async () => {
    const ids = sampleIds(1_000_000);
    const body = Buffer.from(`${ids.join('\n')}\n`);
    const emulator = await start();
    const job = await createJob(emulator, { type: 'tweets' });
    expect((await put(job.upload_url, body)).status).toBe(200);
    expect((await api(emulator, 'GET', `/2/compliance/jobs/${job.id}`)).json.data.status).toBe('complete');
    const got = records((await get(job.download_url)).text);
    const want = ids.filter((id) => outcomeFor('tweets', id, 'compliance-sync') !== null);
    expect(got.length).toBe(want.length);
    expect(new Set(got.map((r) => r.id))).toEqual(new Set(want));
    expect(emulator.jobs()[0]!.uploadedIds).toBe(1_000_000);
  });
});
