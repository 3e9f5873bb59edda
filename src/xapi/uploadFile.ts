import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Got } from 'got';
import { redactUrl } from '../log.js';
import { problemOf, storageErrorCode, XApiError } from './errors.js';
import { backoffMs, needsToken, type TransferContext } from './http.js';
import type { ComplianceJob } from './types.js';

/** Node reads files in 64 KiB chunks by default; 1 MiB read chunks measured about 3x faster uploads. */
const READ_CHUNK = 1024 * 1024;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A fault worth retrying (network or 5xx) rather than a final answer. */
class Fault extends Error {}

/**
 * Uploads an ID file to the job's upload URL. The upload window is checked first so an expired job costs no
 * request. A stream body cannot be replayed by got, so network faults and 5xx are retried here by reopening the file.
 */
export async function uploadFile(ctx: TransferContext, job: ComplianceJob, file: string, signal?: AbortSignal): Promise<{ bytes: number }> {
  checkWindow(ctx, job);
  const { size } = await stat(file);
  const bytes = job.resumable === true ? await resumable(ctx, job, file, size, signal) : await simple(ctx, job, file, size, signal);
  ctx.log.debug({ job: job.id, bytes }, 'uploaded');
  return { bytes };
}

async function simple(ctx: TransferContext, job: ComplianceJob, file: string, size: number, signal?: AbortSignal): Promise<number> {
  let withToken = false;
  for (let faults = 0; ; ) {
    checkWindow(ctx, job);
    const answer = await send(ctx, job, withToken, 'PUT', job.upload_url, signal, {
      headers: { 'content-type': ctx.contentType, 'content-length': String(size) },
      file,
    }).catch((error: unknown) => onFault(ctx, job, error, ++faults, signal));
    if (!answer) continue;
    if (ok(answer.status)) return size;
    if (!withToken && needsToken(ctx, job.upload_url, answer.status)) {
      withToken = true;
      continue;
    }
    const error = uploadError(job, answer);
    if (error.code === 'server_error' && faults < ctx.retries) {
      await ctx.sleep(backoffMs(++faults), signal);
      continue;
    }
    throw error;
  }
}

/**
 * GCS resumable protocol (docs/x-api.md#resumable-upload-gcs): start a session, PUT chunks with Content-Range, and after a fault ask the session
 * how much it stored (`bytes *​/N` → 308 Range) and continue from there. The session URI is a credential: memory only.
 */
async function resumable(ctx: TransferContext, job: ComplianceJob, file: string, size: number, signal?: AbortSignal): Promise<number> {
  const session = await startSession(ctx, job, signal);
  const handle = await open(file, 'r');
  try {
    let offset = 0;
    let faults = 0;
    let lost = false;
    for (;;) {
      let answer: Answer;
      const queried = lost;
      try {
        // After a fault the stored offset is the session's, not ours: a chunk may have been partly written.
        answer = lost ? await queryOffset(ctx, job, session, size, signal) : await putChunk(ctx, job, session, handle, offset, size, signal);
      } catch (error) {
        await onFault(ctx, job, error, ++faults, signal);
        lost = true;
        continue;
      }
      lost = false;
      if (ok(answer.status)) return size;
      if (answer.status !== 308) throw uploadError(job, answer);
      const stored = storedUpTo(answer.headers.range);
      // Progress earns back the fault allowance: only a session that stops moving gives up. A chunk answered with a
      // 308 that stored nothing counts as a fault (with its backoff), so a session that never moves cannot loop forever.
      if (stored > offset) faults = 0;
      else if (!queried) await onFault(ctx, job, new Fault(`the upload session stored nothing past byte ${offset}`), ++faults, signal);
      offset = stored;
    }
  } finally {
    await handle.close();
  }
}

async function putChunk(ctx: TransferContext, job: ComplianceJob, session: string, handle: FileHandle, offset: number, size: number, signal?: AbortSignal): Promise<Answer> {
  const end = Math.min(offset + ctx.chunkBytes, size);
  const chunk = Buffer.alloc(end - offset);
  await handle.read(chunk, 0, chunk.length, offset);
  const range = size === 0 ? 'bytes */0' : `bytes ${offset}-${end - 1}/${size}`;
  const answer = await send(ctx, job, false, 'PUT', session, signal, { headers: { 'content-type': ctx.contentType, 'content-range': range }, body: chunk });
  if (answer.status >= 500) throw new Fault(`HTTP ${answer.status}`);
  return answer;
}

async function startSession(ctx: TransferContext, job: ComplianceJob, signal?: AbortSignal): Promise<string> {
  for (let faults = 0; ; ) {
    checkWindow(ctx, job);
    const answer = await send(ctx, job, false, 'POST', job.upload_url, signal, {
      headers: { 'content-type': ctx.contentType, 'content-length': '0', 'x-goog-resumable': 'start' },
      body: Buffer.alloc(0),
    }).catch((error: unknown) => onFault(ctx, job, error, ++faults, signal));
    if (!answer) continue;
    const location = header(answer.headers.location);
    if (ok(answer.status) && location) return new URL(location, job.upload_url).toString();
    if (ok(answer.status)) throw new XApiError('bad_response', `job ${job.id}: resumable upload start answered without a Location`, { jobId: job.id, status: answer.status });
    const error = uploadError(job, answer);
    if (error.code === 'server_error' && faults < ctx.retries) {
      await ctx.sleep(backoffMs(++faults), signal);
      continue;
    }
    throw error;
  }
}

