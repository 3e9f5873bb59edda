import { checkContentSchema, prepareContentStatements, type ContentStatements } from '../../store/contentStatements.js';
import { checkedColumns } from '../../store/storedIds.js';
import { ensureEmbedIndex } from '../../store/embedIndex.js';
import { ensureGuard } from '../../store/guard.js';
import { ensureVisibleViews } from '../../store/marks.js';
import { withForeignKeysRelaxed } from '../../store/open.js';
import { enableSecureDelete } from '../../store/purge.js';
import { foreignKeyEnforcement, resolveTarget, type Target } from '../../store/target.js';
import type { ApplyOptions } from './types.js';

/**
 * Target preparation, first half (before the run is opened): the mapped tables and columns checked against the real
 * schema, and the mapping resolved into a Target (where rows and marks live, the relations of a deleted row…).
 */
export function resolveApplyTarget(options: ApplyOptions): Target {
  const { db, config, type } = options;
  checkContentSchema(db, config.store.tables, type, config.reconcile.cascadeUsers);
  const target = resolveTarget(db, config);
  if (target.unenforceableForeignKeys.length) {
    options.logger.warn(
      { foreignKeys: target.unenforceableForeignKeys },
      'apply: FOREIGN KEYs whose parent key is not unique; SQLite cannot enforce them, so enforcement is off while a batch applies',
    );
  }
  return target;
}

/** The Target made ready to write to: every per-row statement prepared once, and the store set up for it. */
export interface PreparedTarget {
  statements: ContentStatements;
  /** Foreign-key enforcement is switched off around each transaction (withForeignKeysRelaxed; foreignKeyEnforcement). */
  relaxForeignKeys: boolean;
}

/**
 * Target preparation, second half (the run's ID is known: marks in cs_marks and tombstones name it): the statements,
 * and for a real run the cs_visible_* views, the ingest guard and secure_delete.
 */
export async function prepareApplyTarget(options: ApplyOptions, target: Target, runId: number | null): Promise<PreparedTarget> {
  const { db, config, type } = options;
  const reconcileConfig = config.reconcile;
  const relaxForeignKeys = foreignKeyEnforcement(target).whileApplying === 'off';
  // Before the statements are prepared: the sweep looks embedding rows up in the index once it is complete. The first
  // apply on a store fills it from every stored tweet, in transactions bounded like the apply's own.
  if (!options.dryRun) {
    let logged = performance.now();
    const filled = await ensureEmbedIndex(db, target, {
      maxLockMs: reconcileConfig.maxLockMs,
      clock: options.clock,
      onProgress: (n) => {
        if (performance.now() - logged < 30_000) return;
        logged = performance.now();
        options.logger.info({ tweets: n }, 'apply: filling the embedded-copies index (cs_embeds), once per store');
      },
    });
    if (filled) options.logger.info({ tweets: filled }, 'apply: embedded-copies index (cs_embeds) filled');
  }
  let statements!: ContentStatements;
  // Preparing a DELETE compiles its FK checks: with enforcement on, a key SQLite cannot enforce fails it already.
  withForeignKeysRelaxed(db, relaxForeignKeys, () => {
    statements = prepareContentStatements(db, target, type, {
      cascadeUsers: reconcileConfig.cascadeUsers,
      runId,
      tombstones: !options.dryRun,
      checked: checkedColumns(config, type),
    });
  });
  if (!options.dryRun) {
    ensureVisibleViews(db, target);
    ensureGuard(db, target, reconcileConfig.guard);
    // Deleted rows and scrubbed values are zeroed in the file, not left in free space (purgeStore does the rest).
    if (reconcileConfig.purge) enableSecureDelete(db);
  }
  return { statements, relaxForeignKeys };
}
