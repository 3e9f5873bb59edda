import { setImmediate } from 'node:timers/promises';
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
export async function clearStaleMarks(
  db: Db,
  config: Config,
  type: JobType,
  ranges: readonly { firstId: string; lastId: string }[],
  cycleStartedAt: string,
): Promise<number> {
  const kept = KEPT_STATES.map((s) => `'${s}'`).join(', ');
  const own = config.store.tables[type];
  // The row's own mark (not a cascaded one), in the range, set before this cycle began: not reported again.
  const staleOwnMark = `"${own.id}" BETWEEN @first AND @last AND "${own.complianceState}" IS NOT NULL AND "${own.complianceState}" NOT IN (${kept})
       AND ("${own.complianceReason}" IS NULL OR substr("${own.complianceReason}", 1, ${CASCADE_REASON_PREFIX.length}) <> '${CASCADE_REASON_PREFIX}')
       AND ("${own.complianceAt}" IS NULL OR "${own.complianceAt}" < @before)`;
  const clearOwn = db.prepare(
    `UPDATE "${own.table}" SET "${own.complianceState}" = NULL, "${own.complianceReason}" = NULL, "${own.complianceAt}" = NULL
     WHERE ${staleOwnMark}`,
  );
  const tweets = config.store.tables.tweets;
  const users = config.store.tables.users;
  // A tweet's own mark outranks its author's, so the users cycle did not cascade onto it. When the tweet's own mark
  // lapses while its author is still marked, the author's mark takes over instead of the tweet going unmarked.
  const handOver =
    type === 'tweets' && tweets.authorId && config.reconcile.cascadeUsers
      ? db.prepare(
          `UPDATE "${tweets.table}" SET ("${tweets.complianceState}", "${tweets.complianceReason}", "${tweets.complianceAt}") =
             (SELECT u."${users.complianceState}", '${CASCADE_REASON_PREFIX}' || u."${users.complianceReason}", u."${users.complianceAt}"
              FROM "${users.table}" u WHERE u."${users.id}" = "${tweets.table}"."${tweets.authorId}")
           WHERE ${staleOwnMark}
             AND EXISTS (SELECT 1 FROM "${users.table}" u WHERE u."${users.id}" = "${tweets.table}"."${tweets.authorId}"
                         AND u."${users.complianceState}" IS NOT NULL AND u."${users.complianceState}" NOT IN (${kept}))`,
        )
      : null;
  // Only authors this cycle submitted (stored users in the range): a cascade from `apply --type users` for an author
  // without a users row was never re-checked, so it stays.
  const clearCascaded =
    type === 'users' && tweets.authorId
      ? db.prepare(
          `UPDATE "${tweets.table}" SET "${tweets.complianceState}" = NULL, "${tweets.complianceReason}" = NULL, "${tweets.complianceAt}" = NULL
           WHERE "${tweets.authorId}" IN (SELECT "${users.id}" FROM "${users.table}" WHERE "${users.id}" BETWEEN @first AND @last)
             AND substr("${tweets.complianceReason}", 1, ${CASCADE_REASON_PREFIX.length}) = '${CASCADE_REASON_PREFIX}'
             AND "${tweets.complianceState}" NOT IN (${kept})
             AND ("${tweets.complianceAt}" IS NULL OR "${tweets.complianceAt}" < @before)`,
        )
      : null;
  const clearRange = db.transaction((params: { first: string; last: string; before: string }) => {
    handOver?.run(params);
    return clearOwn.run(params).changes + (clearCascaded ? clearCascaded.run(params).changes : 0);
  });
  let cleared = 0;
  for (const range of ranges) {
    // One short transaction per shard range, yielding in between: on a store of hundreds of millions of rows one
    // transaction would hold the write lock and block the event loop (and systemd's watchdog) for minutes. Each
    // clear is idempotent, so a crash part-way only means the next attempt finds less to clear.
    cleared += clearRange({ first: range.firstId, last: range.lastId, before: cycleStartedAt });
    await setImmediate();
  }
  return cleared;
}