async function queryOffset(ctx: TransferContext, job: ComplianceJob, session: string, size: number, signal?: AbortSignal): Promise<Answer> {
  const answer = await send(ctx, job, false, 'PUT', session, signal, { headers: { 'content-range': `bytes */${size}` }, body: Buffer.alloc(0) });
  if (answer.status >= 500) throw new Fault(`HTTP ${answer.status}`);
  return answer;
}

/** `Range: bytes=0-k` → k + 1; no header → nothing stored yet. */
function storedUpTo(range: string | string[] | undefined): number {
  const match = header(range)?.match(/bytes=0-(\d+)/);
  return match ? Number(match[1]) + 1 : 0;
}

/** Counts a fault; waits and returns undefined to retry, or throws once retries are spent (or on abort). */
async function onFault(ctx: TransferContext, job: ComplianceJob, error: unknown, faults: number, signal?: AbortSignal): Promise<undefined> {
  if (signal?.aborted) throw signal.reason;
  if (error instanceof XApiError && error.code !== 'network') throw error;
  if (!(error instanceof XApiError) && !(error instanceof Fault) && !isNetworkError(error)) throw error;
  const reason = error instanceof Error ? error.message : String(error);
  ctx.log.debug({ job: job.id, faults, reason }, 'upload fault');
  if (faults > ctx.retries) {
    throw new XApiError(error instanceof Fault ? 'server_error' : 'network', `uploading job ${job.id} failed after ${faults} attempts: ${reason}`, {
      jobId: job.id,
      hint: 'try again later; create a new job if the upload window (15 minutes) has passed',
    });
  }
  await ctx.sleep(backoffMs(faults), signal);
  return undefined;
}

function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^(E[A-Z]+|ERR_STREAM_PREMATURE_CLOSE|ERR_STREAM_DESTROYED)$/.test(code) && code !== 'ENOENT' && code !== 'EACCES';
}

interface SendBody {
  headers: Record<string, string>;
  file?: string;
  body?: Buffer;
}

/**
 * One storage request. With a file, the body is streamed in 1 MiB reads and the response is read inside the same
 * pipeline: `pipeline(file, got.stream.put())` alone resolves before the response arrives.
 */
async function send(ctx: TransferContext, job: ComplianceJob, withToken: boolean, method: 'PUT' | 'POST', url: string, signal: AbortSignal | undefined, request: SendBody): Promise<Answer> {
  const client: Got = withToken ? ctx.bytePath : ctx.storage;
  const started = performance.now();
  let status = 0;
  let headers: Answer['headers'] = {};
  let body = '';
  try {
    if (request.file !== undefined) {
      const stream = client.stream(url, { method, headers: request.headers, signal });
      stream.once('response', (response: { statusCode: number; headers: Answer['headers'] }) => {
        status = response.statusCode;
        headers = response.headers;
      });
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          if (body.length < 64 * 1024) body += chunk.toString();
          done();
        },
      });
      await pipeline(createReadStream(request.file, { highWaterMark: READ_CHUNK }), stream, sink, { signal });
    } else {
      const response = await client(url, { method, headers: request.headers, body: request.body, responseType: 'text', signal, followRedirect: false });
      ({ statusCode: status, headers } = response);
      body = response.body;
    }
  } catch (error) {
    // A server may answer (e.g. 403) and close before reading the whole body: its answer wins over the broken pipe.
    if (status >= 400) return { status, headers, body };
    ctx.log.debug({ job: job.id, method, url: redactUrl(url), ms: Math.round(performance.now() - started), error: (error as { code?: string }).code }, 'storage request failed');
    throw error;
  }
  ctx.log.debug({ job: job.id, method, url: redactUrl(url), status, ms: Math.round(performance.now() - started) }, 'storage request');
  return { status, headers, body };
}

function checkWindow(ctx: TransferContext, job: ComplianceJob): void {
  const expiresAt = Date.parse(job.upload_expires_at);
  if (Number.isFinite(expiresAt) && ctx.clock() >= expiresAt) {
    throw new XApiError('upload_expired', `job ${job.id}: its upload window closed at ${job.upload_expires_at}`, { jobId: job.id });
  }
}

function uploadError(job: ComplianceJob, answer: Answer): XApiError {
  const problem = problemOf(safeJson(answer.body));
  const code = storageErrorCode('upload', answer.status, answer.body, problem);
  const what = problem.detail ?? problem.title ?? answer.body.match(/<Message>([^<]*)<\/Message>/)?.[1] ?? '';
  return new XApiError(code, `uploading job ${job.id} failed: HTTP ${answer.status}${what ? ` ${what}` : ''}`, {
    jobId: job.id,
    status: answer.status,
    title: problem.title,
    detail: problem.detail,
  });
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function ok(status: number): boolean {
  return status >= 200 && status < 300;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
