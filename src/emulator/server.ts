import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { redactUrl } from '../log.js';
import { handleApi } from './api.js';
import { handleBytepath } from './bytepath.js';
import type { EmulatorContext, UploadSession } from './context.js';
import { Faults, type FaultOptions } from './faults.js';
import { sendJson } from './http.js';
import { JobStore } from './jobs.js';
import { resolveMix, type OutcomeMix, type OutcomeRules } from './outcomes.js';
import { notFoundRoute, serverError } from './problems.js';
import { RateLimiter, type Endpoint } from './rateLimit.js';
import { Signer } from './signing.js';
import { handleStorage } from './storage.js';

export type { FaultOptions, FaultSpec } from './faults.js';
export type { OutcomeMix, OutcomeRules } from './outcomes.js';

export interface EmulatorOptions {
  host?: string; // default '127.0.0.1'
  port?: number; // default 0 (random)
  token?: string; // accepted bearer token; default random hex
  clock?: () => number; // epoch ms; default Date.now; every time decision uses it
  processingMs?: number; // default 2000; 0 = complete on the first read after upload
  seed?: string; // default 'compliance-sync'
  mix?: Partial<OutcomeMix>;
  rules?: OutcomeRules;
  transfer?: 'gcs' | 'bytepath'; // default 'gcs'
  rateLimit?: { limit?: number; windowMs?: number }; // default 150 / 900000
  conflictStatus?: number; // default 409
  unknownJobStatus?: 200 | 404; // default 200 (with errors body)
  faults?: FaultOptions;
  tls?: { cert: string | Buffer; key: string | Buffer };
  logger?: Logger; // request log; default silent
  /** Largest accepted upload (default 1 GiB, the byte-path limit); lower it to test the 413. */
  maxUploadBytes?: number;
  /** GCS uploads need Content-Type exactly `text/plain` (default true, as the signed header demands). */
  strictContentType?: boolean;
}

export interface EmulatorStats {
  /** Requests per endpoint since start (refused ones included). */
  requests: Record<Endpoint, number>;
  /** Most requests seen in any one rate window, per endpoint: > limit means a client overran its budget. */
  maxPerWindow: Record<Endpoint, number>;
  /** Requests in the endpoint's current rate window. */
  currentWindow: Record<Endpoint, number>;
  jobsCreated: Record<'tweets' | 'users', number>;
  /** 429 answers, from the limit or a rate429 storm. */
  rateLimited: number;
  /** How many times each fault fired. */
  faults: Partial<Record<keyof Omit<FaultOptions, 'seed'>, number>>;
}

export interface Emulator {
  url: string; // e.g. 'http://127.0.0.1:41234' (API base; storage URLs also on it)
  token: string;
  close(): Promise<void>;
  setFaults(faults: FaultOptions): void;
  stats(): EmulatorStats;
  jobs(): ReadonlyArray<{ id: string; type: 'tweets' | 'users'; name?: string; status: string; uploadedIds: number }>;
}

const STORAGE_PATH = /^(?:.*?)(\/(twttr-tweet-compliance|twttr-user-compliance)\/([0-9]{1,19})\/(submission|delivery)\/([0-9]+)_([0-9]{1,19}))$/;
const API_PATH = /^(.*?)\/2\/compliance\/jobs(?:\/([^/]+)(?:\/(upload|download))?)?\/?$/;

/** A per-app constant in GCS object names (X's looks like an app id): 19 digits derived from the token. */
function appNumber(token: string): string {
  const digits = BigInt(`0x${createHash('sha256').update(token).digest('hex').slice(0, 15)}`).toString().padStart(18, '0').slice(0, 18);
  return `1${digits}`;
}

