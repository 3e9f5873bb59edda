#!/usr/bin/env node
// A good neighbour (issue 15): does the archive's own ingester keep writing while a cycle runs? An ingester process
// writes 1,000 rows/s (INSERT OR REPLACE of tweets, one row per autocommit transaction, busy_timeout 5 s, WAL with
// synchronous=NORMAL as collectors run it) into the store during `compliance-sync reconcile --now` (tweets and users)
// against the emulator. It prints the ingester's wait per write (p50/p99/max: the time one INSERT takes, waiting for
// the write lock included), its SQLITE_BUSY count, and the cycle's duration: once with reconcile.maxLockMs at its
// default (200) and once with the bound off (maxLockMs 1e9), each on a fresh copy of the same store, in one run.
// Goal: p99 < 200 ms and 0 BUSY with the bound on.
//
//   npm run build && node bench/ingester.mjs [--tweets 2000000] [--users 20000] [--dir bench/data] [--rate 1000]
//
// The store is the demo's (src/store/demoData.ts seedStore, default schema), cached in the data directory; the
// emulator's default mix decides what each ID gets (deletions of users cascade to their tweets).
import { fork, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cli, startEmulator, TOKEN } from './lib/emulator.mjs';
import { argv, option } from './lib/args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');

if (argv[0] === '--child') await ingest(argv[1], Number(argv[2]));
else await main();

/** The ingester: writes `rate` rows/s on a fixed schedule until told to stop, then reports its waits. */
async function ingest(store, rate) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(store);
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = NORMAL');
  // New tweets above every stored ID (an ingester appends), by authors of the store; IDs as BigInt, never numbers.
  const maxId = db.prepare('SELECT max(id) FROM tweets').safeIntegers(true).pluck().get() ?? 0n;
  const write = db.prepare(
    "INSERT OR REPLACE INTO tweets (id, author_id, created_at, text, raw_json) VALUES (?, ?, '2026-01-01T00:00:00.000Z', ?, ?)",
  );
  const waits = [];
  let busy = 0;
  let other = 0;
  let stop = false;
  process.on('message', (m) => m === 'stop' && (stop = true));
  const started = performance.now();
  for (let k = 0; !stop; k++) {
    const due = started + (k * 1000) / rate;
    const ahead = due - performance.now();
    if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
    else if (k % 64 === 0) await new Promise((r) => setImmediate(r)); // behind schedule: catch up, but hear 'stop'
    const id = maxId + 1n + BigInt(k % 50_000); // a re-ingest after 50,000 rows: REPLACE of rows it wrote
    const t0 = performance.now();
    try {
      write.run(id, 1000n + BigInt(k % 20_000), `ingested ${k}`, `{"id":"${id}"}`);
    } catch (err) {
      if (err.code === 'SQLITE_BUSY') busy++;
      else other++;
    }
    waits.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  db.close();
  process.send({ writes: waits.length, seconds, busy, other, waits: summarize(waits) }, () => process.exit(0));
}

function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0 };
}

async function main() {
  const tweets = Number(option('tweets', 2_000_000));
  const users = Number(option('users', 20_000));
  const rate = Number(option('rate', 1000));
  const dataDir = path.resolve(option('dir', path.join(here, 'data')));
  mkdirSync(dataDir, { recursive: true });
  const log = (line) => process.stderr.write(`${line}\n`);

  const pristine = path.join(dataDir, `ingester-${tweets}-${users}.db`);
  if (!existsSync(pristine)) {
    log(`ingester: seeding ${tweets} tweets, ${users} users (cached as ${pristine})`);
    const { createStore } = await import(path.join(dist, 'store/migrate.js'));
    const { seedStore } = await import(path.join(dist, 'store/demoData.js'));
    const temp = `${pristine}.tmp`;
    for (const s of ['', '-wal', '-shm']) rmSync(temp + s, { force: true });
    const db = createStore(temp);
    seedStore(db, { tweets, users, seed: 7 });
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    renameSync(temp, pristine);
  }

  const emulator = await startEmulator(['--rate-limit', '1000000']);
  const results = [];
  try {
    for (const [label, maxLockMs] of [
      ['bound on (maxLockMs 200)', 200],
      ['bound off (maxLockMs 1e9)', 1e9],
    ]) {
      const dir = path.join(dataDir, `ingester-run-${maxLockMs}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const store = path.join(dir, 'store.db');
      copyFileSync(pristine, store);
      const config = path.join(dir, 'config.json');
      writeFileSync(
        config,
        JSON.stringify({
          store: { path: store },
          api: { baseUrl: emulator.url },
          jobs: { shardSize: 500_000, pollIntervalSeconds: 0.2 },
          reconcile: { maxLockMs, maxDeleteFraction: 1 },
          paths: { work: path.join(dir, 'work') },
          log: { level: 'warn' },
        }),
      );
      const child = fork(fileURLToPath(import.meta.url), ['--child', store, String(rate)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise((r) => setTimeout(r, 1000)); // the ingester is writing before the cycle starts
      const t0 = performance.now();
      const code = await new Promise((resolve) => {
        const proc = spawn(process.execPath, [cli, 'reconcile', '--now', '--config', config], {
          stdio: ['ignore', 'ignore', 'inherit'],
          env: { ...process.env, X_BEARER_TOKEN: TOKEN },
        });
        proc.on('exit', resolve);
      });
      const cycleSeconds = (performance.now() - t0) / 1000;
      const report = new Promise((resolve) => child.once('message', resolve));
      child.send('stop');
      const ingested = await report;
      if (code !== 0) throw new Error(`reconcile --now exited ${code} (${label})`);
      results.push({ label, cycleSeconds, ...ingested });
      log(`ingester: ${label}: cycle ${cycleSeconds.toFixed(1)} s, ${ingested.writes} writes`);
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await emulator.stop();
  }

  const ms = (x) => x.toFixed(1);
  console.log(`\nstore: ${tweets.toLocaleString('en')} tweets, ${users.toLocaleString('en')} users; ingester ${rate} rows/s, busy_timeout 5000 ms`);
  console.log('| run | cycle (reconcile --now, both types) | writes | wait p50 | p99 | max | SQLITE_BUSY |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.label} | ${r.cycleSeconds.toFixed(1)} s | ${r.writes} (${(r.writes / r.seconds).toFixed(0)}/s) | ${ms(r.waits.p50)} ms | ${ms(r.waits.p99)} ms | ${ms(r.waits.max)} ms | ${r.busy}${r.other ? ` (+${r.other} other errors)` : ''} |`);
  }
  const on = results[0];
  const pass = on.waits.p99 < 200 && on.busy === 0;
  console.log(`\ngoal (bound on): p99 < 200 ms and 0 BUSY: ${pass ? 'met' : 'NOT met'}`);
  if (!pass) process.exitCode = 1;
}
