import type { Config } from '../config/load.js';
import type { Id, JobType } from '../types.js';
import { authorPieces, CASCADE_REASON_PREFIX, KEPT_STATES } from './contentStatements.js';
import { cutAfterMs, inLockTurn } from './lockPace.js';
import type { Db } from './open.js';
import { quoteIdent, SchemaInfo } from './schemaInfo.js';
import { resolveTables, type TableTarget } from './target.js';

const kept = KEPT_STATES.map((s) => `'${s}'`).join(', ');
const isCascaded = (reason: string) => `substr(${reason}, 1, ${CASCADE_REASON_PREFIX.length}) = '${CASCADE_REASON_PREFIX}'`;

/** The view a publisher serves instead of a mapped table: its rows without a compliance mark (`edited` only asks for a refetch). */
export function visibleViewName(table: string): string {
  return `cs_visible_${table}`;
}

/** The SQL of a type's visible view, for the marks where the mapping keeps them. */
function visibleViewSql(t: TableTarget): string {
  const hidden = t.marks
    ? `t.${quoteIdent(t.marks.state)} IS NOT NULL AND t.${quoteIdent(t.marks.state)} NOT IN (${kept})`
    : `EXISTS (SELECT 1 FROM cs_marks AS m WHERE m.type = '${t.type}' AND m.id = t.${quoteIdent(t.id)} AND m.state NOT IN (${kept}))`;
  return `CREATE VIEW ${quoteIdent(visibleViewName(t.table))} AS SELECT t.* FROM ${quoteIdent(t.table)} AS t WHERE NOT (${hidden})`;
}

/**
 * Creates (or, when the mapping changed, replaces) the views `cs_visible_<table>` over both mapped tables. A table of
 * that name the owner made is left alone. Cheap when nothing changed: one read of the schema.
 */
export function ensureVisibleViews(db: Db, target: { tweets: TableTarget; users: TableTarget }): void {
  const schema = new SchemaInfo(db);
  for (const t of [target.tweets, target.users]) {
    const mapped = schema.table(t.table);
    if (!mapped || mapped.kind === 'view') continue;
    const name = visibleViewName(t.table);
    const sql = visibleViewSql(t);
    const found = schema.table(name);
    if (found && (found.kind !== 'view' || found.sql === sql)) continue;
    db.transaction(() => {
      if (found) db.exec(`DROP VIEW ${quoteIdent(name)}`);
      db.exec(sql);
    }).immediate();
  }
}

/**
 * Clears the marks a closing cycle covered and did not report again: the API lists only IDs needing action, so an ID
 * absent from this cycle's results is compliant again. "Reported again" means re-marked by this cycle, i.e. a mark
 * time at or after the cycle's start (each apply run writes its start time there). Works for marks in the tables'
 * columns and in the ledger's cs_marks alike, and for any mix of the two.
 */
