import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { StoreError, UsageError } from '../errors.js';
import { CHANGE_CAUSES } from '../store/changeCounts.js';
import { ledgerState } from '../store/migrate.js';
import { complianceReport, type ComplianceReport } from '../store/reports.js';
import { configFromOptions, openStoreReadOnly, print, withConfigOption } from './context.js';

export function registerReport(program: Command): void {
  withConfigOption(program.command('report'))
    .description('a compliance report for a period: IDs checked, jobs run, actions per reason, failures, coverage')
    .option('--since <date>', 'start of the period (ISO date or time; default: 30 days ago)', (value) => {
      const date = new Date(value);
      if (Number.isNaN(date.getTime())) throw new InvalidArgumentError('must be a date like 2026-11-01 or 2026-11-01T00:00:00Z');
      return date;
    })
    .addOption(new Option('--format <format>', 'output format (html: one self-contained page with charts)').choices(['md', 'json', 'html']).default('md'))
    .option('--out <file>', 'write the report to this file (replaced whole) instead of stdout')
    .action(async (options: { config?: string; since?: Date; format: 'md' | 'json' | 'html'; out?: string }) => {
      const config = configFromOptions(options);
      const db = openStoreReadOnly(config);
      try {
        const ledger = ledgerState(db);
        if (ledger.version === 0 || ledger.pending.length > 0 || ledger.tooNew) {
          // A report built from a ledger this code does not read would be wrong; the store is left as it is.
          throw new StoreError(
            'ledger_not_current',
            ledger.version === 0
              ? `the store ${config.store.path} is not migrated yet: no compliance cycle has run on it, so there is nothing to report`
              : `the store ${config.store.path} is at schema ${ledger.version}${ledger.tooNew ? ', newer than this compliance-sync' : `; pending: ${ledger.pending.join(', ')}`}`,
            { hint: ledger.tooNew ? 'upgrade compliance-sync' : 'compliance-sync migrate, then compliance-sync reconcile --now' },
          );
        }
        const until = new Date();
        const since = options.since ?? new Date(until.getTime() - 30 * 86_400_000);
        let text: string;
        if (options.format === 'html') {
          // Loaded only for this format: every other command starts without the page's code.
          const [{ renderReportHtml }, { readReportPage }] = await Promise.all([import('../report/htmlReport.js'), import('../report/reportPage.js')]);
          text = renderReportHtml(readReportPage(db, config, since, until));
        } else {
          const report = complianceReport(db, config, since, until);
          text = options.format === 'json' ? jsonText({ store: config.store.path, ...report }) : toMarkdown(config.store.path, report);
        }
        if (options.out) {
          const file = path.resolve(options.out);
          writeReport(file, text);
          print(`report written to ${file}`);
        } else print(text);
      } finally {
        db.close();
      }
    });
}

function jsonText(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

/** Through a temp file and a rename: a report that is there is whole. */
function writeReport(file: string, text: string): void {
  if (isFolder(file)) throw new UsageError(`--out ${file} is a folder; the report is one file`, { hint: 'pass a file name, e.g. --out report.md' });
  const temp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(temp, text.endsWith('\n') ? text : `${text}\n`);
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

function isFolder(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}

function toMarkdown(store: string, report: ComplianceReport): string {
  const lines = [
    '# Compliance report',
    '',
    `Store: \`${store}\`  `,
    `Period: ${report.since} to ${report.until}`,
    '',
    '| | ' + report.types.map((t) => t.type).join(' | ') + ' |',
    '| --- | ' + report.types.map(() => '---:').join(' | ') + ' |',
    `| cycles completed | ${report.types.map((t) => t.cyclesClosed).join(' | ')} |`,
    `| IDs checked | ${report.types.map((t) => t.idsChecked).join(' | ')} |`,
    `| compliance jobs run | ${report.types.map((t) => t.jobsRun).join(' | ')} |`,
    `| stored rows | ${report.types.map((t) => t.coverage.storedRows).join(' | ')} |`,
    `| checked in the period | ${report.types.map((t) => `${t.coverage.checkedRows} (${(t.coverage.share * 100).toFixed(1)}%)`).join(' | ')} |`,
    `| oldest unchecked row | ${report.types.map((t) => (t.coverage.oldestUnchecked ? `${t.coverage.oldestUnchecked.id}${t.coverage.oldestUnchecked.createdAt ? ` (${t.coverage.oldestUnchecked.createdAt.slice(0, 10)})` : ''}` : 'none')).join(' | ')} |`,
  ];
  for (const type of report.types) {
    lines.push('', `## ${type.type}: actions taken per reason`, '');
    const reasons = Object.entries(type.actionsByReason);
    if (reasons.length === 0) lines.push('No results needed action in this period.');
    else {
      lines.push('| reason | action taken | count |', '| --- | --- | ---: |');
      for (const [reason, actions] of reasons) for (const [action, n] of Object.entries(actions)) lines.push(`| ${reason} | ${action} | ${n} |`);
    }
    const tables = Object.entries(type.tables);
    if (tables.length) {
      lines.push('', `### ${type.type}: rows changed per table`, '', `| table | change | ${CHANGE_CAUSES.join(' | ')} |`, `| --- | --- |${CHANGE_CAUSES.map(() => ' ---: |').join('')}`);
      for (const [table, kinds] of tables) {
        for (const [kind, causes] of Object.entries(kinds)) {
          lines.push(`| ${table} | ${kind} | ${CHANGE_CAUSES.map((c) => (causes as Record<string, number>)[c] ?? 0).join(' | ')} |`);
        }
      }
    }
    if (type.failures.length) {
      lines.push('', `### ${type.type}: failures`, '', '| cycle | shard | IDs | error | what became of it |', '| --- | --- | --- | --- | --- |');
      for (const f of type.failures) lines.push(`| #${f.cycleId} | ${f.seq} | ${f.firstId}–${f.lastId} | ${f.error.replace(/\|/g, '\\|')} | ${f.resolution} |`);
    }
  }
  lines.push('', '## Last audit', '');
  const audit = report.lastAudit;
  if (!audit) lines.push('No audit recorded (`compliance-sync audit`).');
  else {
    lines.push(
      `Audit #${audit.id} at ${audit.startedAt}: **${audit.outcome}**${audit.findings ? `, ${audit.findings} findings` : ''}${audit.scanBytes ? ' (with the byte scan)' : ''}.`,
      '',
      '| check | result |',
      '| --- | --- |',
      ...audit.checks.map((c) => `| ${c.name} | ${(c.error !== undefined ? `could not run: ${c.error}` : !c.ran ? 'not run' : c.count ? `${c.count} ${c.unit}` : 'ok').replace(/\|/g, '\\|')} |`),
    );
  }
  return lines.join('\n');
}
