import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { crc32cBase64 } from './crc32c.js';
import { acceptUpload, newUploadParser, originOf, type EmulatorContext, type UploadSession } from './context.js';
import { BodyTooLargeError, consumeBody, discardBody, readBody, sendXml, serveObject } from './http.js';
import type { Job } from './jobs.js';
import { storageErrorXml } from './problems.js';
import type { StorageKind } from './signing.js';
import type { ParsedUpload } from './uploads.js';

export interface StorageRoute {
  /** `/{bucket}/{jobId}/{kind}/{appNum}_{jobId}`, the signed part of the path. */
  objectPath: string;
  jobId: string;
  kind: StorageKind;
  query: URLSearchParams;
}

const SIGNATURE_MESSAGE =
  'The request signature we calculated does not match the signature you provided. Check your Google secret key and signing method.';

function expiredXml(expiresAt: number): string {
  return storageErrorXml('ExpiredToken', 'Invalid argument.', `The provided token has expired. Request signature expired at: ${new Date(expiresAt).toISOString()}`);
}

/** The fake Google Cloud Storage of the GCS flow (docs/x-api.md#uploading-ids, docs/x-api.md#results-transport): signed URLs, resumable sessions, ranged downloads. */
export async function handleStorage(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, route: StorageRoute): Promise<void> {
  const check = ctx.signer.verifyStorage(route.objectPath, route.query);
  if (!check.ok) {
    discardBody(req, res);
    return sendXml(res, 403, storageErrorXml('SignatureDoesNotMatch', SIGNATURE_MESSAGE, check.stringToSign));
  }
  const method = req.method ?? 'GET';
  if (route.kind === 'delivery') {
    discardBody(req, res);
    if (method !== 'GET' && method !== 'HEAD') return sendXml(res, 405, storageErrorXml('MethodNotAllowed', `The specified method is not allowed against this resource: ${method}`));
    return download(ctx, req, res, route, check.expiresAt);
  }
  const uploadId = route.query.get('upload_id');
  if (method === 'PUT' && uploadId !== null) return sessionPut(ctx, req, res, uploadId);
  if (ctx.clock() > check.expiresAt) {
    discardBody(req, res);
    return sendXml(res, 400, expiredXml(check.expiresAt));
  }
  // The URL is signed over content-type: anything but exactly text/plain (e.g. fetch's ";charset=UTF-8") fails (docs/x-api.md#simple-upload-gcs).
  if (ctx.strictContentType && req.headers['content-type'] !== 'text/plain') {
    discardBody(req, res);
    return sendXml(res, 403, storageErrorXml('SignatureDoesNotMatch', SIGNATURE_MESSAGE, `content-type must be exactly text/plain (got ${req.headers['content-type'] ?? 'none'})`));
  }
  const job = ctx.jobs.get(route.jobId);
  if (!job) {
    discardBody(req, res);
    return sendXml(res, 404, storageErrorXml('NoSuchBucket', 'The specified bucket does not exist.'));
  }
  if (method === 'POST' && String(req.headers['x-goog-resumable']).toLowerCase() === 'start') return sessionStart(ctx, req, res, job);
  if (method !== 'PUT') {
    discardBody(req, res);
    return sendXml(res, 405, storageErrorXml('MethodNotAllowed', `The specified method is not allowed against this resource: ${method}`));
  }
  if (rejectUpload(ctx, req, res)) return;
  const parser = newUploadParser(ctx, job);
  try {
    await consumeBody(req, ctx.maxUploadBytes, (chunk) => parser.write(chunk));
  } catch (err) {
    return bodyFailed(req, res, err);
  }
  uploadDone(ctx, res, job, parser.end(), 200);
}

/** The uploadReject fault: the storage side says no before reading the body. */
function rejectUpload(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse): boolean {
  const reject = ctx.faults.fire('uploadReject');
  if (!reject) return false;
  discardBody(req, res);
  const status = reject.status ?? 503;
  if (status === 403) sendXml(res, 403, storageErrorXml('AccessDenied', 'Access denied.'));
  else sendXml(res, status, storageErrorXml('ServiceUnavailable', 'We encountered an internal error. Please try again.'));
  return true;
}

function bodyFailed(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (err instanceof BodyTooLargeError) {
    discardBody(req, res);
    sendXml(res, 400, storageErrorXml('EntityTooLarge', `Your proposed upload exceeds the maximum allowed object size (${err.limit} bytes).`));
  } else {
    res.destroy(); // the client is gone: nothing was stored
  }
}

/** The object is stored: GCS's success headers; the job starts processing if it was waiting for its upload. */
function uploadDone(ctx: EmulatorContext, res: ServerResponse, job: Job, upload: ParsedUpload, status: number): void {
  // A repeated upload overwrites the object in GCS but X processes a job once: later uploads change nothing.
  if (job.status === 'created') acceptUpload(ctx, job, upload);
  res.writeHead(status, {
    'content-type': 'text/html; charset=UTF-8',
    'content-length': 0,
    etag: `"${upload.md5.toString('hex')}"`,
    'x-goog-hash': `crc32c=${crc32cBase64(upload.crc32c)},md5=${upload.md5.toString('base64')}`,
    'x-goog-generation': String(ctx.clock() * 1000),
    'x-goog-metageneration': '1',
    'x-goog-stored-content-length': String(upload.bytes),
    'x-goog-stored-content-encoding': 'identity',
    server: 'UploadServer',
  });
  res.end();
}

