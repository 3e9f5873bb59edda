import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { quoteIdent as q } from '../../src/store/schemaInfo.js';
import type { LayoutName } from './layouts.js';

/**
 * An independent judge of a reconciled store: from the store as it was, the result lines X returned and a description
 * of the layout written here (not read from src/), it computes what every row must have become, and compares that
 * with the store as it is. Nothing in here calls compliance-sync's code.
 */

type Db = Database.Database;
type Row = Record<string, unknown>;
export type Kind = 'tweets' | 'users';

export interface Relation {
  table: string;
  column: string;
  parent: Kind;
  /** What becomes of the child when its parent row is deleted. */
  onDelete: 'delete' | 'set_null';
}

export interface LayoutSpec {
  name: LayoutName;
  tweets: { table: string; id: string; author: string; geoColumns: string[]; geoJson: { column: string; keys: string[] } | null; markColumns: MarkColumns | null };
  users: { table: string; id: string; markColumns: MarkColumns | null };
  /** The rows that depend on a tweet or a user (declared FOREIGN KEYs, as issue 11 expects them handled). */
  relations: Relation[];
  /** External-content FTS5 tables kept by the collector's triggers. */
  fts: { table: string; content: Kind }[];
  /** What `PRAGMA foreign_key_check` does on this layout even untouched: twint's FKs to users(id) are malformed. */
  fkPragma: 'runs' | 'mismatch';
  /**
   * Tweets embedded in a JSON column of other tweets (issue 12): a row that embeds a deleted tweet as a retweet is a
   * copy and goes with it; other embedded copies of a deleted tweet are removed; embedded copies of a geo-scrubbed
   * tweet lose geo, coordinates and place.
   */
  embeds: { column: string; copies: EmbedPlace[]; removes: EmbedPlace[] } | null;
  /** Tables whose rows go once the cycle leaves nothing referencing them (issue 12: media, places). */
  orphans: { table: string; key: string; referencedBy: { table: string; column: string }[] }[];
}

/** Where a JSON object keeps another tweet: an object at `path`, or (array) the elements there, whose `id` key holds its ID. */
export interface EmbedPlace {
  path: string[];
  array: boolean;
  id: string;
  /** Array elements only of this "type" (v2 referenced_tweets). */
  type?: string;
}

const EMBED_GEO_KEYS = ['geo', 'coordinates', 'place'];

interface MarkColumns {
  state: string;
  reason: string;
  at: string;
}

const MARK_COLUMNS: MarkColumns = { state: 'compliance_state', reason: 'compliance_reason', at: 'compliance_at' };

