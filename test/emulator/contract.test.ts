import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/tmp.js';
import { api, createJob, idsFile, manualClock, put, useEmulators, type Reply } from './helpers.js';

/**
 * Every JSON answer of the emulator's routes checked against X's published schemas (test/fixtures/reference, copied from shared/reference). The GCS-era
 * spec (2.159) is the strict one (required fields, formats, enums); 2.167 adds `additionalProperties: false` on the
 * create body and api.x.com problem types, which the byte-path mode uses.
 */
const SPEC_FILE = path.resolve(REPO_ROOT, 'test/fixtures/reference/openapi-compliance-subset.json');
const spec = JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as Record<string, { schemas: Record<string, unknown> }>;

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema({ $id: 'v2159', components: { schemas: spec['xdk_latest-openapi_v2.159']!.schemas } });
ajv.addSchema({ $id: 'v2167', components: { schemas: spec['xdk_specs-openapi_v2.167']!.schemas } });

const validators = new Map<string, ValidateFunction>();
function schema(ref: string): ValidateFunction {
  let validate = validators.get(ref);
  if (!validate) {
    const [version, name] = ref.split(':') as [string, string];
    validate = ajv.compile({ $ref: `${version}#/components/schemas/${name}` });
    validators.set(ref, validate);
  }
  return validate;
}

function expectValid(reply: Reply, ...refs: string[]): void {
  expect(reply.headers.get('content-type')).toBe('application/json; charset=utf-8');
  for (const ref of refs) {
    const validate = schema(ref);
    const ok = validate(reply.json);
    expect(ok, `${ref}: ${ajv.errorsText(validate.errors)}\n${reply.text}`).toBe(true);
  }
}

const start = useEmulators();

