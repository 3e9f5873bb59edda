import type { Config } from '../config/load.js';
import { durationMs } from '../config/duration.js';
import { JOB_TYPES } from '../types.js';
import { scanDeletedBytes } from './auditBytes.js';
import { coverageOf } from './coverage.js';
import { embeddedCopiesSql, embeddedGeoSql, orphansSql, stillReferencingSql, tombstoneId } from './copyResidue.js';
import type { Db } from './open.js';
import { quoteIdent, quoteLiteral, SchemaInfo, type FtsFact } from './schemaInfo.js';
import { resolveTarget, triggerWrites, type Target } from './target.js';

/**
 * `compliance-sync audit`: checks that what the ledger says was done to the store is still true of it. Each check is
 * named, reads the store (never changes content) and returns how many violations it found, a few examples (IDs and
 * where they are, never content) and what it could not look at. AUDIT_CHECKS is the list `audit` runs, in order: a
 * new kind of residue is one more entry.
 */

/** Where a violation is (a table, `table.column`, a JSON path, an FTS table, a region of a file) and the ID it concerns. */
export interface AuditExample {
  where: string;
  id: string;
}

/** What one check found. */
export interface CheckResult {
  /** Violations: rows, index entries or IDs, as the check's `unit` says. 0 means the check passed. */
  count: number;
  /** Up to `AuditContext.examples` of them. */
  examples: AuditExample[];
  /** Violations per place (table, column, FTS table, file region), for the report. */
  locations: Record<string, number>;
  /** What the check could not look at, said plainly (not violations). */
  notes: string[];
}

export interface AuditContext {
  readonly db: Db;
  readonly config: Config;
  readonly target: Target;
  readonly schema: SchemaInfo;
  readonly now: Date;
  /** Examples kept per check. */
  readonly examples: number;
  readonly storePath: string;
}

export interface AuditCheck {
  /** Stable name: the JSON output, the ledger and the report use it. */
  readonly name: string;
  /** What a violation is, as a plural noun phrase ("tombstoned IDs still stored"). */
  readonly unit: string;
  /** Runs only when asked (`--scan-bytes`): it reads the whole file. */
  readonly optIn?: 'scanBytes';
  run(ctx: AuditContext): CheckResult;
}

/** A findings accumulator: counts per location, the first examples, notes. */
export class Findings {
  readonly result: CheckResult = { count: 0, examples: [], locations: {}, notes: [] };
  constructor(private readonly limit: number) {}

  add(where: string, count: number, ids: readonly (string | bigint)[] = []): void {
    if (count <= 0) return;
    this.result.count += count;
    this.result.locations[where] = (this.result.locations[where] ?? 0) + count;
    for (const id of ids) {
      if (this.result.examples.length >= this.limit) break;
      this.result.examples.push({ where, id: String(id) });
    }
  }

