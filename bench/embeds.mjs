#!/usr/bin/env node
// Embedded copies (issue 12): what finding the tweets embedded in raw JSON costs.
//
//   npm run build && node bench/embeds.mjs [--rows 200000] [--delete-fraction 0.02] [--dir bench/data]
//
// On run.mjs's default-schema store (bench/lib/data.mjs makeStore), one tweet in eight made a v2 retweet and one in
// eight a v2 quote (referenced_tweets + includes.tweets) of an older tweet. A results file deleting every ID with
// i % (1/fraction) == 0 is applied on a fresh copy each time, in the same process: with the default embeds looked up
// in the index cs_embeds (filled in once first: its time is reported apart), with the default embeds found by a
// pass over the table per transaction (what a dry run does before the index exists), and with none ([]). Reported:
// wall time, transactions committed (the apply is cut by reconcile.maxLockMs as in production), copies deleted and
// embeds removed, and per transaction the difference to the run without embeds (paid while the transaction holds the
// write lock). Compare the rows of one run, not across runs.
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { idAt, makeStore } from './lib/data.mjs';
import { option } from './lib/args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const rows = Number(option('rows', 200_000));
const fraction = Number(option('delete-fraction', 0.02));
const dataDir = path.resolve(option('dir', path.join(here, 'data')));
mkdirSync(dataDir, { recursive: true });
const log = (line) => process.stderr.write(`${line}\n`);

const { openStore } = await import(path.join(dist, 'store/open.js'));
const { applyResultsFile } = await import(path.join(dist, 'pipeline/reconcile.js'));
const { parseConfig } = await import(path.join(dist, 'config/load.js'));
const { createLogger } = await import(path.join(dist, 'log.js'));
const { ensureEmbedIndex } = await import(path.join(dist, 'store/embedIndex.js'));
const { resolveTarget } = await import(path.join(dist, 'store/target.js'));

log(`embeds bench: ${rows.toLocaleString('en')} rows, deleting ${fraction * 100}%; data in ${dataDir}`);
const source = await makeStore(dataDir, rows, dist);
const withEmbeds = path.join(dataDir, `embeds-source-${rows}.db`);
for (const s of ['', '-wal', '-shm']) rmSync(withEmbeds + s, { force: true });
copyFileSync(source, withEmbeds);
const every = Math.max(1, Math.round(1 / fraction));
{
  const db = openStore(withEmbeds);
  // Retweets and quotes of a tweet about 1,000 positions older; one in `every` of those is deleted, as any tweet.
  const retweet = db.prepare(`UPDATE tweets SET raw_json = json_set(raw_json, '$.referenced_tweets', json_array(json_object('type', 'retweeted', 'id', @older)),
    '$.includes', json_object('tweets', json_array(json_object('id', @older, 'text', 'original', 'geo', json_object('place_id', 'p1'))))) WHERE id = @id`);
  const quote = db.prepare(`UPDATE tweets SET raw_json = json_set(raw_json, '$.referenced_tweets', json_array(json_object('type', 'quoted', 'id', @older)),
    '$.includes', json_object('tweets', json_array(json_object('id', @older, 'text', 'original')))) WHERE id = @id`);
  db.transaction(() => {
    for (let i = 1100; i < rows; i++) {
      const older = idAt(i - 1000 - (i % 7));
      if (i % 8 === 0) retweet.run({ id: BigInt(idAt(i)), older });
      else if (i % 8 === 1) quote.run({ id: BigInt(idAt(i)), older });
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

const resultsFile = path.join(dataDir, `embeds-results-${rows}-${every}.ndjson`);
const lines = [];
for (let i = 0; i < rows; i += every) lines.push(`{"id":"${idAt(i)}","action":"delete","created_at":"2019-08-10T12:22:39.022Z","reason":"deleted"}\n`);
writeFileSync(resultsFile, lines.join(''));

const figures = [];
for (const [label, embeds, index] of [
  ['embeds: default, by the index', null, true],
  ['embeds: default, by a pass per transaction', null, false],
  ['embeds: [] (none)', [], false],
]) {
  const store = path.join(dataDir, `embeds-${rows}.db`);
  for (const s of ['', '-wal', '-shm']) rmSync(store + s, { force: true });
  copyFileSync(withEmbeds, store);
  const config = parseConfig({ store: { path: store, tables: { tweets: { embeds } } }, reconcile: { purge: false } }, path.join(dataDir, 'config.json'), {});
  const db = openStore(store);
  db.pragma('journal_mode = WAL');
  let fill = null;
  if (index) {
    const t0 = performance.now();
    const filled = await ensureEmbedIndex(db, resolveTarget(db, config), { maxLockMs: config.reconcile.maxLockMs });
    fill = { rows: filled, seconds: (performance.now() - t0) / 1000 };
    log(`  index filled in: ${filled} rows in ${fill.seconds.toFixed(2)} s`);
  }
  let commits = 0;
  const started = performance.now();
  // Without the index: a dry run has no index and does the pass; its rolled-back transactions are not cut.
  const summary = await applyResultsFile({ db, config, type: 'tweets', file: resultsFile, logger: createLogger('warn'), confirmDeletions: true, dryRun: !index && embeds === null, onCommit: () => commits++ });
  const seconds = (performance.now() - started) / 1000;
  const tweets = summary.changes.tweets ?? {};
  figures.push({ label, seconds, commits, copies: tweets.deleted?.copy ?? 0, embeds: tweets.updated?.embed ?? 0, fill });
  log(`  ${label}: ${seconds.toFixed(2)} s, ${commits} transactions`);
  db.close();
  for (const s of ['', '-wal', '-shm']) rmSync(store + s, { force: true });
}
const off = figures[2];
process.stdout.write(
  [
    `| ${rows.toLocaleString('en')} rows, ${lines.length.toLocaleString('en')} deletions | wall s | transactions | copies deleted | embeds removed | extra per transaction |`,
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...figures.map(
      (f) => `| ${f.label} | ${f.seconds.toFixed(2)} | ${f.commits} | ${f.copies} | ${f.embeds} | ${f === off ? '-' : `${(((f.seconds - off.seconds) * 1000) / f.commits).toFixed(0)} ms`} |`,
    ),
    `| filling the index in once | ${figures[0].fill.seconds.toFixed(2)} | | | | (${figures[0].fill.rows.toLocaleString('en')} rows) |`,
  ].join('\n') + '\n',
);
rmSync(withEmbeds, { force: true });
