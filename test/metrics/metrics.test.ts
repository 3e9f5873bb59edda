import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { durationMs } from '../../src/config/duration.js';
import { parseConfig } from '../../src/config/load.js';
import { parsePrometheusText, sampleValue, sumOf } from '../helpers/promText.js';
import { REPO_ROOT, useTempDir } from '../helpers/tmp.js';
import { makeWorld, spawnCli, waitForOutput, useDaemonWorlds } from '../helpers/world.js';

const tempDir = useTempDir();
const { worlds, daemons } = useDaemonWorlds();

const FAMILIES = [
  'compliance_sync_cycles_total',
  'compliance_sync_cycle_running',
  'compliance_sync_shards',
  'compliance_sync_jobs_total',
  'compliance_sync_api_requests_total',
  'compliance_sync_rate_limit_waits_total',
  'compliance_sync_rate_limit_wait_seconds_total',
  'compliance_sync_result_lines_total',
  'compliance_sync_rows_changed_total',
  'compliance_sync_apply_rows_per_second',
  'compliance_sync_last_success_timestamp_seconds',
  'compliance_sync_coverage_ratio',
  'compliance_sync_oldest_unchecked_age_seconds',
  'compliance_sync_store_size_bytes',
  'compliance_sync_hook_deliveries_total',
];

const count = (text: string, needle: string) => text.split(needle).length - 1;