export async function clearStaleMarks(
  db: Db,
  config: Config,
  type: JobType,
  ranges: readonly { firstId: string; lastId: string }[],
  cycleStartedAt: string,
  options: ClearOptions = {},
): Promise<number> {
  const { tweets, users } = resolveTables(db, config);
  const own = type === 'tweets' ? tweets : users;
  const authorId = config.store.tables.tweets.authorId;

  const statements: { stmt: Statement; counts: boolean }[] = [];
  // A tweet's own mark outranks its author's, so the users cycle did not cascade onto it. When the tweet's own mark
  // lapses while its author is still marked, the author's mark takes over instead of the tweet going unmarked. (It
  // touches only the piece's own tweets, one author lookup each: bounded by the piece's rows like the own clear.)
  if (type === 'tweets' && authorId && config.reconcile.cascadeUsers) {
    statements.push({ stmt: prepareHandOver(db, tweets, users, authorId), counts: false });
  }
  statements.push({ stmt: prepareClearOwn(db, own), counts: true });
  // Only authors this cycle submitted (stored users in the range): a cascade from `apply --type users` for an author
  // without a users row was never re-checked, so it stays.
  const cascaded = type === 'users' && authorId ? prepareClearCascaded(db, tweets, users, authorId) : null;

  // A piece's first transaction clears its own marks; on the users type it (and as many more as it takes) clears
  // the cascaded marks of its users' tweets, author by author, cut by time (`stop`) wherever it stands.
  const clearPiece = db.transaction((params: Params, own: boolean, authors: AuthorCursor | null, stop: () => boolean) => {
    let sum = 0;
    if (own) {
      for (const s of statements) {
        const { changes } = s.stmt.run(params);
        if (s.counts) sum += changes;
      }
    }
    let complete = true;
    if (cascaded && authors) {
      const done = cascaded(authors, params.before, stop);
      sum += done.changed;
      complete = done.complete;
    }
    return { cleared: sum, complete };
  });
  // Pieces of a range are cut at the mapped table's own IDs, counted `rows` at a time: the rows-th ID after the last
  // piece's end (an index walk), so a piece covers a known number of rows wherever IDs are dense or sparse.
  const id = quoteIdent(own.id);
  const walkFirst = db.prepare(`SELECT ${id} FROM ${quoteIdent(own.table)} WHERE ${id} >= @from AND ${id} <= @last ORDER BY ${id} LIMIT 1 OFFSET @skip`);
  const walkNext = db.prepare(`SELECT ${id} FROM ${quoteIdent(own.table)} WHERE ${id} > @from AND ${id} <= @last ORDER BY ${id} LIMIT 1 OFFSET @skip`);
  for (const walk of [walkFirst, walkNext]) walk.pluck().safeIntegers(true);
  const maxLockMs = options.maxLockMs ?? config.reconcile.maxLockMs;
  const clock = options.clock ?? (() => performance.now());
  // Small at first: on the users type a piece also clears the cascaded marks of each user's tweets.
  let rows = options.pieceRows ?? 64;
  let cleared = 0;
  for (const range of ranges) {
    // Short transactions, yielding in between: one transaction per range held the write lock for seconds on a
    // store of a million rows (the archive's ingester waits meanwhile) and blocked the event loop. Pieces are
    // contiguous (each begins at the previous one's last ID, which clears nothing twice: a clear is idempotent), so
    // a crash part-way only means the next attempt finds less to clear.
    let walk = walkFirst;
    let from = range.firstId;
    for (;;) {
      const end = walk.get({ from, last: range.lastId, skip: rows - 1 }) as bigint | string | undefined;
      const upTo = end === undefined ? range.lastId : String(end);
      // The piece's authors: its users from the range's first ID, or after the previous piece's last (done there).
      const authors: AuthorCursor | null = cascaded ? { first: from, inclusive: walk === walkFirst, last: upTo, author: null, after: null } : null;
      let took = 0;
      for (let own = true; ; own = false) {
        let started = 0;
        const complete = await inLockTurn(maxLockMs, () => {
          started = clock();
          // IMMEDIATE: a piece's later transactions begin with reads (the next author, the walk of its tweets); begun
          // deferred, the first write after another writer's commit fails with SQLITE_BUSY_SNAPSHOT instead of waiting.
          const done = clearPiece.immediate({ first: from, last: upTo, before: cycleStartedAt }, own, authors, () => clock() - started > cutAfterMs(maxLockMs));
          cleared += done.cleared;
          return done.complete;
        });
        // The piece's size adapts to its first transaction (cut by time when an author has many tweets).
        if (own) took = clock() - started;
        options.onCommit?.({ first: from, last: upTo });
        if (complete) break;
      }
      if (end === undefined) break;
      // Aim at a quarter to a half of the bound (a piece's own clear is one statement, it cannot stop half-way): the
      // next piece's rows may be slower (more marks among them, or authors with many tweets).
      if (took > cutAfterMs(maxLockMs)) rows = Math.max(1, Math.floor(rows / 2));
      else if (took < cutAfterMs(maxLockMs) / 2) rows = Math.min(rows * 2, 1 << 20);
      walk = walkNext;
      from = upTo;
    }
  }
  return cleared;
}