/** Starts the X batch compliance API emulator (docs/x-api.md#what-the-emulator-models) on `host:port`. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const clock = options.clock ?? Date.now;
  const seed = options.seed ?? 'compliance-sync';
  const token = options.token ?? randomBytes(24).toString('hex');
  const transfer = options.transfer ?? 'gcs';
  const limit = options.rateLimit?.limit ?? 150;
  const windowMs = options.rateLimit?.windowMs ?? 900_000;
  if (!(Number.isInteger(limit) && limit >= 1) || !(windowMs > 0)) throw new RangeError('rateLimit: limit must be an integer ≥ 1 and windowMs > 0');
  if (transfer !== 'gcs' && transfer !== 'bytepath') throw new RangeError(`transfer must be gcs or bytepath (got ${String(transfer)})`);
  const processingMs = options.processingMs ?? 2000;
  if (!(processingMs >= 0)) throw new RangeError('processingMs must be ≥ 0');
  const ctx: EmulatorContext = {
    clock,
    token,
    app: createHash('sha256').update(token).digest('hex').slice(0, 16),
    appNum: appNumber(token),
    seed,
    mix: resolveMix(options.mix),
    rules: options.rules,
    transfer,
    processingMs,
    conflictStatus: options.conflictStatus ?? 409,
    unknownJobStatus: options.unknownJobStatus ?? 200,
    maxUploadBytes: options.maxUploadBytes ?? 1024 ** 3,
    strictContentType: options.strictContentType ?? true,
    problemHost: transfer === 'bytepath' ? 'https://api.x.com' : 'https://api.twitter.com',
    scheme: options.tls ? 'https' : 'http',
    fallbackHost: '',
    jobs: new JobStore(clock, seed, transfer),
    limiter: new RateLimiter(limit, windowMs),
    faults: new Faults(options.faults, seed),
    signer: new Signer(),
    sessions: new Map<string, UploadSession>(),
    counters: { rateLimited: 0 },
  };
  const logger = options.logger;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    if (logger) {
      res.once('close', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        logger.info({ method: req.method, path: redactedPath(req.url ?? '/'), status: res.statusCode, ms: Math.round(ms * 10) / 10, ...(res.writableFinished ? {} : { aborted: true }) }, 'request');
      });
    }
    route(ctx, req, res).catch((err: unknown) => {
      logger?.error({ err: err instanceof Error ? err.message : String(err), path: redactedPath(req.url ?? '/') }, 'emulator handler failed');
      if (!res.headersSent) sendJson(res, 500, serverError(500));
      else res.destroy();
    });
  };
  const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler) : http.createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  ctx.fallbackHost = `${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  const url = `${ctx.scheme}://${ctx.fallbackHost}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    token,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
    setFaults(faults: FaultOptions) {
      ctx.faults.set(faults);
    },
    stats(): EmulatorStats {
      return {
        ...ctx.limiter.counts(ctx.app, clock()),
        jobsCreated: { ...ctx.jobs.created },
        rateLimited: ctx.counters.rateLimited,
        faults: ctx.faults.counts(),
      };
    },
    jobs() {
      return ctx.jobs.everyJob().map((job) => ({
        id: job.id,
        type: job.type,
        ...(job.name !== undefined ? { name: job.name } : {}),
        status: job.status,
        uploadedIds: job.upload?.ids ?? 0,
      }));
    },
  };
}

/** The path and query for the log, signatures, tokens and upload ids replaced. */
function redactedPath(rawUrl: string): string {
  const safe = new URL(redactUrl(new URL(rawUrl, 'http://emulator').toString()));
  return `${safe.pathname}${safe.search}`;
}

async function route(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://emulator');
  const storage = STORAGE_PATH.exec(url.pathname);
  if (storage && storage[3] === storage[6]) {
    return handleStorage(ctx, req, res, { objectPath: storage[1]!, jobId: storage[3]!, kind: storage[4] as 'submission' | 'delivery', query: url.searchParams });
  }
  const api = API_PATH.exec(url.pathname);
  if (api) {
    const [, prefix = '', id, action] = api;
    if (action) {
      if (ctx.transfer === 'bytepath') return handleBytepath(ctx, req, res, { id: id!, action: action as 'upload' | 'download', query: url.searchParams });
    } else {
      const endpoint = endpointFor(req.method ?? 'GET', id !== undefined, ctx.transfer);
      if (endpoint) return handleApi(ctx, req, res, { endpoint, ...(id !== undefined ? { id: safeDecode(id) } : {}), prefix, query: url.searchParams });
    }
  }
  req.resume();
  sendJson(res, 404, notFoundRoute());
}

function endpointFor(method: string, hasId: boolean, transfer: 'gcs' | 'bytepath'): Endpoint | null {
  if (!hasId) return method === 'POST' ? 'create' : method === 'GET' ? 'list' : null;
  if (method === 'GET') return 'get';
  return method === 'DELETE' && transfer === 'bytepath' ? 'cancel' : null;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
