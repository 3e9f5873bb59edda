import type { Config } from '../config/load.js';
import { durationMs } from '../config/duration.js';
import { coverageOf, type Coverage } from '../store/coverage.js';
import { HookDeliveries, type DeliveryState, type HookName } from '../store/hookDeliveries.js';
import type { Db } from '../store/open.js';
import { readOperations, storeSizeBytes } from '../store/operations.js';
import { JOB_TYPES, type JobType } from '../types.js';

/**
 * The ledger's figures under the names of the metrics they feed (without the `compliance_sync_` prefix), so that
 * `status --json` and `/metrics` say the same thing in the same words.
 */
export interface TypeSnapshot {
  last_success_timestamp_seconds: number | null;
  coverage_ratio: number;
  oldest_unchecked_age_seconds: number | null;
  shards: Record<string, number>;
  jobs_total: { created: number; failed: number; expired: number };
  result_lines_total: { reason: string; action: string; count: number }[];
  rows_changed_total: { table: string; cause: string; count: number }[];
  apply_rows_per_second: number | null;
}

export interface OperationsSnapshot {
  store_size_bytes: number;
  /** The window coverage is counted in (audit.maxAge). */
  audit_max_age: string;
  types: Record<JobType, TypeSnapshot>;
  hook_deliveries_total: { hook: HookName; state: DeliveryState; deliveries: number; attempts: number }[];
}

/** Coverage per type; the metrics cache it between cycles, `status` reads it fresh. */
export function readCoverage(db: Db, config: Config, now: Date): Record<JobType, Coverage> {
  const since = new Date(now.getTime() - durationMs(config.audit.maxAge));
  return Object.fromEntries(JOB_TYPES.map((type) => [type, coverageOf(db, config, type, since, 1)])) as Record<JobType, Coverage>;
}

export function readSnapshot(db: Db, config: Config, now: Date, coverage = readCoverage(db, config, now)): OperationsSnapshot {
  const operations = readOperations(db, config);
  const types = {} as Record<JobType, TypeSnapshot>;
  for (const type of JOB_TYPES) {
    const ops = operations[type];
    const cov = coverage[type];
    const oldest = cov.oldestUnchecked[0];
    types[type] = {
      last_success_timestamp_seconds: ops.lastSuccessTimestampSeconds,
      coverage_ratio: cov.share,
      // No unchecked row: nothing waits. An unchecked row whose ID tells no time (pre-2010 counters): unknown.
      oldest_unchecked_age_seconds: !oldest ? 0 : oldest.createdAt ? Math.max(0, (now.getTime() - Date.parse(oldest.createdAt)) / 1000) : null,
      shards: ops.shards,
      jobs_total: ops.jobs,
      result_lines_total: ops.resultLines,
      rows_changed_total: ops.rowsChanged,
      apply_rows_per_second: ops.applyRowsPerSecond,
    };
  }
  return {
    store_size_bytes: storeSizeBytes(config.store.path),
    audit_max_age: config.audit.maxAge,
    types,
    hook_deliveries_total: new HookDeliveries(db).totals(),
  };
}
