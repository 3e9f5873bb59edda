import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { ftsFeed, parseTrigger, parseVirtualTable, quoteIdent, SchemaInfo } from '../../src/store/schemaInfo.js';
import { useTempDir } from '../helpers/tmp.js';

const tempDir = useTempDir();

/** A collector's layout in miniature: link tables, a self-reference, FTS5 kept by triggers, a WITHOUT ROWID table. */
const FOREIGN_SCHEMA = `
  CREATE TABLE [users] (id INTEGER PRIMARY KEY, screen_name TEXT NOT NULL, "display name" TEXT);
  CREATE TABLE tweets (
    id INTEGER PRIMARY KEY,
    "user" INTEGER REFERENCES users(id),
    full_text TEXT,
    retweeted_status INTEGER,
    quoted_status INTEGER,
    FOREIGN KEY (retweeted_status) REFERENCES tweets(id),
    FOREIGN KEY (quoted_status) REFERENCES tweets DEFERRABLE INITIALLY DEFERRED
  );
  CREATE TABLE media (id INTEGER PRIMARY KEY, url TEXT);
  CREATE TABLE media_tweets (media_id INTEGER REFERENCES media(id), tweets_id INTEGER REFERENCES tweets(id) ON DELETE CASCADE,
    PRIMARY KEY (media_id, tweets_id)) WITHOUT ROWID;
  CREATE TABLE following (followed_id INTEGER REFERENCES users(id) ON DELETE SET NULL ON UPDATE CASCADE,
    follower_id INTEGER REFERENCES users(id));
  CREATE INDEX idx_following_followed ON following(followed_id, follower_id);
  CREATE INDEX idx_tweets_user_partial ON tweets("user") WHERE "user" IS NOT NULL;
  CREATE INDEX idx_tweets_text_len ON tweets(length(full_text));
  CREATE VIRTUAL TABLE "tweets_fts" USING FTS5 (full_text, content=[tweets], content_rowid='id');
  CREATE VIRTUAL TABLE users_fts USING fts4(screen_name, "display name", content="users");
  CREATE VIRTUAL TABLE notes_fts USING fts5(body);
  CREATE TRIGGER tweets_ai AFTER INSERT ON tweets BEGIN
    INSERT INTO tweets_fts (rowid, full_text) VALUES (new.id, new.full_text);
  END;
  CREATE TRIGGER "tweets after delete" AFTER DELETE ON tweets BEGIN
    INSERT INTO tweets_fts (tweets_fts, rowid, full_text) VALUES ('delete', old.id, old.full_text);
  END;
  CREATE TRIGGER IF NOT EXISTS main.tweets_au UPDATE OF full_text, "user" ON tweets BEGIN SELECT 1; END;
  CREATE VIEW visible_tweets AS SELECT * FROM tweets;
  CREATE TABLE plain (id TEXT PRIMARY KEY, n INTEGER);
  CREATE TABLE desc_pk (id INTEGER PRIMARY KEY DESC, v TEXT);
`;

function foreignStore(): string {
  const file = path.join(tempDir(), 'archive.db');
  const db = new Database(file);
  db.exec(FOREIGN_SCHEMA);
  db.close();
  return file;
}

function readOnly(file: string): SchemaInfo {
  return new SchemaInfo(openStore(file, { readonly: true }));
}

describe('quoteIdent', () => {
  it('quotes a name and doubles the quotes inside it, so any name is safe in SQL', () => {
    expect(quoteIdent('tweets')).toBe('"tweets"');
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    const db = new Database(':memory:');
    db.exec(`CREATE TABLE ${quoteIdent('a "b" c')} (${quoteIdent('x"y')} INTEGER)`);
    expect(new SchemaInfo(db).columns('a "b" c')).toEqual([{ name: 'x"y', type: 'INTEGER', notNull: false, pk: 0, defaultSql: null }]);
    db.close();
  });
});

