import type { Config } from '../config/load.js';
import type { Db } from './open.js';
import { quoteIdent, quoteLiteral, SchemaInfo } from './schemaInfo.js';
import type { Relation, TableTarget, Target } from './target.js';

export type GuardMode = Config['reconcile']['guard'];

/** What an ingester sees when reconcile.guard is `abort` and it writes a tombstoned ID (SQLITE_CONSTRAINT_TRIGGER). */
export const GUARD_ABORT_MESSAGE =
  'compliance-sync: this ID was deleted for compliance (table cs_tombstones); reconcile.guard = abort refuses to store it again';

const GUARD_PREFIX = 'cs_guard_';

/**
 * The ingest guard's triggers on one mapped table. A BEFORE INSERT trigger fires for a plain INSERT, for INSERT OR
 * REPLACE (before the old row is replaced) and for an UPSERT (before its conflict check), so RAISE there stops all
 * three; a BEFORE UPDATE OF the ID column stops a row being renumbered onto a tombstoned ID. With the marks in the
 * table's own columns, an INSERT OR REPLACE would write the row back without them: the mark is handed over through
 * cs_guard_marks (saved before the insert while the old row is still there, restored after it).
 */
function guardTriggers(t: TableTarget, mode: GuardMode): Map<string, string> {
  const out = new Map<string, string>();
  if (mode === 'off') return out;
  const table = quoteIdent(t.table);
  const id = quoteIdent(t.id);
  const raise = mode === 'ignore' ? 'RAISE(IGNORE)' : `RAISE(ABORT, ${quoteLiteral(GUARD_ABORT_MESSAGE)})`;
  const tombstoned = (expr: string) => `EXISTS (SELECT 1 FROM cs_tombstones WHERE type = '${t.type}' AND id = ${expr})`;
  const name = (suffix: string) => `${GUARD_PREFIX}${t.table}_${suffix}`;
  out.set(name('insert'), `CREATE TRIGGER ${quoteIdent(name('insert'))} BEFORE INSERT ON ${table} WHEN ${tombstoned(`NEW.${id}`)} BEGIN SELECT ${raise}; END`);
  out.set(
    name('renumber'),
    `CREATE TRIGGER ${quoteIdent(name('renumber'))} BEFORE UPDATE OF ${id} ON ${table} WHEN NEW.${id} IS NOT OLD.${id} AND ${tombstoned(`NEW.${id}`)} BEGIN SELECT ${raise}; END`,
  );
  if (t.marks) {
    const [state, reason, at] = [quoteIdent(t.marks.state), quoteIdent(t.marks.reason), quoteIdent(t.marks.at)];
    const stash = `type = '${t.type}' AND id = NEW.${id}`;
    out.set(
      name('save_marks'),
      `CREATE TRIGGER ${quoteIdent(name('save_marks'))} BEFORE INSERT ON ${table} BEGIN
  DELETE FROM cs_guard_marks WHERE ${stash};
  INSERT INTO cs_guard_marks (type, id, state, reason, at) SELECT '${t.type}', ${id}, ${state}, ${reason}, ${at} FROM ${table} WHERE ${id} = NEW.${id} AND ${state} IS NOT NULL;
END`,
    );
    out.set(
      name('restore_marks'),
      `CREATE TRIGGER ${quoteIdent(name('restore_marks'))} AFTER INSERT ON ${table} WHEN EXISTS (SELECT 1 FROM cs_guard_marks WHERE ${stash}) BEGIN
  UPDATE ${table} SET (${state}, ${reason}, ${at}) = (SELECT state, reason, at FROM cs_guard_marks WHERE ${stash}) WHERE ${id} = NEW.${id} AND ${state} IS NULL;
  DELETE FROM cs_guard_marks WHERE ${stash};
END`,
    );
  }
  return out;
}

/**
 * The guard on a table that references a mapped table's ID (a relation the deletion acts on): an ingester that
 * writes a link row, a like, a user's tweet, a quote pointer for a tombstoned ID gets what the deletion would have
 * done to it. Rows the deletion removes are not written (RAISE as for the mapped tables); a reference the deletion
 * clears is cleared after the insert, so the row itself is kept.
 */
function relationGuardTriggers(relation: Relation, parent: TableTarget, mode: GuardMode): Map<string, string> {
  const out = new Map<string, string>();
  if (mode === 'off' || relation.parentColumn.toLowerCase() !== parent.id.toLowerCase()) return out;
  const child = quoteIdent(relation.childTable);
  const column = quoteIdent(relation.childColumn);
  const tombstoned = `EXISTS (SELECT 1 FROM cs_tombstones WHERE type = '${parent.type}' AND id = NEW.${column})`;
  const name = `${GUARD_PREFIX}${relation.childTable}_${relation.childColumn}_${parent.type}`;
  // A copy (a retweet of a tombstoned tweet) is refused like a dependent: X removed it with its original.
  if (relation.action === 'delete' || relation.action === 'copy') {
    const raise = mode === 'ignore' ? 'RAISE(IGNORE)' : `RAISE(ABORT, ${quoteLiteral(GUARD_ABORT_MESSAGE)})`;
    out.set(name, `CREATE TRIGGER ${quoteIdent(name)} BEFORE INSERT ON ${child} WHEN ${tombstoned} BEGIN SELECT ${raise}; END`);
  } else {
    const value = relation.action === 'set_default' ? (relation.defaultSql ?? 'NULL') : 'NULL';
    out.set(name, `CREATE TRIGGER ${quoteIdent(name)} AFTER INSERT ON ${child} WHEN ${tombstoned} BEGIN UPDATE ${child} SET ${column} = ${value} WHERE ${column} = NEW.${column}; END`);
  }
  return out;
}

/**
 * Brings the guard's triggers (on both mapped tables and the tables referencing them) in line with reconcile.guard: creates what is missing, replaces
 * what changed (the mapping or the mode), drops what is no longer wanted. Cheap when nothing changed.
 */
export function ensureGuard(db: Db, target: Target, mode: GuardMode): void {
  const wanted = new Map<string, string>();
  for (const t of [target.tweets, target.users]) {
    for (const [name, sql] of guardTriggers(t, mode)) wanted.set(name, sql);
    for (const relation of target.relations.get(t.table.toLowerCase()) ?? []) {
      for (const [name, sql] of relationGuardTriggers(relation, t, mode)) wanted.set(name, sql);
    }
  }
  const existing = new SchemaInfo(db).triggers().filter((t) => t.name.startsWith(GUARD_PREFIX));
  const stale = existing.filter((e) => wanted.get(e.name) !== e.sql);
  const missing = [...wanted].filter(([name]) => !existing.some((e) => e.name === name && e.sql === wanted.get(name)));
  if (!stale.length && !missing.length) return;
  db.transaction(() => {
    for (const e of stale) db.exec(`DROP TRIGGER ${quoteIdent(e.name)}`);
    for (const [, sql] of missing) db.exec(sql);
  }).immediate();
}
