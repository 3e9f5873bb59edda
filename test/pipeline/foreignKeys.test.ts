import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { ConfigError, StoreError } from '../../src/errors.js';
import { applyRunsOf } from '../../src/store/applyRuns.js';
import { migrate } from '../../src/store/migrate.js';
import { openStore, type Db } from '../../src/store/open.js';
import { resolveTarget } from '../../src/store/target.js';
import { useTempDir } from '../helpers/tmp.js';
import { apply, AS_OF, makeConfig, makeStore, result, writeResults } from './helpers.js';

const tempDir = useTempDir();

/**
 * A collector's layout (twitter-to-sqlite's, reduced): the author column `user`, link tables and self-references
 * declared without ON DELETE, GeoJSON text columns, no raw JSON, no compliance columns, FTS5 kept by triggers.
 */
const COLLECTOR = `
CREATE TABLE [users] ([id] INTEGER PRIMARY KEY, [screen_name] TEXT, [name] TEXT, [description] TEXT);
CREATE TABLE [places] ([id] TEXT PRIMARY KEY, [full_name] TEXT);
CREATE TABLE [tweets] ([id] INTEGER PRIMARY KEY, [user] INTEGER REFERENCES [users]([id]), [full_text] TEXT,
  [retweeted_status] INTEGER REFERENCES [tweets]([id]), [quoted_status] INTEGER REFERENCES [tweets]([id]),
  [place] TEXT REFERENCES [places]([id]), [geo] TEXT, [coordinates] TEXT);
CREATE TABLE [media] ([id] INTEGER PRIMARY KEY, [media_url] TEXT);
CREATE TABLE [media_tweets] ([media_id] INTEGER REFERENCES [media]([id]), [tweets_id] INTEGER REFERENCES [tweets]([id]),
  PRIMARY KEY ([media_id], [tweets_id]));
CREATE TABLE [following] ([followed_id] INTEGER REFERENCES [users]([id]), [follower_id] INTEGER REFERENCES [users]([id]),
  PRIMARY KEY ([followed_id], [follower_id]));
CREATE INDEX idx_tweets_user ON tweets([user]);
CREATE INDEX idx_tweets_rt ON tweets(retweeted_status);
CREATE INDEX idx_tweets_qt ON tweets(quoted_status);
CREATE INDEX idx_media_tweets_t ON media_tweets(tweets_id);
CREATE INDEX idx_following_follower ON following(follower_id);
CREATE VIRTUAL TABLE [tweets_fts] USING FTS5 ([full_text], content=[tweets]);
CREATE TRIGGER [tweets_ai] AFTER INSERT ON [tweets] BEGIN
  INSERT INTO [tweets_fts] (rowid, [full_text]) VALUES (new.rowid, new.[full_text]); END;
CREATE TRIGGER [tweets_ad] AFTER DELETE ON [tweets] BEGIN
  INSERT INTO [tweets_fts] ([tweets_fts], rowid, [full_text]) VALUES('delete', old.rowid, old.[full_text]); END;
CREATE TRIGGER [tweets_au] AFTER UPDATE ON [tweets] BEGIN
  INSERT INTO [tweets_fts] ([tweets_fts], rowid, [full_text]) VALUES('delete', old.rowid, old.[full_text]);
  INSERT INTO [tweets_fts] (rowid, [full_text]) VALUES (new.rowid, new.[full_text]); END;

INSERT INTO users VALUES (1, 'ann', 'Ann', 'a'), (2, 'bob', 'Bob', 'b'), (3, 'cyd', 'Cyd', 'c');
INSERT INTO places VALUES ('p1', 'Somewhere');
INSERT INTO media VALUES (100, 'https://m/100.jpg'), (101, 'https://m/101.jpg');
INSERT INTO tweets VALUES
  (10, 1, 'zebra original', NULL, NULL, 'p1', '{"type":"Point","coordinates":[1,2]}', '{"type":"Point","coordinates":[2,1]}'),
  (11, 2, 'RT zebra', 10, NULL, NULL, NULL, NULL),
  (12, 2, 'quoting zebra', NULL, 10, NULL, NULL, NULL),
  (13, 3, 'yak by cyd', NULL, NULL, NULL, NULL, NULL),
  (14, 1, 'RT yak', 13, NULL, NULL, NULL, NULL),
  (15, 3, 'walrus by cyd', NULL, 14, NULL, NULL, NULL),
  (16, 2, 'bob protected', NULL, NULL, NULL, NULL, NULL),
  (17, 1, 'ann somewhere', NULL, NULL, 'p1', '{"type":"Point","coordinates":[3,4]}', '{"type":"Point","coordinates":[4,3]}');
INSERT INTO media_tweets VALUES (100, 10), (101, 13), (101, 15);
INSERT INTO following VALUES (1, 2), (2, 3), (3, 1);
`;

const COLLECTOR_MAPPING = {
  tweets: { table: 'tweets', id: 'id', authorId: 'user', geoLat: null, geoLon: null, placeId: 'place', rawJson: null,
    geoColumns: ['geo', 'coordinates'], complianceState: null, complianceReason: null, complianceAt: null },
  users: { table: 'users', id: 'id', complianceState: null, complianceReason: null, complianceAt: null },
};

/**
 * Issue 11's behaviour, which these tests pin: a retweet's pointer cleared (not deleted as a copy), media left as they
 * are (not swept as orphans). Copies and orphans, the defaults since issue 12, are test/store/copies.test.ts's.
 */
const POINTERS_ONLY = {
  dependents: [{ table: 'tweets', column: 'retweeted_status', references: 'tweets', action: 'set_null' }],
  orphans: [{ table: 'media', keep: true }],
};

/** A store in someone else's layout plus our ledger: the default tables the first migration makes are replaced. */
function foreignStore(dir: string, schema: string, raw: Record<string, unknown>): { config: ReturnType<typeof makeConfig>; db: Db } {
  const config = makeConfig(dir, raw);
  // Written the way collectors write: without FK enforcement (twint's keys could not even be enforced).
  const collector = new Database(config.store.path);
  collector.pragma('foreign_keys = OFF'); // better-sqlite3 turns them on by default; the sqlite3 library does not
  collector.exec(schema);
  collector.close();
  const db = openStore(config.store.path);
  migrate(db);
  return { config, db };
}

