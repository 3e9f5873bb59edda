import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyRunsOf } from '../../src/store/applyRuns.js';
import { ensureEmbedIndex } from '../../src/store/embedIndex.js';
import { resolveTarget } from '../../src/store/target.js';
import { openStore, type Db } from '../../src/store/open.js';
import type { ApplySummary, Cut } from '../../src/pipeline/apply/applyFile.js';
import { capturedLogger } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tmp.js';
import { apply, insertTweets, insertUsers, makeStore, result, rowsOf, writeResults } from './helpers.js';

const tempDir = useTempDir();

/** A clock that advances 1 ms per reading: with maxLockMs N, a transaction is cut after about N rows, every time. */
const ticking = () => {
  let t = 0;
  return () => ++t;
};

/**
 * Users 1 (60 tweets, each liked twice), 2 (3 tweets), 3, 4 and 5 (a tweet with geo), in a store whose `likes` table
 * references tweets: a user's deletion cascades to the tweets and from them to the likes.
 */
function usersStore(dir: string, reconcile: Record<string, unknown>) {
  const { config, db } = makeStore(dir, { reconcile });
  db.exec('CREATE TABLE likes (tweet_id INTEGER NOT NULL REFERENCES tweets (id), liker INTEGER NOT NULL); CREATE INDEX likes_tweet ON likes (tweet_id)');
  insertUsers(db, ['1', '2', '3', '4', '5']);
  const tweets = Array.from({ length: 60 }, (_, i) => ({ id: String(1000 + i), author_id: '1' }));
  insertTweets(db, [
    ...tweets,
    { id: '2000', author_id: '2' },
    { id: '2001', author_id: '2' },
    { id: '2002', author_id: '2' },
    { id: '3000', author_id: '3' },
    { id: '5000', author_id: '5', geo_lat: 1, geo_lon: 2, place_id: 'p' },
  ]);
  const like = db.prepare('INSERT INTO likes (tweet_id, liker) VALUES (?, ?)');
  for (const t of tweets) for (const liker of [7n, 8n]) like.run(BigInt(t.id), liker);
  const file = writeResults(dir, 'users.ndjson', [
    result('3', 'protected'),
    result('1', 'deleted'),
    'not json',
    result('5', 'scrub_geo'),
    result('2', 'deactivated'),
    result('4', 'suspended'),
  ]);
  db.close();
  copyFileSync(config.store.path, path.join(dir, 'straight.db'));
  return { config, file, straight: openStore(path.join(dir, 'straight.db')), store: openStore(config.store.path) };
}

/** Tweets of user 1 in a store whose likes (deleted with the tweet) and replies (set NULL) reference them, indexed. */
function likesStore(dir: string, tweetIds: string[]) {
  const { config, db } = makeStore(dir, { reconcile: { maxLockMs: 2 } });
  db.exec(`CREATE TABLE likes (tweet_id INTEGER NOT NULL REFERENCES tweets (id), liker INTEGER NOT NULL);
           CREATE INDEX likes_tweet ON likes (tweet_id);
           CREATE TABLE replies (id INTEGER PRIMARY KEY, in_reply_to INTEGER REFERENCES tweets (id) ON DELETE SET NULL);
           CREATE INDEX replies_to ON replies (in_reply_to);`);
  insertTweets(db, tweetIds.map((id) => ({ id, author_id: '1' })));
  return { config, db, like: db.prepare('INSERT INTO likes (tweet_id, liker) VALUES (?, ?)'), reply: db.prepare('INSERT INTO replies (id, in_reply_to) VALUES (?, ?)') };
}

const stateOf = (db: Db) => ({ tweets: rowsOf(db, 'tweets'), users: rowsOf(db, 'users'), likes: db.prepare('SELECT * FROM likes ORDER BY tweet_id, liker').all() });
const totalsOf = ({ elapsedMs: _e, runId: _r, rejectsFile: _f, ...totals }: ApplySummary) => totals;

