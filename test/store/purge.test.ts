import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { StoreBusyError } from '../../src/errors.js';
import { createStore, migrate } from '../../src/store/migrate.js';
import { openStore, type Db } from '../../src/store/open.js';
import { lockPacing } from '../../src/store/lockPace.js';
import { purgeStore } from '../../src/store/purge.js';
import { cleanEnv } from '../helpers/cli.js';
import { residue } from '../helpers/layouts-check.js';
import { buildLayoutStore, LAYOUT_NAMES, layoutDdl, layoutStoreConfig, makeArchive, uniqueWord, type LayoutName } from '../helpers/layouts.js';
import { useTempDir } from '../helpers/tmp.js';
import { apply, insertTweets, result, writeResults } from '../pipeline/helpers.js';

/**
 * Issue 12, purge: after the deletions and the purge a cycle ends with, no deleted tweet's or user's unique word is
 * readable in the store's files (main, WAL) or among its FTS terms, on every layout. Rows that X keeps a copy of
 * (an original with retweets or quotes) are left out here: their words live on in the copies.
 */

const tempDir = useTempDir();

const ftsNames = (db: Db) => db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%fts5%'").pluck().all() as string[];
const storedTweetIds = (db: Db) => new Set((db.prepare('SELECT id FROM tweets').safeIntegers(true).pluck().all() as bigint[]).map(String));

async function deleteSome(name: LayoutName, purge: boolean) {
  const dir = tempDir();
  const storePath = path.join(dir, 'store.db');
  const archive = makeArchive({ tweets: 400, users: 40, seed: 11 });
  buildLayoutStore(name, storePath, archive, cleanEnv());
  const config = parseConfig({ store: { path: 'store.db', ...layoutStoreConfig(name) }, reconcile: { purge } }, path.join(dir, 'config.json'), {});
  const db = openStore(storePath);
  migrate(db);
  const stored = storedTweetIds(db);
  const copied = new Set(archive.tweets.flatMap((t) => [t.retweetOf, t.quoteOf].filter((id): id is string => id !== null)));
  const plain = archive.tweets.filter((t) => stored.has(t.id) && !copied.has(t.id) && !t.retweetOf);
  const deleted = plain.filter((_, i) => i % 4 === 0);
  // A user whose every tweet is plain: the cascade deletes them all, and no copy keeps their words.
  const author = archive.users.find(
    (u) => u.id !== archive.owner && archive.tweets.some((t) => t.author === u.id && stored.has(t.id)) && archive.tweets.every((t) => t.author !== u.id || !copied.has(t.id)) && !archive.tweets.some((t) => t.author === u.id && t.retweetOf),
  )!;
  expect(author).toBeDefined();
  await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', deleted.map((t) => result(t.id, 'deleted'))));
  await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result(author.id, 'deactivated')]));
  const index = new Map(archive.tweets.map((t, i) => [t.id, i]));
  const words = [
    ...deleted.map((t) => uniqueWord('tweet', index.get(t.id)!)),
    ...archive.tweets.filter((t) => t.author === author.id && stored.has(t.id)).map((t) => uniqueWord('tweet', index.get(t.id)!)),
    uniqueWord('user', archive.users.indexOf(author)),
  ];
  return { db, storePath, words };
}

describe.each(LAYOUT_NAMES)('purge on a %s store', (name) => {
  it('with vacuum: no deleted word in the main file, the WAL or the FTS terms', { timeout: 60_000 }, async () => {
    const { db, storePath, words } = await deleteSome(name, true);
    const purge = await purgeStore(db, { vacuum: true, maxLockMs: 200 });
    expect(purge.vacuumed).toBe(true);
    expect(purge.walBusy).toBe(false);
    expect(purge.ftsOptimized).toEqual(name === 'twitter-to-sqlite' ? ['tweets_fts', 'users_fts'] : []);
    // Read while the store is still open: closing would checkpoint the WAL by itself.
    expect(residue(storePath, words, ftsNames(db))).toEqual({ inFiles: [], inFts: [] });
    db.close();
  });

  it('without vacuum: no deleted word among the FTS terms and an empty WAL (copies in rebalanced pages may stay)', { timeout: 60_000 }, async () => {
    const { db, storePath, words } = await deleteSome(name, true);
    expect((await purgeStore(db)).walBusy).toBe(false);
    expect(residue(storePath, words, ftsNames(db)).inFts).toEqual([]);
    expect(statSync(`${storePath}-wal`).size).toBe(0);
    db.close();
  });

  it('without purge the same deletions leave words readable (the check can see them)', { timeout: 60_000 }, async () => {
    const { db, storePath, words } = await deleteSome(name, false);
    const found = residue(storePath, words, ftsNames(db));
    expect(found.inFiles.length + found.inFts.length).toBeGreaterThan(0);
    db.close();
  });
});