const counts = (db: Db) =>
  Object.fromEntries(
    (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'cs\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%' AND name NOT LIKE '%fts%'").pluck().all() as string[]).map(
      (t) => [t, Number(db.prepare(`SELECT count(*) FROM "${t}"`).pluck().get())],
    ),
  );

/** Rows that left each table (deleted less inserted) as the ledger recorded them for these runs. */
function recordedDeletions(db: Db, runIds: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of runIds) {
    for (const c of applyRunsOf(db).changeCounts(id)) {
      if (c.kind === 'deleted') out[c.table] = (out[c.table] ?? 0) + c.count;
      if (c.kind === 'inserted') out[c.table] = (out[c.table] ?? 0) - c.count;
    }
  }
  return out;
}

function diff(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(before).filter(([t, n]) => n !== after[t]).map(([t, n]) => [t, n - after[t]!]));
}

const column = (db: Db, sql: string) => db.prepare(sql).raw().all().map((row) => (row as unknown[]).map((v) => (typeof v === 'bigint' ? Number(v) : v)));

function storeChecks(db: Db) {
  expect(db.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  expect(() => db.exec("INSERT INTO tweets_fts(tweets_fts) VALUES ('integrity-check')")).not.toThrow();
}

describe('foreign keys of a collector layout, marks in the ledger', () => {
  it('deletes link rows, clears self-references and deletes an author\'s tweets before the user, in one valid order', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, COLLECTOR, { store: { path: 'store.db', tables: COLLECTOR_MAPPING, ...POINTERS_ONLY } });
    const before = counts(db);
    const tweets = await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('10', 'deleted'), result('16', 'protected'), result('17', 'scrub_geo')]));
    expect(tweets).toMatchObject({ state: 'done', applied: { delete: 1, mark: 1, scrub_geo: 1 }, notFound: 0 });
    const users = await apply(db, config, 'users', writeResults(dir, 'u.ndjson', [result('3', 'deactivated'), result('2', 'suspended')]));
    expect(users).toMatchObject({ state: 'done', applied: { delete: 1, mark: 1 }, cascaded: { deleted: 2, marked: 2 } });

    expect(column(db, 'SELECT id, user, retweeted_status, quoted_status, place, geo, coordinates FROM tweets ORDER BY id')).toEqual([
      [11, 2, null, null, null, null, null],
      [12, 2, null, null, null, null, null],
      [14, 1, null, null, null, null, null],
      [16, 2, null, null, null, null, null],
      [17, 1, null, null, null, null, null],
    ]);
    expect(column(db, 'SELECT media_id, tweets_id FROM media_tweets')).toEqual([]);
    expect(column(db, 'SELECT followed_id, follower_id FROM following')).toEqual([[1, 2]]);
    expect(column(db, 'SELECT id FROM users ORDER BY id')).toEqual([[1], [2]]);
    // Deleted text no longer matches in the full-text index the triggers keep.
    expect(column(db, "SELECT rowid FROM tweets_fts WHERE tweets_fts MATCH 'zebra OR yak OR walrus' ORDER BY rowid")).toEqual([[11], [12], [14]]);
    storeChecks(db);

    // Marks live in cs_marks: the tweet's own mark outranks its author's; the author's reach the other tweets.
    expect(column(db, 'SELECT type, id, state, reason, at FROM cs_marks ORDER BY type, id')).toEqual([
      ['tweets', 11, 'suspended', 'author_suspended', AS_OF],
      ['tweets', 12, 'suspended', 'author_suspended', AS_OF],
      ['tweets', 16, 'protected', 'protected', AS_OF],
      ['users', 2, 'suspended', 'suspended', AS_OF],
    ]);
    expect(column(db, 'SELECT id FROM cs_visible_tweets ORDER BY id')).toEqual([[14], [17]]);
    expect(column(db, 'SELECT id FROM cs_visible_users ORDER BY id')).toEqual([[1]]);

    // What the ledger counted equals what left the store, per table.
    const after = counts(db);
    expect(recordedDeletions(db, [tweets.runId!, users.runId!])).toEqual(diff(before, after));
    expect(diff(before, after)).toEqual({ tweets: 3, users: 1, media_tweets: 3, following: 2 });
    expect(applyRunsOf(db).changeCounts(users.runId!)).toEqual(
      expect.arrayContaining([
        { table: 'tweets', cause: 'cascade', kind: 'deleted', count: 2 },
        { table: 'media_tweets', cause: 'fk', kind: 'deleted', count: 2 },
        { table: 'tweets', cause: 'fk', kind: 'updated', count: 1 }, // 14 retweeted 13
        { table: 'following', cause: 'fk', kind: 'deleted', count: 2 },
        { table: 'users', cause: 'result', kind: 'deleted', count: 1 },
        { table: 'tweets', cause: 'cascade', kind: 'marked', count: 2 },
      ]),
    );
    db.close();
  });

  it('a mark in the ledger survives the ingester rewriting the row with INSERT OR REPLACE (recursive triggers on)', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, COLLECTOR, { store: { path: 'store.db', tables: COLLECTOR_MAPPING, ...POINTERS_ONLY } });
    await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('16', 'protected')]));
    const ingester = openStore(config.store.path);
    ingester.pragma('recursive_triggers = ON');
    ingester.prepare("INSERT OR REPLACE INTO tweets (id, user, full_text) VALUES (16, 2, 'bob protected, fetched again')").run();
    ingester.close();
    expect(column(db, "SELECT id, state FROM cs_marks WHERE type = 'tweets'")).toEqual([[16, 'protected']]);
    expect(column(db, 'SELECT count(*) FROM cs_visible_tweets WHERE id = 16')).toEqual([[0]]);
    storeChecks(db);
    db.close();
  });

  it('a dry run reports the same rows changed, cascades included, and writes nothing', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, COLLECTOR, { store: { path: 'store.db', tables: COLLECTOR_MAPPING, ...POINTERS_ONLY } });
    const file = writeResults(dir, 'u.ndjson', [result('3', 'deactivated'), result('1', 'deleted')]);
    const before = counts(db);
    const dry = await apply(db, config, 'users', file, { dryRun: true });
    expect(counts(db)).toEqual(before);
    const real = await apply(db, config, 'users', file);
    expect(dry.changes).toEqual(real.changes);
    expect(dry.changes.tweets?.deleted).toEqual({ cascade: 5 });
    expect(Object.fromEntries(Object.entries(real.changes).map(([t, k]) => [t, Object.values(k.deleted ?? {}).reduce((a, b) => a + b, 0)]))).toEqual(
      { ...diff(before, counts(db)), tweets: 5 },
    );
    storeChecks(db);
    db.close();
  });
});

