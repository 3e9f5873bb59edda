import type BetterSqlite3 from 'better-sqlite3';
import type { Config } from '../config/load.js';
import { ConfigError, StoreError } from '../errors.js';
import { compareIds, type Id, type JobType } from '../types.js';
import { ChangeCounter, type ChangeCause, type ChangeCount, type ChangeKind } from './changeCounts.js';
import type { Db } from './open.js';
import { quoteIdent, quoteLiteral, SchemaInfo, tokenize } from './schemaInfo.js';
import { prepareSweeps } from './sweeps.js';
import type { FtsDelete, GeoScrub, IdEncoding, Relation, TableTarget, Target } from './target.js';

export type { IdEncoding } from './target.js';
export type { ChangeCount } from './changeCounts.js';

type Tables = Config['store']['tables'];
type Statement = BetterSqlite3.Statement<unknown[]>;

/**
 * A set of IDs as one bound parameter: a JSON array expanded by `json_each` inside the statement (one bind for a whole
 * chunk). IDs stay decimal text end to end: JSON numbers for INTEGER columns (SQLite's JSON reads them as exact 64-bit
 * integers), JSON strings for TEXT columns (where a number would never equal the stored text).
 */
export interface IdList {
  readonly json: string;
  readonly size: number;
}

export function idList(ids: readonly Id[], encoding: IdEncoding): IdList {
  const json = encoding === 'number' ? `[${ids.join(',')}]` : JSON.stringify(ids);
  return { json, size: ids.length };
}

/**
 * The statements the reconciler runs on one type's table, one row per call, each returning the rows of that table
 * changed (so 0 means not found), or null for a mark or scrub queued with others (counted by drainFound). The
 * reconciler calls them over a batch sorted by ID: measured on 1M rows, one sorted pass of per-row statements beat one
 * set-based `IN (SELECT …)` statement per action and reason, because each extra pass walks the whole table's pages
 * again. Every row any of them changes, in any table, is counted in `changes`.
 */
export interface ContentStatements {
  readonly type: JobType;
  /** Stored rows of this type: the safety gate's denominator for a plain `apply`. */
  countRows(): number;
  /** How many of the IDs are stored (the safety gate's exact count). */
  countExisting(ids: readonly Id[]): number;
  /**
   * Deletes the row after what references it (FK children, link rows, self-references, and for users the author's
   * tweets with theirs), all in the caller's transaction, and tombstones the ID and every row of a mapped table
   * deleted with it (cs_tombstones: type, ID, reason, time; no content), in that same transaction.
   */
  delete(id: Id, reason: string, at: string, stop?: () => boolean): number;
  /**
   * Of the last `delete`: the author's tweets a user's deletion removed (the cascade), and whether it is complete. A
   * row with many dependents has them deleted (or their reference cleared) in pieces first, asking `stop()` after each;
   * when it says stop, the row is left for the next call (incomplete, 0 returned), which goes on with what is left.
   */
  readonly lastDelete: { cascaded: number; complete: boolean };
  /**
   * Marks the row; returns 1 when found, 0 when not, or null when the mark is queued (see prepareContentStatements):
   * whether it found the row is then counted by drainFound.
   */
  mark(id: Id, state: string, reason: string, at: string): number | null;
  /**
   * Geo columns to NULL and geo paths out of the JSON columns; for users (no geo of their own) it finds the row.
   * Returns as `mark` does.
   */
  scrubGeo(id: Id, reason: string): number | null;
  /** Cascades from users onto the tweets they wrote; null when the cascade is off. */
  readonly cascade: CascadeStatements | null;
  /**
   * The records the batch applies next, in ID order, from the first of this transaction: where deletions are queued
   * (prepareQueuedDelete), what they need to know about the rows is looked up per window of them, not per record.
   */
  lookahead(records: readonly Ahead[]): void;
  /**
   * At the end of each transaction, before drainChanges: runs the queued deletions, then deletes the copies
   * embedded-JSON rules find of the tweets this transaction deleted, removes (or geo-scrubs) embedded copies, deletes
   * orphans (src/store/sweeps.ts). With `stop`, the embedded copies are cut by time: what is left is committed as
   * pending with the transaction (false returned), and the next call goes on with it.
   */
  sweep(at: string, stop?: () => boolean): boolean;
  /** Whether a sweep cut by time is pending in the store: a transaction that only sweeps goes on with it. */
  sweepPending(): boolean;
  /**
   * Rows changed since the last call, per table, cause and kind (trigger writes included); resets the count. Queued
   * deletions (see prepareQueuedDelete) are run first: call it in the transaction, before its commit.
   */
  drainChanges(): ChangeCount[];
  /**
   * What the queued marks and scrubs found since the last call, per reason: call it after `sweep` (which runs them),
   * in the same transaction.
   */
  drainFound(): FoundCount[];
  /** A failed COMMIT of a batch, explained when a deferred FOREIGN KEY failed (explainCommitFailure). */
  explainCommitFailure(err: unknown): unknown;
}

/** Of the records of one reason and action whose statements ran as a group: how many there were and found their row. */
export interface FoundCount {
  reason: string;
  taken: 'mark' | 'scrub_geo';
  records: number;
  found: number;
}

export interface CascadeStatements {
  /** Stored tweets: the safety gate's denominator for deletions that cascade from users. */
  countTweets(): number;
  /** Tweets written by any of these authors: what deleting them would delete too. */
  countByAuthors(authors: readonly Id[]): number;
  /**
   * Deletes the author's tweets (each with its dependents, as a tweet's own deletion does) one at a time, asking
   * `stop()` after each, so that the caller can commit and go on in a new transaction: one author may have written
   * a large share of the store. Each tweet goes whole, so a cut (or a crash) between two leaves a valid store, and
   * the next call simply finds fewer tweets. `complete` is true once the author has none left.
   */
  deleteTweetsOfAuthor(author: Id, reason: string, at: string, stop: () => boolean): { deleted: number; complete: boolean };
  /**
   * Marks the author's tweets, except those carrying a mark of their own (see the SQL), in pieces of consecutive tweet
   * IDs after `after` (null: from the first), asking `stop()` after each piece: one author may have written a large
   * share of the store. `after` of the result is the last tweet ID of the last piece done, null once the author has
   * no tweets left after it; the caller commits it with the count and resumes from it.
   */
  markByAuthor(author: Id, state: string, reason: string, at: string, after: Id | null, stop: () => boolean): AuthorPieces;
  /** The geo scrub of the author's tweets, in pieces as markByAuthor. */
  scrubGeoByAuthor(author: Id, after: Id | null, stop: () => boolean): AuthorPieces;
}

/** What a pieced statement over an author's tweets did: rows changed, and where it stopped (null: it is complete). */
export interface AuthorPieces {
  changed: number;
  after: Id | null;
}

/** A cascaded mark's reason starts with this, so the tweets cycle can tell its own marks from them. */
export const CASCADE_REASON_PREFIX = 'author_';
/** A copy's tombstone reason (a retweet deleted with its original): copy_<the original's reason>. */
export const COPY_REASON_PREFIX = 'copy_';

/** Marks that are refetch hints, not compliance states: a later cycle never clears them and views still show the row. */
export const KEPT_STATES = ['edited'] as const;

const NULLABLE_TWEET_KEYS = ['authorId', 'geoLat', 'geoLon', 'placeId', 'rawJson', 'complianceState', 'complianceReason', 'complianceAt'];

/**
 * Checks that every table and column the mapping names exists in the real schema, so a wrong mapping fails at start
 * with the config key to change, not halfway through a file.
 */
export function checkContentSchema(db: Db, tables: Tables, type: JobType, cascadeUsers: boolean): void {
  if (type === 'users' && cascadeUsers && tables.tweets.authorId === null) {
    throw new ConfigError('reconcile.cascadeUsers is on but store.tables.tweets.authorId is null, so a user\'s tweets cannot be found', {
      hint: 'map store.tables.tweets.authorId to the column holding the author ID, or set reconcile.cascadeUsers to false',
    });
  }
  const schema = new SchemaInfo(db);
  const check = (key: 'tweets' | 'users') => {
    const mapping = tables[key] as Record<string, unknown>;
    const table = mapping.table as string;
    const columns = schema.columns(table);
    if (!columns.length) {
      throw new StoreError('store_schema', `the store has no table "${table}" (store.tables.${key}.table)`, {
        hint: `set store.tables.${key}.table to the table holding ${key}, or run \`compliance-sync migrate\` on a new store`,
      });
    }
    const has = (column: string) => columns.some((c) => c.name.toLowerCase() === column.toLowerCase());
    const missing = (configKey: string, column: string, nullable: boolean) =>
      new StoreError('store_schema', `table "${table}" has no column "${column}" (store.tables.${key}.${configKey})`, {
        hint: configKey.startsWith('compliance')
          ? `set complianceState, complianceReason and complianceAt of store.tables.${key} to null to keep marks in the ledger (table cs_marks, views cs_visible_*), or add the columns`
          : `set store.tables.${key}.${configKey} to the column's real name${nullable ? ', or to null if the store has no such column' : ''}`,
      });
    for (const [configKey, value] of Object.entries(mapping)) {
      if (configKey === 'table' || value === null) continue;
      if (typeof value === 'string') {
        if (!has(value)) throw missing(configKey, value, key === 'users' ? configKey.startsWith('compliance') : NULLABLE_TWEET_KEYS.includes(configKey));
      } else if (configKey === 'geoColumns') {
        (value as string[]).forEach((column, i) => {
          if (!has(column)) throw missing(`geoColumns[${i}]`, column, false);
        });
      } else if (configKey === 'geoJson') {
        (value as { column: string }[]).forEach((entry, i) => {
          if (!has(entry.column)) throw missing(`geoJson[${i}].column`, entry.column, false);
        });
      }
    }
  };
  check(type);
  if (type === 'users' && cascadeUsers) check('tweets');
}