describe('reconcile.maxLockMs: write transactions cut by time', () => {
  it("applies a user with many tweets in several transactions, with the same store and counts as one transaction", async () => {
    const dir = tempDir();
    const { config, file, straight, store } = usersStore(dir, { maxLockMs: 10 });
    const cuts: (Cut | null)[] = [];
    const summary = await apply(store, config, 'users', file, { clock: ticking(), onCommit: (c) => cuts.push(c.cut) });
    // 60 tweets at ~10 per transaction: the user's deletion alone needs 6 or more; only the last commit is whole.
    expect(cuts.length).toBeGreaterThanOrEqual(6);
    expect(cuts.slice(0, -1).every((c) => c !== null && c.line === 6)).toBe(true);
    expect(cuts.at(-1)).toBeNull();

    const once: (Cut | null)[] = [];
    const unbounded = await apply(straight, { ...config, reconcile: { ...config.reconcile, maxLockMs: 1e9 } }, 'users', file, {
      clock: ticking(),
      onCommit: (c) => once.push(c.cut),
    });
    expect(once).toEqual([null]);
    expect(stateOf(store)).toEqual(stateOf(straight));
    expect(totalsOf(summary)).toEqual(totalsOf(unbounded));
    expect(summary).toMatchObject({ state: 'done', applied: { delete: 2, mark: 2, scrub_geo: 1 }, cascaded: { deleted: 63, marked: 1, scrubbed: 1 } });
    expect(applyRunsOf(store).auditCounts(summary.runId!)).toEqual(applyRunsOf(straight).auditCounts(unbounded.runId!));
    expect(applyRunsOf(store).changeCounts(summary.runId!)).toEqual(applyRunsOf(straight).changeCounts(unbounded.runId!));
    expect(stateOf(store).likes).toEqual([]);
    store.close();
    straight.close();
  });

  it('resumes a run interrupted between two cuts exactly where it stopped: the same store, totals, audit and rejects', async () => {
    const dir = tempDir();
    const { config, file, straight, store } = usersStore(dir, { maxLockMs: 3 });
    const controller = new AbortController();
    let commits = 0;
    const first = await apply(store, config, 'users', file, {
      clock: ticking(),
      signal: controller.signal,
      // Stop after the third cut: the first user's tweets are partly deleted, their count partly committed.
      onCommit: () => ++commits === 3 && controller.abort(),
    });
    expect(first.state).toBe('interrupted');
    const run = applyRunsOf(store).get(first.runId!)!;
    expect(run.checkpointLine).toBe(0);
    expect(run.counts!.cut).toMatchObject({ line: 6 });
    const left = store.prepare("SELECT count(*) FROM tweets WHERE author_id = 1").pluck().get() as bigint;
    expect(left).toBeGreaterThan(0n);
    expect(left).toBeLessThan(60n);

    // Interrupted again, this time after a cut that ended between two records (the first user is done).
    const again = new AbortController();
    const second = await apply(store, config, 'users', file, {
      runId: first.runId!,
      clock: ticking(),
      signal: again.signal,
      onCommit: (c) => (c.cut?.records ?? 0) >= 2 && again.abort(),
    });
    expect(second.state).toBe('interrupted');
    expect(applyRunsOf(store).get(first.runId!)!.counts!.cut!.records).toBeGreaterThanOrEqual(2);

    const resumed = await apply(store, config, 'users', file, { runId: first.runId!, clock: ticking() });
    const once = await apply(straight, config, 'users', file, { clock: ticking() });
    expect(resumed.state).toBe('done');
    expect(stateOf(store)).toEqual(stateOf(straight));
    expect(totalsOf(resumed)).toEqual(totalsOf(once));
    expect(resumed).toMatchObject({ linesRead: 6, records: 5, rejected: { malformed_json: 1 }, cascaded: { deleted: 63 } });
    expect(applyRunsOf(store).auditCounts(resumed.runId!)).toEqual(applyRunsOf(straight).auditCounts(once.runId!));
    expect(applyRunsOf(store).changeCounts(resumed.runId!)).toEqual(applyRunsOf(straight).changeCounts(once.runId!));
    store.close();
    straight.close();
  });

  it('a tweets file cut between records resumes with the batch re-read in the same order, whatever batchSize says then', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir, { reconcile: { maxLockMs: 3, batchSize: 40 } });
    insertTweets(db, Array.from({ length: 50 }, (_, i) => ({ id: String(100 + i), author_id: '1', geo_lat: 1 })));
    const reasons = ['deleted', 'suspended', 'scrub_geo', 'protected'];
    const file = writeResults(dir, 'r.ndjson', Array.from({ length: 50 }, (_, i) => result(String(100 + ((i * 7) % 50)), reasons[i % 4]!)));
    db.close();
    copyFileSync(config.store.path, path.join(dir, 'straight.db'));
    const store = openStore(config.store.path);
    const controller = new AbortController();
    let commits = 0;
    const first = await apply(store, config, 'tweets', file, { clock: ticking(), signal: controller.signal, onCommit: () => ++commits === 5 && controller.abort() });
    expect(first.state).toBe('interrupted');
    expect(applyRunsOf(store).get(first.runId!)!.counts!.cut).toMatchObject({ line: 40 });
    const smaller = { ...config, reconcile: { ...config.reconcile, batchSize: 7 } };
    const resumed = await apply(store, smaller, 'tweets', file, { runId: first.runId!, clock: ticking() });
    const straight = openStore(path.join(dir, 'straight.db'));
    const once = await apply(straight, config, 'tweets', file, { clock: ticking() });
    expect(rowsOf(store, 'tweets')).toEqual(rowsOf(straight, 'tweets'));
    expect(totalsOf(resumed)).toEqual(totalsOf(once));
    expect(applyRunsOf(store).auditCounts(resumed.runId!)).toEqual(applyRunsOf(straight).auditCounts(once.runId!));
    store.close();
    straight.close();
  });

  it('leaves room for a slow commit: after a transaction whose ledger writes and commit took long, the next takes fewer records', async () => {
    // The fake clock jumps while the ledger records each transaction (inside it, after the sweep: the part that is
    // not cut), as a large store's commit takes long; the transactions after the first then stop taking records
    // sooner, so that records, sweep and that tail together stay under reconcile.maxLockMs.
    const perTransaction = async (tailMs: number) => {
      const dir = tempDir();
      const { config, db } = makeStore(dir, { reconcile: { maxLockMs: 200, batchSize: 5000 } });
      insertTweets(db, Array.from({ length: 600 }, (_, i) => ({ id: String(100 + i) })));
      const file = writeResults(dir, 'r.ndjson', Array.from({ length: 600 }, (_, i) => result(String(100 + i), 'protected')));
      const tick = ticking();
      let jumped = 0;
      db.function('cs_test_slow_commit', () => ((jumped += tailMs), 0));
      db.exec('CREATE TEMP TRIGGER cs_test_slow AFTER UPDATE ON cs_apply_runs BEGIN SELECT cs_test_slow_commit(); END');
      const done: number[] = [];
      const summary = await apply(db, config, 'tweets', file, { clock: () => tick() + jumped, onCommit: (c) => done.push(c.cut?.records ?? 600) });
      expect(summary.applied.mark).toBe(600);
      db.close();
      return done.map((records, i) => records - (done[i - 1] ?? 0));
    };
    const quick = await perTransaction(0);
    const slow = await perTransaction(120);
    // The first transaction knows nothing of the tail yet: the same in both.
    expect(slow[0]).toBe(quick[0]);
    // After it: the bound's 200 less 1.25 x 120 leaves 50 of the 100 for records.
    expect(Math.max(...slow.slice(1, -1))).toBeLessThan(quick[0]! * 0.6);
    expect(slow.length).toBeGreaterThan(quick.length);
  });

  it.each([
    ['in the tables\' own columns', {}],
    ['in the ledger (cs_marks)', { tweets: { complianceState: null, complianceReason: null, complianceAt: null } }],
  ])("cuts a user's mark and geo scrub over many tweets between pieces of tweet IDs, and resumes inside them (marks %s)", async (_label, tables) => {
    const dir = tempDir();
    const { config, db } = makeStore(dir, { reconcile: { maxLockMs: 2 }, store: { path: 'store.db', tables } });
    insertUsers(db, ['6', '7', '8']);
    // 300 tweets by 6 (one with a mark of its own, which outranks the author's), 250 with geo by 7, interleaved IDs.
    insertTweets(db, [
      ...Array.from({ length: 300 }, (_, i) => ({ id: String(10_000 + 2 * i), author_id: '6', ...(i === 100 ? { compliance_state: 'suspended', compliance_reason: 'suspended' } : {}) })),
      ...Array.from({ length: 250 }, (_, i) => ({ id: String(10_001 + 2 * i), author_id: '7', geo_lat: 1, geo_lon: 2, place_id: 'p' })),
      { id: '20000', author_id: '8' },
    ]);
    if (Object.keys(tables).length) db.prepare("INSERT INTO cs_marks (type, id, state, reason, at) VALUES ('tweets', '10200', 'suspended', 'suspended', '2026-01-01')").run();
    const file = writeResults(dir, 'users.ndjson', [result('6', 'protected'), result('7', 'scrub_geo'), result('8', 'suspended')]);
    db.close();
    copyFileSync(config.store.path, path.join(dir, 'straight.db'));
    const store = openStore(config.store.path);
    const straight = openStore(path.join(dir, 'straight.db'));
    const marksOf = (d: Db) => d.prepare('SELECT type, id, state, reason FROM cs_marks ORDER BY type, id').all();

    const controller = new AbortController();
    const cuts: Cut[] = [];
    const first = await apply(store, config, 'users', file, {
      clock: ticking(),
      signal: controller.signal,
      // Stop after the second cut inside the scrub of user 7's tweets: user 6's marks are all committed.
      onCommit: (c) => {
        if (c.cut) cuts.push(c.cut);
        if (cuts.filter((cut) => cut.records === 1 && cut.after !== undefined).length === 2) controller.abort();
      },
    });
    expect(first.state).toBe('interrupted');
    // Pieces of user 6's mark were committed with the tweet ID they reached, before the user row was marked.
    expect(cuts.some((c) => c.records === 0 && c.after !== undefined)).toBe(true);
    const saved = applyRunsOf(store).get(first.runId!)!.counts!.cut! as Cut;
    expect(saved).toMatchObject({ line: 3, records: 1 });
    const scrubbed = store.prepare('SELECT count(*) FROM tweets WHERE author_id = 7 AND geo_lat IS NULL').pluck().get() as bigint;
    expect(scrubbed).toBeGreaterThan(0n);
    expect(scrubbed).toBeLessThan(250n);
    expect(store.prepare('SELECT max(id) FROM tweets WHERE author_id = 7 AND geo_lat IS NULL').pluck().get()).toBe(BigInt(saved.after!));
    // Each piece records the tweets it scrubbed in its own transaction (for `audit`): exactly those, no more.
    const scrubRecords = () => store.prepare("SELECT id FROM cs_scrubs WHERE type = 'tweets' ORDER BY id").pluck().all();
    expect(scrubRecords()).toEqual(store.prepare('SELECT id FROM tweets WHERE author_id = 7 AND geo_lat IS NULL ORDER BY id').pluck().all());

    const resumed = await apply(store, config, 'users', file, { runId: first.runId!, clock: ticking() });
    const once = await apply(straight, { ...config, reconcile: { ...config.reconcile, maxLockMs: 1e9 } }, 'users', file, { clock: ticking() });
    expect(resumed.state).toBe('done');
    expect(rowsOf(store, 'tweets')).toEqual(rowsOf(straight, 'tweets'));
    expect(rowsOf(store, 'users')).toEqual(rowsOf(straight, 'users'));
    expect(marksOf(store)).toEqual(marksOf(straight));
    expect(totalsOf(resumed)).toEqual(totalsOf(once));
    // 299 of user 6's tweets (one keeps its own mark) and user 8's one.
    expect(resumed).toMatchObject({ applied: { mark: 2, scrub_geo: 1 }, cascaded: { marked: 300, scrubbed: 250 } });
    expect(scrubRecords()).toHaveLength(250);
    const ledger = Object.keys(tables).length > 0;
    const own = ledger ? marksOf(store).find((m) => String((m as { id: unknown }).id) === '10200') : rowsOf(store, 'tweets')['10200'];
    expect(own).toMatchObject(ledger ? { state: 'suspended' } : { compliance_state: 'suspended' });
    expect(applyRunsOf(store).auditCounts(resumed.runId!)).toEqual(applyRunsOf(straight).auditCounts(once.runId!));
    expect(applyRunsOf(store).changeCounts(resumed.runId!)).toEqual(applyRunsOf(straight).changeCounts(once.runId!));
    store.close();
    straight.close();
  });

  it('deletes a row with many dependents in pieces of them, the row itself in the last transaction, and resumes inside it', async () => {
    const dir = tempDir();
    const { config, db, like, reply } = likesStore(dir, ['100', '200', '300']);
    db.transaction(() => {
      for (let i = 0; i < 600; i++) like.run(100n, BigInt(i));
      for (let i = 0; i < 3; i++) like.run(200n, BigInt(i));
      for (let i = 0; i < 300; i++) reply.run(BigInt(i + 1), 100n);
    })();
    const file = writeResults(dir, 'tweets.ndjson', [result('100', 'deleted'), result('200', 'deleted'), result('300', 'suspended')]);
    db.close();
    copyFileSync(config.store.path, path.join(dir, 'straight.db'));
    const store = openStore(config.store.path);
    const straight = openStore(path.join(dir, 'straight.db'));
    const dependentsOf = (d: Db) => ({
      likes: d.prepare('SELECT tweet_id, count(*) AS n FROM likes GROUP BY tweet_id ORDER BY tweet_id').all(),
      replies: d.prepare('SELECT in_reply_to, count(*) AS n FROM replies GROUP BY in_reply_to ORDER BY in_reply_to').all(),
    });

    const controller = new AbortController();
    const cuts: Cut[] = [];
    const first = await apply(store, config, 'tweets', file, {
      clock: ticking(),
      signal: controller.signal,
      onCommit: (c) => c.cut && cuts.push(c.cut) === 3 && controller.abort(),
    });
    expect(first.state).toBe('interrupted');
    // Two pieces of tweet 100's likes, then one of its replies: the tweet is still stored, its dependents partly gone.
    expect(cuts).toEqual([{ line: 3, records: 0 }, { line: 3, records: 0 }, { line: 3, records: 0 }]);
    expect(store.prepare('SELECT count(*) FROM tweets WHERE id = 100').pluck().get()).toBe(1n);
    expect(dependentsOf(store)).toEqual({ likes: [{ tweet_id: 100n, n: 88n }, { tweet_id: 200n, n: 3n }], replies: [{ in_reply_to: null, n: 256n }, { in_reply_to: 100n, n: 44n }] });

    const resumed = await apply(store, config, 'tweets', file, { runId: first.runId!, clock: ticking() });
    const once = await apply(straight, { ...config, reconcile: { ...config.reconcile, maxLockMs: 1e9 } }, 'tweets', file, { clock: ticking() });
    expect(resumed.state).toBe('done');
    expect(rowsOf(store, 'tweets')).toEqual(rowsOf(straight, 'tweets'));
    expect(dependentsOf(store)).toEqual(dependentsOf(straight));
    expect(dependentsOf(store)).toEqual({ likes: [], replies: [{ in_reply_to: null, n: 300n }] });
    expect(totalsOf(resumed)).toEqual(totalsOf(once));
    expect(applyRunsOf(store).auditCounts(resumed.runId!)).toEqual(applyRunsOf(straight).auditCounts(once.runId!));
    expect(applyRunsOf(store).changeCounts(resumed.runId!)).toEqual(applyRunsOf(straight).changeCounts(once.runId!));
    expect(resumed.changes).toMatchObject({ likes: { deleted: { fk: 603 } }, replies: { updated: { fk: 300 } } });
    store.close();
    straight.close();
  });

  it('finds a row with a piece of dependents in a window whose dependents are too many to list, and deletes it in pieces', async () => {
    // Tweet 900 has more likes and more replies than a window's count lists (16,384): the listing stops inside tweet
    // 900's rows of the first relation listed, before any row's of the second. Counted per ID instead, tweets 200
    // (600 likes) and 250 (600 replies) are found to have a piece of dependents or more, and both go in pieces (256,
    // 256, then the rest with the row), each piece in a transaction of its own.
    const dir = tempDir();
    const { config, db, like, reply } = likesStore(dir, ['200', '250', '900']);
    db.transaction(() => {
      for (let i = 0; i < 17_000; i++) like.run(900n, BigInt(i));
      for (let i = 0; i < 17_000; i++) reply.run(BigInt(i + 1), 900n);
      for (let i = 0; i < 600; i++) like.run(200n, BigInt(i));
      for (let i = 0; i < 600; i++) reply.run(BigInt(100_000 + i), 250n);
    })();
    const file = writeResults(dir, 'tweets.ndjson', [result('900', 'deleted'), result('250', 'deleted'), result('200', 'deleted')]);
    db.close();
    const store = openStore(config.store.path);
    // After each commit: how many of tweet 200's likes and 250's replies are left while the tweet is still stored.
    const left = { likes: store.prepare('SELECT count(*) FROM likes WHERE tweet_id = 200 AND EXISTS (SELECT 1 FROM tweets WHERE id = 200)').pluck(), replies: store.prepare('SELECT count(*) FROM replies WHERE in_reply_to = 250 AND EXISTS (SELECT 1 FROM tweets WHERE id = 250)').pluck() };
    const seen = { likes: new Set<bigint>(), replies: new Set<bigint>() };
    const summary = await apply(store, config, 'tweets', file, {
      clock: ticking(),
      onCommit: () => {
        seen.likes.add(left.likes.get() as bigint);
        seen.replies.add(left.replies.get() as bigint);
      },
    });
    expect(summary.state).toBe('done');
    expect(summary.applied).toMatchObject({ delete: 3 });
    expect(summary.changes).toMatchObject({ likes: { deleted: { fk: 17_600 } }, replies: { updated: { fk: 17_600 } } });
    // Each piece of 256 was committed while its tweet was still stored; the rest went with the tweet.
    expect([...seen.likes]).toEqual(expect.arrayContaining([344n, 88n, 0n]));
    expect([...seen.replies]).toEqual(expect.arrayContaining([344n, 88n, 0n]));
    expect(store.prepare('SELECT count(*) FROM tweets').pluck().get()).toBe(0n);
    store.close();
  });
});

