import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { prepareContentStatements } from '../../src/store/contentStatements.js';
import { countCopyResidue } from '../../src/store/copyResidue.js';
import { embedIndexReady, ensureEmbedIndex } from '../../src/store/embedIndex.js';
import { migrate } from '../../src/store/migrate.js';
import { openStore, type Db } from '../../src/store/open.js';
import { resolveTarget } from '../../src/store/target.js';
import type { Id } from '../../src/types.js';
import { layoutDdl, layoutStoreConfig } from '../helpers/layouts.js';
import { useTempDir } from '../helpers/tmp.js';
import { AS_OF, apply, insertTweets, insertUsers, makeConfig, makeStore, result, writeResults } from '../pipeline/helpers.js';

/**
 * Issue 12, copies and orphans: retweets go with their original (pointer columns and raw JSON), embedded copies leave
 * the rows that carry them (or lose their geo), and media and places nothing references any more are deleted, all in
 * the batch's transaction and counted under their own causes.
 */

const tempDir = useTempDir();

const tombstones = (db: Db) =>
  Object.fromEntries(
    (db.prepare("SELECT id, reason FROM cs_tombstones WHERE type = 'tweets'").safeIntegers(true).all() as { id: bigint; reason: string }[]).map((r) => [String(r.id), r.reason]),
  );
const ids = (db: Db, table: string, column = 'id') =>
  (db.prepare(`SELECT ${column} FROM ${table} ORDER BY ${column}`).safeIntegers(true).pluck().all() as (bigint | string)[]).map(String);
const raw = (db: Db, id: string) => JSON.parse(db.prepare('SELECT raw_json FROM tweets WHERE id = ?').pluck().get(BigInt(id)) as string) as Record<string, unknown>;

const GEO = { geo: { type: 'Point', coordinates: [52.5, 13.4] }, coordinates: { type: 'Point', coordinates: [13.4, 52.5] }, place: { id: 'p1', full_name: 'Berlin' } };
const BIG = '1234567890123456789'; // above 2^53: an ID that passed through a JS number would not match

/** A row kept only as a retweet of `of` in raw JSON (v1.1's retweeted_status). */
const rt = (id: number, of: string) => ({ id: String(id), raw_json: JSON.stringify({ id_str: String(id), retweeted_status: { id_str: of } }) });

