#!/usr/bin/env node
// Daemon soak: does `compliance-sync run` keep its memory flat across many cycles? A long-lived daemon that grows a
// little per cycle is the failure a one-shot benchmark cannot see. This starts the emulator (own process), a demo store
// of tweets and users, and the daemon on a schedule of every few seconds for both types; at each cycle's close it reads
// the daemon's RSS from /proc and its live heap after a full GC (bench/lib/live-heap.mjs), then prints both per type
// with their trend. The forced GCs flatten the RSS sawtooth a daemon otherwise shows between full collections.
//   npm run bench:soak -- [--minutes 5] [--tweets 200000] [--users 20000] [--every 15] [--metrics]
// --metrics turns metrics.listen on (loopback) and scrapes /metrics and /healthz every second, as Prometheus would.
// The emulator's mix has no deletions, so every cycle sees the same store: a steady state, not a shrinking one.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cli, startEmulator, stopProcess, TOKEN } from './lib/emulator.mjs';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const at = argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(argv[at + 1]);
};
const minutes = option('minutes', 5);
const tweets = option('tweets', 200_000);
const users = option('users', 20_000);
const every = option('every', 15);
const withMetrics = argv.includes('--metrics');
const log = (line) => process.stderr.write(`${line}\n`);
const fmt = (x) => x.toFixed(0);

const dir = mkdtempSync(path.join(os.tmpdir(), 'compliance-sync-soak-'));
const store = path.join(dir, 'soak.db');
{
  const { createStore } = await import(path.join(dist, 'store/migrate.js'));
  const { seedStore } = await import(path.join(dist, 'store/demoData.js'));
  const db = createStore(store);
  seedStore(db, { tweets, users, seed: 7 });
  db.close();
}
const emulator = await startEmulator(['--rate-limit', '1000000', '--mix', 'deleted=0,deactivated=0,protected=0.03,suspended=0.02,scrub_geo=0.02']);
const configFile = path.join(dir, 'config.json');
writeFileSync(
  configFile,
  JSON.stringify({
    store: { path: store },
    api: { baseUrl: emulator.url },
    schedule: { cron: `*/${every} * * * * *`, types: ['tweets', 'users'] },
    jobs: { shardSize: 50_000, pollIntervalSeconds: 0.2 },
    paths: { work: path.join(dir, 'work') },
    ...(withMetrics ? { metrics: { listen: '127.0.0.1:0' } } : {}),
  }),
);

log(`soak: ${tweets} tweets, ${users} users, a cycle of each type every ${every} s, for ${minutes} min (data in ${dir})`);
const liveHeap = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'live-heap.mjs');
const daemon = spawn(process.execPath, ['--expose-gc', '--import', liveHeap, cli, 'run', '--config', configFile], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, X_BEARER_TOKEN: TOKEN },
});
const rssMb = () => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return NaN; // exited between samples
  }
};
let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, rssMb() || 0)), 250);
sampler.unref();
const closes = [];
const started = Date.now();
let scrapes = 0;
let scraper;
readline.createInterface({ input: daemon.stdout }).on('line', (line) => {
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return;
  }
  if (entry.level >= 50) log(`daemon: ${line}`);
  if (entry.msg === 'metrics listening') {
    const base = entry.url.replace(/\/metrics$/, '');
    scraper = setInterval(() => {
      Promise.all([fetch(`${base}/metrics`), fetch(`${base}/healthz`)])
        .then((responses) => Promise.all(responses.map((r) => r.text())))
        .then(() => scrapes++, (err) => log(`scrape failed: ${err.message}`));
    }, 1000);
    return;
  }
  if (entry.msg === 'bench live heap') {
    // Two closes in quick succession can share one signal: the figure is then for both.
    for (const [n, close] of closes.entries()) {
      if (close.liveHeap !== undefined) continue;
      close.liveHeap = entry.liveHeapMb;
      log(`  cycle ${n + 1} (${close.type}) closed at ${close.at} s: RSS ${fmt(close.rss)} MB, live heap ${close.liveHeap.toFixed(1)} MB, peak so far ${fmt(peak)} MB`);
    }
    return;
  }
  if (entry.msg !== 'cycle closed') return;
  const rss = rssMb();
  peak = Math.max(peak, rss || 0);
  closes.push({ type: entry.type, rss, at: Math.round((Date.now() - started) / 1000) });
  daemon.kill('SIGWINCH'); // the live heap after a full GC, for this close
});

await new Promise((resolve) => setTimeout(resolve, minutes * 60_000));
clearInterval(sampler);
clearInterval(scraper);
await stopProcess(daemon);
await emulator.stop();
rmSync(dir, { recursive: true, force: true });

if (closes.length < 4) {
  console.log(`only ${closes.length} cycles closed in ${minutes} min: run longer (--minutes) or more often (--every)`);
  process.exit(1);
}
// Per type (a tweets cycle closes higher than a users one), the first close of each left out as warm-up: the least-squares
// trend of RSS at close, per 10 cycles of that type.
const trend = (list, field) => {
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const mx = mean(list.map((_, i) => i));
  const my = mean(list.map((c) => c[field]));
  return list.reduce((a, c, i) => a + (i - mx) * (c[field] - my), 0) / list.reduce((a, _, i) => a + (i - mx) ** 2, 0);
};
const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
console.log(`compliance-sync daemon soak — ${os.availableParallelism()} cores, Node ${process.version}`);
console.log(`${tweets} tweets, ${users} users, both types every ${every} s, ${minutes} min: ${closes.length} cycles closed, peak RSS ${fmt(peak)} MB${withMetrics ? `, metrics on (${scrapes} scrapes of /metrics and /healthz)` : ''}\n`);
console.log('| type | cycles | RSS at first close, MB | RSS at later closes, MB (min / median / max) | RSS trend, MB per 10 cycles | live heap after GC, MB (2nd close → last) | live heap trend, MB per 10 cycles |');
console.log('|---|--:|--:|---|--:|---|--:|');
for (const type of ['tweets', 'users']) {
  const [first, ...later] = closes.filter((c) => c.type === type);
  if (later.length < 2) continue;
  const sorted = later.map((c) => c.rss).sort((a, b) => a - b);
  const spread = `${fmt(sorted[0])} / ${fmt(sorted[Math.floor(sorted.length / 2)])} / ${fmt(sorted[sorted.length - 1])}`;
  const heaps = later.filter((c) => c.liveHeap !== undefined);
  const heap = heaps.length < 2 ? '- | -' : `${heaps[0].liveHeap.toFixed(1)} → ${heaps.at(-1).liveHeap.toFixed(1)} | ${signed(trend(heaps, 'liveHeap') * 10)}`;
  console.log(`| ${type} | ${later.length + 1} | ${fmt(first.rss)} | ${spread} | ${signed(trend(later, 'rss') * 10)} | ${heap} |`);
}
