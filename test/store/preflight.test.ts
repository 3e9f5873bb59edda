import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { runCycle } from '../../src/pipeline/cycle.js';
import { openRuntime } from '../../src/pipeline/runtime.js';
import { createStore } from '../../src/store/migrate.js';
import { openStore } from '../../src/store/open.js';
import { createMissingIndexes, missingIndexes, preflight } from '../../src/store/preflight.js';
import { createIndexStatement, SchemaInfo } from '../../src/store/schemaInfo.js';
import { useTempDir } from '../helpers/tmp.js';
import { makeWorld, quietLogger, useOpenWorlds } from '../helpers/world.js';

const tempDir = useTempDir();
const open = useOpenWorlds();

const sqlite = (file: string, sql: string) => execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();

function storeWith(ddl: string, raw: Record<string, unknown> = {}): { file: string; config: Config } {
  const dir = tempDir();
  const file = path.join(dir, 'store.db');
  sqlite(file, ddl);
  return { file, config: parseConfig({ store: { path: 'store.db', ...raw } }, path.join(dir, 'config.json'), {}) };
}

const NO_MARK_COLUMNS = { complianceState: null, complianceReason: null, complianceAt: null };
const MINIMAL_TWEETS = { authorId: 'author', geoLat: null, geoLon: null, placeId: null, rawJson: null, ...NO_MARK_COLUMNS };

describe('preflight checks', () => {
  it('refuses an ID column declared REAL (64-bit IDs are rounded there), naming the key', () => {
    const { file, config } = storeWith('CREATE TABLE tweets (id REAL PRIMARY KEY, author INTEGER); CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE INDEX a ON tweets(author);', {
      tables: { tweets: MINIMAL_TWEETS, users: NO_MARK_COLUMNS },
    });
    const db = openStore(file, { readonly: true });
    const result = preflight(db, config, ['tweets']);
    db.close();
    expect(result.problems).toEqual([expect.objectContaining({ key: 'store.tables.tweets.id', message: expect.stringMatching(/declared REAL: 64-bit IDs are rounded/) })]);
  });

  it('refuses a view as the mapped table, and names the tables there are', () => {
    const { file, config } = storeWith('CREATE TABLE statuses (id INTEGER PRIMARY KEY, author INTEGER); CREATE VIEW tweets AS SELECT * FROM statuses; CREATE TABLE users (id INTEGER PRIMARY KEY);', {
      tables: { tweets: MINIMAL_TWEETS, users: NO_MARK_COLUMNS },
    });
    const db = openStore(file, { readonly: true });
    const result = preflight(db, config, ['tweets']);
    db.close();
    expect(result.problems[0]).toMatchObject({ key: 'store.tables.tweets.table', message: '"tweets" is a view, not a table: rows cannot be deleted from it' });
    expect(result.problems[0]!.hint).toContain('tables: statuses, users');
  });

  it('refuses clearing a NOT NULL reference (the engine cannot set it to NULL) and says which store.dependents entry fixes it', () => {
    const { file, config } = storeWith(
      `CREATE TABLE users (id INTEGER PRIMARY KEY);
       CREATE TABLE tweets (id INTEGER PRIMARY KEY, author INTEGER REFERENCES users(id), reply_to INTEGER NOT NULL REFERENCES tweets(id));
       CREATE INDEX a ON tweets(author); CREATE INDEX r ON tweets(reply_to);`,
      { tables: { tweets: MINIMAL_TWEETS, users: NO_MARK_COLUMNS } },
    );
    const db = openStore(file, { readonly: true });
    const result = preflight(db, config, ['tweets']);
    db.close();
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]!.message).toMatch(/"tweets"."reply_to" is NOT NULL/);
    expect(result.problems[0]!.hint).toMatch(/store\.dependents/);
  });

  it('warns about an external-content FTS table that no trigger keeps in step with deletions', () => {
    const { file, config } = storeWith(
      `CREATE TABLE users (id INTEGER PRIMARY KEY);
       CREATE TABLE tweets (id INTEGER PRIMARY KEY, author INTEGER, body TEXT); CREATE INDEX a ON tweets(author);
       CREATE VIRTUAL TABLE tweets_search USING fts5(body, content=tweets, content_rowid=id);`,
      { tables: { tweets: MINIMAL_TWEETS, users: NO_MARK_COLUMNS } },
    );
    const db = openStore(file, { readonly: true });
    const result = preflight(db, config, ['tweets']);
    db.close();
    expect(result.problems).toEqual([]);
    expect(result.types[0]!.fts).toEqual([{ name: 'tweets_search', module: 'fts5', contentTable: 'tweets', keptByTriggers: [] }]);
    expect(result.warnings).toEqual([expect.stringMatching(/"tweets_search" indexes "tweets" but no DELETE or UPDATE trigger on it writes "tweets_search"/)]);
  });

  it('needs an index even on an empty child table: the rule does not change as the archive grows', () => {
    const { file, config } = storeWith(
      `CREATE TABLE users (id INTEGER PRIMARY KEY);
       CREATE TABLE tweets (id INTEGER PRIMARY KEY, author INTEGER REFERENCES users(id)); CREATE INDEX a ON tweets(author);
       CREATE TABLE "tweet tags" ("tweet id" INTEGER REFERENCES tweets(id), tag TEXT);`,
      { tables: { tweets: MINIMAL_TWEETS, users: NO_MARK_COLUMNS } },
    );
    let db = openStore(file, { readonly: true });
    const before = preflight(db, config, ['tweets']);
    db.close();
    expect(before.indexes.filter((n) => !n.present)).toEqual([
      expect.objectContaining({ table: 'tweet tags', column: 'tweet id', rows: 0, create: 'CREATE INDEX IF NOT EXISTS "cs_idx_tweet_tags_tweet_id" ON "tweet tags"("tweet id")' }),
    ]);
    expect(before.problems.map((p) => p.key)).toEqual(['migrate --create-indexes']);

    db = openStore(file);
    expect(createMissingIndexes(db, config, ['tweets', 'users']).map((n) => n.column)).toEqual(['tweet id']);
    expect(new SchemaInfo(db).hasLeadingIndex('tweet tags', 'tweet id')).toBe(true);
    expect(preflight(db, config, ['tweets', 'users']).problems).toEqual([]);
    db.close();
  });

  it('answers for any list of (table, column) pairs, with a rough cost from the table itself', () => {
    const { file } = storeWith(
      `CREATE TABLE links (tweet INTEGER, url TEXT);
       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO links SELECT 1500000000000000000 + i, 'u' FROM n;`,
    );
    const db = openStore(file, { readonly: true });
    const [need] = missingIndexes(db, [{ table: 'links', column: 'tweet', why: 'test' }]);
    db.close();
    expect(need).toMatchObject({ present: false, rows: 5000 });
    // 8-byte keys, a rowid and a cell header per entry at ~90% fill: 5000 × 22 / 0.9.
    expect(need!.bytes).toBe(Math.round((5000 * 22) / 0.9));
    expect(createIndexStatement('we"ird', 'co l')).toBe('CREATE INDEX IF NOT EXISTS "cs_idx_we_ird_co_l" ON "we""ird"("co l")');
  });
});

