import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/server.js';
import { createStore } from '../../src/store/migrate.js';
import { cleanEnv, runCli, type CliResult } from '../helpers/cli.js';
import { buildLayoutStore, layoutStoreConfig, makeArchive } from '../helpers/layouts.js';
import { useFileTempDir, useTempDir, writeJson } from '../helpers/tmp.js';
import { SEED, TOKEN, useEmulators } from '../helpers/world.js';

/**
 * Issues 11.1, 11.4, 11.7, 13.2 and 13.3 at the CLI: a store is never created by mistake, read-only commands never
 * alter one, and every schema check runs before the first API call or write, for foreign layouts and the default one.
 */

const tempDir = useTempDir();
const fileTempDir = useFileTempDir();
const emulators = useEmulators();

const env = { ...cleanEnv(), X_BEARER_TOKEN: TOKEN };
const hash = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const sqlite = (file: string, sql: string) => execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();

async function emulator(): Promise<Emulator> {
  const started = await startEmulator({ token: TOKEN, seed: SEED, processingMs: 50, rateLimit: { limit: 100_000 } });
  emulators.push(started);
  return started;
}

/**
 * One twitter-to-sqlite archive for the file, built in beforeAll, and the read-only commands that 11.1 and 11.4 look at,
 * each spawned once on it there (a spawn costs ~0.3 s of CPU): status, report, check-config --store as text and JSON.
 * The tests that run a command that may write get a copy of the archive as it was built.
 */
let archive: {
  dir: string;
  storePath: string;
  pristine: string;
  before: string;
  after: string;
  status: CliResult;
  statusJson: CliResult;
  report: CliResult;
  check: CliResult;
  checkJson: CliResult;
};
beforeAll(() => {
  const dir = fileTempDir();
  const storePath = path.join(dir, 'store.db');
  buildLayoutStore('twitter-to-sqlite', storePath, makeArchive({ tweets: 200, users: 20, seed: 5 }), env);
  const pristine = path.join(fileTempDir(), 'store.db');
  copyFileSync(storePath, pristine);
  const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db', ...layoutStoreConfig('twitter-to-sqlite') } });
  const before = hash(storePath);
  const status = runCli(['status', '--config', config], { env });
  const statusJson = runCli(['status', '--json', '--config', config], { env });
  const report = runCli(['report', '--config', config], { env });
  const check = runCli(['check-config', '--store', '--config', config], { env });
  const checkJson = runCli(['check-config', '--store', '--json', '--config', config], { env });
  archive = { dir, storePath, pristine, before, after: hash(storePath), status, statusJson, report, check, checkJson };
});

/** The twitter-to-sqlite archive as built, copied to dir/store.db (its journal mode is delete: the file is all of it). */
function twitterToSqliteStore(dir: string): string {
  const storePath = path.join(dir, 'store.db');
  copyFileSync(archive.pristine, storePath);
  return storePath;
}

describe('a store is created only on purpose (13.2)', () => {
  it('a mistyped store.path: every command but migrate --create exits 78 naming the path, and nothing is created', () => {
    const dir = tempDir();
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'typo/store.db' }, api: { baseUrl: 'http://127.0.0.1:9' } });
    const results = path.join(dir, 'results.ndjson');
    writeFileSync(results, '{"id":"1","action":"delete","reason":"deleted","created_at":"2026-01-01T00:00:00.000Z"}\n');
    const commands = [
      ['status'],
      ['report'],
      ['check-config', '--store'],
      ['migrate'],
      ['migrate', '--create-indexes'],
      ['reconcile', '--now'],
      ['run'],
      ['apply', '--type', 'tweets', results],
      ['apply', '--type', 'tweets', '--dry-run', results],
      ['export', '--type', 'tweets', '--out', path.join(dir, 'out')],
    ];
    for (const command of commands) {
      const run = runCli([...command, '--config', config], { env });
      expect(run.code, `${command.join(' ')}: ${run.stderr}`).toBe(78);
      expect(run.stderr).toContain(`store.path: there is no store at ${path.join(dir, 'typo/store.db')}`);
      expect(run.stderr).toContain(`Try: `);
      expect(run.stderr).toContain(`compliance-sync migrate --create --config ${config}`);
    }
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'results.ndjson']);

    const created = runCli(['migrate', '--create', '--config', config], { env });
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('created with the default tables and the ledger');
    expect(sqlite(path.join(dir, 'typo/store.db'), 'SELECT count(*) FROM tweets')).toBe('0');
  });

  it('migrate --create refuses a new file when store.tables names tables a new store would not have', () => {
    const dir = tempDir();
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'archive.db', ...layoutStoreConfig('twitter-to-sqlite') } });
    const run = runCli(['migrate', '--create', '--config', config], { env });
    expect(run.code).toBe(78);
    expect(run.stderr).toMatch(/store\.tables maps tables a new store would not have/);
    expect(readdirSync(dir)).toEqual(['config.json']);
  });
});

