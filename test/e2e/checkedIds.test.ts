import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { buildLayoutStore, layoutStoreConfig, makeArchive } from '../helpers/layouts.js';
import { useTempDir, writeJson } from '../helpers/tmp.js';
import { spawnCli, startPinnedEmulator, TOKEN, useEmulators } from '../helpers/world.js';

/**
 * twint stores a retweet as its original tweet and keeps the retweet's own ID only in retweets.retweet_id (README.md,
 * the twint example). With `check` on the store.dependents entry of that column, a cycle asks X about those IDs too,
 * and a deleted retweet takes its retweets row with it.
 */

const tempDir = useTempDir();
const emulators = useEmulators();

const env = { ...cleanEnv(), X_BEARER_TOKEN: TOKEN };
const RETWEET_IDS = { table: 'retweets', column: 'retweet_id', references: 'tweets', action: 'delete', check: true };

function read<T>(storePath: string, sql: string): T[] {
  const db = new Database(storePath, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    return db.prepare(sql).raw().all() as T[];
  } finally {
    db.close();
  }
}

describe("IDs a collector keeps without a row of the mapped table (twint's retweets.retweet_id)", () => {
  it('a cycle checks them with the stored IDs, and a deleted one takes the rows holding it; the others stay', async () => {
    const dir = tempDir();
    const storePath = path.join(dir, 'store.db');
    buildLayoutStore('twint', storePath, makeArchive({ tweets: 300, users: 30, seed: 4 }), env);
    const retweetIds = read<[bigint]>(storePath, 'SELECT DISTINCT retweet_id FROM retweets WHERE retweet_id NOT IN (SELECT id FROM tweets) ORDER BY 1').map(([id]) => String(id));
    expect(retweetIds.length).toBeGreaterThan(4);
    const deleted = [retweetIds[0]!, retweetIds.at(-1)!];
    const [[tweetsBefore, retweetsBefore, checkedIds]] = read<[bigint, bigint, bigint]>(
      storePath,
      'SELECT (SELECT count(*) FROM tweets), (SELECT count(*) FROM retweets), (SELECT count(*) FROM (SELECT id FROM tweets UNION SELECT retweet_id FROM retweets))',
    );

    // Every other ID is compliant: only the pinned retweets need action.
    const emulator = await startPinnedEmulator(emulators, new Map(deleted.map((id) => [id, { action: 'delete', reason: 'deleted' }])));
    const configPath = writeJson(path.join(dir, 'config.json'), {
      store: { path: 'store.db', ...layoutStoreConfig('twint'), dependents: [RETWEET_IDS] },
      api: { baseUrl: emulator.url, timeoutSeconds: 10 },
      jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 },
      log: { level: 'info' },
    });

    const indexes = runCli(['migrate', '--create-indexes', '--config', configPath], { env });
    expect(indexes.code, indexes.stderr).toBe(0);
    const preflight = runCli(['check-config', '--store', '--config', configPath], { env });
    expect(preflight.code, preflight.stderr).toBe(0);
    expect(preflight.stdout).toContain('IDs checked besides the stored rows: retweets.retweet_id (store.dependents[0].check)');
    const run = spawnCli(['reconcile', '--now', '--config', configPath], env);
    expect((await run.exit).code, run.stderr().slice(-2000)).toBe(0);

    const idList = deleted.join(', ');
    expect(read(storePath, `SELECT count(*) FROM retweets WHERE retweet_id IN (${idList})`)).toEqual([[0n]]);
    const [[retweetsGone]] = read<[bigint]>(storePath, `SELECT ${retweetsBefore} - count(*) FROM retweets`);
    expect(retweetsGone).toBeGreaterThanOrEqual(2n);
    expect(read(storePath, 'SELECT count(*) FROM tweets')).toEqual([[tweetsBefore]]);
    expect(read(storePath, `SELECT count(*) FROM retweets WHERE retweet_id IN (${retweetIds.slice(1, -1).join(', ')})`)).toEqual([[BigInt(retweetIds.length - 2)]]);
    expect(read<[bigint]>(storePath, `SELECT id FROM cs_tombstones WHERE type = 'tweets' ORDER BY id`).map(([id]) => String(id))).toEqual(deleted);
    // The tweets cycle uploaded the stored IDs and the retweet IDs, each once.
    expect(read(storePath, "SELECT sum(s.id_count) FROM cs_shards s JOIN cs_cycles c ON c.id = s.cycle_id WHERE c.type = 'tweets'")).toEqual([[checkedIds]]);
  }, 60_000);
});
