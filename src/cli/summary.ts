import type { CycleSummary } from '../pipeline/events.js';
import type { AuditAction } from '../types.js';

/** The end-of-run table: one column per type. */
export function formatCycleSummaries(summaries: readonly CycleSummary[]): string {
  if (summaries.length === 0) return 'nothing to do';
  const actionKeys = [...new Set(summaries.flatMap((s) => Object.keys(s.actions)))].sort();
  const rejectKeys = [...new Set(summaries.flatMap((s) => Object.keys(s.rejected)))].sort();
  const rows: [string, ...string[]][] = [
    ['', ...summaries.map((s) => s.type)],
    ['cycle', ...summaries.map((s) => `#${s.cycleId}${s.dryRun ? ' (dry run)' : ''}`)],
    ['state', ...summaries.map((s) => s.state)],
    ['IDs checked', ...summaries.map((s) => String(s.idsChecked))],
    ['shards applied', ...summaries.map((s) => `${s.shards.applied}/${s.shards.total}`)],
    ['shards failed', ...summaries.map((s) => String(s.shards.failed))],
    ['shards held', ...summaries.map((s) => String(s.shards.held))],
    ['jobs used', ...summaries.map((s) => String(s.jobsUsed))],
    ...actionKeys.map((key): [string, ...string[]] => [actionLabel(key), ...summaries.map((sum) => String(sum.actions[key] ?? 0))]),
    ['not in store', ...summaries.map((s) => String(s.notFound))],
    ...rejectKeys.map((key): [string, ...string[]] => [`rejected: ${key}`, ...summaries.map((sum) => String(sum.rejected[key] ?? 0))]),
    ['marks cleared', ...summaries.map((s) => String(s.marksCleared))],
    ['duration', ...summaries.map((s) => `${(s.durationMs / 1000).toFixed(1)} s`)],
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  const lines = rows.map((row) => row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  '));
  for (const summary of summaries) {
    for (const failure of summary.failures) lines.push(`${summary.type} shard ${failure.seq} failed: ${failure.error}`);
  }
  return lines.join('\n');
}

/** How the end-of-run table names each audit action. */
const ACTION_LABELS: Record<AuditAction, string> = {
  delete: 'rows deleted',
  mark: 'rows marked',
  scrub_geo: 'geo scrubbed',
  ignore: 'ignored by policy',
  not_found: 'not in store',
  cascade_delete: "authors' tweets deleted",
  cascade_mark: "authors' tweets marked",
  cascade_scrub_geo: "authors' tweets geo-scrubbed",
  copy_deleted: 'copies deleted (retweets)',
  embed_updated: 'embedded copies removed or scrubbed',
  orphan_deleted: 'orphans deleted',
};

function actionLabel(action: string): string {
  return ACTION_LABELS[action as AuditAction] ?? action;
}