/** Declared ON DELETE actions, an undeclared relation and the store's own (non-FTS) triggers. */
const DECLARED = `
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, cstate TEXT, creason TEXT, cat TEXT);
CREATE TABLE tweets (id INTEGER PRIMARY KEY, author INTEGER REFERENCES users(id) ON DELETE CASCADE, body TEXT,
  reply_to INTEGER REFERENCES tweets(id) ON DELETE SET NULL, raw TEXT, cstate TEXT, creason TEXT, cat TEXT);
CREATE TABLE likes (id INTEGER PRIMARY KEY, tweet_id INTEGER NOT NULL REFERENCES tweets(id) ON DELETE CASCADE, liker INTEGER);
CREATE TABLE like_notes (like_id INTEGER REFERENCES likes(id), note TEXT);
CREATE INDEX like_notes_like ON like_notes(like_id);
CREATE TABLE pins (tweet_id INTEGER REFERENCES tweets(id) ON DELETE RESTRICT, label TEXT);
CREATE TABLE bookmarks (tweet_id INTEGER REFERENCES tweets(id) ON DELETE SET NULL, label TEXT);
CREATE TABLE hashtags (tweet_id INTEGER NOT NULL, tag TEXT);
CREATE TABLE tweet_stats (tweet_id INTEGER PRIMARY KEY, views INTEGER);
CREATE TABLE deletion_log (tweet_id INTEGER, at TEXT);
CREATE INDEX tweets_author ON tweets(author);
CREATE INDEX tweets_reply ON tweets(reply_to);
CREATE INDEX likes_tweet ON likes(tweet_id);
CREATE INDEX pins_tweet ON pins(tweet_id);
CREATE INDEX bookmarks_tweet ON bookmarks(tweet_id);
CREATE INDEX hashtags_tweet ON hashtags(tweet_id);
CREATE TRIGGER tweets_gone AFTER DELETE ON tweets BEGIN
  DELETE FROM tweet_stats WHERE tweet_id = old.id;
  INSERT INTO deletion_log VALUES (old.id, 'now');
END;
INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob');
INSERT INTO tweets (id, author, body, reply_to, raw) VALUES
  (20, 1, 'a', NULL, '{"data":{"id":"20","geo":{"place_id":"x"}},"includes":{"places":[{"id":"x"}]},"geo":{"c":1},"keep":1}'),
  (21, 2, 'b', 20, 'not json {'),
  (22, 2, 'c', 21, NULL),
  (23, 1, 'd', 22, '{"coordinates":[1,2],"place":{"id":"y"},"text":"t"}');
INSERT INTO likes (tweet_id, liker) VALUES (20, 2), (20, 1), (22, 1);
INSERT INTO pins VALUES (20, 'top'), (23, 'x');
INSERT INTO bookmarks VALUES (21, 'later');
INSERT INTO hashtags VALUES (20, 'one'), (21, 'two'), (23, 'three');
INSERT INTO tweet_stats VALUES (20, 5), (21, 6), (22, 7), (23, 8);
`;

const DECLARED_MAPPING = {
  tweets: { table: 'tweets', id: 'id', authorId: 'author', geoLat: null, geoLon: null, placeId: null, rawJson: 'raw',
    complianceState: 'cstate', complianceReason: 'creason', complianceAt: 'cat' },
  users: { table: 'users', id: 'id', complianceState: 'cstate', complianceReason: 'creason', complianceAt: 'cat' },
};

