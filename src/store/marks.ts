import type { Config } from '../config/load.js';
import type { JobType } from '../types.js';
import { CASCADE_REASON_PREFIX, KEPT_STATES } from './contentStatements.js';
import { cutAfterMs, lockReleased, lockTurn } from './lockPace.js';
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
  // lapses while its author is still marked, the author's mark takes over instead of the tweet going unmarked.
  if (type === 'tweets' && authorId && config.reconcile.cascadeUsers) {
    statements.push({ stmt: prepareHandOver(db, tweets, users, authorId), counts: false });
  }
  statements.push({ stmt: prepareClearOwn(db, own), counts: true });
  // Only authors this cycle submitted (stored users in the range): a cascade from `apply --type users` for an author
  // without a users row was never re-checked, so it stays.
  if (type === 'users' && authorId) statements.push({ stmt: prepareClearCascaded(db, tweets, users, authorId), counts: true });

  const clearRange = db.transaction((params: Params) =>
    statements.reduce((sum, s) => {
      const { changes } = s.stmt.run(params);
      return sum + (s.counts ? changes : 0);
    }, 0),
  );
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
      await lockTurn(maxLockMs);
      const started = clock();
      try {
        cleared += clearRange({ first: from, last: upTo, before: cycleStartedAt });
      } finally {
        lockReleased();
      }
      const took = clock() - started;
      options.onCommit?.({ first: from, last: upTo });
      if (end === undefined) break;
      // Aim at a quarter to a half of the bound (a piece is one statement, it cannot stop half-way): the next piece's
      // rows may be slower (more marks among them, or an author with many tweets).
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
  /** Called after each piece's commit, with the IDs it covered. */
  onCommit?: (piece: { first: string; last: string }) => void;
}

type Statement = ReturnType<Db['prepare']>;

interface Params {
  first: string;
  last: string;
  before: string;
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

function prepareClearCascaded(db: Db, tweets: TableTarget, users: TableTarget, authorId: string) {
  const submitted = `SELECT ${quoteIdent(users.id)} FROM ${quoteIdent(users.table)} WHERE ${quoteIdent(users.id)} BETWEEN @first AND @last`;
  if (tweets.marks) {
    const m = columnsOf(tweets, quoteIdent(tweets.table));
    return db.prepare(
      `UPDATE ${quoteIdent(tweets.table)} SET ${quoteIdent(tweets.marks.state)} = NULL, ${quoteIdent(tweets.marks.reason)} = NULL, ${quoteIdent(tweets.marks.at)} = NULL
       WHERE ${quoteIdent(authorId)} IN (${submitted}) AND ${isCascaded(m.reason)} AND ${m.state} NOT IN (${kept})
         AND (${m.at} IS NULL OR ${m.at} < @before)`,
    );
  }
  return db.prepare(
    `DELETE FROM cs_marks WHERE type = 'tweets' AND ${isCascaded('reason')} AND state NOT IN (${kept}) AND at < @before
       AND id IN (SELECT t.${quoteIdent(tweets.id)} FROM ${quoteIdent(tweets.table)} AS t WHERE t.${quoteIdent(authorId)} IN (${submitted}))`,
  );
}
