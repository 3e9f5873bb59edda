import { performance } from 'node:perf_hooks';
import type { Got } from 'got';
import { redactUrl, type Logger } from '../log.js';
import { storageError, XApiError } from './errors.js';
import { backoffMs, isBytePath } from './http.js';
import type { Sleep } from '../clock.js';
import type { ComplianceJob } from './types.js';

/**
 * What upload and download share: one retry loop (faults, backoff, the token asked for by a byte path, the job's
 * window), one mapping of a storage refusal to an error, one way to log a request. uploadFile.ts and downloadFile.ts
 * keep only their protocol: a PUT or the resumable session, a ranged GET into a `.part` file.
 */

/** What upload and download need from the client. */
export interface TransferContext {
  storage: Got;
  /** For byte-path URLs that answered 401/403 without the token. */
  bytePath: Got;
  apiOrigin: string;
  log: Logger;
  sleep: Sleep;
  clock: () => number;
  /** Retries after a network fault or 5xx, each after a backoff. */
  retries: number;
  chunkBytes: number;
  contentType: string;
}

export type Direction = 'upload' | 'download';

export type Headers = Record<string, string | string[] | undefined>;

/** A storage server's answer: its status, headers and (at most 64 KiB of) body text. */
export interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

/**
 * A fault worth another attempt that is not a network error: a body that ended early, a 5xx inside the resumable
 * protocol, a session that stores nothing. `code` is what it becomes once the retries are spent.
 */
export class Fault extends Error {
  constructor(
    readonly code: 'network' | 'server_error',
    message: string,
  ) {
    super(message);
  }
}

/** What one attempt came to. */
export type Attempt<T> =
  | { kind: 'done'; value: T }
  /** Go again at once, no fault counted: the protocol moved on (a 308 of a session, a download started over). */
  | { kind: 'again' }
  /** The server answered with a refusal: the loop maps it to an error, or retries a 5xx, or adds the token. */
  | { kind: 'refused'; answer: Answer };

export interface TransferLoop<T> {
  direction: Direction;
  job: ComplianceJob;
  /** The URL whose 401/403 may ask for the token (only an api.x.com byte path ever gets it). */
  url: string;
  /**
   * Refuse to start an attempt once the job's window for this direction has closed (the server would refuse it).
   * Off for the chunks of a resumable upload: the session, once started, outlives the upload URL's window.
   */
  checkWindow: boolean;
  /** Bytes in place so far: an attempt that adds some earns back the fault allowance. */
  progress?: () => number;
  /** One attempt, with the got instance to use (the storage one, or the token-holding byte-path one). */
  attempt: (client: Got) => Promise<Attempt<T>>;
}

/**
 * Runs attempts until one is done. A fault (network error, `Fault`) waits with backoff and tries again, up to
 * `ctx.retries` times in a row without progress; a 5xx answer likewise; a 401/403 from a byte path once more with the
 * token; any other refusal is mapped to an XApiError at once. got never retries: a stream body cannot be replayed and
 * waits must use the injected, abortable sleep.
 */
export async function retryTransfer<T>(ctx: TransferContext, loop: TransferLoop<T>, signal?: AbortSignal): Promise<T> {
  const progress = loop.progress ?? (() => 0);
  let faults = 0;
  let withToken = false;
  for (;;) {
    if (loop.checkWindow) checkWindow(ctx, loop.direction, loop.job);
    const before = progress();
    let outcome: Attempt<T>;
    try {
      outcome = await loop.attempt(withToken ? ctx.bytePath : ctx.storage);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (!isFault(error)) throw error;
      // Progress earns back the fault allowance: only a transfer that stops moving gives up.
      if (progress() > before) faults = 0;
      faults++;
      const reason = error instanceof Error ? error.message : String(error);
      ctx.log.debug({ job: loop.job.id, faults, reason, have: progress() }, `${loop.direction} fault`);
      if (faults > ctx.retries) throw gaveUp(loop.direction, loop.job, error, faults, reason);
      await ctx.sleep(backoffMs(faults), signal);
      continue;
    }
    if (progress() > before) faults = 0;
    if (outcome.kind === 'done') return outcome.value;
    if (outcome.kind === 'again') continue;
    const { answer } = outcome;
    if (!withToken && needsToken(ctx, loop.url, answer.status)) {
      withToken = true;
      continue;
    }
    const error = storageError(loop.direction, loop.job.id, answer);
    if (error.code === 'server_error' && faults < ctx.retries) {
      await ctx.sleep(backoffMs(++faults), signal);
      continue;
    }
    throw error;
  }
}

const HINT_AFTER_FAULTS: Record<Direction, string> = {
  upload: 'try again later; create a new job if the upload window (15 minutes) has passed',
  download: 'try again later; the download URL stays valid 7 days after the job was created',
};

function gaveUp(direction: Direction, job: ComplianceJob, error: unknown, faults: number, reason: string): XApiError {
  const code = error instanceof Fault ? error.code : 'network';
  return new XApiError(code, `${direction}ing job ${job.id} failed after ${faults} attempts: ${reason}`, { jobId: job.id, hint: HINT_AFTER_FAULTS[direction] });
}

/**
 * Whether another attempt may succeed: a Fault, or the network (got's errors arrive as XApiError 'network'; a cut
 * stream as Node's own codes). A local file error (ENOENT, EACCES, ENOSPC …) or any other error is final.
 */
function isFault(error: unknown): boolean {
  if (error instanceof Fault) return true;
  if (error instanceof XApiError) return error.code === 'network';
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

/** Refuses, without a request, a transfer whose window (15 minutes to upload, 7 days to download) has closed. */
export function checkWindow(ctx: TransferContext, direction: Direction, job: ComplianceJob): void {
  const closesAt = direction === 'upload' ? job.upload_expires_at : job.download_expires_at;
  const expiresAt = Date.parse(closesAt);
  if (Number.isFinite(expiresAt) && ctx.clock() >= expiresAt) {
    throw new XApiError(`${direction}_expired`, `job ${job.id}: its ${direction} window closed at ${closesAt}`, { jobId: job.id });
  }
}

/** The storage answered 401/403 on a byte-path URL: the one case where the transfer is retried with the token. */
function needsToken(ctx: TransferContext, url: string, status: number): boolean {
  return (status === 401 || status === 403) && isBytePath(url, ctx.apiOrigin);
}

/** One debug line per storage request: method, redacted URL, status (or the error's code) and time taken. */
export function logRequest(ctx: TransferContext, job: ComplianceJob, method: string, url: string, started: number, outcome: Record<string, unknown>): void {
  const ms = Math.round(performance.now() - started);
  const failed = 'error' in outcome;
  ctx.log.debug({ job: job.id, method, url: redactUrl(url), ...outcome, ms }, failed ? 'storage request failed' : 'storage request');
}

/**
 * Keeps the first 64 KiB of a response body (an XML or problem message is shorter) in `answer.body` as it arrives,
 * so a server that answers and hangs up early still leaves its words there.
 */
export async function readBody(stream: AsyncIterable<Buffer | string>, answer: { body: string }): Promise<void> {
  for await (const chunk of stream) {
    if (answer.body.length < BODY_CAP) answer.body = (answer.body + chunk.toString()).slice(0, BODY_CAP);
  }
}

const BODY_CAP = 64 * 1024;

/** A header's (first) value. */
export function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}
