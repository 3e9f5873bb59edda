import { describe, expect, it } from 'vitest';
import { AUDIT_CHECKS, lastAudit, recordAudit, runAudit, type AuditCheck, type AuditReport } from '../../src/store/audit.js';
import type { Db } from '../../src/store/open.js';
import { purgeStore } from '../../src/store/purge.js';
import type { Config } from '../../src/config/load.js';
import { runCli } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';
import { apply, insertTweets, insertUsers, makeStore, result, writeResults } from '../pipeline/helpers.js';

/**
 * Issue 12, `audit` finds each class of residue planted by hand: a tombstoned row written back, a dependent row of a
 * deleted tweet, geo back in a scrubbed tweet (a column and a JSON path), FTS entries of deleted rows (an
 * external-content index and one with its own content kept by triggers), a deleted row's ID in the file's free space,
 * and rows no cycle checked. Each is reported by its check with a count and examples; the CLI exits 1 and names them.
 */

const tempDir = useTempDir();

// 19-digit snowflake-like IDs: the byte scan looks for IDs of 15 digits or more.
const T = (n: number) => String(1_460_323_737_035_677_000n + BigInt(n));
const USER = '1300000000000000007';
const OTHER_USER = '1300000000000000008';
const SCRUBBED_USER = '1300000000000000009';

const rawOf = (id: string, geo: boolean) =>
  JSON.stringify({ id, text: `tweet ${id}`, ...(geo ? { geo: { place_id: 'p1' }, coordinates: { type: 'Point', coordinates: [2.35, 48.85] }, place: { id: 'p1' } } : {}) });

function auditOf(db: Db, config: Config, checks?: readonly AuditCheck[]): AuditReport {
  return runAudit(db, config, { scanBytes: true, examples: 5, now: () => new Date('2026-01-02T03:04:05Z'), checks });
}

const check = (report: AuditReport, name: string) => report.checks.find((c) => c.name === name)!;

async function auditedStore() {
  const dir = tempDir();
  // guard off: the test writes deleted IDs back by hand, as a restored backup or a guard-less ingester would.
  const { db, config } = makeStore(dir, {
    reconcile: { guard: 'off' },
    store: {
      path: 'store.db',
      dependents: [{ table: 'hashtags', column: 'tweet_id', references: 'tweets', action: 'delete' }],
      orphans: [{ table: 'places', referencedBy: [{ table: 'tweets', column: 'place_id' }] }],
    },
  });
  db.exec(`CREATE TABLE hashtags (tweet_id INTEGER, tag TEXT); CREATE INDEX hashtags_tweet ON hashtags(tweet_id);
           CREATE TABLE places (id TEXT PRIMARY KEY); INSERT INTO places VALUES ('p1'); CREATE INDEX tweets_place ON tweets(place_id);
           CREATE VIRTUAL TABLE tweets_own USING fts5(text);
           CREATE TRIGGER tweets_own_ai AFTER INSERT ON tweets BEGIN INSERT INTO tweets_own (rowid, text) VALUES (new.id, new.text); END;
           CREATE TRIGGER tweets_own_ad AFTER DELETE ON tweets BEGIN DELETE FROM tweets_own WHERE rowid = old.id; END;`);
  insertUsers(db, [USER, OTHER_USER, SCRUBBED_USER]);
  insertTweets(db, Array.from({ length: 40 }, (_, i) => ({ id: T(i), author_id: i < 30 ? OTHER_USER : i < 36 ? USER : SCRUBBED_USER, text: `word${i}`, geo_lat: 48.85, geo_lon: 2.35, place_id: 'p1', raw_json: rawOf(T(i), true) })));
  db.exec(`INSERT INTO hashtags SELECT id, 'tag' FROM tweets;
           CREATE VIRTUAL TABLE tweets_search USING fts5(text, content=tweets, content_rowid=id);
           INSERT INTO tweets_search (tweets_search) VALUES ('rebuild');`);
  await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [
    ...[0, 1, 2, 3, 4, 5].map((i) => result(T(i), 'deleted')),
    ...[10, 11, 12].map((i) => result(T(i), 'scrub_geo', 'scrub_geo')),
  ]));
  await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result(USER, 'deactivated'), result(SCRUBBED_USER, 'scrub_geo', 'scrub_geo')]));
  return { dir, db, config };
}

