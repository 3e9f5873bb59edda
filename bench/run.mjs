#!/usr/bin/env node
// compliance-sync benchmarks (issue 7): every stage against its ceiling (and a peer), in one run, so ratios hold on a
// noisy machine. `npm run bench` (full: 1M and 5M, cycle on 2M) or `npm run bench -- --quick` (200k, no 5M).
// Options: --quick, --dir DIR (data; default bench/data), --only export,parse,apply,download,cycle, --repeat N (apply
// pairs; default 1). See bench/README.md for what each figure means.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeIdFile, makeResults, makeStore } from './lib/data.mjs';
import { cli, startEmulator, TOKEN } from './lib/emulator.mjs';
import { argv, option } from './lib/args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const dist = path.join(root, 'dist');
const childScript = path.join(here, 'lib', 'child.mjs');

const flag = (name) => argv.includes(`--${name}`);
const quick = flag('quick');
const dataDir = path.resolve(option('dir', path.join(here, 'data')));
const only = new Set(option('only', 'export,parse,apply,download,cycle').split(','));
const repeat = Number(option('repeat', 1));
const sizes = option('sizes', null)?.split(',').map(Number) ?? (quick ? [200_000] : [1_000_000, 5_000_000]);
const cycleSize = Number(option('cycle-size', quick ? 200_000 : 2_000_000));
mkdirSync(dataDir, { recursive: true });

const log = (line) => process.stderr.write(`${line}\n`);
const fmtN = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(n % 1e6 ? 1 : 0)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(n));