describe('copies in raw JSON (default schema)', () => {
  it('deletes v1.1 and v2 retweets with their original, removes embedded copies, scrubs embedded geo; tombstones and counts exact', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    insertUsers(db, ['7']);
    const original = { id_str: BIG, text: 'original words', ...GEO };
    const v2original = { id: BIG, text: 'original words', geo: { place_id: 'p1' } };
    insertTweets(db, [
      { id: BIG, raw_json: JSON.stringify(original) },
      // v1.1 retweet and quote
      { id: '11', raw_json: JSON.stringify({ id_str: '11', text: 'RT @a: original words', retweeted_status: original }) },
      { id: '12', raw_json: JSON.stringify({ id_str: '12', text: 'my take', quoted_status: original, quoted_status_id_str: BIG, quoted_status_id: 1, quoted_status_permalink: { expanded: `https://twitter.com/a/status/${BIG}` } }) },
      // v2 tweet object alone (the default ingester's shape) and the v2 response shape
      { id: '13', raw_json: JSON.stringify({ id: '13', text: 'RT @a: original words', referenced_tweets: [{ type: 'retweeted', id: BIG }], includes: { tweets: [v2original] } }) },
      { id: '14', raw_json: JSON.stringify({ data: { id: '14', text: 'quote', referenced_tweets: [{ type: 'replied_to', id: '99' }, { type: 'quoted', id: BIG }] }, includes: { tweets: [{ id: '99', text: 'kept' }, v2original] } }) },
      { id: '15', raw_json: JSON.stringify({ data: { id: '15', text: 'RT', referenced_tweets: [{ type: 'retweeted', id: BIG }] }, includes: { tweets: [v2original] } }) },
      // scrubbed original and the rows embedding it
      { id: '20', raw_json: JSON.stringify({ id_str: '20', text: 'geo words', ...GEO }) },
      { id: '21', raw_json: JSON.stringify({ id_str: '21', text: 'q', quoted_status: { id_str: '20', text: 'geo words', ...GEO } }) },
      { id: '22', raw_json: JSON.stringify({ data: { id: '22' }, includes: { tweets: [{ id: '20', text: 'geo words', geo: { place_id: 'p1' } }, { id: '98', geo: { place_id: 'p9' } }] } }) },
      { id: '25', raw_json: JSON.stringify({ id_str: '25', retweeted_status: { id_str: '20', text: 'geo words', ...GEO } }) },
      // not JSON, and JSON mentioning the ID only in text: left alone
      { id: '23', raw_json: `not json "retweeted_status" ${BIG}` },
      { id: '24', raw_json: JSON.stringify({ id_str: '24', text: `about ${BIG}`, retweeted_status: { id_str: '1' } }) },
      // a user's tweet (cascade) and its retweet
      { id: '30', author_id: '7', raw_json: JSON.stringify({ id_str: '30', text: 'by seven' }) },
      { id: '31', raw_json: JSON.stringify({ id_str: '31', retweeted_status: { id_str: '30' } }) },
    ]);
    const tweetsRun = await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result(BIG, 'deleted'), result('20', 'scrub_geo')]));
    expect(ids(db, 'tweets')).toEqual(['12', '14', '20', '21', '22', '23', '24', '25', '30', '31']);
    // The embedded copy and the v1.1 pointers beside it.
    expect(raw(db, '12')).toEqual({ id_str: '12', text: 'my take' });
    expect(raw(db, '14')).toEqual({ data: { id: '14', text: 'quote', referenced_tweets: [{ type: 'replied_to', id: '99' }] }, includes: { tweets: [{ id: '99', text: 'kept' }] } });
    expect(raw(db, '21')).toEqual({ id_str: '21', text: 'q', quoted_status: { id_str: '20', text: 'geo words' } });
    expect(raw(db, '22')).toEqual({ data: { id: '22' }, includes: { tweets: [{ id: '20', text: 'geo words' }, { id: '98', geo: { place_id: 'p9' } }] } });
    // A retweet of a scrubbed tweet stays, without the geo it embeds.
    expect(raw(db, '25')).toEqual({ id_str: '25', retweeted_status: { id_str: '20', text: 'geo words' } });
    expect(db.prepare('SELECT raw_json FROM tweets WHERE id = 23').pluck().get()).toBe(`not json "retweeted_status" ${BIG}`);
    expect(tweetsRun.changes.tweets).toEqual({ deleted: { result: 1, copy: 3 }, updated: { result: 1, embed: 5 } });

    // Written after the first apply (an ingester's plain INSERT): the index's triggers see it.
    insertTweets(db, [{ id: '32', raw_json: JSON.stringify({ id: '32', referenced_tweets: [{ type: 'retweeted', id: '30' }] }) }]);
    expect(db.prepare("SELECT tweet_id FROM cs_embeds WHERE embedded_id = '30' ORDER BY tweet_id").pluck().all()).toEqual([31n, 32n]);
    const usersRun = await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result('7', 'deactivated')]));
    expect(ids(db, 'tweets')).toEqual(['12', '14', '20', '21', '22', '23', '24', '25']);
    expect(usersRun.changes.tweets).toEqual({ deleted: { cascade: 1, copy: 2 } });
    expect(tombstones(db)).toEqual({
      [BIG]: 'deleted',
      '11': 'copy_deleted',
      '13': 'copy_deleted',
      '15': 'copy_deleted',
      '30': 'author_deactivated',
      '31': 'copy_author_deactivated',
      '32': 'copy_author_deactivated',
    });
    // The report and the cycle summary read the audit: the follow-ups are there under their cause.
    const audit = db.prepare("SELECT reason, action_taken, count FROM cs_audit_counts WHERE reason IN ('copy', 'embed') ORDER BY run_id, reason").all();
    expect(audit).toEqual([
      { reason: 'copy', action_taken: 'copy_deleted', count: 3n },
      { reason: 'embed', action_taken: 'embed_updated', count: 5n },
      { reason: 'copy', action_taken: 'copy_deleted', count: 2n },
    ]);
    db.close();
  });

  it('a dry run before any apply (no index yet) finds the same copies by a pass over the table, and changes nothing', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    insertTweets(db, [
      { id: '10', raw_json: '{"id_str":"10"}' },
      { id: '11', raw_json: '{"id_str":"11","retweeted_status":{"id_str":"10"}}' },
      { id: '12', raw_json: '{"id":"12","includes":{"tweets":[{"id":"10"}]}}' },
    ]);
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('10', 'deleted')]), { dryRun: true });
    expect(run.changes.tweets).toEqual({ deleted: { result: 1, copy: 1 }, updated: { embed: 1 } });
    expect(ids(db, 'tweets')).toEqual(['10', '11', '12']);
    expect(db.prepare('SELECT count(*) FROM cs_embeds').pluck().get()).toBe(0n);
    db.close();
  });

  it('a sweep cut by time goes on where it stopped, from the start when a later deletion added IDs, and clears what it left', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    // The deleted IDs are gone through in order: 100's retweets come before 200's, wherever a sweep of 200 stopped.
    insertTweets(db, [{ id: '100' }, { id: '200' }, ...Array.from({ length: 50 }, (_, i) => rt(2000 + i, '200')), ...Array.from({ length: 10 }, (_, i) => rt(1000 + i, '100'))]);
    const target = resolveTarget(db, config);
    await ensureEmbedIndex(db, target);
    const statements = prepareContentStatements(db, target, 'tweets', { cascadeUsers: false, runId: null });
    const copies: number[] = [];
    /** One transaction: `work`, then the sweep, told to stop at its `units`-th row or ID done (none: never). */
    const transaction = (units: number | null, work: () => void = () => {}) =>
      db.transaction(() => {
        work();
        let asked = 0;
        const swept = statements.sweep(AS_OF, units === null ? undefined : () => ++asked >= units);
        copies.push(statements.drainChanges().find((c) => c.cause === 'copy')?.count ?? 0);
        return swept;
      }).immediate();
    const where = () => db.prepare('SELECT kind, swept_id, swept_to FROM cs_sweep_state').get();
    const pending = () => db.prepare('SELECT kind, id, reason FROM cs_sweep_pending ORDER BY id').all();

    expect(transaction(10, () => statements.delete('200' as Id, 'deleted', AS_OF))).toBe(false);
    expect(copies).toEqual([10]);
    expect(where()).toEqual({ kind: 'gone', swept_id: '200', swept_to: 2009n });
    expect(pending()).toEqual([{ kind: 'gone', id: '200', reason: 'deleted' }]);
    // Nothing new: on from 2010.
    expect(transaction(5)).toBe(false);
    expect(where()).toEqual({ kind: 'gone', swept_id: '200', swept_to: 2014n });
    // 100's deletion adds an ID before the one reached: the sweep starts over (rows handled no longer match) and
    // reaches 100's retweets first.
    expect(transaction(5, () => statements.delete('100' as Id, 'deactivated', AS_OF))).toBe(false);
    expect(where()).toEqual({ kind: 'gone', swept_id: '100', swept_to: 1004n });
    expect(pending()).toEqual([{ kind: 'gone', id: '100', reason: 'deactivated' }, { kind: 'gone', id: '200', reason: 'deleted' }]);
    expect(transaction(null)).toBe(true);
    expect(ids(db, 'tweets')).toEqual([]);
    expect(copies).toEqual([10, 5, 5, 40]);
    expect(pending()).toEqual([]);
    expect(where()).toBeUndefined();
    const reasons = db.prepare("SELECT reason, count(*) AS n FROM cs_tombstones WHERE type = 'tweets' GROUP BY reason ORDER BY reason").all();
    expect(reasons).toEqual([
      { reason: 'copy_deactivated', n: 10n },
      { reason: 'copy_deleted', n: 50n },
      { reason: 'deactivated', n: 1n },
      { reason: 'deleted', n: 1n },
    ]);
    expect(statements.sweepPending()).toBe(false);
    db.close();
  });

  it('a connection holding the sets of a sweep another connection finished and then started anew sweeps the new one', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    insertTweets(db, [{ id: '100' }, { id: '200' }, ...Array.from({ length: 5 }, (_, i) => rt(1000 + i, '100')), ...Array.from({ length: 5 }, (_, i) => rt(2000 + i, '200'))]);
    const target = resolveTarget(db, config);
    await ensureEmbedIndex(db, target);
    const other = openStore(config.store.path);
    const a = prepareContentStatements(db, target, 'tweets', { cascadeUsers: false, runId: null });
    const b = prepareContentStatements(other, resolveTarget(other, config), 'tweets', { cascadeUsers: false, runId: null });
    const transaction = (on: Db, statements: typeof a, units: number | null, work: () => void = () => {}) =>
      on.transaction(() => {
        work();
        let asked = 0;
        return statements.sweep(AS_OF, units === null ? undefined : () => ++asked >= units);
      }).immediate();
    // A cuts the sweep of 100's copies and holds its IDs; B finishes it, then cuts the sweep of 200's copies.
    expect(transaction(db, a, 1, () => a.delete('100' as Id, 'deleted', AS_OF))).toBe(false);
    expect(transaction(other, b, null)).toBe(true);
    expect(transaction(other, b, 1, () => b.delete('200' as Id, 'deleted', AS_OF))).toBe(false);
    // A goes on with the pending sweep: 200's, not the one it held.
    expect(transaction(db, a, null)).toBe(true);
    expect(ids(db, 'tweets')).toEqual([]);
    other.close();
    db.close();
  });

  it('store.tables.tweets.embeds: [] turns the JSON copies off', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir, { store: { path: 'store.db', tables: { tweets: { embeds: [] } } } });
    insertTweets(db, [{ id: '10', raw_json: '{"id_str":"10"}' }, { id: '11', raw_json: '{"id_str":"11","retweeted_status":{"id_str":"10"}}' }]);
    await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('10', 'deleted')]));
    expect(ids(db, 'tweets')).toEqual(['11']);
    db.close();
  });
});

