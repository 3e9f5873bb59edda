import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { GUARD_ABORT_MESSAGE } from '../../src/store/guard.js';
import { migrate } from '../../src/store/migrate.js';
import { openStore, type Db } from '../../src/store/open.js';
import { cleanEnv } from '../helpers/cli.js';
import { LAYOUT_SPECS, storeIntegrity } from '../helpers/layouts-check.js';
import { buildLayoutStore, ingestDefault, LAYOUT_NAMES, layoutStoreConfig, makeArchive, reingest, type LayoutName } from '../helpers/layouts.js';
import { useTempDir } from '../helpers/tmp.js';
import { apply, insertTweets, insertUsers, makeStore, result, writeResults } from '../pipeline/helpers.js';

/**
 * Issue 12: every ID deleted for compliance is tombstoned in the deleting transaction, and the ingest guard keeps an
 * ingester (plain INSERT, INSERT OR REPLACE, UPSERT; each layout's own) from writing one back.
 */

const tempDir = useTempDir();
const BIG = '1234567890123456789'; // above 2^53: a JS number would round it

const tombstones = (db: Db) =>
  (db.prepare('SELECT type, id, reason, deleted_at, run_id FROM cs_tombstones ORDER BY type, id').safeIntegers(true).all() as Record<string, unknown>[]).map(
    (r) => ({ type: r.type, id: String(r.id), reason: r.reason, at: r.deleted_at, run: r.run_id === null ? null : Number(r.run_id) }),
  );
const tweetIds = (db: Db) => (db.prepare('SELECT id FROM tweets ORDER BY id').safeIntegers(true).pluck().all() as bigint[]).map(String);

describe('tombstones', () => {
  it('records each deleted ID with its reason and time in the deleting run, cascaded tweets and absent IDs too, exactly', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    insertUsers(db, ['1', '2']);
    insertTweets(db, [{ id: '10', author_id: '2' }, { id: BIG, author_id: '2' }, { id: '20', author_id: '1' }, { id: '21', author_id: '1' }, { id: '30', author_id: '2' }]);
    const tweetsRun = await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('10', 'deleted'), result(BIG, 'deleted'), result('99', 'deleted'), result('30', 'protected')]));
    const usersRun = await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result('1', 'deactivated')]));
    expect(tweetIds(db)).toEqual(['30']);
    const at = '2026-01-02T03:04:05.000Z';
    expect(tombstones(db)).toEqual([
      { type: 'tweets', id: '10', reason: 'deleted', at, run: tweetsRun.runId },
      { type: 'tweets', id: '20', reason: 'author_deactivated', at, run: usersRun.runId },
      { type: 'tweets', id: '21', reason: 'author_deactivated', at, run: usersRun.runId },
      { type: 'tweets', id: '99', reason: 'deleted', at, run: tweetsRun.runId },
      { type: 'tweets', id: BIG, reason: 'deleted', at, run: tweetsRun.runId },
      { type: 'users', id: '1', reason: 'deactivated', at, run: usersRun.runId },
    ]);
    db.close();
  });

  it('a dry run tombstones nothing', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    insertTweets(db, [{ id: '10' }]);
    await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('10', 'deleted')]), { dryRun: true });
    expect(tombstones(db)).toEqual([]);
    expect(tweetIds(db)).toEqual(['10']);
    db.close();
  });
});