export interface ClearOptions {
  /** Default: the config's reconcile.maxLockMs. */
  maxLockMs?: number;
  /** Milliseconds (default performance.now): tests inject one. */
  clock?: () => number;
  /** Rows of the mapped table in the first piece (then adapted to the bound). */
  pieceRows?: number;
  /** Called after each commit, with the IDs of the piece it was part of (a users piece may take several). */
  onCommit?: (piece: { first: string; last: string }) => void;
}

type Statement = ReturnType<Db['prepare']>;

interface Params {
  first: string;
  last: string;
  before: string;
}

/**
 * Where the clearing of a users piece's cascaded marks stands: the piece's users, the author under way (null: none
 * yet) and its last tweet cleared (null: the author is done, or not begun). Kept between the piece's transactions.
 */
interface AuthorCursor {
  first: string;
  /** Whether the user `first` is the piece's (a range's first piece) or the previous piece's (done there). */
  inclusive: boolean;
  last: string;
  author: bigint | string | null;
  after: Id | null;
}

/** Where a row's mark is read: its columns, or its cs_marks row (alias m). */
interface MarkSql {
  state: string;
  reason: string;
  at: string;
}

function columnsOf(t: TableTarget, alias: string): MarkSql {
  return { state: `${alias}.${quoteIdent(t.marks!.state)}`, reason: `${alias}.${quoteIdent(t.marks!.reason)}`, at: `${alias}.${quoteIdent(t.marks!.at)}` };
}
const LEDGER: MarkSql = { state: 'cs_marks.state', reason: 'cs_marks.reason', at: 'cs_marks.at' };

/** The row's own mark (not a cascaded one), set before this cycle began: not reported again. */
function staleOwn(m: MarkSql): string {
  return `${m.state} IS NOT NULL AND ${m.state} NOT IN (${kept})
    AND (${m.reason} IS NULL OR NOT ${isCascaded(m.reason)})
    AND (${m.at} IS NULL OR ${m.at} < @before)`;
}

function prepareClearOwn(db: Db, t: TableTarget) {
  if (t.marks) {
    const m = columnsOf(t, quoteIdent(t.table));
    return db.prepare(
      `UPDATE ${quoteIdent(t.table)} SET ${quoteIdent(t.marks.state)} = NULL, ${quoteIdent(t.marks.reason)} = NULL, ${quoteIdent(t.marks.at)} = NULL
       WHERE ${quoteIdent(t.id)} BETWEEN @first AND @last AND ${staleOwn(m)}`,
    );
  }
  return db.prepare(`DELETE FROM cs_marks WHERE type = '${t.type}' AND id BETWEEN @first AND @last AND ${staleOwn(LEDGER)}`);
}

/** The author's live mark as (state, reason, at) for an author ID expression, wherever users keep marks. */
function authorMark(users: TableTarget, authorExpr: string): string {
  if (users.marks) {
    const u = columnsOf(users, 'u');
    return `SELECT ${u.state} AS state, ${u.reason} AS reason, ${u.at} AS at FROM ${quoteIdent(users.table)} AS u
            WHERE u.${quoteIdent(users.id)} = ${authorExpr} AND ${u.state} IS NOT NULL AND ${u.state} NOT IN (${kept})`;
  }
  return `SELECT um.state, um.reason, um.at FROM cs_marks AS um WHERE um.type = 'users' AND um.id = ${authorExpr} AND um.state NOT IN (${kept})`;
}

