import type { IncomingMessage, ServerResponse } from 'node:http';

/** The request body grew past the allowed size. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

/** The client went away before sending the whole body. */
class BodyAbortedError extends Error {
  constructor() {
    super('request aborted before the body was complete');
  }
}

/**
 * Feeds the body to `onChunk` as it arrives; resolves when it is complete. Past `limit` bytes, or if the client
 * aborts, rejects (and the caller keeps nothing: an interrupted upload stores nothing, like a failed GCS request).
 */
export function consumeBody(req: IncomingMessage, limit: number, onChunk: (chunk: Buffer) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    let size = 0;
    let done = false;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      req.removeListener('data', onData);
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        return fail(new BodyTooLargeError(limit));
      }
      try {
        onChunk(chunk);
      } catch (err) {
        fail(err as Error);
      }
    };
    req.on('data', onData);
    req.once('end', () => {
      if (done) return;
      done = true;
      resolve(size);
    });
    req.once('aborted', () => fail(new BodyAbortedError()));
    req.once('error', (err) => fail(err));
    req.once('close', () => {
      if (!req.complete) fail(new BodyAbortedError());
    });
  });
}

/** Reads the whole body into one Buffer (API bodies and resumable chunks). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await consumeBody(req, limit, (chunk) => chunks.push(chunk));
  return Buffer.concat(chunks);
}

/** Answers before reading the body: discard what the client still sends and close, so it is not mistaken for the next request. */
export function discardBody(req: IncomingMessage, res: ServerResponse): void {
  const hasBody = (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.complete && !res.headersSent) res.setHeader('connection', 'close');
  req.resume();
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-cache, no-store, max-age=0',
  });
  res.end(text);
}

export function sendXml(res: ServerResponse, status: number, xml: string): void {
  res.writeHead(status, { 'content-type': 'application/xml; charset=UTF-8', 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
}

/** A parsed `Range` header: a satisfiable [start, end] (inclusive), `unsatisfiable`, or null to send the whole body. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null; // multi-range or another unit: ignoring the header is allowed (https://www.rfc-editor.org/rfc/rfc9110#section-14.2)
  const [, from, to] = match as unknown as [string, string, string];
  if (from === '' && to === '') return null;
  let start: number;
  let end: number;
  if (from === '') {
    start = Math.max(0, size - Number(to));
    end = size - 1;
  } else {
    start = Number(from);
    end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

export interface ServedObject {
  body: Buffer;
  headers: Record<string, string | number>;
  /** Send the headers with the full length, half the bytes, then drop the connection. */
  cut: boolean;
}

/** Serves a stored object with `Range` support (206 + Content-Range) so a client can resume a cut download. */
export function serveObject(req: IncomingMessage, res: ServerResponse, object: ServedObject): void {
  const size = object.body.length;
  const range = parseRange(req.headers.range, size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': 0 });
    res.end();
    return;
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : size - 1;
  const part = object.body.subarray(start, end + 1);
  res.writeHead(range ? 206 : 200, {
    ...object.headers,
    'accept-ranges': 'bytes',
    'content-length': part.length,
    ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (object.cut && part.length >= 2) {
    res.write(part.subarray(0, Math.floor(part.length / 2)), () => res.destroy());
    return;
  }
  res.end(part);
}
