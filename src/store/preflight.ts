import type { Config } from '../config/load.js';
import { ConfigError } from '../errors.js';
import type { JobType } from '../types.js';
import { ledgerState, type LedgerState } from './migrate.js';
import type { Db } from './open.js';
import { quoteIdent, SchemaInfo, type FkAction, type TriggerFact } from './schemaInfo.js';

/**
 * Preflight: what a cycle would do to this store, and whether it can, read from the store's own schema before any API
 * call or write (issues 11.7 and 13.3). `check-config --store` prints it; `reconcile --now`, the daemon at each cycle
 * start and `apply` refuse to start on a problem (exit 78, naming the config key), so nothing is spent or written on a
 * mapping the store does not have. Everything here only reads.
 */

/** The ledger's side table for marks when a mapping has no compliance columns (store.tables.T.compliance* null). */
export const MARKS_SIDE_TABLE = 'cs_marks';

/** Prefix of the indexes `migrate --create-indexes` makes, so they are recognisable as this tool's. */
export const INDEX_PREFIX = 'cs_idx_';

export interface ColumnCheck {
  /** The config key that names the column, e.g. store.tables.tweets.authorId. */
  key: string;
  column: string;
  found: boolean;
  declaredType: string | null;
}

/** What happens to the rows of another table (or the same one) that reference a row being deleted. */
export type RelationAction =
  | 'delete' // compliance-sync deletes the referencing rows first, in the same transaction
  | 'set_null' // compliance-sync sets the referencing column to NULL first
  | 'database_cascade' // the declared ON DELETE CASCADE does it; counted
  | 'database_set_null' // the declared ON DELETE SET NULL does it; counted
  | 'database_set_default'; // the declared ON DELETE SET DEFAULT does it; counted

export interface RelationPlan {
  childTable: string;
  childColumn: string;
  /** Whose rows it references. */
  references: JobType;
  /** The declared ON DELETE of the FOREIGN KEY; null when only store.dependents names the relation. */
  declaredOnDelete: FkAction | null;
  action: RelationAction;
  /** Where the action comes from, so a reader knows which key changes it. */
  source: 'declared ON DELETE' | 'default' | 'store.dependents';
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
  relations: RelationPlan[];
  fts: FtsPlan[];
  /** Triggers that fire on what a cycle does: DELETE or UPDATE of the mapped table, DELETE/UPDATE of related tables. */
  triggers: (Pick<TriggerFact, 'name' | 'table' | 'timing' | 'event'> & { updateOf: string[] | null })[];
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
  problems: PreflightProblem[];
  warnings: string[];
}

interface DependentEntry {
  table: string;
  column: string;
  references: JobType;
  action: 'delete' | 'set_null';
}

/** The optional columns of a tweets mapping, with their config keys (geo columns and JSON columns as the apply engine reads them). */
function mappedColumns(config: Config, type: JobType): { key: string; column: string }[] {
  const prefix = `store.tables.${type}`;
  const t = config.store.tables[type] as unknown as Record<string, unknown>;
  const out: { key: string; column: string }[] = [{ key: `${prefix}.id`, column: String(t.id) }];
  const single = type === 'tweets' ? ['authorId', 'geoLat', 'geoLon', 'placeId', 'rawJson'] : [];
  for (const name of [...single, 'complianceState', 'complianceReason', 'complianceAt']) {
    if (typeof t[name] === 'string') out.push({ key: `${prefix}.${name}`, column: t[name] });
  }
  // geoColumns / geoJson arrive with the foreign-archive mapping (issue 11.5); read them when the config has them.
  if (Array.isArray(t.geoColumns)) (t.geoColumns as string[]).forEach((column, i) => out.push({ key: `${prefix}.geoColumns[${i}]`, column }));
  if (Array.isArray(t.geoJson)) (t.geoJson as { column: string }[]).forEach((entry, i) => out.push({ key: `${prefix}.geoJson[${i}].column`, column: entry.column }));
  return out;
}

function dependentsOf(config: Config): DependentEntry[] {
  const store = config.store as unknown as { dependents?: DependentEntry[] };
  return store.dependents ?? [];
}

function hasComplianceColumns(config: Config, type: JobType): boolean {
  return config.store.tables[type].complianceState !== null;
}

