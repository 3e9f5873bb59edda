import type { Config } from '../config/load.js';
import { DEFAULT_RAW_JSON_EMBEDS, DEFAULT_RAW_JSON_GEO_PATHS, type EMBED_ACTIONS, type RELATION_ACTIONS } from '../config/schema.js';
import { ConfigError, StoreError } from '../errors.js';
import type { JobType } from '../types.js';
import type { Db } from './open.js';
import { ftsFeed, SchemaInfo, tokenize, type ForeignKeyFact, type FkAction } from './schemaInfo.js';

/**
 * The mapping resolved against the store's real schema, once per apply run: where each type's rows and marks live,
 * every relation that must be acted on before a row can be deleted (discovered FOREIGN KEYs and `store.dependents`),
 * what a geo scrub clears, and which of the store's own triggers write to tables whose changes must be counted.
 */
export interface Target {
  readonly tweets: TableTarget;
  readonly users: TableTarget;
  /** The tweets' author column (null when the mapping has none). */
  readonly authorId: string | null;
  readonly authorEncoding: IdEncoding;
  /** Relations per referenced table (lower-case name), in the order they are acted on. */
  readonly relations: ReadonlyMap<string, readonly Relation[]>;
  readonly geo: GeoScrub;
  /** Tables (not FTS) that the store's triggers write to when we delete or update: their changes are tallied. */
  readonly triggerTargets: readonly string[];
  /** Declared FKs SQLite cannot enforce (their parent key is not unique): enforcement is off while we apply. */
  readonly unenforceableForeignKeys: readonly string[];
  /**
   * Whether our own statements keep every declared FOREIGN KEY the work could break, and there is one (see
   * foreignKeysKeptByUs): SQLite's check of them then finds nothing, and enforcement is off while a batch applies.
   */
  readonly foreignKeysKeptByUs: boolean;
  /**
   * Per table we delete from (lower-case name): its external-content FTS indexes that no trigger of the store keeps
   * in step on DELETE. Their entries would outlive the row (and stay searchable), so the deletion removes them first.
   */
  readonly ftsDeletes: ReadonlyMap<string, readonly FtsDelete[]>;
  /**
   * Full-text indexes over the tweets table that hold a column a geo scrub clears and that no UPDATE trigger of the
   * store keeps in step: a scrub takes the row's entry out with its old values and puts it back with the new ones.
   */
  readonly ftsScrubs: readonly FtsDelete[];
  /** Full-text indexes over tables the work changes whose entries compliance-sync cannot remove (or renew). */
  readonly ftsUnreachable: readonly FtsUnreachable[];
  /** Tweets embedded in JSON columns of the tweets table (store.tables.tweets.embeds, or the rawJson defaults). */
  readonly embeds: readonly EmbedRule[];
  /** Tables whose rows are deleted once nothing references them (store.orphans, and those found by discovery). */
  readonly orphans: readonly OrphanRule[];
}

export interface EmbedRule {
  readonly column: string;
  readonly path: string;
  readonly array: boolean;
  readonly idKey: string;
  readonly type: string | null;
  readonly action: (typeof EMBED_ACTIONS)[number];
}

export interface OrphanRule {
  readonly table: string;
  /** The key the references hold. */
  readonly key: string;
  readonly referencedBy: readonly { table: string; column: string }[];
  readonly source: 'store.orphans' | 'discovered';
}

export interface FtsDelete {
  readonly fts: string;
  readonly module: 'fts4' | 'fts5';
  /**
   * How a row's entry is taken out: 'values' (FTS5's 'delete' command, given the indexed values read from the row),
   * 'docid' (FTS4 external content: DELETE by docid, which reads the old values from the content table itself),
   * 'rowid' (FTS5 contentless_delete=1: DELETE by rowid).
   */
  readonly by: 'values' | 'docid' | 'rowid';
  /** The content table's column that is the FTS rowid ('rowid' unless content_rowid= or the feeding trigger names one). */
  readonly rowid: string;
  /** The FTS columns, and the content table's columns holding their values (the same names for external content). */
  readonly columns: readonly string[];
  readonly values: readonly string[];
}

export interface FtsUnreachable {
  readonly fts: string;
  readonly table: string;
  /** What is left behind, and why. */
  readonly why: string;
  /** What the owner can do about it. */
  readonly fix: string;
}

/** What one column stores IDs as: decides how an ID is bound (never as a JS number). */
export type IdEncoding = 'number' | 'text';