/** A twitter-to-sqlite store (test/fixtures/layouts/twitter-to-sqlite.sql) with the ledger, and its config. */
function twitterToSqlite(dir: string, extra: Record<string, unknown> = {}) {
  const file = path.join(dir, 'store.db');
  const raw = new Database(file);
  raw.exec(layoutDdl('twitter-to-sqlite'));
  raw.close();
  const db = openStore(file);
  migrate(db);
  const config = makeConfig(dir, { store: { path: 'store.db', ...layoutStoreConfig('twitter-to-sqlite'), ...extra } });
  return { db, config };
}

/** A collector's store from `ddl`, mapped with no compliance columns and GeoJSON text in `geo`. */
function smallCollector(ddl: string, dependents: unknown[] = []) {
  const dir = tempDir();
  const raw = new Database(path.join(dir, 'store.db'));
  raw.exec(ddl);
  raw.close();
  const db = openStore(path.join(dir, 'store.db'));
  migrate(db);
  const unmarked = { complianceState: null, complianceReason: null, complianceAt: null };
  const tables = {
    tweets: { table: 'tweets', id: 'id', authorId: 'user', geoLat: null, geoLon: null, placeId: null, rawJson: null, geoColumns: ['geo'], ...unmarked },
    users: { table: 'users', id: 'id', ...unmarked },
  };
  return { dir, db, config: makeConfig(dir, { store: { path: 'store.db', tables, ...(dependents.length ? { dependents } : {}) } }) };
}

