import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import type { Got } from 'got';
import { XApiError } from './errors.js';
import { checkWindow, Fault, header, isSuccess, logRequest, readBody, retryTransfer, type Answer, type Attempt, type TransferContext } from './transfer.js';
import type { ComplianceJob } from './types.js';

/** Node reads files in 64 KiB chunks by default; 1 MiB read chunks measured about 3x faster uploads. */
const READ_CHUNK = 1024 * 1024;

/**
 * Uploads an ID file to the job's upload URL. The upload window is checked first so an expired job costs no
 * request. A stream body cannot be replayed by got, so network faults and 5xx are retried (transfer.ts) by reopening
 * the file.
 */
export async function uploadFile(ctx: TransferContext, job: ComplianceJob, file: string, signal?: AbortSignal): Promise<{ bytes: number }> {
  checkWindow(ctx, 'upload', job);
  const { size } = await stat(file);
  const bytes = job.resumable === true ? await resumable(ctx, job, file, size, signal) : await simple(ctx, job, file, size, signal);
  ctx.log.debug({ job: job.id, bytes }, 'uploaded');
  return { bytes };
}

function simple(ctx: TransferContext, job: ComplianceJob, file: string, size: number, signal?: AbortSignal): Promise<number> {
  return atUploadUrl(ctx, job, signal, async (client) => {
    const headers = { 'content-type': ctx.contentType, 'content-length': String(size) };
    const answer = await send(ctx, client, job, 'PUT', job.upload_url, signal, { headers, file });
    return isSuccess(answer.status) ? { kind: 'done', value: size } : { kind: 'refused', answer };
  });
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
    let lost = false;
    const attempt = async (client: Got): Promise<Attempt<number>> => {
      const queried = lost;
      // After a fault the stored offset is the session's, not ours: a chunk may have been partly written.
      lost = true;
      const answer = queried ? await queryOffset(ctx, client, job, session, size, signal) : await putChunk(ctx, client, job, session, handle, offset, size, signal);
      lost = false;
      if (isSuccess(answer.status)) return { kind: 'done', value: size };
      if (answer.status !== 308) return { kind: 'refused', answer };
      const stored = storedUpTo(answer.headers.range);
      const from = offset;
      offset = stored;
      // Progress earns back the fault allowance (retryTransfer sees it). A chunk answered with a 308 that stored
      // nothing counts as a fault (with its backoff), so a session that never moves cannot loop forever.
      if (stored <= from && !queried) throw new Fault('server_error', `the upload session stored nothing past byte ${from}`);
      return { kind: 'again' };
    };
    return await retryTransfer(ctx, { direction: 'upload', job, url: session, checkWindow: false, progress: () => offset, attempt }, signal);
  } finally {
    await handle.close();
  }
}

async function putChunk(ctx: TransferContext, client: Got, job: ComplianceJob, session: string, handle: FileHandle, offset: number, size: number, signal?: AbortSignal): Promise<Answer> {
  const end = Math.min(offset + ctx.chunkBytes, size);
  const chunk = Buffer.alloc(end - offset);
  await handle.read(chunk, 0, chunk.length, offset);
  const range = size === 0 ? 'bytes */0' : `bytes ${offset}-${end - 1}/${size}`;
  const answer = await send(ctx, client, job, 'PUT', session, signal, { headers: { 'content-type': ctx.contentType, 'content-range': range }, body: chunk });
  if (answer.status >= 500) throw new Fault('server_error', `HTTP ${answer.status}`);
  return answer;
}

function startSession(ctx: TransferContext, job: ComplianceJob, signal?: AbortSignal): Promise<string> {
  return atUploadUrl(ctx, job, signal, async (client) => {
    const headers = { 'content-type': ctx.contentType, 'content-length': '0', 'x-goog-resumable': 'start' };
    const answer = await send(ctx, client, job, 'POST', job.upload_url, signal, { headers, body: Buffer.alloc(0) });
    if (!isSuccess(answer.status)) return { kind: 'refused', answer };
    const location = header(answer.headers.location);
    if (!location) throw new XApiError('bad_response', `job ${job.id}: resumable upload start answered without a Location`, { jobId: job.id, status: answer.status });
    return { kind: 'done', value: new URL(location, job.upload_url).toString() };
  });
}

/** One request to the job's upload URL (a simple upload, or a session's start), retried within the upload window. */
function atUploadUrl<T>(ctx: TransferContext, job: ComplianceJob, signal: AbortSignal | undefined, attempt: (client: Got) => Promise<Attempt<T>>): Promise<T> {
  return retryTransfer(ctx, { direction: 'upload', job, url: job.upload_url, checkWindow: true, attempt }, signal);
}

async function queryOffset(ctx: TransferContext, client: Got, job: ComplianceJob, session: string, size: number, signal?: AbortSignal): Promise<Answer> {
  const answer = await send(ctx, client, job, 'PUT', session, signal, { headers: { 'content-range': `bytes */${size}` }, body: Buffer.alloc(0) });
  if (answer.status >= 500) throw new Fault('server_error', `HTTP ${answer.status}`);
  return answer;
}

/** `Range: bytes=0-k` → k + 1; no header → nothing stored yet. */
function storedUpTo(range: string | string[] | undefined): number {
  const match = header(range)?.match(/bytes=0-(\d+)/);
  return match ? Number(match[1]) + 1 : 0;
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
async function send(ctx: TransferContext, client: Got, job: ComplianceJob, method: 'PUT' | 'POST', url: string, signal: AbortSignal | undefined, request: SendBody): Promise<Answer> {
  const started = performance.now();
  const answer: Answer = { status: 0, headers: {}, body: '' };
  try {
    if (request.file !== undefined) {
      const stream = client.stream(url, { method, headers: request.headers, signal });
      stream.once('response', (response: { statusCode: number; headers: Answer['headers'] }) => {
        answer.status = response.statusCode;
        answer.headers = response.headers;
      });
      await pipeline(
        createReadStream(request.file, { highWaterMark: READ_CHUNK }),
        stream,
        (body: AsyncIterable<Buffer>) => readBody(body, answer),
        { signal },
      );
    } else {
      const response = await client(url, { method, headers: request.headers, body: request.body, responseType: 'text', signal, followRedirect: false });
      Object.assign(answer, { status: response.statusCode, headers: response.headers, body: response.body });
    }
  } catch (error) {
    // A server may answer (e.g. 403) and close before reading the whole body: its answer wins over the broken pipe.
    if (answer.status >= 400) return answer;
    logRequest(ctx, job, method, url, started, { error: (error as { code?: string }).code });
    throw error;
  }
  logRequest(ctx, job, method, url, started, { status: answer.status });
  return answer;
}
