import { ACTIONS_TAKEN, CASCADE_ACTIONS, FOLLOW_UP_ACTIONS, type ActionTaken, type AuditAction, type CascadeAction } from '../types.js';

/** A batch's audit, per reason and audit action: the one place an apply counts what it did. */
export type AuditCounts = Map<string, Map<AuditAction, number>>;

/** Adds n to the audit's count of (reason, action). */
export function countAudit(audit: AuditCounts, reason: string, action: AuditAction, n: number): void {
  let byAction = audit.get(reason);
  if (!byAction) audit.set(reason, (byAction = new Map<AuditAction, number>()));
  byAction.set(action, (byAction.get(action) ?? 0) + n);
}

/** What an apply did, in the fields its summary reports (`apply --json`): derived from the audit, never counted apart. */
export interface ActionTotals {
  applied: Record<ActionTaken, number>;
  notFound: number;
  /** The cascade's actions on the authors' tweets (cascade_delete, cascade_mark, cascade_scrub_geo). */
  cascaded: { deleted: number; marked: number; scrubbed: number };
}

/** The summary field each cascade action is reported under. */
const CASCADED_FIELD: Record<CascadeAction, keyof ActionTotals['cascaded']> = {
  [CASCADE_ACTIONS.delete]: 'deleted',
  [CASCADE_ACTIONS.mark]: 'marked',
  [CASCADE_ACTIONS.scrub_geo]: 'scrubbed',
};

export function emptyActionTotals(): ActionTotals {
  return {
    applied: Object.fromEntries(ACTIONS_TAKEN.map((action) => [action, 0])) as Record<ActionTaken, number>,
    notFound: 0,
    cascaded: { deleted: 0, marked: 0, scrubbed: 0 },
  };
}

/** Adds audit counts (of any reason) into the summary's fields. */
export function addToActionTotals(into: ActionTotals, action: AuditAction, n: number): ActionTotals {
  if (action === 'not_found') into.notFound += n;
  // The sweep's follow-ups are rows, not results: they are reported with the change counts (cause copy/embed/orphan).
  else if ((FOLLOW_UP_ACTIONS as readonly string[]).includes(action)) return into;
  else if (action in CASCADED_FIELD) into.cascaded[CASCADED_FIELD[action as CascadeAction]] += n;
  else into.applied[action as ActionTaken] += n;
  return into;
}

/** The summary's fields of a batch's audit. */
export function actionTotalsOf(audit: AuditCounts): ActionTotals {
  const totals = emptyActionTotals();
  for (const byAction of audit.values()) for (const [action, n] of byAction) addToActionTotals(totals, action, n);
  return totals;
}

/** Two summaries' fields added, action by action in the audit's words (so a new action needs no change here). */
export function sumActionTotals(a: ActionTotals, b: ActionTotals): ActionTotals {
  const sum = emptyActionTotals();
  for (const totals of [a, b]) {
    for (const [action, n] of Object.entries(auditActionsOf(totals)) as [AuditAction, number][]) addToActionTotals(sum, action, n);
    addToActionTotals(sum, 'not_found', totals.notFound);
  }
  return sum;
}

/** The summary's fields back in the audit's words (a dry run has no audit rows: its cycle summary is built from these). */
export function auditActionsOf(totals: ActionTotals): Partial<Record<AuditAction, number>> {
  const out: Partial<Record<AuditAction, number>> = { ...totals.applied };
  for (const [action, field] of Object.entries(CASCADED_FIELD) as [CascadeAction, keyof ActionTotals['cascaded']][]) out[action] = totals.cascaded[field];
  return out;
}