function machine() {
  const sqlite = spawnSync('sqlite3', ['--version'], { encoding: 'utf8' }).stdout.trim().split(' ').slice(0, 2).join(' ');
  let disk = '';
  try {
    disk = execFileSync('df', ['-h', '--output=source,size', dataDir], { encoding: 'utf8' }).trim().split('\n').pop().replace(/\s+/g, ' ');
  } catch {
    // informational only
  }
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? '?',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    sqlite3: sqlite,
    betterSqlite3: JSON.parse(readFileSync(path.join(root, 'node_modules/better-sqlite3/package.json'), 'utf8')).version,
    twitterApiV2: JSON.parse(readFileSync(path.join(root, 'node_modules/twitter-api-v2/package.json'), 'utf8')).version,
    disk,
    loadAvg: os.loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

/** Writeback of earlier stages would otherwise land on whichever measurement runs next. */
const settle = () => spawnSync('sync');

/** Runs one measurement in its own process; returns its JSON line. */
function child(stage, args, env = {}) {
  settle();
  const run = spawnSync(process.execPath, [childScript, stage, JSON.stringify(args)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    maxBuffer: 1 << 24,
  });
  if (run.status !== 0) throw new Error(`${stage} failed (exit ${run.status}):\n${run.stderr.slice(-3000)}`);
  return JSON.parse(run.stdout.trim().split('\n').pop());
}

const rows = [];
/** One row of the table. `rows` is the records (or IDs) handled, `bytes` the input or output size. */
function record(stage, variant, size, m, note = '') {
  const s = m.ms / 1000;
  const row = {
    stage,
    variant,
    size,
    rows: m.rows ?? null,
    seconds: +s.toFixed(2),
    rowsPerSec: m.rows ? Math.round(m.rows / s) : null,
    mbPerSec: m.bytes ? +(m.bytes / 1e6 / s).toFixed(1) : null,
    peakRssMb: m.maxRssMb ?? null,
    note: note || m.error || '',
  };
  rows.push(row);
  log(`  ${stage} ${variant} ${fmtN(size)}: ${row.seconds} s, ${row.rowsPerSec ?? '-'} rows/s, ${row.peakRssMb} MB${row.note ? ` (${row.note})` : ''}`);
  return row;
}
const median = (list) => [...list].sort((a, b) => a.ms - b.ms)[Math.floor(list.length / 2)];

function copyStore(from, to) {
  for (const s of ['', '-wal', '-shm']) rmSync(to + s, { force: true });
  copyFileSync(from, to);
  return to;
}
const removeStore = (file) => {
  for (const s of ['', '-wal', '-shm']) rmSync(file + s, { force: true });
};

// ---------------------------------------------------------------------------------------------------------------
const started = performance.now();
const info = machine();
log(`compliance-sync bench (${quick ? 'quick' : 'full'}): sizes ${sizes.map(fmtN).join(', ')}, cycle ${fmtN(cycleSize)}; data in ${dataDir}`);
log(`machine: ${info.nproc} cores (${info.cpu}), ${info.memoryGiB} GiB, Node ${info.node}, sqlite3 ${info.sqlite3}, load ${info.loadAvg}`);

const t0 = performance.now();
const stores = {};
const results = {};
const needStores = new Set();
if (only.has('export') || only.has('apply')) sizes.forEach((n) => needStores.add(n));
if (only.has('cycle')) needStores.add(cycleSize);
for (const n of [...needStores].sort((a, b) => a - b)) stores[n] = await makeStore(dataDir, n, dist);
if (only.has('parse') || only.has('apply')) for (const n of sizes) results[n] = await makeResults(dataDir, n);
log(`data ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const work = path.join(dataDir, 'work');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// Export: stored IDs → shard files of 500,000 IDs.
if (only.has('export')) {
  log('export: stored IDs → shard files (500,000 IDs each)');
  for (const n of sizes) {
    const outDir = path.join(work, 'export');
    const ceiling = child('export-ceiling', { store: stores[n], outDir, shardSize: 500_000 });
    record('export', 'ceiling: keyset pages → file (better-sqlite3)', n, ceiling);
    rmSync(outDir, { recursive: true, force: true });
    const ours = child('export-ours', { store: stores[n], outDir, shardSize: 500_000 });
    record('export', 'ours: StoredIds.plan + exportShard', n, ours, `${(ours.ms / ceiling.ms).toFixed(2)}x ceiling time`);
    rmSync(outDir, { recursive: true, force: true });
  }
}

// Parse: results file → records.
if (only.has('parse')) {
  log('parse: results file → records');
  for (const n of sizes) {
    const store = stores[n] ?? path.join(dataDir, 'none.db');
    const ceiling = child('parse-ceiling', { file: results[n].file });
    record('parse', 'ceiling: readline + JSON.parse', n, ceiling);
    const ours = child('parse-ours', { file: results[n].file, store });
    record('parse', 'ours: readResultLines + toResultRecord', n, ours, `${(ours.ms / ceiling.ms).toFixed(2)}x ceiling time`);
  }
}

// Apply: records → store, each run on its own copy of the store.
const applyFigures = {};
const { parseConfig } = await import(path.join(dist, 'config/load.js'));
const defaultBatch = parseConfig({ store: { path: path.join(dataDir, 'none.db') } }, path.join(dataDir, 'config.json'), {}).reconcile.batchSize;
if (only.has('apply')) {
  log('apply: results file → store (each run on a fresh copy)');
  for (const n of sizes) {
    const copy = path.join(work, `apply-${n}.db`);
    const runs = { bare: [], ours: [], ours50k: [] };
    const variants = [
      ['bare', 'apply-bare', {}],
      ['ours', 'apply-ours', {}],
      // The same code with reconcile.batchSize = 50,000 (a config value), when the default differs: how much of the
      // gap is batch size.
      ...(defaultBatch === 50_000 ? [] : [['ours50k', 'apply-ours', { batchSize: 50_000 }]]),
    ];
    for (let i = 0; i < repeat; i++) {
      // Alternate, so drift on the shared machine hits every variant alike.
      for (const [kind, stage, extra] of variants) {
        copyStore(stores[n], copy);
        if (stage === 'apply-ours') child('fill-embeds', { store: copy });
        runs[kind].push(child(stage, { store: copy, file: results[n].file, ...extra }));
        removeStore(copy);
      }
    }
    const bare = median(runs.bare);
    const ours = median(runs.ours);
    const ours50k = runs.ours50k.length ? median(runs.ours50k) : null;
    const runsNote = (list) =>
      repeat > 1 ? `; runs ${list.map((m) => (m.ms / 1000).toFixed(1)).join('/')} s, ${list.map((m) => m.maxRssMb).join('/')} MB` : '';
    record('apply', 'bare loop: 50k batches sorted by ID', n, bare, runsNote(runs.bare).slice(2));
    const ratio = bare.ms / ours.ms;
    record('apply', `ours: applyResultsFile (default batch ${ours.batchSize})`, n, ours, `${ratio.toFixed(2)}x bare rows/s${runsNote(runs.ours)}`);
    const ratio50k = ours50k ? bare.ms / ours50k.ms : null;
    if (ours50k) record('apply', 'ours: applyResultsFile, batchSize 50000 (config)', n, ours50k, `${ratio50k.toFixed(2)}x bare rows/s${runsNote(runs.ours50k)}`);
    // Floor: the sqlite3 shell, set-based: the (id, effect) pairs imported into a TEMP table, one statement per effect.
    copyStore(stores[n], copy);
    const floor = sqliteFloor(copy, results[n].csv);
    removeStore(copy);
    record('apply', 'floor: sqlite3 shell, .import + set-based', n, { ...floor, bytes: statSync(results[n].file).size }, 'parse not included (pre-extracted CSV)');
    // A memory target is about every run, so it is judged on the worst run, not the median.
    const oursWorstRssMb = Math.max(...runs.ours.map((m) => m.maxRssMb));
    applyFigures[n] = { bare, ours, ours50k, floor, ratio, ratio50k, oursWorstRssMb };
  }
}

function sqliteFloor(store, csv) {
  const at = new Date().toISOString();
  const marks = ['suspended', 'protected'];
  const script = [
    'PRAGMA journal_mode=WAL;',
    'PRAGMA synchronous=NORMAL;',
    'CREATE TEMP TABLE r(id INTEGER, effect TEXT);',
    `.import --csv --schema temp ${csv} r`,
    'BEGIN;',
    `DELETE FROM tweets WHERE id IN (SELECT id FROM r WHERE effect = 'delete');`,
    ...marks.map((m) => `UPDATE tweets SET compliance_state = '${m}', compliance_reason = '${m}', compliance_at = '${at}' WHERE id IN (SELECT id FROM r WHERE effect = '${m}');`),
    `UPDATE tweets SET compliance_state = 'edited', compliance_reason = 'tweet_edited', compliance_at = '${at}' WHERE id IN (SELECT id FROM r WHERE effect = 'edited');`,
    `UPDATE tweets SET geo_lat = NULL, geo_lon = NULL, place_id = NULL, raw_json = CASE WHEN json_valid(raw_json) THEN json_remove(raw_json, '$.geo', '$.coordinates', '$.place') ELSE raw_json END WHERE id IN (SELECT id FROM r WHERE effect = 'scrub');`,
    'COMMIT;',
    `SELECT count(*) FROM r;`,
  ].join('\n');
  const timeFile = path.join(work, 'time.txt');
  settle();
  const run = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', timeFile, 'sqlite3', '-batch', store], { input: script, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`sqlite3 floor failed: ${run.stderr}`);
  const [seconds, kib] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { ms: seconds * 1000, rows: Number(run.stdout.trim().split('\n').pop()), maxRssMb: Math.round(kib / 1024) };
}

// Download, ours vs the peer: the emulator over HTTPS (the peer speaks only HTTPS), every uploaded ID with a result.
const downloadFigures = {};
if (only.has('download')) {
  log('download: emulator over loopback HTTPS → file / records; peer twitter-api-v2');
  const cert = path.join(dataDir, 'cert.pem');
  const key = path.join(dataDir, 'key.pem');
  if (!existsSync(cert) || !existsSync(key)) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '30', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  }
  // A mix summing to 1 so N uploaded IDs give N result lines, in real proportions among themselves.
  const emulator = await startEmulator(['--tls-cert', cert, '--tls-key', key, '--rate-limit', '100000', '--mix', 'deleted=0.4,protected=0.2,suspended=0.2,deactivated=0.1,scrub_geo=0.1']);
  const tls = { NODE_EXTRA_CA_CERTS: cert };
  try {
    for (const n of sizes) {
      const dest = path.join(work, `download-${n}.ndjson`);
      const idFile = await makeIdFile(dataDir, n);
      const setup = child('dl-setup', { url: emulator.url, token: TOKEN, idFile, dest }, tls);
      const lines = countRecords(dest);
      const bytes = setup.bytes;
      const base = { url: emulator.url, token: TOKEN, jobId: setup.jobId, dest, store: path.join(work, 'none.db') };
      const ours = child('dl-ours', base, tls);
      rmSync(dest, { force: true });
      record('download', 'ours: getJob + download → file', n, { ...ours, rows: lines }, `${(bytes / 1e6).toFixed(0)} MB`);
      const oursParse = child('dl-ours-parse', base, tls);
      rmSync(dest, { force: true });
      record('download', 'ours: download + readResultLines + validate', n, oursParse);
      const peer = child('dl-peer', { ...base, cert });
      const peerRow = record('download', 'peer: twitter-api-v2 complianceJobResult', n, { ...peer, bytes: peer.error ? null : bytes });
      if (!peer.error) peerRow.note = `peer/ours: time ${(peer.ms / oursParse.ms).toFixed(2)}x, RSS ${(peer.maxRssMb / oursParse.maxRssMb).toFixed(1)}x`;
      downloadFigures[n] = { ours, oursParse, peer, bytes, lines };
    }
  } finally {
    await emulator.stop();
  }
}

function countRecords(file) {
  const run = spawnSync('grep', ['-c', '.', file], { encoding: 'utf8' });
  return Number(run.stdout.trim());
}

// Full cycle: `compliance-sync reconcile --now` against the emulator (default ~10% mix, zero processing delay).
let cycleFigure = null;
if (only.has('cycle')) {
  log(`cycle: reconcile --now of a ${fmtN(cycleSize)}-tweet store against the emulator (processing 0)`);
  const emulator = await startEmulator([]);
  try {
    const store = copyStore(stores[cycleSize], path.join(work, `cycle-${cycleSize}.db`));
    const cycleWork = path.join(work, 'cycle-work');
    const configFile = path.join(work, 'cycle-config.json');
    writeFileSync(
      configFile,
      JSON.stringify({ store: { path: store }, api: { baseUrl: emulator.url }, jobs: { shardSize: 500_000, pollIntervalSeconds: 0.2 }, paths: { work: cycleWork } }),
    );
    const usageFile = path.join(work, 'cycle-usage.json');
    const stderrFile = path.join(work, 'cycle-stderr.log');
    settle();
    const t = performance.now();
    const run = spawnSync(process.execPath, ['--import', path.join(here, 'lib', 'usage-at-exit.mjs'), cli, 'reconcile', '--now', '--config', configFile], {
      encoding: 'utf8',
      env: { ...process.env, X_BEARER_TOKEN: TOKEN, BENCH_USAGE_FILE: usageFile },
      maxBuffer: 1 << 26,
    });
    const ms = performance.now() - t;
    writeFileSync(stderrFile, run.stderr);
    if (run.status !== 0) throw new Error(`reconcile --now exited ${run.status}:\n${run.stdout}\n${run.stderr.slice(-3000)}`);
    const summary = run.stdout;
    const checked = Number(/IDs checked\s+(\d+)/.exec(summary)?.[1] ?? cycleSize);
    const maxRssMb = Math.round(JSON.parse(readFileSync(usageFile, 'utf8')).maxRssKiB / 1024);
    const phases = cyclePhases(run.stderr);
    record('cycle', 'ours: reconcile --now (CLI process, wall)', cycleSize, { ms, rows: checked, bytes: statSync(stores[cycleSize]).size, maxRssMb }, phases.note);
    cycleFigure = { ms, checked, maxRssMb, summary, phases };
    removeStore(store);
  } finally {
    await emulator.stop();
  }
}

/** Sums the reconciler's own elapsed time from the cycle's log (apply: done lines carry counts, the run has elapsed). */
function cyclePhases(stderr) {
  const lines = stderr.split('\n').filter(Boolean).map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      return null;
    }
  }).filter(Boolean);
  const at = (l) => Date.parse(l.time);
  const first = lines.length ? at(lines[0]) : null;
  const last = lines.length ? at(lines[lines.length - 1]) : null;
  // Time from each shard's "apply: start" to its "apply: done": the local apply work of the cycle.
  let applyMs = 0;
  const open = new Map();
  for (const l of lines) {
    if (l.msg === 'apply: start') open.set(l.runId, at(l));
    if (l.msg === 'apply: done' && open.has(l.runId)) applyMs += at(l) - open.get(l.runId);
  }
  return {
    logLines: lines.length,
    loggedSpanMs: first && last ? last - first : null,
    applyMs,
    note: applyMs ? `apply ${(applyMs / 1000).toFixed(1)} s of it` : '',
  };
}

// ---------------------------------------------------------------------------------------------------------------
rmSync(work, { recursive: true, force: true });
const totalSeconds = (performance.now() - started) / 1000;

const header = ['stage', 'variant', 'size', 'rows', 'wall s', 'rows/s', 'MB/s', 'peak RSS MB', 'note'];
const table = [header, ...rows.map((r) => [r.stage, r.variant, fmtN(r.size), r.rows ?? '-', r.seconds.toFixed(2), r.rowsPerSec ?? '-', r.mbPerSec ?? '-', r.peakRssMb ?? '-', r.note])];
const widths = header.map((_, c) => Math.max(...table.map((l) => String(l[c]).length)));
const numeric = new Set([3, 4, 5, 6, 7]);
const out = [];
out.push(`compliance-sync bench (${quick ? 'quick' : 'full'}) — ${info.nproc} cores, ${info.memoryGiB} GiB, Node ${info.node}, sqlite3 ${info.sqlite3}`);
out.push('');
for (const [i, l] of table.entries()) {
  out.push(`| ${l.map((v, c) => (numeric.has(c) ? String(v).padStart(widths[c]) : String(v).padEnd(widths[c]))).join(' | ')} |`);
  if (i === 0) out.push(`|${widths.map((w, c) => (numeric.has(c) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`);
}

// The targets the other issues set, printed directly.
const targets = [];
const verdict = (ok) => (ok ? 'PASS' : 'MISS');
for (const [n, f] of Object.entries(applyFigures)) {
  targets.push({ target: `issue 4: apply ≥ 0.80x bare loop rows/s (${fmtN(Number(n))})`, value: f.ratio.toFixed(2), pass: f.ratio >= 0.8 });
  if (f.ratio50k !== null) targets.push({ target: `  same code, reconcile.batchSize 50000 (${fmtN(Number(n))})`, value: f.ratio50k.toFixed(2), pass: f.ratio50k >= 0.8 });
  const worst = `${repeat > 1 ? `worst of ${repeat} runs, ` : ''}${fmtN(Number(n))}`;
  targets.push({ target: `issue 4: apply peak RSS < 200 MB (${worst})`, value: `${f.oursWorstRssMb} MB`, pass: f.oursWorstRssMb < 200 });
  targets.push({ target: `info: apply vs sqlite3 set-based floor (${fmtN(Number(n))})`, value: `${(f.floor.ms / f.ours.ms).toFixed(2)}x floor rows/s`, pass: null });
}
const applySizes = Object.keys(applyFigures).map(Number).sort((a, b) => a - b);
if (applySizes.length > 1) {
  const small = applyFigures[applySizes[0]].oursWorstRssMb;
  const big = applyFigures[applySizes[applySizes.length - 1]].oursWorstRssMb;
  targets.push({ target: `issue 4: apply peak RSS ${fmtN(applySizes[applySizes.length - 1])} within 20% of ${fmtN(applySizes[0])} (worst runs)`, value: `${big} vs ${small} MB (${(big / small).toFixed(2)}x)`, pass: big <= small * 1.2 });
}
for (const [n, f] of Object.entries(downloadFigures)) {
  targets.push({
    target: `info: peer download+parse vs ours (${fmtN(Number(n))} lines, ${(f.bytes / 1e6).toFixed(0)} MB)`,
    value: f.peer.error ? `peer failed: ${f.peer.error}` : `peer/ours time ${(f.peer.ms / f.oursParse.ms).toFixed(2)}x; peak RSS ${f.peer.maxRssMb} vs ${f.oursParse.maxRssMb} MB`,
    pass: null,
  });
}
if (cycleFigure) {
  targets.push({ target: `issue 5: reconcile --now of ${fmtN(cycleSize)} tweets (time, peak RSS)`, value: `${(cycleFigure.ms / 1000).toFixed(1)} s, ${cycleFigure.maxRssMb} MB`, pass: null });
}
out.push('');
out.push('Targets:');
const tw = Math.max(...targets.map((t) => t.target.length));
for (const t of targets) out.push(`  ${t.target.padEnd(tw)}  ${t.value}${t.pass === null ? '' : `  ${verdict(t.pass)}`}`);
out.push('');
out.push(`total ${totalSeconds.toFixed(0)} s (data generation included)`);
process.stdout.write(`${out.join('\n')}\n`);

writeFileSync(
  path.join(here, 'results.json'),
  `${JSON.stringify({ mode: quick ? 'quick' : 'full', date: new Date().toISOString(), machine: info, sizes, cycleSize, rows, targets, cycleSummary: cycleFigure?.summary ?? null, totalSeconds: Math.round(totalSeconds) }, null, 2)}\n`,
);