const IN_LIST = 'IN (SELECT value FROM json_each(?))';
const MARK_PREFIX_TEST = (reason: string) => `substr(${reason}, 1, ${CASCADE_REASON_PREFIX.length}) = '${CASCADE_REASON_PREFIX}'`;

/** Rows of one table chosen by one bound key: `column = ?` when the key is that column's value, else any condition. */
interface Where {
  sql: string;
  /** The column compared directly with the key (null when the condition is a subquery). */
  column: string | null;
  encoding: IdEncoding;
  /** The key is a JSON array of IDs (IN_LIST), not one ID: the same steps delete a whole group of rows. */
  set?: boolean;
  /** The key is the list a collecting step made (Step.collect), not the group's own IDs. */
  list?: number;
}

/** One statement of a row's deletion, with the cell its changes are counted in (null: not a content row). */
interface Step {
  sql: string;
  encoding: IdEncoding;
  table: string;
  cause: ChangeCause;
  kind: ChangeKind;
  uncounted?: boolean;
  /** A cs_tombstones insert: bound with (reason, at, key) instead of (key). */
  tombstone?: boolean;
  /** Bound with the IDs a collecting step listed (Step.collect) instead of the group's own. */
  list?: number;
  /**
   * Not a write: a query whose rows (an ID, and the ID of the step's own list it was found by) make list number
   * `collect`, which later steps are bound with. In a grouped deletion the copies of the group's rows (retweets in the
   * same table) are listed so, once, instead of each of the copies' half a dozen statements finding them again
   * through a subquery over the group (a search of the pointer's index per ID); with no copies, those steps are skipped.
   */
  collect?: number;
  /** Must not run twice on the same rows: an FTS index's entries taken out again while the row is there corrupt it. */
  once?: boolean;
}