describe('audit', () => {
  it('after the deletions, scrubs and the purge, every check but coverage is clean (no cycle has checked the rows)', async () => {
    const { db, config } = await auditedStore();
    // The purge a cycle ends with, and its vacuum: the rows were written before secure_delete was on, so copies of
    // their cells stay in the free space of pages SQLite rebalanced while they were written, until the file is rebuilt.
    expect(check(auditOf(db, config), 'deleted_bytes').count).toBeGreaterThan(0);
    await purgeStore(db, { vacuum: true });
    const report = auditOf(db, config);
    expect(report.checks.map((c) => [c.name, c.ran, c.count])).toEqual([
      ['tombstoned_rows', true, 0],
      ['dependents', true, 0],
      ['scrubbed_geo', true, 0],
      ['fts_entries', true, 0],
      ['embedded_copies', true, 0],
      ['orphans', true, 0],
      ['deleted_bytes', true, 0],
      // 40 tweets - 6 deleted - 6 of the deactivated user; 3 users - 1.
      ['coverage', true, 30],
    ]);
    expect(check(report, 'coverage').locations).toEqual({ tweets: 28, users: 2 });
    expect(report.outcome).toBe('findings');
    // What was recorded: 6 + 6 tweets and a user tombstoned; 3 tweets scrubbed, and the 4 of the scrubbed user.
    expect(Number(db.prepare('SELECT count(*) FROM cs_tombstones').pluck().get())).toBe(13);
    expect((db.prepare("SELECT id FROM cs_scrubs WHERE type = 'tweets' ORDER BY id").pluck().all() as bigint[]).map(String)).toEqual([10, 11, 12, 36, 37, 38, 39].map(T));
    db.close();
  });

  it('reports each class of residue planted by hand, with counts and examples; the CLI exits 1 and names each', { timeout: 60_000 }, async () => {
    const { db, config } = await auditedStore();
    await purgeStore(db, { vacuum: true });
    // (1) A deleted tweet written back (a restored backup): the trigger indexes it in tweets_own again.
    insertTweets(db, [{ id: T(0), author_id: OTHER_USER, text: 'back again', raw_json: rawOf(T(0), false) }]);
    // (2) A dependent of another deleted tweet.
    db.prepare('INSERT INTO hashtags VALUES (?, ?)').run(BigInt(T(1)), 'ghost');
    // (3) Geo back in scrubbed tweets: a column in two (one scrubbed with its author), a raw JSON path in another.
    db.prepare('UPDATE tweets SET geo_lat = 1.5 WHERE id = ?').run(BigInt(T(10)));
    db.prepare(`UPDATE tweets SET raw_json = json_set(raw_json, '$.place', json('{"id":"p1"}')) WHERE id = ?`).run(BigInt(T(11)));
    db.prepare("UPDATE tweets SET place_id = 'p2' WHERE id = ?").run(BigInt(T(37)));
    // (4) FTS entries of deleted rows: in the external-content index, and in the one holding its own text.
    db.prepare("INSERT INTO tweets_search (rowid, text) VALUES (?, 'ghost text')").run(BigInt(T(2)));
    db.prepare("INSERT INTO tweets_own (rowid, text) VALUES (?, 'ghost text')").run(BigInt(T(3)));
    // (5) A deleted tweet's raw JSON left in the file: written and deleted again without secure_delete.
    db.pragma('secure_delete = OFF');
    db.exec('DROP TRIGGER tweets_own_ad');
    insertTweets(db, [{ id: T(4), author_id: OTHER_USER, text: 'written again', raw_json: rawOf(T(4), false) }]);
    db.prepare('DELETE FROM tweets WHERE id = ?').run(BigInt(T(4)));
    db.prepare('DELETE FROM tweets_own WHERE rowid = ?').run(BigInt(T(4)));
    // (6) Rows no cycle checked: all of them (no cycle ran).
    // (7) Embedded copies: a deleted tweet in another's expansions; a scrubbed tweet quoted with its geo.
    db.prepare(`UPDATE tweets SET raw_json = json_set(raw_json, '$.includes', json(?)) WHERE id = ?`).run(JSON.stringify({ tweets: [{ id: T(5), text: 'gone' }] }), BigInt(T(20)));
    db.prepare(`UPDATE tweets SET raw_json = json_set(raw_json, '$.quoted_status', json(?)) WHERE id = ?`).run(JSON.stringify({ id_str: T(12), geo: { place_id: 'p1' } }), BigInt(T(21)));
    // (8) An orphan: a place no tweet references.
    db.exec("INSERT INTO places VALUES ('p9')");

    const report = auditOf(db, config);
    expect(report.outcome).toBe('findings');
    expect(check(report, 'tombstoned_rows')).toMatchObject({ count: 1, locations: { tweets: 1 }, examples: [{ where: 'tweets', id: T(0) }] });
    expect(check(report, 'dependents')).toMatchObject({ count: 1, locations: { 'hashtags.tweet_id': 1 }, examples: [{ where: 'hashtags.tweet_id', id: T(1) }] });
    expect(check(report, 'scrubbed_geo')).toMatchObject({ count: 3, locations: { 'tweets.geo_lat': 1, 'tweets.place_id': 1, 'tweets.raw_json $.place': 1 } });
    expect(check(report, 'fts_entries').locations).toEqual({ tweets_search: 1, tweets_own: 2 });
    expect(check(report, 'fts_entries').examples.map((e) => e.id).sort()).toEqual([T(0), T(2), T(3)]);
    const bytes = check(report, 'deleted_bytes');
    expect(bytes.examples.map((e) => e.id)).toContain(T(4));
    // Besides it, at most the tweet written back (a copy of its live cell left by a page split) and the deleted tweet
    // planted in another's JSON (7), whose rewrites leave copies of that cell too.
    expect(bytes.examples.map((e) => e.id).filter((id) => ![T(4), T(0), T(5)].includes(id))).toEqual([]);
    expect(Object.keys(bytes.locations).join()).toMatch(/free space in pages of tweets|WAL/);
    expect(check(report, 'coverage').count).toBe(31);
    expect(check(report, 'embedded_copies')).toMatchObject({ count: 2, locations: { 'tweets.raw_json': 1, 'tweets.raw_json (geo)': 1 } });
    expect(check(report, 'embedded_copies').examples.map((e) => e.id).sort()).toEqual([T(20), T(21)]);
    expect(check(report, 'orphans')).toMatchObject({ count: 1, locations: { places: 1 }, examples: [{ where: 'places', id: 'p9' }] });
    db.close();

    const json = runCli(['audit', '--scan-bytes', '--json', '--config', config.configPath]);
    expect(json.code, json.stderr).toBe(1);
    const cli = JSON.parse(json.stdout) as { outcome: string; checks: { name: string; count: number }[] };
    expect(cli.outcome).toBe('findings');
    expect(cli.checks.filter((c) => c.count > 0).map((c) => c.name)).toEqual(AUDIT_CHECKS.map((c) => c.name));
    const text = runCli(['audit', '--config', config.configPath]);
    expect(text.code).toBe(1);
    const lines = text.stdout.trim().split('\n');
    // A heading, then one line per check (no notes: nothing went unchecked without the byte scan).
    expect(lines).toHaveLength(1 + AUDIT_CHECKS.length);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual([
      'FAIL tombstoned_rows',
      'FAIL dependents',
      'FAIL scrubbed_geo',
      'FAIL fts_entries',
      'FAIL embedded_copies',
      'FAIL orphans',
      'skip deleted_bytes',
      'FAIL coverage',
    ]);
    // Both runs are recorded, the last one without the byte scan; the report names it.
    const report2 = runCli(['report', '--config', config.configPath]);
    expect(report2.stdout).toMatch(/## Last audit\s+Audit #2 at \S+: \*\*findings\*\*, \d+ findings\./);
    expect(report2.stdout).toMatch(/\| tombstoned_rows \| 1 tombstoned IDs still stored \|/);
    const html = runCli(['report', '--format', 'html', '--config', config.configPath]);
    expect(html.stdout).not.toContain('No audit recorded.');
    expect(html.stdout).toMatch(new RegExp(`<td>dependents</td><td>1 rows still referencing a deleted row</td><td>hashtags.tweet_id: 1</td><td><code>${T(1)}</code>`));
  });

  it('a check that cannot run makes the audit incomplete, and the others still run; the audit is recorded', async () => {
    const { db, config } = await auditedStore();
    const broken: AuditCheck = { name: 'broken', unit: 'things', run: () => { throw new Error('no such table: nowhere'); } };
    const report = auditOf(db, config, [AUDIT_CHECKS[0]!, broken, AUDIT_CHECKS[1]!]);
    expect(report.outcome).toBe('incomplete');
    expect(report.checks.map((c) => [c.name, c.ran, c.error ?? null])).toEqual([
      ['tombstoned_rows', true, null],
      ['broken', false, 'no such table: nowhere'],
      ['dependents', true, null],
    ]);
    const id = recordAudit(db, report);
    expect(lastAudit(db)).toMatchObject({ id, outcome: 'incomplete', findings: 0, scanBytes: true });
    db.close();
  });
});
