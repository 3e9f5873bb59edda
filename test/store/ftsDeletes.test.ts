import { describe, expect, it } from 'vitest';
import { purgeStore } from '../../src/store/purge.js';
import { openStore, type Db } from '../../src/store/open.js';
import { preflight } from '../../src/store/preflight.js';
import { useTempDir } from '../helpers/tmp.js';
import { apply, insertTweets, insertUsers, makeStore, result, writeResults } from '../pipeline/helpers.js';

/**
 * Issue 12, search indexes: an external-content FTS index that no trigger keeps in step loses the entries of the rows
 * compliance-sync deletes (the row's own deletion and a user's cascaded tweets), and the purge merges it.
 */

const tempDir = useTempDir();

const matches = (db: Db, fts: string, word: string) =>
  (db.prepare(`SELECT ${fts.endsWith('4') ? 'docid' : 'rowid'} FROM ${fts} WHERE ${fts} MATCH ?`).safeIntegers(true).pluck().all(word) as bigint[]).map(String);

describe('external-content FTS indexes without triggers', () => {
  it('FTS5 and FTS4: deleted rows leave the index, kept rows stay findable, the index stays consistent', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    insertUsers(db, ['7']);
    insertTweets(db, [
      { id: '10', text: 'alpha wordten' },
      { id: '11', text: 'alpha wordeleven' },
      { id: '12', author_id: '7', text: 'alpha wordtwelve' },
    ]);
    db.exec(`CREATE VIRTUAL TABLE tweets_search USING fts5(text, content=tweets, content_rowid=id);
             INSERT INTO tweets_search (tweets_search) VALUES ('rebuild');
             CREATE VIRTUAL TABLE tweets_search4 USING fts4(text, content=tweets);
             INSERT INTO tweets_search4 (tweets_search4) VALUES ('rebuild');`);
    await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('10', 'deleted')]));
    await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result('7', 'deactivated')]));
    for (const fts of ['tweets_search', 'tweets_search4']) {
      expect(matches(db, fts, 'wordten')).toEqual([]);
      expect(matches(db, fts, 'wordtwelve')).toEqual([]);
      expect(matches(db, fts, 'wordeleven')).toEqual(['11']);
      expect(matches(db, fts, 'alpha')).toEqual(['11']);
    }
    // FTS5 checks its index against the content table: a stale entry would fail here.
    db.prepare("INSERT INTO tweets_search (tweets_search, rank) VALUES ('integrity-check', 1)").run();
    expect((await purgeStore(db)).ftsOptimized).toEqual(['tweets_search', 'tweets_search4']);
    db.exec("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, 'tweets_search', 'row')");
    expect(db.prepare('SELECT term FROM temp.v ORDER BY term').pluck().all()).toEqual(['alpha', 'wordeleven']);
    db.close();
  });
});

describe('contentless FTS indexes fed by a trigger (content=\'\')', () => {
  it('FTS5: entries go by the \'delete\' command with the row\'s values, or by rowid with contentless_delete=1', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    // Fed on insert only: nothing else removes a deleted row's entry.
    db.exec(`CREATE VIRTUAL TABLE tweets_cl USING fts5(body, content='');
             CREATE VIRTUAL TABLE tweets_cld USING fts5(body, content='', contentless_delete=1);
             CREATE TRIGGER tweets_cl_ai AFTER INSERT ON tweets BEGIN
               INSERT INTO tweets_cl (rowid, body) VALUES (new.id, new.text);
               INSERT INTO [tweets_cld] ([rowid], [body]) VALUES (NEW.[id], NEW.[text]);
             END;`);
    insertUsers(db, ['7']);
    insertTweets(db, [
      { id: '10', text: 'alpha wordten' },
      { id: '11', text: 'alpha wordeleven' },
      { id: '12', author_id: '7', text: 'alpha wordtwelve' },
    ]);
    await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('10', 'deleted')]));
    await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result('7', 'deactivated')]));
    for (const fts of ['tweets_cl', 'tweets_cld']) {
      expect(matches(db, fts, 'wordten')).toEqual([]);
      expect(matches(db, fts, 'wordtwelve')).toEqual([]);
      expect(matches(db, fts, 'alpha')).toEqual(['11']);
      db.prepare(`INSERT INTO ${fts} (${fts}) VALUES ('integrity-check')`).run();
    }
    db.close();
  });

  it('FTS4 without content cannot delete entries: check-config --store says so, and what to do', () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    db.exec(`CREATE VIRTUAL TABLE tweets_c4 USING fts4(body, content='');
             CREATE TRIGGER tweets_c4_ai AFTER INSERT ON tweets BEGIN INSERT INTO tweets_c4 (docid, body) VALUES (new.id, new.text); END;`);
    db.close();
    const ro = openStore(config.store.path, { readonly: true });
    const { warnings, problems } = preflight(ro, config, ['tweets', 'users']);
    ro.close();
    expect(problems).toEqual([]);
    const warning = warnings.find((w) => w.includes('"tweets_c4"'));
    expect(warning).toContain('the entries of deleted rows stay searchable');
    expect(warning).toContain("FTS4 table without content (content=''), from which SQLite cannot delete entries");
    expect(warning).toContain('To fix: recreate it as an external-content table');
  });
});

