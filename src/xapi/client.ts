import { performance } from 'node:perf_hooks';
import type { Got } from 'got';
import pino from 'pino';
import { redactUrl, type Logger } from '../log.js';
import type { JobType } from '../types.js';
import { downloadFile } from './downloadFile.js';
import { rememberSecret } from '../secrets.js';
import { codeOfStatus, fromGotError, problemOf, XApiError, type XApiErrorCode } from './errors.js';
import { backoffMs, createApiGot, createBytePathGot, createStorageGot, withScopedSignal, type TransferContext } from './http.js';
import { parseJob, parseJobList } from './parseJob.js';
import { abortableSleep, type Sleep } from '../clock.js';
import { RateBudget } from './rateBudget.js';
import type { ComplianceJob, Endpoint } from './types.js';
import { uploadFile } from './uploadFile.js';

export interface ComplianceClientOptions {
  /** API base without `/2`, e.g. `https://api.x.com` or the emulator's URL (a base path is kept). */
  baseUrl: string;
  token: string;
  /** Per API request; for storage transfers, the connect / idle / first-byte limit. Default 30 s. */
  timeoutMs?: number;
  /** Share one budget across every client of the process. */
  budget?: RateBudget;
  logger?: Logger;
  /** Retries after a network fault or 5xx, on idempotent calls and transfers. Default 3. */
  retries?: number;
  /** Retries after a 429, each after waiting for the window's reset. Default 3. */
  rateLimitRetries?: number;
  sleep?: Sleep;
  clock?: () => number;
  /** Resumable upload chunk size, rounded down to a multiple of 256 KiB. Default 8 MiB. */
  uploadChunkBytes?: number;
  /** Content-Type of uploads: X signs `text/plain`, so anything else is refused (kept settable for tests). */
  uploadContentType?: string;
  /** Told about every request and every wait for the rate budget (the daemon's metrics). */
  observer?: ApiObserver;
}

/**
 * What the client reports as it works. `status` is the HTTP status as text, or `network` when no response came;
 * transfers (`upload`, `download`) report `ok` or the error code of their failure.
 */
export interface ApiObserver {
  request(endpoint: Endpoint | 'upload' | 'download', status: string): void;
  rateLimitWait(endpoint: Endpoint, seconds: number): void;
}

interface CallSpec {
  endpoint: Endpoint;
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  /** What is being done, for messages: "getting job 123". */
  what: string;
  json?: Record<string, unknown>;
  searchParams?: Record<string, string>;
  jobId?: string;
}

const CHUNK_UNIT = 256 * 1024;

/**
 * The X batch compliance API: the JSON endpoints through a token-holding got instance and the shared rate budget,
 * uploads and downloads through a separate instance that never sends the token.
 *
 * Creating a job is never retried after a 5xx or network fault: X may have created it anyway, and a blind retry
 * would then answer 409. The error says so; the caller lists the created jobs of the type and decides.
 */
export class ComplianceClient {
  private token: string;
  private readonly baseUrl: string;
  private readonly api: Got;
  private readonly budget: RateBudget;
  private readonly log: Logger;
  private readonly retries: number;
  private readonly rateLimitRetries: number;
  private readonly sleep: Sleep;
  private readonly transfer: TransferContext;
  private readonly observer: ApiObserver | undefined;

