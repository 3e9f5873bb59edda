#!/usr/bin/env node
// A good neighbour (issue 15): does the archive's own ingester keep writing while a cycle runs? An ingester process
// writes 1,000 rows/s (INSERT OR REPLACE of tweets, one row per transaction, busy_timeout 5 s, WAL with
// synchronous=NORMAL as collectors run it) into the store during `compliance-sync reconcile --now` (tweets and users)
// against the emulator. It prints the ingester's wait per write (p50/p99/max: the time one write takes, waiting for
// the write lock included), its SQLITE_BUSY count, and the cycle's duration: once with reconcile.maxLockMs at its
// default (200) and once with the bound off (maxLockMs 1e9), each on a fresh copy of the same store, in one run.
// Goal: p99 < 200 ms and 0 BUSY with the bound on.
// Each write is BEGIN IMMEDIATE, INSERT, COMMIT (what an autocommit INSERT does), so a long one is split into waiting
// for the lock and the commit, which includes the WAL checkpoint SQLite runs in whichever commit finds the WAL over
// wal_autocheckpoint pages. The slowest writes are matched with the cycle's debug log (what it was doing then), and
// the cycle's last "lock pacing" line says how many transactions it ran, how long they held the lock and how long
// it was left free between them. `--keep` keeps each run's store and cycle log.
//
//   npm run build && node bench/ingester.mjs [--tweets 2000000] [--users 20000] [--dir bench/data] [--rate 1000]
//
// The store is the demo's (src/store/demoData.ts seedStore, default schema), cached in the data directory; the
// emulator's default mix decides what each ID gets (deletions of users cascade to their tweets).
import { fork, spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
  const insert = db.prepare(
    "INSERT OR REPLACE INTO tweets (id, author_id, created_at, text, raw_json) VALUES (?, ?, '2026-01-01T00:00:00.000Z', ?, ?)",
  );
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const rollback = db.prepare('ROLLBACK');
  const waits = [];
  /** Writes over 100 ms: when (epoch ms), the wait for the lock, the commit. */
  const slow = [];
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
    // A write that never got the lock (BUSY) waited for it all along.
    let locked = null;
    let written = null;
    try {
      begin.run();
      locked = performance.now();
      try {
        insert.run(id, 1000n + BigInt(k % 20_000), `ingested ${k}`, `{"id":"${id}"}`);
        written = performance.now();
        commit.run();
      } catch (err) {
        if (db.inTransaction) rollback.run();
        throw err;
      }
    } catch (err) {
      if (err.code === 'SQLITE_BUSY') busy++;
      else other++;
    }
    const t1 = performance.now();
    waits.push(t1 - t0);
    if (t1 - t0 > 100) slow.push({ at: performance.timeOrigin + t0, ms: t1 - t0, lockMs: (locked ?? t1) - t0, commitMs: written === null ? 0 : t1 - written });
  }
  const seconds = (performance.now() - started) / 1000;
  db.close();
  slow.sort((a, b) => b.ms - a.ms);
  process.send({ writes: waits.length, seconds, busy, other, waits: summarize(waits), slow: slow.slice(0, 8), slowCount: slow.length }, () => process.exit(0));
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
  const keep = argv.includes('--keep');
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
          log: { level: 'debug' },
        }),
      );
      const child = fork(fileURLToPath(import.meta.url), ['--child', store, String(rate)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise((r) => setTimeout(r, 1000)); // the ingester is writing before the cycle starts
      const t0 = performance.now();
      const cycleLog = path.join(dir, 'cycle.log');
      const logFd = openSync(cycleLog, 'w');
      const code = await new Promise((resolve) => {
        const proc = spawn(process.execPath, [cli, 'reconcile', '--now', '--config', config], {
          stdio: ['ignore', 'ignore', logFd],
          env: { ...process.env, X_BEARER_TOKEN: TOKEN },
        });
        proc.on('exit', resolve);
      });
      closeSync(logFd);
      const cycleSeconds = (performance.now() - t0) / 1000;
      const report = new Promise((resolve) => child.once('message', resolve));
      child.send('stop');
      const ingested = await report;
      const entries = readCycleLog(cycleLog);
      if (code !== 0) throw new Error(`reconcile --now exited ${code} (${label}); its log: ${cycleLog}`);
      results.push({ label, cycleSeconds, ...ingested, phases: phasesOf(entries), pacing: entries.findLast((e) => e.msg.startsWith('lock pacing')) ?? null });
      for (const w of ingested.slow) w.during = during(entries, w.at);
      log(`ingester: ${label}: cycle ${cycleSeconds.toFixed(1)} s, ${ingested.writes} writes`);
      if (!keep) rmSync(dir, { recursive: true, force: true });
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
  for (const r of results) {
    console.log(`\n${r.label}: cycle phases (from its log): ${r.phases.map((p) => `${p.name} ${(p.ms / 1000).toFixed(1)} s`).join(', ')}`);
    if (r.pacing) {
      const { transactions, heldMs, gapMs, maxHeldMs } = r.pacing;
      console.log(`  paced transactions: ${transactions}, holding the lock ${(heldMs / 1000).toFixed(1)} s (longest ${maxHeldMs} ms), lock left free between them ${(gapMs / 1000).toFixed(1)} s`);
    }
    console.log(`  writes over 100 ms: ${r.slowCount}; the slowest (wait for the lock + commit, what the cycle was doing):`);
    for (const w of r.slow) {
      console.log(`  ${new Date(w.at).toISOString().slice(11, 23)} ${ms(w.ms)} ms = lock ${ms(w.lockMs)} + commit ${ms(w.commitMs)} ms; cycle: ${w.during}`);
    }
  }
  const on = results[0];
  const pass = on.waits.p99 < 200 && on.busy === 0;
  console.log(`\ngoal (bound on): p99 < 200 ms and 0 BUSY: ${pass ? 'met' : 'NOT met'}`);
  if (!pass) process.exitCode = 1;
}

/** The cycle's JSON log lines, with their time as epoch ms. */
function readCycleLog(file) {
  const entries = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const e = JSON.parse(line);
      entries.push({ ...e, at: Date.parse(e.time) });
    } catch {
      // a line cut by the process's end: skipped
    }
  }
  return entries;
}

/** What the cycle last logged before `at` and first after it (which type, which step). */
function during(entries, at) {
  const before = entries.findLast((e) => e.at <= at);
  const after = entries.find((e) => e.at > at);
  const say = (e) => (e ? `${e.type ?? ''} "${e.msg}" ${Math.round(Math.abs(at - e.at))} ms ${e.at <= at ? 'before' : 'after'}` : '-');
  return `after ${say(before)}; before ${say(after)}`;
}

/** Wall time of the cycle's steps, per type: apply (first "apply: start" to the last "apply: done"), close-out, purge. */
function phasesOf(entries) {
  const phases = [];
  for (const type of ['tweets', 'users']) {
    const own = entries.filter((e) => e.type === type);
    const first = (msg) => own.find((e) => e.msg.startsWith(msg))?.at;
    const last = (msg) => own.findLast((e) => e.msg.startsWith(msg))?.at;
    const span = (name, from, to) => from !== undefined && to !== undefined && phases.push({ name: `${type} ${name}`, ms: to - from });
    span('apply', first('apply: start'), last('apply: done'));
    span('close-out (mark clearing)', first('close-out'), first('purge: start') ?? first('cycle closed'));
    span('purge', first('purge: start'), first('purge: FTS'));
  }
  return phases;
}
