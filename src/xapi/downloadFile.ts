import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Got } from 'got';
import { redactUrl } from '../log.js';
import { PRIVATE_FILE_MODE } from '../privateFiles.js';
import { problemOf, storageErrorCode, XApiError } from './errors.js';
import { backoffMs, needsToken, readText, type TransferContext } from './http.js';
import type { ComplianceJob } from './types.js';

type Headers = Record<string, string | string[] | undefined>;

type Attempt =
  | { kind: 'done' }
  /** The server sent bytes from another offset than asked: start over. */
  | { kind: 'restart' }
  | { kind: 'refused'; status: number; headers: Headers; body: string };

/** The body ended before content-length, or a 5xx: worth another attempt. */
class Fault extends Error {}

/**
 * Streams the job's results to `destFile + '.part'`, checks the length against content-length, then fsyncs and
 * renames, so `destFile` exists only complete. A cut is resumed with `Range: bytes=<have>-` (206), or restarted when
 * the server ignores the range (200). The .part file is written at explicit offsets, so what counts as "have" is
 * exactly what was written, whatever the state of a failed stream.
 */
export async function downloadFile(ctx: TransferContext, job: ComplianceJob, destFile: string, signal?: AbortSignal): Promise<{ bytes: number }> {
  const expiresAt = Date.parse(job.download_expires_at);
  if (Number.isFinite(expiresAt) && ctx.clock() >= expiresAt) {
    throw new XApiError('download_expired', `job ${job.id}: its download window closed at ${job.download_expires_at}`, { jobId: job.id });
  }
  const part = `${destFile}.part`;
  const handle = await open(part, 'w', PRIVATE_FILE_MODE);
  const progress = { have: 0 };
  let done = false;
  try {
    let faults = 0;
    let withToken = false;
    for (;;) {
      let attempt: Attempt;
      const before = progress.have;
      try {
        attempt = await fetchInto(ctx, job, withToken, handle, progress, signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (!isFault(error)) throw error;
        // Progress earns back the fault allowance: only a download that stops moving gives up.
        if (progress.have > before) faults = 0;
        const reason = error instanceof Error ? error.message : String(error);
        ctx.log.debug({ job: job.id, have: progress.have, faults: faults + 1, reason }, 'download cut');
        if (++faults > ctx.retries) {
          throw new XApiError('network', `downloading job ${job.id} failed after ${faults} attempts: ${reason}`, {
            jobId: job.id,
            hint: 'try again later; the download URL stays valid 7 days after the job was created',
          });
        }
        await ctx.sleep(backoffMs(faults), signal);
        continue;
      }
      if (attempt.kind === 'done') break;
      if (attempt.kind === 'restart') {
        progress.have = 0;
        continue;
      }
      if (!withToken && needsToken(ctx, job.download_url, attempt.status)) {
        withToken = true;
        continue;
      }
      const error = downloadError(job, attempt);
      if (error.code === 'server_error' && faults < ctx.retries) {
        await ctx.sleep(backoffMs(++faults), signal);
        continue;
      }
      throw error;
    }
    await handle.truncate(progress.have);
    await handle.sync();
    done = true;
  } finally {
    await handle.close();
    if (!done) await rm(part, { force: true });
  }
  await rename(part, destFile);
  await syncDir(dirname(destFile));
  ctx.log.debug({ job: job.id, bytes: progress.have }, 'downloaded');
  return { bytes: progress.have };
}

async function fetchInto(ctx: TransferContext, job: ComplianceJob, withToken: boolean, handle: FileHandle, progress: { have: number }, signal?: AbortSignal): Promise<Attempt> {
  const client: Got = withToken ? ctx.bytePath : ctx.storage;
  const started = performance.now();
  const headers = progress.have > 0 ? { range: `bytes=${progress.have}-` } : {};
  const stream = client.stream(job.download_url, { headers, signal });
  const response = await new Promise<{ statusCode: number; headers: Headers }>((resolve, reject) => {
    stream.once('response', resolve);
    stream.once('error', reject);
  });
  const status = response.statusCode;
  ctx.log.debug({ job: job.id, method: 'GET', url: redactUrl(job.download_url), status, from: progress.have, ms: Math.round(performance.now() - started) }, 'storage request');
  let total: number | undefined;
  if (status === 206) {
    const range = header(response.headers['content-range'])?.match(/^bytes (\d+)-\d+\/(\d+|\*)/);
    if (!range || Number(range[1]) !== progress.have) {
      stream.destroy();
      return { kind: 'restart' };
    }
    total = range[2] === '*' ? undefined : Number(range[2]);
  } else if (status === 200) {
    // The server ignored our Range (or this is the first attempt): the body is the whole file.
    progress.have = 0;
    const length = header(response.headers['content-length']);
    total = length === undefined ? undefined : Number(length);
  } else if (status === 416 && progress.have > 0) {
    // Asked for bytes past the end: either we already hold the whole object, or it changed; start over then.
    stream.destroy();
    const size = header(response.headers['content-range'])?.match(/^bytes \*\/(\d+)$/)?.[1];
    return Number(size) === progress.have ? { kind: 'done' } : { kind: 'restart' };
  } else {
    const body = await readText(stream).catch(() => '');
    return { kind: 'refused', status, headers: response.headers, body };
  }
  let inFlight: Promise<unknown> = Promise.resolve();
  const sink = new Writable({
    // 'have' counts only bytes whose write completed, so a resume never skips or repeats a byte.
    write(chunk: Buffer, _encoding, done) {
      const write = handle.write(chunk, 0, chunk.length, progress.have).then(() => {
        progress.have += chunk.length;
      });
      inFlight = write.catch(() => undefined);
      write.then(() => done(), (error: Error) => done(error));
    },
  });
  try {
    await pipeline(stream, sink, signal ? { signal } : {});
  } finally {
    // When the body fails, a write already handed to the file system still lands (and counts) later. It must land
    // within this attempt: else the next attempt asks for a range from a stale 'have', and the late write counts as
    // that attempt's progress — which earns back the fault allowance of a download that is not moving.
    await inFlight;
  }
  if (total !== undefined && progress.have !== total) {
    throw new Fault(`the body ended at byte ${progress.have} of ${total}`);
  }
  return { kind: 'done' };
}

function isFault(error: unknown): boolean {
  if (error instanceof Fault) return true;
  if (error instanceof XApiError) return error.code === 'network';
  const code = (error as { code?: unknown })?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}

function downloadError(job: ComplianceJob, answer: { status: number; body: string }): XApiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    parsed = undefined;
  }
  const problem = problemOf(parsed);
  const code = storageErrorCode('download', answer.status, answer.body, problem);
  const what = problem.detail ?? problem.title ?? answer.body.match(/<Message>([^<]*)<\/Message>/)?.[1] ?? '';
  const hint = code === 'not_found' ? 'the results are not ready yet: poll the job until its status is complete, then download' : undefined;
  return new XApiError(code, `downloading job ${job.id} failed: HTTP ${answer.status}${what ? ` ${what}` : ''}`, {
    jobId: job.id,
    status: answer.status,
    title: problem.title,
    detail: problem.detail,
    ...(hint ? { hint } : {}),
  });
}

/** Makes the rename durable: without it a crash could bring back the old directory entry. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the file itself is already synced.
  } finally {
    await handle.close();
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
