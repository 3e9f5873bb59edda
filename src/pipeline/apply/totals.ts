import { addChanges, type ChangeCount, type ChangesByTable } from '../../store/changeCounts.js';
import type { Totals } from './types.js';

export const emptyTotals = (): Totals => ({
  linesRead: 0,
  records: 0,
  applied: { delete: 0, mark: 0, scrub_geo: 0, ignore: 0 },
  notFound: 0,
  rejected: {},
  cascaded: { deleted: 0, marked: 0, scrubbed: 0 },
  changes: {},
});

export function addTotals(a: Totals, b: Totals): Totals {
  const rejected = { ...a.rejected };
  for (const [kind, n] of Object.entries(b.rejected)) rejected[kind] = (rejected[kind] ?? 0) + n;
  return {
    linesRead: a.linesRead + b.linesRead,
    records: a.records + b.records,
    applied: {
      delete: a.applied.delete + b.applied.delete,
      mark: a.applied.mark + b.applied.mark,
      scrub_geo: a.applied.scrub_geo + b.applied.scrub_geo,
      ignore: a.applied.ignore + b.applied.ignore,
    },
    notFound: a.notFound + b.notFound,
    rejected,
    cascaded: {
      deleted: a.cascaded.deleted + b.cascaded.deleted,
      marked: a.cascaded.marked + b.cascaded.marked,
      scrubbed: a.cascaded.scrubbed + b.cascaded.scrubbed,
    },
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