/**
 * Issue 15: the embedded-copies sweep is cut by time too. Tweet 900 is embedded as retweeted_status by 2,000 rows (a
 * viral tweet's retweets kept as raw JSON) and quoted by 50; tweet 200 (geo) is quoted with its geo by 300 rows; 40
 * more tweets (300…339) have one retweet each (5000…5039). The file deletes 900 and 300…339 and scrubs 200: in ID
 * order, the viral tweet is the batch's last record.
 */
function viralStore(dir: string) {
  const { config, db } = makeStore(dir, { reconcile: { maxLockMs: 40 } });
  const geo = { geo: { type: 'Point', coordinates: [52.5, 13.4] }, place: { id: 'p1', full_name: 'Berlin' } };
  const rt = (id: number, of: string) => ({ id: String(id), raw_json: JSON.stringify({ id_str: String(id), text: `RT @a: words of ${of}`, retweeted_status: { id_str: of, text: `words of ${of}` } }) });
  insertTweets(db, [
    { id: '900', raw_json: JSON.stringify({ id_str: '900', text: 'viral' }) },
    { id: '200', geo_lat: 1, geo_lon: 2, place_id: 'p1', raw_json: JSON.stringify({ id_str: '200', text: 'here', ...geo }) },
    ...Array.from({ length: 40 }, (_, i) => ({ id: String(300 + i), raw_json: JSON.stringify({ id_str: String(300 + i) }) })),
    ...Array.from({ length: 40 }, (_, i) => rt(5000 + i, String(300 + i))),
    ...Array.from({ length: 2000 }, (_, i) => rt(10_000 + i, '900')),
    ...Array.from({ length: 300 }, (_, i) => ({ id: String(20_000 + i), raw_json: JSON.stringify({ id_str: String(20_000 + i), quoted_status: { id_str: '200', text: 'here', ...geo } }) })),
    ...Array.from({ length: 50 }, (_, i) => ({ id: String(30_000 + i), raw_json: JSON.stringify({ id_str: String(30_000 + i), text: 'so true', quoted_status: { id_str: '900' }, quoted_status_id_str: '900' }) })),
  ]);
  const file = writeResults(dir, 'tweets.ndjson', [result('900', 'deleted'), result('200', 'scrub_geo'), ...Array.from({ length: 40 }, (_, i) => result(String(300 + i), 'deactivated'))]);
  db.close();
  copyFileSync(config.store.path, path.join(dir, 'straight.db'));
  return { config, file, store: openStore(config.store.path), straight: openStore(path.join(dir, 'straight.db')) };
}

