import { AppError, EXIT, isUntrustedCertificate, UNTRUSTED_CERTIFICATE_HINT, type ExitCode } from '../errors.js';
import { redactUrl } from '../log.js';
import { redactSecrets } from '../secrets.js';

/** Stable codes the cycle engine branches on; messages may change, these may not. */
export type XApiErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'rate_limited'
  | 'conflict'
  | 'invalid_request'
  | 'not_found'
  | 'upload_expired'
  | 'download_expired'
  | 'signature_mismatch'
  | 'server_error'
  | 'network'
  | 'upload_rejected'
  | 'untrusted_certificate'
  | 'bad_response';

export interface XApiErrorOptions {
  status?: number;
  title?: string;
  detail?: string;
  retryAt?: number;
  jobId?: string;
  hint?: string;
  cause?: unknown;
}

/** Codes worth trying again later (the same request may succeed): the CLI exits 75 for them. */
const TEMPORARY: ReadonlySet<XApiErrorCode> = new Set(['rate_limited', 'server_error', 'network']);
/** Codes a person must fix in the configuration (token, app access): exit 78 so systemd does not restart-loop. */
const CONFIG: ReadonlySet<XApiErrorCode> = new Set(['unauthorized', 'forbidden', 'untrusted_certificate']);

const DEFAULT_HINTS: Record<XApiErrorCode, string> = {
  unauthorized: 'check the bearer token (api.bearerTokenFile, $CREDENTIALS_DIRECTORY/x-bearer-token or $X_BEARER_TOKEN); it must be an app-only token',
  forbidden: 'use an app-only bearer token of an App that belongs to a Project with access to the compliance endpoints',
  rate_limited: 'wait for the rate-limit window to reset (150 requests / 15 min per endpoint) and run again',
  conflict: 'only one job per type may be created or in progress: list the jobs of this type and wait for, reuse or cancel the active one',
  invalid_request: 'the request was rejected as invalid; check the job type, name (≤ 64 characters) and job id',
  not_found: 'check the job id; X lists jobs only for a few days',
  upload_expired: 'the upload URL is valid 15 minutes after the job was created: create a new job for this shard',
  download_expired: 'the download URL is valid 7 days after the job was created: run the shard again with a new job',
  signature_mismatch: 'upload with Content-Type exactly "text/plain" and the URL exactly as X returned it',
  server_error: 'the server failed; try again later',
  network: 'check the network connection and api.baseUrl; try again later',
  upload_rejected: 'the storage server refused the upload; create a new job for this shard',
  untrusted_certificate: UNTRUSTED_CERTIFICATE_HINT,
  bad_response: 'the server answered something this client does not understand; check api.baseUrl',
};

/**
 * An error of the X API or its storage URLs. Carries the problem's title/detail, never the token or a signed URL:
 * only redacted URLs reach the message, and `cause` is a plain summary, not a got error (whose `options` hold headers).
 */
export class XApiError extends AppError {
  override readonly name = 'XApiError';
  declare readonly code: XApiErrorCode;
  readonly status: number | undefined;
  readonly title: string | undefined;
  readonly detail: string | undefined;
  /** Epoch ms when a rate-limited call may be tried again (from `x-rate-limit-reset`). */
  readonly retryAt: number | undefined;
  readonly jobId: string | undefined;

  constructor(code: XApiErrorCode, message: string, options: XApiErrorOptions = {}) {
    // Messages quote the server's own words (title, detail, body), which may echo our Authorization header.
    super(code, redactSecrets(message), { hint: options.hint ?? DEFAULT_HINTS[code], cause: options.cause, exitCode: exitCodeOf(code) });
    this.status = options.status;
    this.title = options.title === undefined ? undefined : redactSecrets(options.title);
    this.detail = options.detail === undefined ? undefined : redactSecrets(options.detail);
    this.retryAt = options.retryAt;
    this.jobId = options.jobId;
  }

  /** Whether the same call may succeed later without any change. */
  get temporary(): boolean {
    return TEMPORARY.has(this.code);
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      hint: this.hint,
      status: this.status,
      title: this.title,
      detail: this.detail,
      retryAt: this.retryAt,
      jobId: this.jobId,
    };
  }
}

function exitCodeOf(code: XApiErrorCode): ExitCode {
  if (TEMPORARY.has(code)) return EXIT.busy;
  if (CONFIG.has(code)) return EXIT.config;
  return EXIT.failure;
}

/** An RFC 7807-style problem as X sends it (top level, or the first entry of `errors`). */
export interface Problem {
  type?: string;
  title?: string;
  detail?: string;
  status?: number;
}

