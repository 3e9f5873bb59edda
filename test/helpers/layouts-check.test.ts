import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkStore, expectedStore, ftsResidue, LAYOUT_SPECS, residue, snapshot, withRelation, type Expected, type Results, type Snapshot } from './layouts-check.js';
import { ingestDefault, ingestTwint, ingestTwitterToSqlite, layoutDdl, makeArchive, scriptOutcomes, uniqueWord, type Archive } from './layouts.js';
import { REPO_ROOT, useTempDir } from './tmp.js';

/**
 * The judge of the layout tests must be able to fail: a store brought to the expected state by hand passes it, and
 * each kind of mistake planted into that store is reported. (No compliance-sync code runs here.)
 */

const tempDir = useTempDir();
const spec = LAYOUT_SPECS['twitter-to-sqlite'];

function build(file: string, archive: Archive, layout: 'twitter-to-sqlite' | 'twint' | 'default'): void {
  const db = new Database(file);
  db.defaultSafeIntegers(true);
  db.pragma('foreign_keys = OFF');
  db.pragma('synchronous = OFF');
  // The default layout's content tables as a new store gets them (the ledger is not needed here).
  db.exec(layout === 'default' ? readFileSync(path.join(REPO_ROOT, 'migrations/content/default_tables.sql'), 'utf8') : layoutDdl(layout));
  if (layout === 'twitter-to-sqlite') ingestTwitterToSqlite(db, archive);
  else if (layout === 'twint') ingestTwint(db, archive);
  else ingestDefault(db, archive);
  db.close();
}

/** Brings the store to the expected state with plain SQL, the collector's triggers keeping FTS in step. */
function applyByHand(file: string, before: Snapshot, expected: Expected): void {
  const db = new Database(file);
  db.defaultSafeIntegers(true);
  db.pragma('foreign_keys = OFF');
  db.exec('CREATE TABLE IF NOT EXISTS cs_marks (type TEXT NOT NULL, id INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (type, id))');
  const bind = (value: unknown) => (value !== null && typeof value === 'object' ? JSON.stringify(value) : typeof value === 'string' && /^\d{10,19}$/.test(value) ? BigInt(value) : value);
  db.transaction(() => {
    for (const [table, fates] of expected.tables) {
      const { key } = before.tables.get(table)!;
      const where = key.map((k) => `"${k}" IS ?`).join(' AND ');
      for (const [rowKey, fate] of fates) {
        const keyValues = (JSON.parse(rowKey) as unknown[]).map(bind);
        if (fate.fate === 'deleted') {
          db.prepare(`DELETE FROM "${table}" WHERE ${where}`).run(...keyValues);
          continue;
        }
        const row = before.tables.get(table)!.rows.get(rowKey)!;
        const changed = Object.keys(fate.row).filter((c) => JSON.stringify(fate.row[c]) !== JSON.stringify(row[c]));
        if (changed.length) db.prepare(`UPDATE "${table}" SET ${changed.map((c) => `"${c}" = ?`).join(', ')} WHERE ${where}`).run(...changed.map((c) => bind(fate.row[c])), ...keyValues);
        const kind = table === spec.tweets.table ? 'tweets' : table === spec.users.table ? 'users' : null;
        if (kind && fate.markReason) {
          db.prepare("INSERT OR REPLACE INTO cs_marks VALUES (?, ?, 'protected', ?, '2026-01-01T00:00:00Z')").run(kind, BigInt(String(row.id)), fate.markReason);
        }
      }
    }
  })();
  db.close();
}

function plant(file: string, sql: string): void {
  const db = new Database(file);
  db.pragma('foreign_keys = OFF');
  db.exec(sql);
  db.close();
}