describe('SchemaInfo on a foreign archive (read-only connection)', () => {
  it('lists tables, views, virtual and shadow tables with their rowid facts', () => {
    const info = readOnly(foreignStore());
    const byName = new Map(info.tables().map((t) => [t.name, t]));
    expect(byName.get('tweets')).toMatchObject({ kind: 'table', withoutRowid: false, rowidAlias: 'id' });
    expect(byName.get('media_tweets')).toMatchObject({ kind: 'table', withoutRowid: true, rowidAlias: null });
    expect(byName.get('plain')).toMatchObject({ kind: 'table', withoutRowid: false, rowidAlias: null });
    expect(byName.get('desc_pk')).toMatchObject({ rowidAlias: null });
    expect(byName.get('visible_tweets')?.kind).toBe('view');
    expect(byName.get('tweets_fts')?.kind).toBe('virtual');
    expect(byName.get('tweets_fts_data')?.kind).toBe('shadow');
    expect(info.table('TWEETS')?.name).toBe('tweets');
    expect(info.table('nope')).toBeUndefined();
  });

  it('reads the collation a column is declared with, BINARY when none', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE [t] ("a" TEXT COLLATE nocase, b TEXT, c TEXT CHECK (c IN (\'x\', \'y\')) COLLATE RTRIM, PRIMARY KEY (a, b))');
    db.exec("CREATE VIRTUAL TABLE f USING fts5(body)");
    const info = new SchemaInfo(db);
    expect([info.collation('t', 'A'), info.collation('t', 'b'), info.collation('t', 'c'), info.collation('f', 'body')]).toEqual(['NOCASE', 'BINARY', 'RTRIM', 'BINARY']);
    db.close();
  });

  it('reads columns with declared type, NOT NULL and primary-key position', () => {
    const info = readOnly(foreignStore());
    expect(info.columns('users')).toEqual([
      { name: 'id', type: 'INTEGER', notNull: false, pk: 1, defaultSql: null },
      { name: 'screen_name', type: 'TEXT', notNull: true, pk: 0, defaultSql: null },
      { name: 'display name', type: 'TEXT', notNull: false, pk: 0, defaultSql: null },
    ]);
    expect(info.columns('media_tweets').map((c) => [c.name, c.pk])).toEqual([['media_id', 1], ['tweets_id', 2]]);
    expect(info.column('tweets', 'USER')?.name).toBe('user');
    expect(info.columns('missing')).toEqual([]);
    const withDefault = new Database(':memory:');
    withDefault.exec("CREATE TABLE t (state TEXT NOT NULL DEFAULT 'gone', n INTEGER DEFAULT (1 + 1), bare TEXT)");
    expect(new SchemaInfo(withDefault).columns('t').map((c) => c.defaultSql)).toEqual(["'gone'", '1 + 1', null]);
    withDefault.close();
  });

  it('finds every foreign key that references a table, with its actions, self-references included', () => {
    const info = readOnly(foreignStore());
    const toTweets = info.foreignKeysReferencing('tweets').map((fk) => ({ ...fk }));
    expect(toTweets).toEqual(
      expect.arrayContaining([
        { childTable: 'media_tweets', childColumns: ['tweets_id'], parentTable: 'tweets', parentColumns: ['id'], onDelete: 'CASCADE', onUpdate: 'NO ACTION', deferred: false },
        { childTable: 'tweets', childColumns: ['retweeted_status'], parentTable: 'tweets', parentColumns: ['id'], onDelete: 'NO ACTION', onUpdate: 'NO ACTION', deferred: false },
        { childTable: 'tweets', childColumns: ['quoted_status'], parentTable: 'tweets', parentColumns: [null], onDelete: 'NO ACTION', onUpdate: 'NO ACTION', deferred: true },
      ]),
    );
    expect(toTweets).toHaveLength(3);
    const toUsers = info.foreignKeysReferencing('USERS');
    expect(toUsers.map((fk) => `${fk.childTable}.${fk.childColumns[0]} ${fk.onDelete}/${fk.onUpdate}`).sort()).toEqual([
      'following.followed_id SET NULL/CASCADE',
      'following.follower_id NO ACTION/NO ACTION',
      'tweets.user NO ACTION/NO ACTION',
    ]);
    expect(info.foreignKeysReferencing('media').map((fk) => fk.childTable)).toEqual(['media_tweets']);
  });

  it('answers whether a column leads an index: rowid alias, a composite index, a WITHOUT ROWID key; not a partial or expression index', () => {
    const info = readOnly(foreignStore());
    expect(info.hasLeadingIndex('tweets', 'id')).toBe(true);
    expect(info.hasLeadingIndex('following', 'followed_id')).toBe(true);
    expect(info.hasLeadingIndex('following', 'follower_id')).toBe(false); // second column only
    expect(info.hasLeadingIndex('media_tweets', 'media_id')).toBe(true);
    expect(info.hasLeadingIndex('media_tweets', 'tweets_id')).toBe(false);
    expect(info.hasLeadingIndex('tweets', 'user')).toBe(false); // partial
    expect(info.hasLeadingIndex('tweets', 'retweeted_status')).toBe(false);
    expect(info.hasLeadingIndex('missing', 'id')).toBe(false);
    const expression = info.indexes('tweets').find((i) => i.name === 'idx_tweets_text_len');
    expect(expression).toMatchObject({ columns: [null], partial: false, origin: 'c' });
    expect(info.indexes('following')).toEqual([
      { name: 'idx_following_followed', table: 'following', columns: ['followed_id', 'follower_id'], unique: false, partial: false, origin: 'c' },
    ]);
  });

  it('lists the triggers on a table with their timing, event and UPDATE OF columns', () => {
    const info = readOnly(foreignStore());
    const triggers = info.triggersOn('Tweets');
    expect(triggers.map((t) => [t.name, t.timing, t.event, t.updateOf])).toEqual([
      ['tweets after delete', 'AFTER', 'DELETE', null],
      ['tweets_ai', 'AFTER', 'INSERT', null],
      ['tweets_au', 'BEFORE', 'UPDATE', ['full_text', 'user']],
    ]);
    expect(info.triggersOn('tweets', 'DELETE').map((t) => t.name)).toEqual(['tweets after delete']);
    expect(triggers[0]!.sql).toMatch(/^CREATE TRIGGER "tweets after delete"/);
    expect(info.triggersOn('users')).toEqual([]);
    // Every trigger of the store at once (the guard finds its own by name), in name order.
    const all = info.triggers();
    expect(all.filter((t) => t.table.toLowerCase() === 'tweets')).toEqual(triggers);
    expect(all.map((t) => t.name)).toEqual(all.map((t) => t.name).sort());
  });

  it('finds FTS3/4/5 tables, their content table and content_rowid, and their shadow tables', () => {
    const info = readOnly(foreignStore());
    const fts = new Map(info.ftsTables().map((f) => [f.name, f]));
    expect(fts.get('tweets_fts')).toEqual({
      name: 'tweets_fts',
      module: 'fts5',
      content: 'external',
      contentTable: 'tweets',
      contentRowid: 'id',
      contentlessDelete: false,
      columns: ['full_text'],
      shadowTables: ['tweets_fts_config', 'tweets_fts_data', 'tweets_fts_docsize', 'tweets_fts_idx'],
    });
    expect(fts.get('users_fts')).toMatchObject({ module: 'fts4', content: 'external', contentTable: 'users', contentRowid: null, columns: ['screen_name', 'display name'] });
    expect(fts.get('users_fts')!.shadowTables).toEqual(['users_fts_docsize', 'users_fts_segdir', 'users_fts_segments', 'users_fts_stat']);
    expect(fts.get('notes_fts')).toMatchObject({ content: 'own', contentTable: null });
    expect(fts.get('notes_fts')!.shadowTables).toContain('notes_fts_content');
    expect(info.ftsOver('TWEETS').map((f) => f.name)).toEqual(['tweets_fts']);
    expect(info.ftsOver('media')).toEqual([]);
  });

  it('reads the schema without writing anything: the file stays byte for byte as it was', async () => {
    const file = foreignStore();
    const { readFileSync, existsSync } = await import('node:fs');
    const before = readFileSync(file);
    const db = openStore(file, { readonly: true });
    const info = new SchemaInfo(db);
    info.tables();
    info.foreignKeys();
    info.ftsTables();
    info.triggersOn('tweets');
    db.close();
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(existsSync(`${file}-wal`)).toBe(false);
  });
});

describe('DDL parsing', () => {
  it('reads a trigger with a quoted name that looks like its clauses, and INSTEAD OF on a view', () => {
    expect(parseTrigger('t', 'v', 'CREATE TEMP TRIGGER "after delete on x" INSTEAD OF DELETE ON v BEGIN SELECT 1; END')).toMatchObject({
      timing: 'INSTEAD OF',
      event: 'DELETE',
    });
    expect(parseTrigger('t', 'x', '-- note\nCREATE TRIGGER t /* c */ DELETE ON x BEGIN SELECT 1; END')).toMatchObject({ timing: 'BEFORE', event: 'DELETE' });
  });

  it('reads virtual-table options with any quoting, and a contentless table', () => {
    expect(parseVirtualTable("CREATE VIRTUAL TABLE f USING fts5(a, b UNINDEXED, content='', tokenize = 'porter ascii')")).toEqual({
      module: 'fts5',
      options: new Map([
        ['content', ''],
        ['tokenize', 'porter ascii'],
      ]),
      columns: ['a', 'b'],
    });
  });

  it("reads what a trigger feeds an FTS table (rowid and columns from new.*), skipping its 'delete' commands", () => {
    const sql = `CREATE TRIGGER t AFTER UPDATE ON tweets BEGIN
      INSERT INTO [f] ([f], rowid, [body]) VALUES ('delete', old.rowid, old.[body]);
      INSERT INTO "f" (rowid, [body], tags) VALUES (NEW."id", new.[body], lower(new.tags));
    END`;
    expect(ftsFeed(sql, 'F')).toEqual({ columns: ['rowid', 'body', 'tags'], values: ['id', 'body', null] });
    expect(ftsFeed(sql, 'other')).toBeNull();
    expect(ftsFeed('CREATE TRIGGER t AFTER INSERT ON x BEGIN INSERT INTO f VALUES (new.a); END', 'f')).toBeNull();
  });
});