describe('read-only commands never alter a store (11.1)', () => {
  it('status, report and check-config --store on an archive no compliance-sync has touched', () => {
    const { dir, storePath, status, statusJson, report, check } = archive;
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/ledger\s+not migrated yet/);
    expect(status.stdout).toMatch(/rows in tweets\s+\d+/);
    expect(JSON.parse(statusJson.stdout).ledger).toMatchObject({ version: 0, state: 'not migrated yet' });

    expect(report.code).toBe(1);
    expect(report.stderr).toMatch(/is not migrated yet: no compliance cycle has run on it/);

    expect(check.code).toBe(78);
    expect(check.stdout).toMatch(/ledger: not migrated yet/);

    // The hash after all of them (check-config --store --json too, which the next test reads).
    expect(archive.after).toBe(archive.before);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'store.db']);
    expect(sqlite(storePath, 'PRAGMA journal_mode')).toBe('delete');
  });
});

describe('check-config --store: what a cycle would do to a twitter-to-sqlite archive (11.4, 11.7)', () => {
  it('prints columns per key, marks, relations and their actions, FTS, triggers and the missing indexes; migrate --create-indexes makes them', () => {
    const text = archive.check;
    expect(text.code).toBe(78);
    expect(text.stdout).toMatch(/store\.tables\.tweets\.authorId\s+"user" found \(INTEGER\)/);
    expect(text.stdout).toMatch(/store\.tables\.tweets\.geoColumns\[0\]\s+"geo" found/);
    expect(text.stdout).toContain('marks: in the ledger table cs_marks');
    expect(text.stdout).toContain('media_tweets.tweets_id → tweets.id: rows deleted first (default; declared ON DELETE NO ACTION)');
    expect(text.stdout).toContain('tweets.retweeted_status → tweets.id: copies: deleted first, each with its tombstone and dependents (default; declared ON DELETE NO ACTION)');
    expect(text.stdout).toContain('tweets.quoted_status → tweets.id: set to NULL first');
    // Issue 12: the orphan rules it will apply, configured and discovered, and the index each probe needs.
    expect(text.stdout).toContain('orphans deleted after each batch (rows nothing references any more):\n  places.id, referenced by tweets.place (store.orphans)\n  media.id, referenced by media_tweets.media_id (discovered)');
    expect(text.stdout).toMatch(/MISSING {2}tweets\(place\): .*"cs_idx_tweets_place"/);
    expect(text.stdout).toContain("foreign-key enforcement while a batch applies: off (compliance-sync's own statements keep every key");
    expect(text.stdout).toContain('tweets.user → users.id: rows deleted first (reconcile.cascadeUsers');
    expect(text.stdout).toMatch(/full-text table tweets_fts \(fts5, content=tweets\): kept by triggers \w+/);
    expect(text.stdout).toMatch(/triggers that fire:\n(?:.*\n)*\s+\w+: AFTER DELETE ON tweets/);
    expect(text.stdout).toMatch(/MISSING {2}media_tweets\(tweets_id\): CREATE INDEX IF NOT EXISTS "cs_idx_media_tweets_tweets_id" ON "media_tweets"\("tweets_id"\) — media_tweets has \d+ rows; the index takes ~\d+ KiB/);
    expect(text.stderr).toMatch(/the first at migrate --create-indexes/);

    const json = JSON.parse(archive.checkJson.stdout);
    expect(json.store.foreignKeyEnforcement.whileApplying).toBe('off');
    const tweets = json.store.types.find((t: { type: string }) => t.type === 'tweets');
    expect(tweets.marks).toEqual({ where: 'side table', table: 'cs_marks' });
    expect(tweets.relations).toContainEqual({
      childTable: 'favorited_by',
      childColumn: 'tweet',
      parentTable: 'tweets',
      parentColumn: 'id',
      action: 'delete',
      declaredOnDelete: 'NO ACTION',
      source: 'default',
    });
    const missing = json.store.indexes.filter((i: { present: boolean }) => !i.present);
    expect(missing.length).toBeGreaterThan(0);
    for (const need of missing) expect(need.rows).toBeGreaterThanOrEqual(0);
    expect(archive.after).toBe(archive.before);

    // migrate writes: on a copy of the archive.
    const dir = tempDir();
    const storePath = twitterToSqliteStore(dir);
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db', ...layoutStoreConfig('twitter-to-sqlite') } });
    const created = runCli(['migrate', '--create-indexes', '--config', config], { env });
    expect(created.code, created.stderr).toBe(0);
    const indexNames = sqlite(storePath, "SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'cs_idx_%' ORDER BY name").split('\n');
    expect(indexNames).toHaveLength(missing.length);
    const after = runCli(['check-config', '--store', '--json', '--config', config], { env });
    expect(after.code, after.stderr).toBe(0);
    const afterJson = JSON.parse(after.stdout);
    expect(afterJson.store.problems).toEqual([]);
    expect(afterJson.store.indexes.every((i: { present: boolean }) => i.present)).toBe(true);
    expect(afterJson.store.ledger).toMatchObject({ pending: [] });
  });
});