describe('layouts-check judges a twitter-to-sqlite store', () => {
  let dir: string;
  let good: string;
  let before: Snapshot;
  let expected: Expected;
  let archive: Archive;
  let results: Results;

  // One hand-applied store shared by the tests below, each planting its mistake into its own copy.
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'cs-test-'));
    good = path.join(dir, 'good.db');
    archive = makeArchive({ tweets: 400, users: 40, seed: 3 });
    build(good, archive, 'twitter-to-sqlite');
    before = snapshot(good);
    const ids = (table: string) => new Set([...before.tables.get(table)!.rows.values()].map((r) => String(r.id)));
    results = scriptOutcomes(archive, { tweets: ids('tweets'), users: ids('users') });
    expected = expectedStore(spec, before, results);
    applyByHand(good, before, expected);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const copy = (name: string) => {
    const file = path.join(dir, `${name}.db`);
    copyFileSync(good, file);
    return file;
  };
  const deletedTweet = () => [...expected.deletedIds.tweets].find((id) => [...before.tables.get('media_tweets')!.rows.values()].some((r) => r.tweets_id === id))!;

  it('passes the store brought to the expected state by hand, and the untouched store fails', () => {
    expect(expected.diff.get('tweets')!.deleted).toBeGreaterThan(10);
    expect(expected.diff.get('media_tweets')!.deleted).toBeGreaterThan(0);
    expect(checkStore(spec, good, before, expected)).toEqual([]);
    const words = archive.tweets.map((t, i) => ({ kind: 'tweets' as const, id: t.id, word: uniqueWord('tweet', i) }));
    expect(ftsResidue(spec, good, words, expected)).toEqual([]);

    const untouched = path.join(dir, 'untouched.db');
    build(untouched, archive, 'twitter-to-sqlite');
    const problems = checkStore(spec, untouched, before, expected).join('\n');
    expect(problems).toMatch(/tweets not deleted/);
    expect(problems).toMatch(/media_tweets not deleted/);
    expect(problems).toMatch(/tweets mark missing/);
  });

  it('reports a link row left behind, as a row and as an orphan', () => {
    const file = copy('link');
    const tweet = deletedTweet();
    plant(file, `INSERT INTO media_tweets VALUES (1, ${tweet})`);
    const problems = checkStore(spec, file, before, expected).join('\n');
    expect(problems).toMatch(/media_tweets row appeared/);
    expect(problems).toMatch(/foreign_key_check/);
    expect(problems).toMatch(/orphan: media_tweets.tweets_id/);
  });

  it('reports a self-reference not cleared, a geo column left, a kept row deleted', () => {
    const file = copy('content');
    const deleted = [...expected.deletedIds.tweets][0]!;
    const scrubbed = [...expected.tables.get('tweets')!].find(([, f]) => f.fate === 'kept' && f.row.coordinates === null && before.tables.get('tweets')!.rows.get(JSON.stringify([String(f.row.id)]))?.coordinates !== null)!;
    const kept = [...expected.tables.get('tweets')!].find(([, f]) => f.fate === 'kept' && f.row.retweeted_status === null)!;
    plant(
      file,
      `UPDATE tweets SET quoted_status = ${deleted} WHERE id = ${JSON.parse(kept[0])[0]};
       UPDATE tweets SET coordinates = '{"type": "Point", "coordinates": [1, 2]}' WHERE id = ${JSON.parse(scrubbed[0])[0]};
       DELETE FROM users WHERE id = ${String([...before.tables.get('users')!.rows.values()].find((u) => !expected.deletedIds.users.has(String(u.id)))!.id)};`,
    );
    const problems = checkStore(spec, file, before, expected).join('\n');
    expect(problems).toMatch(/tweets wrong content: .*quoted_status=/);
    expect(problems).toMatch(/tweets wrong content: .*coordinates=/);
    expect(problems).toMatch(/users deleted but should stay/);
  });

  it('reports a mark missing, a mark too many, a schema change and an FTS index out of step', () => {
    const file = copy('marks');
    const marked = [...expected.tables.get('tweets')!].find(([, f]) => f.fate === 'kept' && f.markReason)!;
    const unmarked = [...expected.tables.get('tweets')!].find(([, f]) => f.fate === 'kept' && !f.markReason)!;
    plant(
      file,
      `DELETE FROM cs_marks WHERE id = ${JSON.parse(marked[0])[0]};
       INSERT INTO cs_marks VALUES ('tweets', ${JSON.parse(unmarked[0])[0]}, 'suspended', 'suspended', 'x');
       ALTER TABLE tweets ADD COLUMN compliance_state TEXT;
       INSERT INTO tweets_fts (tweets_fts, rowid, full_text) SELECT 'delete', id, full_text FROM tweets WHERE id = ${JSON.parse(unmarked[0])[0]};`,
    );
    const problems = checkStore(spec, file, before, expected).join('\n');
    expect(problems).toMatch(/tweets mark missing or wrong/);
    expect(problems).toMatch(/tweets marked but should not be/);
    expect(problems).toMatch(/schema: table:tweets changed/);
    expect(problems).toMatch(/fts integrity-check: tweets_fts/);
  });

  it('finds a deleted row still in the FTS index', () => {
    const file = copy('fts');
    const tweet = [...expected.deletedIds.tweets][0]!;
    const index = archive.tweets.findIndex((t) => t.id === tweet);
    // A delete that bypasses the trigger: the row is gone, its index entry stays.
    plant(file, `INSERT INTO tweets (id, full_text) VALUES (${tweet}, '${uniqueWord('tweet', index)}'); DROP TRIGGER tweets_ad; DELETE FROM tweets WHERE id = ${tweet};`);
    const problems = ftsResidue(spec, file, [{ kind: 'tweets', id: tweet, word: uniqueWord('tweet', index) }], expected);
    expect(problems.join('\n')).toMatch(/still finds deleted row/);
  });
  it('finds deleted words in the file until it is vacuumed and the FTS index optimized (issue 12)', () => {
    const file = copy('residue');
    const keptText = [...expected.tables.get('tweets')!.values()].flatMap((f) => (f.fate === 'kept' ? [String(f.row.full_text)] : [])).join(' ');
    const words = archive.tweets
      .map((t, i) => ({ id: t.id, word: uniqueWord('tweet', i) }))
      .filter((w) => expected.deletedIds.tweets.has(w.id) && !keptText.includes(w.word))
      .map((w) => w.word);
    expect(words.length).toBeGreaterThan(10);
    expect(residue(file, words, ['tweets_fts']).inFiles.length).toBeGreaterThan(0);
    plant(file, "INSERT INTO tweets_fts(tweets_fts) VALUES ('optimize'); VACUUM;");
    expect(residue(file, words, ['tweets_fts'])).toEqual({ inFiles: [], inFts: [] });
    // A kept row's word is found both ways: the scan is not blind.
    const keptWord = uniqueWord('tweet', archive.tweets.findIndex((t) => !expected.deletedIds.tweets.has(t.id) && !t.retweetOf));
    expect(residue(file, [keptWord], ['tweets_fts'])).toEqual({ inFiles: [keptWord], inFts: [keptWord] });
  });

  it('finds copies, pointers and orphans left in rows (issue 12), each when planted', () => {
    const links = { spec, deleted: expected.deletedIds.tweets, scrubbed: expected.scrubbedIds };
    expect(residue(good, [], [], links).inRows).toEqual([]);
    // The store as the collector left it holds every class: the check is not blind.
    const untouched = path.join(dir, 'untouched-rows.db');
    build(untouched, archive, 'twitter-to-sqlite');
    const before = residue(untouched, [], [], links).inRows.join('\n');
    expect(before).toMatch(/^copy tweets\.retweeted_status/m);
    expect(before).toMatch(/^pointer tweets\.quoted_status/m);
    expect(expected.diff.get('media')!.deleted).toBeGreaterThan(0);

    const file = copy('rows');
    const [first, second] = [...expected.deletedIds.tweets];
    const kept = [...expected.tables.get('tweets')!].filter(([, f]) => f.fate === 'kept').map(([key]) => JSON.parse(key)[0] as string);
    plant(
      file,
      `INSERT INTO tweets (id, user, full_text, retweeted_status) VALUES (4242, NULL, 'RT copy', ${first});
       UPDATE tweets SET quoted_status = ${second} WHERE id = ${kept[0]};
       INSERT INTO media (id, media_url) VALUES (777, 'https://pbs.twimg.com/media/left.jpg');
       INSERT INTO places (id, full_name) VALUES ('left-behind', 'Nowhere');`,
    );
    const found = residue(file, [], [], links).inRows.join('\n');
    expect(found).toContain(`copy tweets.retweeted_status: tweet 4242 → deleted ${first}`);
    expect(found).toContain(`pointer tweets.quoted_status: tweet ${kept[0]} → deleted ${second}`);
    expect(found).toContain('orphan media.id = 777');
    expect(found).toContain('orphan places.id = left-behind');
  });

  it('computes copies: with retweets deleted with their original, every retweet of a deleted tweet goes too', () => {
    const copies = expectedStore(withRelation(spec, 'tweets', 'retweeted_status', 'delete'), before, results);
    const retweetsOfDeleted = archive.tweets.filter((t) => t.retweetOf && expected.deletedIds.tweets.has(t.retweetOf));
    expect(retweetsOfDeleted.length).toBeGreaterThan(0);
    for (const t of retweetsOfDeleted) expect(copies.deletedIds.tweets.has(t.id)).toBe(true);
    expect(copies.diff.get('tweets')!.deleted).toBe(expected.diff.get('tweets')!.deleted + retweetsOfDeleted.filter((t) => !expected.deletedIds.tweets.has(t.id)).length);
  });
});

