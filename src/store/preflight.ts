import type { Config } from '../config/load.js';
import { AppError, ConfigError } from '../errors.js';
import type { JobType } from '../types.js';
import { visibleViewName } from './marks.js';
import { EMBED_TRIGGER_PREFIX, embedIndexReady } from './embedIndex.js';
import { ledgerState, type LedgerState } from './migrate.js';
import { sortInTempFiles, type Db } from './open.js';
import { createIndexStatement, quoteIdent, SchemaInfo, type FkAction, type TriggerFact } from './schemaInfo.js';
import { checkedColumns, idColumnProblem } from './storedIds.js';
import { foreignKeyEnforcement, resolveTarget, type EmbedRule, type ForeignKeyEnforcement, type OrphanRule, type Relation, type Target } from './target.js';

/**
 * Preflight: what a cycle would do to this store, and whether it can, read from the store's own schema before any API
 * call or write (issues 11.7 and 13.3). `check-config --store` prints it; `reconcile --now`, the daemon at each cycle
 * start and `apply` refuse to start on a problem (exit 78, naming the config key), so nothing is spent or written on a
 * mapping the store does not have. Everything here only reads.
 */

/** The ledger's side table for marks when a mapping has no compliance columns (store.tables.T.compliance* null). */
const MARKS_SIDE_TABLE = 'cs_marks';

export interface ColumnCheck {
  /** The config key that names the column, e.g. store.tables.tweets.authorId. */
  key: string;
  column: string;
  found: boolean;
  declaredType: string | null;
}

/** What happens to the rows that reference a row being deleted (decided by the apply engine, src/store/target.ts). */
export interface RelationPlan {
  childTable: string;
  childColumn: string;
  /** The table whose deleted rows it references (a mapped table, or a child table whose rows are deleted in turn). */
  parentTable: string;
  parentColumn: string;
  /** delete: the referencing rows are deleted first; copy: as copies (tombstoned); set_null / set_default: the reference is cleared first. */
  action: Relation['action'];
  /** The declared ON DELETE of the FOREIGN KEY; null when the schema does not declare the relation. */
  declaredOnDelete: FkAction | null;
  /** Where the action comes from, so a reader knows which key changes it. */
  source: 'store.dependents' | 'declared ON DELETE' | 'reconcile.cascadeUsers' | 'default';
}

export interface IndexNeed {
  table: string;
  column: string;
  /** Why the work looks rows up by this column. */
  why: string;
  present: boolean;
  /** The statement `migrate --create-indexes` runs. */
  create: string;
  /** Rows of the table and a rough size of the index (filled in for missing indexes). */
  rows?: number;
  bytes?: number;
}

export interface FtsPlan {
  name: string;
  module: string;
  contentTable: string;
  /** Triggers on the content table whose SQL writes this FTS table: they keep it in step with deletions and updates. */
  keptByTriggers: string[];
}

export interface TypePreflight {
  type: JobType;
  table: string;
  tableFound: boolean;
  rows: number | null;
  columns: ColumnCheck[];
  marks: { where: 'columns'; columns: string[] } | { where: 'side table'; table: string };
  /** The view a publisher can serve instead of the table: its rows without a compliance mark. */
  visibleView: string;
  relations: RelationPlan[];
  fts: FtsPlan[];
  /** Triggers that fire on what a cycle does: DELETE or UPDATE of the mapped table, DELETE/UPDATE of related tables. */
  triggers: (Pick<TriggerFact, 'name' | 'table' | 'timing' | 'event'> & { updateOf: string[] | null })[];
  /** Columns whose IDs a cycle checks besides the table's own (store.dependents entries with `check`). */
  checkedIds: { key: string; table: string; column: string }[];
}

export interface PreflightProblem {
  /** The config key to change (or the command to run). */
  key: string;
  message: string;
  hint: string;
}

export interface Preflight {
  store: string;
  ledger: LedgerState;
  types: TypePreflight[];
  indexes: IndexNeed[];
  /** Tweets embedded in JSON columns: copies deleted, embedded objects removed or geo-scrubbed (src/store/sweeps.ts). */
  embeds: EmbedRule[];
  /** Tables whose rows a batch leaves unreferenced are deleted (store.orphans and discovered). */
  orphans: OrphanRule[];
  /** SQLite's foreign-key enforcement while a batch applies, and why (null: the mapping does not fit the store). */
  foreignKeyEnforcement: ForeignKeyEnforcement | null;
  problems: PreflightProblem[];
  warnings: string[];
}

