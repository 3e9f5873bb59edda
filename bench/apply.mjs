#!/usr/bin/env node
// Benchmark of `apply` (issue 4): applyResultsFile on a generated tweets store and results file, against a bare
// better-sqlite3 loop that reads the same file and runs the same kind of statements with each batch of 50,000 records
// sorted by ID. Every measurement runs in its own child process on its own copy of the store, so the peak RSS
// (process.resourceUsage().maxRSS) is that measurement's alone.
//
//   npx tsc -p . && node bench/apply.mjs [--rows 1000000] [--batch 50000] [--repeat 3] [--dir /tmp/cs-bench]
//
// --rows: stored tweets and results lines (default 1,000,000); --batch: reconcile.batchSize for applyResultsFile
// (default: the config default); --repeat: alternate runs of each, report the medians. Both sides read and parse the
// file: the bare loop with split + JSON.parse, ours with everything (safety-gate scan, validation, rejects, checkpoint
// and audit per batch). Data is deterministic (seeded PRNG) and cached in --dir, so runs compare.
import { spawnSync } from 'node:child_process';
import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : args[at + 1];
};

const REASONS = [
  // [action, reason, share of results]
  ['delete', 'deleted', 0.36],
  ['delete', 'deactivated', 0.02],
  ['delete', 'bounced', 0.02],
  ['delete', 'suspended', 0.22],
  ['delete', 'protected', 0.14],
  ['delete', 'scrub_geo', 0.07],
  ['scrub_geo', 'geo_scrubbed', 0.05],
  ['rehydrate', 'tweet_edited', 0.07],
  ['delete', 'deleted', 0.05], // IDs not in the store
];
const DELETE_REASONS = new Set(['deleted', 'deactivated', 'bounced']);

function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Snowflake-like 19-digit IDs, increasing: ~2019 timestamps, worker and sequence bits. */
function idAt(i) {
  return (1160000000000000000n + BigInt(i) * 3_900_000_000n + BigInt((i * 2654435761) % 4_000_000)).toString();
}