describe('layouts-check on the default layout: copies and embedded copies in raw JSON (issue 12)', () => {
  it('passes a store brought to the expected state by hand, finds the untouched one and each class planted', () => {
    const dflt = LAYOUT_SPECS.default;
    const dir = tempDir();
    const file = path.join(dir, 'default.db');
    const archive = makeArchive({ tweets: 400, users: 40, seed: 3 });
    build(file, archive, 'default');
    const before = snapshot(file);
    const ids = (table: string) => new Set([...before.tables.get(table)!.rows.values()].map((r) => String(r.id)));
    const results = scriptOutcomes(archive, { tweets: ids('tweets'), users: ids('users') });
    const expected = expectedStore(dflt, before, results);
    const links = { spec: dflt, deleted: expected.deletedIds.tweets, scrubbed: expected.scrubbedIds };
    const untouched = residue(file, [], [], links).inRows.join('\n');
    expect(untouched).toMatch(/^copy in raw_json retweeted_status/m);
    expect(untouched).toMatch(/^copy in raw_json referenced_tweets/m);
    expect(untouched).toMatch(/^embedded copy in raw_json (quoted_status|includes\.tweets)/m);

    applyByHand(file, before, expected);
    expect(residue(file, [], [], links).inRows).toEqual([]);
    // Retweets of deleted tweets are deleted with them, in both shapes.
    const retweets = archive.tweets.filter((t) => t.retweetOf && expected.deletedIds.tweets.has(t.retweetOf));
    expect(retweets.length).toBeGreaterThan(1);
    for (const t of retweets) expect(expected.deletedIds.tweets.has(t.id)).toBe(true);

    const [deleted] = [...expected.deletedIds.tweets];
    const [scrubbed] = [...expected.scrubbedIds];
    const keptIds = [...expected.tables.get('tweets')!].filter(([, f]) => f.fate === 'kept').map(([key]) => JSON.parse(key)[0] as string);
    plant(
      file,
      `INSERT INTO tweets (id, raw_json) VALUES (4242, '{"id_str":"4242","retweeted_status":{"id_str":"${deleted}"}}');
       UPDATE tweets SET raw_json = '{"id":"${keptIds[0]}","includes":{"tweets":[{"id":"${deleted}","text":"copy"}]}}' WHERE id = ${keptIds[0]};
       UPDATE tweets SET raw_json = '{"id_str":"${keptIds[1]}","quoted_status":{"id_str":"${scrubbed}","geo":{"type":"Point"}}}' WHERE id = ${keptIds[1]};`,
    );
    const found = residue(file, [], [], links).inRows.join('\n');
    expect(found).toContain(`copy in raw_json retweeted_status: tweet 4242 embeds deleted ${deleted}`);
    expect(found).toContain(`embedded copy in raw_json includes.tweets: tweet ${keptIds[0]} embeds deleted ${deleted}`);
    expect(found).toContain(`embedded geo in raw_json quoted_status: tweet ${keptIds[1]} embeds scrubbed ${scrubbed} with its geo`);
  });
});

describe('layouts-check on twint', () => {
  it('passes a hand-applied store although SQLite refuses its FOREIGN KEYs, and catches an orphan by its own scan', () => {
    const twint = LAYOUT_SPECS.twint;
    const dir = tempDir();
    const file = path.join(dir, 'twint.db');
    const archive = makeArchive({ tweets: 300, users: 40, seed: 4 });
    build(file, archive, 'twint');
    const before = snapshot(file);
    const ids = (table: string) => new Set([...before.tables.get(table)!.rows.values()].map((r) => String(r.id)));
    const results = scriptOutcomes(archive, { tweets: ids('tweets'), users: ids('users') });
    const expected = expectedStore(twint, before, results);
    expect(expected.diff.get('users')!.deleted).toBeGreaterThan(expected.deletedIds.users.size - 1);
    applyByHand(file, before, expected);
    expect(checkStore(twint, file, before, expected)).toEqual([]);
    const deletedUser = [...expected.deletedIds.users][0]!;
    plant(file, `INSERT INTO followers VALUES (${deletedUser}, 424242)`);
    const problems = checkStore(twint, file, before, expected).join('\n');
    expect(problems).toMatch(/orphan: followers.id → users.id/);
  });
});
