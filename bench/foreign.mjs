#!/usr/bin/env node
// Apply speed on foreign layouts (issue 11): the same results file applied by `compliance-sync apply --type tweets`
// to a store in twitter-to-sqlite's layout (link tables, self-references, FTS5 kept by triggers, GeoJSON columns,
// marks in the ledger), to one in twint's layout (three link tables, geo as text columns, marks in the ledger, no
// FTS), and to a default-layout store of the same tweet IDs, alternating, in one run.
// Target: a foreign layout's rows/s ≥ 0.7x the default's, with the indexes the work needs in place.
//
//   npm run build && node bench/foreign.mjs [--size 200000] [--repeat 3] [--dir bench/data] [--no-breakdown] [--no-floor]
//
// What is measured: the wall time of the `apply` CLI process (start-up included, the same for all) on a fresh copy
// of each store, after `migrate` and the one-off fill of the embedded-copies index (default) or `migrate
// --create-indexes` (foreign), untimed: each store as an earlier cycle leaves it; rows/s = result lines /
// wall s; and the process's own CPU (user + system, bench/lib/usage-at-exit.mjs); medians of --repeat alternating
// runs. All stores hold the same tweet IDs (bench/lib/data.mjs idAt) by the same 200,000 authors' ID range, and
// the results file is run.mjs's (bench/lib/data.mjs makeResults: ~60% deletions, marks, scrubs, edits, 5% unknown
// IDs, malformed lines). Next to each apply, the layout's floor (sqliteFloor): the same effects by the sqlite3 shell,
// set-based, in one transaction, which is what the schema alone costs. Stores and results are cached in the data
// directory; the figures also go to <dir>/foreign-results.json.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { idAt, makeResults, makeStore, prng } from './lib/data.mjs';
import { argv, option } from './lib/args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const dist = path.join(root, 'dist');
const cli = path.join(dist, 'cli.js');

const size = Number(option('size', 200_000));
const repeat = Number(option('repeat', 3));
const dataDir = path.resolve(option('dir', path.join(here, 'data')));
// One more store: twitter-to-sqlite's without its FTS5 tables and triggers, to tell the collector's trigger cost (every
// delete, and every UPDATE of a tweet, re-indexes its text through tweets_ad/tweets_au) from compliance-sync's own work.
const breakdown = !argv.includes('--no-breakdown');
// Each layout's floor too (sqliteFloor): what its schema alone costs, so the ratio can be read against what is possible.
const floor = !argv.includes('--no-floor');
mkdirSync(dataDir, { recursive: true });
const log = (line) => process.stderr.write(`${line}\n`);

const LAYOUT_SQL = path.join(root, 'test/fixtures/layouts/twitter-to-sqlite.sql');
const TWINT_SQL = path.join(root, 'test/fixtures/layouts/twint.sql');
/** Bump when the generator changes, so a stale cached store is not reused. */
const VERSION = 'f2';
const TWINT_VERSION = 't2';
const AUTHORS = 200_000;
const author = (random) => 100000000n + BigInt(Math.floor(random() * AUTHORS));

/**
 * The child columns the work looks up by (issue 11, item 4): created here by name so both the bench and a store without
 * `migrate --create-indexes` have them; `migrate --create-indexes` is run afterwards and adds whatever else it wants.
 */
const CHILD_INDEXES = [
  'CREATE INDEX IF NOT EXISTS bench_tweets_user ON [tweets] ([user])',
  'CREATE INDEX IF NOT EXISTS bench_tweets_retweeted_status ON [tweets] ([retweeted_status])',
  'CREATE INDEX IF NOT EXISTS bench_tweets_quoted_status ON [tweets] ([quoted_status])',
  'CREATE INDEX IF NOT EXISTS bench_media_tweets_tweets_id ON [media_tweets] ([tweets_id])',
  'CREATE INDEX IF NOT EXISTS bench_favorited_by_tweet ON [favorited_by] ([tweet])',
  'CREATE INDEX IF NOT EXISTS bench_count_history_user ON [count_history] ([user])',
];

/**
 * A cached store file, written once: `fill` gets a new WAL database holding the layout's DDL (`ddl`), and the file
 * is renamed into place, in rollback-journal mode as a collector leaves it, only once it is complete.
 */
