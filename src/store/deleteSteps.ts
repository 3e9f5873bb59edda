// The deletion of a row as statements in a valid order: what references it first (deleted, recursively, or the
// reference cleared), its tombstone, its ledger mark and full-text entries, then the row; run per row, or per piece
// of a row's dependents; the reasons its tombstones carry; and the errors that name what still blocks one.
import { StoreError } from '../errors.js';
import type { Id, JobType } from '../types.js';
import type { ChangeCause, ChangeCounter, ChangeKind } from './changeCounts.js';
import { IN_LIST } from './idList.js';
import type { Db } from './open.js';
import { quoteIdent, SchemaInfo } from './schemaInfo.js';
import type { FtsDelete, IdEncoding, Relation, TableTarget, Target } from './target.js';

/** A cascaded mark's reason starts with this, so the tweets cycle can tell its own marks from them. */
export const CASCADE_REASON_PREFIX = 'author_';
/** A copy's tombstone reason (a retweet deleted with its original): copy_<the original's reason>. */
const COPY_REASON_PREFIX = 'copy_';

/** Rows of one table chosen by one bound key: `column = ?` when the key is that column's value, else any condition. */
export interface Where {
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

/**
 * The deletion of one row as a list of statements in a valid order: for each relation referencing the table, its
 * rows first (deleted, recursively with their own dependents, or their reference cleared), then the row's ledger
 * mark, then the row. The default schema has no relations, so its deletion is the one DELETE (the fast path).
 */
export function prepareDelete(
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

/** Dependents of a row taken per piece: at most this many rows of one relation in one statement. */
export const DEPENDENT_PIECE = 256;

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
export function prepareDependentPieces(
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
export function prepareSteps(
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
export function deleteSteps(
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
export function ftsRemove(f: FtsDelete, table: string, where: string): string {
  const rows = `FROM ${quoteIdent(table)} WHERE ${where}`;
  if (f.by === 'values') {
    return `INSERT INTO ${quoteIdent(f.fts)} (${[quoteIdent(f.fts), 'rowid', ...f.columns.map(quoteIdent)].join(', ')}) SELECT ${["'delete'", quoteIdent(f.rowid), ...f.values.map(quoteIdent)].join(', ')} ${rows}`;
  }
  return `DELETE FROM ${quoteIdent(f.fts)} WHERE ${f.by} IN (SELECT ${quoteIdent(f.rowid)} ${rows})`;
}

/** Puts the entries of those rows (their values now) into the index. */
export function ftsAdd(f: FtsDelete, table: string, where: string): string {
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

export const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

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
