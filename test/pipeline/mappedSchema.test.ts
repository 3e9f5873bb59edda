import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError, StoreError } from '../../src/errors.js';
import { migrate } from '../../src/store/migrate.js';
import { openStore } from '../../src/store/open.js';
import { useTempDir } from '../helpers/tmp.js';
import { apply, AS_OF, makeConfig, result, writeResults } from './helpers.js';

const tempDir = useTempDir();

const sqlite = (file: string, sql: string) => execFileSync('sqlite3', [file], { input: sql, encoding: 'utf8' });

/** An owner's existing archive, made with the sqlite3 shell: its own names, TEXT user IDs, no place column. */
const ARCHIVE = `
CREATE TABLE posts (post_id INTEGER PRIMARY KEY, by_user TEXT, lat REAL, lon REAL, payload TEXT,
                    cstate TEXT, creason TEXT, cwhen TEXT, body TEXT);
CREATE INDEX posts_by_user ON posts(by_user);
CREATE TABLE people (uid TEXT PRIMARY KEY, handle TEXT, cstate TEXT, creason TEXT, cwhen TEXT);
INSERT INTO posts VALUES (9007199254740992, '9007199254740993', 1.5, 2.5, '{"geo":{"a":1},"place":{},"text":"a"}', NULL, NULL, NULL, 'one');
INSERT INTO posts VALUES (9007199254740993, '9007199254740993', NULL, NULL, '{"text":"b"}', NULL, NULL, NULL, 'two');
INSERT INTO posts VALUES (9007199254740994, '42', 3.5, 4.5, '{"coordinates":[1,2],"text":"c"}', NULL, NULL, NULL, 'three');
INSERT INTO people VALUES ('9007199254740993', 'alice', NULL, NULL, NULL);
INSERT INTO people VALUES ('9007199254740992', 'bob', NULL, NULL, NULL);
INSERT INTO people VALUES ('42', 'carol', NULL, NULL, NULL);
`;

const MAPPING = {
  tweets: { table: 'posts', id: 'post_id', authorId: 'by_user', geoLat: 'lat', geoLon: 'lon', placeId: null, rawJson: 'payload',
    complianceState: 'cstate', complianceReason: 'creason', complianceAt: 'cwhen' },
  users: { table: 'people', id: 'uid', complianceState: 'cstate', complianceReason: 'creason', complianceAt: 'cwhen' },
};

function archive(dir: string, tables: Record<string, unknown> = MAPPING) {
  const config = makeConfig(dir, { store: { path: 'archive.db', tables } });
  sqlite(config.store.path, ARCHIVE);
  const db = openStore(config.store.path);
  migrate(db); // adds the ledger (cs_* tables) and nothing else
  return { config, db };
}

describe('a mapped existing schema', () => {
  it('applies tweets and users results to the mapped tables and columns', async () => {
    const dir = tempDir();
    const { config, db } = archive(dir);
    const tweets = await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('9007199254740994', 'scrub_geo'), result('9007199254740992', 'suspended')]));
    expect(tweets).toMatchObject({ applied: { mark: 1, scrub_geo: 1 }, notFound: 0 });
    const users = await apply(db, config, 'users', writeResults(dir, 'u.ndjson', [result('9007199254740993', 'protected'), result('42', 'deleted')]));
    expect(users).toMatchObject({ applied: { mark: 1, delete: 1 }, cascaded: { deleted: 1, marked: 1 } });
    expect(sqlite(config.store.path, 'SELECT post_id, lat, lon, payload, cstate, creason, cwhen FROM posts ORDER BY post_id;').trim().split('\n')).toEqual([
      `9007199254740992|1.5|2.5|{"geo":{"a":1},"place":{},"text":"a"}|suspended|suspended|${AS_OF}`,
      `9007199254740993|||{"text":"b"}|protected|author_protected|${AS_OF}`,
    ]);
    expect(sqlite(config.store.path, 'SELECT uid, cstate, creason FROM people ORDER BY uid;').trim().split('\n')).toEqual([
      '9007199254740992||',
      '9007199254740993|protected|protected',
    ]);
    db.close();
  });

  it('a column the store lacks fails at start naming the table, the column and the config key', async () => {
    const dir = tempDir();
    const { config, db } = archive(dir, { ...MAPPING, tweets: { ...MAPPING.tweets, placeId: 'place_id' } });
    const file = writeResults(dir, 't.ndjson', [result('9007199254740994', 'deleted')]);
    const error = await apply(db, config, 'tweets', file).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).toBe('table "posts" has no column "place_id" (store.tables.tweets.placeId)');
    expect((error as StoreError).hint).toContain('or to null');
    expect(sqlite(config.store.path, 'SELECT count(*) FROM posts; SELECT count(*) FROM cs_apply_runs;')).toBe('3\n0\n');
    const noTable = makeConfig(dir, { store: { path: 'archive.db', tables: { ...MAPPING, users: { ...MAPPING.users, table: 'accounts' } } } });
    await expect(apply(db, noTable, 'users', file)).rejects.toThrow('the store has no table "accounts" (store.tables.users.table)');
    const noAuthor = makeConfig(dir, { store: { path: 'archive.db', tables: { ...MAPPING, tweets: { ...MAPPING.tweets, authorId: null } } } });
    await expect(apply(db, noAuthor, 'users', file)).rejects.toBeInstanceOf(ConfigError);
    db.close();
  });
});