describe('FTS5 merged under reconcile.maxLockMs', () => {
  /** 20,000 tweets written in 50 transactions (a segment each), half of them deleted: a merge of a few hundred pages. */
  function segmentedStore() {
    const storePath = path.join(tempDir(), 'store.db');
    const raw = new Database(storePath);
    raw.exec(layoutDdl('twitter-to-sqlite'));
    const insert = raw.prepare('INSERT INTO tweets (id, full_text) VALUES (?, ?)');
    for (let chunk = 0; chunk < 50; chunk++) {
      raw.transaction(() => {
        for (let i = chunk * 400; i < (chunk + 1) * 400; i++) insert.run(BigInt(1000 + i), `words of tweet ${i} ${uniqueWord('tweet', i)}`);
      })();
    }
    // As the collector's own connection: with enforcement on, each deletion would scan the unindexed child columns.
    raw.pragma('foreign_keys = OFF');
    raw.exec('DELETE FROM tweets WHERE id % 2 = 0');
    raw.close();
    const db = openStore(storePath);
    const deleted = Array.from({ length: 200 }, (_, i) => uniqueWord('tweet', i * 100));
    return { storePath, db, deleted, segments: db.prepare('SELECT count(DISTINCT segid) FROM tweets_fts_idx').pluck() };
  }

  it('merges each index down to one segment a few pages per statement, in paced transactions, as optimize would', async () => {
    // With maxLockMs 1 each transaction stops after its first statement.
    const { storePath, db, deleted, segments } = segmentedStore();
    expect(segments.get()).toBeGreaterThan(1);
    const before = lockPacing().transactions;
    const purge = await purgeStore(db, { maxLockMs: 1 });
    expect(purge.ftsOptimized).toEqual(['tweets_fts', 'users_fts']);
    expect(lockPacing().transactions - before).toBeGreaterThan(2);
    expect(segments.get()).toBe(1n);
    expect(db.prepare("INSERT INTO tweets_fts (tweets_fts) VALUES ('integrity-check')").run().changes).toBeGreaterThanOrEqual(0);
    expect(residue(storePath, deleted, ['tweets_fts']).inFts).toEqual([]);
    db.close();
  });

  it('ends while the ingester writes a segment between its transactions', async () => {
    // A merge restarted by every new segment (a negative count on each statement) never ended beside a writer.
    const { storePath, db, deleted } = segmentedStore();
    const ingester = new Database(storePath);
    ingester.pragma('busy_timeout = 5000');
    const insert = ingester.prepare('INSERT INTO tweets (id, full_text) VALUES (?, ?)');
    let next = 100_000n;
    const writes = setInterval(() => insert.run(next++, 'new words from the ingester'), 1);
    try {
      const purge = purgeStore(db, { maxLockMs: 1 });
      const late = new Promise((_, reject) => setTimeout(() => reject(new Error('the merge did not end in 20 s')), 20_000));
      await Promise.race([purge, late]);
    } finally {
      clearInterval(writes);
    }
    expect(Number(next - 100_000n)).toBeGreaterThan(0);
    expect(residue(storePath, deleted, ['tweets_fts']).inFts).toEqual([]);
    ingester.close();
    db.close();
  });
});

describe('purge beside another connection', () => {
  it('gives up the TRUNCATE checkpoint after reconcile.maxLockMs when a reader holds the WAL, instead of keeping writers out for the busy timeout', async () => {
    const dir = tempDir();
    const storePath = path.join(dir, 'store.db');
    const db = createStore(storePath);
    insertTweets(db, [{ id: '1' }, { id: '2' }]);
    const reader = openStore(storePath);
    // A read transaction that has seen the WAL's frames: TRUNCATE must wait for it to end.
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM tweets').get();
    db.prepare('DELETE FROM tweets WHERE id = 1').run();
    const purge = await purgeStore(db, { maxLockMs: 20 });
    expect(purge.walBusy).toBe(true);
    expect(Number(db.pragma('busy_timeout', { simple: true }))).toBe(10_000);
    reader.exec('COMMIT');
    expect((await purgeStore(db, { maxLockMs: 20 })).walBusy).toBe(false);
    expect(statSync(`${storePath}-wal`).size).toBe(0);
    reader.close();
    db.close();
  });
});