/** Prepares, once per apply run, every statement for one type from the resolved target. */
export function prepareContentStatements(
  db: Db,
  target: Target,
  type: JobType,
  options: { cascadeUsers: boolean; runId: number | null; /** false for a dry run: the store may have no ledger yet. */ tombstones?: boolean },
): ContentStatements {
  const t = target[type];
  const table = quoteIdent(t.table);
  const id = quoteIdent(t.id);
  const counter = new ChangeCounter();
  const count = (sql: string) => {
    const stmt = db.prepare(sql).pluck();
    return (...params: unknown[]) => Number(stmt.get(...params) as bigint);
  };
  const bind = (encoding: IdEncoding) => (encoding === 'number' ? (key: Id) => BigInt(key) : (key: Id) => key);
  /** A per-row statement whose last parameter is an ID, bound as its column wants it (never as a JS number). */
  const byId = (sql: string, encoding: IdEncoding) => {
    const stmt = db.prepare(sql);
    const key = bind(encoding);
    return (k: Id, ...params: unknown[]) => stmt.run(...params, key(k)).changes;
  };
  const countIn = count(`SELECT count(*) FROM ${table} WHERE ${id} ${IN_LIST}`);
  const existsStmt = db.prepare(`SELECT 1 FROM ${table} WHERE ${id} = ?`).pluck();
  const bindOwn = bind(t.idEncoding);
  const exists = (key: Id) => (existsStmt.get(bindOwn(key)) === undefined ? 0 : 1);

  const markCell = counter.cell(t.table, 'result', 'marked');
  const markRow = t.marks
    ? byId(`UPDATE ${table} SET ${quoteIdent(t.marks.state)} = ?, ${quoteIdent(t.marks.reason)} = ?, ${quoteIdent(t.marks.at)} = ? WHERE ${id} = ?`, t.idEncoding)
    : byId(
        `INSERT INTO cs_marks (type, id, state, reason, at, run_id) SELECT '${type}', ${id}, ?, ?, ?, ${options.runId ?? 'NULL'} FROM ${table} WHERE ${id} = ? LIMIT 1
         ON CONFLICT (type, id) DO UPDATE SET state = excluded.state, reason = excluded.reason, at = excluded.at, run_id = excluded.run_id`,
        t.idEncoding,
      );

  const tw = target.tweets;
  const scrubSet = scrubAssignments(target.geo);
  // Only rows the scrub changes are updated: an UPDATE that changes nothing still fires the store's UPDATE triggers
  // (a collector's full-text index re-indexes the row's text) and is counted as a change.
  const scrubNeeded = scrubCondition(target.geo);
  const scrubCell = counter.cell(tw.table, 'result', 'updated');
  const scrubRow = type === 'tweets' && scrubSet ? byId(`UPDATE ${quoteIdent(tw.table)} SET ${scrubSet} WHERE ${quoteIdent(tw.id)} = ? AND ${scrubNeeded}`, t.idEncoding) : null;
  // Full-text indexes holding a scrubbed column that no UPDATE trigger renews: the row's entry goes out with its old
  // values and comes back with the new ones.
  const ftsScrubs = scrubSet ? target.ftsScrubs : [];
  const entriesOut = ftsScrubs.map((f) => byId(ftsRemove(f, tw.table, `${quoteIdent(tw.id)} = ? AND ${scrubNeeded}`), tw.idEncoding));
  const entriesIn = ftsScrubs.map((f) => byId(ftsAdd(f, tw.table, `${quoteIdent(tw.id)} = ?`), tw.idEncoding));
  const scrubTweet =
    scrubRow && ftsScrubs.length
      ? (key: Id) => {
          for (const out of entriesOut) out(key);
          const n = scrubRow(key);
          if (n) for (const into of entriesIn) into(key);
          return n;
        }
      : scrubRow;
  // Which tweets were scrubbed (ID and time, no content), in the scrub's own transaction: `audit` checks them later.
  const recordScrubs = scrubSet && options.tombstones !== false;
  const scrubRecordSql = (where: string, distinct = false) =>
    `INSERT INTO cs_scrubs (type, id, scrubbed_at, run_id) SELECT ${distinct ? 'DISTINCT ' : ''}'tweets', ${quoteIdent(tw.id)}, coalesce((SELECT as_of FROM cs_apply_runs WHERE id = ${options.runId ?? 'NULL'}), strftime('%Y-%m-%dT%H:%M:%fZ')), ${options.runId ?? 'NULL'}
     FROM ${quoteIdent(tw.table)} WHERE ${where} ON CONFLICT (type, id) DO UPDATE SET scrubbed_at = excluded.scrubbed_at, run_id = excluded.run_id`;
  const recordScrub = type === 'tweets' && recordScrubs ? byId(scrubRecordSql(`${quoteIdent(tw.id)} = ?`), t.idEncoding) : () => 0;

  const lastDelete = { cascaded: 0, complete: true };
  const tombstoneRun = options.tombstones === false ? undefined : options.runId;
  const deleteRow = prepareDelete(db, target, t, counter, lastDelete, tombstoneRun);
  const queued = prepareQueuedDelete(db, type, target, t, counter, tombstoneRun, deleteRow, () => {
    marks?.flush();
    scrubs?.flush();
  });
  // Where deletions are queued, ledger marks and geo scrubs are queued too: one statement per group of IDs (of one
  // state, reason and time) instead of one per record. They run before any queued deletion does, as per row a mark or
  // scrub came first, or touched no row the queued deletions touch (settleQueued). Whether each record found its row
  // is not looked up (a search per record, a tenth of a 200k foreign apply's SQL time: bench/README.md, "A foreign
  // layout"): each group's statement finds the rows, one per ID (DISTINCT: an ID column need not be unique), and its
  // changes are the group's found count (drainFound). It leaves out the rows the queued deletions delete as copies of
  // an earlier record's row (copiedAway), which per row were gone before the mark or scrub. A scrub that renews
  // full-text entries itself (ftsScrubs) stays per row: which rows its UPDATE changed decides the entries put back.
  const found: FoundCount[] = [];
  const foundIn = (reason: string, taken: FoundCount['taken'], records: number, n: number) => found.push({ reason, taken, records, found: n });
  const copiedAway = queued?.copiedAway ?? null;
  const notCopiedAway = copiedAway ? ` AND NOT (${copiedAway})` : '';
  /** Before a queued mark or scrub runs: copiedAway reads the queued IDs from a TEMP table. */
  const syncQueued = () => (copiedAway ? queued!.syncQueued() : undefined);
  const marks =
    queued && !t.marks
      ? writeQueue(
          db.prepare(
            `INSERT INTO cs_marks (type, id, state, reason, at, run_id) SELECT DISTINCT '${type}', ${id}, ?, ?, ?, ${options.runId ?? 'NULL'} FROM ${table} WHERE ${id} ${IN_LIST}${notCopiedAway}
             ON CONFLICT (type, id) DO UPDATE SET state = excluded.state, reason = excluded.reason, at = excluded.at, run_id = excluded.run_id`,
          ),
          (stmt, params, ids) => {
            syncQueued();
            const n = counter.add(markCell, stmt.run(...params, idList(ids, t.idEncoding).json).changes);
            foundIn(params[1]!, 'mark', ids.length, n);
          },
        )
      : null;
  const scrubs =
    queued && type === 'tweets' && scrubSet && !ftsScrubs.length
      ? (() => {
          const where = `${quoteIdent(tw.id)} ${IN_LIST}${notCopiedAway}`;
          // The IDs found: the scrub records' insert finds them, or (a dry run records none) a count.
          const findRows = recordScrubs ? db.prepare(scrubRecordSql(where, true)) : db.prepare(`SELECT count(DISTINCT ${quoteIdent(tw.id)}) FROM ${quoteIdent(tw.table)} WHERE ${where}`).pluck();
          const update = db.prepare(`UPDATE ${quoteIdent(tw.table)} SET ${scrubSet} WHERE ${where} AND ${scrubNeeded}`);
          return writeQueue(update, (stmt, params, ids) => {
            syncQueued();
            const json = idList(ids, t.idEncoding).json;
            const n = recordScrubs ? findRows.run(json).changes : Number(findRows.get(json));
            counter.add(scrubCell, stmt.run(json).changes);
            foundIn(params[0]!, 'scrub_geo', ids.length, n);
          });
        })()
      : null;
  const stored = queued ? (key: Id) => (queued.exists(key) ? 1 : 0) : exists;
  /** A statement about this row must see the queued deletions done first (an ID repeated in the batch). */
  const settle = queued ? (key: Id) => queued.settleFor(key) : () => false;
  /** The same before a queued mark or scrub: its statement leaves the copies out itself. */
  const settleQueued = queued ? (key: Id) => queued.settleQueued(key) : () => false;
  const deleteCopy = target.embeds.some((e) => e.action === 'copy')
    ? prepareSteps(db, target, tw, counter, deleteSteps(target, tw.table, { sql: `${quoteIdent(tw.id)} = ?`, column: tw.id, encoding: tw.idEncoding }, 'copy', tombstoneRun))
    : () => ({ own: 0, cascaded: 0 });
  const sweeps = prepareSweeps(db, target, counter, { deleteCopy: (key, reason, at) => void deleteCopy(key, reason, at), tombstones: tombstoneRun !== undefined });

  let cascade: CascadeStatements | null = null;
  if (type === 'users' && options.cascadeUsers && target.authorId) {
    const tweets = quoteIdent(tw.table);
    const authorCol = quoteIdent(target.authorId);
    const author = `${authorCol} = ?`;
    const authorEncoding = target.authorEncoding;
    const countTweets = count(`SELECT count(*) FROM ${tweets}`);
    const countByAuthors = count(`SELECT count(*) FROM ${tweets} WHERE ${authorCol} ${IN_LIST}`);
    // A tweet's own mark (set by the tweets cycle: suspended, protected…) outranks its author's: overwriting it would
    // let the users cycle's close-out clear a mark it did not set. `edited` is only a refetch hint, so it yields.
    const markOfAuthor = (where: string) =>
      tw.marks
        ? `UPDATE ${tweets} SET ${quoteIdent(tw.marks.state)} = @state, ${quoteIdent(tw.marks.reason)} = @reason, ${quoteIdent(tw.marks.at)} = @at` +
          ` WHERE (${quoteIdent(tw.marks.reason)} IS NULL OR ${MARK_PREFIX_TEST(quoteIdent(tw.marks.reason))} OR ${quoteIdent(tw.marks.state)} = 'edited') AND ${where}`
        : `INSERT INTO cs_marks (type, id, state, reason, at, run_id) SELECT 'tweets', ${quoteIdent(tw.id)}, @state, @reason, @at, ${options.runId ?? 'NULL'} FROM ${tweets} WHERE ${where}
           ON CONFLICT (type, id) DO UPDATE SET state = excluded.state, reason = excluded.reason, at = excluded.at, run_id = excluded.run_id
           WHERE ${MARK_PREFIX_TEST('cs_marks.reason')} OR cs_marks.state = 'edited'`;
    const markPieces = authorPieces(db, tweets, authorCol, tw, markOfAuthor);
    // Around each piece's scrub, the index entries no UPDATE trigger renews: out for every tweet of the piece (a piece's
    // rows cannot tell which the UPDATE will change), back in with their values after it.
    const scrubPieces = scrubSet
      ? authorPieces(db, tweets, authorCol, tw, (where) => `UPDATE ${tweets} SET ${scrubSet} WHERE ${where} AND ${scrubNeeded}`, {
          before: (where) => ftsScrubs.map((f) => ftsRemove(f, tw.table, where)),
          after: (where) => ftsScrubs.map((f) => ftsAdd(f, tw.table, where)),
        })
      : null;
    const recordScrubRange = recordScrubs
      ? db.prepare(scrubRecordSql(`${authorCol} = @author AND (@from IS NULL OR ${quoteIdent(tw.id)} > @from) AND (@upTo IS NULL OR ${quoteIdent(tw.id)} <= @upTo)`))
      : null;
    const bindTweet = bind(tw.idEncoding);
    const tweetWhere: Where = { sql: `${quoteIdent(tw.id)} = ?`, column: tw.id, encoding: tw.idEncoding };
    const deleteTweet = prepareSteps(db, target, tw, counter, deleteSteps(target, tw.table, tweetWhere, 'cascade', tombstoneRun));
    const tweetDependents = prepareDependentPieces(db, target, tw, tweetWhere, counter, tombstoneRun);
    // Integers come back as BigInt and become decimal text: an ID never passes through a JS number.
    const tweetsOfAuthor = db.prepare(`SELECT ${quoteIdent(tw.id)} FROM ${tweets} WHERE ${author} LIMIT 256`).pluck().safeIntegers(true);
    const bindAuthor = bind(authorEncoding);
    const deleteTweetsOfAuthor = (key: Id, reason: string, at: string, stop: () => boolean) => {
      let deleted = 0;
      for (;;) {
        const ids = tweetsOfAuthor.all(bindAuthor(key)) as (bigint | string)[];
        if (!ids.length) return { deleted, complete: true };
        for (const tweet of ids) {
          if (!tweetDependents(String(tweet) as Id, reason, at, stop).complete) return { deleted, complete: false };
          deleted += deleteTweet(String(tweet) as Id, reason, at).own;
          if (stop()) return { deleted, complete: false };
        }
      }
    };
    const cascadeMarkCell = counter.cell(tw.table, 'cascade', 'marked');
    const cascadeScrubCell = counter.cell(tw.table, 'cascade', 'updated');
    cascade = {
      countTweets: () => countTweets(),
      countByAuthors: (authors) => (authors.length ? countByAuthors(idList(authors, authorEncoding).json) : 0),
      deleteTweetsOfAuthor,
      markByAuthor: (key, state, reason, at, after, stop) => {
        const done = markPieces(bindAuthor(key), { state, reason, at }, after, stop);
        counter.add(cascadeMarkCell, done.changed);
        return done;
      },
      scrubGeoByAuthor: (key, after, stop) => {
        // Noted before the pieces: the author's tweets' embedded copies lose their geo at the sweep.
        if (after === null) sweeps?.scrubbedByAuthor(key);
        if (!scrubPieces) return { changed: 0, after: null };
        const done = scrubPieces(bindAuthor(key), {}, after, stop);
        // The author's tweets this call scrubbed: those after `after` up to where it stopped.
        recordScrubRange?.run({ author: bindAuthor(key), from: after === null ? null : bindTweet(after), upTo: done.after === null ? null : bindTweet(done.after) });
        counter.add(cascadeScrubCell, done.changed);
        return done;
      },
    };
  }

  const countRows = count(`SELECT count(*) FROM ${table}`);
  const tally = prepareTriggerTally(db, target.triggerTargets);
  const columnMarked = [target.tweets, target.users].filter((m) => m.marks).map((m) => m.table);
  return {
    type,
    countRows: () => {
      queued?.flush();
      return countRows();
    },
    countExisting: (ids) => {
      queued?.flush();
      return ids.length ? countIn(idList(ids, t.idEncoding).json) : 0;
    },
    delete: queued
      ? (key, reason, at, stop) => {
          lastDelete.cascaded = 0;
          lastDelete.complete = true;
          return queued.delete(key, reason, at, stop);
        }
      : deleteRow,
    lastDelete,
    // Queued marks and scrubs look nothing up.
    lookahead: (records) => queued?.lookahead(records.filter((r) => (r.taken === 'mark' ? !marks : r.taken === 'scrub_geo' ? !scrubs : true))),
    mark: (key, state, reason, at) => {
      if (!marks) return settle(key) ? 0 : counter.add(markCell, markRow(key, state, reason, at));
      if (settleQueued(key)) return 0;
      // A second mark of the row (an ID repeated in the batch) comes after the first.
      if (marks.has(key)) marks.flush();
      marks.add(key, [state, reason, at]);
      return null;
    },
    // A store without geo columns or JSON to scrub (and the users table) has nothing to scrub: finding the row is all.
    scrubGeo: (key, reason) => {
      const gone = scrubs ? settleQueued(key) : settle(key);
      if (type === 'tweets') sweeps?.scrubbed(key);
      if (gone) return 0;
      if (!scrubTweet) return stored(key);
      if (scrubs) {
        if (scrubs.has(key)) scrubs.flush();
        scrubs.add(key, [reason]);
        return null;
      }
      recordScrub(key);
      // A stored row with nothing to clear is found all the same (and not counted as updated).
      return counter.add(scrubCell, scrubTweet(key)) || stored(key);
    },
    cascade,
    explainCommitFailure: (err) => explainCommitFailure(err, db, target, type),
    sweep: (at, stop) => {
      // The sweeps act on what the transaction deleted: the queued deletions must have run.
      queued?.flush();
      return sweeps?.run(at, stop) ?? true;
    },
    sweepPending: () => sweeps?.pending() ?? false,
    drainChanges: () => {
      queued?.flush();
      const changes = counter.drain();
      if (tally) changes.push(...tally.drain(changes, columnMarked));
      return changes;
    },
    drainFound: () => {
      queued?.flush();
      return found.splice(0);
    },
  };
}

