#!/usr/bin/env node
// Purge and audit on a large store (issue 12): what each costs, and the store's size before and after.
//
//   npm run build && node bench/audit.mjs [--rows 1000000] [--delete-fraction 0.05] [--scrub-fraction 0.01] [--dir bench/data]
//   (the issue's full size: --rows 5000000)
//
// On a fresh copy of run.mjs's default-schema store (bench/lib/data.mjs makeStore: `rows` tweets with raw JSON that
// names each tweet's ID, ~30% with geo), a results file deleting every ID with i % (1/delete-fraction) == 0 and
// scrubbing the geo of every ID with i % (1/scrub-fraction) == 1 is applied by applyResultsFile with reconcile.purge
// OFF (tombstones and scrubs recorded; no secure_delete, so the deleted cells stay in the file's free space for the
// byte scan to find). Then, timed one by one: `audit` (every check but the byte scan), `audit --scan-bytes`, the purge
// (FTS optimize + WAL checkpoint TRUNCATE), the byte scan again, the purge with vacuum, and both audits again. After each step: wall time, the store's size (main file + WAL) and the audit's findings per check. No cycle
// ran on this store, so the coverage check counts every row (that is what it must say). Figures go to stdout as a
// table and to <dir>/audit-results.json.
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { idAt, makeStore } from './lib/data.mjs';
import { option } from './lib/args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const rows = Number(option('rows', 1_000_000));
const deleteFraction = Number(option('delete-fraction', 0.05));
const scrubFraction = Number(option('scrub-fraction', 0.01));
const dataDir = path.resolve(option('dir', path.join(here, 'data')));
mkdirSync(dataDir, { recursive: true });
const log = (line) => process.stderr.write(`${line}\n`);

const { openStore } = await import(path.join(dist, 'store/open.js'));
const { applyResultsFile } = await import(path.join(dist, 'pipeline/apply/applyFile.js'));
const { purgeStore } = await import(path.join(dist, 'store/purge.js'));
const { runAudit } = await import(path.join(dist, 'store/audit.js'));
const { parseConfig } = await import(path.join(dist, 'config/load.js'));
const { createLogger } = await import(path.join(dist, 'log.js'));

log(`audit bench: ${rows.toLocaleString('en')} rows, deleting ${deleteFraction * 100}%, scrubbing ${scrubFraction * 100}%; data in ${dataDir}`);
const source = await makeStore(dataDir, rows, dist);
const store = path.join(dataDir, `audit-${rows}.db`);
for (const s of ['', '-wal', '-shm']) rmSync(store + s, { force: true });
copyFileSync(source, store);

const deleteEvery = Math.max(1, Math.round(1 / deleteFraction));
const scrubEvery = Math.max(2, Math.round(1 / scrubFraction));
const resultsFile = path.join(dataDir, `audit-results-${rows}-${deleteEvery}-${scrubEvery}.ndjson`);
if (!existsSync(resultsFile)) {
  const lines = [];
  for (let i = 0; i < rows; i++) {
    if (i % deleteEvery === 0) lines.push(`{"id":"${idAt(i)}","action":"delete","created_at":"2019-08-10T12:22:39.022Z","reason":"deleted"}\n`);
    else if (i % scrubEvery === 1) lines.push(`{"id":"${idAt(i)}","action":"scrub_geo","created_at":"2019-08-10T12:22:39.022Z","reason":"scrub_geo"}\n`);
  }
  writeFileSync(resultsFile, lines.join(''));
}

const size = () => ['', '-wal'].reduce((sum, s) => sum + (existsSync(store + s) ? statSync(store + s).size : 0), 0);
const figures = [];
const record = (step, ms, findings = '') => {
  const row = { step, seconds: ms === null ? null : +(ms / 1000).toFixed(2), storeMB: +(size() / 1e6).toFixed(1), findings };
  figures.push(row);
  log(`  ${step}: ${row.seconds ?? '-'} s, ${row.storeMB} MB${findings ? `, ${findings}` : ''}`);
};
const findingsOf = (report) =>
  report.checks
    .filter((c) => c.ran || c.error)
    .map((c) => `${c.name} ${c.error ? 'ERROR' : c.count.toLocaleString('en')}`)
    .join(', ');

record('before', null);
const config = parseConfig({ store: { path: store }, reconcile: { purge: false } }, path.join(dataDir, 'config.json'), {});
const db = openStore(store);
db.pragma('journal_mode = WAL');
let started = performance.now();
const summary = await applyResultsFile({ db, config, type: 'tweets', file: resultsFile, logger: createLogger('warn'), confirmDeletions: true });
record(`apply ${summary.applied.delete.toLocaleString('en')} deletions, ${summary.applied.scrub_geo.toLocaleString('en')} scrubs (purge off)`, performance.now() - started);

const audit = (label, scanBytes) => {
  const t = performance.now();
  const report = runAudit(db, config, { scanBytes, examples: 3, now: () => new Date() });
  record(label, performance.now() - t, findingsOf(report));
};
audit('audit', false);
audit('audit --scan-bytes', true);
started = performance.now();
purgeStore(db);
record('purge: FTS optimize + WAL checkpoint (TRUNCATE)', performance.now() - started);
audit('audit --scan-bytes', true);
started = performance.now();
purgeStore(db, { vacuum: true });
record('purge with vacuum', performance.now() - started);
audit('audit', false);
audit('audit --scan-bytes', true);
db.close();

const table = [
  '| step | wall s | store MB (main + WAL) | findings per check |',
  '| --- | ---: | ---: | --- |',
  ...figures.map((f) => `| ${f.step} | ${f.seconds ?? '-'} | ${f.storeMB} | ${f.findings} |`),
].join('\n');
process.stdout.write(`${table}\n`);
writeFileSync(
  path.join(dataDir, 'audit-results.json'),
  `${JSON.stringify({ date: new Date().toISOString(), rows, deleteFraction, scrubFraction, machine: { cores: os.cpus().length, load: os.loadavg() }, figures }, null, 2)}\n`,
);
for (const s of ['', '-wal', '-shm']) rmSync(store + s, { force: true });