export const LAYOUT_SPECS: Record<LayoutName, LayoutSpec> = {
  default: {
    name: 'default',
    tweets: { table: 'tweets', id: 'id', author: 'author_id', geoColumns: ['geo_lat', 'geo_lon', 'place_id'], geoJson: { column: 'raw_json', keys: ['geo', 'coordinates', 'place'] }, markColumns: MARK_COLUMNS },
    users: { table: 'users', id: 'id', markColumns: MARK_COLUMNS },
    relations: [],
    fts: [],
    fkPragma: 'runs',
    // The default ingester keeps X's v1.1 objects and v2 objects with expansions (test/helpers/layouts.ts).
    embeds: {
      column: 'raw_json',
      copies: [
        { path: ['retweeted_status'], array: false, id: 'id_str' },
        { path: ['referenced_tweets'], array: true, id: 'id', type: 'retweeted' },
      ],
      removes: [
        { path: ['quoted_status'], array: false, id: 'id_str' },
        { path: ['referenced_tweets'], array: true, id: 'id', type: 'quoted' },
        { path: ['includes', 'tweets'], array: true, id: 'id' },
      ],
    },
    orphans: [],
  },
  'twitter-to-sqlite': {
    name: 'twitter-to-sqlite',
    tweets: { table: 'tweets', id: 'id', author: 'user', geoColumns: ['geo', 'coordinates', 'place'], geoJson: null, markColumns: null },
    users: { table: 'users', id: 'id', markColumns: null },
    relations: [
      // Self-references: retweets are copies deleted with their original (issue 12), quote pointers are cleared.
      { table: 'tweets', column: 'retweeted_status', parent: 'tweets', onDelete: 'delete' },
      { table: 'tweets', column: 'quoted_status', parent: 'tweets', onDelete: 'set_null' },
      { table: 'media_tweets', column: 'tweets_id', parent: 'tweets', onDelete: 'delete' },
      { table: 'favorited_by', column: 'tweet', parent: 'tweets', onDelete: 'delete' },
      { table: 'favorited_by', column: 'user', parent: 'users', onDelete: 'delete' },
      { table: 'following', column: 'followed_id', parent: 'users', onDelete: 'delete' },
      { table: 'following', column: 'follower_id', parent: 'users', onDelete: 'delete' },
      { table: 'count_history', column: 'user', parent: 'users', onDelete: 'delete' },
    ],
    fts: [
      { table: 'tweets_fts', content: 'tweets' },
      { table: 'users_fts', content: 'users' },
    ],
    fkPragma: 'runs',
    embeds: null,
    orphans: [
      { table: 'media', key: 'id', referencedBy: [{ table: 'media_tweets', column: 'media_id' }] },
      { table: 'places', key: 'id', referencedBy: [{ table: 'tweets', column: 'place' }] },
    ],
  },
  twint: {
    name: 'twint',
    tweets: { table: 'tweets', id: 'id', author: 'user_id', geoColumns: ['place', 'geo', 'near'], geoJson: null, markColumns: null },
    users: { table: 'users', id: 'id', markColumns: null },
    relations: [
      { table: 'retweets', column: 'tweet_id', parent: 'tweets', onDelete: 'delete' },
      { table: 'retweets', column: 'user_id', parent: 'users', onDelete: 'delete' },
      { table: 'replies', column: 'tweet_id', parent: 'tweets', onDelete: 'delete' },
      { table: 'favorites', column: 'tweet_id', parent: 'tweets', onDelete: 'delete' },
      { table: 'favorites', column: 'user_id', parent: 'users', onDelete: 'delete' },
      { table: 'followers', column: 'id', parent: 'users', onDelete: 'delete' },
      { table: 'followers', column: 'follower_id', parent: 'users', onDelete: 'delete' },
      { table: 'following', column: 'id', parent: 'users', onDelete: 'delete' },
      { table: 'following', column: 'following_id', parent: 'users', onDelete: 'delete' },
    ],
    fts: [],
    fkPragma: 'mismatch',
    embeds: null,
    orphans: [],
  },
};

// ---------------------------------------------------------------------------------------------------------------------
// Snapshots.

export interface TableSnapshot {
  /** Primary-key columns (rowid when the table has none), used as the row's identity. */
  key: string[];
  rows: Map<string, Row>;
}

export interface Snapshot {
  tables: Map<string, TableSnapshot>;
  /** sqlite_master entries (type:name → sql) of everything that is not compliance-sync's own. */
  schema: Map<string, string | null>;
}

const text = (value: unknown): unknown => (typeof value === 'bigint' ? value.toString() : value);

function open(file: string, readonly: boolean): Db {
  const db = new Database(file, { readonly, fileMustExist: true });
  db.defaultSafeIntegers(true);
  db.pragma('busy_timeout = 10000');
  return db;
}

/** Virtual tables and their shadow tables, which are checked through the FTS module rather than row by row. */
function ftsObjects(db: Db): Set<string> {
  const virtual = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'").pluck().all() as string[]);
  const names = new Set<string>();
  for (const name of virtual) for (const suffix of ['', '_data', '_idx', '_docsize', '_config', '_content']) names.add(name + suffix);
  return names;
}

const isOwn = (name: string) => name.startsWith('cs_') || name.startsWith('sqlite_');

