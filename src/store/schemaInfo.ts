import type { Db } from './open.js';

/**
 * Read-only facts about a store's schema, whoever wrote it: tables and views, columns, the foreign keys that reference
 * a table, indexes and their leading columns, triggers, full-text tables and rowid facts. Every statement here reads
 * the schema (sqlite_schema and the pragma table-valued functions), so it runs on a read-only connection and never
 * alters a store. SQLite compares identifiers case-insensitively, and so does everything here.
 */

/** The one way identifiers are quoted in SQL built from config or from a store's schema: "name", inner quotes doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Prefix of the indexes `migrate --create-indexes` makes, so they are recognisable as this tool's. */
const INDEX_PREFIX = 'cs_idx_';

/** The statement that makes this tool's index on one column (`migrate --create-indexes`, and the hints that name it). */
export function createIndexStatement(table: string, column: string): string {
  const name = `${INDEX_PREFIX}${table}_${column}`.replace(/[^A-Za-z0-9_]/g, '_');
  return `CREATE INDEX IF NOT EXISTS ${quoteIdent(name)} ON ${quoteIdent(table)}(${quoteIdent(column)})`;
}

/** A text value as an SQL string literal (for pragma arguments and the like). */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export type TableKind = 'table' | 'view' | 'virtual' | 'shadow';

export interface TableFact {
  name: string;
  kind: TableKind;
  /** Declared WITHOUT ROWID: no rowid, the primary key is the storage key. */
  withoutRowid: boolean;
  /** The column that is the rowid (an INTEGER PRIMARY KEY of a rowid table), else null. */
  rowidAlias: string | null;
  sql: string | null;
}

export interface ColumnFact {
  name: string;
  /** As declared ('' when the column has no declared type). */
  type: string;
  notNull: boolean;
  /** 1-based position in the primary key, 0 when not part of it. */
  pk: number;
  /** The declared DEFAULT as SQLite keeps its text (an expression), or null when the column has none. */
  defaultSql: string | null;
}

export type FkAction = 'NO ACTION' | 'RESTRICT' | 'SET NULL' | 'SET DEFAULT' | 'CASCADE';

export interface ForeignKeyFact {
  /** The referencing (child) table. */
  childTable: string;
  childColumns: string[];
  parentTable: string;
  /** The referenced columns; null where the REFERENCES clause names none (the parent's primary key). */
  parentColumns: (string | null)[];
  onDelete: FkAction;
  onUpdate: FkAction;
  /** Declared DEFERRABLE INITIALLY DEFERRED (checked at COMMIT, not per statement). */
  deferred: boolean;
}

export interface IndexFact {
  name: string;
  table: string;
  /** Key columns in order; null for an expression (or the rowid). */
  columns: (string | null)[];
  unique: boolean;
  /** A partial index (WHERE clause) serves only some lookups. */
  partial: boolean;
  /** c: CREATE INDEX, u: UNIQUE constraint, pk: PRIMARY KEY constraint. */
  origin: 'c' | 'u' | 'pk';
}

export type TriggerEvent = 'DELETE' | 'INSERT' | 'UPDATE';

export interface TriggerFact {
  name: string;
  table: string;
  timing: 'BEFORE' | 'AFTER' | 'INSTEAD OF';
  event: TriggerEvent;
  /** UPDATE OF these columns only; null when any update fires it. */
  updateOf: string[] | null;
  sql: string;
}

export type FtsModule = 'fts3' | 'fts4' | 'fts5';

export interface FtsFact {
  name: string;
  module: FtsModule;
  /**
   * Where the indexed text lives: 'own' (the FTS table stores it), 'external' (content= a table, kept in step by the
   * owner, usually with triggers) or 'contentless' (content='').
   */
  content: 'own' | 'external' | 'contentless';
  /** The external content table, when content is 'external'. */
  contentTable: string | null;
  /** The content table's column that is the FTS rowid (content_rowid=, FTS5 only; else the rowid). */
  contentRowid: string | null;
  /** FTS5 contentless_delete=1: entries of a contentless table can be deleted by rowid (SQLite ≥ 3.43). */
  contentlessDelete: boolean;
  columns: string[];
  shadowTables: string[];
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/**
 * Introspects one connection's main schema. An instance is a snapshot: each fact is read once and kept (a preflight
 * asks the same questions many times); make a new instance to see a schema changed since.
 */
export class SchemaInfo {
  private cachedTables: TableFact[] | undefined;
  private readonly cachedColumns = new Map<string, ColumnFact[]>();
  private cachedForeignKeys: ForeignKeyFact[] | undefined;
  private readonly cachedIndexes = new Map<string, IndexFact[]>();
  private cachedTriggers: TriggerFact[] | undefined;
  private cachedFts: FtsFact[] | undefined;