export interface MarkColumns {
  readonly state: string;
  readonly reason: string;
  readonly at: string;
}

export interface TableTarget {
  readonly type: JobType;
  readonly table: string;
  readonly id: string;
  readonly idEncoding: IdEncoding;
  /** The mark columns, or null when marks live in the ledger table cs_marks. */
  readonly marks: MarkColumns | null;
}

/**
 * What is done to the rows that reference a deleted row. `delete` removes them (with their own dependents first),
 * `copy` removes them as copies (a retweet: tombstoned, with its own dependents, counted as `copy`), `set_null`
 * clears the reference, `set_default` writes the column's declared default (a declared ON DELETE SET DEFAULT,
 * honoured as the database would). The config's actions are RELATION_ACTIONS.
 */
export type RelationAction = (typeof RELATION_ACTIONS)[number] | 'set_default';

export interface Relation {
  readonly childTable: string;
  readonly childColumn: string;
  readonly childEncoding: IdEncoding;
  readonly parentTable: string;
  /** The referenced column (the parent's primary key when the REFERENCES clause names none). */
  readonly parentColumn: string;
  readonly action: RelationAction;
  /** The declared ON DELETE action, or null for a relation only `store.dependents` names. */
  readonly declared: FkAction | null;
  /** The author relation of a users deletion (reconcile.cascadeUsers): its deletions are counted as `cascade`. */
  readonly cascade: boolean;
  /** The declared column default, for set_default (SQL text as the schema has it). */
  readonly defaultSql: string | null;
}

export interface GeoScrub {
  /** Columns set to NULL. */
  readonly nullColumns: readonly string[];
  /** JSON text columns and the paths removed from them. */
  readonly json: readonly { column: string; paths: readonly string[] }[];
}

/** Where each type's rows and marks live. */
export function resolveTables(db: Db, config: Config, schema = new SchemaInfo(db)): { tweets: TableTarget; users: TableTarget } {
  const tableTarget = (type: JobType): TableTarget => {
    const t = config.store.tables[type];
    const marks = t.complianceState && t.complianceReason && t.complianceAt ? { state: t.complianceState, reason: t.complianceReason, at: t.complianceAt } : null;
    return { type, table: realName(schema, t.table), id: t.id, idEncoding: encodingOf(schema, t.table, t.id), marks };
  };
  return { tweets: tableTarget('tweets'), users: tableTarget('users') };
}

/** Resolves the config's mapping against the store. Throws a ConfigError naming the key when they do not fit. */
export function resolveTarget(db: Db, config: Config): Target {
  const schema = new SchemaInfo(db);
  const tables = config.store.tables;
  const { tweets, users } = resolveTables(db, config, schema);
  const authorId = tables.tweets.authorId;
  const tw = tables.tweets;
  const geo: GeoScrub = {
    nullColumns: [tw.geoLat, tw.geoLon, tw.placeId, ...tw.geoColumns].filter((c): c is string => c !== null),
    json: [...(tw.rawJson ? [{ column: tw.rawJson, paths: DEFAULT_RAW_JSON_GEO_PATHS }] : []), ...tw.geoJson],
  };
  const relations = resolveRelations(db, schema, config, tweets, users);
  const relationList = [...relations.values()].flat();
  const writtenByTriggers = triggerTargets(schema, [tweets.table, users.table, ...relationList.map((r) => r.childTable)]);
  const embeds = resolveEmbeds(schema, config, tweets);
  const orphans = resolveOrphans(schema, config, relations, tweets, users);
  const valuesWritten = [
    ...[tweets, users].flatMap((t) => (t.marks ? [t.marks.state, t.marks.reason, t.marks.at].map((column) => ({ table: t.table, column })) : [])),
    ...geo.json.map(({ column }) => ({ table: tweets.table, column })),
    ...embeds.map(({ column }) => ({ table: tweets.table, column })),
  ];
  const keysKept =
    !writtenByTriggers.length &&
    // The orphans sweep deletes from tables the relations do not reach: their triggers count too.
    !triggerTargets(schema, orphans.map((o) => o.table)).length &&
    foreignKeysKeptByUs(schema, relations, orphans, {
      valuesWritten,
      updated: [
        ...valuesWritten,
        ...geo.nullColumns.map((column) => ({ table: tweets.table, column })),
        // References cleared: set_null relations, and copy relations met inside a copy's deletion (deleteSteps).
        ...relationList.filter((r) => r.action !== 'delete').map((r) => ({ table: r.childTable, column: r.childColumn })),
      ],
    });
  return {
    tweets,
    users,
    authorId,
    authorEncoding: authorId ? encodingOf(schema, tw.table, authorId) : 'number',
    relations,
    geo,
    triggerTargets: writtenByTriggers,
    unenforceableForeignKeys: unenforceable(schema, relations, tweets, users),
    foreignKeysKeptByUs: keysKept,
    ...untriggeredFts(schema, relations, tweets, users, geo),
    embeds,
    orphans,
  };
}