describe('declared ON DELETE actions, store.dependents and triggers', () => {
  it('honours CASCADE, SET NULL and RESTRICT, deletes undeclared dependents, and counts what the triggers did', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, DECLARED, {
      store: { path: 'store.db', tables: DECLARED_MAPPING, dependents: [{ table: 'hashtags', column: 'tweet_id', references: 'tweets', action: 'delete' }] },
    });
    // like_notes references likes: a child of a child, deleted before its parent rows.
    db.exec("INSERT INTO like_notes SELECT id, 'note' FROM likes WHERE tweet_id = 20");
    const before = counts(db);
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('20', 'deleted'), result('23', 'scrub_geo'), result('21', 'scrub_geo')]));
    expect(run).toMatchObject({ state: 'done', applied: { delete: 1, scrub_geo: 2 } });
    expect(column(db, 'SELECT id, reply_to, raw FROM tweets ORDER BY id')).toEqual([
      [21, null, 'not json {'],
      [22, 21, null],
      [23, 22, '{"text":"t"}'],
    ]);
    expect(column(db, 'SELECT tweet_id FROM likes')).toEqual([[22]]);
    expect(column(db, 'SELECT count(*) FROM like_notes')).toEqual([[0]]);
    expect(column(db, 'SELECT tweet_id FROM pins')).toEqual([[23]]);
    expect(column(db, 'SELECT tweet_id FROM hashtags ORDER BY tweet_id')).toEqual([[21], [23]]);
    expect(column(db, 'SELECT tweet_id FROM tweet_stats ORDER BY tweet_id')).toEqual([[21], [22], [23]]);
    expect(column(db, 'SELECT tweet_id FROM deletion_log')).toEqual([[20]]);
    expect(db.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
    const after = counts(db);
    expect(recordedDeletions(db, [run.runId!])).toEqual(diff(before, after));
    expect(applyRunsOf(db).changeCounts(run.runId!)).toEqual(
      expect.arrayContaining([
        { table: 'tweet_stats', cause: 'trigger', kind: 'deleted', count: 1 },
        { table: 'deletion_log', cause: 'trigger', kind: 'inserted', count: 1 },
        { table: 'likes', cause: 'fk', kind: 'deleted', count: 2 },
        { table: 'pins', cause: 'fk', kind: 'deleted', count: 1 },
        { table: 'hashtags', cause: 'fk', kind: 'deleted', count: 1 },
        { table: 'tweets', cause: 'fk', kind: 'updated', count: 1 },
        { table: 'tweets', cause: 'result', kind: 'deleted', count: 1 },
        // 23 lost its geo; 21 (raw not JSON, no geo columns) had nothing to clear, so it is not updated.
        { table: 'tweets', cause: 'result', kind: 'updated', count: 1 },
      ]),
    );
    db.close();
  });

  it('a user deletion cascades through the declared author key; store.dependents overrides a declared action', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, DECLARED, {
      store: { path: 'store.db', tables: DECLARED_MAPPING, dependents: [{ table: 'likes', column: 'tweet_id', references: 'tweets', action: 'delete' }, { table: 'bookmarks', column: 'tweet_id', references: 'tweets', action: 'delete' }] },
      reconcile: { cascadeUsers: true },
    });
    const before = counts(db);
    const run = await apply(db, config, 'users', writeResults(dir, 'u.ndjson', [result('2', 'deleted')]));
    expect(run).toMatchObject({ applied: { delete: 1 }, cascaded: { deleted: 2 } });
    expect(column(db, 'SELECT id, reply_to FROM tweets ORDER BY id')).toEqual([[20, null], [23, null]]);
    expect(column(db, 'SELECT count(*) FROM bookmarks')).toEqual([[0]]);
    expect(db.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
    expect(recordedDeletions(db, [run.runId!])).toEqual(diff(before, counts(db)));
    db.close();
  });

  it('refuses a relation it cannot act on before touching the store, naming the config key', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, DECLARED, {
      store: { path: 'store.db', tables: DECLARED_MAPPING, dependents: [{ table: 'likes', column: 'tweet_id', references: 'tweets', action: 'set_null' }] },
    });
    const file = writeResults(dir, 't.ndjson', [result('20', 'deleted')]);
    const error = (await apply(db, config, 'tweets', file).catch((err: unknown) => err)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('"likes"."tweet_id" is NOT NULL');
    expect(error.hint).toContain('store.dependents');
    const missing = makeConfig(dir, { store: { path: 'store.db', tables: DECLARED_MAPPING, dependents: [{ table: 'likes', column: 'tweet', references: 'tweets', action: 'delete' }] } });
    await expect(apply(db, missing, 'tweets', file)).rejects.toThrow('store.dependents names "likes"."tweet"');
    expect(column(db, 'SELECT count(*) FROM cs_apply_runs')).toEqual([[0]]);
    db.close();
  });
});