describe('metrics.listen (the daemon, spawned, scraped over loopback)', () => {
  it('serves every family with plausible values, and /healthz turns 200 once each scheduled type has closed a cycle', async () => {
    const w = await makeWorld(tempDir(), {
      tweets: 900,
      users: 90,
      // Two 429s (the server says the window is spent for a second): the client waits, and the metrics count it.
      emulator: { faults: { rate429: 2 } },
      config: {
        schedule: { cron: '0 3 * * *' },
        jobs: { shardSize: 400, pollIntervalSeconds: 0.1 },
        metrics: { listen: '127.0.0.1:0' },
      },
    });
    worlds.push(w);
    const started = Date.now() / 1000;
    const daemon = spawnCli(['run', '--config', w.configPath], w.env);
    daemons.push(daemon);
    await waitForOutput(daemon, (text) => text.includes('"msg":"daemon started"') && text.includes('"msg":"metrics listening"'), 'stdout');
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)\/metrics"/.exec(daemon.stdout())![1]!;

    const before = await fetch(`${url}/healthz`);
    expect(before.status).toBe(503);
    expect(await before.text()).toContain('no tweets cycle has closed yet');
    expect((await fetch(`${url}/nothing`)).status).toBe(404);

    daemon.child.kill('SIGUSR1');
    await waitForOutput(daemon, (text) => count(text, '"msg":"cycle closed"') >= 2, 'stdout');

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toMatch(/^ok\ntweets: last cycle closed \d+ s ago\nusers: last cycle closed \d+ s ago\n$/);

    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const families = parsePrometheusText(await response.text());
    for (const name of FAMILIES) expect(families.has(name), name).toBe(true);
    for (const name of FAMILIES) expect(families.get(name)!.help, name).not.toBe('');

    for (const type of ['tweets', 'users']) {
      expect(sampleValue(families, 'compliance_sync_cycles_total', { type, outcome: 'closed' })).toBe(1);
      expect(sampleValue(families, 'compliance_sync_cycle_running', { type })).toBe(0);
      expect(sampleValue(families, 'compliance_sync_coverage_ratio', { type })).toBe(1);
      expect(sampleValue(families, 'compliance_sync_oldest_unchecked_age_seconds', { type })).toBe(0);
      const lastSuccess = sampleValue(families, 'compliance_sync_last_success_timestamp_seconds', { type });
      expect(lastSuccess).toBeGreaterThan(started);
      expect(lastSuccess).toBeLessThanOrEqual(Date.now() / 1000);
      expect(sampleValue(families, 'compliance_sync_apply_rows_per_second', { type })).toBeGreaterThan(0);
    }
    // 900 tweets in shards of 400: three shards, all applied; 90 users: one.
    expect(sampleValue(families, 'compliance_sync_shards', { type: 'tweets', state: 'applied' })).toBe(3);
    expect(sampleValue(families, 'compliance_sync_shards', { type: 'users', state: 'applied' })).toBe(1);
    expect(sampleValue(families, 'compliance_sync_jobs_total', { type: 'tweets', outcome: 'created' })).toBe(3);
    expect(sampleValue(families, 'compliance_sync_jobs_total', { type: 'tweets', outcome: 'failed' })).toBe(0);
    expect(sampleValue(families, 'compliance_sync_api_requests_total', { endpoint: 'create', status: '200' })).toBe(4);
    expect(sampleValue(families, 'compliance_sync_api_requests_total', { endpoint: 'upload', status: 'ok' })).toBe(4);
    expect(sampleValue(families, 'compliance_sync_api_requests_total', { endpoint: 'download', status: 'ok' })).toBe(4);
    expect(sumOf(families, 'compliance_sync_api_requests_total', { status: '429' })).toBe(2);
    expect(sumOf(families, 'compliance_sync_rate_limit_waits_total')).toBeGreaterThanOrEqual(2);
    expect(sumOf(families, 'compliance_sync_rate_limit_wait_seconds_total')).toBeGreaterThan(0);

    // The metrics agree with the ledger, as `status --json` reads it under the same names.
    const status = spawnCli(['status', '--json', '--config', w.configPath], w.env);
    expect((await status.exit).code).toBe(0);
    const snapshot = JSON.parse(status.stdout()).metrics;
    for (const type of ['tweets', 'users'] as const) {
      const lines = snapshot.types[type].result_lines_total as { reason: string; action: string; count: number }[];
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) {
        expect(sampleValue(families, 'compliance_sync_result_lines_total', { type, reason: line.reason, action: line.action })).toBe(line.count);
      }
      expect(snapshot.types[type].coverage_ratio).toBe(1);
      expect(snapshot.types[type].jobs_total.created).toBe(sampleValue(families, 'compliance_sync_jobs_total', { type, outcome: 'created' }));
    }
    const deletedTweets = sampleValue(families, 'compliance_sync_rows_changed_total', { table: 'tweets', cause: 'delete' });
    expect(deletedTweets).toBeGreaterThan(0);
    expect(deletedTweets).toBe(
      snapshot.types.tweets.rows_changed_total.find((row: { cause: string }) => row.cause === 'delete').count,
    );
    expect(sampleValue(families, 'compliance_sync_store_size_bytes')).toBe(snapshot.store_size_bytes);
    expect(snapshot.store_size_bytes).toBeGreaterThan(100_000);

    daemon.child.kill('SIGTERM');
    expect(await daemon.exit).toEqual({ code: 0, signal: null });
  }, 120_000);

  it('refuses a non-loopback metrics.listen unless allowed, naming the field', () => {
    const parse = (metrics: Record<string, unknown>) => parseConfig({ store: { path: 'x.db' }, metrics }, '/tmp/config.json', {});
    expect(() => parse({ listen: '0.0.0.0:9464' })).toThrow(/metrics\.listen: must be a loopback address .* \(got "0\.0\.0\.0:9464"\)/);
    expect(() => parse({ listen: '9464' })).toThrow(/metrics\.listen: must be host:port/);
    expect(parse({ listen: '0.0.0.0:9464', allowNonLoopback: true }).metrics.listen).toBe('0.0.0.0:9464');
    for (const listen of ['127.0.0.1:9464', '[::1]:9464', 'localhost:9464']) expect(parse({ listen }).metrics.listen).toBe(listen);
    expect(parse({}).metrics.listen).toBeNull();
    const audit = (maxAge: string) => parseConfig({ store: { path: 'x.db' }, audit: { maxAge } }, '/tmp/config.json', {});
    expect(audit('36h').audit.maxAge).toBe('36h');
    expect(durationMs(audit('2w').audit.maxAge)).toBe(14 * 86_400_000);
    expect(() => audit('30 days')).toThrow(/audit\.maxAge: must be a whole number of m, h, d or w/);
  });

  it('can listen on loopback under the shipped unit: IPv4 and IPv6 sockets allowed, no IP address filter', () => {
    const unit = readFileSync(path.join(REPO_ROOT, 'systemd', 'compliance-sync.service'), 'utf8');
    const families = /^RestrictAddressFamilies=(.*)$/m.exec(unit)![1]!.split(/\s+/);
    expect(families).toEqual(expect.arrayContaining(['AF_INET', 'AF_INET6']));
    expect(unit).not.toMatch(/^(IPAddressDeny|PrivateNetwork|SocketBindDeny)=/m);
  });
});
