import { describe, expect, it } from 'vitest';
import { purgeStore } from '../../src/store/purge.js';
import type { Db } from '../../src/store/open.js';
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
    expect(purgeStore(db).ftsOptimized).toEqual(['tweets_search', 'tweets_search4']);
    db.exec("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, 'tweets_search', 'row')");
    expect(db.prepare('SELECT term FROM temp.v ORDER BY term').pluck().all()).toEqual(['alpha', 'wordeleven']);
    db.close();
  });
});