/** Reads a problem out of a JSON body; tolerant of anything. */
export function problemOf(body: unknown): Problem {
  if (typeof body !== 'object' || body === null) return {};
  const record = body as Record<string, unknown>;
  const first = Array.isArray(record.errors) && typeof record.errors[0] === 'object' ? (record.errors[0] as Record<string, unknown>) : {};
  const pick = (key: string): string | undefined => {
    const value = record[key] ?? first[key];
    return typeof value === 'string' ? value : undefined;
  };
  const detail = pick('detail') ?? pick('message');
  const status = typeof record.status === 'number' ? record.status : undefined;
  return { type: pick('type'), title: pick('title'), detail, status };
}

/** The `<name>` of a problem type URI `https://api.{twitter,x}.com/2/problems/<name>`, whatever the host. */
export function problemName(type: string | undefined): string | undefined {
  return type?.match(/\/2\/problems\/([a-z0-9-]+)\/?$/i)?.[1]?.toLowerCase();
}

const CODE_BY_PROBLEM: Record<string, XApiErrorCode> = {
  conflict: 'conflict',
  'resource-not-found': 'not_found',
  'invalid-request': 'invalid_request',
  'client-forbidden': 'forbidden',
  'unsupported-authentication': 'forbidden',
  'usage-capped': 'rate_limited',
};

/** Maps an HTTP status (and the problem type, which wins when known) to a code. */
export function codeOfStatus(status: number, problem: Problem = {}): XApiErrorCode {
  const byType = CODE_BY_PROBLEM[problemName(problem.type) ?? ''];
  if (byType) return byType;
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server_error';
  if (status >= 400) return 'invalid_request';
  return 'bad_response';
}

/** The `<Code>` of a GCS XML error body. */
function storageCodeOf(body: string): string | undefined {
  return body.match(/<Code>\s*([A-Za-z]+)\s*<\/Code>/)?.[1];
}

/**
 * Maps a storage (upload/download URL) answer to a code. GCS answers XML (`ExpiredToken`, `SignatureDoesNotMatch`,
 * `NoSuchKey`); the 2026 byte paths answer problem JSON, so both are read.
 */
export function storageErrorCode(direction: 'upload' | 'download', status: number, body: string, problem: Problem): XApiErrorCode {
  const xmlCode = storageCodeOf(body);
  const text = `${problem.title ?? ''} ${problem.detail ?? ''} ${problemName(problem.type) ?? ''}`.toLowerCase();
  if (xmlCode === 'ExpiredToken' || /expired/.test(text)) return direction === 'upload' ? 'upload_expired' : 'download_expired';
  if (xmlCode === 'SignatureDoesNotMatch' || /signature/.test(text)) return 'signature_mismatch';
  if (xmlCode === 'NoSuchKey' || status === 404) return 'not_found';
  if (status >= 500) return 'server_error';
  if (status === 429) return 'rate_limited';
  if (direction === 'upload') return 'upload_rejected';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  return 'bad_response';
}

/**
 * A storage server's refusal as an XApiError: the code from storageErrorCode, and the server's own words (problem
 * detail or title, or the XML `<Message>`) in the message.
 */
export function storageError(direction: 'upload' | 'download', jobId: string, answer: { status: number; body: string }): XApiError {
  const problem = problemOf(parseJson(answer.body));
  const code = storageErrorCode(direction, answer.status, answer.body, problem);
  const what = problem.detail ?? problem.title ?? answer.body.match(/<Message>([^<]*)<\/Message>/)?.[1] ?? '';
  const hint = direction === 'download' && code === 'not_found' ? 'the results are not ready yet: poll the job until its status is complete, then download' : undefined;
  return new XApiError(code, `${direction}ing job ${jobId} failed: HTTP ${answer.status}${what ? ` ${what}` : ''}`, {
    jobId,
    status: answer.status,
    title: problem.title,
    detail: problem.detail,
    ...(hint ? { hint } : {}),
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * A got error turned into an XApiError for got's `beforeError` hook: got's own errors hold `options` (with the
 * Authorization header) and the full URL, so neither is kept; the cause is a bare summary.
 */
export function fromGotError(error: Error & { code?: string; options?: { url?: URL | string } }): XApiError {
  const url = error.options?.url ? shortUrl(String(error.options.url)) : undefined;
  const summary = new Error(redactSecrets(`${error.code ?? error.name}: ${scrubUrls(error.message)}`));
  // Retrying cannot make a certificate trusted: fail at once instead of backing off for minutes.
  if (isUntrustedCertificate(error.code)) {
    return new XApiError('untrusted_certificate', `the TLS certificate of ${url ?? 'the server'} is not trusted: ${summary.message}`, { cause: summary });
  }
  return new XApiError('network', `request ${url ? `to ${url} ` : ''}failed: ${summary.message}`, { cause: summary });
}

/** Origin and path only: enough to say what failed, and signed URLs' long queries stay out of messages. */
function shortUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return redactUrl(url);
  }
}

/** Redacts anything URL-shaped in free text (got and Node put URLs in some messages). */
function scrubUrls(text: string): string {
  return text.replace(/https?:\/\/[^\s'"<>]+/g, (url) => redactUrl(url));
}