function cachedStore(file, ddl, fill, { foreignKeys = true } = {}) {
  if (existsSync(file)) return file;
  const temp = `${file}.tmp`;
  rmSync(temp, { force: true });
  const db = new Database(temp);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  if (!foreignKeys) db.pragma('foreign_keys = OFF');
  db.exec(readFileSync(ddl, 'utf8'));
  fill(db);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma('journal_mode = DELETE');
  db.close();
  renameSync(temp, file);
  return file;
}

/** `row(i)` for each i below `rows`, in transactions of 50,000. */
function inChunks(db, rows, row) {
  const chunk = 50_000;
  for (let start = 0; start < rows; start += chunk) {
    db.transaction(() => {
      for (let i = start; i < Math.min(rows, start + chunk); i++) row(i);
    })();
  }
}

/**
 * A twitter-to-sqlite store of `rows` tweets with the default bench store's IDs and authors' ID range: 12% retweets and
 * 6% quotes of earlier tweets, 15% with a photo through media_tweets, 10% liked (favorited_by), ~30% with GeoJSON geo
 * and a place, every author a users row with count history, FTS5 over tweets and users kept by the layout's triggers.
 */
function makeForeignStore(rows) {
  return cachedStore(path.join(dataDir, `foreign-t2s-${VERSION}-${rows}.db`), LAYOUT_SQL, (db) => fillForeignStore(db, rows));
}

function fillForeignStore(db, rows) {
  const random = prng(42);
  const places = ['01a9a39529b27f36', '3b77caf94bfc81fe', '09f6a7707f18e0b1', '3078869807f9dd36'];
  db.transaction(() => {
    const place = db.prepare("INSERT INTO [places] ([id], [full_name], [bounding_box]) VALUES (?, ?, '{\"type\": \"Polygon\"}')");
    places.forEach((id, i) => place.run(id, `Place ${i}`));
    db.prepare("INSERT INTO [sources] VALUES ('e6528b505bcfd811fdd40ff2d46665dbccba2024', 'Twitter for iPhone', 'http://twitter.com/download/iphone')").run();
    const user = db.prepare('INSERT INTO [users] ([id], [screen_name], [name], [description], [location], [followers_count]) VALUES (?, ?, ?, ?, ?, ?)');
    const history = db.prepare("INSERT INTO [count_history] VALUES (1, ?, '2024-06-01T00:00:00+00:00', ?)");
    for (let i = 0; i < AUTHORS; i++) {
      const id = 100000000n + BigInt(i);
      user.run(id, `u${i}`, `User ${i}`, `bio of user ${i} about river and rain`, 'Berlin', i % 5000);
      history.run(id, i % 5000);
    }
  })();
  const tweet = db.prepare(
    `INSERT INTO [tweets] ([id], [user], [created_at], [full_text], [retweeted_status], [quoted_status], [place], [source], [geo], [coordinates], [lang])
     VALUES (?, ?, '2019-08-10T12:22:39+00:00', ?, ?, ?, ?, 'e6528b505bcfd811fdd40ff2d46665dbccba2024', ?, ?, 'en')`,
  );
  const media = db.prepare("INSERT INTO [media] ([id], [id_str], [media_url_https], [type]) VALUES (?, ?, ?, 'photo')");
  const link = db.prepare('INSERT INTO [media_tweets] VALUES (?, ?)');
  const like = db.prepare('INSERT INTO [favorited_by] VALUES (?, ?)');
  const owner = 100000000n;
  inChunks(db, rows, (i) => {
    const id = idAt(i);
    const kind = random();
    const earlier = i > 100 ? idAt(Math.floor(random() * i)) : null;
    const geo = random() < 0.3;
    const lat = geo ? +(random() * 180 - 90).toFixed(6) : null;
    const lon = geo ? +(random() * 360 - 180).toFixed(6) : null;
    tweet.run(
      id, author(random), `tweet number ${i} with some words to make it look real #${i % 977}`,
      earlier && kind < 0.12 ? earlier : null, earlier && kind >= 0.12 && kind < 0.18 ? earlier : null,
      geo ? places[i % places.length] : null,
      geo ? `{"type": "Point", "coordinates": [${lat}, ${lon}]}` : null,
      geo ? `{"type": "Point", "coordinates": [${lon}, ${lat}]}` : null,
    );
    if (random() < 0.15) {
      const mediaId = (BigInt(id) + 1n).toString();
      media.run(mediaId, mediaId, `https://pbs.twimg.com/media/${mediaId}.jpg`);
      link.run(mediaId, id);
    }
    if (random() < 0.1) like.run(id, owner);
  });
  for (const sql of CHILD_INDEXES) db.exec(sql);
  // The steady state of a store compliance-sync keeps: the last cycle's purge merged its full-text indexes. Left as
  // the generator's triggers wrote them, the first apply's purge would merge both whole (users_fts too, which a
  // tweets apply does not touch): a one-off cost of the first cycle, not of an apply.
  for (const fts of ['tweets_fts', 'users_fts']) db.exec(`INSERT INTO [${fts}] ([${fts}]) VALUES ('optimize')`);
}