  note(text: string): void {
    if (!this.result.notes.includes(text)) this.result.notes.push(text);
  }
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();


/** count(*) and the first examples of a query that selects one column (an ID). */
export function countAndExamples(db: Db, sql: string, params: unknown[], limit: number): { count: number; ids: bigint[] } {
  const count = Number(db.prepare(`SELECT count(*) FROM (${sql})`).pluck().get(...params) as bigint);
  const ids = count && limit ? (db.prepare(`${sql} LIMIT ${limit}`).pluck().all(...params) as bigint[]) : [];
  return { count, ids };
}

/** (1) Rows of a mapped table whose ID is tombstoned: a deleted row that came back (a restored backup, an ingester past the guard). */
const tombstonedRows: AuditCheck = {
  name: 'tombstoned_rows',
  unit: 'tombstoned IDs still stored',
  run(ctx) {
    const found = new Findings(ctx.examples);
    for (const type of JOB_TYPES) {
      const t = ctx.target[type];
      const sql = `SELECT t.id FROM cs_tombstones t JOIN ${quoteIdent(t.table)} x ON x.${quoteIdent(t.id)} = ${tombstoneId(t.idEncoding)} WHERE t.type = ?`;
      const { count, ids } = countAndExamples(ctx.db, sql, [type], ctx.examples);
      found.add(t.table, count, ids);
    }
    return found.result;
  },
};

/**
 * (2) Rows that reference a tombstoned ID through a relation the deletion acts on (FOREIGN KEYs, `store.dependents`,
 * the author column): they should have been deleted with it, or their reference cleared.
 */
const dependents: AuditCheck = {
  name: 'dependents',
  unit: 'rows still referencing a deleted row',
  run(ctx) {
    const found = new Findings(ctx.examples);
    const mapped = [ctx.target.tweets, ctx.target.users];
    const seen = new Set<string>();
    for (const relations of ctx.target.relations.values()) {
      for (const relation of relations) {
        const key = `${relation.childTable}.${relation.childColumn}`.toLowerCase();
        if (seen.has(key)) continue;
        seen.add(key);
        const parent = mapped.find((m) => same(m.table, relation.parentTable));
        if (!parent) {
          // Rows of unmapped tables are not tombstoned, so what referenced them cannot be told from other rows.
          found.note(`${relation.childTable}.${relation.childColumn} references ${relation.parentTable}, whose deleted rows are not tombstoned: not checked`);
          continue;
        }
        const rowidIsId = same(ctx.schema.table(parent.table)?.rowidAlias ?? '', parent.id);
        if (!same(relation.parentColumn, parent.id) && !(relation.parentColumn === 'rowid' && rowidIsId)) {
          found.note(`${relation.childTable}.${relation.childColumn} references ${parent.table}.${relation.parentColumn}, not its ID: not checked`);
          continue;
        }
        const { count, ids } = countAndExamples(ctx.db, `SELECT id FROM (${stillReferencingSql(relation, parent.type)})`, [], ctx.examples);
        found.add(`${relation.childTable}.${relation.childColumn}`, count, ids);
      }
    }
    return found.result;
  },
};

/** (3) Geo in rows a cycle scrubbed (cs_scrubs): a mapped geo column not NULL, a geo path still in a JSON column. */
const scrubbedGeo: AuditCheck = {
  name: 'scrubbed_geo',
  unit: 'scrubbed tweets with geo again',
  run(ctx) {
    const found = new Findings(ctx.examples);
    const tw = ctx.target.tweets;
    const conditions: { where: string; sql: string }[] = [];
    for (const column of ctx.target.geo.nullColumns) {
      conditions.push({ where: `${tw.table}.${column}`, sql: `nullif(x.${quoteIdent(column)}, '') IS NOT NULL` });
    }
    for (const { column, paths } of ctx.target.geo.json) {
      const col = `x.${quoteIdent(column)}`;
      for (const path of paths) {
        conditions.push({ where: `${tw.table}.${column} ${path}`, sql: `(CASE WHEN json_valid(${col}) THEN json_type(${col}, ${quoteLiteral(path)}) END) IS NOT NULL` });
      }
      // The scrub leaves text that is not JSON as it is: its geo could neither be removed nor be checked.
      conditions.push({ where: `${tw.table}.${column} (not valid JSON)`, sql: `nullif(${col}, '') IS NOT NULL AND NOT json_valid(${col})` });
    }
    if (!conditions.length) {
      found.note('store.tables.tweets maps no geo column and no JSON column: nothing to check');
      return found.result;
    }
    const from = `FROM cs_scrubs t JOIN ${quoteIdent(tw.table)} x ON x.${quoteIdent(tw.id)} = ${tombstoneId(tw.idEncoding)} WHERE t.type = 'tweets'`;
    const total = countAndExamples(ctx.db, `SELECT t.id ${from} AND (${conditions.map((c) => c.sql).join(' OR ')})`, [], ctx.examples);
    if (!total.count) return found.result;
    for (const condition of conditions) {
      const { count, ids } = countAndExamples(ctx.db, `SELECT t.id ${from} AND ${condition.sql}`, [], ctx.examples);
      if (count) found.result.locations[condition.where] = count;
      for (const id of ids) if (found.result.examples.length < ctx.examples) found.result.examples.push({ where: condition.where, id: String(id) });
    }
    // A row counts once however many places still hold its geo.
    found.result.count = total.count;
    return found.result;
  },
};

/** The IDs of the documents an FTS index holds, as SQL selecting `id` (null when its shadow tables do not say). */
function indexedDocuments(fts: FtsFact): string | null {
  const shadow = (suffix: string) => fts.shadowTables.find((s) => same(s, `${fts.name}_${suffix}`));
  const docsize = shadow('docsize');
  if (docsize) return `SELECT ${fts.module === 'fts5' ? 'id' : 'docid'} AS id FROM ${quoteIdent(docsize)}`;
  const content = shadow('content');
  if (content && fts.content === 'own') return `SELECT ${fts.module === 'fts5' ? 'id' : 'docid'} AS id FROM ${quoteIdent(content)}`;
  return null;
}

/**
 * (4) Full-text entries of deleted rows. External-content indexes: entries whose row is gone from the content table
 * (the deleted text stays searchable). Own-content and contentless indexes that the store's triggers keep from a
 * mapped table: entries whose rowid is a tombstoned ID.
 */
const ftsEntries: AuditCheck = {
  name: 'fts_entries',
  unit: 'full-text entries of deleted rows',
  run(ctx) {
    const found = new Findings(ctx.examples);
    for (const fts of ctx.schema.ftsTables()) {
      const documents = indexedDocuments(fts);
      if (!documents) {
        found.note(`${fts.name}: its shadow tables do not list the indexed rows (columnsize=0 or contentless without docsize): not checked`);
        continue;
      }
      if (fts.content === 'external') {
        const content = ctx.schema.table(fts.contentTable!);
        if (!content) {
          found.note(`${fts.name}: its content table ${fts.contentTable} does not exist: not checked`);
          continue;
        }
        const rowid = fts.contentRowid ?? 'rowid';
        const sql = `SELECT d.id FROM (${documents}) d WHERE NOT EXISTS (SELECT 1 FROM ${quoteIdent(content.name)} c WHERE c.${rowid === 'rowid' ? 'rowid' : quoteIdent(rowid)} = d.id)`;
        const { count, ids } = countAndExamples(ctx.db, sql, [], ctx.examples);
        found.add(fts.name, count, ids);
        continue;
      }
      // Own content: which mapped table's triggers write it, and is that table's rowid its ID?
      const feeder = [ctx.target.tweets, ctx.target.users].find((m) =>
        ctx.schema.triggersOn(m.table).some((trigger) => triggerWrites(trigger.sql).some((w) => same(w, fts.name))),
      );
      const alias = feeder ? ctx.schema.table(feeder.table)?.rowidAlias : null;
      if (!feeder || !alias || !same(alias, feeder.id)) {
        found.note(`${fts.name}: holds its own text and is not kept by a mapped table whose rowid is its ID: not checked`);
        continue;
      }
      const sql = `SELECT t.id FROM cs_tombstones t JOIN (${documents}) d ON d.id = t.id WHERE t.type = ?`;
      const { count, ids } = countAndExamples(ctx.db, sql, [feeder.type], ctx.examples);
      found.add(fts.name, count, ids);
    }
    return found.result;
  },
};

/** (5) Tombstoned IDs written out as decimal text in the file's free space, free pages, FTS segments and WAL. */
const deletedBytes: AuditCheck = {
  name: 'deleted_bytes',
  unit: 'tombstoned IDs readable in the files',
  optIn: 'scanBytes',
  run(ctx) {
    return scanDeletedBytes(ctx.db, ctx.storePath, ctx.schema, ctx.examples);
  },
};

/** (6) Stored rows no cycle closed within `audit.maxAge` checked (never, or too long ago). */
const coverage: AuditCheck = {
  name: 'coverage',
  unit: 'rows not checked within audit.maxAge',
  run(ctx) {
    const found = new Findings(ctx.examples);
    const since = new Date(ctx.now.getTime() - durationMs(ctx.config.audit.maxAge));
    for (const type of JOB_TYPES) {
      const c = coverageOf(ctx.db, ctx.config, type, since, ctx.examples);
      found.add(ctx.target[type].table, c.storedRows - c.checkedRows, c.oldestUnchecked.map((o) => o.id));
    }
    return found.result;
  },
};

/**
 * (7) Copies of deleted tweets embedded in stored tweets' JSON (target.embeds: a retweet's or quote's embedded object,
 * an expansion), and embedded copies of geo-scrubbed tweets that still carry geo.
 */
const embeddedCopies: AuditCheck = {
  name: 'embedded_copies',
  unit: 'embedded copies of deleted tweets, or of scrubbed tweets with geo',
  run(ctx) {
    const found = new Findings(ctx.examples);
    const deleted = embeddedCopiesSql(ctx.db, ctx.target);
    if (deleted === null) {
      found.note('no embed rules (store.tables.tweets.embeds, or a mapped rawJson column): not checked');
      return found.result;
    }
    const column = [...new Set(ctx.target.embeds.map((rule) => rule.column))].join(', ');
    const copies = countAndExamples(ctx.db, `SELECT id FROM (${deleted})`, [], ctx.examples);
    found.add(`${ctx.target.tweets.table}.${column}`, copies.count, copies.ids);
    const geo = embeddedGeoSql(ctx.db, ctx.target);
    if (geo === null) found.note('embedded geo of scrubbed tweets: the embed index (cs_embeds) is not complete until the first apply: not checked');
    else {
      const kept = countAndExamples(ctx.db, `SELECT id FROM (${geo})`, [], ctx.examples);
      found.add(`${ctx.target.tweets.table}.${column} (geo)`, kept.count, kept.ids);
    }
    return found.result;
  },
};

/** (8) Rows of orphan tables (store.orphans, discovered link-only tables) that no stored row references. */
const orphans: AuditCheck = {
  name: 'orphans',
  unit: 'rows of orphan tables nothing references',
  run(ctx) {
    const found = new Findings(ctx.examples);
    if (!ctx.target.orphans.length) found.note('no orphan tables (store.orphans, or media-like tables reached only through link tables): not checked');
    for (const rule of ctx.target.orphans) {
      const { count, ids } = countAndExamples(ctx.db, `SELECT k FROM (${orphansSql(rule)})`, [], ctx.examples);
      found.add(rule.table, count, ids);
    }
    return found.result;
  },
};

/** The checks `audit` runs, in order. */
export const AUDIT_CHECKS: readonly AuditCheck[] = [tombstonedRows, dependents, scrubbedGeo, ftsEntries, embeddedCopies, orphans, deletedBytes, coverage];

export interface CheckReport extends CheckResult {
  name: string;
  unit: string;
  /** false: not asked for (`--scan-bytes`), or it failed (`error`). */
  ran: boolean;
  error?: string;
}

export type AuditOutcome = 'clean' | 'findings' | 'incomplete';

export interface AuditReport {
  startedAt: string;
  finishedAt: string;
  /** clean: every check ran and found nothing; findings: some found violations; incomplete: a check failed to run. */
  outcome: AuditOutcome;
  findings: number;
  scanBytes: boolean;
  checks: CheckReport[];
}

export interface AuditOptions {
  scanBytes: boolean;
  examples: number;
  /** The clock: the audit's start and end, and the age limit of coverage. */
  now: () => Date;
  checks?: readonly AuditCheck[];
}

/**
 * Runs the checks inside one read transaction, so all of them see the same committed state of the store (a cycle
 * writing meanwhile is seen before or after, never half-way). A check that throws is reported as not run (the audit
 * is then incomplete); other checks still run.
 */
export function runAudit(db: Db, config: Config, options: AuditOptions): AuditReport {
  const now = options.now();
  const startedAt = now.toISOString();
  const schema = new SchemaInfo(db);
  const target = resolveTarget(db, config);
  const ctx: AuditContext = { db, config, target, schema, now, examples: options.examples, storePath: config.store.path };
  const checks: CheckReport[] = [];
  db.exec('BEGIN');
  try {
    for (const check of options.checks ?? AUDIT_CHECKS) {
      const base = { name: check.name, unit: check.unit };
      if (check.optIn === 'scanBytes' && !options.scanBytes) {
        checks.push({ ...base, ran: false, count: 0, examples: [], locations: {}, notes: ['not asked for (--scan-bytes)'] });
        continue;
      }
      try {
        checks.push({ ...base, ran: true, ...check.run(ctx) });
      } catch (err) {
        checks.push({ ...base, ran: false, count: 0, examples: [], locations: {}, notes: [], error: (err as Error).message });
      }
    }
  } finally {
    db.exec('COMMIT');
  }
  const findings = checks.reduce((sum, c) => sum + c.count, 0);
  const outcome: AuditOutcome = checks.some((c) => c.error !== undefined) ? 'incomplete' : findings ? 'findings' : 'clean';
  return { startedAt, finishedAt: options.now().toISOString(), outcome, findings, scanBytes: options.scanBytes, checks };
}

/** Records an audit in the ledger (cs_audits); returns its number. */
export function recordAudit(db: Db, report: AuditReport): number {
  const result = JSON.stringify(report.checks);
  const info = db
    .prepare('INSERT INTO cs_audits (started_at, finished_at, outcome, findings, scan_bytes, result_json) VALUES (?, ?, ?, ?, ?, ?)')
    .run(report.startedAt, report.finishedAt, report.outcome, report.findings, report.scanBytes ? 1 : 0, result);
  return Number(info.lastInsertRowid);
}

export interface RecordedAudit extends AuditReport {
  id: number;
}

/** The last audit recorded, or null (none yet, or a ledger from before audits). */
export function lastAudit(db: Db): RecordedAudit | null {
  if (!new SchemaInfo(db).table('cs_audits')) return null;
  const row = db.prepare('SELECT id, started_at, finished_at, outcome, findings, scan_bytes, result_json FROM cs_audits ORDER BY id DESC LIMIT 1').get() as
    | { id: bigint; started_at: string; finished_at: string; outcome: AuditOutcome; findings: bigint; scan_bytes: bigint; result_json: string }
    | undefined;
  if (!row) return null;
  return {
    id: Number(row.id),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    outcome: row.outcome,
    findings: Number(row.findings),
    scanBytes: Number(row.scan_bytes) === 1,
    checks: JSON.parse(row.result_json) as CheckReport[],
  };
}