describe('a constraint that still blocks', () => {
  /** The mapping of this block's stores: no geo columns, no raw JSON, marks in the ledger. */
  const bare = { tweets: { geoLat: null, geoLon: null, placeId: null, rawJson: null, complianceState: null, complianceReason: null, complianceAt: null }, users: { complianceState: null, complianceReason: null, complianceAt: null } };
  it('fails the batch naming the table, the column, the row and the config key, and applies nothing of it', async () => {
    const dir = tempDir();
    // A trigger writes a new reference to the tweet while its link rows are deleted, after that table was cleared.
    const { config, db } = foreignStore(
      dir,
      `CREATE TABLE users (id INTEGER PRIMARY KEY);
       CREATE TABLE tweets (id INTEGER PRIMARY KEY, author_id INTEGER);
       CREATE TABLE audit (tweet_ref INTEGER REFERENCES tweets(id));
       CREATE TABLE media_tweets (tweets_id INTEGER REFERENCES tweets(id));
       CREATE TRIGGER media_gone AFTER DELETE ON media_tweets BEGIN INSERT INTO audit VALUES (old.tweets_id); END;
       INSERT INTO tweets VALUES (1, 7), (2, 7);
       INSERT INTO media_tweets VALUES (2);`,
      { store: { path: 'store.db', tables: bare } },
    );
    const error = (await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('1', 'deleted'), result('2', 'deleted')])).catch((err: unknown) => err)) as StoreError;
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toBe('deleting tweet 2: rows of "audit" still reference "tweets" through "audit"."tweet_ref" (FOREIGN KEY ON DELETE NO ACTION)');
    expect(error.hint).toContain('store.dependents');
    expect(column(db, 'SELECT id FROM tweets ORDER BY id')).toEqual([[1], [2]]);
    expect(column(db, 'SELECT count(*) FROM audit')).toEqual([[0]]);
    db.close();
  });

  // A trigger that writes a reference to tweet 2 when tweet 1's link row goes: grouped, the references to both were
  // cleared before it fired, and the rows' DELETE fails; one by one (ID order), tweet 2's deletion clears it first.
  const BLOCKS_GROUPED_ONLY = `CREATE TABLE users (id INTEGER PRIMARY KEY);
     CREATE TABLE tweets (id INTEGER PRIMARY KEY, author_id INTEGER, body TEXT);
     CREATE TABLE audit (tweet_ref INTEGER REFERENCES tweets(id));
     CREATE TABLE media_tweets (tweets_id INTEGER REFERENCES tweets(id));
     CREATE TRIGGER media_gone AFTER DELETE ON media_tweets WHEN old.tweets_id = 1 BEGIN INSERT INTO audit VALUES (2); END;
     INSERT INTO tweets VALUES (1, 7, 'apple pie'), (2, 7, 'banana bread'), (3, 7, 'apple crumble');
     INSERT INTO media_tweets VALUES (1);`;

  it('blocking only the grouped deletion (a store trigger writes), the groups are undone and the rows go one by one', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, BLOCKS_GROUPED_ONLY, { store: { path: 'store.db', tables: bare } });
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('1', 'deleted'), result('2', 'deleted')]));
    expect(run.applied.delete).toBe(2);
    expect(column(db, 'SELECT id FROM tweets ORDER BY id')).toEqual([[3]]);
    expect(column(db, 'SELECT count(*) FROM audit UNION ALL SELECT count(*) FROM media_tweets')).toEqual([[0], [0]]);
    // The grouped run's writes undone (the trigger's among them), each row is counted once, as one by one.
    expect(run.changes.tweets).toEqual({ deleted: { result: 2 } });
    expect(run.changes.media_tweets).toEqual({ deleted: { fk: 1 } });
    expect(run.changes.audit).toEqual({ inserted: { trigger: 1 }, deleted: { fk: 1 } });
    expect(column(db, "SELECT id, reason FROM cs_tombstones WHERE type = 'tweets' ORDER BY id")).toEqual([[1, 'deleted'], [2, 'deleted']]);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    db.close();
  });

  it('blocked by a CHECK on a pointer cleared, the steps done stay done and the rows one by one name the row; nothing is applied', async () => {
    const dir = tempDir();
    // No trigger, no conflict clause: the groups run without a savepoint. Tweet 3 may not lose its quote.
    const { config, db } = foreignStore(
      dir,
      `CREATE TABLE users (id INTEGER PRIMARY KEY);
       CREATE TABLE tweets (id INTEGER PRIMARY KEY, author_id INTEGER, quoted_status INTEGER REFERENCES tweets(id),
         CHECK (id <> 3 OR quoted_status IS NOT NULL));
       CREATE TABLE media_tweets (tweets_id INTEGER REFERENCES tweets(id));
       INSERT INTO tweets VALUES (1, 7, NULL), (2, 7, NULL), (3, 7, 2);
       INSERT INTO media_tweets VALUES (1), (2);`,
      { store: { path: 'store.db', tables: bare } },
    );
    const error = (await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('1', 'deleted'), result('2', 'deleted')])).catch((err: unknown) => err)) as StoreError;
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toBe('tweet 2: updating "tweets" failed: CHECK constraint failed: id <> 3 OR quoted_status IS NOT NULL');
    expect(column(db, 'SELECT id, quoted_status FROM tweets ORDER BY id')).toEqual([[1, null], [2, null], [3, 2]]);
    expect(column(db, 'SELECT tweets_id FROM media_tweets ORDER BY 1')).toEqual([[1], [2]]);
    expect(column(db, 'SELECT count(*) FROM cs_tombstones')).toEqual([[0]]);
    db.close();
  });

  it('a trigger that raises ROLLBACK fails the batch with its message and nothing of it is written', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(
      dir,
      `${BLOCKS_GROUPED_ONLY}
       CREATE TRIGGER keep_media BEFORE DELETE ON media_tweets BEGIN SELECT RAISE(ROLLBACK, 'media links are kept'); END;`,
      { store: { path: 'store.db', tables: bare } },
    );
    await expect(apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('3', 'deleted'), result('1', 'deleted'), result('2', 'deleted')]))).rejects.toThrow(
      'media links are kept',
    );
    expect(db.inTransaction).toBe(false);
    expect(column(db, 'SELECT id FROM tweets ORDER BY id')).toEqual([[1], [2], [3]]);
    expect(column(db, 'SELECT count(*) FROM cs_tombstones UNION ALL SELECT count(*) FROM cs_apply_runs WHERE checkpoint_line > 0')).toEqual([[0], [0]]);
    db.close();
  });

  it('a trigger that raises FAIL part-way through a grouped statement: the groups are undone and every row is counted once', async () => {
    const dir = tempDir();
    // RAISE(FAIL) keeps the rows the statement changed before it: grouped, tweet 1's link row is gone when tweet 2's
    // raises (tweet 1 is still stored). One by one, tweet 1 is deleted first and tweet 2's link row may go.
    const { config, db } = foreignStore(
      dir,
      `CREATE TABLE users (id INTEGER PRIMARY KEY);
       CREATE TABLE tweets (id INTEGER PRIMARY KEY, author_id INTEGER);
       CREATE TABLE media_tweets (tweets_id INTEGER REFERENCES tweets(id));
       CREATE TRIGGER in_order BEFORE DELETE ON media_tweets WHEN raising(old.tweets_id = 2 AND EXISTS (SELECT 1 FROM tweets WHERE id = 1))
         BEGIN SELECT RAISE(FAIL, 'tweet 1 goes first'); END;
       INSERT INTO tweets VALUES (1, 7), (2, 7), (3, 7);
       INSERT INTO media_tweets VALUES (1), (2), (3);`,
      { store: { path: 'store.db', tables: bare } },
    );
    // Counts the raises, so the test cannot pass without the grouped statement having failed part-way.
    let raised = 0;
    db.function('raising', (condition: unknown) => (condition ? ++raised : 0));
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('1', 'deleted'), result('2', 'deleted')]));
    expect(raised).toBe(1);
    expect(run.applied.delete).toBe(2);
    expect(column(db, 'SELECT id FROM tweets UNION ALL SELECT tweets_id FROM media_tweets')).toEqual([[3], [3]]);
    expect(run.changes.media_tweets).toEqual({ deleted: { fk: 2 } });
    expect(run.changes.tweets).toEqual({ deleted: { result: 2 } });
    db.close();
  });

  it('with a full-text index whose entries it takes out itself, the blocked groups are undone before the rows go one by one', async () => {
    const dir = tempDir();
    // External content and no trigger: the deletion takes each row's entry out by its values, which must happen once.
    const { config, db } = foreignStore(dir, `${BLOCKS_GROUPED_ONLY}
       CREATE VIRTUAL TABLE tweets_search USING fts5(body, content=tweets, content_rowid=id);
       INSERT INTO tweets_search (tweets_search) VALUES ('rebuild');`, { store: { path: 'store.db', tables: bare } });
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('1', 'deleted'), result('2', 'deleted')]));
    expect(run.applied.delete).toBe(2);
    expect(column(db, 'SELECT id FROM tweets ORDER BY id')).toEqual([[3]]);
    expect(() => db.exec("INSERT INTO tweets_search (tweets_search, rank) VALUES ('integrity-check', 1)")).not.toThrow();
    expect(column(db, "SELECT rowid FROM tweets_search WHERE tweets_search MATCH 'apple OR banana' ORDER BY rowid")).toEqual([[3]]);
    expect(run.changes.media_tweets).toEqual({ deleted: { fk: 1 } });
    expect(run.changes.audit?.deleted).toEqual({ fk: 1 });
    db.close();
  });

  it('a DEFERRABLE INITIALLY DEFERRED key that fails at COMMIT is named, with the store.dependents entry, and nothing is applied', async () => {
    const dir = tempDir();
    // The same trigger, but the key is checked only at COMMIT: every statement succeeds and the commit fails.
    const { config, db } = foreignStore(
      dir,
      `CREATE TABLE users (id INTEGER PRIMARY KEY);
       CREATE TABLE tweets (id INTEGER PRIMARY KEY, author_id INTEGER);
       CREATE TABLE audit (tweet_ref INTEGER REFERENCES tweets(id) DEFERRABLE INITIALLY DEFERRED);
       CREATE TABLE media_tweets (tweets_id INTEGER REFERENCES tweets(id));
       CREATE TRIGGER media_gone AFTER DELETE ON media_tweets BEGIN INSERT INTO audit VALUES (old.tweets_id); END;
       INSERT INTO tweets VALUES (1, 7), (2, 7);
       INSERT INTO media_tweets VALUES (2);`,
      { store: { path: 'store.db', tables: bare } },
    );
    const error = (await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('1', 'deleted'), result('2', 'deleted')])).catch((err: unknown) => err)) as StoreError;
    expect(error).toBeInstanceOf(StoreError);
    expect(error.message).toContain('failed at COMMIT on the DEFERRABLE INITIALLY DEFERRED FOREIGN KEY "audit"."tweet_ref" → "tweets"');
    expect(error.message).toContain('nothing of the batch was applied');
    expect(error.hint).toContain('{ "table": "audit", "column": "tweet_ref", "references": "tweets", "action": "delete" }');
    expect(error.hint).toContain('store.dependents');
    expect(db.inTransaction).toBe(false);
    expect(column(db, 'SELECT id FROM tweets ORDER BY id')).toEqual([[1], [2]]);
    expect(column(db, 'SELECT count(*) FROM audit')).toEqual([[0]]);
    expect(column(db, 'SELECT count(*) FROM cs_tombstones')).toEqual([[0]]);
    db.close();
  });
});

