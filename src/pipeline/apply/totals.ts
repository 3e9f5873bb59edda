import { emptyActionTotals, sumActionTotals } from '../../store/auditCounts.js';
import { addChanges, type ChangeCount, type ChangesByTable } from '../../store/changeCounts.js';
import type { Totals } from './types.js';

export const emptyTotals = (): Totals => {
  const { applied, notFound, cascaded } = emptyActionTotals();
  return { linesRead: 0, records: 0, applied, notFound, rejected: {}, cascaded, changes: {} };
};

export function addTotals(a: Totals, b: Totals): Totals {
  const rejected = { ...a.rejected };
  for (const [kind, n] of Object.entries(b.rejected)) rejected[kind] = (rejected[kind] ?? 0) + n;
  const { applied, notFound, cascaded } = sumActionTotals(a, b);
  return {
    linesRead: a.linesRead + b.linesRead,
    records: a.records + b.records,
    applied,
    notFound,
    rejected,
    cascaded,
    changes: mergeChanges(a.changes, b.changes),
  };
}

function mergeChanges(a: ChangesByTable, b: ChangesByTable): ChangesByTable {
  const out: ChangesByTable = structuredClone(a);
  for (const [table, byKind] of Object.entries(b)) {
    for (const [kind, byCause] of Object.entries(byKind)) {
      for (const [cause, n] of Object.entries(byCause)) {
        addChanges(out, [{ table, kind: kind as ChangeCount['kind'], cause: cause as ChangeCount['cause'], count: n }]);
      }
    }
  }
  return out;
}