describe('preflight before any API call or write (13.3)', () => {
  it('a default store lacking a mapped column: reconcile --now spends no job, opens no cycle, exits 78 naming the key', async () => {
    const api = await emulator();
    const dir = tempDir();
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db' }, api: { baseUrl: api.url, timeoutSeconds: 10 }, jobs: { pollIntervalSeconds: 0.1 } });
    // A new default store as migrate --create makes it (src/cli/migrate.ts); that command's own test is in foundation.test.ts.
    const storePath = path.join(dir, 'store.db');
    createStore(storePath).close();
    sqlite(storePath, 'INSERT INTO users (id) VALUES (1), (2); INSERT INTO tweets (id, author_id) VALUES (10, 1), (11, 2); ALTER TABLE tweets DROP COLUMN geo_lat;');

    const run = runCli(['reconcile', '--now', '--config', config], { env });
    expect(run.code, run.stderr).toBe(78);
    expect(run.stderr).toMatch(/^compliance-sync: store\.tables\.tweets\.geoLat \(store .*store\.db\): table "tweets" has no column "geo_lat"/m);
    expect(run.stderr).toMatch(/^Try: set store\.tables\.tweets\.geoLat to the column's real name .*or to null/m);
    expect(api.jobs()).toEqual([]);
    expect(sqlite(storePath, 'SELECT count(*) FROM cs_cycles')).toBe('0');
    expect(sqlite(storePath, 'SELECT count(*) FROM cs_apply_runs')).toBe('0');

    // The same refusal for one type (users cascades onto tweets), and for the daemon before it schedules anything.
    expect(runCli(['reconcile', '--now', '--type', 'users', '--config', config], { env }).code).toBe(78);
    const daemon = runCli(['run', '--config', config], { env });
    expect(daemon.code).toBe(78);
    expect(daemon.stderr).toContain('store.tables.tweets.geoLat');
    expect(api.jobs()).toEqual([]);
    expect(sqlite(storePath, 'SELECT count(*) FROM cs_cycles')).toBe('0');
  });

  it('a foreign archive with a mistyped mapping: reconcile, run and apply write nothing at all to it', async () => {
    const api = await emulator();
    const dir = tempDir();
    const storePath = twitterToSqliteStore(dir);
    const mapping = layoutStoreConfig('twitter-to-sqlite') as { tables: { tweets: Record<string, unknown> } };
    mapping.tables.tweets.authorId = 'user_id'; // the column is "user"
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db', ...mapping }, api: { baseUrl: api.url, timeoutSeconds: 10 } });
    const results = path.join(dir, 'results.ndjson');
    writeFileSync(results, '{"id":"1","action":"delete","reason":"deleted","created_at":"2026-01-01T00:00:00.000Z"}\n');
    const before = hash(storePath);

    for (const command of [['reconcile', '--now'], ['run'], ['apply', '--type', 'users', results], ['apply', '--type', 'tweets', '--dry-run', results]]) {
      const run = runCli([...command, '--config', config], { env });
      expect(run.code, `${command.join(' ')}: ${run.stderr}`).toBe(78);
      expect(run.stderr).toContain('store.tables.tweets.authorId');
      expect(run.stderr).toContain('table "tweets" has no column "user_id"');
    }
    expect(api.jobs()).toEqual([]);
    expect(hash(storePath)).toBe(before);
    expect(existsSync(`${storePath}-wal`)).toBe(false);
    expect(sqlite(storePath, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'cs%'")).toBe('0');
    expect(sqlite(storePath, 'PRAGMA journal_mode')).toBe('delete');
  });

  it('missing indexes: reconcile --now refuses with the CREATE INDEX statements and their cost, before any job', async () => {
    const api = await emulator();
    const dir = tempDir();
    const storePath = twitterToSqliteStore(dir);
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db', ...layoutStoreConfig('twitter-to-sqlite') }, api: { baseUrl: api.url, timeoutSeconds: 10 } });
    const run = runCli(['reconcile', '--now', '--config', config], { env });
    expect(run.code).toBe(78);
    expect(run.stderr).toMatch(/^compliance-sync: migrate --create-indexes \(store .*\): \d+ indexes the work needs are missing/m);
    expect(run.stderr).toMatch(/CREATE INDEX IF NOT EXISTS "cs_idx_tweets_user" ON "tweets"\("user"\);\s+-- store\.tables\.tweets\.authorId: .*tweets has 200 rows; the index takes ~\d+ KiB/);
    expect(run.stderr).toContain(`Try: compliance-sync migrate --create-indexes --config ${config}`);
    expect(api.jobs()).toEqual([]);
    expect(sqlite(storePath, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'cs%'")).toBe('0');
  });
});