/**
 * A twint store (`twint --database`, test/fixtures/layouts/twint.sql) of `rows` tweets with the same IDs and authors'
 * ID range, its link rows as twint's HTML-era scraper wrote them (the fixture's header says why): ~30% of tweets with
 * a place name in `place` ('' otherwise, the column's default; the scrub NULLs it either way), 3% collected by a geo
 * search (`geo`/`near` hold its filter); 12% retweeted (a retweets row naming the retweeter and the retweet's own ID),
 * 20% replying to one to three users (a replies row each), 10% liked by the archive's owner (favorites). The shares
 * are this bench's assumptions, not twint's. A users row per author, a tenth with a second version (twint adds a row
 * when a looked-up profile changes; a tweets apply does not touch users). The child columns' indexes (retweets,
 * replies, favorites by tweet_id; tweets by user_id) are created here, as `migrate --create-indexes` would: the link
 * tables' primary keys start with user_id.
 */
function makeTwintStore(rows) {
  // Foreign keys off, as on twint's connection (Python's sqlite3 leaves them off): users(id) is not unique.
  return cachedStore(path.join(dataDir, `foreign-twint-${TWINT_VERSION}-${rows}.db`), TWINT_SQL, (db) => fillTwintStore(db, rows), { foreignKeys: false });
}

function fillTwintStore(db, rows) {
  const random = prng(43);
  const PLACE_NAMES = ['Berlin, Germany', 'Manhattan, NY', 'São Paulo, Brasil', 'Lagos, Nigeria'];
  const screenName = (id) => `u${id - 100000000n}`;
  db.transaction(() => {
    const user = db.prepare('INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < AUTHORS; i++) {
      const id = 100000000n + BigInt(i);
      for (let version = 1; version <= (i % 10 === 0 ? 2 : 1); version++) {
        user.run(id, id.toString(), `User ${i}`, screenName(id), `bio of user ${i} about river and rain${version > 1 ? ' (edited)' : ''}`, 'Berlin',
          '', '2012-03-01', '10:00:00', 500, 100, i % 5000, 10, 4, 0, 0, `https://pbs.twimg.com/profile_images/${id}/a_normal.jpg`, '',
          `${id.toString(16)}${version}`.padStart(64, '0'), 1717200000000 + version);
      }
    }
  })();
  const tweet = db.prepare(`INSERT INTO tweets VALUES (${Array(33).fill('?').join(', ')})`);
  const retweet = db.prepare('INSERT OR IGNORE INTO retweets VALUES (?, ?, ?, ?, ?)');
  const reply = db.prepare('INSERT OR IGNORE INTO replies VALUES (?, ?, ?)');
  const favorite = db.prepare('INSERT INTO favorites VALUES (?, ?)');
  const owner = 100000000n;
  inChunks(db, rows, (i) => {
    const id = idAt(i);
    const by = author(random);
    const geo = random() < 0.3;
    const search = random() < 0.03;
    tweet.run(
      id, id, `tweet number ${i} with some words to make it look real #${i % 977}`, 'en', id, 1565439759000, '2019-08-10', '12:22:39', '+0000',
      geo ? PLACE_NAMES[i % PLACE_NAMES.length] : '', 0, 7, 3, by, by.toString(), screenName(by), 'A Name',
      `https://twitter.com/${screenName(by)}/status/${id}`, '', `#${i % 977}`, '', '', '', '', '', 0,
      search ? '52.52,13.40,10km' : '', search ? 'Berlin' : '', 'Twitter for iPhone', 1717200000000, '', '', '',
    );
    if (random() < 0.12) {
      const retweeter = author(random);
      retweet.run(retweeter, screenName(retweeter), id, (BigInt(id) + 7n).toString(), 1565440000);
    }
    if (random() < 0.2) {
      const users = 1 + Math.floor(random() * random() * 3);
      for (let n = 0; n < users; n++) {
        const replied = author(random);
        reply.run(id, replied, screenName(replied));
      }
    }
    if (random() < 0.1) favorite.run(owner, id);
  });
  for (const [table, column] of [['tweets', 'user_id'], ['retweets', 'tweet_id'], ['replies', 'tweet_id'], ['favorites', 'tweet_id']]) {
    db.exec(`CREATE INDEX IF NOT EXISTS bench_${table}_${column} ON ${table} (${column})`);
  }
}

