/**
 * Upload and download against a tiny recording HTTP server on loopback: what exactly goes on the wire (headers,
 * ranges), which the emulator tests cannot see.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ComplianceClient } from '../../src/xapi/client.js';
import { XApiError } from '../../src/xapi/errors.js';
import type { ComplianceJob } from '../../src/xapi/types.js';

const TOKEN = 'transfer-test-token';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer, seen: Seen[]) => void;

async function recordingServer(handler: Handler): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body, seen);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

function jobAt(upload: string, download: string, extra: Partial<ComplianceJob> = {}): ComplianceJob {
  const now = Date.now();
  return {
    id: '1600000000000000001',
    type: 'tweets',
    status: 'created',
    resumable: false,
    created_at: new Date(now).toISOString(),
    upload_url: upload,
    upload_expires_at: new Date(now + 900_000).toISOString(),
    download_url: download,
    download_expires_at: new Date(now + 7 * 86_400_000).toISOString(),
    ...extra,
  };
}

const noWait = async () => {};
let dir: string;
const servers: Server[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xapi-transfer-'));
});
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await rm(dir, { recursive: true, force: true });
});

async function serve(handler: Handler) {
  const started = await recordingServer(handler);
  servers.push(started.server);
  return started;
}

describe('storage transfers', () => {
  it('never sends the token to storage URLs and uploads exactly text/plain', async () => {
    const api = await serve((_req, res) => res.end('{}'));
    const storage = await serve((req, res) => {
      if (req.method === 'PUT') return void res.end();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '6' }).end('{}\n{}\n');
    });
    const client = new ComplianceClient({ baseUrl: api.url, token: TOKEN, sleep: noWait });
    const file = join(dir, 'ids.txt');
    await writeFile(file, '1\n2\n3\n');
    const job = jobAt(`${storage.url}/bucket/1/submission/x?X-Goog-Signature=abc`, `${storage.url}/bucket/1/delivery/x?X-Goog-Signature=def`);
    expect(await client.upload(job, file)).toEqual({ bytes: 6 });
    expect(await client.download(job, join(dir, 'out.ndjson'))).toEqual({ bytes: 6 });
    expect(storage.seen.map((s) => s.method)).toEqual(['PUT', 'GET']);
    for (const s of storage.seen) expect(s.headers.authorization).toBeUndefined();
    expect(storage.seen[0]!.headers['content-type']).toBe('text/plain');
    expect(storage.seen[0]!.body.toString()).toBe('1\n2\n3\n');
  });

  it('on an api.x.com byte path, sends the Bearer token only after a 401', async () => {
    const api = await serve((req, res) => {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"title":"Unauthorized","type":"about:blank","status":401}');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{}}');
    });
    const client = new ComplianceClient({ baseUrl: api.url, token: TOKEN, sleep: noWait });
    const file = join(dir, 'ids.txt');
    await writeFile(file, '1\n');
    const job = jobAt(`${api.url}/2/compliance/jobs/1600000000000000001/upload?token=up`, `${api.url}/2/compliance/jobs/1600000000000000001/download?token=down`);
    await client.upload(job, file);
    expect(api.seen.map((s) => s.headers.authorization)).toEqual([undefined, `Bearer ${TOKEN}`]);
  });

  it('does not offer the token to a storage path on the API host, even after a 403', async () => {
    const api = await serve((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/xml' }).end("<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>");
    });
    const client = new ComplianceClient({ baseUrl: api.url, token: TOKEN, sleep: noWait });
    const file = join(dir, 'ids.txt');
    await writeFile(file, '1\n');
    const job = jobAt(`${api.url}/twttr-tweet-compliance/1/submission/x?X-Goog-Signature=abc`, `${api.url}/d`);
    const error = await client.upload(job, file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(XApiError);
    expect((error as XApiError).code).toBe('signature_mismatch');
    expect((error as XApiError).jobId).toBe(job.id);
    expect(api.seen).toHaveLength(1);
    expect(api.seen[0]!.headers.authorization).toBeUndefined();
  });

  it('resumes a cut download with Range and restarts when the server ignores the range', async () => {
    const content = Buffer.from(Array.from({ length: 2000 }, (_, i) => `{"id":"${i}","action":"delete"}\n`).join(''));
    let gets = 0;
    const storage = await serve((req, res) => {
      gets++;
      const range = /bytes=(\d+)-/.exec(req.headers.range ?? '');
      if (gets === 1 || gets === 3) {
        // Promise the whole file, send a part, then cut the connection.
        const from = range ? Number(range[1]) : 0;
        res.writeHead(range ? 206 : 200, {
          'content-length': String(content.length - from),
          ...(range ? { 'content-range': `bytes ${from}-${content.length - 1}/${content.length}` } : {}),
        });
        res.write(content.subarray(from, from + 10_000));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      if (gets === 2) {
        // Resume honoured.
        const from = Number(range![1]);
        res.writeHead(206, { 'content-length': String(content.length - from), 'content-range': `bytes ${from}-${content.length - 1}/${content.length}` });
        res.write(content.subarray(from, from + 5000));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      // Range ignored: the whole file from the start.
      res.writeHead(200, { 'content-length': String(content.length) }).end(content);
    });
    const client = new ComplianceClient({ baseUrl: 'http://127.0.0.1:9', token: TOKEN, sleep: noWait, retries: 5 });
    const dest = join(dir, 'results.ndjson');
    const job = jobAt(`${storage.url}/u`, `${storage.url}/d?X-Goog-Signature=s`);
    expect(await client.download(job, dest)).toEqual({ bytes: content.length });
    expect((await readFile(dest)).equals(content)).toBe(true);
    expect(storage.seen.map((s) => s.headers.range)).toEqual([undefined, 'bytes=10000-', 'bytes=15000-', 'bytes=25000-']);
  });

  it("counts a cut attempt's late file write for that attempt, never as the next attempt's progress", async () => {
    // The libuv thread pool that runs file writes is held — its threads blocked opening FIFOs that have no writer —
    // from the moment the first body bytes go out: their write is still pending when the connection is cut, and
    // lands only when the pool is released, which happens when the next attempt arrives (or after a second).
    const fifos = Array.from({ length: Number(process.env.UV_THREADPOOL_SIZE ?? 4) }, (_, i) => join(dir, `hold-${i}`));
    execFileSync('mkfifo', fifos);
    let held: Promise<FileHandle>[] = [];
    const writers: number[] = [];
    const release = () => {
      if (writers.length === 0) for (const fifo of fifos) writers.push(openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK));
    };
    const content = Buffer.alloc(50_000, 'x');
    let fallback: NodeJS.Timeout | undefined;
    const storage = await serve((req, res) => {
      const attempt = storage.seen.length;
      if (attempt === 1) {
        res.writeHead(200, { 'content-length': String(content.length) });
        held = fifos.map((fifo) => open(fifo, 'r'));
        res.write(content.subarray(0, 10_000));
        setTimeout(() => res.socket?.destroy(), 50);
        fallback = setTimeout(release, 1000);
        return;
      }
      if (attempt === 2) {
        release();
        // Headers, no bytes, then a cut: an attempt that makes no progress at all.
        const from = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
        res.writeHead(from ? 206 : 200, from ? { 'content-range': `bytes ${from}-${content.length - 1}/${content.length}` } : { 'content-length': String(content.length) });
        res.flushHeaders();
        setTimeout(() => res.socket?.destroy(), 300);
        return;
      }
      res.socket?.destroy();
    });
    try {
      const client = new ComplianceClient({ baseUrl: 'http://127.0.0.1:9', token: TOKEN, sleep: noWait, retries: 2 });
      const error = (await client.download(jobAt(`${storage.url}/u`, `${storage.url}/d`), join(dir, 'late.ndjson')).catch((e: unknown) => e)) as XApiError;
      expect(error.code).toBe('network');
      // The second attempt resumed after the bytes the first one wrote, and made no progress: with two retries,
      // three attempts in all (a late write taken for progress earned the allowance back: a fourth).
      expect(storage.seen[1]!.headers.range).toBe('bytes=10000-');
      expect(storage.seen).toHaveLength(3);
    } finally {
      clearTimeout(fallback);
      release();
      for (const handle of await Promise.all(held)) await handle.close();
      for (const fd of writers) closeSync(fd);
    }
  });

  it('gives up on a download after the retries with a network error naming the job', async () => {
    const storage = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x');
      setTimeout(() => res.socket?.destroy(), 10);
    });
    const client = new ComplianceClient({ baseUrl: 'http://127.0.0.1:9', token: TOKEN, sleep: noWait, retries: 2 });
    const job = jobAt(`${storage.url}/u`, `${storage.url}/d`);
    const error = (await client.download(job, join(dir, 'r.ndjson')).catch((e: unknown) => e)) as XApiError;
    expect(error.code).toBe('network');
    expect(error.message).toContain(job.id);
    expect(storage.seen).toHaveLength(3);
    await expect(readFile(join(dir, 'r.ndjson.part'))).rejects.toThrow();
  });

  it('uploads resumably in 256 KiB-multiple chunks and resumes from the offset the session reports', async () => {
    const size = 3 * 256 * 1024 + 1000;
    const content = Buffer.alloc(size, 0x31);
    let stored = Buffer.alloc(0);
    let chunkPuts = 0;
    const storage = await serve((req, res, body) => {
      if (req.method === 'POST') {
        expect(req.headers['x-goog-resumable']).toBe('start');
        return void res.writeHead(201, { location: `${req.url}&upload_id=sess1` }).end();
      }
      const range = req.headers['content-range'] ?? '';
      const query = /^bytes \*\/(\d+)$/.exec(range);
      if (!query) {
        chunkPuts++;
        if (chunkPuts === 2) {
          // Store half the chunk, then fail: the client must ask where to continue.
          stored = Buffer.concat([stored, body.subarray(0, 1000)]);
          return void res.writeHead(503).end();
        }
        stored = Buffer.concat([stored, body]);
      }
      if (stored.length === size) return void res.writeHead(200).end();
      res.writeHead(308, stored.length > 0 ? { range: `bytes=0-${stored.length - 1}` } : {}).end();
    });
    const client = new ComplianceClient({ baseUrl: 'http://127.0.0.1:9', token: TOKEN, sleep: noWait, uploadChunkBytes: 256 * 1024 + 5 });
    const file = join(dir, 'ids.txt');
    await writeFile(file, content);
    const job = jobAt(`${storage.url}/b/1/submission/x?X-Goog-Signature=abc`, `${storage.url}/d`, { resumable: true });
    expect(await client.upload(job, file)).toEqual({ bytes: size });
    expect(stored.equals(content)).toBe(true);
    const ranges = storage.seen.filter((s) => s.method === 'PUT').map((s) => s.headers['content-range']);
    expect(ranges).toEqual([
      `bytes 0-262143/${size}`,
      `bytes 262144-524287/${size}`,
      `bytes */${size}`,
      `bytes 263144-525287/${size}`,
      `bytes 525288-${size - 1}/${size}`,
    ]);
    expect(storage.seen.every((s) => s.headers.authorization === undefined)).toBe(true);
  });

  it('gives up on a resumable session that stores nothing, after the retries, with server_error', async () => {
    const storage = await serve((req, res) => {
      if (req.method === 'POST') return void res.writeHead(201, { location: `${req.url}?upload_id=stuck` }).end();
      res.writeHead(308).end();
    });
    const waits: number[] = [];
    const client = new ComplianceClient({ baseUrl: 'http://127.0.0.1:9', token: TOKEN, retries: 2, sleep: async (ms) => void waits.push(ms) });
    const file = join(dir, 'ids.txt');
    await writeFile(file, '1\n2\n');
    const job = jobAt(`${storage.url}/b/1/submission/x`, `${storage.url}/d`, { resumable: true });
    const error = (await client.upload(job, file).catch((e: unknown) => e)) as XApiError;
    expect(error.code).toBe('server_error');
    expect(error.message).toContain('stored nothing past byte 0');
    expect(storage.seen.map((s) => s.method)).toEqual(['POST', 'PUT', 'PUT', 'PUT']);
    expect(waits).toHaveLength(2);
  });

  it('does not retry a local file error: it is not the network', async () => {
    const storage = await serve((_req, res) => res.end());
    const waits: number[] = [];
    const client = new ComplianceClient({ baseUrl: 'http://127.0.0.1:9', token: TOKEN, sleep: async (ms) => void waits.push(ms) });
    // A folder passes stat() and fails on the first read (EISDIR).
    const error = (await client.upload(jobAt(`${storage.url}/u`, `${storage.url}/d`), dir).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(error.code).toBe('EISDIR');
    expect(waits).toHaveLength(0);
  });

  it('refuses an expired upload URL without a request', async () => {
    const storage = await serve((_req, res) => res.end());
    const client = new ComplianceClient({ baseUrl: 'http://127.0.0.1:9', token: TOKEN, clock: () => Date.now() + 16 * 60_000 });
    const file = join(dir, 'ids.txt');
    await writeFile(file, '1\n');
    const error = (await client.upload(jobAt(`${storage.url}/u`, `${storage.url}/d`), file).catch((e: unknown) => e)) as XApiError;
    expect(error.code).toBe('upload_expired');
    expect(storage.seen).toHaveLength(0);
  });
});