describe('the ingest guard on the default store', () => {
  async function deletedAndMarked(guard?: 'off' | 'ignore' | 'abort') {
    const dir = tempDir();
    const { db, config } = makeStore(dir, guard ? { reconcile: { guard } } : {});
    const archive = makeArchive({ tweets: 40, users: 6, seed: 3 });
    ingestDefault(db, archive);
    const [gone, marked] = [archive.tweets[3]!, archive.tweets[5]!];
    await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result(gone.id, 'deleted'), result(marked.id, 'protected')]));
    return { db, archive, gone, marked };
  }
  const markOf = (db: Db, id: string) => db.prepare('SELECT compliance_state AS state, compliance_reason AS reason FROM tweets WHERE id = ?').get(BigInt(id));

  it.each(['insert', 'replace', 'upsert'] as const)('ignore (the default): a %s of a deleted tweet leaves it gone, and keeps the marks of the others', async (mode) => {
    const { db, archive, gone, marked } = await deletedAndMarked();
    const { refused } = ingestDefault(db, archive, archive.tweets, mode);
    expect(tweetIds(db)).not.toContain(gone.id);
    expect(tweetIds(db)).toContain(marked.id);
    // Plain INSERT fails on every stored row (the ingester counts them); the deleted one was skipped, not refused.
    expect(refused).toBe(mode === 'insert' ? archive.tweets.length - 1 + archive.users.length : 0);
    expect(markOf(db, marked.id)).toEqual({ state: 'protected', reason: 'protected' });
    expect(db.prepare('SELECT count(*) FROM cs_guard_marks').pluck().get()).toBe(mode === 'upsert' ? 1n : 0n);
    db.close();
  });

  it('abort: the write of a deleted tweet fails naming compliance-sync; others go through', async () => {
    const { db, archive, gone } = await deletedAndMarked('abort');
    const { refused } = ingestDefault(db, archive, [gone, archive.tweets[7]!], 'replace');
    expect(refused).toBe(1);
    expect(() => db.prepare('INSERT INTO tweets (id, text) VALUES (?, ?)').run(BigInt(gone.id), 'back')).toThrow(GUARD_ABORT_MESSAGE);
    expect(() => db.prepare('UPDATE tweets SET id = ? WHERE id = ?').run(BigInt(gone.id), BigInt(archive.tweets[7]!.id))).toThrow(/compliance-sync/);
    expect(tweetIds(db)).not.toContain(gone.id);
    db.close();
  });

  it('off: no guard triggers; the row comes back', async () => {
    const { db, archive, gone } = await deletedAndMarked('off');
    expect(db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'cs_guard_%'").pluck().get()).toBe(0n);
    ingestDefault(db, archive, [gone], 'insert');
    expect(tweetIds(db)).toContain(gone.id);
    db.close();
  });

  it('switching the mode replaces the triggers at the next apply', async () => {
    const dir = tempDir();
    const first = makeStore(dir, { reconcile: { guard: 'abort' } });
    insertTweets(first.db, [{ id: '10' }, { id: '11' }]);
    await apply(first.db, first.config, 'tweets', writeResults(dir, 'a.jsonl', [result('10', 'deleted')]));
    const config = parseConfig({ store: { path: 'store.db' }, reconcile: { guard: 'ignore' } }, path.join(dir, 'config.json'), {});
    await apply(first.db, config, 'tweets', writeResults(dir, 'b.jsonl', [result('11', 'deleted')]));
    expect(first.db.prepare('INSERT INTO tweets (id) VALUES (10), (11), (12)').run().changes).toBe(1);
    expect(tweetIds(first.db)).toEqual(['12']);
    first.db.close();
  });
});

describe.each(LAYOUT_NAMES.filter((n): n is Exclude<LayoutName, 'default'> => n !== 'default'))('the ingest guard on a %s store', (name) => {
  it("the collector's own ingester, run again on every tweet, writes no deleted tweet or user back", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const storePath = path.join(dir, 'store.db');
    const archive = makeArchive({ tweets: 300, users: 30, seed: 11 });
    buildLayoutStore(name, storePath, archive, cleanEnv());
    const config = parseConfig({ store: { path: 'store.db', ...layoutStoreConfig(name) } }, path.join(dir, 'config.json'), {});
    const db = openStore(storePath);
    migrate(db);
    const storedTweets = new Set(tweetIds(db));
    const deleted = archive.tweets.filter((t) => storedTweets.has(t.id)).filter((_, i) => i % 7 === 0);
    const author = archive.users.find((u) => u.id !== archive.owner && archive.tweets.some((t) => t.author === u.id && storedTweets.has(t.id)))!;
    await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', deleted.map((t) => result(t.id, 'deleted'))));
    await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result(author.id, 'deactivated')]));
    const gone = new Set([...deleted.map((t) => t.id), ...[...storedTweets].filter((id) => archive.tweets.find((t) => t.id === id)?.author === author.id)]);
    // Retweets of those are copies deleted with them (twint stores no retweet of its own: its retweets are link rows).
    if (name !== 'twint') for (const t of archive.tweets) if (t.retweetOf && gone.has(t.retweetOf) && storedTweets.has(t.id)) gone.add(t.id);
    for (const id of gone) expect(tweetIds(db)).not.toContain(id);
    db.close();

    reingest(name, storePath, archive, archive.tweets);
    const after = openStore(storePath);
    const back = tweetIds(after).filter((id) => gone.has(id));
    expect(back).toEqual([]);
    const userBack = after.prepare('SELECT count(*) FROM users WHERE id = ?').pluck().get(BigInt(author.id));
    expect(userBack).toBe(0n);
    // Nothing else was held back: the tweets still stored before are all there.
    expect(tweetIds(after).length).toBe(storedTweets.size - gone.size);
    after.close();
    // Link rows, likes and pointers the ingester wrote for the deleted IDs were dropped or cleared by the guard.
    expect(storeIntegrity(LAYOUT_SPECS[name], storePath)).toEqual([]);
  });
});