/** The types a cycle of these types changes: a users cycle with the cascade on changes tweets too. */
function touchedTypes(config: Config, types: readonly JobType[]): JobType[] {
  const touched = new Set<JobType>(types);
  if (touched.has('users') && config.reconcile.cascadeUsers) touched.add('tweets');
  return (['tweets', 'users'] as const).filter((t) => touched.has(t));
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/**
 * The relations whose rows reference a mapped type's rows, and what a deletion does to them: the declared FOREIGN KEYs
 * (their ON DELETE CASCADE/SET NULL/SET DEFAULT is the database's to do), and store.dependents, which adds relations
 * the schema does not declare and overrides the action. Otherwise: rows of other tables are deleted; a reference
 * between mapped tables (a retweet's pointer, a tweet's author) is set to NULL.
 */
export function plannedRelations(db: Db, config: Config, type: JobType): RelationPlan[] {
  const info = new SchemaInfo(db);
  const tables = config.store.tables;
  const mapped = [tables.tweets.table, tables.users.table];
  const plans: RelationPlan[] = [];
  for (const fk of info.foreignKeysReferencing(tables[type].table)) {
    const childColumn = fk.childColumns[0]!;
    const declared = fk.onDelete;
    const dbAction: RelationAction | null =
      declared === 'CASCADE' ? 'database_cascade' : declared === 'SET NULL' ? 'database_set_null' : declared === 'SET DEFAULT' ? 'database_set_default' : null;
    plans.push({
      childTable: fk.childTable,
      childColumn,
      references: type,
      declaredOnDelete: declared,
      action: dbAction ?? (mapped.some((m) => same(m, fk.childTable)) ? 'set_null' : 'delete'),
      source: dbAction ? 'declared ON DELETE' : 'default',
    });
  }
  for (const dep of dependentsOf(config)) {
    if (dep.references !== type) continue;
    const existing = plans.find((p) => same(p.childTable, dep.table) && same(p.childColumn, dep.column));
    if (existing) {
      existing.action = dep.action;
      existing.source = 'store.dependents';
    } else {
      plans.push({ childTable: dep.table, childColumn: dep.column, references: type, declaredOnDelete: null, action: dep.action, source: 'store.dependents' });
    }
  }
  return plans;
}

/** The (table, column) lookups the work needs an index for: the mapped IDs, the author column, every referencing column. */
export function neededIndexes(db: Db, config: Config, types: readonly JobType[]): { table: string; column: string; why: string }[] {
  const tables = config.store.tables;
  const needs: { table: string; column: string; why: string }[] = [];
  const add = (table: string, column: string, why: string) => {
    if (!needs.some((n) => same(n.table, table) && same(n.column, column))) needs.push({ table, column, why });
  };
  for (const type of touchedTypes(config, types)) {
    add(tables[type].table, tables[type].id, `store.tables.${type}.id: every result is looked up by ID`);
    for (const relation of plannedRelations(db, config, type)) {
      add(relation.childTable, relation.childColumn, `references ${type} (each deleted ${type === 'tweets' ? 'tweet' : 'user'} looks up its rows here)`);
    }
  }
  if (types.includes('users') && config.reconcile.cascadeUsers && tables.tweets.authorId) {
    add(tables.tweets.table, tables.tweets.authorId, "store.tables.tweets.authorId: a user's deletion, mark or geo scrub finds the author's tweets by it");
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

export function createIndexStatement(table: string, column: string): string {
  const name = `${INDEX_PREFIX}${table}_${column}`.replace(/[^A-Za-z0-9_]/g, '_');
  return `CREATE INDEX IF NOT EXISTS ${quoteIdent(name)} ON ${quoteIdent(table)}(${quoteIdent(column)})`;
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
      marks: hasComplianceColumns(config, type)
        ? { where: 'columns', columns: [mapping.complianceState, mapping.complianceReason, mapping.complianceAt] as string[] }
        : { where: 'side table', table: MARKS_SIDE_TABLE },
      relations: [],
      fts: [],
      triggers: [],
    };
    typeReports.push(report);
    if (!table || table.kind !== 'table') {
      problems.push({
        key: `store.tables.${type}.table`,
        message: table
          ? `"${mapping.table}" is a ${table.kind}, not a table: rows cannot be deleted from it`
          : `the store has no table "${mapping.table}"`,
        hint: `set store.tables.${type}.table to the table holding ${type}${info.tables().length ? ` (tables: ${listTables(info)})` : ''}`,
      });
      continue;
    }
    if (options.rows) report.rows = Number((db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(mapping.table)}`).get() as { n: bigint }).n);
    const columns = info.columns(mapping.table);
    for (const { key, column } of mappedColumns(config, type)) {
      const found = columns.find((c) => same(c.name, column));
      report.columns.push({ key, column, found: found !== undefined, declaredType: found?.type ?? null });
      if (!found) {
        const optional = type === 'tweets' && !key.endsWith('.id');
        problems.push({
          key,
          message: `table "${mapping.table}" has no column "${column}"`,
          hint: `set ${key} to the column's real name (columns: ${columns.map((c) => c.name).join(', ')})${optional ? ', or to null if the store has no such column' : ''}`,
        });
      } else if ((key.endsWith('.id') || key.endsWith('.authorId')) && isRealAffinity(found.type)) {
        // A REAL column holds IDs as doubles: 64-bit snowflakes are rounded there and never match.
        problems.push({
          key,
          message: `column "${mapping.table}"."${column}" is declared ${found.type}: 64-bit IDs are rounded in a floating-point column`,
          hint: 'map a column declared INTEGER or TEXT',
        });
      }
    }
    report.relations = plannedRelations(db, config, type);
    for (const [i, dep] of dependentsOf(config).entries()) {
      if (dep.references !== type) continue;
      if (!info.table(dep.table)) problems.push({ key: `store.dependents[${i}].table`, message: `the store has no table "${dep.table}"`, hint: 'name an existing table, or remove the entry' });
      else if (!info.column(dep.table, dep.column))
        problems.push({ key: `store.dependents[${i}].column`, message: `table "${dep.table}" has no column "${dep.column}"`, hint: `columns: ${info.columns(dep.table).map((c) => c.name).join(', ')}` });
    }
    for (const relation of report.relations) {
      const child = info.column(relation.childTable, relation.childColumn);
      if (relation.action === 'set_null' && child?.notNull) {
        problems.push({
          key: relation.source === 'store.dependents' ? keyOfDependent(config, relation) : 'store.dependents',
          message: `"${relation.childTable}"."${relation.childColumn}" references ${type} but is NOT NULL, so it cannot be set to NULL`,
          hint: `add {"table": "${relation.childTable}", "column": "${relation.childColumn}", "references": "${type}", "action": "delete"} to store.dependents`,
        });
      }
      if (relation.action === 'delete' || relation.action === 'database_cascade') pushTriggers(report, info.triggersOn(relation.childTable, 'DELETE'));
      if (relation.action === 'set_null' || relation.action === 'database_set_null' || relation.action === 'database_set_default') {
        pushTriggers(report, info.triggersOn(relation.childTable, 'UPDATE'));
      }
    }
    pushTriggers(report, [...info.triggersOn(mapping.table, 'DELETE'), ...info.triggersOn(mapping.table, 'UPDATE')]);
    const triggers = info.triggersOn(mapping.table);
    for (const fts of info.ftsOver(mapping.table)) {
      const keptBy = triggers.filter((t) => t.event !== 'INSERT' && new RegExp(`\\b${escapeRegExp(fts.name)}\\b`, 'i').test(t.sql)).map((t) => t.name);
      report.fts.push({ name: fts.name, module: fts.module, contentTable: fts.contentTable!, keptByTriggers: keptBy });
      if (keptBy.length === 0) {
        warnings.push(`full-text table "${fts.name}" indexes "${mapping.table}" but no DELETE or UPDATE trigger on it writes "${fts.name}": deleted rows stay searchable there until it is rebuilt`);
      }
    }
  }

  const indexes = missingIndexes(db, neededIndexes(db, config, types));
  for (const need of indexes.filter((n) => !n.present)) {
    problems.push({
      key: 'migrate --create-indexes',
      message: `no index leads with "${need.table}"."${need.column}" (${need.why}): without it every lookup scans ${need.rows ?? '?'} rows while holding the write lock`,
      hint: `${need.create}; — ${formatCost(need)}; \`compliance-sync migrate --create-indexes\` creates every missing one`,
    });
  }

  return { store: config.store.path, ledger: ledgerState(db), types: typeReports, indexes, problems, warnings };
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
  throw new ConfigError(`${first!.key}: ${first!.message} (store ${config.store.path})${more}`, {
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

function keyOfDependent(config: Config, relation: RelationPlan): string {
  const i = dependentsOf(config).findIndex((d) => same(d.table, relation.childTable) && same(d.column, relation.childColumn));
  return `store.dependents[${i}].action`;
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
  const missing = missingIndexes(db, neededIndexes(db, config, types)).filter((need) => !need.present);
  for (const need of missing) {
    onIndex?.(need);
    db.exec(need.create);
  }
  return missing;
}