describe('copies and orphans on twitter-to-sqlite', () => {
  it('retweets (retweeted_status) go with the original, quotes are cleared, unlinked media and places go; counts exact', async () => {
    const dir = tempDir();
    const { db, config } = twitterToSqlite(dir, { orphans: [{ table: 'places' }] });
    db.exec(`
      INSERT INTO users (id, screen_name) VALUES (1, 'one'), (2, 'two');
      INSERT INTO places (id, full_name) VALUES ('p1', 'Berlin'), ('p2', 'Paris'), ('p3', 'Rome');
      INSERT INTO tweets (id, user, full_text, retweeted_status, quoted_status, place, geo) VALUES
        (100, 1, 'original', NULL, NULL, 'p1', '{"type":"Point"}'),
        (101, 2, 'RT @one: original', 100, NULL, 'p1', NULL),
        (102, 2, 'quoting', NULL, 100, NULL, NULL),
        (103, 2, 'kept', NULL, NULL, 'p3', NULL),
        (104, 2, 'geo', NULL, NULL, 'p2', '{"type":"Point"}'),
        (105, 1, 'RT of a retweet', 101, NULL, NULL, NULL);
      INSERT INTO media (id, media_url) VALUES (500, 'https://pbs.twimg.com/media/a.jpg'), (501, 'https://pbs.twimg.com/media/b.jpg'), (502, 'never linked');
      INSERT INTO media_tweets (media_id, tweets_id) VALUES (500, 100), (500, 101), (501, 100), (501, 103);
      INSERT INTO favorited_by (tweet, user) VALUES (101, 1);
    `);
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('100', 'deleted'), result('104', 'scrub_geo')]));
    expect(ids(db, 'tweets')).toEqual(['102', '103', '104', '105']);
    expect(db.prepare('SELECT quoted_status FROM tweets WHERE id = 102').pluck().get()).toBeNull();
    // A retweet of the retweet is not followed (X has none): its pointer is cleared, so the FOREIGN KEY holds.
    expect(db.prepare('SELECT retweeted_status FROM tweets WHERE id = 105').pluck().get()).toBeNull();
    expect(ids(db, 'media')).toEqual(['501', '502']);
    expect(ids(db, 'media_tweets', 'media_id')).toEqual(['501']);
    expect(ids(db, 'places')).toEqual(['p3']);
    expect(ids(db, 'favorited_by', 'tweet')).toEqual([]);
    expect(tombstones(db)).toEqual({ '100': 'deleted', '101': 'copy_deleted' });
    expect(run.changes).toEqual({
      tweets: { deleted: { result: 1, copy: 1 }, updated: { result: 1, fk: 2 } },
      media_tweets: { deleted: { fk: 3 } },
      favorited_by: { deleted: { fk: 1 } },
      media: { deleted: { orphan: 1 } },
      places: { deleted: { orphan: 2 } },
    });
    expect(db.pragma('foreign_key_check')).toEqual([]);
    db.close();
  });

  it('records about a row a queued deletion takes with it, and IDs repeated in the batch, find what they would row by row', async () => {
    // Deletions are queued and marks and scrubs grouped (src/store/queuedDelete.ts, prepareQueuedDelete): each
    // record must still find what it would if every record ran alone, in ID order.
    const dir = tempDir();
    const { db, config } = twitterToSqlite(dir);
    db.exec(`
      INSERT INTO users (id, screen_name) VALUES (1, 'one'), (2, 'two');
      INSERT INTO tweets (id, user, full_text, retweeted_status, geo) VALUES
        (100, 1, 'original', NULL, NULL),
        (99, 2, 'RT before its original', 100, NULL),
        (101, 2, 'RT @one: original', 100, '{"type":"Point"}'),
        (102, 2, 'RT @one: original', 100, NULL),
        (103, 1, 'marked, then deleted', NULL, NULL),
        (104, 1, 'deleted, then marked and scrubbed', NULL, '{"type":"Point"}'),
        (105, 1, 'marked twice', NULL, NULL),
        (106, 1, 'scrubbed twice', NULL, '{"type":"Point"}');
    `);
    const lines = [
      ...[['99', 'suspended'], ['100', 'deleted'], ['101', 'scrub_geo'], ['102', 'deleted'], ['102', 'suspended']],
      ...[['103', 'protected'], ['103', 'deleted'], ['104', 'deleted'], ['104', 'suspended'], ['104', 'scrub_geo']],
      ...[['105', 'suspended'], ['105', 'protected'], ['106', 'scrub_geo'], ['106', 'scrub_geo']],
    ].map(([id, reason]) => result(id!, reason!));
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', lines));
    // 99 is marked, then goes (with its mark) as a copy of 100; 101 and 102 went with 100 before their own records.
    expect(run.applied).toMatchObject({ delete: 3, mark: 4, scrub_geo: 2 });
    expect(run.notFound).toBe(5);
    expect(ids(db, 'tweets')).toEqual(['105', '106']);
    expect(tombstones(db)).toEqual({ '99': 'copy_deleted', '100': 'deleted', '101': 'copy_deleted', '102': 'copy_deleted', '103': 'deleted', '104': 'deleted' });
    expect(db.prepare("SELECT id || ' ' || state FROM cs_marks WHERE type = 'tweets'").pluck().all()).toEqual(['105 protected']);
    expect(db.prepare("SELECT CAST(id AS TEXT) FROM cs_scrubs WHERE type = 'tweets'").pluck().all()).toEqual(['106']);
    expect(db.prepare('SELECT geo FROM tweets WHERE id = 106').pluck().get()).toBeNull();
    expect(run.changes).toEqual({ tweets: { deleted: { result: 3, copy: 3 }, marked: { result: 4 }, updated: { result: 1 } } });
    expect(db.pragma('foreign_key_check')).toEqual([]);
    db.close();
  });

  it('text IDs: a retweet stored before its original in ID order, though its text sorts after it, is marked before it goes', async () => {
    // Queued marks and scrubs leave out the rows a queued deletion takes as copies of an earlier record's row (copiedAway
    // in src/store/queuedDelete.ts): "earlier" is ID order, so for IDs kept as text, the shorter ID first.
    const { dir, db, config } = smallCollector(`CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT);
      CREATE TABLE tweets (id TEXT PRIMARY KEY, user TEXT REFERENCES users (id), full_text TEXT, retweeted_status TEXT REFERENCES tweets (id), geo TEXT);
      CREATE INDEX tweets_user ON tweets (user);
      CREATE INDEX tweets_rt ON tweets (retweeted_status);
      INSERT INTO users VALUES ('1', 'one');
      INSERT INTO tweets VALUES ('1000', '1', 'original', NULL, NULL), ('999', '1', 'RT before its original', '1000', NULL),
        ('1001', '1', 'RT after it', '1000', '{"type":"Point"}'), ('1002', '1', 'kept', NULL, '{"type":"Point"}');`);
    const lines = [result('999', 'suspended'), result('1000', 'deleted'), result('1001', 'scrub_geo'), result('1002', 'scrub_geo')];
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', lines));
    // 999 is marked, then goes (with its mark) as a copy of 1000; 1001 went with 1000 before its own record.
    expect(run.applied).toMatchObject({ delete: 1, mark: 1, scrub_geo: 1 });
    expect(run.notFound).toBe(1);
    expect(ids(db, 'tweets')).toEqual(['1002']);
    expect(tombstones(db)).toEqual({ '999': 'copy_deleted', '1000': 'deleted', '1001': 'copy_deleted' });
    expect(db.prepare("SELECT count(*) FROM cs_marks WHERE type = 'tweets'").pluck().get()).toBe(0n);
    expect(run.changes).toEqual({ tweets: { deleted: { result: 1, copy: 2 }, marked: { result: 1 }, updated: { result: 1 } } });
    db.close();
  });

  it('an ID stored twice (no unique key) is found once by its queued mark or scrub, and a missing one is not found', async () => {
    // The queued statements count the IDs they find, not the rows (SELECT DISTINCT), as one record at a time does.
    const { dir, db, config } = smallCollector(
      `CREATE TABLE users (id INTEGER PRIMARY KEY);
      CREATE TABLE tweets (id INTEGER, user INTEGER, retweeted_status INTEGER, geo TEXT);
      CREATE INDEX tweets_id ON tweets (id);
      CREATE INDEX tweets_rt ON tweets (retweeted_status);
      INSERT INTO tweets VALUES (100, 1, NULL, 'x'), (100, 1, NULL, 'x'), (200, 1, NULL, 'y'), (200, 1, NULL, 'y'), (300, 1, NULL, NULL);`,
      [{ table: 'tweets', column: 'retweeted_status', references: 'tweets', action: 'copy' }],
    );
    const lines = [result('100', 'suspended'), result('101', 'suspended'), result('200', 'scrub_geo'), result('201', 'scrub_geo'), result('300', 'deleted')];
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', lines));
    expect(run.applied).toMatchObject({ delete: 1, mark: 1, scrub_geo: 1 });
    expect(run.notFound).toBe(2);
    expect(run.changes).toEqual({ tweets: { deleted: { result: 1 }, marked: { result: 1 }, updated: { result: 2 } } });
    db.close();
  });

  it('deletions of two reasons in one group: each copy is tombstoned with its own original’s reason, with all it holds', async () => {
    // The group's copies are listed once and split by the original they point at (Step.collect in
    // src/store/deleteSteps.ts): the copy tombstones run per reason, everything else once over the lists.
    const dir = tempDir();
    const { db, config } = twitterToSqlite(dir);
    db.exec(`
      INSERT INTO users (id, screen_name) VALUES (1, 'one'), (2, 'two');
      INSERT INTO tweets (id, user, full_text, retweeted_status, quoted_status) VALUES
        (100, 1, 'deleted, two retweets', NULL, NULL),
        (110, 1, 'deactivated, one retweet', NULL, NULL),
        (120, 1, 'deleted, no retweet', NULL, NULL),
        (201, 2, 'RT of 100, liked, marked', 100, NULL),
        (202, 2, 'RT of 100', 100, NULL),
        (211, 2, 'RT of 110', 110, NULL),
        (300, 2, 'quotes the retweet 211', NULL, 211),
        (301, 2, 'retweets the retweet 202', 202, NULL);
      INSERT INTO favorited_by (tweet, user) VALUES (201, 1), (100, 2);
      INSERT INTO media (id, media_url) VALUES (500, 'https://pbs.twimg.com/media/a.jpg');
      INSERT INTO media_tweets (media_id, tweets_id) VALUES (500, 211);
      INSERT INTO cs_marks (type, id, state, reason, at) VALUES ('tweets', 201, 'protected', 'protected', '${AS_OF}');
    `);
    const lines = [result('100', 'deleted'), result('110', 'deactivated'), result('120', 'deleted')];
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', lines));
    expect(run.applied).toMatchObject({ delete: 3 });
    expect(ids(db, 'tweets')).toEqual(['300', '301']);
    expect(tombstones(db)).toEqual({
      '100': 'deleted',
      '110': 'deactivated',
      '120': 'deleted',
      '201': 'copy_deleted',
      '202': 'copy_deleted',
      '211': 'copy_deactivated',
    });
    // A copy's own references: its quote and its retweet (not followed) are cleared, its links and mark go.
    expect(db.prepare('SELECT quoted_status FROM tweets WHERE id = 300').pluck().get()).toBeNull();
    expect(db.prepare('SELECT retweeted_status FROM tweets WHERE id = 301').pluck().get()).toBeNull();
    expect(ids(db, 'favorited_by', 'tweet')).toEqual([]);
    expect(ids(db, 'media_tweets', 'media_id')).toEqual([]);
    expect(db.prepare("SELECT count(*) FROM cs_marks WHERE type = 'tweets'").pluck().get()).toBe(0n);
    expect(run.changes).toMatchObject({
      tweets: { deleted: { result: 3, copy: 3 }, updated: { fk: 2 } },
      favorited_by: { deleted: { fk: 2 } },
      media_tweets: { deleted: { fk: 1 } },
    });
    expect(db.pragma('foreign_key_check')).toEqual([]);
    db.close();
  });

  it('records after a queue run inside the window find what they would row by row: copies gone, a copy’s retweet kept', async () => {
    // The queue runs early when its rows' dependents add up (DELETE_GROUP_DEPENDENTS): what was looked up for the
    // records after it must not be taken as still true where the run changed it (prepareQueuedDelete, forgetWhatChanges).
    const dir = tempDir();
    const { db, config } = twitterToSqlite(dir);
    db.exec(`
      WITH RECURSIVE n (value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 250)
      INSERT INTO users (id, screen_name) SELECT value, 'u' || value FROM n;
      INSERT INTO tweets (id, user, full_text, retweeted_status, geo) VALUES
        (100, 1, 'original', NULL, NULL),
        (200, 1, 'liked a', NULL, NULL), (201, 1, 'liked b', NULL, NULL), (202, 1, 'liked c', NULL, NULL),
        (203, 1, 'liked d', NULL, NULL), (204, 1, 'liked e', NULL, NULL),
        (1000, 2, 'RT @u1: original', 100, NULL),
        (1001, 3, 'RT of the retweet', 1000, NULL),
        (1002, 4, 'RT @u1: original', 100, '{"type":"Point"}');
      INSERT INTO favorited_by (tweet, user) SELECT t.id, u.id FROM tweets AS t, users AS u WHERE t.id BETWEEN 200 AND 204;
    `);
    const lines = [
      ...['100', '200', '201', '202', '203', '204'].map((id) => result(id, 'deleted')),
      result('1000', 'suspended'),
      result('1001', 'deleted'),
      result('1002', 'scrub_geo'),
    ];
    const run = await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', lines));
    // 1000 and 1002 went with 100 before their records; 1001 lost its pointer at 1000 then, and is deleted by its own.
    expect(run.applied).toMatchObject({ delete: 7, mark: 0, scrub_geo: 0 });
    expect(run.notFound).toBe(2);
    expect(ids(db, 'tweets')).toEqual([]);
    expect(tombstones(db)).toEqual({
      ...Object.fromEntries(['100', '200', '201', '202', '203', '204', '1001'].map((id) => [id, 'deleted'])),
      '1000': 'copy_deleted',
      '1002': 'copy_deleted',
    });
    expect(db.prepare("SELECT count(*) FROM cs_marks WHERE type = 'tweets'").pluck().get()).toBe(0n);
    expect(run.changes).toEqual({ tweets: { deleted: { result: 7, copy: 2 }, updated: { fk: 1 } }, favorited_by: { deleted: { fk: 1250 } } });
    expect(db.pragma('foreign_key_check')).toEqual([]);
    db.close();
  });

  it('a user deletion: the cascade deletes the author’s tweets, their retweets by others, and the media they leave', async () => {
    const dir = tempDir();
    const { db, config } = twitterToSqlite(dir);
    db.exec(`
      INSERT INTO users (id, screen_name) VALUES (1, 'one'), (2, 'two');
      INSERT INTO tweets (id, user, full_text, retweeted_status) VALUES (100, 1, 'a', NULL), (101, 2, 'RT a', 100), (102, 2, 'b', NULL);
      INSERT INTO media (id) VALUES (500), (501);
      INSERT INTO media_tweets (media_id, tweets_id) VALUES (500, 100), (500, 101), (501, 102);
    `);
    const run = await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result('1', 'deactivated')]));
    expect(ids(db, 'tweets')).toEqual(['102']);
    expect(ids(db, 'media')).toEqual(['501']);
    expect(tombstones(db)).toEqual({ '100': 'author_deactivated', '101': 'copy_deactivated' });
    expect(run.changes).toEqual({
      users: { deleted: { result: 1 } },
      tweets: { deleted: { cascade: 1, copy: 1 } },
      media_tweets: { deleted: { fk: 2 } },
      media: { deleted: { orphan: 1 } },
    });
    db.close();
  });
});