describe('geo wherever it is kept', () => {
  it('removes the v1.1 and v2 paths from raw JSON, more paths from configured JSON columns, and NULLs configured columns', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(
      dir,
      `CREATE TABLE users (id INTEGER PRIMARY KEY);
       CREATE TABLE tweets (id INTEGER PRIMARY KEY, author_id INTEGER, raw_json TEXT, v2 TEXT, geojson TEXT, lat REAL);
       INSERT INTO tweets VALUES
         (1, 7, '{"geo":{"a":1},"coordinates":[1,2],"place":{"id":"p"},"text":"x","id":12345678901234567890}',
                '{"data":{"geo":{"place_id":"p"},"text":"x"},"includes":{"places":[{"id":"p"}],"users":[{"id":"7"}]}}', '{"type":"Point"}', 1.5),
         (2, 7, 'not json', '{"includes":', '{}', 2.5);`,
      {
        store: {
          path: 'store.db',
          tables: {
            tweets: { geoLat: 'lat', geoLon: null, placeId: null, geoColumns: ['geojson'], geoJson: [{ column: 'v2', paths: ['$.data.geo', '$.includes.places'] }],
              complianceState: null, complianceReason: null, complianceAt: null },
            users: { complianceState: null, complianceReason: null, complianceAt: null },
          },
        },
      },
    );
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('1', 'scrub_geo'), result('2', 'scrub_geo')]));
    expect(run.applied.scrub_geo).toBe(2);
    expect(column(db, 'SELECT id, raw_json, v2, geojson, lat FROM tweets ORDER BY id')).toEqual([
      [1, '{"text":"x","id":12345678901234567890}', '{"data":{"text":"x"},"includes":{"users":[{"id":"7"}]}}', null, null],
      [2, 'not json', '{"includes":', null, null],
    ]);
    db.close();
  });

  it('refuses a JSON path or a column named twice in the config', () => {
    const dir = tempDir();
    expect(() => makeConfig(dir, { store: { path: 's.db', tables: { tweets: { geoJson: [{ column: 'x', paths: ['geo'] }] } } } })).toThrow(/geoJson\.0\.paths\.0/);
    expect(() => makeConfig(dir, { store: { path: 's.db', tables: { tweets: { geoColumns: ['geo_lat'] } } } })).toThrow(/named twice/);
    expect(() => makeConfig(dir, { store: { path: 's.db', tables: { users: { complianceState: null } } } })).toThrow(/all null/);
  });
});

/** twint's layout: users keyed by (id, hex_dig), FKs to users(id) that SQLite cannot enforce. */
const TWINT = `
CREATE TABLE users (id integer not null, id_str text not null, name text, username text not null, hex_dig TEXT not null,
  CONSTRAINT users_pk PRIMARY KEY (id, hex_dig));
CREATE TABLE tweets (id integer not null, id_str text not null, tweet text default '', user_id integer not null,
  geo text, place text, PRIMARY KEY (id));
CREATE TABLE retweets (user_id integer not null, username text not null, tweet_id integer not null, retweet_id integer not null,
  CONSTRAINT retweets_pk PRIMARY KEY(user_id, tweet_id), CONSTRAINT user_id_fk FOREIGN KEY(user_id) REFERENCES users(id),
  CONSTRAINT tweet_id_fk FOREIGN KEY(tweet_id) REFERENCES tweets(id));
CREATE TABLE followers (id integer not null, follower_id integer not null, CONSTRAINT followers_pk PRIMARY KEY (id, follower_id),
  CONSTRAINT id_fk FOREIGN KEY(id) REFERENCES users(id), CONSTRAINT follower_id_fk FOREIGN KEY(follower_id) REFERENCES users(id));
CREATE INDEX retweets_tweet ON retweets(tweet_id);
CREATE INDEX followers_follower ON followers(follower_id);
CREATE INDEX tweets_user ON tweets(user_id);
INSERT INTO users VALUES (1, '1', 'Ann', 'ann', 'h1'), (1, '1', 'Ann B', 'ann', 'h2'), (2, '2', 'Bob', 'bob', 'h3');
INSERT INTO tweets VALUES (10, '10', 'by ann', 1, '1,2', 'p'), (11, '11', 'by bob', 2, NULL, NULL);
INSERT INTO retweets VALUES (2, 'bob', 10, 99), (1, 'ann', 11, 98);
INSERT INTO followers VALUES (1, 2), (2, 1);
`;