async function generate(dir, rows) {
  const store = path.join(dir, `store-${rows}.db`);
  const results = path.join(dir, `results-${rows}.ndjson`);
  if (existsSync(store) && existsSync(results)) return { store, results };
  rmSync(store, { force: true });
  const { openStore } = await import(path.join(dist, 'store/open.js'));
  const { migrate } = await import(path.join(dist, 'store/migrate.js'));
  const db = openStore(store);
  migrate(db);
  db.exec('DROP INDEX tweets_author_id');
  const insert = db.prepare(
    'INSERT INTO tweets (id, author_id, created_at, text, geo_lat, geo_lon, place_id, raw_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const random = prng(42);
  const chunk = 100_000;
  for (let start = 0; start < rows; start += chunk) {
    db.transaction(() => {
      for (let i = start; i < Math.min(rows, start + chunk); i++) {
        const id = idAt(i);
        const author = String(100000000 + Math.floor(random() * 200000));
        const geo = random() < 0.3;
        const lat = geo ? +(random() * 180 - 90).toFixed(6) : null;
        const lon = geo ? +(random() * 360 - 180).toFixed(6) : null;
        const text = `tweet number ${i} with some words to make it look real #${i % 977}`;
        const raw = `{"id":"${id}","author_id":"${author}","text":"${text}","lang":"en","public_metrics":{"like_count":${i % 113}}${
          geo ? `,"geo":{"place_id":"p${i % 5000}","coordinates":{"type":"Point","coordinates":[${lon},${lat}]}}` : ''
        }}`;
        insert.run(id, author, '2019-08-10T12:22:39.022Z', text, lat, lon, geo ? `p${i % 5000}` : null, raw);
      }
    })();
  }
  db.exec('CREATE INDEX tweets_author_id ON tweets(author_id)');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();

  // Results: each stored ID at most once, a share of unknown IDs, shuffled; blank lines and a few malformed ones.
  const order = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) order[i] = i;
  const shuffle = prng(7);
  for (let i = rows - 1; i > 0; i--) {
    const j = Math.floor(shuffle() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const out = createWriteStream(results);
  const pick = prng(9);
  let text = '';
  for (let n = 0; n < rows; n++) {
    let r = pick();
    let k = 0;
    while (k < REASONS.length - 1 && r >= REASONS[k][2]) r -= REASONS[k++][2];
    const [action, reason] = REASONS[k];
    const unknown = k === REASONS.length - 1;
    const id = unknown ? idAt(rows + n) : idAt(order[n]);
    if (n % 50_000 === 2) text += '\n';
    if (n % 1000 === 999) text += `{"id":"${id}","action":"delete"\n`;
    else text += `{"id":"${id}","action":"${action}","created_at":"2019-08-10T12:22:39.022Z","reason":"${reason}"}\n`;
    if (text.length > 1 << 20) {
      if (!out.write(text)) await once(out, 'drain');
      text = '';
    }
  }
  out.end(text);
  await once(out, 'finish');
  return { store, results };
}

/** Child: our applyResultsFile. */
async function childOurs(store, results, batch) {
  const { openStore } = await import(path.join(dist, 'store/open.js'));
  const { parseConfig } = await import(path.join(dist, 'config/load.js'));
  const { createLogger } = await import(path.join(dist, 'log.js'));
  const { applyResultsFile } = await import(path.join(dist, 'pipeline/reconcile.js'));
  const config = parseConfig(
    { store: { path: store }, reconcile: batch ? { batchSize: Number(batch) } : {} },
    path.join(path.dirname(store), 'config.json'),
  );
  const db = openStore(store);
  const summary = await applyResultsFile({ db, config, type: 'tweets', file: results, logger: createLogger('warn') });
  db.close();
  return { ms: summary.elapsedMs, records: summary.records, state: summary.state, changed: summary.applied };
}

/** Child: the bare loop. Reads and parses the same file, 50,000 records per transaction, sorted by ID. */
async function childBare(store, results) {
  const started = performance.now();
  const db = new Database(store);
  db.defaultSafeIntegers(true);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const del = db.prepare('DELETE FROM tweets WHERE id = ?');
  const mark = db.prepare('UPDATE tweets SET compliance_state = ?, compliance_reason = ?, compliance_at = ? WHERE id = ?');
  const scrub = db.prepare(
    `UPDATE tweets SET geo_lat = NULL, geo_lon = NULL, place_id = NULL, raw_json = CASE WHEN json_valid(raw_json)
     THEN json_remove(raw_json, '$.geo', '$.coordinates', '$.place') ELSE raw_json END WHERE id = ?`,
  );
  const at = new Date().toISOString();
  const byId = (a, b) => a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  let batch = [];
  let records = 0;
  const flush = () => {
    batch.sort(byId);
    db.transaction(() => {
      for (const r of batch) {
        if (r.action === 'scrub_geo' || r.reason === 'scrub_geo' || r.reason === 'geo_scrubbed') scrub.run(r.id);
        else if (r.action === 'rehydrate') mark.run('edited', r.reason, at, r.id);
        else if (DELETE_REASONS.has(r.reason)) del.run(r.id);
        else mark.run(r.reason, r.reason, at, r.id);
      }
    })();
    records += batch.length;
    batch = [];
  };
  let rest = '';
  for await (const chunk of createReadStream(results, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    for (const line of lines) {
      if (!line.trim()) continue;
      let r;
      try {
        r = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof r.id !== 'string') continue;
      batch.push(r);
      if (batch.length === 50_000) flush();
    }
  }
  flush();
  db.close();
  return { ms: Math.round(performance.now() - started), records, state: 'done' };
}

function measure(kind, store, results, extra = []) {
  const copy = `${store}.${kind}.db`;
  for (const suffix of ['', '-wal', '-shm']) rmSync(copy + suffix, { force: true });
  copyFileSync(store, copy);
  // Flush the copy (and the previous run's writes) first: the kernel's writeback would otherwise land on whichever
  // measurement runs next, which made single runs differ by ±30%.
  spawnSync('sync');
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', kind, copy, results, ...extra], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  for (const suffix of ['', '-wal', '-shm']) rmSync(copy + suffix, { force: true });
  if (child.status !== 0) throw new Error(`${kind} child failed (${child.status})`);
  return JSON.parse(child.stdout.trim().split('\n').pop());
}

if (args[0] === '--child') {
  const [, kind, store, results, batch] = args;
  const result = kind === 'ours' ? await childOurs(store, results, batch) : await childBare(store, results);
  result.maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const rows = Number(arg('rows', 1_000_000));
  const batch = arg('batch', '');
  const dir = arg('dir', '/tmp/cs-bench');
  mkdirSync(dir, { recursive: true });
  const t = performance.now();
  const { store, results } = await generate(dir, rows);
  process.stdout.write(`data: ${rows} stored tweets, ${rows} result lines (${((performance.now() - t) / 1000).toFixed(1)} s to prepare)\n`);
  // Alternate the two, --repeat times, and keep each one's median run.
  const repeat = Number(arg('repeat', 1));
  const runs = { bare: [], ours: [] };
  for (let i = 0; i < repeat; i++) {
    runs.bare.push(measure('bare', store, results));
    runs.ours.push(measure('ours', store, results, batch ? [batch] : []));
  }
  const median = (list) => [...list].sort((a, b) => a.ms - b.ms)[Math.floor(list.length / 2)];
  const bare = median(runs.bare);
  const ours = median(runs.ours);
  if (repeat > 1) {
    process.stdout.write(`runs (s): bare ${runs.bare.map((m) => (m.ms / 1000).toFixed(1)).join(' ')} · ours ${runs.ours.map((m) => (m.ms / 1000).toFixed(1)).join(' ')}\n`);
  }
  const rate = (m) => Math.round(m.records / (m.ms / 1000));
  const lines = [
    ['', 'records', 'seconds', 'rows/s', 'peak RSS MB'],
    ['bare loop (50k sorted)', bare.records, (bare.ms / 1000).toFixed(2), rate(bare), bare.maxRssMb],
    [`applyResultsFile (batch ${batch || 'default'})`, ours.records, (ours.ms / 1000).toFixed(2), rate(ours), ours.maxRssMb],
  ];
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => String(l[c]).length)));
  for (const l of lines) process.stdout.write(`${l.map((v, c) => (c ? String(v).padStart(widths[c]) : String(v).padEnd(widths[c]))).join('  ')}\n`);
  process.stdout.write(`ratio (ours / bare rows/s): ${(rate(ours) / rate(bare)).toFixed(2)}  · ours: ${ours.state}, ${JSON.stringify(ours.changed)}\n`);
  writeFileSync(path.join(dir, `last-${rows}.json`), JSON.stringify({ rows, batch: batch || 'default', bare, ours }, null, 2));
}
