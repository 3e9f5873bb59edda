import http from 'node:http';
import { afterEach } from 'vitest';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/server.js';

/** Emulators started by a test, closed after it. */
export function useEmulators(): (options?: EmulatorOptions) => Promise<Emulator> {
  const running: Emulator[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((emulator) => emulator.close()));
  });
  return async (options = {}) => {
    const emulator = await startEmulator({ processingMs: 0, ...options });
    running.push(emulator);
    return emulator;
  };
}

/** A controllable clock for the lazy state machine. */
export function manualClock(start = Date.parse('2026-09-25T12:00:00.000Z')): { now: () => number; advance: (ms: number) => void } {
  let now = start;
  return { now: () => now, advance: (ms) => void (now += ms) };
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** One API call with the emulator's bearer token (or the given auth header, or none). */
export async function api(
  emulator: Emulator,
  method: string,
  path: string,
  body?: unknown,
  auth: string | null = `Bearer ${emulator.token}`,
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (auth !== null) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${emulator.url}${path}`, { method, headers, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export async function createJob(emulator: Emulator, body: Record<string, unknown> = { type: 'tweets' }): Promise<any> {
  const reply = await api(emulator, 'POST', '/2/compliance/jobs', body);
  if (reply.status !== 200) throw new Error(`create failed: ${reply.status} ${reply.text}`);
  return reply.json.data;
}

/** PUT bytes with an exact Content-Type (a Buffer body, so fetch adds no charset). */
export async function put(url: string, body: Buffer | string, contentType: string | null = 'text/plain', extra: Record<string, string> = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...extra };
  if (contentType !== null) headers['content-type'] = contentType;
  const res = await fetch(url, { method: 'PUT', headers, body: typeof body === 'string' ? Buffer.from(body) : body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: safeJson(text) };
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<Reply & { bytes: Buffer }> {
  const res = await fetch(url, { headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  return { status: res.status, headers: res.headers, text, json: safeJson(text), bytes };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Snowflake-looking IDs (2021), one per line. */
export function idsFile(count: number, start = 1460716588177498114n, eol = '\n'): { ids: string[]; body: Buffer } {
  const ids = Array.from({ length: count }, (_, i) => (start + BigInt(i) * 7919n).toString());
  return { ids, body: Buffer.from(ids.join(eol) + eol) };
}

/** Records of a results file: blank lines skipped. */
export function records(body: string): any[] {
  return body
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

/** A raw node:http request, for what fetch hides (partial bodies, dropped connections). */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string | number>; body?: Buffer; abortAfterBytes?: number },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete });
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', (err) => (options.abortAfterBytes !== undefined ? resolve({ status: 0, headers: {}, body: Buffer.alloc(0), complete: false }) : reject(err)));
    if (options.abortAfterBytes !== undefined && options.body) {
      // Send part of the body, then drop the connection, as a client cut off mid-upload.
      req.write(options.body.subarray(0, options.abortAfterBytes), () => setTimeout(() => req.destroy(), 20));
    } else {
      req.end(options.body);
    }
  });
}