/** External FTS5 and FTS4 over the raw JSON without triggers, and a contentless FTS5 a trigger feeds on insert. */
function createRawIndexes(db: Db): void {
  db.exec(`CREATE VIRTUAL TABLE raw_search USING fts5(raw_json, content=tweets, content_rowid=id);
           CREATE VIRTUAL TABLE raw_search4 USING fts4(raw_json, content=tweets);
           CREATE VIRTUAL TABLE raw_cl USING fts5(raw_json, content='');
           CREATE TRIGGER raw_cl_ai AFTER INSERT ON tweets BEGIN INSERT INTO raw_cl (rowid, raw_json) VALUES (new.id, new.raw_json); END;`);
}

describe('a geo scrub reaches full-text indexes no UPDATE trigger renews', () => {
  const geoJson = (place: string) => JSON.stringify({ text: 't', geo: { place_id: 'p1', full_name: place } });
  it('external FTS5 and FTS4 and a contentless FTS5 over the raw JSON lose the geo words of a scrubbed row, the rest stays findable', async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    createRawIndexes(db);
    insertUsers(db, ['7']);
    insertTweets(db, [
      { id: '10', raw_json: geoJson('zanzibar') },
      { id: '11', raw_json: geoJson('timbuktu') },
      { id: '12', author_id: '7', raw_json: geoJson('kathmandu') },
      { id: '13', author_id: '7', raw_json: JSON.stringify({ text: 'nogeo' }) },
    ]);
    db.exec(`INSERT INTO raw_search (raw_search) VALUES ('rebuild'); INSERT INTO raw_search4 (raw_search4) VALUES ('rebuild');`);
    await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('10', 'scrub_geo'), result('13', 'scrub_geo')]));
    for (const fts of ['raw_search', 'raw_search4', 'raw_cl']) {
      expect(matches(db, fts, 'zanzibar')).toEqual([]);
      expect(matches(db, fts, 'kathmandu')).toEqual(['12']);
      expect(matches(db, fts, 'timbuktu')).toEqual(['11']);
      expect(matches(db, fts, 'nogeo')).toEqual(['13']);
      expect(matches(db, fts, 'text')).toEqual(['10', '11', '12', '13']);
    }
    // Both check their entries against what they were given: an entry left with the old words fails here.
    db.prepare("INSERT INTO raw_search (raw_search, rank) VALUES ('integrity-check', 1)").run();
    db.prepare("INSERT INTO raw_cl (raw_cl) VALUES ('integrity-check')").run();
    db.close();
  });

  it("a user's geo scrub over their tweets (in pieces) renews the same indexes", async () => {
    const dir = tempDir();
    const { db, config } = makeStore(dir);
    createRawIndexes(db);
    insertUsers(db, ['7', '8']);
    // More tweets than a first piece (64), with and without geo, and another author's tweet that must stay as it is.
    const authored = Array.from({ length: 150 }, (_, i) => ({ id: String(100 + i), author_id: '7', raw_json: i % 3 ? geoJson(`kathmandu${i}`) : JSON.stringify({ text: `nogeo${i}` }) }));
    insertTweets(db, [...authored, { id: '50', author_id: '8', raw_json: geoJson('timbuktu') }]);
    db.exec(`INSERT INTO raw_search (raw_search) VALUES ('rebuild'); INSERT INTO raw_search4 (raw_search4) VALUES ('rebuild');`);
    await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result('7', 'scrub_geo', 'scrub_geo')]));
    for (const fts of ['raw_search', 'raw_search4', 'raw_cl']) {
      expect(matches(db, fts, 'kathmandu1')).toEqual([]);
      expect(matches(db, fts, 'kathmandu149')).toEqual([]);
      expect(matches(db, fts, 'nogeo0')).toEqual(['100']);
      expect(matches(db, fts, 'timbuktu')).toEqual(['50']);
      expect(matches(db, fts, 'text')).toHaveLength(151);
    }
    db.prepare("INSERT INTO raw_search (raw_search, rank) VALUES ('integrity-check', 1)").run();
    db.prepare("INSERT INTO raw_cl (raw_cl) VALUES ('integrity-check')").run();
    db.close();
  });
});