/** Every row of every content table (not compliance-sync's cs_* tables, not FTS internals), IDs as decimal text. */
export function snapshot(file: string): Snapshot {
  const db = open(file, true);
  try {
    const fts = ftsObjects(db);
    const tables = new Map<string, TableSnapshot>();
    const schema = new Map<string, string | null>();
    for (const entry of db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY type, name').all() as { type: string; name: string; sql: string | null }[]) {
      if (!isOwn(entry.name)) schema.set(`${entry.type}:${entry.name}`, entry.sql);
      if (entry.type !== 'table' || isOwn(entry.name) || fts.has(entry.name)) continue;
      const info = db.prepare(`PRAGMA table_info(${q(entry.name)})`).all() as { name: string; pk: bigint }[];
      const pk = info.filter((c) => c.pk > 0n).sort((a, b) => Number(a.pk - b.pk)).map((c) => c.name);
      const key = pk.length ? pk : ['rowid'];
      const rows = new Map<string, Row>();
      for (const row of db.prepare(`SELECT ${key[0] === 'rowid' ? 'rowid, ' : ''}* FROM ${q(entry.name)}`).all() as Row[]) {
        const clean: Row = {};
        for (const [column, value] of Object.entries(row)) clean[column] = text(value);
        rows.set(JSON.stringify(key.map((k) => clean[k])), clean);
      }
      tables.set(entry.name, { key, rows });
    }
    return { tables, schema };
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// What the results must lead to.

export interface ResultLine {
  action: string;
  reason: string;
}

export interface Results {
  tweets: Map<string, ResultLine>;
  users: Map<string, ResultLine>;
}

/** The default policy (docs/architecture.md#what-a-result-does-to-the-store), restated here so the judge does not read it from the code it judges. */
const POLICY: Record<string, 'delete' | 'mark' | 'scrub_geo'> = {
  deleted: 'delete',
  deactivated: 'delete',
  bounced: 'delete',
  protected: 'mark',
  suspended: 'mark',
  tweet_edited: 'mark',
  scrub_geo: 'scrub_geo',
  geo_scrubbed: 'scrub_geo',
};

function effectOf(line: ResultLine | undefined): 'delete' | 'mark' | 'scrub_geo' | null {
  if (!line) return null;
  if (line.action === 'scrub_geo') return 'scrub_geo';
  return POLICY[line.reason] ?? (line.action === 'delete' ? 'delete' : null);
}

export type RowFate =
  | { fate: 'deleted' }
  | { fate: 'kept'; row: Row; markReason: string | null };

export interface Expected {
  /** table → row key → fate */
  tables: Map<string, Map<string, RowFate>>;
  /** Rows deleted and rows changed per table. */
  diff: Map<string, { deleted: number; changed: number }>;
  deletedIds: { tweets: Set<string>; users: Set<string> };
  /** Tweets kept and geo-scrubbed (their own result or their author's). */
  scrubbedIds: Set<string>;
}

/** The store a correct cycle leaves, computed from the store before it and the result lines alone. */
export function expectedStore(spec: LayoutSpec, before: Snapshot, results: Results): Expected {
  const userEffect = (id: string) => effectOf(results.users.get(id));
  const deletedUsers = new Set([...results.users.keys()].filter((id) => userEffect(id) === 'delete'));
  const deletedTweets = new Set<string>();
  const scrubbedTweets = new Set<string>();
  const tables = new Map<string, Map<string, RowFate>>();
  const fates = (table: string) => {
    let map = tables.get(table);
    if (!map) tables.set(table, (map = new Map()));
    return map;
  };

  const tweets = before.tables.get(spec.tweets.table)!;
  for (const [key, row] of tweets.rows) {
    const id = String(row[spec.tweets.id]);
    const author = row[spec.tweets.author] === null ? null : String(row[spec.tweets.author]);
    const ownLine = results.tweets.get(id);
    const own = effectOf(ownLine);
    const byAuthor = author === null ? null : userEffect(author);
    if (own === 'delete' || byAuthor === 'delete') {
      deletedTweets.add(id);
      fates(spec.tweets.table).set(key, { fate: 'deleted' });
      continue;
    }
    const next: Row = { ...row };
    if (own === 'scrub_geo' || byAuthor === 'scrub_geo') {
      scrubbedTweets.add(id);
      for (const column of spec.tweets.geoColumns) next[column] = null;
      const json = spec.tweets.geoJson;
      if (json && typeof next[json.column] === 'string') {
        const parsed = JSON.parse(next[json.column] as string) as Record<string, unknown>;
        for (const k of json.keys) delete parsed[k];
        next[json.column] = parsed;
      }
    }
    // A tweet's own mark outranks its author's (the cascaded one carries the reason author_<reason>).
    const markReason = own === 'mark' ? ownLine!.reason : byAuthor === 'mark' ? `author_${results.users.get(author!)!.reason}` : null;
    fates(spec.tweets.table).set(key, { fate: 'kept', row: next, markReason });
  }

  const users = before.tables.get(spec.users.table)!;
  for (const [key, row] of users.rows) {
    const id = String(row[spec.users.id]);
    const effect = userEffect(id);
    if (effect === 'delete') fates(spec.users.table).set(key, { fate: 'deleted' });
    else fates(spec.users.table).set(key, { fate: 'kept', row: { ...row }, markReason: effect === 'mark' ? results.users.get(id)!.reason : null });
  }

  const deleted = { tweets: deletedTweets, users: deletedUsers };
  // Tweets that go with the row they point to (a relation of the tweets table with action delete: copies such as
  // retweets, in issue 12), transitively: a retweet of a deleted retweet goes too.
  const copyRelations = spec.relations.filter((r) => r.table === spec.tweets.table && r.onDelete === 'delete');
  const embeds = spec.embeds;
  for (let grew = copyRelations.length > 0 || embeds !== null; grew; ) {
    grew = false;
    if (embeds) {
      // Copies in the JSON: a retweet that embeds a deleted tweet.
      for (const [key, row] of tweets.rows) {
        const id = String(row[spec.tweets.id]);
        if (deletedTweets.has(id) || typeof row[embeds.column] !== 'string') continue;
        const object = parseJson(row[embeds.column] as string);
        if (!object || !embeds.copies.some((place) => embeddedAt(object, place).some((e) => deletedTweets.has(String(e.value[place.id]))))) continue;
        deletedTweets.add(id);
        fates(spec.tweets.table).set(key, { fate: 'deleted' });
        grew = true;
      }
    }
    for (const relation of copyRelations) {
      for (const [key, row] of tweets.rows) {
        const id = String(row[spec.tweets.id]);
        const value = row[relation.column];
        if (value === null || deletedTweets.has(id) || !deleted[relation.parent].has(String(value))) continue;
        deletedTweets.add(id);
        fates(spec.tweets.table).set(key, { fate: 'deleted' });
        grew = true;
      }
    }
  }
  if (embeds) {
    // Embedded copies in the rows kept: a deleted tweet's removed, a scrubbed tweet's without geo.
    for (const fate of fates(spec.tweets.table).values()) {
      if (fate.fate !== 'kept') continue;
      const value = fate.row[embeds.column];
      const object = typeof value === 'string' ? parseJson(value) : (value as Record<string, unknown> | null);
      if (!object) continue;
      let changed = false;
      for (const place of [...embeds.removes, ...embeds.copies]) {
        const removes = embeds.removes.includes(place);
        for (const e of embeddedAt(object, place).reverse()) {
          const embeddedId = String(e.value[place.id]);
          if (removes && deletedTweets.has(embeddedId)) {
            e.remove();
            changed = true;
          } else if (scrubbedTweets.has(embeddedId) && EMBED_GEO_KEYS.some((k) => k in e.value)) {
            for (const k of EMBED_GEO_KEYS) delete e.value[k];
            changed = true;
          }
        }
      }
      if (changed) fate.row = { ...fate.row, [embeds.column]: object };
    }
  }
  for (const relation of spec.relations) {
    const snapshotOf = before.tables.get(relation.table)!;
    const map = fates(relation.table);
    for (const [key, row] of snapshotOf.rows) {
      const value = row[relation.column];
      if (value === null || !deleted[relation.parent].has(String(value))) continue;
      const current = map.get(key);
      if (current?.fate === 'deleted') continue;
      if (relation.onDelete === 'delete') map.set(key, { fate: 'deleted' });
      else map.set(key, { fate: 'kept', row: { ...(current?.row ?? row), [relation.column]: null }, markReason: current?.markReason ?? null });
    }
  }

  // Orphans: rows whose references the cycle removed, and that nothing references afterwards.
  for (const orphan of spec.orphans) {
    const referenced = (after: boolean) => {
      const keys = new Set<string>();
      for (const ref of orphan.referencedBy) {
        const map = tables.get(ref.table);
        for (const [key, row] of before.tables.get(ref.table)!.rows) {
          const fate = map?.get(key);
          if (after && fate?.fate === 'deleted') continue;
          const value = after && fate?.fate === 'kept' ? fate.row[ref.column] : row[ref.column];
          if (value !== null && value !== undefined) keys.add(String(value));
        }
      }
      return keys;
    };
    const was = referenced(false);
    const is = referenced(true);
    for (const [key, row] of before.tables.get(orphan.table)!.rows) {
      const value = String(row[orphan.key]);
      if (was.has(value) && !is.has(value)) fates(orphan.table).set(key, { fate: 'deleted' });
    }
  }

  const diff = new Map<string, { deleted: number; changed: number }>();
  for (const [table, snap] of before.tables) {
    const map = tables.get(table);
    let gone = 0;
    let changed = 0;
    for (const [key, row] of snap.rows) {
      const fate = map?.get(key);
      if (!fate) continue;
      if (fate.fate === 'deleted') gone++;
      else if (!sameRow(fate.row, row, null) || fate.markReason !== null) changed++;
    }
    diff.set(table, { deleted: gone, changed });
  }
  return { tables, diff, deletedIds: deleted, scrubbedIds: scrubbedTweets };
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The embedded tweet objects at a place of a JSON object, each with a way to remove it from there. */
function embeddedAt(object: Record<string, unknown>, place: EmbedPlace): { value: Record<string, unknown>; remove: () => void }[] {
  let parent: unknown = object;
  for (const key of place.path.slice(0, -1)) parent = parent !== null && typeof parent === 'object' ? (parent as Record<string, unknown>)[key] : undefined;
  if (parent === null || typeof parent !== 'object') return [];
  const holder = parent as Record<string, unknown>;
  const last = place.path[place.path.length - 1]!;
  const at = holder[last];
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!place.array) return isObject(at) ? [{ value: at, remove: () => delete holder[last] }] : [];
  if (!Array.isArray(at)) return [];
  return at.flatMap((element, i) =>
    isObject(element) && (place.type === undefined || element.type === place.type) ? [{ value: element, remove: () => void at.splice(i, 1) }] : [],
  );
}

function sameValue(expected: unknown, actual: unknown): boolean {
  if (expected !== null && typeof expected === 'object') {
    return typeof actual === 'string' && JSON.stringify(sortKeys(expected)) === JSON.stringify(sortKeys(JSON.parse(actual)));
  }
  return expected === actual;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Row)[k])]));
  return value;
}

