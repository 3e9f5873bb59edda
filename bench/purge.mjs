#!/usr/bin/env node
// Purge on a large store (issue 12): what a cycle's deletions leave in the file, and what the purge costs.
//
//   npm run build && node bench/purge.mjs [--rows 1000000] [--delete-fraction 0.05] [--dir bench/data]
//   (the full size: --rows 5000000)
//
// On a fresh copy of run.mjs's default-schema store (bench/lib/data.mjs makeStore: `rows` tweets, raw JSON, ~30% geo):
// a results file deleting every ID with i % (1/fraction) == 0 is applied by applyResultsFile with reconcile.purge on
// (secure_delete), then purgeStore (FTS optimize + WAL checkpoint TRUNCATE), then purgeStore with vacuum. After each
// step: wall time, the store's size (main file + WAL), and how many of a sample of 2,000 deleted rows' texts ("tweet
// number <i> with") a byte scan still finds in the files. Figures go to stdout as a table and to <dir>/purge-results.json.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { idAt, makeStore } from './lib/data.mjs';
import { option } from './lib/args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const rows = Number(option('rows', 1_000_000));
const fraction = Number(option('delete-fraction', 0.05));
const dataDir = path.resolve(option('dir', path.join(here, 'data')));
mkdirSync(dataDir, { recursive: true });
const log = (line) => process.stderr.write(`${line}\n`);

const { openStore } = await import(path.join(dist, 'store/open.js'));
const { applyResultsFile } = await import(path.join(dist, 'pipeline/apply/applyFile.js'));
const { purgeStore } = await import(path.join(dist, 'store/purge.js'));
const { parseConfig } = await import(path.join(dist, 'config/load.js'));
const { createLogger } = await import(path.join(dist, 'log.js'));

log(`purge bench: ${rows.toLocaleString('en')} rows, deleting ${fraction * 100}%; data in ${dataDir}`);
const source = await makeStore(dataDir, rows, dist);
const store = path.join(dataDir, `purge-${rows}.db`);
for (const s of ['', '-wal', '-shm']) rmSync(store + s, { force: true });
copyFileSync(source, store);

const every = Math.max(1, Math.round(1 / fraction));
const deleted = [];
for (let i = 0; i < rows; i += every) deleted.push(i);
const resultsFile = path.join(dataDir, `purge-results-${rows}-${every}.ndjson`);
if (!existsSync(resultsFile)) {
  writeFileSync(resultsFile, deleted.map((i) => `{"id":"${idAt(i)}","action":"delete","created_at":"2019-08-10T12:22:39.022Z","reason":"deleted"}\n`).join(''));
}
const sample = deleted.filter((_, k) => k % Math.max(1, Math.floor(deleted.length / 2000)) === 0).slice(0, 2000);

const size = () => ['', '-wal'].reduce((sum, s) => sum + (existsSync(store + s) ? statSync(store + s).size : 0), 0);
// One pass per file: every "tweet number <i> with" in the bytes, then the sample looked up in that set.
const readable = () => {
  const seen = new Set();
  for (const s of ['', '-wal']) {
    if (!existsSync(store + s)) continue;
    const bytes = readFileSync(store + s).toString('latin1');
    for (const m of bytes.matchAll(/tweet number (\d+) with/g)) seen.add(Number(m[1]));
  }
  return sample.filter((i) => seen.has(i)).length;
};
const figures = [];
const record = (step, ms) => {
  const row = { step, seconds: ms === null ? null : +(ms / 1000).toFixed(2), storeMB: +(size() / 1e6).toFixed(1), readableOfSample: `${readable()}/${sample.length}` };
  figures.push(row);
  log(`  ${step}: ${row.seconds ?? '-'} s, ${row.storeMB} MB, deleted texts readable ${row.readableOfSample}`);
};

record('before', null);
const config = parseConfig({ store: { path: store }, reconcile: { purge: true } }, path.join(dataDir, 'config.json'), {});
const db = openStore(store);
db.pragma('journal_mode = WAL');
let started = performance.now();
const summary = await applyResultsFile({ db, config, type: 'tweets', file: resultsFile, logger: createLogger('warn'), confirmDeletions: true });
record(`apply ${summary.applied.delete.toLocaleString('en')} deletions (secure_delete)`, performance.now() - started);
started = performance.now();
purgeStore(db);
record('purge: FTS optimize + WAL checkpoint (TRUNCATE)', performance.now() - started);
started = performance.now();
purgeStore(db, { vacuum: true });
record('purge with vacuum', performance.now() - started);
db.close();

const table = [
  '| step | wall s | store MB (main + WAL) | deleted texts readable (sample) |',
  '| --- | ---: | ---: | ---: |',
  ...figures.map((f) => `| ${f.step} | ${f.seconds ?? '-'} | ${f.storeMB} | ${f.readableOfSample} |`),
].join('\n');
process.stdout.write(`${table}\n`);
writeFileSync(
  path.join(dataDir, 'purge-results.json'),
  `${JSON.stringify({ date: new Date().toISOString(), rows, fraction, machine: { cores: os.cpus().length, load: os.loadavg() }, figures }, null, 2)}\n`,
);
for (const s of ['', '-wal', '-shm']) rmSync(store + s, { force: true });
