import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Got } from 'got';
import { PRIVATE_FILE_MODE } from '../privateFiles.js';
import { checkWindow, Fault, header, logRequest, readBody, retryTransfer, type Attempt, type Headers, type TransferContext } from './transfer.js';
import type { ComplianceJob } from './types.js';

/**
 * Streams the job's results to `destFile + '.part'`, checks the length against content-length, then fsyncs and
 * renames, so `destFile` exists only complete. A cut is resumed with `Range: bytes=<have>-` (206), or restarted when
 * the server ignores the range (200). The .part file is written at explicit offsets, so what counts as "have" is
 * exactly what was written, whatever the state of a failed stream.
 */
export async function downloadFile(ctx: TransferContext, job: ComplianceJob, destFile: string, signal?: AbortSignal): Promise<{ bytes: number }> {
  checkWindow(ctx, 'download', job);
  const part = `${destFile}.part`;
  const handle = await open(part, 'w', PRIVATE_FILE_MODE);
  const progress = { have: 0 };
  let done = false;
  try {
    await retryTransfer(
      ctx,
      {
        direction: 'download',
        job,
        url: job.download_url,
        checkWindow: true,
        progress: () => progress.have,
        attempt: (client) => fetchInto(ctx, client, job, handle, progress, signal),
      },
      signal,
    );
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

/**
 * One GET: from `progress.have` on when something is already written. The server started over (200), resumed (206),
 * or had nothing past our end (416); restarting, when it sent another range than asked, is another attempt.
 */
async function fetchInto(ctx: TransferContext, client: Got, job: ComplianceJob, handle: FileHandle, progress: { have: number }, signal?: AbortSignal): Promise<Attempt<void>> {
  const started = performance.now();
  const headers = progress.have > 0 ? { range: `bytes=${progress.have}-` } : {};
  const stream = client.stream(job.download_url, { headers, signal });
  const response = await new Promise<{ statusCode: number; headers: Headers }>((resolve, reject) => {
    stream.once('response', resolve);
    stream.once('error', reject);
  });
  const status = response.statusCode;
  logRequest(ctx, job, 'GET', job.download_url, started, { status, from: progress.have });
  let total: number | undefined;
  if (status === 206) {
    const range = header(response.headers['content-range'])?.match(/^bytes (\d+)-\d+\/(\d+|\*)/);
    if (!range || Number(range[1]) !== progress.have) {
      stream.destroy();
      return restart(progress);
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
    return Number(size) === progress.have ? DONE : restart(progress);
  } else {
    const answer = { status, headers: response.headers, body: '' };
    await readBody(stream, answer).catch(() => undefined);
    return { kind: 'refused', answer };
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
    throw new Fault('network', `the body ended at byte ${progress.have} of ${total}`);
  }
  return DONE;
}

const DONE: Attempt<void> = { kind: 'done', value: undefined };

/** The server sent bytes from another offset than asked: start over from byte 0. */
function restart(progress: { have: number }): Attempt<void> {
  progress.have = 0;
  return { kind: 'again' };
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