describe('preflight at each cycle start (the daemon)', () => {
  it('a column dropped while the process runs: the next cycle refuses before any job or ledger write', async () => {
    const world = await makeWorld(tempDir(), { tweets: 100, users: 10 });
    const runtime = openRuntime(world.config, quietLogger(), world.env);
    open.push({ world, runtime });
    sqlite(world.storePath, 'ALTER TABLE tweets DROP COLUMN raw_json');
    const attempt = runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'schedule' });
    await expect(attempt).rejects.toThrow(ConfigError);
    await expect(attempt).rejects.toThrow(/^store\.tables\.tweets\.rawJson \(store .*\): table "tweets" has no column "raw_json"/);
    expect(world.emulator.jobs()).toEqual([]);
    expect(runtime.ledger.openCycle('tweets')).toBeNull();
    expect(sqlite(world.storePath, 'SELECT count(*) FROM cs_cycles')).toBe('0');
  });

  it('a new store from createStore passes preflight for both types', () => {
    const dir = tempDir();
    const db = createStore(path.join(dir, 'store.db'));
    const config = parseConfig({ store: { path: 'store.db' } }, path.join(dir, 'config.json'), {});
    const result = preflight(db, config, ['tweets', 'users']);
    db.close();
    expect(result.problems).toEqual([]);
    expect(result.indexes.map((n) => `${n.table}.${n.column}`)).toEqual(['tweets.id', 'users.id', 'tweets.author_id']);
  });
});
