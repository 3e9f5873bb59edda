import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { openStore } from '../../src/store/open.js';
import { StoredIds } from '../../src/store/storedIds.js';
import { useTempDir } from '../helpers/tmp.js';

const tempDir = useTempDir();

/**
 * A store whose link table holds tweet IDs without a tweets row (twint's retweets.retweet_id), some also stored, one
 * repeated, one NULL, stray text, REAL and negative values, and a 64-bit ID above every stored one.
 */
function store(dir: string, retweetIdType = 'INTEGER') {
  const db = new Database(`${dir}/store.db`);
  db.exec(`CREATE TABLE users (id INTEGER PRIMARY KEY);
    CREATE TABLE tweets (id INTEGER PRIMARY KEY, author_id INTEGER);
    CREATE TABLE retweets (user_id INTEGER NOT NULL, tweet_id INTEGER NOT NULL, retweet_id ${retweetIdType});
    CREATE INDEX retweets_retweet ON retweets (retweet_id);
    INSERT INTO tweets VALUES (1, 7), (3, 7), (5, 7), (9, 7);
    INSERT INTO retweets VALUES (8, 1, 2), (9, 1, 3), (8, 3, 2), (8, 5, NULL), (9, 5, 'n/a'), (7, 5, '2x'), (6, 5, 4.5), (5, 5, -3),
      (8, 9, 1160000000000000123);`);
  db.close();
}

const retweetIds = { table: 'retweets', column: 'retweet_id', references: 'tweets', action: 'delete' };

async function planOf(dir: string, dependents: unknown[], shardSize: number) {
  const config = parseConfig({ store: { path: 'store.db', tables: { tweets: { geoLat: null, geoLon: null, placeId: null, rawJson: null } }, dependents } }, `${dir}/config.json`, {});
  const db = openStore(`${dir}/store.db`);
  try {
    const ids = new StoredIds(db, config, 'tweets');
    const plan = await ids.plan(shardSize);
    return { plan, all: ids.pageAfter(-1n, BigInt(plan.maxId ?? '0'), 100).map(String) };
  } finally {
    db.close();
  }
}

describe('the IDs a cycle checks', () => {
  it("are the mapped table's, and with `check` those of a store.dependents column, merged in order, each once", async () => {
    const dir = tempDir();
    store(dir);
    const { plan, all } = await planOf(dir, [{ ...retweetIds, check: true }], 2);
    expect(all).toEqual(['1', '2', '3', '5', '9', '1160000000000000123']);
    expect(plan).toEqual({
      maxId: '1160000000000000123',
      idCount: 6,
      shards: [
        { firstId: '1', lastId: '2', idCount: 2 },
        { firstId: '3', lastId: '5', idCount: 2 },
        { firstId: '9', lastId: '1160000000000000123', idCount: 2 },
      ],
    });
  });

  it('a last shard shorter than the others is counted, not assumed full', async () => {
    const dir = tempDir();
    store(dir);
    const { plan } = await planOf(dir, [{ ...retweetIds, check: true }], 4);
    expect(plan.shards).toEqual([
      { firstId: '1', lastId: '5', idCount: 4 },
      { firstId: '9', lastId: '1160000000000000123', idCount: 2 },
    ]);
  });

  it('without `check`, a dependents column only says what a deletion acts on', async () => {
    const dir = tempDir();
    store(dir);
    const { plan, all } = await planOf(dir, [retweetIds], 3);
    expect(all).toEqual(['1', '3', '5', '9']);
    expect(plan.idCount).toBe(4);
  });

  it('a checked column without an index is refused, with the statement that makes one', async () => {
    const dir = tempDir();
    store(dir);
    const db = new Database(`${dir}/store.db`);
    db.exec('DROP INDEX retweets_retweet');
    db.close();
    await expect(planOf(dir, [{ ...retweetIds, check: true }], 2)).rejects.toThrow('store.dependents[0].column: "retweets"."retweet_id" has no index');
  });

  it('a checked column that is not INTEGER is refused, naming its config key', async () => {
    const dir = tempDir();
    store(dir, 'TEXT');
    await expect(planOf(dir, [retweetIds, { ...retweetIds, check: true }], 2)).rejects.toThrow(
      'store.dependents[1].column: cycles need an INTEGER id column, but "retweets"."retweet_id" is declared "TEXT"',
    );
  });
});