const FOREIGN_TABLES = {
  tweets: {
    table: 'tweets', id: 'id', authorId: 'user', geoLat: null, geoLon: null, placeId: 'place', rawJson: null, geoColumns: ['geo', 'coordinates'],
    complianceState: null, complianceReason: null, complianceAt: null,
  },
  users: { table: 'users', id: 'id', complianceState: null, complianceReason: null, complianceAt: null },
};
/** twint's mapping, as in README.md and test/helpers/layouts.ts. */
const TWINT_TABLES = {
  tweets: {
    table: 'tweets', id: 'id', authorId: 'user_id', geoLat: null, geoLon: null, placeId: null, rawJson: null, geoColumns: ['place', 'geo', 'near'],
    complianceState: null, complianceReason: null, complianceAt: null,
  },
  users: { table: 'users', id: 'id', complianceState: null, complianceReason: null, complianceAt: null },
};
const TABLES = { foreign: FOREIGN_TABLES, 'foreign-no-fts': FOREIGN_TABLES, twint: TWINT_TABLES };

/** A fresh copy of the store and a config beside it (work files in their own folder). */
function prepare(layout, source, run) {
  const dir = path.join(dataDir, `foreign-run-${layout}-${run}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const store = path.join(dir, 'store.db');
  copyFileSync(source, store);
  const config = path.join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      store: { path: 'store.db', ...(layout === 'default' ? {} : { tables: TABLES[layout] }) },
      api: { baseUrl: 'http://127.0.0.1:9' },
      paths: { work: 'work' },
      log: { level: 'warn' },
    }),
  );
  return { dir, store, config };
}

function cliRun(args, env = {}, preload = []) {
  const started = performance.now();
  const result = spawnSync(process.execPath, [...preload, cli, ...args], { encoding: 'utf8', env: { ...process.env, X_BEARER_TOKEN: 'unused', ...env }, maxBuffer: 1 << 26 });
  return { ms: performance.now() - started, ...result };
}

/**
 * The layout's own work, done by the sqlite3 shell in one transaction, set-based, nothing of ours around it (no
 * parsing, no tombstones, no lock bound, foreign-key enforcement off as the shell has it): the results' effects
 * (pre-extracted to CSV, untimed) imported into a TEMP table, then per layout the statements that leave the store as
 * an apply leaves it. The ratio of two layouts' floors is what their schemas alone cost: a floor no apply can beat.
 */
const FLOOR_SQL = {
  default: [
    `DELETE FROM tweets WHERE id IN d;`,
    `UPDATE tweets SET compliance_state = m.state, compliance_reason = m.state, compliance_at = '${new Date().toISOString()}' FROM m WHERE tweets.id = m.id;`,
    `UPDATE tweets SET geo_lat = NULL, geo_lon = NULL, place_id = NULL, raw_json = CASE WHEN json_valid(raw_json) THEN json_remove(raw_json, '$.geo', '$.coordinates', '$.place') ELSE raw_json END
       WHERE id IN s AND (geo_lat IS NOT NULL OR geo_lon IS NOT NULL OR place_id IS NOT NULL OR json_type(raw_json, '$.geo') IS NOT NULL OR json_type(raw_json, '$.place') IS NOT NULL);`,
  ],
  foreign: [
    // The copies (retweets of a deleted tweet) go too; their retweets and quotes, and the deleted rows' quotes, are cleared.
    `CREATE TEMP TABLE c (id INTEGER PRIMARY KEY); INSERT INTO c SELECT id FROM tweets WHERE retweeted_status IN d AND id NOT IN d;`,
    `CREATE TEMP TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a SELECT id FROM d UNION SELECT id FROM c;`,
    `DELETE FROM favorited_by WHERE tweet IN a; DELETE FROM media_tweets WHERE tweets_id IN a;`,
    `UPDATE tweets SET quoted_status = NULL WHERE quoted_status IN a AND id NOT IN a;`,
    `UPDATE tweets SET retweeted_status = NULL WHERE retweeted_status IN c AND id NOT IN a;`,
    `DELETE FROM tweets WHERE id IN a;`,
    `INSERT INTO cs_marks (type, id, state, reason, at) SELECT 'tweets', t.id, m.state, m.state, '${new Date().toISOString()}' FROM m JOIN tweets t ON t.id = m.id WHERE true
       ON CONFLICT (type, id) DO UPDATE SET state = excluded.state, reason = excluded.reason, at = excluded.at;`,
    `UPDATE tweets SET place = NULL, geo = NULL, coordinates = NULL WHERE id IN s AND (place IS NOT NULL OR geo IS NOT NULL OR coordinates IS NOT NULL);`,
    `DELETE FROM media WHERE id NOT IN (SELECT media_id FROM media_tweets);`,
  ],
  twint: [
    `DELETE FROM retweets WHERE tweet_id IN d; DELETE FROM replies WHERE tweet_id IN d; DELETE FROM favorites WHERE tweet_id IN d;`,
    `DELETE FROM tweets WHERE id IN d;`,
    `INSERT INTO cs_marks (type, id, state, reason, at) SELECT 'tweets', t.id, m.state, m.state, '${new Date().toISOString()}' FROM m JOIN tweets t ON t.id = m.id WHERE true
       ON CONFLICT (type, id) DO UPDATE SET state = excluded.state, reason = excluded.reason, at = excluded.at;`,
    `UPDATE tweets SET place = NULL, geo = NULL, near = NULL WHERE id IN s AND (place IS NOT NULL OR geo IS NOT NULL OR near IS NOT NULL);`,
  ],
};
const floorSql = (layout) => FLOOR_SQL[layout === 'foreign-no-fts' ? 'foreign' : layout];

function sqliteFloor(layout, source, csv, run) {
  const { dir, store } = prepare(layout, source, `floor-${run}`);
  if (layout === 'foreign-no-fts') dropFts(store);
  migrateFor(layout, path.join(dir, 'config.json'));
  const script = [
    'PRAGMA journal_mode = WAL;',
    'PRAGMA synchronous = NORMAL;',
    'CREATE TEMP TABLE r (id INTEGER, effect TEXT);',
    `.import --csv --schema temp ${csv} r`,
    `CREATE TEMP TABLE d (id INTEGER PRIMARY KEY); INSERT OR IGNORE INTO d SELECT id FROM r WHERE effect = 'delete';`,
    `CREATE TEMP TABLE m (id INTEGER PRIMARY KEY, state TEXT); INSERT OR REPLACE INTO m SELECT id, effect FROM r WHERE effect IN ('suspended', 'protected', 'edited') AND id NOT IN d;`,
    `CREATE TEMP TABLE s (id INTEGER PRIMARY KEY); INSERT OR IGNORE INTO s SELECT id FROM r WHERE effect = 'scrub' AND id NOT IN d;`,
    'BEGIN;',
    ...floorSql(layout),
    'COMMIT;',
    // As the purge does after an apply: the deleted words leave the index.
    ...(layout === 'foreign' ? ["INSERT INTO tweets_fts (tweets_fts) VALUES ('optimize');"] : []),
  ].join('\n');
  spawnSync('sync');
  const started = performance.now();
  const done = spawnSync('sqlite3', ['-batch', store], { input: script, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (done.status !== 0 || done.stderr) throw new Error(`sqlite3 floor (${layout}) failed: ${done.stderr}`);
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

function dropFts(store) {
  const db = new Database(store);
  for (const table of ['tweets', 'users']) {
    for (const suffix of ['ai', 'ad', 'au']) db.exec(`DROP TRIGGER [${table}_${suffix}]`);
    db.exec(`DROP TABLE [${table}_fts]`);
  }
  db.close();
}

function migrateFor(layout, config) {
  // The opt-in index step (issue 11, item 4) for a foreign store: a one-off, not part of every apply.
  const args = layout === 'default' ? ['migrate', '--config', config] : ['migrate', '--create-indexes', '--config', config];
  const migrated = cliRun(args);
  if (migrated.status !== 0) throw new Error(`${args.join(' ')} failed (exit ${migrated.status}): ${migrated.stderr.slice(-1500)}`);
  if (layout === 'default') fillEmbedIndex(path.join(path.dirname(config), 'store.db'));
}

/**
 * The default layout's index of embedded copies (cs_embeds, filled from every stored tweet by the first apply on a
 * store, once: src/store/embedIndex.ts), filled before the timed apply, as any earlier cycle leaves it, by run.mjs's
 * `fill-embeds` stage (bench/lib/child.mjs): the foreign store maps no raw JSON, so it has none, and the one-off fill
 * (~0.8 s at 200k) is not an apply's steady cost.
 */
function fillEmbedIndex(store) {
  const filled = spawnSync(process.execPath, [path.join(here, 'lib', 'child.mjs'), 'fill-embeds', JSON.stringify({ store })], { encoding: 'utf8' });
  if (filled.status !== 0) throw new Error(`filling the embedded-copies index failed: ${filled.stderr.slice(-1500)}`);
}

/** One apply of the results file; wall time of the whole CLI process (start-up included, the same for all). */
function measure(layout, source, file, run) {
  const { dir, store, config } = prepare(layout, source, run);
  if (layout === 'foreign-no-fts') dropFts(store);
  migrateFor(layout, config);
  spawnSync('sync');
  // The apply process's own CPU (user + system) too: on a shared or drifting machine it moves less than the wall time.
  const usageFile = path.join(dir, 'usage.json');
  const applied = cliRun(['apply', '--type', 'tweets', file, '--confirm-deletions', '--json', '--config', config], { BENCH_USAGE_FILE: usageFile }, [
    '--import',
    path.join(here, 'lib', 'usage-at-exit.mjs'),
  ]);
  if (applied.status !== 0) throw new Error(`${layout} apply failed (exit ${applied.status}):\n${applied.stderr.slice(-3000)}`);
  let summary = null;
  try {
    summary = JSON.parse(applied.stdout);
  } catch {
    // the figures below do not need it
  }
  const storeBytes = statSync(path.join(dir, 'store.db')).size;
  const usage = JSON.parse(readFileSync(usageFile, 'utf8'));
  rmSync(dir, { recursive: true, force: true });
  return { ms: applied.ms, cpuMs: usage.userMs + usage.systemMs, summary, storeBytes };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

if (!existsSync(cli)) throw new Error('dist/cli.js is missing: run `npm run build` first');
log(`data: ${dataDir}`);
log(`generating (cached): default, twitter-to-sqlite and twint stores and results of ${size} …`);
const defaultStore = await makeStore(dataDir, size, dist);
const t2sStore = makeForeignStore(size);
const sources = { default: defaultStore, foreign: t2sStore, 'foreign-no-fts': t2sStore, twint: makeTwintStore(size) };
const { file, csv } = await makeResults(dataDir, size);
const lines = size;

const layouts = breakdown ? ['default', 'foreign', 'foreign-no-fts', 'twint'] : ['default', 'foreign', 'twint'];
const times = Object.fromEntries(layouts.map((l) => [l, []]));
const cpuTimes = Object.fromEntries(layouts.map((l) => [l, []]));
const floorTimes = Object.fromEntries(layouts.map((l) => [l, []]));
let lastSummary = {};
for (let run = 0; run < repeat; run++) {
  // Alternate which goes first, so drift on a shared machine lands on both.
  const order = run % 2 === 0 ? layouts : [...layouts].reverse();
  for (const layout of order) {
    const m = measure(layout, sources[layout], file, run);
    times[layout].push(m.ms);
    cpuTimes[layout].push(m.cpuMs);
    lastSummary[layout] = m.summary;
    log(`run ${run + 1}/${repeat} ${layout}: ${(m.ms / 1000).toFixed(2)} s (CPU ${(m.cpuMs / 1000).toFixed(2)} s)`);
    if (floor) {
      floorTimes[layout].push(sqliteFloor(layout, sources[layout], csv, run));
      log(`run ${run + 1}/${repeat} ${layout} floor (sqlite3, set-based): ${(floorTimes[layout].at(-1) / 1000).toFixed(2)} s`);
    }
  }
}

const rowsPerSecond = (ms) => Math.round(lines / (ms / 1000));
const label = {
  default: 'default layout',
  foreign: 'twitter-to-sqlite layout',
  'foreign-no-fts': 'twitter-to-sqlite layout, FTS5 tables and triggers dropped',
  twint: 'twint layout',
};
const table = layouts.map((layout) => ({
  layout: label[layout],
  lines,
  medianS: median(times[layout]) / 1000,
  rowsPerSecond: rowsPerSecond(median(times[layout])),
  cpuS: median(cpuTimes[layout]) / 1000,
  floorS: floor ? median(floorTimes[layout]) / 1000 : null,
}));
console.log(`| store | result lines | apply wall s (median of ${repeat}) | rows/s | apply CPU s (user + system, median) | sqlite3 floor s (median) |`);
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const row of table) {
  console.log(`| ${row.layout} | ${row.lines} | ${row.medianS.toFixed(2)} | ${row.rowsPerSecond} | ${row.cpuS.toFixed(2)} | ${row.floorS === null ? '' : row.floorS.toFixed(2)} |`);
}
console.log('');
// Per foreign layout: its rows/s against the default's (the ratio of the medians); each round's own ratio (a round's
// layouts ran back to back, so it is less moved by the machine's drift than the medians, which may come from different
// rounds); the ratio of the apply processes' CPU; and that of the sqlite3 floors (what the schemas alone cost).
const ratios = {};
const [base] = table;
for (const [i, layout] of layouts.entries()) {
  if (layout === 'default') continue;
  const row = table[i];
  const ratio = row.rowsPerSecond / base.rowsPerSecond;
  ratios[layout] = ratio;
  const rounds = times.default.map((ms, r) => ms / times[layout][r]);
  console.log(`${row.layout}: ${ratio.toFixed(2)}x the default's rows/s (target ≥ 0.70x): ${ratio >= 0.7 ? 'met' : 'NOT met'}`);
  console.log(`  round by round ${rounds.map((r) => r.toFixed(2)).join(', ')} (median ${median(rounds).toFixed(2)}x); by CPU ${(base.cpuS / row.cpuS).toFixed(2)}x` +
    (floor ? `; the floors' ratio ${(base.floorS / row.floorS).toFixed(2)}x` : ''));
}
for (const layout of ['foreign', 'twint']) {
  const changes = lastSummary[layout]?.changes;
  if (!changes) continue;
  // The apply's own per-table counts: proof the link tables and self-references were part of the work measured.
  const parts = Object.entries(changes).flatMap(([t, kinds]) => Object.entries(kinds).map(([kind, causes]) => `${t} ${kind} ${Object.entries(causes).map(([c, n]) => `${n} (${c})`).join(' + ')}`));
  console.log(`${label[layout]} apply changed: ${parts.join('; ')}`);
}
console.log(`machine: ${os.availableParallelism()} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`);
writeFileSync(path.join(dataDir, 'foreign-results.json'), JSON.stringify({ size, repeat, times, cpuTimes, floorTimes, table, ratios, summaries: lastSummary }, null, 2));
