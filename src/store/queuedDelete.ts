// Deletions of rows that have relations, queued and run a group at a time: each step one statement over the group,
// what the queue needs to know looked up per window of the batch's coming records, and a blocked group's rows deleted
// one by one to name the row.
import { compareIds, type Id, type JobType } from '../types.js';
import type { ChangeCounter } from './changeCounts.js';
import { DEPENDENT_PIECE, deleteSteps, same } from './deleteSteps.js';
import { IN_LIST, idList } from './idList.js';
import type { Db } from './open.js';
import { quoteIdent, SchemaInfo, tokenize } from './schemaInfo.js';
import type { IdEncoding, TableTarget, Target } from './target.js';

/**
 * Deletions queued before their statements run, at most this many: each step then runs once for all of them. Each
 * statement that fires a collector's FTS5 trigger writes a segment, so fewer, larger groups write fewer (measured on
 * twitter-to-sqlite: 512 instead of 256 took 5% off a 200k apply; 2,048 took another 4–5% off, but then 9–15 of ~60
 * transactions passed the default lock bound of 200 ms; bench/README.md, "A foreign layout").
 */
export const DELETE_GROUP = 512;
/** …and their direct dependents at most about this many (each statement over a group then stays short). */
const DELETE_GROUP_DEPENDENTS = 1024;
/** The most dependents a window's count lists before it counts per ID instead (prepareQueuedDelete). */
const DEPENDENTS_LISTED = 16 * DELETE_GROUP_DEPENDENTS;

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
export function prepareQueuedDelete(
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

/** An ID column's value as the other encoding needs it (exact both ways for decimal 64-bit IDs), in SQL. */
function castId(sql: string, from: IdEncoding, to: IdEncoding): string {
  return from === to ? sql : to === 'number' ? `CAST(${sql} AS INTEGER)` : `CAST(${sql} AS TEXT)`;
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