const tweetCount = (d: Db) => Number(d.prepare('SELECT count(*) FROM tweets').pluck().get());
const copyTombstones = (d: Db) => Object.fromEntries((d.prepare("SELECT reason, count(*) AS n FROM cs_tombstones WHERE type = 'tweets' GROUP BY reason ORDER BY reason").all() as { reason: string; n: bigint }[]).map((r) => [r.reason, Number(r.n)]));
const pendingSweep = (d: Db) => ({
  ids: d.prepare('SELECT kind, id, reason FROM cs_sweep_pending ORDER BY kind, id').all(),
  state: d.prepare('SELECT count(*) FROM cs_sweep_state').pluck().get(),
});
type Commit = { checkpointLine: number; cut: Cut | null; sweepPending: boolean };

describe('reconcile.maxLockMs: the embedded-copies sweep cut by time', () => {
  it("deletes a viral tweet's 2,000 JSON retweets over many transactions, each copy tombstoned and counted once, as one transaction would", async () => {
    const dir = tempDir();
    const { config, file, store, straight } = viralStore(dir);
    const before = tweetCount(store);
    const commits: Commit[] = [];
    const summary = await apply(store, config, 'tweets', file, { clock: ticking(), onCommit: (c) => commits.push(c) });
    expect(summary.state).toBe('done');
    // About 30 rows per transaction (a tick per row; the sweep stops at three quarters of 40 ms): the 2,000 copies
    // alone need some 65 transactions.
    expect(commits.filter((c) => c.sweepPending).length).toBeGreaterThanOrEqual(60);
    // The first records transaction was cut, and its sweep too: sweep-only transactions came before the other records.
    expect(commits[0]).toMatchObject({ checkpointLine: 0, sweepPending: true });
    expect(commits[0]!.cut).not.toBeNull();
    expect(commits.some((c, i) => i > 0 && c.cut === null && c.sweepPending)).toBe(true);
    expect(commits.at(-1)).toEqual({ checkpointLine: 42, cut: null, sweepPending: false });
    expect(pendingSweep(store)).toEqual({ ids: [], state: 0n });

    const unbounded = { ...config, reconcile: { ...config.reconcile, maxLockMs: 1e9 } };
    const once: Commit[] = [];
    const whole = await apply(straight, unbounded, 'tweets', file, { clock: ticking(), onCommit: (c) => once.push(c) });
    expect(once).toEqual([{ checkpointLine: 42, cut: null, sweepPending: false }]);
    expect(rowsOf(store, 'tweets')).toEqual(rowsOf(straight, 'tweets'));
    expect(totalsOf(summary)).toEqual(totalsOf(whole));
    expect(applyRunsOf(store).auditCounts(summary.runId!)).toEqual(applyRunsOf(straight).auditCounts(whole.runId!));
    expect(applyRunsOf(store).changeCounts(summary.runId!)).toEqual(applyRunsOf(straight).changeCounts(whole.runId!));

    // Every copy gone with its tombstone; the quotes lost the embedded tweet, the geo quotes its geo: each counted once.
    expect(copyTombstones(store)).toEqual({ deleted: 1, deactivated: 40, copy_deleted: 2000, copy_deactivated: 40 });
    expect(summary.changes.tweets).toEqual({ deleted: { result: 41, copy: 2040 }, updated: { result: 1, embed: 350 } });
    expect(before - tweetCount(store)).toBe(41 + 2040);
    expect(applyRunsOf(store).auditCounts(summary.runId!).filter((a) => a.reason === 'copy' || a.reason === 'embed')).toEqual([
      { reason: 'copy', actionTaken: 'copy_deleted', count: 2040 },
      { reason: 'embed', actionTaken: 'embed_updated', count: 350 },
    ]);
    expect(store.prepare("SELECT count(*) FROM tweets WHERE raw_json LIKE '%\"geo\"%' OR raw_json LIKE '%quoted_status_id_str%'").pluck().get()).toBe(0n);
    store.close();
    straight.close();
  });

  it('a crash between two transactions leaves the sweep pending in the ledger; the resumed run finishes it first, counts exact', async () => {
    const dir = tempDir();
    const { config, file, straight, ...opened } = viralStore(dir);
    let store = opened.store;
    const crash = (when: (c: Commit) => boolean) => {
      let seen = 0;
      return (c: Commit) => {
        if (when(c) && ++seen === 3) throw new Error('crash');
      };
    };
    const latestRun = () => Number(store.prepare('SELECT max(id) FROM cs_apply_runs').pluck().get());

    // 1. Inside the batch: 20 records applied (200 scrubbed, 300…318 deleted), the rows embedding them partly swept.
    await expect(apply(store, config, 'tweets', file, { clock: ticking(), onCommit: crash((c) => c.sweepPending && c.cut !== null) })).rejects.toThrow('crash');
    const runId = latestRun();
    expect(applyRunsOf(store).get(runId)).toMatchObject({ state: 'running', checkpointLine: 0 });
    const savedCut = applyRunsOf(store).get(runId)!.counts!.cut;
    expect(savedCut).toEqual({ line: 42, records: 20 });
    const pending = pendingSweep(store);
    expect(pending.state).toBe(1n);
    expect(pending.ids).toContainEqual({ kind: 'gone', id: '300', reason: 'deactivated' });
    expect(pending.ids).toContainEqual({ kind: 'scrubbed', id: '200', reason: null });
    const geoLeft = Number(store.prepare("SELECT count(*) FROM tweets WHERE id >= 20000 AND id < 30000 AND raw_json LIKE '%\"geo\"%'").pluck().get());
    expect(geoLeft).toBeGreaterThan(0);
    expect(geoLeft).toBeLessThan(300);
    // What was deleted is tombstoned and counted in the run, no more.
    const stones = copyTombstones(store);
    expect(stones).toEqual({ deactivated: 19, copy_deactivated: 19 });
    const changed = (cause: string, kind: string) => applyRunsOf(store).changeCounts(runId).find((c) => c.cause === cause && c.kind === kind)?.count;
    expect(changed('copy', 'deleted')).toBe(19);
    expect(changed('embed', 'updated')).toBe(300 - geoLeft);

    // 2. Resumed on a new connection (as after the process died: nothing of the sweep is left but the ledger), it
    // sweeps before taking records; stopped again after the batch's last records, the sweep pending.
    store.close();
    store = openStore(config.store.path);
    const commits: Commit[] = [];
    const afterBatch = crash((c) => c.sweepPending && c.cut === null);
    await expect(
      apply(store, config, 'tweets', file, {
        runId,
        clock: ticking(),
        onCommit: (c) => {
          commits.push(c);
          afterBatch(c);
        },
      }),
    ).rejects.toThrow('crash');
    expect(commits[0]).toEqual({ checkpointLine: 0, cut: savedCut, sweepPending: true });
    expect(applyRunsOf(store).get(runId)).toMatchObject({ state: 'running', checkpointLine: 42 });
    expect(pendingSweep(store)).toMatchObject({ ids: [{ kind: 'gone', id: '339', reason: 'deactivated' }, { kind: 'gone', id: '900', reason: 'deleted' }], state: 1n });
    const left = Number(store.prepare('SELECT count(*) FROM tweets WHERE id BETWEEN 10000 AND 11999').pluck().get());
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(2000);
    expect(copyTombstones(store).copy_deleted).toBe(2000 - left);

    // 3. Resumed with every line applied (a new connection again): the pending sweep is finished before the run is done.
    store.close();
    store = openStore(config.store.path);
    const resumed = await apply(store, config, 'tweets', file, { runId, clock: ticking() });
    expect(resumed.state).toBe('done');
    expect(pendingSweep(store)).toEqual({ ids: [], state: 0n });
    const once = await apply(straight, config, 'tweets', file, { clock: ticking() });
    expect(rowsOf(store, 'tweets')).toEqual(rowsOf(straight, 'tweets'));
    expect(totalsOf(resumed)).toEqual(totalsOf(once));
    expect(resumed.changes.tweets).toEqual({ deleted: { result: 41, copy: 2040 }, updated: { result: 1, embed: 350 } });
    expect(copyTombstones(store)).toEqual({ deleted: 1, deactivated: 40, copy_deleted: 2000, copy_deactivated: 40 });
    expect(applyRunsOf(store).auditCounts(runId)).toEqual(applyRunsOf(straight).auditCounts(once.runId!));
    expect(applyRunsOf(store).changeCounts(runId)).toEqual(applyRunsOf(straight).changeCounts(once.runId!));
    store.close();
    straight.close();
  });
});