export interface ForeignKeyEnforcement {
  whileApplying: 'on' | 'off';
  why: string;
}

/**
 * SQLite's foreign-key enforcement while a batch applies (withForeignKeysRelaxed around each transaction), and why:
 * off where it cannot enforce a key, or where our own statements keep every key (foreignKeysKeptByUs).
 */
export function foreignKeyEnforcement(target: Target): ForeignKeyEnforcement {
  if (target.unenforceableForeignKeys.length) {
    return { whileApplying: 'off', why: `SQLite cannot enforce ${target.unenforceableForeignKeys.join(', ')} (the parent key is not unique); the relations are acted on all the same` };
  }
  if (target.foreignKeysKeptByUs) {
    return { whileApplying: 'off', why: "compliance-sync's own statements keep every key a batch could break, before the rows go: SQLite's checks could only confirm them" };
  }
  return { whileApplying: 'on', why: 'SQLite checks every key' };
}

/**
 * Whether the work keeps every declared FOREIGN KEY by itself, so that SQLite's enforcement (on every deleted row, a
 * search of each referencing table's index: measured on twitter-to-sqlite, about a third of a DELETE's time) can
 * only confirm it: every key referencing a table we delete rows from is a relation acted on before those rows go (or,
 * for a table of orphans, one of the references its rule checks, on the rule's key, both columns in one collation),
 * none is set to a declared default (which may reference nothing), no key is held by a column we write values to
 * (marks, JSON rewritten), and no key references a column we change in place (whose old value a reference may hold).
 * The caller also requires that no trigger of the store writes rows, which could add a reference we do not see.
 */
function foreignKeysKeptByUs(
  schema: SchemaInfo,
  relations: Map<string, Relation[]>,
  orphans: readonly OrphanRule[],
  columns: { valuesWritten: readonly ColumnRef[]; updated: readonly ColumnRef[] },
): boolean {
  if ([...relations.values()].flat().some((r) => r.action === 'set_default')) return false;
  const isRef = (fk: ForeignKeyFact, ref: ColumnRef) => fk.childColumns.length === 1 && same(fk.childTable, ref.table) && same(fk.childColumns[0]!, ref.column);
  const among = (list: readonly ColumnRef[], table: string, names: readonly string[]) => list.some((c) => same(c.table, table) && names.some((n) => same(n, c.column)));
  const keys = schema.foreignKeys();
  // Keys on a table we delete from: the checks there would be to skip. A store without any (the default layout:
  // only the ledger's own keys) keeps enforcement on, as switching it costs each statement a recompile.
  const checked = keys.filter((fk) => relations.has(fk.parentTable.toLowerCase()) || orphans.some((o) => same(o.table, fk.parentTable)));
  if (!checked.length) return false;
  for (const fk of keys) {
    if (among(columns.valuesWritten, fk.childTable, fk.childColumns)) return false;
    const referenced = fk.parentColumns.every((c) => c !== null) ? (fk.parentColumns as string[]) : schema.columns(fk.parentTable).filter((c) => c.pk > 0).map((c) => c.name);
    if (among(columns.updated, fk.parentTable, referenced)) return false;
  }
  return checked.every((fk) => {
    const orphan = orphans.find((o) => same(o.table, fk.parentTable));
    if (!orphan) return (relations.get(fk.parentTable.toLowerCase()) ?? []).some((r) => isRef(fk, { table: r.childTable, column: r.childColumn }));
    const ref = orphan.referencedBy.find((r) => isRef(fk, r));
    const key = parentColumnOf(schema, fk);
    // The sweep compares in the referencing column's collation, SQLite's check in the referenced column's.
    return ref !== undefined && same(key, orphan.key) && schema.collation(ref.table, ref.column) === schema.collation(fk.parentTable, key);
  });
}

type ColumnRef = { readonly table: string; readonly column: string };

