import type { IncomingMessage, ServerResponse } from 'node:http';
import { acceptUpload, newUploadParser, type EmulatorContext } from './context.js';
import { BodyTooLargeError, consumeBody, discardBody, sendJson } from './http.js';
import { jobJson } from './jobs.js';
import { transferProblem } from './problems.js';
import { serveResults } from './storage.js';

export interface BytepathRoute {
  id: string;
  action: 'upload' | 'download';
  query: URLSearchParams;
}

const ACCEPTED_TYPES = ['text/plain', 'application/octet-stream'];

/**
 * The 2026 api.x.com byte paths (docs/x-api.md#byte-path-upload-2026, docs/x-api.md#results-transport): `PUT …/jobs/{id}/upload?token=` and `GET …/jobs/{id}/download?token=`.
 * The signed token is the credential (the docs PR says so; whether Bearer is also needed was undecided), single PUT only.
 */
export async function handleBytepath(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, route: BytepathRoute): Promise<void> {
  const method = req.method ?? 'GET';
  const expected = route.action === 'upload' ? ['PUT'] : ['GET', 'HEAD'];
  if (!expected.includes(method)) {
    discardBody(req, res);
    res.setHeader('allow', expected.join(', '));
    return sendJson(res, 405, transferProblem(405, 'Method Not Allowed', `Use ${expected.join(' or ')} on the ${route.action} URL.`, 'invalid-request'));
  }
  const job = /^[0-9]{1,19}$/.test(route.id) ? ctx.jobs.get(route.id) : undefined;
  if (!job) {
    discardBody(req, res);
    return sendJson(res, 404, transferProblem(404, 'Not Found Error', `Could not find compliance job with id: [${route.id}].`, 'resource-not-found'));
  }
  if (!ctx.signer.verifyToken(route.action, job.id, route.query.get('token'))) {
    discardBody(req, res);
    return sendJson(res, 403, transferProblem(403, 'Forbidden', `The ${route.action} token is not valid for this job.`, 'not-authorized-for-resource'));
  }
  const expiresAt = route.action === 'upload' ? job.uploadExpiresAt : job.downloadExpiresAt;
  if (ctx.clock() > expiresAt) {
    discardBody(req, res);
    return sendJson(res, 400, transferProblem(400, 'Invalid Request', `The ${route.action} token expired at ${new Date(expiresAt).toISOString()}.`, 'invalid-request'));
  }
  if (route.action === 'download') {
    if (job.status !== 'complete') {
      return sendJson(res, 404, transferProblem(404, 'Not Found Error', `The results of job ${job.id} are not ready (status ${job.status}).`, 'resource-not-found'));
    }
    return serveResults(ctx, req, res, job);
  }
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (!ACCEPTED_TYPES.includes(mediaType)) {
    discardBody(req, res);
    return sendJson(res, 415, transferProblem(415, 'Unsupported Media Type', 'Upload with Content-Type text/plain or application/octet-stream.', 'invalid-request'));
  }
  const tooLarge = () =>
    sendJson(res, 413, transferProblem(413, 'Payload Too Large', `An upload is limited to ${ctx.maxUploadBytes} bytes in a single PUT.`, 'invalid-request'));
  if (Number(req.headers['content-length'] ?? 0) > ctx.maxUploadBytes) {
    discardBody(req, res);
    return tooLarge();
  }
  if (job.status === 'failed') {
    discardBody(req, res);
    return sendJson(res, 409, transferProblem(409, 'Conflict', `Job ${job.id} has failed (${job.error ?? 'no reason'}); create a new job.`, 'conflict'));
  }
  const reject = ctx.faults.fire('uploadReject');
  if (reject) {
    discardBody(req, res);
    const status = reject.status ?? 503;
    return sendJson(
      res,
      status,
      status === 403
        ? transferProblem(403, 'Forbidden', 'The upload was refused.', 'not-authorized-for-resource')
        : transferProblem(status, 'Service Unavailable', 'Service Unavailable', 'internal-error'),
    );
  }
  const parser = newUploadParser(ctx, job);
  try {
    await consumeBody(req, ctx.maxUploadBytes, (chunk) => parser.write(chunk));
  } catch (err) {
    if (!(err instanceof BodyTooLargeError)) return void res.destroy();
    discardBody(req, res);
    return tooLarge();
  }
  const upload = parser.end();
  // A repeated PUT after a lost response answers like the first one; the job is processed once.
  if (job.status === 'created') acceptUpload(ctx, job, upload);
  sendJson(res, 200, { data: jobJson(job) });
}