/** Every column the mapping names for a type, with its config key. */
function mappedColumns(config: Config, type: JobType): { key: string; column: string }[] {
  const prefix = `store.tables.${type}`;
  const t = config.store.tables[type];
  const out: { key: string; column: string }[] = [{ key: `${prefix}.id`, column: t.id }];
  const named = (name: string, column: string | null) => {
    if (column !== null) out.push({ key: `${prefix}.${name}`, column });
  };
  if (type === 'tweets') {
    const tw = config.store.tables.tweets;
    named('authorId', tw.authorId);
    named('geoLat', tw.geoLat);
    named('geoLon', tw.geoLon);
    named('placeId', tw.placeId);
    named('rawJson', tw.rawJson);
    tw.geoColumns.forEach((column, i) => named(`geoColumns[${i}]`, column));
    tw.geoJson.forEach((entry, i) => named(`geoJson[${i}].column`, entry.column));
  }
  named('complianceState', t.complianceState);
  named('complianceReason', t.complianceReason);
  named('complianceAt', t.complianceAt);
  return out;
}

/** The types a cycle of these types changes: a users cycle with the cascade on changes tweets too. */
function touchedTypes(config: Config, types: readonly JobType[]): JobType[] {
  const touched = new Set<JobType>(types);
  if (touched.has('users') && config.reconcile.cascadeUsers) touched.add('tweets');
  return (['tweets', 'users'] as const).filter((t) => touched.has(t));
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/**
 * The relations acted on when rows of a mapped table are deleted, transitively (a deleted link row's own dependents
 * too), as the apply engine resolves them (src/store/target.ts): store.dependents first, then the declared ON DELETE
 * action, then by shape.
 */
function plannedRelations(target: Target, config: Config, type: JobType): RelationPlan[] {
  const plans: RelationPlan[] = [];
  const queue = [target[type].table];
  const seen = new Set<string>();
  while (queue.length) {
    const parent = queue.shift()!;
    if (seen.has(parent.toLowerCase())) continue;
    seen.add(parent.toLowerCase());
    for (const r of target.relations.get(parent.toLowerCase()) ?? []) {
      const configured = config.store.dependents.some((d) => same(d.table, r.childTable) && same(d.column, r.childColumn));
      plans.push({
        childTable: r.childTable,
        childColumn: r.childColumn,
        parentTable: r.parentTable,
        parentColumn: r.parentColumn,
        action: r.action,
        declaredOnDelete: r.declared,
        source: configured ? 'store.dependents' : r.declared && r.declared !== 'NO ACTION' && r.declared !== 'RESTRICT' ? 'declared ON DELETE' : r.cascade ? 'reconcile.cascadeUsers' : 'default',
      });
      if (r.action === 'delete' || (r.action === 'copy' && !same(r.childTable, target.tweets.table) && !same(r.childTable, target.users.table))) queue.push(r.childTable);
    }
  }
  return plans;
}

/**
 * The (table, column) lookups the work needs an index for: the mapped IDs, the author column of the cascade, and
 * every column that references rows being deleted (each deletion finds the referencing rows by it).
 */
export function neededIndexes(config: Config, types: readonly JobType[], target: Target): { table: string; column: string; why: string }[] {
  const tables = config.store.tables;
  const needs: { table: string; column: string; why: string }[] = [];
  const add = (table: string, column: string, why: string) => {
    if (!needs.some((n) => same(n.table, table) && same(n.column, column))) needs.push({ table, column, why });
  };
  for (const type of touchedTypes(config, types)) {
    add(tables[type].table, tables[type].id, `store.tables.${type}.id: every result is looked up by ID`);
  }
  if (types.includes('users') && config.reconcile.cascadeUsers && tables.tweets.authorId) {
    add(tables.tweets.table, tables.tweets.authorId, "store.tables.tweets.authorId: a user's deletion, mark or geo scrub finds the author's tweets by it");
  }
  for (const type of touchedTypes(config, types)) {
    for (const r of plannedRelations(target, config, type)) {
      add(r.childTable, r.childColumn, `references ${r.parentTable}.${r.parentColumn}: each deleted row's references are found by it`);
    }
  }
  for (const o of target.orphans) {
    for (const ref of o.referencedBy) add(ref.table, ref.column, `references ${o.table}.${o.key}: each orphan candidate is probed by it`);
    add(o.table, o.key, `orphans of ${o.table} are found by their key`);
  }
  return needs;
}

/**
 * Which of these lookups has no index that leads with the column, with the CREATE INDEX that fixes it and what it
 * costs (rows of the table, a rough size). A table or column that does not exist is left out (preflight reports it).
 */
export function missingIndexes(db: Db, needs: readonly { table: string; column: string; why: string }[], options: { costs?: boolean } = {}): IndexNeed[] {
  const info = new SchemaInfo(db);
  const out: IndexNeed[] = [];
  for (const need of needs) {
    const column = info.column(need.table, need.column);
    if (!info.table(need.table) || !column) continue;
    const present = info.hasLeadingIndex(need.table, need.column);
    const entry: IndexNeed = { ...need, present, create: createIndexStatement(need.table, need.column) };
    if (!present && (options.costs ?? true)) Object.assign(entry, indexCost(db, need.table, need.column, column.type));
    out.push(entry);
  }
  return out;
}

/**
 * A rough size of an index on one column: per entry the key (8 bytes for an integer, else the average stored length),
 * the rowid (up to 9), a cell pointer and header (~5), at SQLite's usual ~90% page fill. One scan of the table.
 */
function indexCost(db: Db, table: string, column: string, declaredType: string): { rows: number; bytes: number } {
  const stats = db.prepare(`SELECT count(*) AS n, avg(length(CAST(${quoteIdent(column)} AS BLOB))) AS len FROM ${quoteIdent(table)}`).get() as {
    n: bigint;
    len: number | null;
  };
  const rows = Number(stats.n);
  const key = /INT/i.test(declaredType) ? 8 : Math.max(1, Math.round(stats.len ?? 8));
  return { rows, bytes: Math.round((rows * (key + 9 + 5)) / 0.9) };
}

/** Runs every check for these types; `rows` also counts each mapped table (a scan each: check-config only). */
export function preflight(db: Db, config: Config, types: readonly JobType[], options: { rows?: boolean } = {}): Preflight {
  const info = new SchemaInfo(db);
  const tables = config.store.tables;
  const problems: PreflightProblem[] = [];
  const warnings: string[] = [];
  const touched = touchedTypes(config, types);

  if (types.includes('users') && config.reconcile.cascadeUsers && tables.tweets.authorId === null) {
    problems.push({
      key: 'store.tables.tweets.authorId',
      message: "reconcile.cascadeUsers is on but store.tables.tweets.authorId is null, so a user's tweets cannot be found",
      hint: 'map store.tables.tweets.authorId to the column holding the author ID, or set reconcile.cascadeUsers to false',
    });
  }

  const typeReports: TypePreflight[] = [];
  for (const type of touched) {
    const mapping = tables[type];
    const table = info.table(mapping.table);
    const report: TypePreflight = {
      type,
      table: mapping.table,
      tableFound: table?.kind === 'table',
      rows: null,
      columns: [],
      marks:
        mapping.complianceState && mapping.complianceReason && mapping.complianceAt
          ? { where: 'columns', columns: [mapping.complianceState, mapping.complianceReason, mapping.complianceAt] }
          : { where: 'side table', table: MARKS_SIDE_TABLE },
      visibleView: visibleViewName(table?.name ?? mapping.table),
      relations: [],
      fts: [],
      triggers: [],
      checkedIds: [],
    };
    typeReports.push(report);
    if (!table || table.kind !== 'table') {
      problems.push({
        key: `store.tables.${type}.table`,
        message: table ? `"${mapping.table}" is a ${table.kind}, not a table: rows cannot be deleted from it` : `the store has no table "${mapping.table}"`,
        hint: `set store.tables.${type}.table to the table holding ${type} (tables: ${listTables(info) || 'none'})`,
      });
      continue;
    }
    if (options.rows) report.rows = Number((db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(table.name)}`).get() as { n: bigint }).n);
    const columns = info.columns(table.name);
    for (const { key, column } of mappedColumns(config, type)) {
      const found = columns.find((c) => same(c.name, column));
      report.columns.push({ key, column, found: found !== undefined, declaredType: found?.type ?? null });
      if (!found) {
        const compliance = /\.compliance(State|Reason|At)$/.test(key);
        const optional = type === 'tweets' && !key.endsWith('.id');
        problems.push({
          key,
          message: `table "${table.name}" has no column "${column}"`,
          hint: compliance
            ? `set complianceState, complianceReason and complianceAt of store.tables.${type} to null to keep marks in the ledger (${MARKS_SIDE_TABLE}), or add the columns`
            : `set ${key} to the column's real name (columns: ${columns.map((c) => c.name).join(', ')})${optional ? ', or to null if the store has no such column' : ''}`,
        });
      } else if ((key.endsWith('.id') || key.endsWith('.authorId')) && isRealAffinity(found.type)) {
        // A REAL column holds IDs as doubles: 64-bit snowflakes are rounded there and never match.
        problems.push({
          key,
          message: `column "${table.name}"."${column}" is declared ${found.type}: 64-bit IDs are rounded in a floating-point column`,
          hint: 'map a column declared INTEGER or TEXT',
        });
      }
    }
  }

  // The relations as the apply engine will act on them; only once the mapping itself fits the store.
  let target: Target | null = null;
  if (problems.length === 0) {
    try {
      target = resolveTarget(db, config);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      problems.push({ key: configKeyIn(`${err.message} ${err.hint ?? ''}`), message: err.message, hint: err.hint ?? 'see store.dependents in README.md' });
    }
  }
  for (const report of typeReports) {
    if (!target || !report.tableFound) continue;
    const realTable = info.table(report.table)!.name;
    report.relations = plannedRelations(target, config, report.type);
    for (const relation of report.relations) {
      pushTriggers(report, info.triggersOn(relation.childTable, relation.action === 'delete' || relation.action === 'copy' ? 'DELETE' : 'UPDATE'));
    }
    pushTriggers(report, [...info.triggersOn(realTable, 'DELETE'), ...info.triggersOn(realTable, 'UPDATE')]);
    const triggers = info.triggersOn(realTable);
    for (const fts of info.ftsOver(realTable)) {
      const keptBy = triggers.filter((t) => t.event !== 'INSERT' && new RegExp(`\\b${escapeRegExp(fts.name)}\\b`, 'i').test(t.sql)).map((t) => t.name);
      report.fts.push({ name: fts.name, module: fts.module, contentTable: fts.contentTable!, keptByTriggers: keptBy });
      if (keptBy.length === 0) {
        warnings.push(`full-text table "${fts.name}" indexes "${realTable}" but no DELETE or UPDATE trigger on it writes "${fts.name}": compliance-sync removes the entries of the rows it deletes, but rows others change stay stale there until it is rebuilt`);
      }
    }
  }

  // IDs checked without a row of the mapped table: read in numeric order, as the table's own IDs are (StoredIds). A
  // column that does not exist is already a problem (resolveTarget names the store.dependents entry).
  for (const report of typeReports) {
    for (const source of checkedColumns(config, report.type)) {
      report.checkedIds.push({ key: source.entry, table: source.table, column: source.column });
      const problem = info.column(source.table, source.column) ? idColumnProblem(info, source) : null;
      if (problem) problems.push({ key: source.key, ...problem });
    }
  }

  for (const unreachable of target?.ftsUnreachable ?? []) {
    warnings.push(`full-text table "${unreachable.fts}" indexes "${unreachable.table}", but ${unreachable.why}. To fix: ${unreachable.fix}`);
  }

  const indexes = target ? missingIndexes(db, neededIndexes(config, types, target)) : [];
  const missing = indexes.filter((n) => !n.present);
  if (missing.length) {
    // One problem for all of them: one command makes them all.
    problems.push({
      key: 'migrate --create-indexes',
      message:
        `${missing.length === 1 ? 'an index' : `${missing.length} indexes`} the work needs ${missing.length === 1 ? 'is' : 'are'} missing; without ` +
        `${missing.length === 1 ? 'it' : 'them'} every deletion scans the table while holding the write lock:\n` +
        missing.map((n) => `    ${n.create};  -- ${n.why}; ${formatCost(n)}`).join('\n'),
      hint: `compliance-sync migrate --create-indexes --config ${config.configPath} (or run the statements above yourself)`,
    });
  }

  if (target && target.embeds.length && !embedIndexReady(db, target)) {
    warnings.push(
      `tweets embedded in "${target.tweets.table}" are found through the ledger's index cs_embeds, which the first apply makes: triggers on "${target.tweets.table}" (${EMBED_TRIGGER_PREFIX}*) keep it, and the rows stored before are filled in once, in transactions of a few thousand rows; set store.tables.tweets.embeds to [] if the store keeps no embedded tweets`,
    );
  }
  return {
    store: config.store.path,
    ledger: ledgerState(db),
    types: typeReports,
    indexes,
    embeds: [...(target?.embeds ?? [])],
    orphans: [...(target?.orphans ?? [])],
    foreignKeyEnforcement: target ? foreignKeyEnforcement(target) : null,
    problems,
    warnings,
  };
}