describe('emulator responses validate against the OpenAPI schemas (GCS mode)', () => {
  it('create 200, get 200, list 200 with data', async () => {
    const emulator = await start();
    const created = await api(emulator, 'POST', '/2/compliance/jobs', { type: 'users', name: 'contract', resumable: true });
    expect(created.status).toBe(200);
    expectValid(created, 'v2159:CreateComplianceJobResponse', 'v2167:CreateComplianceJobsResponse');
    expectValid({ ...created, json: created.json.data }, 'v2159:ComplianceJob', 'v2167:ComplianceJob');

    const one = await api(emulator, 'GET', `/2/compliance/jobs/${created.json.data.id}`);
    expect(one.status).toBe(200);
    expectValid(one, 'v2159:Get2ComplianceJobsIdResponse', 'v2167:GetComplianceJobsByIdResponse');
    expectValid({ ...one, json: one.json.data }, 'v2159:ComplianceJob');

    const list = await api(emulator, 'GET', '/2/compliance/jobs?type=users');
    expect(list.status).toBe(200);
    expect(list.json.data).toHaveLength(1);
    expectValid(list, 'v2159:Get2ComplianceJobsResponse', 'v2167:GetComplianceJobsResponse');
  });

  it('every job status the lifecycle goes through validates (created, in_progress, complete, expired, failed)', async () => {
    const clock = manualClock();
    const emulator = await start({ clock: clock.now, processingMs: 60_000, faults: { jobFail: { count: 0 } } });
    const seen = new Set<string>();
    const check = async (id: string) => {
      const reply = await api(emulator, 'GET', `/2/compliance/jobs/${id}`);
      expectValid(reply, 'v2159:Get2ComplianceJobsIdResponse', 'v2167:GetComplianceJobsByIdResponse');
      seen.add(reply.json.data.status);
    };
    const tweets = await createJob(emulator, { type: 'tweets' });
    await check(tweets.id);
    expect((await put(tweets.upload_url, idsFile(50).body)).status).toBe(200);
    await check(tweets.id);
    clock.advance(60_000);
    await check(tweets.id);
    const users = await createJob(emulator, { type: 'users' });
    clock.advance(15 * 60_000 + 1000);
    await check(users.id);
    emulator.setFaults({ jobFail: 1 });
    const failing = await createJob(emulator, { type: 'users' });
    await put(failing.upload_url, idsFile(5).body);
    clock.advance(60_000);
    await check(failing.id);
    expect([...seen].sort()).toEqual(['complete', 'created', 'expired', 'failed', 'in_progress']);
    const list = await api(emulator, 'GET', '/2/compliance/jobs?type=users');
    expectValid(list, 'v2159:Get2ComplianceJobsResponse', 'v2167:GetComplianceJobsResponse');
  });

  it('list 200 without data when no job matches', async () => {
    const emulator = await start();
    const list = await api(emulator, 'GET', '/2/compliance/jobs?type=tweets&status=in_progress');
    expect(list.status).toBe(200);
    expect(list.json).toEqual({ meta: { result_count: 0 } });
    expectValid(list, 'v2159:Get2ComplianceJobsResponse', 'v2167:GetComplianceJobsResponse');
  });

  it('400 invalid request for bad bodies, query parameters and ids', async () => {
    const emulator = await start();
    const replies = [
      await api(emulator, 'POST', '/2/compliance/jobs', { type: 'wat' }),
      await api(emulator, 'POST', '/2/compliance/jobs', { type: 'tweets', name: 'x'.repeat(65) }),
      await api(emulator, 'POST', '/2/compliance/jobs', { type: 'tweets', extra: 1 }),
      await api(emulator, 'POST', '/2/compliance/jobs', '{not json'),
      await api(emulator, 'GET', '/2/compliance/jobs'),
      await api(emulator, 'GET', '/2/compliance/jobs?type=tweets&status=done'),
      await api(emulator, 'GET', '/2/compliance/jobs/12ab'),
    ];
    for (const reply of replies) {
      expect(reply.status).toBe(400);
      expectValid(reply, 'v2159:InvalidRequestProblem');
      expect(reply.json.type).toBe('https://api.twitter.com/2/problems/invalid-request');
      expect(reply.json.errors.length).toBeGreaterThan(0);
    }
  });

  it('401, 409 and 429 problems', async () => {
    const emulator = await start({ rateLimit: { limit: 2 } });
    for (const auth of [null, 'Bearer wrong', `Basic ${emulator.token}`]) {
      const reply = await api(emulator, 'GET', '/2/compliance/jobs?type=tweets', undefined, auth);
      expect(reply.status).toBe(401);
      expect(reply.json).toEqual({ title: 'Unauthorized', type: 'about:blank', status: 401, detail: 'Unauthorized' });
      expectValid(reply, 'v2159:GenericProblem');
    }
    await createJob(emulator, { type: 'tweets' });
    const conflict = await api(emulator, 'POST', '/2/compliance/jobs', { type: 'tweets' });
    expect(conflict.status).toBe(409);
    expectValid(conflict, 'v2159:ConflictProblem');
    expect(conflict.json.type).toBe('https://api.twitter.com/2/problems/conflict');
    const limited = await api(emulator, 'POST', '/2/compliance/jobs', { type: 'users' });
    expect(limited.status).toBe(429);
    expect(limited.json).toEqual({ title: 'Too Many Requests', detail: 'Too Many Requests', type: 'about:blank', status: 429 });
    expectValid(limited, 'v2159:GenericProblem');
  });

  it('unknown job id: 200 with the resource-not-found errors body (or 404 when configured)', async () => {
    for (const unknownJobStatus of [200, 404] as const) {
      const emulator = await start({ unknownJobStatus });
      const reply = await api(emulator, 'GET', '/2/compliance/jobs/1460716588177498114');
      expect(reply.status).toBe(unknownJobStatus);
      expect(reply.json.data).toBeUndefined();
      expect(reply.json.errors[0]).toMatchObject({
        value: '1460716588177498114',
        resource_id: '1460716588177498114',
        parameter: 'id',
        resource_type: 'compliance_job',
        title: 'Not Found Error',
        type: 'https://api.twitter.com/2/problems/resource-not-found',
      });
      // GCS-era body, GCS-era schema: 2.167 only knows api.x.com problem types (checked in byte-path mode below), and
      // 2.159's ResourceNotFoundProblem lists only user/tweet/media/list/space, so the envelope and generic Problem apply.
      expectValid(reply, 'v2159:Get2ComplianceJobsIdResponse');
      expect(schema('v2159:Problem')(reply.json.errors[0])).toBe(true);
    }
  });

  it('accepts exactly the create bodies the 2.167 request schema accepts', async () => {
    const clock = manualClock();
    const emulator = await start({ clock: clock.now });
    const validate = schema('v2167:CreateComplianceJobsRequest');
    const bodies: unknown[] = [
      { type: 'tweets' },
      { type: 'users', name: 'n'.repeat(64), resumable: false },
      { type: 'users', name: 'é'.repeat(64) },
      {},
      { type: 'tweets', name: 'n'.repeat(65) },
      { type: 'tweets', resumable: 'yes' },
      { type: 'tweets', name: 3 },
      { type: 'both' },
      { type: 'tweets', job_name: 'legacy' },
      [],
    ];
    for (const body of bodies) {
      const reply = await api(emulator, 'POST', '/2/compliance/jobs', body);
      expect(reply.status, JSON.stringify(body)).toBe(validate(body) ? 200 : 400);
      // Let the new job's upload window pass so its type is free for the next body.
      clock.advance(16 * 60_000);
    }
  });
});

describe('emulator responses validate against the 2.167 schemas (byte-path mode, api.x.com problem types)', () => {
  it('create, get, upload answer, cancel, not-found and 400 use the 2026 shapes', async () => {
    const emulator = await start({ transfer: 'bytepath' });
    const created = await api(emulator, 'POST', '/2/compliance/jobs', { type: 'tweets' });
    expectValid(created, 'v2159:CreateComplianceJobResponse', 'v2167:CreateComplianceJobsResponse');
    const uploaded = await put(created.json.data.upload_url, idsFile(10).body);
    expect(uploaded.status).toBe(200);
    expectValid(uploaded, 'v2167:GetComplianceJobsByIdResponse');
    const users = await createJob(emulator, { type: 'users' });
    const cancelled = await api(emulator, 'DELETE', `/2/compliance/jobs/${users.id}`);
    expect(cancelled.status).toBe(200);
    expectValid(cancelled, 'v2159:Get2ComplianceJobsIdResponse', 'v2167:GetComplianceJobsByIdResponse');
    const missing = await api(emulator, 'GET', '/2/compliance/jobs/42');
    expect(missing.json.errors[0].type).toBe('https://api.x.com/2/problems/resource-not-found');
    expectValid(missing, 'v2167:GetComplianceJobsByIdResponse');
    const bad = await api(emulator, 'POST', '/2/compliance/jobs', { type: 'users', resumable: true });
    expect(bad.status).toBe(400);
    expectValid(bad, 'v2167:InvalidRequestProblem', 'v2159:InvalidRequestProblem');
  });
});