/** POST with `x-goog-resumable: start` → 201 and the session URI in Location (docs/x-api.md#resumable-upload-gcs). */
function sessionStart(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, job: Job): void {
  discardBody(req, res);
  if (!job.resumable) {
    // Non-resumable URLs are not signed for x-goog-resumable, so GCS would refuse the request.
    return sendXml(res, 403, storageErrorXml('SignatureDoesNotMatch', SIGNATURE_MESSAGE, 'x-goog-resumable is not a signed header of this URL'));
  }
  const session: UploadSession = { id: randomBytes(24).toString('base64url'), jobId: job.id, parser: newUploadParser(ctx, job), offset: 0 };
  ctx.sessions.set(session.id, session);
  res.writeHead(201, {
    location: `${originOf(ctx, req)}${req.url}&upload_id=${session.id}`,
    'x-guploader-uploadid': session.id,
    'content-length': 0,
  });
  res.end();
}

function incomplete(res: ServerResponse, session: UploadSession): void {
  res.writeHead(308, { ...(session.offset > 0 ? { range: `bytes=0-${session.offset - 1}` } : {}), 'content-length': 0 });
  res.end();
}

/** PUT to a session URI: a chunk (`Content-Range: bytes a-b/N` or `a-b/*`), the whole file, or a status query (`bytes *​/N`). */
async function sessionPut(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, uploadId: string): Promise<void> {
  const session = ctx.sessions.get(uploadId);
  const job = session ? ctx.jobs.get(session.jobId) : undefined;
  if (!session || !job) {
    discardBody(req, res);
    return sendXml(res, 404, storageErrorXml('NoSuchUpload', 'The requested upload was not found.'));
  }
  const header = req.headers['content-range'];
  const status = header === undefined ? null : /^bytes \*\/(\d+|\*)$/.exec(header);
  if (status) {
    discardBody(req, res);
    if (session.done) return uploadDone(ctx, res, job, session.done, 200);
    return incomplete(res, session);
  }
  const chunk = header === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header);
  if (header !== undefined && !chunk) {
    discardBody(req, res);
    return sendXml(res, 400, storageErrorXml('InvalidArgument', `Invalid Content-Range header: ${header}`));
  }
  if (session.done) {
    discardBody(req, res);
    return uploadDone(ctx, res, job, session.done, 200);
  }
  if (rejectUpload(ctx, req, res)) return;
  let body: Buffer;
  try {
    body = await readBody(req, ctx.maxUploadBytes);
  } catch (err) {
    return bodyFailed(req, res, err);
  }
  // Without Content-Range the PUT carries the whole file.
  const first = chunk ? Number(chunk[1]) : 0;
  const last = chunk ? Number(chunk[2]) : body.length - 1;
  const total = chunk ? (chunk[3] === '*' ? undefined : Number(chunk[3])) : body.length;
  if (body.length !== last - first + 1 || first > session.offset) {
    return sendXml(
      res,
      400,
      storageErrorXml('InvalidArgument', `Invalid request: the chunk ${first}-${last} (${body.length} bytes) does not continue the ${session.offset} bytes stored.`),
    );
  }
  // Bytes already stored (a chunk re-sent after a lost response) are skipped, as GCS does.
  const fresh = body.subarray(session.offset - first);
  if (fresh.length > 0) session.parser.write(fresh);
  session.offset = Math.max(session.offset, last + 1);
  if (total !== undefined) session.total = total;
  if (session.total !== undefined && session.offset >= session.total) {
    session.done = session.parser.end();
    return uploadDone(ctx, res, job, session.done, 200);
  }
  incomplete(res, session);
}

function download(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, route: StorageRoute, expiresAt: number): void {
  if (ctx.clock() > expiresAt) return sendXml(res, 400, expiredXml(expiresAt));
  const job = ctx.jobs.get(route.jobId);
  if (!job || job.status !== 'complete') {
    return sendXml(res, 404, storageErrorXml('NoSuchKey', 'The specified key does not exist.', `No such object: ${route.objectPath.slice(1)}`));
  }
  // The downloadForbidden fault: a signed URL the storage no longer honours (revoked key, rotated signer).
  if (ctx.faults.fire('downloadForbidden')) return sendXml(res, 403, storageErrorXml('AccessDenied', 'Access denied.', 'The signed URL is no longer valid.'));
  serveResults(ctx, req, res, job);
}

/** The results object as GCS serves it (docs/x-api.md#results-transport): octet-stream, never gzipped, with etag, last-modified and ranges. */
export function serveResults(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, job: Job): void {
  const results = ctx.jobs.results(job);
  const cut = req.method !== 'HEAD' && results.body.length >= 2 && ctx.faults.fire('cutDownload') !== null;
  serveObject(req, res, {
    body: results.body,
    cut,
    headers: {
      'content-type': 'application/octet-stream',
      etag: `"${results.md5.toString('hex')}"`,
      'last-modified': new Date(job.completedAt ?? ctx.clock()).toUTCString(),
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': results.body.length,
      'x-goog-hash': `md5=${results.md5.toString('base64')}`,
      'x-goog-component-count': 20,
      'cache-control': 'private, max-age=0',
    },
  });
}
