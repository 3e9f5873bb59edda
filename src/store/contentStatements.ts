import type BetterSqlite3 from 'better-sqlite3';
import type { Config } from '../config/load.js';
import { ConfigError, StoreError } from '../errors.js';
import type { Id, JobType } from '../types.js';
import { ChangeCounter, type ChangeCount } from './changeCounts.js';
import {
  CASCADE_REASON_PREFIX,
  deleteSteps,
  explainCommitFailure,
  ftsAdd,
  ftsRemove,
  prepareDelete,
  prepareDependentPieces,
  prepareSteps,
  same,
  type Where,
} from './deleteSteps.js';
import { IN_LIST, idList } from './idList.js';
import type { Db } from './open.js';
import { DELETE_GROUP, prepareQueuedDelete, type Ahead } from './queuedDelete.js';
import { quoteIdent, quoteLiteral, SchemaInfo } from './schemaInfo.js';
import { prepareSweeps } from './sweeps.js';
import type { GeoScrub, IdEncoding, TableTarget, Target } from './target.js';

export type { IdEncoding } from './target.js';
export type { ChangeCount } from './changeCounts.js';
export { CASCADE_REASON_PREFIX } from './deleteSteps.js';

type Tables = Config['store']['tables'];
type Statement = BetterSqlite3.Statement<unknown[]>;

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

const MARK_PREFIX_TEST = (reason: string) => `substr(${reason}, 1, ${CASCADE_REASON_PREFIX.length}) = '${CASCADE_REASON_PREFIX}'`;

/** Prepares, once per apply run, every statement for one type from the resolved target. */
export function prepareContentStatements(
  db: Db,
  target: Target,
  type: JobType,
  options: {
    cascadeUsers: boolean;
    runId: number | null;
    /** false for a dry run: the store may have no ledger yet. */
    tombstones?: boolean;
    /** INTEGER columns whose IDs are checked without a row of this type's table (store.dependents with `check`). */
    checked?: readonly { table: string; column: string }[];
  },
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
  // The safety gate's count of the IDs a deletion finds: stored rows, and IDs a checked column holds (its rows go too).
  const checked = options.checked ?? [];
  const countIn = count(
    checked.length
      ? `SELECT count(*) FROM json_each(?) AS j WHERE EXISTS (SELECT 1 FROM ${table} WHERE ${id} = j.value)${checked
          .map((c) => ` OR EXISTS (SELECT 1 FROM ${quoteIdent(c.table)} WHERE ${quoteIdent(c.column)} = CAST(j.value AS INTEGER))`)
          .join('')}`
      : `SELECT count(*) FROM ${table} WHERE ${id} ${IN_LIST}`,
  );
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