describe('the VACUUM runs off the main thread', () => {
  /** A store with many free pages, as a cycle's deletions leave them: 20,000 rows of 500 bytes, 9 in 10 deleted. */
  function storeWithFreePages() {
    const storePath = path.join(tempDir(), 'store.db');
    const db = createStore(storePath);
    insertTweets(db, Array.from({ length: 20_000 }, (_, i) => ({ id: String(1_000_000 + i), text: `tweet ${i} ${'x'.repeat(500)}` })));
    db.exec('DELETE FROM tweets WHERE id % 10 <> 0');
    db.pragma('wal_checkpoint(TRUNCATE)');
    return { db, storePath };
  }
  const freePages = (db: Db) => Number(db.pragma('freelist_count', { simple: true }));

  it('keeps the event loop turning (timers fire while purge awaits), then the file has no free page and is smaller', { timeout: 60_000 }, async () => {
    const { db, storePath } = storeWithFreePages();
    expect(freePages(db)).toBeGreaterThan(1000);
    const sizeBefore = statSync(storePath).size;
    let ticks = 0;
    // What the daemon's watchdog ping and metrics server need: the main thread's timers keep firing. A VACUUM on this
    // thread would return before any could.
    const ticker = setInterval(() => ticks++, 1);
    let ticksWhileRunning: number;
    try {
      const purge = await purgeStore(db, { vacuum: true });
      ticksWhileRunning = ticks;
      expect(purge.vacuumed).toBe(true);
    } finally {
      clearInterval(ticker);
    }
    expect(ticksWhileRunning).toBeGreaterThan(0);
    expect(freePages(db)).toBe(0);
    expect(statSync(storePath).size).toBeLessThan(sizeBefore);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    // The main connection reads the rebuilt file.
    expect(Number(db.prepare('SELECT count(*) FROM tweets').pluck().get())).toBe(2_000);
    db.close();
  });

  it('a store locked by another writer fails as the same store-busy error as on the main connection, naming the store; nothing changes', { timeout: 60_000 }, async () => {
    const { db, storePath } = storeWithFreePages();
    const before = freePages(db);
    db.pragma('busy_timeout = 50');
    const writer = openStore(storePath);
    writer.exec('BEGIN IMMEDIATE');
    try {
      const err = await purgeStore(db, { vacuum: true }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreBusyError);
      expect((err as Error).message).toContain(storePath);
      expect((err as Error).message).toMatch(/SQLITE_BUSY/);
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
    }
    expect(freePages(db)).toBe(before);
    db.close();
  });

  it('a process killed while its worker vacuums leaves the store whole, as it was (the compiled module, as the CLI runs it)', { timeout: 60_000 }, async () => {
    const { db, storePath } = storeWithFreePages();
    const before = freePages(db);
    db.close();
    // The compiled worker module from dist/: it says when the VACUUM starts, and is killed then.
    const script = `import { vacuumInWorker } from ${JSON.stringify(pathToFileURL(path.resolve('dist/store/vacuumWorker.js')).href)};
      const running = vacuumInWorker(process.argv[1], 10000); process.stdout.write('started\\n'); await running;`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, storePath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [started] = (await once(child.stdout, 'data')) as [Buffer];
    expect(started.toString()).toBe('started\n');
    // The riskiest moment is the copy back: the rebuilt pages going into the WAL. Kill as soon as it has begun (or
    // when the child ended first: then the rebuild is whole).
    let exited = false;
    child.once('exit', () => (exited = true));
    const walSize = () => (existsSync(`${storePath}-wal`) ? statSync(`${storePath}-wal`).size : 0);
    while (!exited && walSize() === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    child.kill('SIGKILL');
    if (!exited) await once(child, 'exit');
    const after = openStore(storePath);
    expect(after.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(Number(after.prepare('SELECT count(*) FROM tweets').pluck().get())).toBe(2_000);
    // Either the rebuild had not committed (the free pages are still there) or it had (none left): never in between.
    expect([before, 0]).toContain(freePages(after));
    after.close();
  });
});