/** The mapping of the TWINT store: author user_id, geo text columns, marks in the ledger. */
const TWINT_MAPPING = {
  tweets: { authorId: 'user_id', geoLat: null, geoLon: null, placeId: 'place', rawJson: null, geoColumns: ['geo'], complianceState: null, complianceReason: null, complianceAt: null },
  users: { complianceState: null, complianceReason: null, complianceAt: null },
};

describe('a layout whose FOREIGN KEYs SQLite cannot enforce (twint)', () => {
  it('deletes every row of the user, the tweets and the link rows, with enforcement off only while applying', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, TWINT, {
      store: {
        path: 'store.db',
        tables: TWINT_MAPPING,
      },
    });
    const before = counts(db);
    const run = await apply(db, config, 'users', writeResults(dir, 'u.ndjson', [result('1', 'deleted')]));
    expect(run).toMatchObject({ applied: { delete: 1 }, cascaded: { deleted: 1 } });
    expect(column(db, 'SELECT id FROM users')).toEqual([[2]]);
    expect(column(db, 'SELECT id FROM tweets')).toEqual([[11]]);
    expect(column(db, 'SELECT count(*) FROM retweets')).toEqual([[0]]);
    expect(column(db, 'SELECT count(*) FROM followers')).toEqual([[0]]);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1n);
    expect(recordedDeletions(db, [run.runId!])).toEqual(diff(before, counts(db)));
    expect(diff(before, counts(db))).toEqual({ users: 2, tweets: 1, retweets: 2, followers: 2 });
    db.close();
  });

  it("a deleted retweet's own ID, kept only in retweets.retweet_id, takes its row with it through store.dependents, as README.md advises", async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, `${TWINT} CREATE INDEX retweets_retweet ON retweets(retweet_id);`, {
      store: {
        path: 'store.db',
        tables: TWINT_MAPPING,
        dependents: [{ table: 'retweets', column: 'retweet_id', references: 'tweets', action: 'delete' }],
      },
    });
    // 99 is bob's retweet of tweet 10: not a tweets row, so not found, but its retweets row goes and its ID is tombstoned.
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('99', 'deleted')]));
    expect(run).toMatchObject({ applied: { delete: 0 }, notFound: 1 });
    expect(column(db, 'SELECT user_id, tweet_id, retweet_id FROM retweets')).toEqual([[1, 11, 98]]);
    expect(column(db, 'SELECT id FROM tweets ORDER BY id')).toEqual([[10], [11]]);
    expect(run.changes).toEqual({ retweets: { deleted: { fk: 1 } } });
    expect(column(db, "SELECT id FROM cs_tombstones WHERE type = 'tweets'")).toEqual([[99]]);
    db.close();
  });

  it('the safety gate counts the deletions of IDs a checked column holds, though no tweets row holds them', async () => {
    const dir = tempDir();
    // Two stored tweets, six retweet IDs kept only in retweets: deleting four of them is 2x the stored rows.
    const { config, db } = foreignStore(
      dir,
      `${TWINT} CREATE INDEX retweets_retweet ON retweets(retweet_id);
       INSERT INTO retweets VALUES (3, 'cy', 10, 97), (4, 'di', 10, 96), (5, 'ed', 11, 95), (6, 'fa', 11, 94);`,
      {
        store: {
          path: 'store.db',
          tables: TWINT_MAPPING,
          dependents: [{ table: 'retweets', column: 'retweet_id', references: 'tweets', action: 'delete', check: true }],
        },
      },
    );
    const file = writeResults(dir, 't.ndjson', ['99', '98', '97', '96', '1234'].map((id) => result(id, 'deleted')));
    const held = await apply(db, config, 'tweets', file, { confirmDeletions: false });
    // 1234 is held by no table: four deletions would find something, beyond half of the two stored rows.
    expect(held).toMatchObject({ state: 'held', wouldDelete: 4 });
    expect(column(db, 'SELECT count(*) FROM retweets')).toEqual([[6]]);
    const confirmed = await apply(db, config, 'tweets', file, { runId: held.runId! });
    expect(confirmed.state).toBe('done');
    expect(column(db, 'SELECT retweet_id FROM retweets ORDER BY 1')).toEqual([[94], [95]]);
    db.close();
  });
});

describe('a layout whose FOREIGN KEYs SQLite cannot enforce, both types at once', () => {
  it('tweets and users applied side by side on one connection (as a cycle does) never meet enforcement turned back on', async () => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, TWINT, {
      store: {
        path: 'store.db',
        tables: TWINT_MAPPING,
      },
      reconcile: { batchSize: 100 },
    });
    db.pragma('foreign_keys = OFF'); // as the collector writes
    db.exec("INSERT INTO tweets VALUES (12, '12', 'by bob', 2, NULL, NULL), (13, '13', 'by bob', 2, NULL, NULL); INSERT INTO retweets VALUES (2, 'bob', 12, 97)");
    db.pragma('foreign_keys = ON');
    const [users, tweets] = await Promise.all([
      apply(db, config, 'users', writeResults(dir, 'u.ndjson', [result('1', 'suspended'), result('2', 'suspended'), result('3', 'deleted')])),
      // Several read chunks long, so its last batches run after the users apply has finished.
      apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [...Array.from({ length: 3000 }, (_, i) => result(String(1000 + i), 'deleted')), result('11', 'deleted'), result('12', 'deleted'), result('13', 'scrub_geo')])),
    ]);
    expect(users.applied).toMatchObject({ mark: 2 });
    expect(tweets.applied).toMatchObject({ delete: 2, scrub_geo: 1 });
    expect(column(db, 'SELECT id FROM tweets ORDER BY id')).toEqual([[10], [13]]);
    expect(column(db, 'SELECT tweet_id FROM retweets')).toEqual([[10]]);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1n);
    db.close();
  });
});