function sameRow(expected: Row, actual: Row, ignore: MarkColumns | null): boolean {
  return Object.keys(expected).every((column) => (ignore && Object.values(ignore).includes(column)) || sameValue(expected[column], actual[column]));
}

// ---------------------------------------------------------------------------------------------------------------------
// Marks, wherever the layout keeps them.

/**
 * Marks of a store without compliance columns: the ledger's side table keyed by (type, id). Its name and columns
 * are the `apply` work's; this is the one place that reads it.
 */
export function sideTableMarks(file: string): Map<string, { state: string; reason: string | null }> {
  const db = open(file, true);
  try {
    const marks = new Map<string, { state: string; reason: string | null }>();
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cs_marks'").get();
    if (!exists) return marks;
    for (const row of db.prepare('SELECT type, id, state, reason FROM cs_marks').all() as { type: string; id: unknown; state: string; reason: string | null }[]) {
      marks.set(`${row.type}:${String(row.id)}`, { state: row.state, reason: row.reason });
    }
    return marks;
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The verdict.

/**
 * Compares the store with what it must be and returns every discrepancy (empty = compliant and nothing else touched),
 * one line each, capped per kind so a wholesale failure stays readable.
 */
export function checkStore(spec: LayoutSpec, file: string, before: Snapshot, expected: Expected): string[] {
  const problems: string[] = [];
  const perKind = new Map<string, number>();
  const problem = (kind: string, message: string) => {
    const n = (perKind.get(kind) ?? 0) + 1;
    perKind.set(kind, n);
    if (n <= 5) problems.push(`${kind}: ${message}`);
    else if (n === 6) problems.push(`${kind}: … (more)`);
  };
  const after = snapshot(file);
  const sideMarks = spec.tweets.markColumns && spec.users.markColumns ? null : sideTableMarks(file);

  // The collector's schema is left as it was: compliance-sync may add its own cs_* objects and indexes, nothing else.
  for (const [entry, sql] of before.schema) if (after.schema.get(entry) !== sql) problem('schema', `${entry} changed or dropped`);
  // Indexes (migrate --create-indexes) and views for publishers are allowed additions.
  for (const entry of after.schema.keys()) {
    if (!before.schema.has(entry) && !entry.startsWith('index:') && !entry.startsWith('view:')) problem('schema', `${entry} added`);
  }

  for (const [table, snap] of before.tables) {
    const now = after.tables.get(table);
    if (!now) {
      problem('table', `${table} is gone`);
      continue;
    }
    const fates = expected.tables.get(table);
    const kind: Kind | null = table === spec.tweets.table ? 'tweets' : table === spec.users.table ? 'users' : null;
    const markColumns = kind ? spec[kind].markColumns : null;
    for (const [key, row] of snap.rows) {
      const fate = fates?.get(key) ?? { fate: 'kept' as const, row, markReason: null };
      const actual = now.rows.get(key);
      if (fate.fate === 'deleted') {
        if (actual) problem(`${table} not deleted`, key);
        continue;
      }
      if (!actual) {
        problem(`${table} deleted but should stay`, key);
        continue;
      }
      if (!sameRow(fate.row, actual, markColumns)) {
        const columns = Object.keys(fate.row).filter((c) => !(markColumns && Object.values(markColumns).includes(c)) && !sameValue(fate.row[c], actual[c]));
        problem(`${table} wrong content`, `${key}: ${columns.map((c) => `${c}=${JSON.stringify(actual[c])} (want ${JSON.stringify(fate.row[c])})`).join(', ')}`);
      }
      if (!kind) continue;
      const id = String(row[spec[kind].id]);
      const mark = markColumns
        ? actual[markColumns.state] === null ? null : { state: String(actual[markColumns.state]), reason: actual[markColumns.reason] as string | null }
        : sideMarks!.get(`${kind}:${id}`) ?? null;
      if (fate.markReason === null && mark !== null) problem(`${kind} marked but should not be`, `${id} (${mark.state}/${mark.reason})`);
      if (fate.markReason !== null && (mark === null || mark.reason !== fate.markReason)) {
        problem(`${kind} mark missing or wrong`, `${id}: ${mark ? `${mark.state}/${mark.reason}` : 'no mark'} (want reason ${fate.markReason})`);
      }
      if (markColumns && fate.markReason !== null && actual[markColumns.at] === null) problem(`${kind} mark without time`, id);
    }
    for (const key of now.rows.keys()) if (!snap.rows.has(key)) problem(`${table} row appeared`, key);
  }

  problems.push(...storeIntegrity(spec, file));
  return problems;
}

/**
 * `integrity_check`, `foreign_key_check` (or, on a layout whose FKs SQLite refuses, the same check by hand), and
 * every FTS5 table's `integrity-check` against its content table.
 */
export function storeIntegrity(spec: LayoutSpec, file: string): string[] {
  const problems: string[] = [];
  const problem = (kind: string, message: string) => problems.push(`${kind}: ${message}`);
  const db = open(file, false);
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') problem('integrity_check', String(integrity));
    if (spec.fkPragma === 'runs') {
      const violations = db.pragma('foreign_key_check') as Row[];
      for (const v of violations.slice(0, 5)) problem('foreign_key_check', JSON.stringify(v, (_k, value) => text(value)));
    } else {
      // The store's own malformed FKs make the pragma fail before and after; the orphan scan below stands in for it.
      try {
        db.pragma('foreign_key_check');
        problem('foreign_key_check', 'expected the layout\'s "foreign key mismatch" and got a result: did the schema change?');
      } catch (err) {
        if (!/foreign key mismatch/.test((err as Error).message)) problem('foreign_key_check', (err as Error).message);
      }
    }
    for (const orphan of orphans(db)) problem('orphan', orphan);
    for (const fts of spec.fts) {
      try {
        // rank = 1: also compare the index with its external content table (https://sqlite.org/fts5.html, integrity-check).
        db.prepare(`INSERT INTO ${q(fts.table)}(${q(fts.table)}, rank) VALUES ('integrity-check', 1)`).run();
      } catch (err) {
        problem('fts integrity-check', `${fts.table}: ${(err as Error).message}`);
      }
    }
  } finally {
    db.close();
  }
  return problems;
}

/** Child rows whose declared parent is gone, for every FOREIGN KEY in the store (works where the pragma cannot). */
function orphans(db: Db): string[] {
  const found: string[] = [];
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[];
  for (const table of tables) {
    for (const fk of db.prepare(`PRAGMA foreign_key_list(${q(table)})`).all() as { table: string; from: string; to: string | null }[]) {
      const to = fk.to ?? 'rowid';
      const n = db
        .prepare(`SELECT count(*) FROM ${q(table)} c WHERE c.${q(fk.from)} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${q(fk.table)} p WHERE p.${q(to)} = c.${q(fk.from)})`)
        .pluck()
        .get() as bigint;
      if (n > 0n) found.push(`${table}.${fk.from} → ${fk.table}.${to}: ${n} rows`);
    }
  }
  return found;
}

/**
 * FTS lookups of unique words: every deleted row's word finds no row, or only rows that still exist (a retweet quoting
 * the text is a copy, which issue 12 deals with); every kept row's word still finds that row.
 */
export function ftsResidue(spec: LayoutSpec, file: string, words: { kind: Kind; id: string; word: string }[], expected: Expected): string[] {
  const problems: string[] = [];
  const db = open(file, true);
  try {
    for (const fts of spec.fts) {
      const table = spec[fts.content].table;
      const lookup = db.prepare(`SELECT f.rowid AS id, t.rowid AS present FROM ${q(fts.table)} f LEFT JOIN ${q(table)} t ON t.rowid = f.rowid WHERE ${q(fts.table)} MATCH ?`);
      for (const { kind, id, word } of words.filter((w) => w.kind === fts.content)) {
        const hits = lookup.all(`"${word}"`) as { id: bigint; present: bigint | null }[];
        if (hits.some((h) => h.present === null)) problems.push(`${fts.table}: "${word}" still finds deleted row ${id}`);
        const gone = expected.deletedIds[kind].has(id);
        if (!gone && !hits.some((h) => String(h.id) === id)) problems.push(`${fts.table}: "${word}" no longer finds kept row ${id}`);
      }
    }
  } finally {
    db.close();
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------------
// The report.

/**
 * Rows deleted per table as `compliance-sync report --format json` states them, summed over types and causes.
 * Expected shape (issue 11, "counts per table and cause"): `types[].tables: { [table]: { deleted: n | { [cause]: n } } }`
 * (a number, or the per-cause counts of the ledger's table → kind → cause totals). This is the one place that reads it.
 */
export function reportedDeletions(report: unknown): Map<string, number> {
  const totals = new Map<string, number>();
  type Counts = { deleted?: number | Record<string, number> };
  const types = (report as { types?: { type: string; tables?: Record<string, Counts> }[] }).types ?? [];
  for (const type of types) {
    if (!type.tables) throw new Error(`report for ${type.type} has no per-table counts (types[].tables)`);
    for (const [table, counts] of Object.entries(type.tables)) {
      const deleted = typeof counts.deleted === 'number' ? counts.deleted : Object.values(counts.deleted ?? {}).reduce((a, b) => a + b, 0);
      if (deleted) totals.set(table, (totals.get(table) ?? 0) + deleted);
    }
  }
  return totals;
}

/** Rows changed per `table:kind:cause` as `report --format json` states them (types[].tables), summed over types. */
export function reportedCauses(report: unknown): Map<string, number> {
  const totals = new Map<string, number>();
  const types = (report as { types?: { tables?: Record<string, Record<string, number | Record<string, number>>> }[] }).types ?? [];
  for (const type of types) {
    for (const [table, kinds] of Object.entries(type.tables ?? {})) {
      for (const [kind, causes] of Object.entries(kinds)) {
        if (typeof causes === 'number') continue;
        for (const [cause, n] of Object.entries(causes)) totals.set(`${table}:${kind}:${cause}`, (totals.get(`${table}:${kind}:${cause}`) ?? 0) + n);
      }
    }
  }
  return totals;
}

/** Rows deleted per table by the expected store, tables with none left out. */
export function expectedDeletions(expected: Expected): Map<string, number> {
  return new Map([...expected.diff].filter(([, d]) => d.deleted > 0).map(([table, d]) => [table, d.deleted]));
}

// ---------------------------------------------------------------------------------------------------------------------
// Residue (issue 12): deleted text readable anywhere in the store's files or search indexes.

/**
 * Which of the words are still readable: in the bytes of the store's files (main file, -wal, -journal: free pages,
 * old page versions), and among the terms of its FTS5 indexes (read through fts5vocab, since FTS5 stores terms
 * prefix-compressed where a byte scan could miss them). Pass the unique words of deleted rows only: a retweet that
 * is kept still carries its original's words ("RT @x: …") unless copies are deleted too.
 */
export function residue(file: string, words: readonly string[], ftsTables: readonly string[]): { inFiles: string[]; inFts: string[] };
export function residue(
  file: string,
  words: readonly string[],
  ftsTables: readonly string[],
  links: { spec: LayoutSpec; deleted: ReadonlySet<string>; scrubbed: ReadonlySet<string> },
): { inFiles: string[]; inFts: string[]; inRows: string[] };
/**
 * With `links`, also the residue kept in rows (issue 12), one line each in `inRows`: a stored copy of a deleted tweet
 * (a pointer relation of the tweets table whose action is delete, or a retweet in the JSON), a stored pointer to a
 * deleted tweet, an embedded copy of a deleted tweet, embedded geo of a scrubbed tweet, and a row of an orphan table
 * that nothing references.
 */
export function residue(
  file: string,
  words: readonly string[],
  ftsTables: readonly string[],
  links?: { spec: LayoutSpec; deleted: ReadonlySet<string>; scrubbed: ReadonlySet<string> },
): { inFiles: string[]; inFts: string[]; inRows?: string[] } {
  const found = wordResidue(file, words, ftsTables);
  return links ? { ...found, inRows: rowResidue(file, links.spec, links.deleted, links.scrubbed) } : found;
}

function rowResidue(file: string, spec: LayoutSpec, deleted: ReadonlySet<string>, scrubbed: ReadonlySet<string>): string[] {
  const found: string[] = [];
  const db = open(file, true);
  try {
    const tweets = spec.tweets;
    for (const relation of spec.relations.filter((r) => r.table === tweets.table && r.parent === 'tweets')) {
      const rows = db.prepare(`SELECT ${q(tweets.id)} AS id, ${q(relation.column)} AS ref FROM ${q(tweets.table)} WHERE ${q(relation.column)} IS NOT NULL`).all() as { id: bigint; ref: bigint }[];
      for (const row of rows) {
        if (!deleted.has(String(row.ref))) continue;
        found.push(`${relation.onDelete === 'delete' ? 'copy' : 'pointer'} ${tweets.table}.${relation.column}: tweet ${row.id} → deleted ${row.ref}`);
      }
    }
    const embeds = spec.embeds;
    if (embeds) {
      for (const row of db.prepare(`SELECT ${q(tweets.id)} AS id, ${q(embeds.column)} AS raw FROM ${q(tweets.table)}`).all() as { id: bigint; raw: unknown }[]) {
        const object = typeof row.raw === 'string' ? parseJson(row.raw) : null;
        if (!object) continue;
        for (const [kind, places] of [['copy', embeds.copies], ['embedded copy', embeds.removes]] as const) {
          for (const place of places) {
            for (const e of embeddedAt(object, place)) {
              const id = String(e.value[place.id]);
              if (deleted.has(id)) found.push(`${kind} in ${embeds.column} ${place.path.join('.')}: tweet ${row.id} embeds deleted ${id}`);
              else if (scrubbed.has(id) && EMBED_GEO_KEYS.some((k) => k in e.value)) found.push(`embedded geo in ${embeds.column} ${place.path.join('.')}: tweet ${row.id} embeds scrubbed ${id} with its geo`);
            }
          }
        }
      }
    }
    for (const orphan of spec.orphans) {
      const unreferenced = orphan.referencedBy.map((r) => `NOT EXISTS (SELECT 1 FROM ${q(r.table)} r WHERE r.${q(r.column)} = o.${q(orphan.key)})`).join(' AND ');
      for (const key of db.prepare(`SELECT o.${q(orphan.key)} FROM ${q(orphan.table)} o WHERE ${unreferenced}`).pluck().all() as unknown[]) {
        found.push(`orphan ${orphan.table}.${orphan.key} = ${String(key)}: nothing references it`);
      }
    }
  } finally {
    db.close();
  }
  return found;
}

function wordResidue(file: string, words: readonly string[], ftsTables: readonly string[]): { inFiles: string[]; inFts: string[] } {
  const inFiles = new Set<string>();
  for (const suffix of ['', '-wal', '-journal']) {
    let bytes: string;
    try {
      bytes = readFileSync(file + suffix).toString('latin1');
    } catch {
      continue;
    }
    for (const word of words) if (bytes.includes(word)) inFiles.add(word);
  }
  const inFts = new Set<string>();
  if (ftsTables.length) {
    const db = new Database(file, { readonly: false, fileMustExist: true });
    try {
      for (const table of ftsTables) {
        const vocab = `cs_test_vocab_${table}`;
        db.exec(`CREATE VIRTUAL TABLE temp.${q(vocab)} USING fts5vocab(main, ${q(table)}, 'row')`);
        const has = db.prepare(`SELECT 1 FROM temp.${q(vocab)} WHERE term = ?`).pluck();
        for (const word of words) if (has.get(word.toLowerCase())) inFts.add(word);
        db.exec(`DROP TABLE temp.${q(vocab)}`);
      }
    } finally {
      db.close();
    }
  }
  return { inFiles: [...inFiles], inFts: [...inFts] };
}

/** The spec with one relation's action changed, e.g. retweets deleted with their original (issue 12's copies). */
export function withRelation(spec: LayoutSpec, table: string, column: string, onDelete: Relation['onDelete']): LayoutSpec {
  const relations = spec.relations.map((r) => (r.table === table && r.column === column ? { ...r, onDelete } : r));
  if (!relations.some((r) => r.table === table && r.column === column)) throw new Error(`${spec.name} has no relation ${table}.${column}`);
  return { ...spec, relations };
}