describe('countCopyResidue: what an audit reports of copies and orphans', () => {
  const counts = (db: Db, config: Parameters<typeof resolveTarget>[1]) => {
    const residue = countCopyResidue(db, resolveTarget(db, config));
    return Object.fromEntries(Object.entries(residue).map(([k, v]) => [k, v.count]));
  };

  it('twitter-to-sqlite: none after the apply; each class planted by hand is counted, with an example', async () => {
    const dir = tempDir();
    // No guard: the plants stand for rows another writer put back.
    const { db, config } = twitterToSqlite(dir, { orphans: [{ table: 'places' }] });
    const guardOff = makeConfig(dir, { store: { path: 'store.db', ...layoutStoreConfig('twitter-to-sqlite'), orphans: [{ table: 'places' }] }, reconcile: { guard: 'off' } });
    db.exec(`
      INSERT INTO users (id) VALUES (1), (2);
      INSERT INTO places (id) VALUES ('p1');
      INSERT INTO tweets (id, user, retweeted_status, quoted_status, place) VALUES (100, 1, NULL, NULL, 'p1'), (101, 2, 100, NULL, NULL), (102, 2, NULL, 100, NULL), (103, 2, NULL, NULL, NULL);
      INSERT INTO media (id) VALUES (500);
      INSERT INTO media_tweets VALUES (500, 100);
    `);
    await apply(db, guardOff, 'tweets', writeResults(dir, 't.jsonl', [result('100', 'deleted')]));
    expect(counts(db, config)).toEqual({ copies: 0, dependents: 0, pointers: 0, embedded: 0, orphans: 0 });
    db.pragma('foreign_keys = OFF'); // as the collector writes
    db.exec(`
      UPDATE tweets SET retweeted_status = 100 WHERE id = 103;
      UPDATE tweets SET quoted_status = 100 WHERE id = 102;
      INSERT INTO favorited_by (tweet, user) VALUES (100, 2);
      INSERT INTO media (id) VALUES (501);
      INSERT INTO places (id) VALUES ('p2');
    `);
    const residue = countCopyResidue(db, resolveTarget(db, config));
    expect(counts(db, config)).toEqual({ copies: 1, dependents: 1, pointers: 1, embedded: 0, orphans: 2 });
    expect(residue.copies.examples).toEqual(['tweets.retweeted_status = 100 (rowid 103): a deleted tweet']);
    expect(residue.orphans.examples.sort()).toEqual(['media.id = 501: nothing references it', 'places.id = p2: nothing references it']);
    db.close();
  });

  it('default schema: an embedded copy of a deleted tweet written back is counted, by the index and without it', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    insertTweets(db, [{ id: '10', raw_json: '{"id_str":"10"}' }, { id: '11', raw_json: '{"id":"11","includes":{"tweets":[{"id":"10"}]}}' }]);
    await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('10', 'deleted')]));
    expect(counts(db, config).embedded).toBe(0);
    db.prepare('UPDATE tweets SET raw_json = ? WHERE id = 11').run('{"id_str":"11","quoted_status":{"id_str":"10","text":"back"}}');
    expect(countCopyResidue(db, resolveTarget(db, config)).embedded).toEqual({ count: 1, examples: ['tweet 11 embeds deleted tweet 10'] });
    // Without the index (made again by the next apply), the same by a pass over the table.
    db.exec('DELETE FROM cs_embeds_state');
    expect(countCopyResidue(db, resolveTarget(db, config)).embedded).toEqual({ count: 1, examples: ['tweet 11 embeds a deleted tweet'] });
    db.close();
  });
});

