import type { Command } from 'commander';
import { StoreError } from '../errors.js';
import { AUDIT_CHECKS, recordAudit, runAudit, type AuditReport, type CheckReport } from '../store/audit.js';
import { checkContentSchema } from '../store/contentStatements.js';
import { ledgerState, migrate } from '../store/migrate.js';
import { openStore, requireExistingStore, translateSqliteError } from '../store/open.js';
import { JOB_TYPES } from '../types.js';
import { configFromOptions, positiveInteger, print, printJson, withConfigOption } from './context.js';

const HELP = `
Checks, each reported with a count and examples (IDs and where they are; never content):
${AUDIT_CHECKS.map((c) => `  ${c.name.padEnd(16)} ${c.unit}${c.optIn ? ' (with --scan-bytes)' : ''}`).join('\n')}
Reads the store without changing its content; records its result in the ledger (cs_audits), which \`report\` and
\`status\` show. Exit 0: every check ran and found nothing; 1: findings, or a check could not run.`;

interface AuditCliOptions {
  config?: string;
  json?: boolean;
  scanBytes?: boolean;
  examples: number;
}

export function registerAudit(program: Command): void {
  withConfigOption(program.command('audit'))
    .description('prove the store compliant: tombstoned rows, their dependents, scrubbed geo, FTS entries, deleted bytes, coverage')
    .option('--scan-bytes', "also scan the store's files (free pages, free space in pages, FTS segments, WAL) for tombstoned IDs")
    .option('--examples <n>', 'examples kept per check', positiveInteger, 3)
    .option('--json', 'print the result as JSON')
    .addHelpText('after', HELP)
    .action((options: AuditCliOptions) => {
      const config = configFromOptions(options);
      requireExistingStore(config);
      const db = openStore(config.store.path);
      try {
        const ledger = ledgerState(db);
        if (ledger.version === 0 || ledger.tooNew) {
          throw new StoreError(
            'ledger_not_current',
            ledger.version === 0
              ? `the store ${config.store.path} has no ledger: no compliance cycle has run on it, so nothing about it can be shown compliant`
              : `the store ${config.store.path} is at schema ${ledger.version}, newer than this compliance-sync`,
            { hint: ledger.version === 0 ? `compliance-sync reconcile --now --config ${config.configPath}` : 'upgrade compliance-sync' },
          );
        }
        // The ledger only (cs_* tables): an older one gains the tables the audit reads and writes.
        if (ledger.pending.length) migrate(db);
        for (const type of JOB_TYPES) checkContentSchema(db, config.store.tables, type, false);
        let report: AuditReport;
        let id: number;
        try {
          report = runAudit(db, config, { scanBytes: options.scanBytes ?? false, examples: options.examples, now: () => new Date() });
          id = recordAudit(db, report);
        } catch (err) {
          throw translateSqliteError(err, config.store.path);
        }
        if (options.json) printJson({ store: config.store.path, audit: id, ...report });
        else print(auditText(config.store.path, id, report));
        process.exitCode = report.outcome === 'clean' ? 0 : 1;
      } finally {
        db.close();
      }
    });
}

/** One line per check: what it found, where, and the first examples. */
export function checkLine(check: CheckReport): string {
  const name = check.name.padEnd(16);
  if (check.error !== undefined) return `ERROR ${name} could not run: ${check.error}`;
  if (!check.ran) return `skip  ${name} ${check.notes.join('; ')}`;
  if (!check.count) return `ok    ${name} no ${check.unit}`;
  const where = Object.entries(check.locations)
    .map(([place, n]) => `${place} ${n}`)
    .join(', ');
  const examples = check.examples.map((e) => e.id).join(', ');
  return `FAIL  ${name} ${check.count} ${check.unit} (${where}); e.g. ${examples}`;
}

function auditText(store: string, id: number, report: AuditReport): string {
  const notes = report.checks.reduce((n, c) => n + (c.ran ? c.notes.length : 0), 0);
  const verdict =
    report.outcome === 'clean'
      ? 'clean: every check ran and found nothing'
      : report.outcome === 'incomplete'
        ? `incomplete: a check could not run${report.findings ? `; ${report.findings} findings` : ''}`
        : `${report.findings} findings`;
  return [
    `audit #${id} of ${store} at ${report.startedAt}: ${verdict}`,
    ...report.checks.map(checkLine),
    ...(notes ? [`${notes} note${notes === 1 ? '' : 's'} on what was not checked: see --json`] : []),
  ].join('\n');
}