function prepareHandOver(db: Db, tweets: TableTarget, users: TableTarget, authorId: string) {
  if (tweets.marks) {
    const m = columnsOf(tweets, quoteIdent(tweets.table));
    const author = authorMark(users, `${quoteIdent(tweets.table)}.${quoteIdent(authorId)}`);
    return db.prepare(
      `UPDATE ${quoteIdent(tweets.table)} SET (${quoteIdent(tweets.marks.state)}, ${quoteIdent(tweets.marks.reason)}, ${quoteIdent(tweets.marks.at)}) =
         (SELECT a.state, '${CASCADE_REASON_PREFIX}' || a.reason, a.at FROM (${author} LIMIT 1) AS a)
       WHERE ${quoteIdent(tweets.id)} BETWEEN @first AND @last AND ${staleOwn(m)} AND EXISTS (${author})`,
    );
  }
  const author = authorMark(users, `(SELECT t.${quoteIdent(authorId)} FROM ${quoteIdent(tweets.table)} AS t WHERE t.${quoteIdent(tweets.id)} = cs_marks.id)`);
  return db.prepare(
    `UPDATE cs_marks SET (state, reason, at) = (SELECT a.state, '${CASCADE_REASON_PREFIX}' || a.reason, a.at FROM (${author} LIMIT 1) AS a)
     WHERE type = 'tweets' AND id BETWEEN @first AND @last AND ${staleOwn(LEDGER)} AND EXISTS (${author})`,
  );
}

/**
 * Clears the stale cascaded marks of the tweets of a piece's users, author by author, each author's tweets in pieces
 * of consecutive tweet IDs (authorPieces), asking `stop()` after each: one author may have written a large share of
 * the store, and one statement over all of them could not stop (it held the write lock for over a second on a store
 * of 2M tweets). Each piece commits whole and a clear is idempotent, so a cut or a crash between two leaves a valid
 * store (the author already unmarked, some of its tweets still hidden) and the next attempt finds less to clear.
 */
function prepareClearCascaded(db: Db, tweets: TableTarget, users: TableTarget, authorId: string) {
  const stale = (m: MarkSql) => `${isCascaded(m.reason)} AND ${m.state} NOT IN (${kept}) AND (${m.at} IS NULL OR ${m.at} < @before)`;
  const table = quoteIdent(tweets.table);
  const clearTweets = authorPieces(db, table, quoteIdent(authorId), tweets, (where) =>
    tweets.marks
      ? `UPDATE ${table} SET ${quoteIdent(tweets.marks.state)} = NULL, ${quoteIdent(tweets.marks.reason)} = NULL, ${quoteIdent(tweets.marks.at)} = NULL
         WHERE ${where} AND ${stale(columnsOf(tweets, table))}`
      : // The condition's unqualified columns are the subquery's: the tweets table's own.
        `DELETE FROM cs_marks WHERE type = 'tweets' AND ${stale(LEDGER)}
         AND id IN (SELECT ${quoteIdent(tweets.id)} FROM ${table} WHERE ${where})`,
  );
  const uid = quoteIdent(users.id);
  const userTable = quoteIdent(users.table);
  // One index seek per author (not a list of the piece's users: a piece may hold many).
  const authorFrom = db.prepare(`SELECT ${uid} FROM ${userTable} WHERE ${uid} >= @from AND ${uid} <= @last ORDER BY ${uid} LIMIT 1`);
  const authorAfter = db.prepare(`SELECT ${uid} FROM ${userTable} WHERE ${uid} > @from AND ${uid} <= @last ORDER BY ${uid} LIMIT 1`);
  for (const seek of [authorFrom, authorAfter]) seek.pluck().safeIntegers(true);
  return (cursor: AuthorCursor, before: string, stop: () => boolean): { changed: number; complete: boolean } => {
    let changed = 0;
    for (;;) {
      if (cursor.after === null) {
        const next =
          cursor.author === null
            ? (cursor.inclusive ? authorFrom : authorAfter).get({ from: cursor.first, last: cursor.last })
            : authorAfter.get({ from: cursor.author, last: cursor.last });
        if (next === undefined) return { changed, complete: true };
        cursor.author = next as bigint | string;
      }
      const done = clearTweets(cursor.author, { before }, cursor.after, stop);
      changed += done.changed;
      cursor.after = done.after;
      if (done.after !== null || stop()) return { changed, complete: false };
    }
  };
}