describe("SQLite's own check of the keys, where our statements keep them all", () => {
  // On every deleted row SQLite searches each referencing table's index for it (Target.foreignKeysKeptByUs): where our
  // own statements have acted on every such key before the row goes, that search can find nothing, and is skipped.
  const keptByUs = (schema: string, store: Record<string, unknown> = {}) => {
    const dir = tempDir();
    const { config, db } = foreignStore(dir, schema, { store: { path: 'store.db', tables: COLLECTOR_MAPPING, ...store } });
    const kept = resolveTarget(db, config).foreignKeysKeptByUs;
    db.close();
    return kept;
  };

  it('is skipped on a collector layout, which still ends with every key valid and enforcement on', async () => {
    expect(keptByUs(COLLECTOR)).toBe(true);
    const dir = tempDir();
    const { config, db } = foreignStore(dir, COLLECTOR, { store: { path: 'store.db', tables: COLLECTOR_MAPPING } });
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.ndjson', [result('10', 'deleted'), result('13', 'deleted'), result('17', 'scrub_geo')]));
    expect(run.applied).toMatchObject({ delete: 2, scrub_geo: 1 });
    expect(column(db, 'SELECT id FROM tweets ORDER BY id')).toEqual([[12], [15], [16], [17]]);
    storeChecks(db);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1n);
    db.close();
  });

  it('stays on where a trigger of the store writes rows, a key has a declared default, or a rule or a changed column leaves a key to SQLite', () => {
    // A trigger could write a reference our statements never see.
    expect(keptByUs(`${COLLECTOR} CREATE TABLE log (tweet INTEGER); CREATE TRIGGER gone AFTER DELETE ON tweets BEGIN INSERT INTO log VALUES (old.id); END;`)).toBe(false);
    // The declared default may reference nothing.
    expect(keptByUs(`${COLLECTOR} CREATE TABLE pins (tweet INTEGER DEFAULT 0 REFERENCES tweets(id) ON DELETE SET DEFAULT);`)).toBe(false);
    // An orphans rule that checks fewer references than the schema declares.
    const places = `${COLLECTOR} CREATE TABLE visits (place TEXT REFERENCES places(id));`;
    expect(keptByUs(places, { orphans: [{ table: 'places' }] })).toBe(true);
    expect(keptByUs(places, { orphans: [{ table: 'places', referencedBy: [{ table: 'tweets', column: 'place' }] }] })).toBe(false);
    // A trigger on a table the orphans sweep deletes from (media, found through the link table media_tweets).
    expect(keptByUs(`${COLLECTOR} CREATE TABLE files (id INTEGER PRIMARY KEY, media INTEGER); CREATE TRIGGER media_ad AFTER DELETE ON media BEGIN DELETE FROM files WHERE media = old.id; END;`)).toBe(false);
    // A column we clear that a key references: the reference would keep the old value.
    expect(
      keptByUs(`${COLLECTOR} CREATE TABLE tweet_places (tweet INTEGER UNIQUE REFERENCES tweets(id) ON DELETE SET NULL, name TEXT); CREATE TABLE visits (tp INTEGER REFERENCES tweet_places(tweet));`),
    ).toBe(false);
    // An orphans rule whose key is not the column the references hold.
    const spots = `${COLLECTOR} CREATE TABLE spots (id INTEGER PRIMARY KEY, code INTEGER UNIQUE); CREATE TABLE seen (spot INTEGER REFERENCES spots(code));
      CREATE TABLE tweet_spots (tweet INTEGER REFERENCES tweets(id), spot INTEGER REFERENCES spots(code));`;
    const referencedBy = [{ table: 'tweet_spots', column: 'spot' }, { table: 'seen', column: 'spot' }];
    expect(keptByUs(spots, { orphans: [{ table: 'spots', referencedBy }] })).toBe(false);
    expect(keptByUs(spots, { orphans: [{ table: 'spots', column: 'code', referencedBy }] })).toBe(true);
    // …or that compares in another collation than SQLite's check of the key does (the referenced column's).
    const codes = spots.replace('code INTEGER UNIQUE', 'code TEXT COLLATE NOCASE UNIQUE');
    expect(keptByUs(codes, { orphans: [{ table: 'spots', column: 'code', referencedBy }] })).toBe(false);
    // A column we write values to (a mark column) that holds a key.
    const marked = `CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE TABLE states (name TEXT PRIMARY KEY);
      CREATE TABLE tweets (id INTEGER PRIMARY KEY, user INTEGER, place TEXT, geo TEXT, coordinates TEXT, state TEXT REFERENCES states(name), why TEXT, at TEXT);
      CREATE TABLE likes (tweet INTEGER REFERENCES tweets(id));`;
    const markColumns = { complianceState: 'state', complianceReason: 'why', complianceAt: 'at' };
    expect(keptByUs(marked, { tables: { ...COLLECTOR_MAPPING, tweets: { ...COLLECTOR_MAPPING.tweets, ...markColumns } } })).toBe(false);
    expect(keptByUs(marked.replace(' REFERENCES states(name)', ''), { tables: { ...COLLECTOR_MAPPING, tweets: { ...COLLECTOR_MAPPING.tweets, ...markColumns } } })).toBe(true);
    // Nothing to skip (no key references a table we delete from; the ledger's own keys do not): left as it is.
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    expect(resolveTarget(db, config).foreignKeysKeptByUs).toBe(false);
    db.close();
  });
});

describe('the default layout', () => {
  it('keeps its one-statement deletion and counts the result rows', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    db.exec("INSERT INTO tweets (id, author_id, raw_json) VALUES (1, 5, '{\"place\":{}}'), (2, 5, NULL), (3, 6, NULL); INSERT INTO users (id) VALUES (5)");
    const run = await apply(db, config, 'users', writeResults(dir, 'u.ndjson', [result('5', 'deleted')]));
    expect(run.changes).toEqual({ tweets: { deleted: { cascade: 2 } }, users: { deleted: { result: 1 } } });
    expect(column(db, "SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY name")).toEqual([['cs_visible_tweets'], ['cs_visible_users']]);
    db.close();
  });
});