describe('reconcile.maxLockMs: a pending sweep shared by the two flows of one process', () => {
  it("the tweets and users applies interleaved on one connection finish each other's sweeps: the store and the total counts of one transaction each", async () => {
    const dir = tempDir();
    const { config, file, store, straight } = viralStore(dir);
    // User 7's 30 tweets (600…629), each retweeted three times in raw JSON (40000…40089).
    for (const db of [store, straight]) {
      insertUsers(db, ['7']);
      insertTweets(db, [
        ...Array.from({ length: 30 }, (_, i) => ({ id: String(600 + i), author_id: '7', raw_json: JSON.stringify({ id_str: String(600 + i) }) })),
        ...Array.from({ length: 90 }, (_, i) => ({ id: String(40_000 + i), raw_json: JSON.stringify({ id_str: String(40_000 + i), retweeted_status: { id_str: String(600 + (i % 30)) } }) })),
      ]);
      await ensureEmbedIndex(db, resolveTarget(db, config));
    }
    const users = writeResults(dir, 'users.ndjson', [result('7', 'deactivated')]);
    const commits: Record<string, Commit[]> = { tweets: [], users: [] };
    const runs = await Promise.all([
      apply(store, config, 'tweets', file, { clock: ticking(), onCommit: (c) => commits.tweets!.push(c) }),
      apply(store, config, 'users', users, { clock: ticking(), onCommit: (c) => commits.users!.push(c) }),
    ]);
    expect(runs.map((r) => r.state)).toEqual(['done', 'done']);
    expect(commits.tweets!.filter((c) => c.sweepPending).length).toBeGreaterThan(10);
    expect(pendingSweep(store)).toEqual({ ids: [], state: 0n });

    const unbounded = { ...config, reconcile: { ...config.reconcile, maxLockMs: 1e9 } };
    const once = [await apply(straight, unbounded, 'tweets', file), await apply(straight, unbounded, 'users', users)];
    expect(rowsOf(store, 'tweets')).toEqual(rowsOf(straight, 'tweets'));
    expect(rowsOf(store, 'users')).toEqual(rowsOf(straight, 'users'));
    expect(copyTombstones(store)).toEqual(copyTombstones(straight));
    expect(copyTombstones(store)).toMatchObject({ copy_deleted: 2000, copy_deactivated: 40, copy_author_deactivated: 90 });
    // Each copy counted once, in whichever run's transaction deleted it: the two runs together count what one did.
    const total = (db: Db, ids: number[]) =>
      db
        .prepare(`SELECT table_name, cause, kind, sum(count) AS n FROM cs_change_counts WHERE run_id IN (${ids.join(', ')}) GROUP BY table_name, cause, kind ORDER BY table_name, cause, kind`)
        .all();
    expect(total(store, runs.map((r) => r.runId!))).toEqual(total(straight, once.map((r) => r.runId!)));
    store.close();
    straight.close();
  });
});