/**
 * The preflight of work that is about to start: throws a ConfigError (exit 78) naming the config key of the first
 * problem (and listing the others), before any API call or write.
 */
export function assertPreflight(db: Db, config: Config, types: readonly JobType[]): Preflight {
  const result = preflight(db, config, types);
  if (result.problems.length === 0) return result;
  const [first, ...rest] = result.problems;
  const more = rest.length ? `\n  and ${rest.length} more: ${rest.map((p) => `${p.key}: ${p.message}`).join('\n  ')}` : '';
  throw new ConfigError(`${first!.key} (store ${config.store.path}): ${first!.message}${more}`, {
    hint: `${first!.hint}; \`compliance-sync check-config --store\` shows every check`,
  });
}

export function formatCost(need: IndexNeed): string {
  if (need.rows === undefined || need.bytes === undefined) return 'cost unknown';
  return `${need.table} has ${need.rows.toLocaleString('en-US')} rows; the index takes ~${formatBytes(need.bytes)} and one scan to build`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

function pushTriggers(report: TypePreflight, triggers: TriggerFact[]): void {
  for (const t of triggers) {
    if (!report.triggers.some((r) => r.name === t.name)) report.triggers.push({ name: t.name, table: t.table, timing: t.timing, event: t.event, updateOf: t.updateOf });
  }
}

/** SQLite's affinity rule 4: a declared type containing REAL, FLOA or DOUB (and none of INT, CHAR, CLOB, TEXT) is REAL. */
function isRealAffinity(type: string): boolean {
  return !/INT|CHAR|CLOB|TEXT/i.test(type) && /REAL|FLOA|DOUB/i.test(type);
}

/** The first config key a message names (the engine's errors name store.dependents or store.tables keys in their text). */
function configKeyIn(text: string): string {
  return /store\.(?:dependents|tables)(?:\.[A-Za-z]+|\[\d+\])*/.exec(text)?.[0] ?? 'store.dependents';
}

function listTables(info: SchemaInfo): string {
  return info
    .tables()
    .filter((t) => t.kind === 'table' && !t.name.startsWith('cs_'))
    .map((t) => t.name)
    .join(', ');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Creates the missing indexes (`migrate --create-indexes`, opt-in: building one scans its table and holds the write
 * lock meanwhile), each in its own transaction so one that fails leaves the others. Returns the statements run.
 */
export function createMissingIndexes(db: Db, config: Config, types: readonly JobType[], onIndex?: (need: IndexNeed) => void): IndexNeed[] {
  const missing = missingIndexes(db, neededIndexes(config, types, resolveTarget(db, config))).filter((need) => !need.present);
  // An index over a large table: sorted in temp files, not in memory. Nothing here uses a TEMP table.
  if (missing.length) sortInTempFiles(db);
  for (const need of missing) {
    onIndex?.(need);
    db.exec(need.create);
  }
  return missing;
}
