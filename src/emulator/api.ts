import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JOB_TYPES } from '../types.js';
import { originOf, type EmulatorContext } from './context.js';
import { BodyTooLargeError, discardBody, readBody, sendJson } from './http.js';
import { jobJson, type Job } from './jobs.js';
import type { EmulatorJobType } from './outcomes.js';
import {
  conflict,
  invalidRequest,
  jobNotFound,
  serverError,
  tooManyRequests,
  unauthorized,
  type InvalidParameter,
} from './problems.js';
import type { Endpoint } from './rateLimit.js';

export interface ApiRoute {
  endpoint: Endpoint;
  /** The raw path segment after /jobs/ (validated here, so a bad one gets the 400 the real API gives). */
  id?: string;
  /** Whatever came before `/2/`: byte-path URLs keep it so they reach us the same way. */
  prefix: string;
  query: URLSearchParams;
}

const MAX_JSON_BODY = 64 * 1024;
const ID_PATTERN = /^[0-9]{1,19}$/;
/** The spec's enum plus `expired`, which real lists contain and node-twitter-api-v2 asks for (docs/x-api.md#list-jobs). */
const LIST_STATUSES = ['created', 'in_progress', 'failed', 'complete', 'expired'];
const JOB_FIELDS = ['created_at', 'download_expires_at', 'download_url', 'id', 'name', 'resumable', 'status', 'type', 'upload_expires_at', 'upload_url'];
const BODY_KEYS = ['type', 'name', 'resumable'];
const QUERY_KEYS: Record<Endpoint, string[]> = {
  create: ['compliance_job.fields'],
  get: ['compliance_job.fields'],
  list: ['type', 'status', 'compliance_job.fields'],
  cancel: [],
};

function bearerMatches(req: IncomingMessage, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The three (four in byte-path mode) JSON endpoints: auth, rate limit, faults, then the endpoint itself. */
export async function handleApi(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, route: ApiRoute): Promise<void> {
  if (!bearerMatches(req, ctx.token)) {
    discardBody(req, res);
    return sendJson(res, 401, unauthorized());
  }
  const now = ctx.clock();
  const rate = ctx.limiter.hit(ctx.app, route.endpoint, now);
  res.setHeader('x-rate-limit-limit', rate.limit);
  res.setHeader('x-rate-limit-remaining', rate.remaining);
  res.setHeader('x-rate-limit-reset', rate.reset);
  if (!rate.allowed || ctx.faults.fire('rate429')) {
    if (rate.allowed) {
      // A 429 storm: the server says the budget is gone and comes back in a second.
      res.setHeader('x-rate-limit-remaining', 0);
      res.setHeader('x-rate-limit-reset', Math.ceil(now / 1000) + 1);
    }
    ctx.counters.rateLimited++;
    discardBody(req, res);
    return sendJson(res, 429, tooManyRequests());
  }
  const failure = ctx.faults.fire('api5xx');
  if (failure) {
    const status = failure.status ?? (ctx.faults.draw() < 0.5 ? 500 : 503);
    discardBody(req, res);
    return sendJson(res, status, serverError(status));
  }
  const badQuery = checkQuery(route.endpoint, route.query);
  if (badQuery.length) {
    discardBody(req, res);
    return sendJson(res, 400, invalidRequest(ctx.problemHost, badQuery));
  }
  switch (route.endpoint) {
    case 'create':
      return create(ctx, req, res, route);
    case 'get':
    case 'cancel': {
      discardBody(req, res);
      const job = findJob(ctx, res, route.id ?? '');
      if (!job) return;
      if (route.endpoint === 'get') return sendJson(res, 200, { data: jobJson(job) });
      if (!ctx.jobs.cancel(job)) {
        return sendJson(res, ctx.conflictStatus, conflict(ctx.problemHost, `The job has already finished (status ${job.status}) and cannot be cancelled.`));
      }
      return sendJson(res, 200, { data: jobJson(job) });
    }
    case 'list':
      discardBody(req, res);
      return list(ctx, res, route.query);
  }
}

function checkQuery(endpoint: Endpoint, query: URLSearchParams): InvalidParameter[] {
  const errors: InvalidParameter[] = [];
  for (const key of new Set(query.keys())) {
    if (!QUERY_KEYS[endpoint].includes(key)) {
      errors.push({
        parameters: { [key]: query.getAll(key) },
        message: `The query parameter [${key}] is not one of [${QUERY_KEYS[endpoint].join(',')}]`,
      });
    }
  }
  const fields = query.get('compliance_job.fields');
  if (fields !== null) {
    // Accepted and checked, not applied: whether X honours the parameter is unknown (docs/x-api.md#endpoints), so every field is returned.
    for (const field of fields.split(',')) {
      if (!JOB_FIELDS.includes(field)) {
        errors.push({
          parameters: { 'compliance_job.fields': [fields] },
          message: `The \`compliance_job.fields\` query parameter value [${field}] is not one of [${JOB_FIELDS.join(',')}]`,
        });
      }
    }
  }
  return errors;
}

async function create(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, route: ApiRoute): Promise<void> {
  let body: unknown;
  try {
    const raw = await readBody(req, MAX_JSON_BODY);
    body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    if (err instanceof BodyTooLargeError) discardBody(req, res);
    return sendJson(res, 400, invalidRequest(ctx.problemHost, [{ parameters: {}, message: 'The request body must be a JSON object: {"type": "tweets" | "users", "name"?, "resumable"?}' }]));
  }
  const errors = validateCreate(body, ctx.transfer === 'bytepath');
  if (errors.length) return sendJson(res, 400, invalidRequest(ctx.problemHost, errors));
  const fields = body as { type: EmulatorJobType; name?: string; resumable?: boolean };
  if (ctx.jobs.active(ctx.app, fields.type)) return sendJson(res, ctx.conflictStatus, conflict(ctx.problemHost));
  const origin = originOf(ctx, req);
  const job = ctx.jobs.create({
    app: ctx.app,
    type: fields.type,
    name: fields.name,
    resumable: fields.resumable ?? false,
    urls: (id, createdAt) =>
      ctx.transfer === 'gcs'
        ? {
            uploadUrl: ctx.signer.storageUrl(origin, fields.type, id, ctx.appNum, 'submission', createdAt),
            downloadUrl: ctx.signer.storageUrl(origin, fields.type, id, ctx.appNum, 'delivery', createdAt),
          }
        : {
            uploadUrl: `${origin}${route.prefix}/2/compliance/jobs/${id}/upload?token=${ctx.signer.token('upload', id)}`,
            downloadUrl: `${origin}${route.prefix}/2/compliance/jobs/${id}/download?token=${ctx.signer.token('download', id)}`,
          },
  });
  sendJson(res, 200, { data: jobJson(job) });
}

function shown(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
}

/** The body schema of CreateComplianceJobsRequest (additionalProperties: false), plus the byte-path flow's refusal of resumable. */
function validateCreate(body: unknown, bytepath: boolean): InvalidParameter[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return [{ parameters: {}, message: 'The request body must be a JSON object: {"type": "tweets" | "users", "name"?, "resumable"?}' }];
  }
  const fields = body as Record<string, unknown>;
  const errors: InvalidParameter[] = [];
  for (const key of Object.keys(fields)) {
    if (!BODY_KEYS.includes(key)) {
      errors.push({ parameters: { [key]: [shown(fields[key])] }, message: `The field [${key}] is not one of [${BODY_KEYS.join(',')}]` });
    }
  }
  if (fields.type === undefined) {
    errors.push({ parameters: { type: [] }, message: 'The `type` field is required: one of [tweets,users]' });
  } else if (typeof fields.type !== 'string' || !(JOB_TYPES as readonly string[]).includes(fields.type)) {
    errors.push({ parameters: { type: [shown(fields.type)] }, message: `The \`type\` value [${shown(fields.type)}] is not one of [tweets,users]` });
  }
  if (fields.name !== undefined && (typeof fields.name !== 'string' || [...fields.name].length > 64)) {
    errors.push({ parameters: { name: [shown(fields.name)] }, message: 'The `name` field must be a string of at most 64 characters' });
  }
  if (fields.resumable !== undefined && typeof fields.resumable !== 'boolean') {
    errors.push({ parameters: { resumable: [shown(fields.resumable)] }, message: 'The `resumable` field must be a boolean' });
  } else if (bytepath && fields.resumable === true) {
    errors.push({ parameters: { resumable: ['true'] }, message: 'Resumable uploads are not supported: upload the file with a single PUT to upload_url' });
  }
  return errors;
}

