import cron from 'node-cron';
import type { Command } from 'commander';
import { maskSecret, resolveBearerToken } from '../config/token.js';
import type { Config } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { formatCost, preflight, type Preflight, type RelationPlan } from '../store/preflight.js';
import { configFromOptions, openStoreReadOnly, print, printJson, table, withConfigOption } from './context.js';

/** The next `count` times a cron expression fires, in its time zone. */
export function nextRuns(expression: string, timezone: string, count: number, from = new Date()): Date[] {
  const task = cron.createTask(expression, () => undefined, { timezone });
  try {
    const runs: Date[] = [];
    // getNextRuns starts from now; skip anything before `from` so callers can ask about the future.
    for (const run of task.getNextRuns(count + 8)) if (run >= from && runs.length < count) runs.push(run);
    return runs;
  } finally {
    void task.destroy();
  }
}

export function registerCheckConfig(program: Command): void {
  withConfigOption(program.command('check-config'))
    .description('validate the config, print it resolved (secrets masked) and the next scheduled runs; --store: what a cycle would do to the store')
    .option('--store', 'also open the store read-only and check it against the mapping (tables, columns, marks, foreign keys, indexes, FTS, triggers)')
    .option('--json', 'print as JSON')
    .action((options: { config?: string; json?: boolean; store?: boolean }) => {
      const config = configFromOptions(options);
      const store = options.store ? storePreflight(config) : undefined;
      let token: { source: string; masked: string; warning?: string } | { error: string };
      try {
        const found = resolveBearerToken(config);
        token = { source: found.source, masked: maskSecret(found.token), ...(found.warning ? { warning: found.warning } : {}) };
      } catch (err) {
        token = { error: (err as Error).message };
      }
      const runs = nextRuns(config.schedule.cron, config.schedule.timezone, 5).map((date) => date.toISOString());
      if (options.json) {
        printJson({ config, bearerToken: token, nextRuns: runs, ...(store ? { store } : {}) });
      } else {
        print(`config ${config.configPath}: valid`);
        print(JSON.stringify(config, null, 2));
        print('error' in token ? `bearer token: missing — ${token.error}` : `bearer token: ${token.masked} from ${token.source}`);
        if ('warning' in token) process.stderr.write(`compliance-sync: warning: ${token.warning}\n`);
        print(`next runs (${config.schedule.timezone}, "${config.schedule.cron}"):`);
        for (const run of runs) print(`  ${run}`);
        if (store) print(`\n${formatPreflight(store)}`);
      }
      if (store?.problems.length) {
        const [first] = store.problems;
        throw new ConfigError(`the store does not fit the config: ${store.problems.length === 1 ? 'a problem' : `${store.problems.length} problems`} (listed above), the first at ${first!.key}`, { hint: first!.hint });
      }
      if ('error' in token) {
        throw new ConfigError(token.error, { hint: 'set api.bearerTokenFile in the config, or export X_BEARER_TOKEN' });
      }
    });
}

/** The preflight of every type the schedule runs, on a read-only connection: check-config changes nothing. */
function storePreflight(config: Config): Preflight {
  const db = openStoreReadOnly(config);
  try {
    return preflight(db, config, config.schedule.types, { rows: true });
  } finally {
    db.close();
  }
}

const ACTION_WORDS: Record<RelationPlan['action'], string> = {
  delete: 'rows deleted first',
  copy: 'copies: deleted first, each with its tombstone and dependents',
  set_null: 'set to NULL first',
  set_default: 'set to its declared default first',
};