/**
 * An update of one author's tweets (`sqlFor` makes it from a WHERE condition with @author, @after and @upTo) run in
 * pieces of consecutive tweet IDs, (after, upTo], upTo found by an index walk of a piece's row count: a cut or a
 * crash between two pieces leaves whole pieces done, and the call resumed with the last piece's end goes on from there.
 * Pieces grow from 64 to 4,096 tweets while `stop()` says there is time; the last one runs to the author's last
 * tweet (including one written meanwhile, as a single UPDATE would). The close-out's clearing of cascaded marks
 * (src/store/marks.ts) uses it too.
 */
export function authorPieces(
  db: Db,
  tweets: string,
  authorCol: string,
  tw: TableTarget,
  sqlFor: (where: string) => string,
  /** Statements run on the same rows before and after each piece's update (not counted). */
  around: { before: (where: string) => string[]; after: (where: string) => string[] } = { before: () => [], after: () => [] },
): (author: unknown, params: Record<string, unknown>, after: Id | null, stop: () => boolean) => AuthorPieces {
  const id = quoteIdent(tw.id);
  const piece = (where: string) => {
    const update = db.prepare(sqlFor(where));
    const before = around.before(where).map((sql) => db.prepare(sql));
    const after = around.after(where).map((sql) => db.prepare(sql));
    return {
      run: (bound: Record<string, unknown>) => {
        for (const stmt of before) stmt.run(bound);
        const result = update.run(bound);
        for (const stmt of after) stmt.run(bound);
        return result;
      },
    };
  };
  const first = piece(`${authorCol} = @author AND ${id} <= @upTo`);
  const next = piece(`${authorCol} = @author AND ${id} > @after AND ${id} <= @upTo`);
  const walkFirst = db.prepare(`SELECT ${id} FROM ${tweets} WHERE ${authorCol} = @author ORDER BY ${id} LIMIT 1 OFFSET @skip`);
  const walkNext = db.prepare(`SELECT ${id} FROM ${tweets} WHERE ${authorCol} = @author AND ${id} > @after ORDER BY ${id} LIMIT 1 OFFSET @skip`);
  const walkLast = db.prepare(`SELECT max(${id}) FROM ${tweets} WHERE ${authorCol} = @author`);
  // Integers come back as BigInt and are bound back as such: an ID never passes through a JS number.
  for (const walk of [walkFirst, walkNext, walkLast]) walk.pluck().safeIntegers(true);
  const bindTweet = tw.idEncoding === 'number' ? (key: Id) => BigInt(key) : (key: Id) => key;
  return (author, params, after, stop) => {
    let changed = 0;
    let from: bigint | string | null = after === null ? null : bindTweet(after);
    for (let rows = 64; ; rows = Math.min(rows * 2, 4096)) {
      const walked = (from === null ? walkFirst.get({ author, skip: rows - 1 }) : walkNext.get({ author, after: from, skip: rows - 1 })) as bigint | string | undefined;
      const upTo = walked ?? (walkLast.get({ author }) as bigint | string | null);
      // Nothing after `from` (the last piece ended at the author's last tweet, or there are none).
      if (upTo === null || (from !== null && walked === undefined && compareKeys(upTo, from) <= 0)) return { changed, after: null };
      changed += (from === null ? first.run({ ...params, author, upTo }) : next.run({ ...params, author, after: from, upTo })).changes;
      from = upTo;
      if (walked === undefined) return { changed, after: null };
      if (stop()) return { changed, after: String(upTo) as Id };
    }
  };
}