  constructor(private readonly db: Db) {}

  /** Tables, views, virtual and shadow tables of the main schema, except SQLite's own. */
  tables(): TableFact[] {
    this.cachedTables ??= this.readTables();
    return [...this.cachedTables];
  }

  private readTables(): TableFact[] {
    const listed = this.db.prepare("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main'").all() as {
      name: string;
      type: string;
      wr: number | bigint;
    }[];
    const sqlByName = new Map(
      (this.db.prepare("SELECT name, sql FROM sqlite_schema WHERE type IN ('table', 'view')").all() as { name: string; sql: string | null }[]).map(
        (row) => [row.name.toLowerCase(), row.sql],
      ),
    );
    return listed
      .filter((row) => !row.name.toLowerCase().startsWith('sqlite_'))
      .map((row) => {
        const kind = row.type as TableKind;
        const withoutRowid = Number(row.wr) === 1;
        const fact: TableFact = { name: row.name, kind, withoutRowid, rowidAlias: null, sql: sqlByName.get(row.name.toLowerCase()) ?? null };
        if (kind === 'table' && !withoutRowid) fact.rowidAlias = rowidAliasOf(this.columns(row.name), fact.sql);
        return fact;
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Every table and index of the main schema, SQLite's own included (lower-cased name → its table, lower-cased): who
   * owns a page that dbstat names.
   */
  tableOfEveryObject(): Map<string, string> {
    const rows = this.db.prepare("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')").all() as { name: string; tbl_name: string }[];
    return new Map(rows.map((row) => [row.name.toLowerCase(), row.tbl_name.toLowerCase()]));
  }

  table(name: string): TableFact | undefined {
    return this.tables().find((t) => same(t.name, name));
  }

  /**
   * The collating sequence a column is declared with (its COLLATE clause in CREATE TABLE), upper-case; BINARY when
   * it names none, or when the table's SQL is not a column list (a virtual table).
   */
  collation(table: string, column: string): string {
    const own = columnDefinition(this.table(table)?.sql ?? '', column);
    const at = own.findIndex((t) => t.toUpperCase() === 'COLLATE');
    return at >= 0 && own[at + 1] ? (identValue(own[at + 1]!) ?? 'BINARY').toUpperCase() : 'BINARY';
  }

  /** The table's columns in order (hidden columns of virtual tables left out); empty when there is no such table. */
  columns(table: string): ColumnFact[] {
    const key = table.toLowerCase();
    let columns = this.cachedColumns.get(key);
    if (!columns) this.cachedColumns.set(key, (columns = this.readColumns(table)));
    return [...columns];
  }

  private readColumns(table: string): ColumnFact[] {
    const rows = this.db.prepare('SELECT name, type, "notnull" AS nn, pk, dflt_value, hidden FROM pragma_table_xinfo(?)').all(table) as {
      name: string;
      dflt_value: string | null;
      type: string;
      nn: number | bigint;
      pk: number | bigint;
      hidden: number | bigint;
    }[];
    return rows
      .filter((row) => Number(row.hidden) === 0)
      .map((row) => ({ name: row.name, type: row.type, notNull: Number(row.nn) === 1, pk: Number(row.pk), defaultSql: row.dflt_value }));
  }

  column(table: string, name: string): ColumnFact | undefined {
    return this.columns(table).find((c) => same(c.name, name));
  }

  /** Every FOREIGN KEY in the store whose parent is this table (self-references included). */
  foreignKeysReferencing(parent: string): ForeignKeyFact[] {
    return this.foreignKeys().filter((fk) => same(fk.parentTable, parent));
  }

  /** Every FOREIGN KEY declared in the store, one entry per constraint (composite keys keep their columns together). */
  foreignKeys(): ForeignKeyFact[] {
    this.cachedForeignKeys ??= this.readForeignKeys();
    return [...this.cachedForeignKeys];
  }

  private readForeignKeys(): ForeignKeyFact[] {
    const facts: ForeignKeyFact[] = [];
    for (const table of this.tables()) {
      if (table.kind !== 'table') continue;
      const rows = this.db.prepare('SELECT id, seq, "table" AS parent, "from" AS child, "to" AS target, on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq').all(table.name) as {
        id: number | bigint;
        parent: string;
        child: string;
        target: string | null;
        on_update: string;
        on_delete: string;
      }[];
      const byId = new Map<number, ForeignKeyFact>();
      for (const row of rows) {
        const id = Number(row.id);
        let fact = byId.get(id);
        if (!fact) {
          fact = {
            childTable: table.name,
            childColumns: [],
            parentTable: row.parent,
            parentColumns: [],
            onDelete: row.on_delete.toUpperCase() as FkAction,
            onUpdate: row.on_update.toUpperCase() as FkAction,
            deferred: isDeferred(table.sql ?? '', id),
          };
          byId.set(id, fact);
          facts.push(fact);
        }
        fact.childColumns.push(row.child);
        fact.parentColumns.push(row.target);
      }
    }
    return facts;
  }

  /** The table's indexes with their key columns in order (the implicit primary-key index of a WITHOUT ROWID table included). */
  indexes(table: string): IndexFact[] {
    const key = table.toLowerCase();
    let indexes = this.cachedIndexes.get(key);
    if (!indexes) this.cachedIndexes.set(key, (indexes = this.readIndexes(table)));
    return [...indexes];
  }

  private readIndexes(table: string): IndexFact[] {
    const list = this.db.prepare('SELECT name, "unique" AS uq, origin, partial FROM pragma_index_list(?)').all(table) as {
      name: string;
      uq: number | bigint;
      origin: 'c' | 'u' | 'pk';
      partial: number | bigint;
    }[];
    const keyColumns = this.db.prepare('SELECT name FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno');
    return list.map((row) => ({
      name: row.name,
      table,
      columns: (keyColumns.all(row.name) as { name: string | null }[]).map((c) => c.name),
      unique: Number(row.uq) === 1,
      partial: Number(row.partial) === 1,
      origin: row.origin,
    }));
  }

  /**
   * Whether looking rows up by this column is an index search rather than a scan of the table: the column is the
   * rowid alias, or the leading key column of a (non-partial) index, the primary key of a WITHOUT ROWID table included.
   */
  hasLeadingIndex(table: string, column: string): boolean {
    const fact = this.table(table);
    if (!fact) return false;
    if (fact.rowidAlias && same(fact.rowidAlias, column)) return true;
    return this.indexes(table).some((index) => !index.partial && index.columns[0] != null && same(index.columns[0], column));
  }

  /** Triggers on the table, optionally only those fired by one event. */
  triggersOn(table: string, event?: TriggerEvent): TriggerFact[] {
    return this.triggers().filter((t) => same(t.table, table) && (!event || t.event === event));
  }

  /** Every trigger of the main schema, by name. */
  triggers(): TriggerFact[] {
    this.cachedTriggers ??= this.readTriggers();
    return [...this.cachedTriggers];
  }

  private readTriggers(): TriggerFact[] {
    const rows = this.db.prepare("SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name").all() as {
      name: string;
      tbl_name: string;
      sql: string;
    }[];
    return rows.map((row) => parseTrigger(row.name, row.tbl_name, row.sql));
  }

  /** The store's FTS3/4/5 tables, with their content table and shadow tables. */
  ftsTables(): FtsFact[] {
    this.cachedFts ??= this.readFtsTables();
    return [...this.cachedFts];
  }

  private readFtsTables(): FtsFact[] {
    const virtuals = this.db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name").all() as {
      name: string;
      sql: string;
    }[];
    const shadows = this.tables().filter((t) => t.kind === 'shadow' || t.kind === 'table');
    const facts: FtsFact[] = [];
    for (const row of virtuals) {
      const parsed = parseVirtualTable(row.sql);
      if (!parsed || !/^fts[345]$/i.test(parsed.module)) continue;
      const module = parsed.module.toLowerCase() as FtsModule;
      const content = parsed.options.get('content');
      const suffixes = module === 'fts5' ? ['data', 'idx', 'content', 'docsize', 'config'] : ['content', 'segments', 'segdir', 'docsize', 'stat'];
      facts.push({
        name: row.name,
        module,
        content: content === undefined ? 'own' : content === '' ? 'contentless' : 'external',
        contentTable: content ? content : null,
        contentRowid: parsed.options.get('content_rowid') ?? null,
        contentlessDelete: parsed.options.get('contentless_delete') === '1',
        columns: parsed.columns,
        shadowTables: shadows
          .filter((t) => suffixes.some((suffix) => same(t.name, `${row.name}_${suffix}`)))
          .map((t) => t.name)
          .sort(),
      });
    }
    return facts;
  }

  /** FTS tables whose external content is this table (they go stale unless triggers keep them in step). */
  ftsOver(table: string): FtsFact[] {
    return this.ftsTables().filter((fts) => fts.contentTable !== null && same(fts.contentTable, table));
  }
}

/** An INTEGER PRIMARY KEY column is the rowid itself (unless declared DESC, SQLite's documented quirk). */
function rowidAliasOf(columns: ColumnFact[], sql: string | null): string | null {
  const pk = columns.filter((c) => c.pk > 0);
  if (pk.length !== 1 || pk[0]!.type.toUpperCase() !== 'INTEGER') return null;
  const name = pk[0]!.name;
  const upper = columnDefinition(sql ?? '', name).map((t) => t.toUpperCase());
  const pkAt = upper.indexOf('PRIMARY');
  if (pkAt >= 0 && upper[pkAt + 2] === 'DESC') return null;
  return name;
}

/** The tokens of a column's definition in a CREATE TABLE (its name first); empty when the column list has none. */
function columnDefinition(sql: string, column: string): string[] {
  let depth = 0;
  let definition: string[] = [];
  const found = () => definition.length > 0 && same(identValue(definition[0]!) ?? '', column);
  for (const token of tokenize(sql)) {
    if (token === '(' && depth++ === 0) continue;
    if (token === ')' && --depth === 0) break;
    if (depth === 0) continue;
    if (token === ',' && depth === 1) {
      if (found()) break;
      definition = [];
    } else definition.push(token);
  }
  return found() ? definition : [];
}

/** Whether the n-th FOREIGN KEY of a CREATE TABLE (pragma ids count from the last one declared) is DEFERRABLE INITIALLY DEFERRED. */
function isDeferred(sql: string, pragmaId: number): boolean {
  const tokens = tokenize(sql).map((t) => t.toUpperCase());
  const clauses: boolean[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] !== 'REFERENCES') continue;
    let deferred = false;
    for (let j = i + 1; j < tokens.length && tokens[j] !== ',' && tokens[j] !== 'REFERENCES'; j++) {
      if (tokens[j] === 'NOT' && tokens[j + 1] === 'DEFERRABLE') break;
      if (tokens[j] === 'DEFERRABLE' && tokens[j + 1] === 'INITIALLY' && tokens[j + 2] === 'DEFERRED') deferred = true;
    }
    clauses.push(deferred);
  }
  // pragma_foreign_key_list numbers constraints in reverse order of declaration.
  return clauses[clauses.length - 1 - pragmaId] ?? false;
}

/** Reads a trigger's timing, event, UPDATE OF columns and table from its CREATE TRIGGER statement. */
export function parseTrigger(name: string, table: string, sql: string): TriggerFact {
  const tokens = tokenize(sql);
  const upper = tokens.map((t) => t.toUpperCase());
  let i = upper.indexOf('TRIGGER') + 1;
  if (upper[i] === 'IF' && upper[i + 1] === 'NOT' && upper[i + 2] === 'EXISTS') i += 3;
  i += tokens[i + 1] === '.' ? 3 : 1; // [schema.]name
  let timing: TriggerFact['timing'] = 'BEFORE'; // SQLite's default when none is written
  if (upper[i] === 'BEFORE' || upper[i] === 'AFTER') timing = upper[i++] as 'BEFORE' | 'AFTER';
  else if (upper[i] === 'INSTEAD' && upper[i + 1] === 'OF') {
    timing = 'INSTEAD OF';
    i += 2;
  }
  const event = upper[i++] as TriggerEvent;
  let updateOf: string[] | null = null;
  if (event === 'UPDATE' && upper[i] === 'OF') {
    updateOf = [];
    for (i++; i < tokens.length && upper[i] !== 'ON'; i++) {
      const ident = identValue(tokens[i]!);
      if (ident !== null && tokens[i] !== ',') updateOf.push(ident);
    }
  }
  return { name, table, timing, event, updateOf, sql };
}

/**
 * What a trigger's body writes into an FTS table as a new entry: `INSERT INTO fts (rowid, a, …) VALUES (new.x, new.y,
 * …)`, as the columns written and, for each, the trigger table's column it takes (null for any other expression).
 * Inserts that are FTS commands ('delete', 'rebuild': the first column is the table's own name) are skipped; null
 * when the body has no plain insert with a column list into that table.
 */
export function ftsFeed(sql: string, fts: string): { columns: string[]; values: (string | null)[] } | null {
  const tokens = tokenize(sql);
  const upper = tokens.map((t) => t.toUpperCase());
  for (let i = upper.indexOf('BEGIN') + 1; i < tokens.length; i++) {
    if (upper[i] !== 'INTO' || !(upper[i - 1] === 'INSERT' || upper[i - 2] === 'INSERT' || upper[i - 1] === 'REPLACE')) continue;
    let at = i + 1;
    if (tokens[at + 1] === '.') at += 2; // [schema.]table
    const name = identValue(tokens[at] ?? '');
    if (name === null || !same(name, fts) || tokens[at + 1] !== '(') continue;
    const columns: string[] = [];
    let j = at + 2;
    for (; j < tokens.length && tokens[j] !== ')'; j++) if (tokens[j] !== ',') columns.push(identValue(tokens[j]!) ?? tokens[j]!);
    if (!columns.length || same(columns[0]!, fts) || upper[j + 1] !== 'VALUES' || tokens[j + 2] !== '(') continue;
    const values: (string | null)[] = [];
    let expression: string[] = [];
    let depth = 0;
    for (j += 3; j < tokens.length; j++) {
      const token = tokens[j]!;
      if ((token === ',' || token === ')') && depth === 0) {
        const column = expression.length === 3 && expression[0]!.toUpperCase() === 'NEW' && expression[1] === '.' ? identValue(expression[2]!) : null;
        values.push(column);
        expression = [];
        if (token === ')') break;
        continue;
      }
      if (token === '(') depth++;
      if (token === ')') depth--;
      expression.push(token);
    }
    return values.length === columns.length ? { columns, values } : null;
  }
  return null;
}

/** The module, options (key=value) and column names of a CREATE VIRTUAL TABLE statement. */
export function parseVirtualTable(sql: string): { module: string; options: Map<string, string>; columns: string[] } | null {
  const tokens = tokenize(sql);
  const using = tokens.findIndex((t) => t.toUpperCase() === 'USING');
  if (using < 0 || !tokens[using + 1]) return null;
  const module = tokens[using + 1]!;
  const options = new Map<string, string>();
  const columns: string[] = [];
  let depth = 0;
  let argument: string[] = [];
  const finish = (): void => {
    if (argument.length === 0) return;
    const eq = argument.indexOf('=');
    if (eq > 0) {
      options.set(argument[0]!.toLowerCase(), argument.slice(eq + 1).map(unquote).join(''));
    } else {
      const ident = identValue(argument[0]!);
      if (ident !== null) columns.push(ident);
    }
    argument = [];
  };
  for (const token of tokens.slice(using + 2)) {
    if (token === '(') {
      if (depth++ === 0) continue;
    } else if (token === ')') {
      if (--depth === 0) {
        finish();
        break;
      }
    } else if (token === ',' && depth === 1) {
      finish();
      continue;
    }
    if (depth >= 1) argument.push(token);
  }
  return { module, options, columns };
}

/**
 * Splits SQL into tokens: quoted identifiers and strings whole ("…", `…`, […], '…'), words, and single punctuation
 * characters; comments and white space dropped. Enough to read the DDL that sqlite_schema keeps.
 */
export function tokenize(sql: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === '"' || c === '`' || c === "'" || c === '[') {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === close) {
          if (close !== ']' && sql[j + 1] === close) j += 2;
          else break;
        } else j++;
      }
      tokens.push(sql.slice(i, j + 1));
      i = j + 1;
    } else if (/[\w$]/.test(c)) {
      let j = i;
      while (j < sql.length && /[\w$]/.test(sql[j]!)) j++;
      tokens.push(sql.slice(i, j));
      i = j;
    } else {
      tokens.push(c);
      i++;
    }
  }
  return tokens;
}

/** A token's text as a name: quotes removed; null for punctuation. */
function identValue(token: string): string | null {
  if (/^[\w$]+$/.test(token)) return token;
  if (/^["`'[]/.test(token)) return unquote(token);
  return null;
}

function unquote(token: string): string {
  const first = token[0];
  if (first === '[') return token.slice(1, -1);
  if (first === '"' || first === '`' || first === "'") return token.slice(1, -1).replaceAll(first + first, first);
  return token;
}