/** The configured embeds, else X's shapes in the raw JSON column when one is mapped. */
function resolveEmbeds(schema: SchemaInfo, config: Config, tweets: TableTarget): EmbedRule[] {
  const tw = config.store.tables.tweets;
  const rules = tw.embeds ?? (tw.rawJson ? DEFAULT_RAW_JSON_EMBEDS.map((e) => ({ ...e, column: tw.rawJson! })) : []);
  return rules.map((rule, i) => {
    const column = schema.column(tweets.table, rule.column);
    if (!column) {
      throw new ConfigError(`table "${tweets.table}" has no column "${rule.column}" (store.tables.tweets.embeds[${i}].column)`, {
        hint: 'name the JSON text column of the tweets table, or set store.tables.tweets.embeds to []',
      });
    }
    return { ...rule, column: column.name };
  });
}

/**
 * The orphan rules: store.orphans, and tables discovery finds. Discovery is certain only when the schema itself says
 * a table's rows are reached through links alone: every FOREIGN KEY referencing the table comes from a link table
 * (a table whose primary key is made of FOREIGN KEY columns only, like media_tweets(media_id, tweets_id)) whose rows
 * we delete, the table is not mapped, and it references nothing itself. Anything else (places referenced by a tweets
 * column, sources) may be meaningful on its own, so it needs a store.orphans entry.
 */
function resolveOrphans(schema: SchemaInfo, config: Config, relations: Map<string, Relation[]>, tweets: TableTarget, users: TableTarget): OrphanRule[] {
  const mapped = [tweets.table, users.table];
  const deletedFrom = new Set([...mapped, ...[...relations.values()].flat().filter((r) => r.action !== 'set_null' && r.action !== 'set_default').map((r) => r.childTable)].map((t) => t.toLowerCase()));
  const changed = new Set([...deletedFrom, ...[...relations.values()].flat().map((r) => r.childTable.toLowerCase())]);
  const rules: OrphanRule[] = [];
  const configured = config.store.orphans;
  configured.forEach((entry, i) => {
    if (entry.keep) return;
    const key = `store.orphans[${i}]`;
    const table = schema.table(entry.table);
    if (!table || table.kind !== 'table') {
      throw new ConfigError(`${key} names "${entry.table}", which is not a table of the store`, { hint: `correct ${key}.table, or remove the entry` });
    }
    if (mapped.some((m) => same(m, entry.table))) {
      throw new ConfigError(`${key} names the mapped table "${entry.table}": its rows are what results act on`, { hint: `remove ${key}` });
    }
    const pk = schema.columns(table.name).filter((c) => c.pk > 0);
    const keyColumn = entry.column ?? (pk.length === 1 ? pk[0]!.name : null);
    if (!keyColumn || !schema.column(table.name, keyColumn)) {
      throw new ConfigError(`${key}: "${table.name}" has ${keyColumn ? `no column "${keyColumn}"` : 'no single-column primary key'}`, { hint: `set ${key}.column to the column the references hold` });
    }
    const referencedBy =
      entry.referencedBy ??
      schema
        .foreignKeysReferencing(table.name)
        .filter((fk) => fk.childColumns.length === 1)
        .map((fk) => ({ table: fk.childTable, column: fk.childColumns[0]! }));
    referencedBy.forEach((ref, j) => {
      if (!schema.column(ref.table, ref.column)) {
        throw new ConfigError(`${key}.referencedBy[${j}] names "${ref.table}"."${ref.column}", which the store does not have`, { hint: 'correct the table and column names' });
      }
    });
    if (!referencedBy.length) {
      throw new ConfigError(`${key}: nothing references "${table.name}" (no FOREIGN KEY), so its orphans cannot be told`, { hint: `list the referencing columns in ${key}.referencedBy` });
    }
    rules.push({ table: table.name, key: keyColumn, referencedBy: referencedBy.map((r) => ({ table: realName(schema, r.table), column: schema.column(r.table, r.column)!.name })), source: 'store.orphans' });
  });
  for (const table of schema.tables()) {
    if (table.kind !== 'table' || table.name.toLowerCase().startsWith('cs_') || mapped.some((m) => same(m, table.name))) continue;
    if (configured.some((c) => same(c.table, table.name)) || schema.foreignKeys().some((fk) => same(fk.childTable, table.name))) continue;
    const fks = schema.foreignKeysReferencing(table.name);
    if (!fks.length || fks.some((fk) => fk.childColumns.length !== 1 || !deletedFrom.has(fk.childTable.toLowerCase()) || !isLinkTable(schema, fk.childTable))) continue;
    const key = parentColumnOf(schema, fks[0]!);
    if (fks.some((fk) => !same(parentColumnOf(schema, fk), key))) continue;
    rules.push({ table: table.name, key, referencedBy: fks.map((fk) => ({ table: fk.childTable, column: fk.childColumns[0]! })), source: 'discovered' });
  }
  // A rule whose references none of our work changes never finds a candidate: left out.
  return rules.filter((r) => r.referencedBy.some((ref) => changed.has(ref.table.toLowerCase())));
}