describe('the WAL of a large apply', () => {
  it('is checkpointed by a worker while the batches commit, and the connection checkpoints itself again after', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir, { reconcile: { batchSize: 2000 } });
    const ids = Array.from({ length: 16_000 }, (_, i) => String(10_000_000_000n + BigInt(i) * 7n));
    insertTweets(db, ids.filter((_, i) => i % 2 === 0).map((id) => ({ id })));
    // Over 1 MiB of results: the size from which the apply checkpoints in a worker.
    const file = writeResults(dir, 'tweets.ndjson', ids.map((id, i) => result(id, i % 3 === 0 ? 'deleted' : 'protected', i % 3 === 0 ? 'delete' : 'mark')));
    const during: number[] = [];
    const { logger, lines } = capturedLogger();
    const onCommit = () => during.push(Number(db.pragma('wal_autocheckpoint', { simple: true })));
    const summary = await apply(db, config, 'tweets', file, { confirmDeletions: true, onCommit, logger });
    expect(summary.state).toBe('done');
    expect(lines.filter((line) => line.level === 'warn' && /checkpoint/.test(line.msg))).toEqual([]);
    expect(during.length).toBeGreaterThan(1);
    expect(new Set(during)).toEqual(new Set([0]));
    expect(Number(db.pragma('wal_autocheckpoint', { simple: true }))).toBe(1000);
    expect(Number(db.prepare('SELECT count(*) FROM tweets').pluck().get())).toBe(8000 - ids.filter((_, i) => i % 2 === 0 && i % 3 === 0).length);
    db.close();
  });
});