/** SQLite's order of two keys of one column (both integers, or both text). */
function compareKeys(a: bigint | string, b: bigint | string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The deletion of one row as a list of statements in a valid order: for each relation referencing the table, its
 * rows first (deleted, recursively with their own dependents, or their reference cleared), then the row's ledger
 * mark, then the row. The default schema has no relations, so its deletion is the one DELETE (the fast path).
 */
function prepareDelete(
  db: Db,
  target: Target,
  t: TableTarget,
  counter: ChangeCounter,
  lastDelete: { cascaded: number; complete: boolean },
  /** undefined: no tombstones (a dry run). */
  runId: number | null | undefined,
): (key: Id, reason: string, at: string, stop?: () => boolean) => number {
  const where: Where = { sql: `${quoteIdent(t.id)} = ?`, column: t.id, encoding: t.idEncoding };
  const run = prepareSteps(db, target, t, counter, deleteSteps(target, t.table, where, 'result', runId));
  const dependents = prepareDependentPieces(db, target, t, where, counter, runId);
  return (key, reason, at, stop = () => false) => {
    const pieces = dependents(key, reason, at, stop);
    lastDelete.complete = pieces.complete;
    lastDelete.cascaded = pieces.cascaded;
    if (!pieces.complete) return 0;
    const { own, cascaded } = run(key, reason, at);
    lastDelete.cascaded += cascaded;
    return own;
  };
}

/**
 * Writes of one kind (ledger marks, geo scrubs) queued per group of equal parameters, each group one statement over its
 * IDs when run; at most DELETE_GROUP IDs in all.
 */
function writeQueue(stmt: Statement, write: (stmt: Statement, params: readonly string[], ids: Id[]) => void) {
  const groups = new Map<string, { params: readonly string[]; ids: Id[] }>();
  const queued = new Set<Id>();
  const flush = () => {
    if (!queued.size) return;
    const all = [...groups.values()];
    groups.clear();
    queued.clear();
    for (const group of all) write(stmt, group.params, group.ids);
  };
  return {
    has: (key: Id) => queued.has(key),
    add(key: Id, params: readonly string[]) {
      const name = params.join('\u0000');
      const ids = groups.get(name)?.ids;
      if (ids) ids.push(key);
      else groups.set(name, { params, ids: [key] });
      queued.add(key);
      if (queued.size >= DELETE_GROUP) flush();
    },
    flush,
  };
}

/**
 * Deletions queued before their statements run, at most this many: each step then runs once for all of them. Each
 * statement that fires a collector's FTS5 trigger writes a segment, so fewer, larger groups write fewer (measured on
 * twitter-to-sqlite: 512 instead of 256 took 5% off a 200k apply, and its transactions still held the lock at most
 * 186 ms of the default 200; bench/README.md, "A foreign layout").
 */
const DELETE_GROUP = 512;
/** …and their direct dependents at most about this many (each statement over a group then stays short). */
const DELETE_GROUP_DEPENDENTS = 1024;

interface QueuedDelete {
  /**
   * Queues the row's deletion (its tombstone included); returns 1 when the row is stored, as the deletion will find it.
   * A row with a piece or more of dependents is deleted at once by the per-row deletion (with `stop`, lastDelete).
   */
  delete(key: Id, reason: string, at: string, stop?: () => boolean): number;
  /** Runs the queued deletions. */
  flush(): void;
  /**
   * Before a statement about this row: true when the queued deletions delete the row (it is queued, or a copy of a
   * queued row), so that, per row, the statement would find nothing; else runs them if one of them would change what
   * the statement finds.
   */
  settleFor(key: Id): boolean;
  /**
   * settleFor, before a queued mark or scrub: true when the row itself is queued for deletion. Its statement leaves
   * out the rows in `copiedAway` itself, and runs before the queued deletions, which delete no row but the queued
   * ones and their copies: nothing needs to run first. Looks nothing up.
   */
  settleQueued(key: Id): boolean;
  /**
   * A condition on the table's row (null: nothing deletes rows of this table as copies): true for a row that a queued
   * deletion deletes as a copy of a record before it in ID order. Call syncQueued before a statement using it runs.
   */
  readonly copiedAway: string | null;
  /** Writes the IDs queued since the last call to the TEMP table copiedAway reads. */
  syncQueued(): void;
  /** Whether the row is stored (a queued deletion of it not run yet: still stored). */
  exists(key: Id): boolean;
  /** The batch's coming records (see ContentStatements.lookahead). */
  lookahead(records: readonly Ahead[]): void;
}

/** A record the batch is about to apply: its ID and what is done to the row. */
export interface Ahead {
  readonly id: Id;
  readonly taken: string;
}

/**
 * The deletion of rows that have relations, run for a group of rows at a time: each step (pointers cleared, link rows
 * deleted, tombstones, ledger marks, the rows) is one statement over the group's IDs instead of one per row. Measured
 * on twitter-to-sqlite (bench/README.md, "A foreign layout"): most per-row steps find nothing, yet each costs a
 * statement, and every statement that fires an FTS5 trigger first flushes the index's pending changes to a new
 * segment (FTS5 does so at each statement savepoint), so per row the collector's index took one tiny segment, and
 * its merges, per deleted row. The queue is run before anything could see it half done: when it is full, before the
 * changes are drained (so inside the caller's transaction, before its commit), and before a statement about a row
 * whose deletion would delete a queued row (its copy). A record about a row the queue deletes (queued, or a copy of
 * a queued row) finds nothing, as per row. The default schema's deletion (tombstone and
 * row) stays per row: with no relations there is nothing to gain. A users deletion with the cascade, or a store whose
 * triggers write the table itself, stays per row too, so what each deletion finds is exactly what it would per row.
 */
function prepareQueuedDelete(
  db: Db,
  type: JobType,
  target: Target,
  t: TableTarget,
  counter: ChangeCounter,
  runId: number | null | undefined,
  perRow: (key: Id, reason: string, at: string, stop?: () => boolean) => number,
  /** Runs other queued writes (marks, scrubs) that per row would come before any deletion run now. */
  beforeRun: () => void,
): QueuedDelete | null {
  const steps = deleteSteps(target, t.table, { sql: `${quoteIdent(t.id)} ${IN_LIST}`, column: t.id, encoding: t.idEncoding, set: true }, 'result', runId);
  if (steps.length <= 2 || steps.some((s) => s.cause === 'cascade') || target.triggerTargets.some((table) => same(table, t.table))) return null;
  // Relations that delete rows of this same table (copies): a queued row may take another queued row with it.
  const selfDeleting = (target.relations.get(t.table.toLowerCase()) ?? []).filter((r) => same(r.childTable, t.table) && r.action !== 'set_null' && r.action !== 'set_default');
  if (selfDeleting.some((r) => !same(r.parentColumn, t.id))) return null;
  // A row is a copy the queue deletes when it points at a queued ID through a self-deleting relation, and that ID's
  // record came first: the batch is applied in ID order, so its ID is the smaller (doomed, in SQL). A row pointing at
  // a later record's ID was marked or scrubbed before that deletion, as per row.
  const own = quoteIdent(t.id);
  // The queued IDs it reads are kept in a TEMP table, written as they are needed and emptied when the queue runs: a
  // JSON list bound instead was built into a temporary index by every statement, which doubled the marks' time.
  const queuedTable = `cs_queued_${type}`;
  // Its column has the IDs' type, so that the IN below searches its key (with another affinity SQLite copies the
  // table into a temporary index per statement again).
  if (selfDeleting.length) db.exec(`DROP TABLE IF EXISTS temp.${queuedTable}; CREATE TEMP TABLE ${queuedTable} (id ${t.idEncoding === 'number' ? 'INTEGER' : 'TEXT'} PRIMARY KEY)`);
  const writeQueued = selfDeleting.length ? db.prepare(`INSERT OR IGNORE INTO temp.${queuedTable} (id) SELECT value FROM json_each(?)`) : null;
  const clearQueued = selfDeleting.length ? db.prepare(`DELETE FROM temp.${queuedTable}`) : null;
  let synced = 0;
  const copiedAway = selfDeleting.length
    ? selfDeleting
        .map((r) => {
          const column = quoteIdent(r.childColumn);
          const pointer = castId(column, r.childEncoding, t.idEncoding);
          const before = t.idEncoding === 'number' ? `${pointer} < ${own}` : `(length(${pointer}) < length(${own}) OR (length(${pointer}) = length(${own}) AND ${pointer} < ${own}))`;
          return `(${column} IS NOT NULL AND ${pointer} IN (SELECT id FROM temp.${queuedTable}) AND ${before})`;
        })
        .join(' OR ')
    : null;
  // What the queue asks about a row: whether it is stored, what it points at through the self-deleting relations, and
  // (for a deletion) its direct dependents, per relation. Per row that was two statements per record
  // (bench/README.md, "A foreign layout"); here it is two per window of the batch's coming records (lookahead: its
  // deletions, and marks and scrubs not queued themselves), each looking the window's IDs up by index inside SQLite.
  // What was looked up stays true until rows of the store change: the queue's statements run (run, perRow) and forget
  // it, and the row asked about next is looked up again, with the rest of its window. The IDs are bound as one JSON list in the table's encoding; a relation whose column holds
  // the other encoding gets them cast (exact both ways for decimal 64-bit IDs). A row with a piece or more of direct
  // dependents is deleted by itself (prepareDependentPieces cuts them by reconcile.maxLockMs), and a group holds at
  // most DELETE_GROUP_DEPENDENTS; only rows with some are returned.
  const asChild = (encoding: IdEncoding) => castId('j.value', t.idEncoding, encoding);
  const direct = (target.relations.get(t.table.toLowerCase()) ?? []).map((r) => ({
    table: r.childTable,
    /** The relation's rows of the ID j.value, as a condition on the child table's alias `c`. */
    on: same(r.parentColumn, t.id)
      ? `c.${quoteIdent(r.childColumn)} = ${asChild(r.childEncoding)}`
      : `c.${quoteIdent(r.childColumn)} IN (SELECT ${quoteIdent(r.parentColumn)} FROM ${quoteIdent(t.table)} WHERE ${quoteIdent(t.id)} = j.value)`,
  }));
  // Counted in one pass: each relation's index searched per ID and its matches listed (UNION ALL), then grouped. Half
  // the time of a bounded count per ID and relation (bench/README.md, "A foreign layout"). The listing stops after
  // DEPENDENTS_LISTED rows, so a row with a million dependents costs no more than that; a window that reaches it is
  // counted again per ID and relation, each count stopping at a piece (counts.each).
  const counts = direct.length
    ? {
        listed: db
          .prepare(
            `SELECT k${direct.map((_, i) => `, sum(r = ${i})`).join('')} FROM (${direct
              .map((d, i) => `SELECT j.key AS k, ${i} AS r FROM json_each(@ids) AS j CROSS JOIN ${quoteIdent(d.table)} AS c ON ${d.on}`)
              .join(' UNION ALL ')} LIMIT ${DEPENDENTS_LISTED}) GROUP BY k`,
          )
          .raw()
          .safeIntegers(false),
        each: db
          .prepare(
            `SELECT * FROM (SELECT j.key${direct.map((d, i) => `, (SELECT count(*) FROM (SELECT 1 FROM ${quoteIdent(d.table)} AS c WHERE ${d.on} LIMIT ${DEPENDENT_PIECE})) AS c${i}`).join('')} FROM json_each(?) AS j)
             WHERE ${direct.map((_, i) => `c${i}`).join(' + ')} > 0`,
          )
          .raw()
          .safeIntegers(false),
      }
    : null;
  // CROSS JOIN: the list is the outer loop, each ID one index search in the table.
  const probeAll = db
    .prepare(`SELECT ${['j.key', ...selfDeleting.map((r) => `t.${quoteIdent(r.childColumn)}`)].join(', ')} FROM json_each(?) AS j CROSS JOIN ${quoteIdent(t.table)} AS t ON t.${quoteIdent(t.id)} = j.value`)
    .raw()
    .safeIntegers(true);
  /** counts: null when the row was looked up for a mark or scrub only. */
  type Facts = { row: unknown[] | undefined; counts: number[] | null };
  const none = direct.map(() => 0);
  let ahead: readonly Ahead[] = [];
  let cursor = 0;
  const facts = new Map<Id, Facts>();
  const lookUp = (window: readonly Ahead[]) => {
    facts.clear();
    for (const r of window) if (!facts.has(r.id)) facts.set(r.id, { row: undefined, counts: null });
    for (const found of probeAll.all(idList(window.map((r) => r.id), t.idEncoding).json) as unknown[][]) {
      facts.get(window[Number(found[0])]!.id)!.row = [1, ...found.slice(1)];
    }
    const deleting = window.filter((r) => r.taken === 'delete');
    for (const r of deleting) facts.get(r.id)!.counts = none;
    if (counts && deleting.length) {
      const json = idList(deleting.map((r) => r.id), t.idEncoding).json;
      let found = counts.listed.all({ ids: json }) as number[][];
      let listed = 0;
      for (const row of found) for (let i = 1; i < row.length; i++) listed += row[i]!;
      if (listed >= DEPENDENTS_LISTED) found = counts.each.all(json) as number[][];
      for (const row of found) facts.get(deleting[row[0]!]!.id)!.counts = row.slice(1);
    }
  };
  const factsOf = (key: Id, deleting = false): Facts => {
    const known = facts.get(key);
    if (known && (!deleting || known.counts)) return known;
    while (cursor < ahead.length && compareIds(ahead[cursor]!.id, key) < 0) cursor++;
    // A row outside the batch's coming records (none today) is looked up alone.
    lookUp(ahead[cursor]?.id === key ? ahead.slice(cursor, cursor + DELETE_GROUP) : [{ id: key, taken: 'delete' }]);
    return facts.get(key)!;
  };
  let queuedDependents = 0;
  const pointers = (row: unknown[] | undefined) => (row ? row.slice(1).filter((v) => v !== null).map((v) => String(v) as Id) : []);

  const prepared = steps.map((step) => ({
    step,
    // A collecting step's IDs come back as BigInt (INTEGER) or text, never through a JS number.
    stmt: step.collect === undefined ? db.prepare(step.sql) : db.prepare(step.sql).raw().safeIntegers(true),
    cell: step.uncounted ? null : counter.cell(step.table, step.cause, step.kind),
  }));
  // A constraint that blocks a step stops the groups; their rows are then deleted one by one, which names the blocked
  // row. Where SQLite undoes exactly the failed statement and running a step again finds nothing left to do
  // (stepsReplayable), the steps before it stay done for every row of the groups. Else the groups run inside a
  // savepoint, undone before the rows go one by one: a savepoint journals every page the groups change first, 3.5–6%
  // of a 200k apply's CPU on twitter-to-sqlite's layout (bench/README.md, "A foreign layout").
  const undoable = prepared.some((p) => p.step.once) || !stepsReplayable(db, target, prepared.map((p) => p.step.table));
  const savepoint = db.prepare('SAVEPOINT cs_delete_group');
  const release = db.prepare('RELEASE cs_delete_group');
  const rollback = db.prepare('ROLLBACK TO cs_delete_group');
  type Group = { reason: string; at: string; ids: Id[]; lists: Map<IdEncoding, string> };
  const list = (group: Group, encoding: IdEncoding) => {
    let json = group.lists.get(encoding);
    if (json === undefined) group.lists.set(encoding, (json = idList(group.ids, encoding).json));
    return json;
  };
  /**
   * Step by step over all groups (one per reason): every group's pointers and dependents go before any group's rows,
   * as per row in ID order a row's pointer at an earlier deleted row is cleared before the row itself goes. Only the
   * tombstones carry the reason, so they run per group; every other step runs once over all groups' IDs (no queued
   * row is a copy of another, see doomed and entangled, so one statement over the union finds what one per group
   * would): each statement that deletes or updates the table fires the collector's FTS5 triggers, and so writes a
   * segment. A constraint that blocks runs them row by row (see `undoable`).
   */
  type Lists = { groups: Group[]; all: Group };
  const union = (groups: Group[]): Group => (groups.length === 1 ? groups[0]! : { reason: '', at: '', ids: groups.flatMap((g) => g.ids), lists: new Map() });
  /** A collecting step's rows (ID, the ID of `source` it was found by) as lists per group of `source`. */
  const collect = (rows: unknown[][], source: Lists): Lists => {
    const groups = source.groups.map((g) => ({ reason: g.reason, at: g.at, ids: [] as Id[], lists: new Map<IdEncoding, string>() }));
    const owner = new Map<string, number>();
    if (groups.length > 1) source.groups.forEach((g, i) => g.ids.forEach((key) => owner.set(key, i)));
    for (const [key, by] of rows) {
      const group = groups.length > 1 ? owner.get(String(by)) : 0;
      // Found through the list, so it points at one of its IDs: else its tombstone would carry another group's reason.
      if (group === undefined) throw new Error(`copy ${String(key)} points at ${String(by)}, which is not in the group it was found by`);
      groups[group]!.ids.push(String(key) as Id);
    }
    return { groups, all: union(groups) };
  };
  const run = (groups: Group[]) => {
    facts.clear();
    const lists = new Map<number, Lists>([[0, { groups, all: union(groups) }]]);
    const changed = prepared.map(() => 0);
    let blocked = false;
    if (undoable) savepoint.run();
    try {
      prepared.forEach((p, i) => {
        const source = lists.get(p.step.list ?? 0)!;
        if (p.step.collect !== undefined) lists.set(p.step.collect, collect(p.stmt.all(list(source.all, p.step.encoding)) as unknown[][], source));
        else if (!source.all.ids.length) return;
        else if (p.step.tombstone) for (const group of source.groups) changed[i] += group.ids.length ? p.stmt.run(group.reason, group.at, list(group, p.step.encoding)).changes : 0;
        else changed[i] = p.stmt.run(list(source.all, p.step.encoding)).changes;
      });
    } catch (err) {
      // A conflict clause or trigger that says ROLLBACK has ended the transaction: nothing of it may be written now.
      if (!((err as { code?: string }).code ?? '').startsWith('SQLITE_CONSTRAINT') || !db.inTransaction) throw err;
      blocked = true;
      if (undoable) {
        rollback.run();
        changed.fill(0);
      }
    }
    if (undoable) release.run();
    prepared.forEach((p, i) => p.cell && counter.add(p.cell, changed[i]!));
    if (blocked) for (const group of groups) for (const id of group.ids) perRow(id, group.reason, group.at);
  };

  const groups = new Map<string, Group>();
  const queuedIds = new Set<Id>();
  /** What the queued rows point at through the self-deleting relations (their originals). */
  const queuedPointers = new Set<Id>();
  const flush = () => {
    beforeRun();
    if (!queuedIds.size) return;
    const list = [...groups.values()];
    groups.clear();
    queuedIds.clear();
    if (synced) clearQueued!.run();
    synced = 0;
    queuedPointers.clear();
    queuedDependents = 0;
    run(list);
  };
  /**
   * Whether a queued deletion deletes this row with it (a copy of a queued row): per row that deletion came first, and
   * a statement about this row found nothing (its own tombstone, had it been deleted, gives way to the copy's). Such a
   * row is answered as not found without running anything: most retweets in a collector's store follow their original
   * in ID order, and running the queue for each of them had cut the groups to a third of their size.
   */
  const doomed = (row: unknown[] | undefined) => selfDeleting.length > 0 && pointers(row).some((p) => queuedIds.has(p));
  /** Whether this row's deletion would delete a queued row (its copy, queued before it) with it. */
  const entangled = (key: Id) => selfDeleting.length > 0 && queuedPointers.has(key);
  return {
    delete(key, reason, at, stop) {
      // A repeated ID: the first deletion takes the row; per row, the second would find nothing and change nothing.
      if (queuedIds.has(key) || doomed(factsOf(key).row)) return 0;
      const counts = factsOf(key, true).counts!;
      if (counts.some((n) => n >= DEPENDENT_PIECE)) {
        flush();
        facts.clear();
        return perRow(key, reason, at, stop);
      }
      let { row } = factsOf(key);
      if (entangled(key)) {
        flush();
        row = factsOf(key).row;
      }
      const group = `${reason}\u0000${at}`;
      const ids = groups.get(group)?.ids;
      if (ids) ids.push(key);
      else groups.set(group, { reason, at, ids: [key], lists: new Map() });
      queuedIds.add(key);
      for (const p of pointers(row)) queuedPointers.add(p);
      queuedDependents += counts.reduce((sum, n) => sum + n, 0);
      if (queuedIds.size >= DELETE_GROUP || queuedDependents >= DELETE_GROUP_DEPENDENTS) flush();
      return row ? 1 : 0;
    },
    flush,
    settleFor(key) {
      if (!queuedIds.size) return false;
      if (queuedIds.has(key) || doomed(factsOf(key).row)) return true;
      if (entangled(key)) flush();
      return false;
    },
    settleQueued: (key) => queuedIds.has(key),
    copiedAway,
    syncQueued() {
      if (synced === queuedIds.size) return;
      writeQueued!.run(idList([...queuedIds].slice(synced), t.idEncoding).json);
      synced = queuedIds.size;
    },
    exists: (key) => factsOf(key).row !== undefined,
    lookahead(records) {
      ahead = records;
      cursor = 0;
      facts.clear();
    },
  };
}

/**
 * Whether a group's steps that ran before one a constraint blocked can stay done while the rows go one by one from
 * there: SQLite undoes exactly the statement that failed, and each step run again changes nothing more. Not so where
 * the store's triggers write rows when ours change (target.triggerTargets: run again, they may write differently, a
 * new reference that per row the deletion would have met), where one of its triggers on a table the steps write
 * raises (RAISE(FAIL) keeps what the statement did so far), or where such a table declares ON CONFLICT FAIL (the same)
 * or ROLLBACK.
 */
function stepsReplayable(db: Db, target: Target, tables: readonly string[]): boolean {
  if (target.triggerTargets.length) return false;
  const schema = new SchemaInfo(db);
  const upper = (sql: string) => tokenize(sql).map((t) => t.toUpperCase());
  // The ingest guard's triggers (cs_guard_*) raise, but fire on inserts of tombstoned IDs only, which no step makes.
  const raises = (trigger: { name: string; sql: string }) => !trigger.name.toLowerCase().startsWith('cs_') && upper(trigger.sql).includes('RAISE');
  return tables.every((table) => {
    const sql = upper(schema.table(table)?.sql ?? '');
    const conflicts = sql.some((t, i) => t === 'CONFLICT' && sql[i - 1] === 'ON' && (sql[i + 1] === 'FAIL' || sql[i + 1] === 'ROLLBACK'));
    return !conflicts && !schema.triggersOn(table).some(raises);
  });
}

/** An ID held in one encoding as the other needs it (exact both ways for decimal 64-bit IDs). */
function castId(sql: string, from: IdEncoding, to: IdEncoding): string {
  return from === to ? sql : to === 'number' ? `CAST(${sql} AS INTEGER)` : `CAST(${sql} AS TEXT)`;
}

/** Dependents of a row taken per piece: at most this many rows of one relation in one statement. */
const DEPENDENT_PIECE = 256;
/** The most dependents a window's count lists before it counts per ID instead (prepareQueuedDelete). */
const DEPENDENTS_LISTED = 16 * DELETE_GROUP_DEPENDENTS;

/**
 * A row's direct dependents (the rows of each relation referencing its table), deleted with their own dependents or
 * their reference cleared, in pieces of DEPENDENT_PIECE rows chosen by rowid, asking `stop()` after each: a row
 * referenced by a million others would otherwise be one statement holding the write lock for as long as it takes.
 * Each piece is whole (its rows' tombstones, ledger marks, full-text entries and dependents go in the same
 * statements as the rows), so a cut leaves a valid store, and a later call finds what is left. Returns true once
 * fewer than a piece are left: the row's own deletion (prepareSteps) then takes them with it. `cascaded` counts the
 * pieces' deletions caused by a cascade relation, as prepareSteps does. A relation whose table has no rowid (WITHOUT
 * ROWID) is left to that deletion whole.
 */
function prepareDependentPieces(
  db: Db,
  target: Target,
  t: TableTarget,
  where: Where,
  counter: ChangeCounter,
  runId: number | null | undefined,
): (key: Id, reason: string, at: string, stop: () => boolean) => { complete: boolean; cascaded: number } {
  const schema = new SchemaInfo(db);
  const chunk: Where = { sql: 'rowid IN (SELECT value FROM json_each(?))', column: null, encoding: 'text' };
  const groups = (target.relations.get(t.table.toLowerCase()) ?? [])
    .filter((relation) => schema.table(relation.childTable)?.withoutRowid === false)
    .map((relation) => {
      const childWhere = childWhereOf(relation, t.table, where);
      const pick = db.prepare(`SELECT rowid FROM ${quoteIdent(relation.childTable)} WHERE ${childWhere.sql} LIMIT ${DEPENDENT_PIECE}`).pluck().safeIntegers(true);
      const bindKey = childWhere.encoding === 'number' ? (key: Id) => BigInt(key) : (key: Id) => key;
      const steps = relationSteps(target, relation, chunk, runId, true);
      const apply = prepareSteps(db, target, t, counter, steps);
      return { pick: (key: Id) => pick.all(bindKey(key)) as bigint[], apply };
    });
  if (!groups.length) return () => ({ complete: true, cascaded: 0 });
  return (key, reason, at, stop) => {
    let cascaded = 0;
    for (const group of groups) {
      for (;;) {
        const rowids = group.pick(key);
        if (rowids.length < DEPENDENT_PIECE) break;
        cascaded += group.apply(`[${rowids.join(',')}]` as Id, reason, at).cascaded;
        if (stop()) return { complete: false, cascaded };
      }
    }
    return { complete: true, cascaded };
  };
}

/** Runs a deletion's steps for one key: rows changed by its last step (the row itself) and the cascade's deletions. */
function prepareSteps(
  db: Db,
  target: Target,
  t: TableTarget,
  counter: ChangeCounter,
  steps: Step[],
): (key: Id, reason: string, at: string) => { own: number; cascaded: number } {
  const prepared = steps.map((step) => {
    const stmt = db.prepare(step.sql);
    const bindKey = step.encoding === 'number' ? (key: Id) => BigInt(key) : (key: Id) => key;
    return {
      step,
      run: step.tombstone
        ? (key: Id, reason: string, at: string) => stmt.run(reason, at, bindKey(key)).changes
        : (key: Id) => stmt.run(bindKey(key)).changes,
      cell: step.uncounted ? null : counter.cell(step.table, step.cause, step.kind),
      cascaded: step.cause === 'cascade' && step.kind === 'deleted',
    };
  });
  // The default schema's deletion: the tombstone and the one DELETE (the fast path).
  if (prepared.length === 2 && prepared[0]!.step.tombstone) {
    const [tomb, own] = prepared as [(typeof prepared)[0], (typeof prepared)[0]];
    const cell = own.cell!;
    const cascades = own.cascaded;
    return (key, reason, at) => {
      tomb.run(key, reason, at);
      const n = counter.add(cell, own.run(key, reason, at));
      return { own: n, cascaded: cascades ? n : 0 };
    };
  }
  return (key, reason, at) => {
    let n = 0;
    let cascadedNow = 0;
    for (const p of prepared) {
      try {
        n = p.run(key, reason, at);
      } catch (err) {
        throw explainConstraint(err, db, target, p.step, t, key);
      }
      if (p.cell) counter.add(p.cell, n);
      if (p.cascaded) cascadedNow += n;
    }
    return { own: n, cascaded: cascadedNow };
  };
}

/** What a tombstone's reason says about why the row went: the result's own reason, or how it followed one. */
const TOMBSTONE_REASON: Record<ChangeCause, string> = {
  result: '?',
  cascade: `'${CASCADE_REASON_PREFIX}' || ?`,
  fk: "'dependent_' || ?",
  copy: `'${COPY_REASON_PREFIX}' || ?`,
  embed: '?',
  orphan: '?',
  trigger: '?',
};

/**
 * `copies` is false inside a copy's own deletion: X points every retweet at the original, never at a retweet, so a
 * copy's copies are not followed (their pointer is cleared, which keeps the FOREIGN KEY valid), and the steps stay finite.
 */
function deleteSteps(
  target: Target,
  table: string,
  where: Where,
  cause: ChangeCause,
  runId: number | null | undefined,
  copies = true,
  /** The number the next collecting step's list gets (0 is the group's own IDs). */
  lists = { next: 1 },
): Step[] {
  const steps: Step[] = [];
  // This table's own steps choose its rows by `where`: bound as it is, with its list.
  const own = (step: Omit<Step, 'encoding' | 'list'>) => steps.push({ ...step, encoding: where.encoding, list: where.list });
  for (const relation of target.relations.get(table.toLowerCase()) ?? []) {
    const childWhere = childWhereOf(relation, table, where);
    steps.push(...relationSteps(target, relation, childWhere, runId, copies, lists));
  }
  const mapped = [target.tweets, target.users].find((m) => same(m.table, table));
  if (mapped && runId !== undefined) {
    // A result's own ID is tombstoned whether or not it is still stored: X says it is gone, so it must not come back.
    const reason = TOMBSTONE_REASON[cause];
    const run = runId ?? 'NULL';
    const sql =
      cause === 'result' && where.set
        ? `INSERT INTO cs_tombstones (type, reason, deleted_at, id, run_id) SELECT '${mapped.type}', ${reason}, ?, value, ${run} FROM json_each(?) WHERE true ON CONFLICT (type, id) DO NOTHING`
        : cause === 'result'
        ? `INSERT INTO cs_tombstones (type, reason, deleted_at, id, run_id) VALUES ('${mapped.type}', ${reason}, ?, ?, ${run}) ON CONFLICT (type, id) DO NOTHING`
        : `INSERT INTO cs_tombstones (type, reason, deleted_at, id, run_id) SELECT '${mapped.type}', ${reason}, ?, ${quoteIdent(mapped.id)}, ${run} FROM ${quoteIdent(table)} WHERE ${where.sql} ON CONFLICT (type, id) DO NOTHING`;
    own({ sql, table: 'cs_tombstones', cause, kind: 'inserted', uncounted: true, tombstone: true });
  }
  if (mapped && !mapped.marks) {
    // A deleted row's ledger mark goes with it; the ledger is not content, so it is not counted.
    const ids = where.column !== null && same(where.column, mapped.id) ? (where.set ? IN_LIST : '= ?') : `IN (SELECT ${quoteIdent(mapped.id)} FROM ${quoteIdent(table)} WHERE ${where.sql})`;
    own({ sql: `DELETE FROM cs_marks WHERE type = '${mapped.type}' AND id ${ids}`, table: 'cs_marks', cause, kind: 'deleted', uncounted: true });
  }
  // An external-content index no trigger keeps in step: its entries go while the row (their old values) is still there.
  for (const f of target.ftsDeletes.get(table.toLowerCase()) ?? []) {
    own({ sql: ftsRemove(f, table, where.sql), table: f.fts, cause, kind: 'deleted', uncounted: true, once: true });
  }
  own({ sql: `DELETE FROM ${quoteIdent(table)} WHERE ${where.sql}`, table, cause, kind: 'deleted' });
  return steps;
}

/** Takes the entries of the rows of `table` chosen by `where` out of an FTS index, while those rows still hold them. */
function ftsRemove(f: FtsDelete, table: string, where: string): string {
  const rows = `FROM ${quoteIdent(table)} WHERE ${where}`;
  if (f.by === 'values') {
    return `INSERT INTO ${quoteIdent(f.fts)} (${[quoteIdent(f.fts), 'rowid', ...f.columns.map(quoteIdent)].join(', ')}) SELECT ${["'delete'", quoteIdent(f.rowid), ...f.values.map(quoteIdent)].join(', ')} ${rows}`;
  }
  return `DELETE FROM ${quoteIdent(f.fts)} WHERE ${f.by} IN (SELECT ${quoteIdent(f.rowid)} ${rows})`;
}

/** Puts the entries of those rows (their values now) into the index. */
function ftsAdd(f: FtsDelete, table: string, where: string): string {
  return `INSERT INTO ${quoteIdent(f.fts)} (${[f.module === 'fts5' ? 'rowid' : 'docid', ...f.columns.map(quoteIdent)].join(', ')}) SELECT ${[quoteIdent(f.rowid), ...f.values.map(quoteIdent)].join(', ')} FROM ${quoteIdent(table)} WHERE ${where}`;
}

/** The rows of a relation's child table that reference the rows of `table` chosen by `where`. */
function childWhereOf(relation: Relation, table: string, where: Where): Where {
  return where.column !== null && same(relation.parentColumn, where.column)
    ? { sql: `${quoteIdent(relation.childColumn)} ${where.set ? IN_LIST : '= ?'}`, column: relation.childColumn, encoding: relation.childEncoding, set: where.set, list: where.list }
    : {
        sql: `${quoteIdent(relation.childColumn)} IN (SELECT ${quoteIdent(relation.parentColumn)} FROM ${quoteIdent(table)} WHERE ${where.sql})`,
        column: null,
        encoding: where.encoding,
        list: where.list,
      };
}

/** What acting on one relation's rows (chosen by `childWhere`) takes: their deletion, as dependents or copies, or clearing the reference. */
function relationSteps(target: Target, relation: Relation, childWhere: Where, runId: number | null | undefined, copies: boolean, lists = { next: 1 }): Step[] {
  const mappedChild = [target.tweets, target.users].find((m) => same(m.table, relation.childTable));
  if (relation.action === 'delete') return deleteSteps(target, relation.childTable, childWhere, relation.cascade ? 'cascade' : 'fk', runId, copies, lists);
  if (relation.action === 'copy' && mappedChild && copies && childWhere.set && childWhere.column !== null) {
    // The group's copies, listed once (Step.collect).
    const list = lists.next++;
    const collect: Step = {
      sql: `SELECT ${quoteIdent(mappedChild.id)}, ${quoteIdent(childWhere.column)} FROM ${quoteIdent(mappedChild.table)} WHERE ${childWhere.sql}`,
      encoding: childWhere.encoding,
      table: mappedChild.table,
      cause: 'copy',
      kind: 'deleted',
      uncounted: true,
      list: childWhere.list,
      collect: list,
    };
    const copiesWhere: Where = { sql: `${quoteIdent(mappedChild.id)} ${IN_LIST}`, column: mappedChild.id, encoding: mappedChild.idEncoding, set: true, list };
    return [collect, ...deleteSteps(target, relation.childTable, copiesWhere, 'copy', runId, false, lists)];
  }
  if (relation.action === 'copy' && (copies || !mappedChild)) return deleteSteps(target, relation.childTable, childWhere, 'copy', runId, !mappedChild && copies, lists);
  return [{ sql: clearReference(relation, childWhere), encoding: childWhere.encoding, table: relation.childTable, cause: 'fk', kind: 'updated', list: childWhere.list }];
}

function clearReference(relation: Relation, where: Where): string {
  // set_null, and a copy relation met inside a copy's deletion (see deleteSteps).
  const value = relation.action === 'set_default' ? (relation.defaultSql ?? 'NULL') : 'NULL';
  return `UPDATE ${quoteIdent(relation.childTable)} SET ${quoteIdent(relation.childColumn)} = ${value} WHERE ${where.sql}`;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * A constraint that still blocks (a reference the schema does not declare and the config does not name, a NOT NULL
 * column, a trigger's own RAISE) becomes an error that names the table, the column, the row and the key to change.
 */
function explainConstraint(err: unknown, db: Db, target: Target, step: Step, t: TableTarget, key: Id): unknown {
  const code = (err as { code?: string }).code ?? '';
  if (!code.startsWith('SQLITE_CONSTRAINT')) return err;
  const row = `${t.type === 'tweets' ? 'tweet' : 'user'} ${key}`;
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY' && step.kind === 'deleted') {
    for (const fk of new SchemaInfo(db).foreignKeysReferencing(step.table)) {
      const column = fk.childColumns[0]!;
      const references = [target.tweets, target.users].find((m) => same(m.table, step.table))?.type ?? step.table;
      return new StoreError(
        'fk_blocked',
        `deleting ${row}: rows of "${fk.childTable}" still reference "${step.table}" through "${fk.childTable}"."${column}" (FOREIGN KEY ON DELETE ${fk.onDelete})`,
        {
          cause: err,
          hint: `add { "table": "${fk.childTable}", "column": "${column}", "references": "${references}", "action": "delete" } (or "set_null") to store.dependents`,
        },
      );
    }
  }
  return new StoreError('constraint_blocked', `${row}: ${step.kind === 'deleted' ? 'deleting from' : 'updating'} "${step.table}" failed: ${(err as Error).message}`, {
    cause: err,
    hint: step.cause === 'fk' ? 'set the action of this relation in store.dependents ("delete" or "set_null")' : 'check the triggers and constraints of that table',
  });
}

/**
 * A batch whose COMMIT failed on a FOREIGN KEY: a DEFERRABLE INITIALLY DEFERRED key is checked only then, after every
 * statement of the batch succeeded (immediate ones are explained per statement by explainConstraint), and SQLite
 * does not say which key. Named here: the deferred keys referencing a table the work deletes from, or held by a table
 * the store's triggers write. Anything else is returned as it is.
 */
export function explainCommitFailure(err: unknown, db: Db, target: Target, type: JobType): unknown {
  if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_FOREIGNKEY') return err;
  const deletedFrom = new Set([target[type].table, ...(target.relations.get(target[type].table.toLowerCase()) ?? []).map((r) => r.childTable)].map((t) => t.toLowerCase()));
  for (const relations of target.relations.values()) for (const r of relations) if (r.action === 'delete') deletedFrom.add(r.childTable.toLowerCase());
  if (type === 'users' && target.authorId) deletedFrom.add(target.tweets.table.toLowerCase());
  const written = new Set(target.triggerTargets.map((t) => t.toLowerCase()));
  const suspects = new SchemaInfo(db)
    .foreignKeys()
    .filter((fk) => fk.deferred && fk.childColumns.length === 1 && (deletedFrom.has(fk.parentTable.toLowerCase()) || written.has(fk.childTable.toLowerCase())));
  if (!suspects.length) return err;
  const named = suspects.map((fk) => `"${fk.childTable}"."${fk.childColumns[0]}" → "${fk.parentTable}"`).join(', ');
  const entries = suspects.map((fk) => {
    const references = [target.tweets, target.users].find((m) => same(m.table, fk.parentTable))?.type;
    return references
      ? `{ "table": "${fk.childTable}", "column": "${fk.childColumns[0]}", "references": "${references}", "action": "delete" } (or "set_null")`
      : null;
  });
  const hint = entries.every((e) => e !== null)
    ? `add ${entries.join(' and ')} to store.dependents; if it is listed already, a trigger of the store writes a new reference: check the triggers that write "${suspects[0]!.childTable}"`
    : `rows of "${suspects[0]!.childTable}" reference rows the store's triggers delete: check the triggers of the store, or make the key immediate so the row that blocks is named`;
  return new StoreError(
    'fk_blocked',
    `a batch of ${type} failed at COMMIT on the DEFERRABLE INITIALLY DEFERRED FOREIGN KEY ${named}: rows still reference deleted rows (SQLite checks such a key only at COMMIT, so the row is not known); nothing of the batch was applied`,
    { cause: err, hint },
  );
}

/** The SET list of a geo scrub; null when the mapping names nothing to scrub. */
function scrubAssignments(geo: GeoScrub): string | null {
  const sets = geo.nullColumns.map((c) => `${quoteIdent(c)} = NULL`);
  for (const { column, paths } of geo.json) {
    const col = quoteIdent(column);
    // Only valid JSON is rewritten (json_remove would throw on anything else and abort the batch); other keys keep
    // their values, numbers keep their exact text (SQLite ≥ 3.45 stores JSON numbers as text).
    sets.push(`${col} = CASE WHEN json_valid(${col}) THEN json_remove(${col}, ${paths.map(quoteLiteral).join(', ')}) ELSE ${col} END`);
  }
  return sets.length ? sets.join(', ') : null;
}

/**
 * Whether a row has anything the scrub clears: a geo column not NULL, or a geo path present in valid JSON (json_type
 * is NULL only for a missing path; a key holding JSON null is removed too). Not valid JSON: nothing to clear.
 */
function scrubCondition(geo: GeoScrub): string {
  const tests = geo.nullColumns.map((c) => `${quoteIdent(c)} IS NOT NULL`);
  for (const { column, paths } of geo.json) {
    const col = quoteIdent(column);
    tests.push(`CASE WHEN json_valid(${col}) THEN ${paths.map((p) => `json_type(${col}, ${quoteLiteral(p)}) IS NOT NULL`).join(' OR ')} ELSE 0 END`);
  }
  return tests.length ? `(${tests.join(' OR ')})` : '0';
}

/**
 * Counts the rows the store's own triggers change in tables that are not full-text indexes. total_changes() cannot
 * tell them apart (FTS5 counts its shadow-table writes there, a varying number per row), so TEMP triggers — on this
 * connection only, never in the store file — tally every delete, insert and update of those tables; what our own
 * statements changed there is subtracted, and the rest is the triggers' doing.
 */
function prepareTriggerTally(db: Db, tables: readonly string[]) {
  // The temp schema, not the store's: SchemaInfo reads the main schema only, and these triggers are this connection's.
  for (const name of db.prepare("SELECT name FROM temp.sqlite_master WHERE type = 'trigger' AND name LIKE 'cs\\_tally\\_%' ESCAPE '\\'").pluck().all() as string[]) {
    db.exec(`DROP TRIGGER temp.${quoteIdent(name)}`);
  }
  if (!tables.length) return null;
  db.exec('CREATE TEMP TABLE IF NOT EXISTS cs_tally (tbl TEXT NOT NULL, kind TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (tbl, kind))');
  db.exec('DELETE FROM temp.cs_tally');
  const events = [
    ['DELETE', 'deleted'],
    ['UPDATE', 'updated'],
    ['INSERT', 'inserted'],
  ] as const;
  tables.forEach((table, i) => {
    for (const [event, kind] of events) {
      db.prepare('INSERT INTO temp.cs_tally (tbl, kind, n) VALUES (?, ?, 0)').run(table, kind);
      db.exec(
        `CREATE TEMP TRIGGER ${quoteIdent(`cs_tally_${i}_${kind}`)} AFTER ${event} ON main.${quoteIdent(table)} BEGIN
           UPDATE temp.cs_tally SET n = n + 1 WHERE tbl = ${quoteLiteral(table)} AND kind = '${kind}'; END`,
      );
    }
  });
  const read = db.prepare('SELECT tbl, kind, n FROM temp.cs_tally WHERE n > 0');
  const reset = db.prepare('UPDATE temp.cs_tally SET n = 0 WHERE n > 0');
  return {
    drain(ours: readonly ChangeCount[], columnMarked: readonly string[]): ChangeCount[] {
      const rows = read.all() as { tbl: string; kind: 'deleted' | 'updated' | 'inserted'; n: bigint }[];
      reset.run();
      const out: ChangeCount[] = [];
      for (const row of rows) {
        // Our marks in a table's own columns are updates of its rows too (marks in cs_marks are not).
        const marksUpdate = row.kind === 'updated' && columnMarked.some((m) => same(m, row.tbl));
        const own = ours
          .filter((c) => same(c.table, row.tbl) && (c.kind === row.kind || (marksUpdate && c.kind === 'marked')))
          .reduce((sum, c) => sum + c.count, 0);
        const extra = Number(row.n) - own;
        if (extra > 0) out.push({ table: row.tbl, cause: 'trigger', kind: row.kind, count: extra });
      }
      return out;
    },
  };
}