/** What a cycle would do to the store, as text. */
function formatPreflight(p: Preflight): string {
  const lines: string[] = [];
  const ledger = p.ledger.version === 0 ? 'not migrated yet (the first cycle adds the cs_* ledger tables; nothing else)' : p.ledger.tooNew ? `schema ${p.ledger.version}, newer than this compliance-sync` : p.ledger.pending.length ? `schema ${p.ledger.version}; migrations pending: ${p.ledger.pending.join(', ')}` : `schema ${p.ledger.version}, up to date`;
  lines.push(`store ${p.store}`, `  ledger: ${ledger}`);
  for (const t of p.types) {
    lines.push('', `${t.type}: table "${t.table}"${t.tableFound ? (t.rows !== null ? ` (${t.rows.toLocaleString('en-US')} rows)` : '') : ' NOT FOUND'}`);
    if (t.columns.length) {
      lines.push(
        table(t.columns.map((c) => [`  ${c.key}`, `"${c.column}" ${c.found ? `found${c.declaredType ? ` (${c.declaredType})` : ''}` : 'NOT FOUND'}`] as const)),
      );
    }
    lines.push(t.marks.where === 'columns' ? `  marks: in the columns ${t.marks.columns.join(', ')}` : `  marks: in the ledger table ${t.marks.table} (no column added to "${t.table}"; survives INSERT OR REPLACE)`);
    lines.push(`  unmarked rows for publishing: view ${t.visibleView} (made by the first apply)`);
    if (t.relations.length) {
      lines.push(`  rows that reference a deleted ${t.type === 'tweets' ? 'tweet' : 'user'}:`);
      for (const r of t.relations) {
        lines.push(`    ${r.childTable}.${r.childColumn} → ${r.parentTable}.${r.parentColumn}: ${ACTION_WORDS[r.action]} (${r.source}${r.declaredOnDelete ? `; declared ON DELETE ${r.declaredOnDelete}` : '; not declared'})`);
      }
    } else if (t.tableFound) lines.push(`  no foreign key or store.dependents entry references "${t.table}"`);
    for (const c of t.checkedIds) lines.push(`  IDs checked besides the stored rows: ${c.table}.${c.column} (${c.key}.check)`);
    for (const f of t.fts) lines.push(`  full-text table ${f.name} (${f.module}, content=${f.contentTable}): ${f.keptByTriggers.length ? `kept by triggers ${f.keptByTriggers.join(', ')}` : 'NOT kept by any trigger'}`);
    if (t.triggers.length) {
      lines.push('  triggers that fire:');
      for (const tr of t.triggers) lines.push(`    ${tr.name}: ${tr.timing} ${tr.event}${tr.updateOf ? ` OF ${tr.updateOf.join(', ')}` : ''} ON ${tr.table}`);
    }
  }
  if (p.embeds.length) {
    lines.push('', 'tweets embedded in JSON columns of other tweets (store.tables.tweets.embeds):');
    for (const e of p.embeds) {
      const what = `${e.column} ${e.path}${e.array ? '[*]' : ''}${e.type ? ` (type "${e.type}")` : ''}, ID in .${e.idKey}`;
      lines.push(`  ${what}: ${e.action === 'copy' ? 'the row is a copy, deleted with the tweet (tombstone copy_<reason>); the geo it embeds removed when the tweet is scrubbed' : 'removed when the tweet is deleted, its geo removed when it is scrubbed'}`);
    }
  }
  if (p.orphans.length) {
    lines.push('', 'orphans deleted after each batch (rows nothing references any more):');
    for (const o of p.orphans) lines.push(`  ${o.table}.${o.key}, referenced by ${o.referencedBy.map((r) => `${r.table}.${r.column}`).join(', ')} (${o.source})`);
  }
  if (p.foreignKeyEnforcement) lines.push('', `foreign-key enforcement while a batch applies: ${p.foreignKeyEnforcement.whileApplying} (${p.foreignKeyEnforcement.why})`);
  if (p.indexes.length) {
    lines.push('', 'indexes the work needs:');
    for (const need of p.indexes) lines.push(need.present ? `  ok       ${need.table}(${need.column})` : `  MISSING  ${need.table}(${need.column}): ${need.create} — ${formatCost(need)}`);
  }
  for (const w of p.warnings) lines.push('', `warning: ${w}`);
  if (p.problems.length) {
    lines.push('', `${p.problems.length} problem${p.problems.length === 1 ? '' : 's'}: a cycle would refuse to start`);
    for (const problem of p.problems) lines.push(`  ${problem.key}: ${problem.message}`, `    Try: ${problem.hint}`);
  } else lines.push('', 'preflight: ok, a cycle can start');
  return lines.join('\n');
}
