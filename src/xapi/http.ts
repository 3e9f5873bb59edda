import got, { type Got } from 'got';
import type { Logger } from '../log.js';
import { fromGotError } from './errors.js';
import type { Sleep } from '../clock.js';

/**
 * got retries are off on both instances: a retry must pass through the shared rate budget (X counts it), a stream
 * body cannot be replayed by got, and waits must use the injectable, abortable sleep. The callers loop instead.
 */
function common() {
  return { retry: { limit: 0 }, throwHttpErrors: false, hooks: { beforeError: [fromGotError] } };
}

/**
 * The token goes on a request only when it is for the API's own origin. got strips Authorization on a cross-origin
 * redirect, but runs beforeRequest again for the redirected request: without this check a 3xx to a storage or CDN
 * host would hand it the token.
 */
function bearerFor(token: () => string, apiOrigin: string) {
  return (options: { url?: URL | string; headers: Record<string, string | string[] | undefined> }) => {
    const origin = options.url ? new URL(options.url.toString()).origin : undefined;
    if (origin === apiOrigin) options.headers.authorization = `Bearer ${token()}`;
    else delete options.headers.authorization;
  };
}

/** The only holder of the bearer token: JSON API calls (one total timeout each). */
export function createApiGot(token: () => string, timeoutMs: number, apiOrigin: string): Got {
  return got.extend({
    ...common(),
    timeout: { request: timeoutMs },
    headers: { accept: 'application/json', 'user-agent': 'compliance-sync' },
    // A hook rather than a fixed header so setToken applies to the next request without a new instance.
    hooks: { beforeError: [fromGotError], beforeRequest: [bearerFor(token, apiOrigin)] },
  });
}

/** The storage URLs' limits: connect, idle-socket and first-byte, no total (a big transfer may take long). */
function transferTimeouts(timeoutMs: number) {
  return { lookup: timeoutMs, connect: timeoutMs, secureConnect: timeoutMs, socket: timeoutMs, response: timeoutMs };
}

/**
 * Signed storage URLs: no token ever. No decompression, so byte counts match content-length.
 */
export function createStorageGot(timeoutMs: number): Got {
  return got.extend({
    ...common(),
    decompress: false,
    timeout: transferTimeouts(timeoutMs),
    headers: { 'user-agent': 'compliance-sync' },
  });
}

/** api.x.com byte-path transfers that asked for the token (docs/x-api.md#authentication): the storage instance's limits, plus the token. */
export function createBytePathGot(token: () => string, timeoutMs: number, apiOrigin: string): Got {
  return got.extend({
    ...common(),
    decompress: false,
    timeout: transferTimeouts(timeoutMs),
    headers: { 'user-agent': 'compliance-sync' },
    hooks: { beforeError: [fromGotError], beforeRequest: [bearerFor(token, apiOrigin)] },
  });
}

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

/** Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at 60 s. */
export function backoffMs(attempt: number): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + Math.random() * 0.25));
}

/** The storage answered 401/403 on a byte-path URL: the one case where the transfer is retried with the token. */
export function needsToken(ctx: TransferContext, url: string, status: number): boolean {
  return (status === 401 || status === 403) && isBytePath(url, ctx.apiOrigin);
}

/**
 * api.x.com byte-path URLs (2026 flow) live on the API host under /2/compliance/jobs/{id}/(upload|download): only
 * those may ever receive the bearer token, and only after the server asked for it (docs/x-api.md#authentication).
 */
export function isBytePath(url: string, apiOrigin: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.origin === apiOrigin && /\/2\/compliance\/jobs\/\d+\/(upload|download)$/.test(parsed.pathname);
  } catch {
    return false;
  }
}

/** Reads at most `cap` bytes of a (error) body as text: enough for an XML or problem message. */
export async function readText(stream: AsyncIterable<Buffer | string>, cap = 64 * 1024): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    if (text.length < cap) text += chunk.toString();
  }
  return text.slice(0, cap);
}

/**
 * Runs `fn` with a signal of its own that follows `outer`. got 14 leaves an abort listener on every signal it is
 * given; a daemon passes one long-lived signal to thousands of requests, so each call gets a short-lived child
 * whose listeners go away with it, and only our own listener (removed here) touches the long-lived one.
 */
export async function withScopedSignal<T>(outer: AbortSignal | undefined, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
  if (!outer) return fn(undefined);
  outer.throwIfAborted();
  const scoped = new AbortController();
  const follow = () => scoped.abort(outer.reason);
  outer.addEventListener('abort', follow, { once: true });
  try {
    return await fn(scoped.signal);
  } finally {
    outer.removeEventListener('abort', follow);
  }
}