describe('the embedded-copies index (cs_embeds)', () => {
  it('is filled from the stored tweets in transactions sized to reconcile.maxLockMs, the event loop turning between them', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    const tweets = Array.from({ length: 3000 }, (_, i) => ({ id: String(1000 + i), raw_json: JSON.stringify({ id_str: String(1000 + i), quoted_status: { id_str: String(999 + i) } }) }));
    insertTweets(db, tweets);
    // Triggers fill the index for rows written from now on; the rows above were stored before it existed.
    db.exec('DROP TRIGGER IF EXISTS cs_embeds_ai');
    db.exec('DELETE FROM cs_embeds; DELETE FROM cs_embeds_state');
    const target = resolveTarget(db, config);
    // A fake clock: every reading is 150 ms later, so each transaction looks over the cut (half of 200 ms).
    let now = 0;
    const clock = () => (now += 150);
    const progress: number[] = [];
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const filled = await ensureEmbedIndex(db, target, { maxLockMs: 200, clock, onProgress: (n) => progress.push(n) });
    clearInterval(ticker);
    expect(filled).toBe(3000);
    expect(embedIndexReady(db, target)).toBe(true);
    expect(Number(db.prepare('SELECT count(*) FROM cs_embeds').pluck().get())).toBe(3000);
    // 2,000 rows first, then halved (each transaction took longer than the cut), then the one that finds the end.
    expect(progress).toEqual([2000, 3000]);
    expect(turns).toBeGreaterThan(0);
    db.close();
  });
});