/** A link table: its primary key is two or more columns, each a single-column FOREIGN KEY. */
function isLinkTable(schema: SchemaInfo, table: string): boolean {
  const pk = schema.columns(table).filter((c) => c.pk > 0);
  const fkColumns = schema.foreignKeys().filter((fk) => same(fk.childTable, table) && fk.childColumns.length === 1).map((fk) => fk.childColumns[0]!);
  return pk.length >= 2 && pk.every((c) => fkColumns.some((f) => same(f, c.name)));
}

const REWRITE_FTS = 'recreate it as an external-content table (content=<the table>) or as FTS5 with contentless_delete=1, or add a DELETE trigger that removes its entries';

/**
 * The full-text indexes over one table, and how an entry can be taken out of each (null: it cannot, and why): FTS4/5
 * tables with the table as external content, and contentless ones (content='') that a trigger on the table feeds
 * (the only sign of what a contentless index holds: its feeding INSERT names the rowid and the columns).
 */
function ftsIndexesOver(schema: SchemaInfo, table: string): { fts: string; entry: FtsDelete | null; why: string }[] {
  const out: { fts: string; entry: FtsDelete | null; why: string }[] = [];
  for (const fts of schema.ftsOver(table)) {
    if (fts.content !== 'external' || fts.module === 'fts3') continue;
    const by = fts.module === 'fts5' ? 'values' : 'docid';
    out.push({ fts: fts.name, entry: { fts: fts.name, module: fts.module, by, rowid: fts.contentRowid ?? 'rowid', columns: fts.columns, values: fts.columns }, why: '' });
  }
  for (const fts of schema.ftsTables()) {
    if (fts.content !== 'contentless') continue;
    const feed = schema
      .triggersOn(table)
      .filter((t) => t.event !== 'DELETE')
      .map((t) => ftsFeed(t.sql, fts.name))
      .find((f) => f !== null);
    if (!feed) continue;
    const at = feed.columns.findIndex((c) => ['rowid', 'docid', 'oid', '_rowid_'].includes(c.toLowerCase()));
    const rowid = at < 0 ? null : feed.values[at]!;
    const columns = feed.columns.filter((_, i) => i !== at);
    const values = feed.values.filter((_, i) => i !== at);
    const mapped = rowid !== null && values.every((v) => v !== null);
    if (fts.module !== 'fts5') {
      out.push({ fts: fts.name, entry: null, why: `it is an ${fts.module.toUpperCase()} table without content (content=''), from which SQLite cannot delete entries` });
    } else if (rowid !== null && (fts.contentlessDelete || mapped)) {
      // Deleting by rowid needs no values; without them (expressions fed), the entry cannot be put back after a scrub.
      const known = mapped ? { columns, values: values as string[] } : { columns: [], values: [] };
      out.push({ fts: fts.name, entry: { fts: fts.name, module: 'fts5', by: fts.contentlessDelete ? 'rowid' : 'values', rowid, ...known }, why: '' });
    } else {
      out.push({ fts: fts.name, entry: null, why: `it has no content (content='') and its trigger feeds it ${rowid === null ? 'no rowid' : 'expressions, not columns'}, so the values its 'delete' needs cannot be read` });
    }
  }
  return out;
}

/**
 * FTS indexes no trigger of the store keeps in step with what the work does: per table we delete from, the indexes
 * without a DELETE trigger (their entries are taken out before the row goes); over the tweets table, those holding a
 * scrubbed column without an UPDATE trigger (re-indexed around the scrub); and those it cannot reach at all.
 */
