import type { Config } from '../config/load.js';
import { durationMs } from '../config/duration.js';
import { redactUrl } from '../log.js';
import { coverageOf, type Coverage } from '../store/coverage.js';
import { HookDeliveries, type HookDelivery } from '../store/hookDeliveries.js';
import type { Db } from '../store/open.js';
import { complianceReport, type ComplianceReport } from '../store/reports.js';
import { readReportHistory, type ReportHistory } from '../store/reportHistory.js';
import { readStoreId } from '../store/status.js';
import { JOB_TYPES, type JobType } from '../types.js';

/** Everything the HTML report shows, read from the store in one go. */
export interface ReportPage {
  store: string;
  storeId: string;
  generatedAt: string;
  report: ComplianceReport;
  auditMaxAge: string;
  types: Record<JobType, { history: ReportHistory; coverage: Coverage }>;
  hookDeliveries: Omit<HookDelivery, 'payloadJson'>[];
  /** The configuration in force, with anything that could be a secret masked. */
  config: unknown;
}

export function readReportPage(db: Db, config: Config, since: Date, until: Date): ReportPage {
  const report = complianceReport(db, config, since, until);
  const coveredSince = new Date(until.getTime() - durationMs(config.audit.maxAge));
  const types = Object.fromEntries(
    JOB_TYPES.map((type) => [
      type,
      { history: readReportHistory(db, type, report.since, report.until), coverage: coverageOf(db, config, type, coveredSince, 10) },
    ]),
  ) as ReportPage['types'];
  return {
    store: config.store.path,
    storeId: readStoreId(db) ?? 'unknown',
    generatedAt: until.toISOString(),
    report,
    auditMaxAge: config.audit.maxAge,
    types,
    hookDeliveries: new HookDeliveries(db).recent(20),
    config: maskConfig(config),
  };
}

/** Argument words that suggest a credential follows or is inside (hook commands are free-form). */
const SECRET_WORD = /(token|secret|password|passwd|authorization|bearer|api[-_]?key|credential)/i;

/**
 * The config as the report prints it. The token is never in the config; what could still carry a secret is a URL
 * (user info, signed query values) or a hook command's arguments, so those are masked.
 */
export function maskConfig(config: Config): unknown {
  const maskUrl = (url: string) => {
    const redacted = redactUrl(url);
    try {
      const parsed = new URL(redacted);
      if (parsed.password) parsed.password = 'masked';
      for (const key of [...parsed.searchParams.keys()]) if (SECRET_WORD.test(key)) parsed.searchParams.set(key, 'masked');
      return parsed.toString();
    } catch {
      return redacted;
    }
  };
  const hook = (target: Config['hooks']['onCycleClosed']) => {
    if (!target) return undefined;
    if ('url' in target) return { url: maskUrl(target.url) };
    let maskNext = false;
    return {
      command: target.command.map((arg) => {
        const masked = maskNext || SECRET_WORD.test(arg) ? '[masked]' : arg;
        maskNext = /^(-H|--header|--password|--token|-u|--user)$/.test(arg);
        return masked;
      }),
    };
  };
  return {
    ...config,
    api: { ...config.api, baseUrl: maskUrl(config.api.baseUrl) },
    hooks: { ...config.hooks, onCycleClosed: hook(config.hooks.onCycleClosed), onDeletions: hook(config.hooks.onDeletions) },
  };
}