/** Finds the app's job, or answers the unknown-id (or bad-id) response and returns undefined. */
function findJob(ctx: EmulatorContext, res: ServerResponse, id: string): Job | undefined {
  if (!ID_PATTERN.test(id)) {
    sendJson(
      res,
      400,
      invalidRequest(ctx.problemHost, [{ parameters: { id: [id] }, message: `The \`id\` path parameter value [${id}] does not match ^[0-9]{1,19}$` }]),
    );
    return undefined;
  }
  const job = ctx.jobs.get(id);
  if (job && job.app === ctx.app) return job;
  sendJson(res, ctx.unknownJobStatus, jobNotFound(ctx.problemHost, id));
  return undefined;
}

function list(ctx: EmulatorContext, res: ServerResponse, query: URLSearchParams): void {
  const type = query.get('type');
  const status = query.get('status');
  const errors: InvalidParameter[] = [];
  if (type === null || !(JOB_TYPES as readonly string[]).includes(type)) {
    errors.push({
      parameters: { type: type === null ? [] : [type] },
      message: type === null ? 'The `type` query parameter can not be empty' : `The \`type\` query parameter value [${type}] is not one of [tweets,users]`,
    });
  }
  if (status !== null && !LIST_STATUSES.includes(status)) {
    errors.push({ parameters: { status: [status] }, message: `The \`status\` query parameter value [${status}] is not one of [${LIST_STATUSES.join(',')}]` });
  }
  if (errors.length) return sendJson(res, 400, invalidRequest(ctx.problemHost, errors));
  const jobs = ctx.jobs.all(ctx.app).filter((job) => job.type === type && (status === null || job.status === status));
  // An empty list has no `data` (the spec's minItems: 1), as observed (docs/x-api.md#list-jobs).
  sendJson(res, 200, jobs.length ? { data: jobs.map(jobJson), meta: { result_count: jobs.length } } : { meta: { result_count: 0 } });
}
