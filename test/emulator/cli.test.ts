import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { cleanEnv } from '../helpers/cli.js';
import { CLI, useTempDir } from '../helpers/tmp.js';
import { useEmulators } from './helpers.js';

const tempDir = useTempDir();
const start = useEmulators();

/** Starts `compliance-sync emulator …` and resolves with its URL once it has printed the URL and the token. */
function spawnEmulator(args: string[]) {
  const child = spawn(process.execPath, [CLI, 'emulator', ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    let listening = '';
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      const match = /^emulator listening on (https?:\/\/\S+)$/.exec(line);
      if (match) listening = match[1]!;
      if (listening && line.startsWith('bearer token: ')) resolve(listening);
    });
    void exited.then((code) => reject(new Error(`emulator exited (${code}) before listening: ${stderr}`)));
  });
  return { child, lines, url, exited, stderr: () => stderr };
}

/**
 * `compliance-sync emulator …` to its end, without blocking the event loop (as runCli would). An emulator that
 * wrongly accepted its flags is stopped after 30 s (SIGTERM: it exits 0), so the case fails instead of hanging.
 */
function runEmulatorCli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'emulator', ...args], { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('compliance-sync emulator (spawned)', () => {
  it('prints its real URL and token with --port 0, serves a job, logs one redacted line per request, exits 0 on SIGTERM', async () => {
    const token = 'tok-DISTINCTIVE-4242';
    const run = spawnEmulator(['--port', '0', '--token', token, '--processing-ms', '0', '--seed', 'cli']);
    const url = await run.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toMatch(/:0$/);
    expect(run.lines).toContain(`bearer token: ${token}`);

    const auth = { authorization: `Bearer ${token}` };
    const created = (await (await fetch(`${url}/2/compliance/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"type":"tweets"}' })).json()) as {
      data: { id: string; upload_url: string; download_url: string };
    };
    const upload = await fetch(created.data.upload_url, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: Buffer.from('1460716588177498114\n1460716588177498534\n') });
    expect(upload.status).toBe(200);
    const polled = await fetch(`${url}/2/compliance/jobs/${created.data.id}`, { headers: auth });
    expect(((await polled.json()) as { data: { status: string } }).data.status).toBe('complete');
    const results = await fetch(created.data.download_url);
    expect(results.status).toBe(200);
    await results.arrayBuffer();

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    const logs = run.lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
    const requests = logs.filter((entry) => entry.msg === 'request');
    expect(requests.map((entry) => [entry.method, entry.status])).toEqual([
      ['POST', 200],
      ['PUT', 200],
      ['GET', 200],
      ['GET', 200],
    ]);
    for (const entry of requests) expect(typeof entry.ms).toBe('number');
    const signatures = [created.data.upload_url, created.data.download_url].map((u) => new URL(u).searchParams.get('X-Goog-Signature')!);
    const logText = run.lines.filter((line) => line.startsWith('{')).join('\n') + run.stderr();
    expect(logText).not.toContain(token);
    for (const signature of signatures) expect(logText).not.toContain(signature);
    expect(logText).toContain('X-Goog-Signature=REDACTED');
  });

  it('byte-path mode from the command line: tokens in URLs never reach the log', async () => {
    const run = spawnEmulator(['--port', '0', '--transfer', 'bytepath', '--processing-ms', '0', '--faults', 'api5xx=1', '--log-level', 'info']);
    const url = await run.url;
    const token = /^bearer token: (\S+)$/.exec(run.lines.find((line) => line.startsWith('bearer token: '))!)![1]!;
    expect(token).toMatch(/^[0-9a-f]{48}$/);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    expect((await fetch(`${url}/2/compliance/jobs`, { method: 'POST', headers: auth, body: '{"type":"users"}' })).status).toBeGreaterThanOrEqual(500);
    const job = ((await (await fetch(`${url}/2/compliance/jobs`, { method: 'POST', headers: auth, body: '{"type":"users"}' })).json()) as { data: { upload_url: string } }).data;
    expect((await fetch(job.upload_url, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: Buffer.from('12\n') })).status).toBe(200);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    const logText = run.lines.filter((line) => line.startsWith('{')).join('\n');
    expect(logText).not.toContain(new URL(job.upload_url).searchParams.get('token')!);
    expect(logText).toContain('token=REDACTED');
  });

  it('bad flags are usage errors (exit 64)', async () => {
    const dir = tempDir();
    const cases = [
      ['--transfer', 'ftp'],
      ['--mix', 'deleted=0.9,protected=0.5'],
      ['--mix', 'bounced=0.1'],
      ['--faults', 'bogus=1'],
      ['--faults', 'api5xx'],
      ['--port', '70000'],
      ['--processing-ms', 'soon'],
      ['--rate-limit', '0'],
      ['--tls-cert', path.join(dir, 'cert.pem')],
      ['--rules', path.join(dir, 'missing.json')],
    ];
    // Ten processes that each exit at once: two at a time (the suite's two cores), not one after another.
    const results: { code: number | null; stderr: string }[] = [];
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < cases.length; i = next++) results[i] = await runEmulatorCli(cases[i]!);
    };
    await Promise.all([lane(), lane()]);
    for (const [i, args] of cases.entries()) {
      expect(results[i]!.code, args.join(' ')).toBe(64);
      expect(results[i]!.stderr).toMatch(/^compliance-sync: /);
    }
  });
});

describe('HTTPS', () => {
  it('serves the API and storage over TLS when given a certificate', async (context) => {
    const dir = tempDir();
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    try {
      // An EC key: made at once, where an RSA key takes a quarter of a second of CPU; the TLS serving is the same.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    } catch {
      return context.skip();
    }
    if (!existsSync(cert)) return context.skip();
    const emulator = await start({ tls: { cert: readFileSync(cert), key: readFileSync(key) } });
    expect(emulator.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(`${emulator.url}/2/compliance/jobs`, { method: 'POST', ca: readFileSync(cert), headers: { authorization: `Bearer ${emulator.token}`, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end('{"type":"tweets"}');
    });
    expect((JSON.parse(body) as { data: { upload_url: string } }).data.upload_url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/twttr-tweet-compliance\//);
  });
});
