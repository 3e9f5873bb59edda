/**
 * A run full of successes and failures with a distinctive token: neither the token nor any signed query value may
 * reach a log line, an error message, a serialized error or its inspected form (cause and stack included).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/server.js';
import { createLogger } from '../../src/log.js';
import { ComplianceClient } from '../../src/xapi/client.js';
import type { ComplianceJob } from '../../src/xapi/types.js';

const TOKEN = 'SECRET-TOKEN-do-not-log-12345';
const WRONG_TOKEN = 'WRONG-SECRET-do-not-log-67890';

let dir: string;
const emulators: Emulator[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xapi-secrets-'));
});
afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
  await rm(dir, { recursive: true, force: true });
});

/** A port nobody listens on: connection refused. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

it('never logs or reports the token or a signed URL value', async () => {
  const lines: string[] = [];
  const logger = createLogger('trace', { write: (line: string) => void lines.push(line) });
  const reports: string[] = [];
  const secrets = new Set<string>([TOKEN, WRONG_TOKEN]);
  const remember = (job: ComplianceJob) => {
    for (const url of [job.upload_url, job.download_url]) {
      for (const [key, value] of new URL(url).searchParams) {
        if (/^(x-goog-signature|x-goog-credential|token)$/i.test(key)) secrets.add(value);
      }
    }
    return job;
  };
  const capture = async (promise: Promise<unknown>) => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    const e = error as Error;
    reports.push(e.message, JSON.stringify(e), inspect(e, { depth: 10 }), String(e.stack), String(e.cause));
  };
  const time = { now: Date.parse('2026-10-01T08:00:00.000Z') };
  const clock = () => time.now;
  const sleep = async (ms: number) => {
    time.now += ms;
    await new Promise((resolve) => setImmediate(resolve));
  };
  const file = join(dir, 'ids.txt');
  await writeFile(file, Array.from({ length: 40_000 }, (_, i) => String(1_600_000_000_000_000_000n + BigInt(i))).join('\n'));

  for (const transfer of ['gcs', 'bytepath'] as const) {
    const emulator = await startEmulator({ port: 0, token: TOKEN, clock, processingMs: 5000, transfer, faults: { api5xx: { count: 1 }, rate429: { count: 1 }, cutDownload: { count: 1 } } });
    emulators.push(emulator);
    const options = { baseUrl: emulator.url, token: TOKEN, clock, sleep, logger, uploadChunkBytes: 256 * 1024 };
    const client = new ComplianceClient(options);

    // The happy path, through a 429, a 5xx and a cut download.
    await client.listJobs('tweets');
    const job = remember(await client.createJob({ type: 'tweets', resumable: transfer === 'gcs' }));
    emulator.setFaults({ uploadReject: { count: 1 } });
    await client.upload(job, file);
    let done = job;
    while (done.status === 'created' || done.status === 'in_progress') {
      await sleep(5000);
      done = remember(await client.getJob(job.id));
    }
    emulator.setFaults({ cutDownload: { count: 1 } });
    await client.download(done, join(dir, `${transfer}.ndjson`));

    // Failures of every kind.
    const users = remember(await client.createJob({ type: 'users' }));
    await capture(client.createJob({ type: 'users' })); // 409
    await capture(client.download(users, join(dir, 'early.ndjson'))); // not ready
    const tampered = new URL(users.upload_url);
    for (const key of ['X-Goog-Signature', 'token']) if (tampered.searchParams.has(key)) tampered.searchParams.set(key, `${tampered.searchParams.get(key)}ff`);
    secrets.add(tampered.searchParams.get('X-Goog-Signature') ?? tampered.searchParams.get('token')!);
    await capture(client.upload({ ...users, upload_url: tampered.toString() }, file)); // 403 (byte path: retried with Bearer)
    await capture(new ComplianceClient({ ...options, token: WRONG_TOKEN }).listJobs('users')); // 401
    const port = await deadPort();
    await capture(new ComplianceClient({ ...options, baseUrl: `http://127.0.0.1:${port}`, retries: 1 }).getJob('1')); // network
    const deadUrl = (url: string) => {
      const moved = new URL(url);
      moved.port = String(port);
      return moved.toString();
    };
    await capture(client.upload({ ...users, resumable: false, upload_url: deadUrl(users.upload_url) }, file)); // storage network
    await capture(client.download({ ...done, download_url: deadUrl(done.download_url) }, join(dir, 'dead.ndjson')));
    time.now += 16 * 60_000;
    await capture(client.upload(users, file)); // expired, no request
  }

  if (process.env.SHOW_SECRETS_RUN) process.stderr.write(`${[...lines, ...reports].join("\n")}\n`);
  expect(lines.length).toBeGreaterThan(20);
  expect(reports.length).toBeGreaterThan(40);
  const everything = [...lines, ...reports].join('\n');
  for (const secret of secrets) expect(everything).not.toContain(secret);
  expect(everything).not.toMatch(/X-Goog-Signature=(?!REDACTED)/i);
  expect(everything).not.toMatch(/[?&]token=(?!REDACTED)/);
  expect(everything).not.toMatch(/upload_id=(?!REDACTED)/);
  expect(everything).not.toMatch(/Bearer /);
  // The logs are still useful: which request, which status.
  expect(lines.some((l) => l.includes('"status":429'))).toBe(true);
  expect(lines.some((l) => /"url":"http:\/\/127\.0\.0\.1:\d+\/2\/compliance\/jobs/.test(l))).toBe(true);
});

it('redacts the token from a server that echoes our headers in its error text (400, 401, 403, 500), in errors and logs', async () => {
  const { createServer: createHttpServer } = await import('node:http');
  const ECHOED = 'ECHOED-SECRET-token-abcdef-99999';
  let status = 400;
  const server = createHttpServer((req, res) => {
    // The worst server: it quotes the Authorization header, raw and in a JSON dump of every header, and the URL.
    const detail = `rejected Authorization: ${req.headers.authorization}; headers ${JSON.stringify(req.headers)}; token ${ECHOED}`;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ title: `Echo ${req.headers.authorization}`, detail, errors: [{ message: detail }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    const lines: string[] = [];
    const logger = createLogger('trace', { write: (line: string) => void lines.push(line) });
    const client = new ComplianceClient({ baseUrl: `http://127.0.0.1:${port}`, token: ECHOED, logger, retries: 1, sleep: async () => undefined });
    const texts: string[] = [];
    for (status of [400, 401, 403, 500]) {
      const error = (await client.getJob('1').then(
        () => undefined,
        (e: unknown) => e,
      )) as Error;
      expect(error).toBeInstanceOf(Error);
      texts.push(error.message, JSON.stringify(error), inspect(error, { depth: 10 }));
      // What the cycle engine does with a temporary failure: a warning with the error's text.
      logger.warn({ err: error.message, detail: (error as { detail?: string }).detail }, `step failed: ${error.message}`);
    }
    // Second layer: a line built from a server's words without XApiError still comes out clean.
    logger.warn({ echoed: `Authorization: Bearer ${ECHOED}`, url: `https://storage.example/x?X-Goog-Signature=abc123def&a=1` }, `raw ${ECHOED}`);
    const everything = [...texts, ...lines].join('\n');
    expect(texts.join('\n')).toContain('HTTP 403');
    expect(everything).not.toContain(ECHOED);
    expect(everything).not.toContain('abc123def');
    expect(everything).toContain('[redacted]');
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