  constructor(options: ComplianceClientOptions) {
    this.token = options.token;
    rememberSecret(options.token);
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    const timeoutMs = options.timeoutMs ?? 30_000;
    const clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? abortableSleep;
    this.budget = options.budget ?? new RateBudget({ clock, sleep: this.sleep });
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'xapi' });
    this.retries = Math.max(0, options.retries ?? 3);
    this.rateLimitRetries = Math.max(0, options.rateLimitRetries ?? 3);
    this.observer = options.observer;
    const apiOrigin = new URL(this.baseUrl).origin;
    this.api = createApiGot(() => this.token, timeoutMs, apiOrigin);
    const chunk = options.uploadChunkBytes ?? 8 * 1024 * 1024;
    this.transfer = {
      bytePath: createBytePathGot(() => this.token, timeoutMs, apiOrigin),
      storage: createStorageGot(timeoutMs),
      apiOrigin,
      log: this.log,
      sleep: this.sleep,
      clock,
      retries: this.retries,
      chunkBytes: Math.max(CHUNK_UNIT, Math.floor(chunk / CHUNK_UNIT) * CHUNK_UNIT),
      contentType: options.uploadContentType ?? 'text/plain',
    };
  }

  /** The daemon re-reads the token on reload; the next request uses it. */
  setToken(token: string): void {
    this.token = token;
    rememberSecret(token);
  }

  async createJob(input: { type: JobType; name?: string; resumable?: boolean }, signal?: AbortSignal): Promise<ComplianceJob> {
    const json: Record<string, unknown> = { type: input.type };
    if (input.name !== undefined) json.name = input.name;
    if (input.resumable !== undefined) json.resumable = input.resumable;
    const body = await this.call({ endpoint: 'create', method: 'POST', path: '/2/compliance/jobs', what: `creating a ${input.type} job`, json }, signal);
    return parseJob(dataOf(body));
  }

  /** Unknown id → 'not_found', whether X answers 404 or 200 with a resource-not-found problem. */
  async getJob(id: string, signal?: AbortSignal): Promise<ComplianceJob> {
    const what = `getting job ${id}`;
    const body = await this.call({ endpoint: 'get', method: 'GET', path: `/2/compliance/jobs/${encodeURIComponent(id)}`, what, jobId: id }, signal);
    const data = dataOf(body);
    if (data === undefined) {
      const problem = problemOf(body);
      throw new XApiError('not_found', `${what}: no such job${problem.detail ? ` (${problem.detail})` : ''}`, { ...problem, status: 200, jobId: id });
    }
    return parseJob(data);
  }

  /** Recent jobs of a type, newest first as X sends them; none → []. */
  async listJobs(type: JobType, status?: string, signal?: AbortSignal): Promise<ComplianceJob[]> {
    const searchParams: Record<string, string> = { type };
    if (status !== undefined) searchParams.status = status;
    const body = await this.call({ endpoint: 'list', method: 'GET', path: '/2/compliance/jobs', what: `listing ${type} jobs`, searchParams }, signal);
    return parseJobList(body);
  }

  /** Byte-path flow only: an unfinished job becomes `failed`, which frees its type's slot. */
  async cancelJob(id: string, signal?: AbortSignal): Promise<ComplianceJob> {
    const body = await this.call({ endpoint: 'cancel', method: 'DELETE', path: `/2/compliance/jobs/${encodeURIComponent(id)}`, what: `cancelling job ${id}`, jobId: id }, signal);
    return parseJob(dataOf(body));
  }

  /** Uploads the ID file: one PUT, or the GCS resumable protocol when `job.resumable`. */
  upload(job: ComplianceJob, file: string, signal?: AbortSignal): Promise<{ bytes: number }> {
    return this.observed('upload', withScopedSignal(signal, (scoped) => uploadFile(this.transfer, job, file, scoped)));
  }

  /**
   * Streams the results to `destFile` (via `destFile.part`, length checked, resumed with Range after a cut). A
   * download URL the storage refuses (403, or its signature expired) while the job's download window is open is
   * replaced once by a fresh one: the job is fetched again, as X signs a new URL on each GET.
   */
  download(job: ComplianceJob, destFile: string, signal?: AbortSignal): Promise<{ bytes: number }> {
    return this.observed(
      'download',
      withScopedSignal(signal, async (scoped) => {
        try {
          return await downloadFile(this.transfer, job, destFile, scoped);
        } catch (error) {
          if (!(error instanceof XApiError) || !refusedUrl(error)) throw error;
          this.log.info({ job: job.id, status: error.status, code: error.code }, 'the download URL was refused; fetching the job again for a fresh URL');
          const fresh = await this.getJob(job.id, scoped);
          return downloadFile(this.transfer, fresh, destFile, scoped);
        }
      }),
    );
  }

  private async observed<T>(transfer: 'upload' | 'download', work: Promise<T>): Promise<T> {
    if (!this.observer) return work;
    try {
      const result = await work;
      this.observer.request(transfer, 'ok');
      return result;
    } catch (err) {
      this.observer.request(transfer, err instanceof XApiError ? err.code : 'error');
      throw err;
    }
  }

  private call(spec: CallSpec, signal?: AbortSignal): Promise<unknown> {
    return withScopedSignal(signal, (scoped) => this.callScoped(spec, scoped));
  }

  private async callScoped(spec: CallSpec, signal?: AbortSignal): Promise<unknown> {
    const query = spec.searchParams ? `?${new URLSearchParams(spec.searchParams).toString()}` : '';
    const url = `${this.baseUrl}${spec.path}${query}`;
    // POST is not idempotent: see the class comment.
    const idempotent = spec.method !== 'POST';
    let faults = 0;
    let limited = 0;
    for (;;) {
      const waitStarted = performance.now();
      await this.budget.acquire(spec.endpoint, signal, this.log);
      const started = performance.now();
      // The budget answers at once while it has tokens; any real wait is spacing or a blocked window.
      if (started - waitStarted >= 1) this.observer?.rateLimitWait(spec.endpoint, (started - waitStarted) / 1000);
      const fields = { method: spec.method, url: redactUrl(url), job: spec.jobId };
      let response;
      try {
        response = await this.api(url, { method: spec.method, json: spec.json, responseType: 'text', signal });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const failure = error instanceof XApiError ? error : fromGotError(error as Error);
        this.log.debug({ ...fields, error: failure.code, ms: elapsed(started) }, 'request failed');
        this.observer?.request(spec.endpoint, 'network');
        if (failure.code !== 'network') throw failure;
        if (idempotent && faults < this.retries) {
          await this.sleep(backoffMs(++faults), signal);
          continue;
        }
        throw this.failure('network', spec, `${spec.what} failed: ${describeCause(failure)}`, { cause: failure.cause });
      }
      const status = response.statusCode;
      this.log.debug({ ...fields, status, ms: elapsed(started) }, 'request');
      this.observer?.request(spec.endpoint, String(status));
      this.budget.update(spec.endpoint, response.headers);
      const body = parseJsonText(response.body);
      if (status >= 200 && status < 300) {
        if (body === undefined) throw this.failure('bad_response', spec, `${spec.what}: HTTP ${status} without a JSON body`, { status });
        return body;
      }
      const problem = problemOf(body);
      const code = codeOfStatus(status, problem);
      const detail = problem.detail && problem.detail !== problem.title ? `: ${problem.detail}` : '';
      const message = `${spec.what} failed: HTTP ${status}${problem.title ? ` ${problem.title}` : ''}${detail}`;
      if (code === 'rate_limited') {
        const retryAt = this.budget.resetAt(response.headers);
        this.budget.block(spec.endpoint, retryAt);
        if (limited++ < this.rateLimitRetries) continue;
        throw this.failure(code, spec, message, { ...problem, status, retryAt });
      }
      if (code === 'server_error' && idempotent && faults < this.retries) {
        await this.sleep(backoffMs(++faults), signal);
        continue;
      }
      throw this.failure(code, spec, message, { ...problem, status });
    }
  }

  private failure(code: XApiErrorCode, spec: CallSpec, message: string, extra: ConstructorParameters<typeof XApiError>[2] = {}): XApiError {
    const hint =
      spec.method === 'POST' && (code === 'network' || code === 'server_error')
        ? 'X may have created the job anyway: list the created jobs of this type before creating another'
        : undefined;
    return new XApiError(code, message, { ...extra, jobId: spec.jobId, ...(hint ? { hint } : {}) });
  }
}

/** The storage refused the URL itself (not the job's window, which downloadFile checks before asking). */
function refusedUrl(error: XApiError): boolean {
  return error.status !== undefined && ['forbidden', 'signature_mismatch', 'download_expired'].includes(error.code);
}

function dataOf(body: unknown): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>).data : undefined;
}

function parseJsonText(text: unknown): unknown {
  if (typeof text !== 'string' || text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

function describeCause(error: XApiError): string {
  return error.cause instanceof Error ? error.cause.message : error.message;
}