function untriggeredFts(
  schema: SchemaInfo,
  relations: Map<string, Relation[]>,
  tweets: TableTarget,
  users: TableTarget,
  geo: GeoScrub,
): { ftsDeletes: Map<string, FtsDelete[]>; ftsScrubs: FtsDelete[]; ftsUnreachable: FtsUnreachable[] } {
  const ftsDeletes = new Map<string, FtsDelete[]>();
  const ftsUnreachable: FtsUnreachable[] = [];
  const tables = new Set([tweets.table, users.table, ...[...relations.values()].flat().map((r) => r.childTable)].map((t) => t.toLowerCase()));
  for (const table of tables) {
    const kept = schema.triggersOn(table, 'DELETE').flatMap((t) => triggerWrites(t.sql).map((w) => w.toLowerCase()));
    const list: FtsDelete[] = [];
    for (const { fts, entry, why } of ftsIndexesOver(schema, table)) {
      if (kept.includes(fts.toLowerCase())) continue;
      if (entry) list.push(entry);
      else ftsUnreachable.push({ fts, table: realName(schema, table), why: `the entries of deleted rows stay searchable: ${why}`, fix: REWRITE_FTS });
    }
    if (list.length) ftsDeletes.set(table, list);
  }
  const scrubbed = [...geo.nullColumns, ...geo.json.map((j) => j.column)];
  const updating = schema.triggersOn(tweets.table, 'UPDATE').filter((t) => t.updateOf === null || t.updateOf.some((c) => scrubbed.some((s) => same(s, c))));
  const keptOnUpdate = updating.flatMap((t) => triggerWrites(t.sql).map((w) => w.toLowerCase()));
  const ftsScrubs: FtsDelete[] = [];
  for (const { fts, entry } of ftsIndexesOver(schema, tweets.table)) {
    // One it cannot reach at all is named above already.
    if (!entry || keptOnUpdate.includes(fts.toLowerCase())) continue;
    if (entry.columns.length === 0) {
      ftsUnreachable.push({ fts, table: tweets.table, why: 'a geo scrub cannot renew its entries (its trigger feeds it expressions, not columns), so scrubbed values may stay searchable', fix: 'add an UPDATE trigger that renews its entries' });
    } else if (entry.values.some((v) => scrubbed.some((c) => same(c, v)))) ftsScrubs.push(entry);
  }
  return { ftsDeletes, ftsScrubs, ftsUnreachable };
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function realName(schema: SchemaInfo, table: string): string {
  return schema.table(table)?.name ?? table;
}

/** SQLite's affinity rule 2: a declared type containing CHAR, CLOB or TEXT is TEXT. */
function encodingOf(schema: SchemaInfo, table: string, column: string): IdEncoding {
  const info = schema.column(table, column);
  return info && /CHAR|CLOB|TEXT/i.test(info.type) ? 'text' : 'number';
}

/** The column a single-column FK points at: the named one, else the parent's primary key (or the rowid). */
function parentColumnOf(schema: SchemaInfo, fk: ForeignKeyFact): string {
  const named = fk.parentColumns[0];
  if (named) return named;
  const pk = schema.columns(fk.parentTable).filter((c) => c.pk > 0);
  return pk.length === 1 ? pk[0]!.name : 'rowid';
}

/**
 * Every relation reachable from the two mapped tables through deletions: FOREIGN KEYs referencing them, the
 * `store.dependents` entries, the author relation of the cascade, and, for child tables whose rows are deleted,
 * the FKs referencing those in turn. Each gets its action: the config's, else the declared ON DELETE action where
 * it changes rows, else by shape (rows of other tables are deleted; references from a mapped table are cleared).
 */
function resolveRelations(db: Db, schema: SchemaInfo, config: Config, tweets: TableTarget, users: TableTarget): Map<string, Relation[]> {
  const byParent = new Map<string, Relation[]>();
  const mapped = [tweets, users];
  const isMapped = (table: string) => mapped.some((m) => same(m.table, table));
  const authorId = config.store.tables.tweets.authorId;
  const cascadeUsers = config.reconcile.cascadeUsers;
  const dependents = config.store.dependents;

  const override = (child: string, column: string) => dependents.find((d) => same(d.table, child) && same(d.column, column));

  const relationFor = (fk: ForeignKeyFact | null, child: string, column: string, parent: TableTarget | { table: string }, parentColumn: string): Relation => {
    const isAuthor = authorId !== null && same(child, tweets.table) && same(column, authorId) && same(parent.table, users.table);
    const configured = override(child, column);
    let action: RelationAction;
    const selfReference = same(child, parent.table) && isMapped(child);
    if (configured) action = configured.action;
    // The database would delete them with the row: for a mapped table, they are rows of their own (copies).
    else if (fk?.onDelete === 'CASCADE') action = isMapped(child) && !isAuthor ? 'copy' : 'delete';
    else if (fk?.onDelete === 'SET NULL') action = 'set_null';
    else if (fk?.onDelete === 'SET DEFAULT') action = 'set_default';
    else if (isAuthor) action = cascadeUsers ? 'delete' : 'set_null';
    // X removes retweets with their original: a tweets column that points at the retweeted tweet holds copies.
    else if (selfReference && same(child, tweets.table) && /retweet/i.test(column)) action = 'copy';
    else action = isMapped(child) ? 'set_null' : 'delete';
    if (action === 'delete' && isMapped(child) && !isAuthor) {
      throw new ConfigError(
        `deleting rows of "${child}" because the row "${child}"."${column}" references is deleted is not a dependent's delete: rows of a mapped table are copies, each tombstoned`,
        { hint: `set the action of { "table": "${child}", "column": "${column}", "references": "${mapped.find((m) => same(m.table, parent.table))?.type ?? 'tweets'}" } in store.dependents to "copy" (deleted with it) or "set_null"` },
      );
    }
    const columnFact = schema.column(child, column);
    if (!columnFact) {
      throw new ConfigError(`store.dependents names "${child}"."${column}", which the store does not have`, {
        hint: 'correct the table and column names in store.dependents, or remove the entry',
      });
    }
    if (action === 'set_null' && columnFact.notNull) {
      throw new ConfigError(`"${child}"."${column}" is NOT NULL, so it cannot be set to NULL when the row it references is deleted`, {
        hint: `set the action of { "table": "${child}", "column": "${column}" } in store.dependents to "delete"`,
      });
    }
    const defaultSql = action === 'set_default' ? (columnFact.defaultSql ? `(${columnFact.defaultSql})` : 'NULL') : null;
    return {
      childTable: realName(schema, child),
      childColumn: columnFact.name,
      childEncoding: encodingOf(schema, child, column),
      parentTable: parent.table,
      parentColumn,
      action,
      declared: fk?.onDelete ?? null,
      cascade: isAuthor && action === 'delete',
      defaultSql,
    };
  };

  const visit = (parent: TableTarget | { table: string }, path: string[]) => {
    const key = parent.table.toLowerCase();
    if (byParent.has(key)) return;
    const list: Relation[] = [];
    byParent.set(key, list);
    for (const fk of schema.foreignKeysReferencing(parent.table)) {
      if (fk.childColumns.length !== 1) {
        throw new StoreError('store_schema', `"${fk.childTable}" references "${parent.table}" with a composite FOREIGN KEY (${fk.childColumns.join(', ')}), which compliance-sync cannot act on`, {
          hint: `drop that FOREIGN KEY from "${fk.childTable}", or map tables that are not referenced by one`,
        });
      }
      list.push(relationFor(fk, fk.childTable, fk.childColumns[0]!, parent, parentColumnOf(schema, fk)));
    }
    const type = mapped.find((m) => same(m.table, parent.table));
    if (type) {
      for (const d of dependents) {
        if (d.references !== type.type || list.some((r) => same(r.childTable, d.table) && same(r.childColumn, d.column))) continue;
        list.push(relationFor(null, d.table, d.column, parent, type.id));
      }
      // The cascade follows the author column whether or not the schema declares it.
      if (type.type === 'users' && authorId && cascadeUsers && !list.some((r) => same(r.childTable, tweets.table) && same(r.childColumn, authorId))) {
        list.push(relationFor(null, tweets.table, authorId, parent, users.id));
      }
    }
    for (const relation of list) {
      // Copies in a mapped table are deleted by that table's own steps; copies elsewhere are rows like dependents.
      if (relation.action !== 'delete' && !(relation.action === 'copy' && !isMapped(relation.childTable))) continue;
      if (path.some((p) => same(p, relation.childTable)) && !relation.cascade) {
        throw new StoreError('store_schema', `deleting from "${relation.childTable}" leads back to it through "${relation.childTable}"."${relation.childColumn}" (a cycle of FOREIGN KEYs)`, {
          hint: `set the action of { "table": "${relation.childTable}", "column": "${relation.childColumn}" } in store.dependents to "set_null"`,
        });
      }
      if (!isMapped(relation.childTable) || relation.cascade) visit({ table: relation.childTable }, [...path, relation.childTable]);
    }
  };
  // Tweets first: the cascade from users reuses the tweets' relations.
  visit(tweets, [tweets.table]);
  visit(users, [users.table]);
  return byParent;
}

/**
 * FKs on the tables we delete from whose parent key has no unique index: SQLite raises "foreign key mismatch" on any
 * delete from their parent while enforcement is on (the ingester that wrote them ran without it).
 */
function unenforceable(schema: SchemaInfo, relations: Map<string, Relation[]>, tweets: TableTarget, users: TableTarget): string[] {
  const parents = new Set([tweets.table.toLowerCase(), users.table.toLowerCase(), ...[...relations.values()].flat().map((r) => r.childTable.toLowerCase())]);
  const found: string[] = [];
  for (const fk of schema.foreignKeys()) {
    if (!parents.has(fk.parentTable.toLowerCase()) && !parents.has(fk.childTable.toLowerCase())) continue;
    const keyColumns = fk.parentColumns.every((c) => c === null) ? null : (fk.parentColumns as string[]);
    const pk = schema.columns(fk.parentTable).filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    const matches = (cols: readonly (string | null)[]) =>
      keyColumns !== null && cols.length === keyColumns.length && cols.every((c) => c !== null && keyColumns.some((k) => same(k, c)));
    const ok = keyColumns === null ? pk.length === fk.childColumns.length : matches(pk) || schema.indexes(fk.parentTable).some((i) => i.unique && !i.partial && matches(i.columns));
    if (!ok) found.push(`"${fk.childTable}"(${fk.childColumns.join(', ')}) → "${fk.parentTable}"(${keyColumns?.join(', ') ?? 'primary key'})`);
  }
  return found;
}

/**
 * The non-FTS tables written by the store's triggers that our deletes and updates of the `changed` tables fire (and,
 * transitively, by the triggers on those): FTS writes are index upkeep, not rows that left the store.
 */
function triggerTargets(schema: SchemaInfo, changed: readonly string[]): string[] {
  const fts = schema.ftsTables();
  const isFts = (table: string) => fts.some((f) => same(f.name, table) || f.shadowTables.some((s) => same(s, table)));
  const targets = new Map<string, string>();
  const queue = changed.map((t) => t.toLowerCase());
  const seen = new Set<string>();
  while (queue.length) {
    const table = queue.shift()!;
    if (seen.has(table)) continue;
    seen.add(table);
    for (const trigger of schema.triggersOn(table)) {
      // The ingest guard's triggers fire on inserts only, never on our deletes and updates.
      if (trigger.name.toLowerCase().startsWith('cs_guard_')) continue;
      // The index of embedded tweets (src/store/embedIndex.ts) is ledger upkeep, not rows that left the store.
      if (trigger.name.toLowerCase().startsWith('cs_embeds_')) continue;
      for (const target of triggerWrites(trigger.sql)) {
        if (isFts(target)) continue;
        const name = realName(schema, target);
        targets.set(name.toLowerCase(), name);
        queue.push(name.toLowerCase());
      }
    }
  }
  return [...targets.values()];
}

/** The tables a trigger's body writes to: INSERT [OR …] INTO t, REPLACE INTO t, UPDATE [OR …] t, DELETE FROM t. */
export function triggerWrites(sql: string): string[] {
  const tokens = tokenize(sql);
  const upper = tokens.map((t) => t.toUpperCase());
  const begin = upper.indexOf('BEGIN');
  const out: string[] = [];
  const name = (i: number) => {
    // [schema.]table
    const at = tokens[i + 1] === '.' ? i + 2 : i;
    const t = tokens[at];
    return t === undefined ? null : t.replace(/^["`[]|["`\]]$/g, '');
  };
  for (let i = begin + 1; i < tokens.length; i++) {
    let at = -1;
    if (upper[i] === 'INSERT' || upper[i] === 'REPLACE') {
      let j = i + 1;
      if (upper[j] === 'OR') j += 2;
      if (upper[j] === 'INTO') at = j + 1;
    } else if (upper[i] === 'UPDATE' && (upper[i - 1] === ';' || upper[i - 1] === 'BEGIN')) {
      at = upper[i + 1] === 'OR' ? i + 3 : i + 1;
    } else if (upper[i] === 'DELETE' && upper[i + 1] === 'FROM') {
      at = i + 2;
    }
    if (at < 0) continue;
    const table = name(at);
    if (table && !out.some((o) => same(o, table))) out.push(table);
  }
  return out;
}
