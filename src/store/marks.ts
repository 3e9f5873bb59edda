import type { Config } from '../config/load.js';
import type { JobType } from '../types.js';
import { CASCADE_REASON_PREFIX } from './contentStatements.js';
import type { Db } from './open.js';

/** Marks that are refetch hints, not compliance states: a later cycle never clears them. */
const KEPT_STATES = ['edited'];

/**
 * Clears the marks a closing cycle covered and did not report again: the API lists only IDs needing action, so an ID
 * absent from this cycle's results is compliant again. "Reported again" means re-marked by this cycle, i.e. a
 * compliance_at at or after the cycle's start (each apply run writes its start time there).
 */
export function clearStaleMarks(
  db: Db,
  config: Config,
  type: JobType,
  ranges: readonly { firstId: string; lastId: string }[],
  cycleStartedAt: string,
): number {
  const kept = KEPT_STATES.map((s) => `'${s}'`).join(', ');
  const own = config.store.tables[type];
  const clearOwn = db.prepare(
    `UPDATE "${own.table}" SET "${own.complianceState}" = NULL, "${own.complianceReason}" = NULL, "${own.complianceAt}" = NULL
     WHERE "${own.id}" BETWEEN ? AND ? AND "${own.complianceState}" IS NOT NULL AND "${own.complianceState}" NOT IN (${kept})
       AND ("${own.complianceReason}" IS NULL OR substr("${own.complianceReason}", 1, ${CASCADE_REASON_PREFIX.length}) <> '${CASCADE_REASON_PREFIX}')
       AND ("${own.complianceAt}" IS NULL OR "${own.complianceAt}" < ?)`,
  );
  const tweets = config.store.tables.tweets;
  const clearCascaded =
    type === 'users' && tweets.authorId
      ? db.prepare(
          `UPDATE "${tweets.table}" SET "${tweets.complianceState}" = NULL, "${tweets.complianceReason}" = NULL, "${tweets.complianceAt}" = NULL
           WHERE "${tweets.authorId}" BETWEEN ? AND ?
             AND substr("${tweets.complianceReason}", 1, ${CASCADE_REASON_PREFIX.length}) = '${CASCADE_REASON_PREFIX}'
             AND "${tweets.complianceState}" NOT IN (${kept})
             AND ("${tweets.complianceAt}" IS NULL OR "${tweets.complianceAt}" < ?)`,
        )
      : null;
  return db.transaction(() => {
    let cleared = 0;
    for (const range of ranges) {
      cleared += clearOwn.run(range.firstId, range.lastId, cycleStartedAt).changes;
      if (clearCascaded) cleared += clearCascaded.run(range.firstId, range.lastId, cycleStartedAt).changes;
    }
    return cleared;
  })();
}
